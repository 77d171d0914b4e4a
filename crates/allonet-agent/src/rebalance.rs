//! Rebalancing the treasury through a real AMM. When the holdings the epoch leaves are outside the policy's bands,
//! the treasury stage drafts the trades back to target (`allonet_treasury::rebalance`: tranches of at most
//! `max_trade_share` of the treasury) and turns each tranche into one Uniswap v2 swap against the treasury's quote
//! stablecoin: sells first, then buys. Every swap is fixed before anyone votes: its exact amount in, the amount the
//! pool would pay after the tranches before it (the whitepaper's rule on the reserves read at the stage,
//! [`allonet_chain::amm::amount_out`]), and its least output, that amount less `max_slippage_bp` (at most
//! [`MAX_SLIPPAGE_BP`]). The stage refuses, and the report says why: a pool whose price is more than
//! `max_deviation_bp` from the reference price in `agent.toml` (a pool pushed at the block read, or a node
//! lying about it), a tranche whose own impact or an asset whose summed impact is above the bound, a sale larger
//! than the treasury holds, a token whose decimals on chain differ from the AMM file, or a router that is not the
//! file's factory's. The list's digest, which names the agent and the epoch, is what the members approve
//! (`Action::ApproveTreasuryOps`), in this epoch's proposal only.
//!
//! Once approved, the execute stage writes the swaps as a Safe Transaction Builder batch (`approve` then
//! `swapExactTokensForTokens` per swap: for a treasury held by a Safe, whose owners sign it) and, when the setup
//! names the treasury account's key, sends them itself, each with a least output no lower than approved (higher
//! when the pool now pays more) and a deadline no later than approved (30 minutes from sending). The router
//! enforces each bound on chain. A swap seen mined is noted (`epochs/N/rebalance.sent.json`, from its own receipt)
//! and never sent again. After a crash before that note, swap `i` counts as done when the `k`-th pair `Swap` event
//! after the stage's block paid the treasury at least the lowest least output of its kind for exactly its amount in,
//! `k` counting the same swaps before it (a stranger can make such an event only by paying the treasury that much
//! at their own cost). So a resumed run sends only what did not land. A swap the router refuses stops the rebalance there: the rest is not sent, the report says which
//! and why, and the epoch goes on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use allonet_chain::amm::{self, Amm};
use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Schema tag of the AMM file.
pub const AMM_SCHEMA: &str = "allonet.treasury-amm/1";

/// Where the treasury's tokens and its AMM are: written by whoever deploys them (`agent init --example` does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmmFile {
    pub schema: String,
    pub chain_id: u64,
    pub amm: Amm,
    /// The account that holds the treasury's tokens (a Safe in production).
    pub treasury: Address,
    /// The stablecoin every swap trades against (valued at 1 unit of account).
    pub quote: String,
    /// Policy asset → its token on this chain.
    pub tokens: BTreeMap<String, TokenAt>,
}

/// A token on the AMM's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAt {
    pub address: Address,
    pub decimals: u8,
}

impl AmmFile {
    /// Reads and checks it.
    pub fn load(path: &Path) -> Result<AmmFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let f: AmmFile = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if f.schema != AMM_SCHEMA {
            return Err(format!("{}: schema {:?}, expected {AMM_SCHEMA:?}", path.display(), f.schema));
        }
        if !f.tokens.contains_key(&f.quote) {
            return Err(format!("{}: the quote asset {} has no token", path.display(), f.quote));
        }
        Ok(f)
    }
}

/// The highest `max_slippage_bp` accepted.
pub const MAX_SLIPPAGE_BP: u32 = 300;

/// Most swaps one rebalance may hold.
pub const MAX_SWAPS: usize = 64;

