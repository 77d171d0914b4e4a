//! Rebalancing the treasury through a real AMM. When the holdings the epoch leaves are outside the policy's bands,
//! the treasury stage drafts the trades back to target (`allonet_treasury::rebalance`: tranches of at most
//! `max_trade_share` of the treasury) and turns each tranche into one Uniswap v2 swap against the treasury's quote
//! stablecoin: sells first, then buys. Every swap is fixed before anyone votes: its exact amount in, the amount the
//! pool would pay after the tranches before it (the whitepaper's rule on the reserves read at the stage,
//! [`allonet_chain::amm::amount_out`]), and its bound, that amount less `max_slippage_bp`; a tranche whose own price
//! impact is above the bound is refused, and the report says why. The list's digest is what the members approve
//! (`Action::ApproveTreasuryOps`).
//!
//! Once approved, the execute stage writes the swaps as a Safe Transaction Builder batch (`approve` then
//! `swapExactTokensForTokens` per swap: for a treasury held by a Safe, whose owners sign it) and, when the setup
//! names the treasury account's key, sends them itself. The router enforces each bound on chain, so a pool moved
//! against the treasury makes the swap revert instead of paying less. Sending is idempotent: the account's nonce
//! when the first swap went out is recorded, and swap `i` is the transactions at that nonce plus `2i` (approve)
//! and `2i + 1` (swap), so a resumed run sends only what has not been mined. What each swap paid is read back
//! from the pairs' `Swap` events. A swap the router refuses (the pool pays less than its bound, or the deadline
//! passed) stops the rebalance there: the rest is not sent, the report says which and why, and the epoch goes on.

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

/// The approved list: where, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ops {
    pub chain_id: u64,
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
        ..Default::default()
    };
    allonet_engine::connect::connect(&spec, None).map(|c| c.0).map_err(|e| e.to_string())
}