/// `[treasury.swaps]` in agent.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapSetup {
    /// The AMM file.
    pub amm: PathBuf,
    /// The embedded EVM's state file of its chain (when there is no `rpc`).
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// A JSON-RPC endpoint instead.
    #[serde(default)]
    pub rpc: Option<String>,
    /// Over JSON-RPC: the most a transaction may offer per gas, in gwei (default 2,000).
    #[serde(default)]
    pub max_fee_gwei: Option<u64>,
    /// Over JSON-RPC: seconds before a transaction not mined is replaced at a higher fee (default 60).
    #[serde(default)]
    pub stuck_after_s: Option<u64>,
    /// The treasury account's key: with it the agent sends the approved swaps; without it only the Safe batch
    /// is written.
    #[serde(default)]
    pub executor_key: Option<PathBuf>,
    /// Least output accepted, below what the pool would pay, in basis points (default 100: 1 %).
    #[serde(default = "default_slippage")]
    pub max_slippage_bp: u32,
    /// Trades smaller than this (unit of account) are not made (default 1,000).
    #[serde(default = "default_min_trade")]
    pub min_trade: f64,
    /// Reference price of each non-quote asset (unit of account per whole token): a pool whose price is further
    /// from it than `max_deviation_bp` is not traded.
    pub reference_prices: BTreeMap<String, f64>,
    /// Largest gap between a pool's price and its reference, in basis points (default 200).
    #[serde(default = "default_deviation")]
    pub max_deviation_bp: u32,
}

fn default_deviation() -> u32 {
    200
}

fn default_slippage() -> u32 {
    100
}

fn default_min_trade() -> f64 {
    1_000.0
}

/// One swap as governance approves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Swap {
    pub sell: String,
    pub buy: String,
    pub sell_token: Address,
    pub buy_token: Address,
    /// Base units of `sell`.
    pub amount_in: String,
    /// What the pool would pay after the swaps before it (base units of `buy`).
    pub expected_out: String,
    /// The bound the router enforces.
    pub min_out: String,
    /// The tranche's value (unit of account).
    pub value: f64,
    /// Its own price impact against the pool's price before it (basis points, the 0.3 % fee included).
    pub impact_bp: f64,
}

/// The approved list: who, when, where, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ops {
    /// The agent and the epoch that drafted it (an approval is for this epoch's list only).
    pub agent: String,
    pub epoch: u64,
    pub chain_id: u64,
    /// The block the reserves were read at: the swaps' events are looked for from there.
    pub from_block: u64,
    pub router: Address,
    pub treasury: Address,
    /// Latest time a swap may be mined (the stage's chain time plus 7 days): part of what is approved.
    pub deadline: u64,
    pub swaps: Vec<Swap>,
}

impl Ops {
    /// The digest governance approves: keccak-256 of the list's canonical JSON.
    pub fn digest(&self) -> B256 {
        allonet_core::digest(&serde_json::to_value(self).expect("ops serialise")).0
    }
}

fn connect(dir: &Path, s: &SwapSetup, key: bool) -> Result<allonet_engine::connect::Connection, String> {
    let spec = allonet_engine::connect::ConnectSpec {
        embedded: s.rpc.is_none(),
        state: s.state.as_ref().map(|p| dir.join(p)).unwrap_or_default(),
        rpc: s.rpc.clone(),
        key_file: s.executor_key.as_ref().filter(|_| key && s.rpc.is_some()).map(|k| dir.join(k)),
        send_policy: crate::setup::send_policy(s.max_fee_gwei, s.stuck_after_s),
        ..Default::default()
    };
    allonet_engine::connect::connect(&spec, None).map(|c| c.0).map_err(|e| e.to_string())
}

/// Whether `earlier`'s swaps still fit what the treasury needs now (`now`, drafted from the current holdings and
/// policy, on the same AMM): every pair of tokens it sells one for the other is one `now` sells too, and per token it
/// sells no more than `now` does (1 % allowed for prices that moved). Otherwise it is out of date: holdings, policy
/// or the AMM changed since it was sized.
pub(crate) fn still_fits(earlier: &Ops, now: &Ops) -> bool {
    if (earlier.chain_id, earlier.router, earlier.treasury) != (now.chain_id, now.router, now.treasury) {
        return false;
    }
    let sold = |ops: &Ops| {
        let mut m: BTreeMap<(Address, Address), U256> = BTreeMap::new();
        for s in &ops.swaps {
            let x = s.amount_in.parse::<U256>().unwrap_or(U256::MAX);
            let e = m.entry((s.sell_token, s.buy_token)).or_default();
            *e = e.saturating_add(x);
        }
        m
    };
    let (then, wanted) = (sold(earlier), sold(now));
    then.iter().all(|(pair, x)| wanted.get(pair).is_some_and(|w| *x <= w.saturating_add(*w / U256::from(100u64))))
}

/// The current time on the AMM's chain (what a swap's deadline is checked against).
pub(crate) fn chain_time(dir: &Path, s: &SwapSetup) -> Result<u64, String> {
    let mut conn = connect(dir, s, false)?;
    conn.chain().timestamp().map_err(|e| e.to_string())
}

/// Whole base units of `x` tokens, rounded down; `None` unless finite, positive and below 2^112 (Uniswap v2's
/// reserve width).
fn units(x: f64, decimals: u8) -> Option<U256> {
    let scaled = x * 10f64.powi(decimals as i32);
    (scaled.is_finite() && scaled >= 1.0 && scaled < 2f64.powi(112)).then(|| U256::from(scaled.floor() as u128))
}

fn price_of(r_asset: U256, r_quote: U256, da: u8, dq: u8) -> f64 {
    let a = f64::from(r_asset) / 10f64.powi(da as i32);
    let q = f64::from(r_quote) / 10f64.powi(dq as i32);
    if a > 0.0 {
        q / a
    } else {
        0.0
    }
}

/// The treasury stage's rebalance: the trades the policy calls for on `holdings` and, with an AMM configured, the
/// swaps that make them (see the module's documentation). A failure to read the AMM's chain is reported in the
/// output, not raised: it does not hold back the epoch's payouts.
pub(crate) fn plan(
    a: &crate::Agent,
    epoch: u64,
    policy: &allonet_treasury::policy::Policy,
    holdings: &BTreeMap<String, f64>,
) -> Result<Value, String> {
    let swaps = a.setup.treasury.as_ref().and_then(|t| t.swaps.as_ref());
    if !(policy.max_trade_share > 0.0 && policy.max_trade_share <= 1.0) {
        return Ok(json!({ "needed": null, "note": "the policy's max_trade_share is not in (0, 1]: no rebalance" }));
    }
    let min_trade = swaps.map(|s| s.min_trade).unwrap_or_else(default_min_trade);
    let p = allonet_treasury::rebalance::rebalance(policy, holdings, min_trade, None);
    if p.trades.is_empty() {
        return Ok(json!({ "needed": false, "note": "every asset is inside its band" }));
    }
    let mut out = json!({ "needed": true, "trades": p.trades, "weights_after": p.after });
    let Some(s) = swaps else {
        out["note"] = json!("no AMM is configured ([treasury.swaps]): the trades are drafted, not executed");
        return Ok(out);
    };
    match swaps_for(a, epoch, s, policy, holdings, &p) {
        Ok(ops) => {
            out["digest"] = json!(ops.digest());
            out["ops"] = serde_json::to_value(&ops).map_err(|e| e.to_string())?;
        }
        Err(why) => {
            out["refused"] = json!(why);
            out["note"] = json!("the rebalance is not proposed: a trade cannot be made within the bounds");
        }
    }
    Ok(out)
}