fn units(x: f64, decimals: u8) -> U256 {
    // Whole base units, rounded down; f64 holds the tranche to ~1e-16 of its size.
    let scaled = x * 10f64.powi(decimals as i32);
    U256::from(scaled.max(0.0).floor() as u128)
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
/// swaps that make them (see the module's documentation).
pub(crate) fn plan(
    dir: &Path,
    swaps: Option<&SwapSetup>,
    policy: &allonet_treasury::policy::Policy,
    holdings: &BTreeMap<String, f64>,
) -> Result<Value, String> {
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
    let f = AmmFile::load(&dir.join(&s.amm))?;
    let mut conn = connect(dir, s, false)?;
    let c = conn.chain();
    if c.chain_id() != f.chain_id {
        return Err(format!("the AMM's chain is {} but its file says {}", c.chain_id(), f.chain_id));
    }
    if !policy.assets.get(&f.quote).is_some_and(|r| r.stable) {
        return Err(format!("the AMM's quote asset {} is not a stablecoin of the policy", f.quote));
    }
    let q = f.tokens[&f.quote];
    let total: f64 = holdings.values().sum();
    let slip = s.max_slippage_bp.min(10_000) as u128;
    // Reserves (asset, quote) per pool, moved by each swap as the pool would move.
    let mut pools: BTreeMap<String, (U256, U256)> = BTreeMap::new();
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
        if !pools.contains_key(&t.asset) {
            let r = amm::reserves(c, &f.amm, tok.address, q.address).map_err(|e| e.to_string())?;
            pools.insert(t.asset.clone(), r);
        }
        let price = {
            let (ra, rq) = pools[&t.asset];
            price_of(ra, rq, tok.decimals, q.decimals)
        };
        for &tr in &t.tranches {
            if tr.abs() > policy.max_trade_share * total * (1.0 + 1e-9) {
                return Err(format!("a tranche of {tr} is above the policy's largest trade"));
            }
            let (ra, rq) = pools[&t.asset];
            let (sell, buy, amount_in, r_in, r_out) = if tr < 0.0 {
                (t.asset.clone(), f.quote.clone(), units(-tr / price, tok.decimals), ra, rq)
            } else {
                (f.quote.clone(), t.asset.clone(), units(tr, q.decimals), rq, ra)
            };
            let expected = amm::amount_out(amount_in, r_in, r_out);
            let spot = if r_in.is_zero() { U256::ZERO } else { amount_in * r_out / r_in };
            let impact_bp = if spot.is_zero() { 10_000.0 } else { (1.0 - f64::from(expected) / f64::from(spot)) * 1e4 };
            if impact_bp > slip as f64 {
                refused.push(format!(
                    "{sell}→{buy} tranche of {:.0}: its price impact is {impact_bp:.0} bp, above the bound of {slip} bp",
                    tr.abs()
                ));
                continue;
            }
            let min_out = expected * U256::from(10_000 - slip) / U256::from(10_000u64);
            let moved = if tr < 0.0 { (ra + amount_in, rq - expected) } else { (ra - expected, rq + amount_in) };
            pools.insert(t.asset.clone(), moved);
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
    if !refused.is_empty() {
        out["refused"] = json!(refused);
        out["note"] = json!("the rebalance is not proposed: a trade cannot be made within the bounds");
        return Ok(out);
    }
    let deadline = c.timestamp().map_err(|e| e.to_string())? + 7 * 86_400;
    let ops = Ops { chain_id: f.chain_id, router: f.amm.router, treasury: f.treasury, deadline, swaps: legs };
    out["ops"] = serde_json::to_value(&ops).map_err(|e| e.to_string())?;
    out["digest"] = json!(ops.digest());
    Ok(out)
}

/// The approved swaps as a Safe Transaction Builder batch from the treasury (`approve`, then the swap, each).
pub fn safe_batch(ops: &Ops, created_at_ms: u64) -> allonet_chain::safe::BatchFile {
    use allonet_chain::safe::{BatchFile, BatchMeta, BatchTransaction};
    let mut txs = Vec::new();
    for s in &ops.swaps {
        let amount: U256 = s.amount_in.parse().unwrap_or_default();
        let min_out: U256 = s.min_out.parse().unwrap_or_default();
        for (to, data) in [
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
    BatchFile {
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
    .with_checksum()
}

/// Executes the approved swaps from the treasury account (see the module's documentation); `progress` holds the
/// account's nonce and the block when the first went out. `allowed` is asked before every transaction (a pause
/// stops what is not yet sent). Returns what each swap paid, from the chain.
pub(crate) fn execute(
    dir: &Path,
    s: &SwapSetup,
    ops: &Ops,
    progress: &Path,
    allowed: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Value, String> {
    let mut conn = connect(dir, s, true)?;
    if conn.chain().chain_id() != ops.chain_id {
        return Err(format!(
            "the AMM's chain is {}, the approved swaps are for chain {}",
            conn.chain().chain_id(),
            ops.chain_id
        ));
    }
    let from = ops.treasury;
    if !conn.chain().signers().contains(&from) {
        return Err(format!("no key for the treasury account {from}: set executor_key in [treasury.swaps]"));
    }
    #[derive(Serialize, Deserialize)]
    struct Progress {
        start_nonce: u64,
        start_block: u64,
    }
    let p: Progress = match std::fs::read_to_string(progress) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| format!("{}: {e}", progress.display()))?,
        Err(_) => {
            let p = Progress {
                start_nonce: conn.chain().nonce(from).map_err(|e| e.to_string())?,
                start_block: conn.chain().block_number().map_err(|e| e.to_string())?,
            };
            let text = serde_json::to_string(&p).map_err(|e| e.to_string())?;
            allonet_engine::write_atomic(progress, text.as_bytes()).map_err(|e| e.to_string())?;
            p
        }
    };
    let mut stopped = None;
    'swaps: for (i, sw) in ops.swaps.iter().enumerate() {
        let amount: U256 = sw.amount_in.parse().map_err(|_| format!("swap {i}: amount {}", sw.amount_in))?;
        let min_out: U256 = sw.min_out.parse().map_err(|_| format!("swap {i}: bound {}", sw.min_out))?;
        let calls = [
            (sw.sell_token, amm::approve_calldata(ops.router, amount)),
            (ops.router, amm::swap_calldata(amount, min_out, sw.sell_token, sw.buy_token, from, ops.deadline)),
        ];
        for (k, (to, data)) in calls.into_iter().enumerate() {
            let at = p.start_nonce + 2 * i as u64 + k as u64;
            let now = conn.chain().nonce(from).map_err(|e| e.to_string())?;
            if now > at {
                continue;
            }
            if now < at {
                return Err(format!(
                    "the treasury account's nonce is {now}, but swap {i} expects {at}: was a transaction lost?"
                ));
            }
            allowed()?;
            let tx = allonet_chain::Tx { from, to: Some(to), data, ..Default::default() };
            let sent = conn.chain().send(tx);
            // The embedded chain's state is written after each transaction, whatever happened.
            conn.save().map_err(|e| e.to_string())?;
            match sent {
                Ok(_) => {}
                // The pool pays less than the bound (it moved against the treasury), or the approval expired: the
                // rest is not sent, and the epoch goes on; a later epoch proposes again at the prices then.
                Err(allonet_chain::ChainError::Reverted { reason, .. }) => {
                    stopped = Some(json!({ "swap": i, "reason": reason }));
                    break 'swaps;
                }
                Err(e) => return Err(format!("swap {i} ({}→{}): {e}", sw.sell, sw.buy)),
            }
        }
    }
    // What each swap paid, from the pairs' Swap events to the treasury (in order).
    let amm = AmmFile::load(&dir.join(&s.amm))?.amm;
    let c = conn.chain();
    let mut lines = Vec::new();
    let mut seen: BTreeMap<Address, Vec<allonet_chain::LogRecord>> = BTreeMap::new();
    let router_topic = B256::left_padding_from(ops.router.as_slice());
    let mut next: BTreeMap<Address, usize> = BTreeMap::new();
    for sw in &ops.swaps {
        let pair = amm::pair(c, &amm, sw.sell_token, sw.buy_token).map_err(|e| e.to_string())?;
        if let std::collections::btree_map::Entry::Vacant(slot) = seen.entry(pair) {
            use alloy_sol_types::SolEvent;
            let logs = c
                .logs(&allonet_chain::LogFilter {
                    address: pair,
                    topic0: vec![amm::IUniswapV2Pair::Swap::SIGNATURE_HASH],
                    topic1: Some(router_topic),
                    from_block: p.start_block,
                    to_block: None,
                })
                .map_err(|e| e.to_string())?;
            let mine = logs
                .into_iter()
                .filter(|l| l.decode::<amm::IUniswapV2Pair::Swap>().is_some_and(|e| e.to == from))
                .collect();
            slot.insert(mine);
        }
        let k = next.entry(pair).or_insert(0);
        let log = seen[&pair].get(*k).cloned();
        *k += 1;
        let (paid, tx, block, gas) = match &log {
            Some(l) => {
                let e = l.decode::<amm::IUniswapV2Pair::Swap>().expect("filtered");
                let gas = c.gas_used(l.tx_hash).map_err(|e| e.to_string())?;
                (e.amount0Out.max(e.amount1Out), Some(l.tx_hash), Some(l.block), gas)
            }
            None => (U256::ZERO, None, None, None),
        };
        lines.push(json!({
            "sell": sw.sell, "buy": sw.buy, "amount_in": sw.amount_in, "min_out": sw.min_out,
            "amount_out": paid.to_string(), "tx_hash": tx, "block": block, "gas_used": gas,
        }));
    }
    if let Some(st) = &stopped {
        let i = st["swap"].as_u64().unwrap_or(0) as usize;
        lines.truncate(i);
    }
    Ok(json!({ "executed": lines, "stopped": stopped }))
}