/// The swaps of a rebalance plan, or why there are none.
fn swaps_for(
    a: &crate::Agent,
    epoch: u64,
    s: &SwapSetup,
    policy: &allonet_treasury::policy::Policy,
    holdings: &BTreeMap<String, f64>,
    p: &allonet_treasury::rebalance::Plan,
) -> Result<Ops, Vec<String>> {
    let one = |m: String| vec![m];
    if s.max_slippage_bp == 0 || s.max_slippage_bp > MAX_SLIPPAGE_BP {
        return Err(one(format!(
            "max_slippage_bp is {}: it must be between 1 and {MAX_SLIPPAGE_BP}",
            s.max_slippage_bp
        )));
    }
    let f = AmmFile::load(&a.dir.join(&s.amm)).map_err(one)?;
    let mut conn = connect(&a.dir, s, false).map_err(one)?;
    let c = conn.chain();
    let chain = |e: allonet_chain::ChainError| vec![format!("the AMM's chain: {e}")];
    if c.chain_id() != f.chain_id {
        return Err(one(format!("the AMM's chain is {} but its file says {}", c.chain_id(), f.chain_id)));
    }
    if !policy.assets.get(&f.quote).is_some_and(|r| r.stable) {
        return Err(one(format!("the AMM's quote asset {} is not a stablecoin of the policy", f.quote)));
    }
    // The file's router must be its factory's, and each token's decimals what the file says.
    let factory = allonet_chain::read(c, f.amm.router, &amm::IUniswapV2Router02::factoryCall {}).map_err(chain)?;
    if factory != f.amm.factory {
        return Err(one(format!(
            "router {} belongs to factory {factory}, not the file's {}",
            f.amm.router, f.amm.factory
        )));
    }
    for (sym, t) in &f.tokens {
        let d =
            allonet_chain::read(c, t.address, &allonet_chain::contracts::PayToken::decimalsCall {}).map_err(chain)?;
        if d != t.decimals {
            return Err(one(format!("{sym} ({}) has {d} decimals on chain, the file says {}", t.address, t.decimals)));
        }
    }
    // The swaps can only land after the block read (the previous epoch's may be in it).
    let from_block = c.block_number().map_err(chain)? + 1;
    let q = f.tokens[&f.quote];
    let total: f64 = holdings.values().sum();
    let slip = s.max_slippage_bp as u128;
    // Reserves (asset, quote) per pool, moved by each swap as the pool would move.
    let mut pools: BTreeMap<String, (U256, U256)> = BTreeMap::new();
    let mut impact: BTreeMap<String, f64> = BTreeMap::new();
    let mut selling: BTreeMap<String, U256> = BTreeMap::new();
    let mut legs = Vec::new();
    let mut refused = Vec::new();
    // Sells first: they raise the stablecoin the buys spend.
    let mut trades = p.trades.clone();
    trades.sort_by(|a, b| a.amount.total_cmp(&b.amount));
    for t in trades.iter().filter(|t| t.asset != f.quote) {
        let Some(tok) = f.tokens.get(&t.asset).copied() else {
            refused.push(format!("{}: no token on the AMM's chain", t.asset));
            continue;
        };
        let Some(reference) = s.reference_prices.get(&t.asset).copied().filter(|r| r.is_finite() && *r > 0.0) else {
            refused.push(format!("{}: no reference price in [treasury.swaps] reference_prices", t.asset));
            continue;
        };
        let r0 = amm::reserves(c, &f.amm, tok.address, q.address).map_err(chain)?;
        let price = price_of(r0.0, r0.1, tok.decimals, q.decimals);
        let gap_bp = (price / reference - 1.0).abs() * 1e4;
        if gap_bp.is_nan() || gap_bp > s.max_deviation_bp as f64 {
            refused.push(format!(
                "{}: the pool prices it at {price:.6}, {gap_bp:.0} bp from the reference {reference} (at most {} bp)",
                t.asset, s.max_deviation_bp
            ));
            continue;
        }
        pools.insert(t.asset.clone(), r0);
        for &tr in &t.tranches {
            if tr.abs() > policy.max_trade_share * total * (1.0 + 1e-9) {
                refused.push(format!("a {} tranche of {tr:.0} is above the policy's largest trade", t.asset));
                continue;
            }
            let (ra, rq) = pools[&t.asset];
            let (sell, buy, amount_in, r_in, r_out) = if tr < 0.0 {
                (t.asset.clone(), f.quote.clone(), units(-tr / reference, tok.decimals), ra, rq)
            } else {
                (f.quote.clone(), t.asset.clone(), units(tr, q.decimals), rq, ra)
            };
            let Some(amount_in) = amount_in else {
                refused.push(format!("{sell}→{buy}: a tranche of {tr} is not a whole, representable amount"));
                continue;
            };
            let expected = amm::amount_out(amount_in, r_in, r_out);
            let spot = amount_in.checked_mul(r_out).map(|x| if r_in.is_zero() { U256::ZERO } else { x / r_in });
            let impact_bp = match spot {
                Some(sp) if !sp.is_zero() && !expected.is_zero() => (1.0 - f64::from(expected) / f64::from(sp)) * 1e4,
                _ => 10_000.0,
            };
            let summed = impact.entry(t.asset.clone()).or_insert(0.0);
            *summed += impact_bp;
            if impact_bp >= slip as f64 || *summed >= 3.0 * slip as f64 {
                refused.push(format!(
                    "{sell}→{buy} tranche of {:.0}: its price impact is {impact_bp:.0} bp ({summed:.0} bp for {} so far), \
                     above the bound of {slip} bp ({} bp summed)",
                    tr.abs(),
                    t.asset,
                    3 * slip
                ));
                continue;
            }
            let min_out = expected * U256::from(10_000 - slip) / U256::from(10_000u64);
            if min_out.is_zero() {
                refused.push(format!("{sell}→{buy}: the least output would be 0"));
                continue;
            }
            let moved = if tr < 0.0 { (ra + amount_in, rq - expected) } else { (ra - expected, rq + amount_in) };
            pools.insert(t.asset.clone(), moved);
            *selling.entry(sell.clone()).or_insert(U256::ZERO) += amount_in;
            let (sell_token, buy_token) = (f.tokens[&sell].address, f.tokens[&buy].address);
            legs.push(Swap {
                sell,
                buy,
                sell_token,
                buy_token,
                amount_in: amount_in.to_string(),
                expected_out: expected.to_string(),
                min_out: min_out.to_string(),
                value: tr.abs(),
                impact_bp: (impact_bp * 100.0).round() / 100.0,
            });
        }
    }
    // Sales the treasury cannot cover (the stablecoin's own sales are covered by the sales before them).
    for (sym, n) in &selling {
        let held = allonet_chain::payout::asset_balance(c, f.tokens[sym].address, f.treasury).map_err(chain)?;
        let raised: U256 = legs.iter().filter(|l| &l.buy == sym).filter_map(|l| l.min_out.parse::<U256>().ok()).sum();
        if *n > held.saturating_add(raised) {
            refused.push(format!(
                "the swaps sell {n} base units of {sym}; the treasury holds {held} (and raises {raised})"
            ));
        }
    }
    if legs.len() > MAX_SWAPS {
        refused.push(format!("{} swaps: at most {MAX_SWAPS} in one rebalance", legs.len()));
    }
    if !refused.is_empty() {
        return Err(refused);
    }
    let deadline = c.timestamp().map_err(chain)? + 7 * 86_400;
    Ok(Ops {
        agent: a.setup.name.clone(),
        epoch,
        chain_id: f.chain_id,
        from_block,
        router: f.amm.router,
        treasury: f.treasury,
        deadline,
        swaps: legs,
    })
}

/// The approved swaps as a Safe Transaction Builder batch from the treasury (`approve`, then the swap, each).
pub fn safe_batch(ops: &Ops, created_at_ms: u64) -> Result<allonet_chain::safe::BatchFile, String> {
    use allonet_chain::safe::{BatchFile, BatchMeta, BatchTransaction};
    let mut txs = Vec::new();
    for (i, s) in ops.swaps.iter().enumerate() {
        let (amount, min_out) = amounts(i, s)?;
        for (to, data) in [
            // Some tokens (USDT) refuse to change a non-zero allowance: clear it first.
            (s.sell_token, amm::approve_calldata(ops.router, U256::ZERO)),
            (s.sell_token, amm::approve_calldata(ops.router, amount)),
            (ops.router, amm::swap_calldata(amount, min_out, s.sell_token, s.buy_token, ops.treasury, ops.deadline)),
        ] {
            txs.push(BatchTransaction {
                to: to.to_checksum(None),
                value: "0".into(),
                data: Some(alloy_primitives::hex::encode_prefixed(data)),
                contract_method: None,
                contract_inputs_values: None,
            });
        }
    }
    Ok(BatchFile {
        version: "1.0".into(),
        chain_id: ops.chain_id.to_string(),
        created_at: created_at_ms,
        meta: BatchMeta {
            name: format!("allonet rebalance {}", &ops.digest().to_string()[..12]),
            description: format!(
                "allonet treasury rebalance {}: {} Uniswap v2 swaps through router {}, each with its least output; \
                 valid until {} (Unix time).",
                ops.digest(),
                ops.swaps.len(),
                ops.router.to_checksum(None),
                ops.deadline
            ),
            tx_builder_version: "1.18.0".into(),
            created_from_safe_address: ops.treasury.to_checksum(None),
            created_from_owner_address: String::new(),
            checksum: None,
        },
        transactions: txs,
    }
    .with_checksum())
}

/// A swap's amount in and least output, parsed.
fn amounts(i: usize, s: &Swap) -> Result<(U256, U256), String> {
    let amount: U256 = s.amount_in.parse().map_err(|_| format!("swap {i}: amount in {:?}", s.amount_in))?;
    let min_out: U256 = s.min_out.parse().map_err(|_| format!("swap {i}: least output {:?}", s.min_out))?;
    if amount.is_zero() || min_out.is_zero() {
        return Err(format!("swap {i}: a zero amount or bound"));
    }
    Ok((amount, min_out))
}

/// The `Swap` events since `from_block` on the pair of `sell`/`buy` that paid `to` at least `min_out` for exactly
/// `amount_in` of `sell`, in chain order: (transaction, block, amount out).
fn landed(
    c: &mut dyn allonet_chain::Chain,
    f: &AmmFile,
    from_block: u64,
    to: Address,
    (sell, buy): (Address, Address),
    (amount_in, min_out): (U256, U256),
) -> Result<Vec<(B256, u64, U256)>, String> {
    use alloy_sol_types::SolEvent;
    let pair = amm::pair(c, &f.amm, sell, buy).map_err(|e| e.to_string())?;
    let token0 = allonet_chain::read(c, pair, &amm::IUniswapV2Pair::token0Call {}).map_err(|e| e.to_string())?;
    let logs = c
        .logs(&allonet_chain::LogFilter {
            address: pair,
            topic0: vec![amm::IUniswapV2Pair::Swap::SIGNATURE_HASH],
            topic1: None,
            // `to` is indexed: only swaps that paid the treasury.
            topic2: Some(B256::left_padding_from(to.as_slice())),
            from_block,
            to_block: None,
        })
        .map_err(|e| e.to_string())?;
    Ok(logs
        .iter()
        .filter_map(|l| {
            let e = l.decode::<amm::IUniswapV2Pair::Swap>()?;
            let (inn, out) = if token0 == sell { (e.amount0In, e.amount1Out) } else { (e.amount1In, e.amount0Out) };
            (e.to == to && inn == amount_in && out >= min_out).then_some((l.tx_hash, l.block, out))
        })
        .collect())
}

/// A swap this agent sent and saw mined: its transaction, block and what the treasury received.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sent {
    tx: B256,
    block: u64,
    amount_out: Option<String>,
}

/// What the treasury received in a mined swap transaction, from its own `Swap` log to the treasury.
fn paid_in(r: &allonet_chain::Receipt, to: Address) -> Option<U256> {
    r.logs
        .iter()
        .filter_map(|l| l.decode::<amm::IUniswapV2Pair::Swap>())
        .filter(|e| e.to == to)
        .map(|e| e.amount0Out.max(e.amount1Out))
        .next()
}

/// Executes the approved swaps from the treasury account (see the module's documentation). `sent` records each
/// swap this agent saw mined (a resumed run never sends it again, whatever the logs say); `allowed` is asked before
/// every transaction (a pause or a veto stops what is not yet sent). Returns what each swap paid.
pub(crate) fn execute(
    dir: &Path,
    s: &SwapSetup,
    ops: &Ops,
    sent_path: &Path,
    allowed: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Value, String> {
    let f = AmmFile::load(&dir.join(&s.amm))?;
    if (f.amm.router, f.treasury, f.chain_id) != (ops.router, ops.treasury, ops.chain_id) {
        return Err("the AMM file no longer names the router, treasury and chain the members approved".into());
    }
    let mut conn = connect(dir, s, true)?;
    let c = conn.chain();
    if c.chain_id() != ops.chain_id {
        return Err(format!("the AMM's chain is {}, the approved swaps are for chain {}", c.chain_id(), ops.chain_id));
    }
    // The pairs are found through the router's own factory, not the file's word.
    let factory =
        allonet_chain::read(c, ops.router, &amm::IUniswapV2Router02::factoryCall {}).map_err(|e| e.to_string())?;
    if factory != f.amm.factory {
        return Err(format!(
            "router {} belongs to factory {factory}, not the AMM file's {}",
            ops.router, f.amm.factory
        ));
    }
    let from = ops.treasury;
    if !c.signers().contains(&from) {
        return Err(format!("no key for the treasury account {from}: set executor_key in [treasury.swaps]"));
    }
    let mut sent: BTreeMap<usize, Sent> = match std::fs::read_to_string(sent_path) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| format!("{}: {e}", sent_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(format!("{}: {e}", sent_path.display())),
    };
    let mut lines = Vec::new();
    let mut stopped = None;
    // Swaps with the same pair and amount in are told apart by order: the `k`-th of them is the `k`-th event that
    // meets the lowest of their bounds.
    type Key = (Address, Address, U256);
    let mut lowest: BTreeMap<Key, U256> = BTreeMap::new();
    for (i, sw) in ops.swaps.iter().enumerate() {
        let (amount, min_out) = amounts(i, sw)?;
        let m = lowest.entry((sw.sell_token, sw.buy_token, amount)).or_insert(min_out);
        *m = (*m).min(min_out);
    }
    let mut seen: BTreeMap<Key, usize> = BTreeMap::new();
    'swaps: for (i, sw) in ops.swaps.iter().enumerate() {
        let (amount, min_out) = amounts(i, sw)?;
        let key = (sw.sell_token, sw.buy_token, amount);
        let k = {
            let n = seen.entry(key).or_insert(0);
            *n += 1;
            *n - 1
        };
        let c = conn.chain();
        if let std::collections::btree_map::Entry::Vacant(slot) = sent.entry(i) {
            let events = landed(c, &f, ops.from_block, from, (sw.sell_token, sw.buy_token), (amount, lowest[&key]))?;
            if let Some(&(tx, block, out)) = events.get(k) {
                slot.insert(Sent { tx, block, amount_out: Some(out.to_string()) });
            }
        }
        if !sent.contains_key(&i) {
            let now = c.timestamp().map_err(|e| e.to_string())?;
            if now >= ops.deadline {
                stopped = Some(json!({ "swap": i, "reason": "the approval's deadline has passed" }));
                break;
            }
            // Stricter than approved, never looser: the pool's fresh quote less the slippage, if that is higher,
            // and half an hour to land.
            let fresh = amm::quote(c, &f.amm, amount, sw.sell_token, sw.buy_token).map_err(|e| e.to_string())?;
            let slip = s.max_slippage_bp.min(MAX_SLIPPAGE_BP) as u64;
            let bound = min_out.max(fresh.saturating_mul(U256::from(10_000 - slip)) / U256::from(10_000u64));
            let deadline = ops.deadline.min(now + 1_800);
            let allowance = allonet_chain::read(
                c,
                sw.sell_token,
                &allonet_chain::contracts::PayToken::allowanceCall { owner: from, spender: ops.router },
            )
            .map_err(|e| e.to_string())?;
            let mut calls = Vec::new();
            if allowance < amount {
                // Some tokens (USDT) refuse to change a non-zero allowance: clear it first.
                if !allowance.is_zero() {
                    calls.push((sw.sell_token, amm::approve_calldata(ops.router, U256::ZERO)));
                }
                calls.push((sw.sell_token, amm::approve_calldata(ops.router, amount)));
            }
            calls.push((ops.router, amm::swap_calldata(amount, bound, sw.sell_token, sw.buy_token, from, deadline)));
            let last = calls.len() - 1;
            for (n, (to, data)) in calls.into_iter().enumerate() {
                if let Err(why) = allowed() {
                    stopped = Some(json!({ "swap": i, "reason": why }));
                    break 'swaps;
                }
                let result = conn.chain().send(allonet_chain::Tx { from, to: Some(to), data, ..Default::default() });
                // The embedded chain's state is written after each transaction, whatever happened.
                conn.save().map_err(|e| e.to_string())?;
                match result {
                    Ok(r) if n == last => {
                        let out = paid_in(&r, from);
                        sent.insert(i, Sent { tx: r.tx_hash, block: r.block, amount_out: out.map(|o| o.to_string()) });
                        let text = serde_json::to_string(&sent).map_err(|e| e.to_string())?;
                        allonet_engine::write_atomic(sent_path, text.as_bytes()).map_err(|e| e.to_string())?;
                        if out.is_none() {
                            // Mined, but no Swap paid the treasury: never sent again, and nothing after it.
                            stopped = Some(json!({ "swap": i, "reason": format!(
                                "transaction {} was mined without a Swap to the treasury", r.tx_hash) }));
                        }
                    }
                    Ok(_) => {}
                    // The pool pays less than the bound (it moved against the treasury), or the deadline passed:
                    // the rest is not sent, and the epoch goes on; a later epoch proposes again at the prices then.
                    Err(allonet_chain::ChainError::Reverted { reason, .. }) => {
                        stopped = Some(json!({ "swap": i, "reason": reason }));
                        break 'swaps;
                    }
                    Err(e) => return Err(format!("swap {i} ({}→{}): {e}", sw.sell, sw.buy)),
                }
            }
        }
        let x = &sent[&i];
        let gas = conn.chain().gas_used(x.tx).map_err(|e| e.to_string())?;
        lines.push(json!({
            "sell": sw.sell, "buy": sw.buy, "amount_in": sw.amount_in, "min_out": sw.min_out,
            "amount_out": x.amount_out, "tx_hash": x.tx, "block": x.block, "gas_used": gas,
        }));
        if stopped.is_some() {
            break;
        }
    }
    Ok(json!({ "executed": lines, "stopped": stopped }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(router: u8, swaps: &[(u8, u8, u64)]) -> Ops {
        Ops {
            agent: "a".into(),
            epoch: 1,
            chain_id: 10,
            from_block: 0,
            router: Address::repeat_byte(router),
            treasury: Address::repeat_byte(9),
            deadline: 1,
            swaps: swaps
                .iter()
                .map(|&(sell, buy, amount)| Swap {
                    sell: format!("T{sell}"),
                    buy: format!("T{buy}"),
                    sell_token: Address::repeat_byte(sell),
                    buy_token: Address::repeat_byte(buy),
                    amount_in: amount.to_string(),
                    expected_out: "1".into(),
                    min_out: "1".into(),
                    value: 1.0,
                    impact_bp: 0.0,
                })
                .collect(),
        }
    }

    #[test]
    fn an_earlier_rebalance_fits_only_in_the_same_direction_at_no_larger_size_on_the_same_amm() {
        let now = ops(1, &[(2, 3, 1_000), (2, 3, 1_000), (4, 3, 500)]);
        assert!(still_fits(&ops(1, &[(2, 3, 1_500), (4, 3, 500)]), &now), "smaller, same pairs");
        assert!(still_fits(&ops(1, &[(2, 3, 2_020)]), &now), "within 1 % of what is wanted now");
        assert!(!still_fits(&ops(1, &[(2, 3, 2_021)]), &now), "more than is wanted now");
        assert!(!still_fits(&ops(1, &[(3, 2, 100)]), &now), "the other way round");
        assert!(!still_fits(&ops(1, &[(5, 3, 100)]), &now), "a token now not sold");
        assert!(!still_fits(&ops(7, &[(2, 3, 100)]), &now), "another router");
    }
}
