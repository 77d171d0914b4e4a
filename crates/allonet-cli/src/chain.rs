//! `allonet chain ...` and `allonet payout`: deploy the contracts, build payout plans, pay them on the
//! embedded EVM or any chain over JSON-RPC (several at once), report status, export Safe batches.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use allonet_chain::anvil::DEV_KEYS;
use allonet_chain::contracts::AIAllocator;
use allonet_chain::deploy::{deploy, Asset, DeployConfig, Deployment};
use allonet_chain::payout::{execute_checked, paid_from_events, PayoutOptions, PayoutReport, Target};
use allonet_chain::plan::{read_address_book, Payment, PayoutPlan, PlanToken};
use allonet_chain::rpc::{load_signer, signer_from_hex};
use allonet_chain::{read, Chain, Embedded, Rpc};
use allonet_core::{Token, TokenAmount};
use alloy_primitives::{Address, U256};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::output::{right, table, write_atomic};

#[derive(clap::Subcommand)]
pub enum ChainCommand {
    /// Deploy the governance token, timelock, governor, payout token and AIAllocator, wired so that the
    /// timelock (governance) owns the allocator and only a vote changes the agent's caps.
    #[command(
        after_help = "Examples:\n  allonet chain deploy --embedded -o deployment.json\n  allonet chain deploy --embedded --asset native --epoch-cap 100 --recipient-cap 5 -o eth.json\n  ALLONET_KEY=0x... allonet chain deploy --rpc http://127.0.0.1:8545 --chain-id 31337 --agent 0x... -o deployment.json"
    )]
    Deploy(DeployArgs),
    /// Build a payout plan from a result file (round/retro, written with -o) and an address book, or from a
    /// CSV of recipients and amounts.
    #[command(
        after_help = "Examples:\n  allonet round gifts.csv --pool 10000 --token USDC --decimals 6 -o result.json\n  allonet chain plan --result result.json --addresses addresses.csv -o plan.json\n  allonet chain plan --payments payouts.csv --token USDC --decimals 6 -o plan.json"
    )]
    Plan(PlanArgs),
    /// Show a deployment: roles, caps, what the agent may still spend this epoch, balance, and a plan's progress.
    #[command(after_help = "Example:\n  allonet chain status --deployment deployment.json --plan plan.json")]
    Status(StatusArgs),
    /// Write a plan as a Safe Transaction Builder batch file, for DAOs that pay through a multisig.
    #[command(
        name = "export-safe",
        after_help = "Examples:\n  allonet chain export-safe plan.json --safe 0xSAFE --chain-id 10 --token 0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85 -o batch.json\n  allonet chain export-safe plan.json --safe 0xSAFE --chain-id 1 --native -o batch.json\n  allonet chain export-safe plan.json --safe 0xSAFE --deployment deployment.json --via-allocator -o batch.json"
    )]
    ExportSafe(ExportSafeArgs),
}

/// Where a chain is: the embedded EVM (state file) or a JSON-RPC endpoint.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConnectArgs {
    /// Use the embedded EVM (revm, in-process), state kept in --state.
    #[arg(long, conflicts_with = "rpc")]
    pub embedded: bool,
    /// Embedded EVM state file.
    #[arg(long, value_name = "FILE", default_value = ".allonet/chain.json")]
    pub state: PathBuf,
    /// JSON-RPC endpoint of any EVM chain.
    #[arg(long, value_name = "URL")]
    pub rpc: Option<String>,
    /// Refuse to work unless the endpoint reports this chain id.
    #[arg(long)]
    pub chain_id: Option<u64>,
    /// Hex private key file of the sender (else the ALLONET_KEY environment variable). Not used with --embedded.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// Where a deployment lives, recorded in the deployment file so later commands reconnect by themselves.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Embedded { state: PathBuf },
    Rpc { url: String },
}

/// A deployment file: where and what.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DeploymentFile {
    pub schema: String,
    pub endpoint: Endpoint,
    #[serde(flatten)]
    pub deployment: Deployment,
}

const DEPLOYMENT_SCHEMA: &str = "allonet.deployment/1";

impl DeploymentFile {
    pub fn load(path: &Path) -> Result<Self> {
        let f: DeploymentFile = allonet_core::input::read_json(path).map_err(|e| anyhow!("{e}"))?;
        if f.schema != DEPLOYMENT_SCHEMA {
            bail!("{}: schema is {:?}, expected {DEPLOYMENT_SCHEMA:?}", path.display(), f.schema);
        }
        Ok(f)
    }
}

/// An open chain: embedded (saved on drop of the session) or RPC.
pub enum Open {
    Embedded(Embedded),
    Rpc(Rpc),
}

impl Open {
    pub fn chain(&mut self) -> &mut dyn Chain {
        match self {
            Open::Embedded(e) => e,
            Open::Rpc(r) => r,
        }
    }
    pub fn save(&self) -> Result<()> {
        if let Open::Embedded(e) = self {
            e.save()?;
        }
        Ok(())
    }
}

fn dev_address(i: usize) -> Address {
    signer_from_hex(DEV_KEYS[i]).expect("dev key").address()
}

/// Open a chain from flags; embedded chains fund anvil's two dev accounts on first use. On RPC the key comes
/// from `--key-file`, else from the environment variable `key_env`.
pub fn open(c: &ConnectArgs, endpoint: Option<&Endpoint>) -> Result<(Open, Endpoint)> {
    open_with_key(c, endpoint, "ALLONET_KEY")
}

/// [`open`] with the key read from another environment variable.
pub fn open_with_key(c: &ConnectArgs, endpoint: Option<&Endpoint>, key_env: &str) -> Result<(Open, Endpoint)> {
    let endpoint = match (&c.rpc, c.embedded, endpoint) {
        (Some(url), _, _) => Endpoint::Rpc { url: url.clone() },
        (None, true, _) => Endpoint::Embedded { state: c.state.clone() },
        (None, false, Some(e)) => e.clone(),
        (None, false, None) => Endpoint::Embedded { state: c.state.clone() },
    };
    let open = match &endpoint {
        Endpoint::Embedded { state } => {
            if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let mut e = Embedded::open(state)?;
            for i in 0..DEV_KEYS.len() {
                let a = dev_address(i);
                if !e.signers().contains(&a) {
                    e.fund(a, U256::from(10u64).pow(U256::from(24)));
                }
            }
            Open::Embedded(e)
        }
        Endpoint::Rpc { url } => {
            // Reading needs no key; sending without one is refused by the payout check.
            let signers = match (&c.key_file, std::env::var(key_env)) {
                (None, Err(_)) => vec![],
                _ => vec![load_signer(c.key_file.as_deref(), key_env)?],
            };
            Open::Rpc(Rpc::connect(url, c.chain_id, signers)?)
        }
    };
    Ok((open, endpoint))
}

#[derive(clap::Args, Clone, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Payout asset: `native` (ETH), an ERC-20 address, or `new:SYMBOL:DECIMALS:SUPPLY` to deploy a PayToken
    /// minted to the deployer (SUPPLY in whole tokens).
    #[arg(long, default_value = "new:USDC:6:1000000000")]
    pub asset: String,
    /// Agent address (may pay within caps). Default: the sender on RPC, anvil's second dev account embedded.
    #[arg(long)]
    pub agent: Option<String>,
    /// Guardian address (may pause). Default: the sender.
    #[arg(long)]
    pub guardian: Option<String>,
    /// Seconds per cap epoch.
    #[arg(long, default_value_t = 86_400)]
    pub epoch_length: u64,
    /// Agent cap per epoch, whole tokens.
    #[arg(long, default_value = "1000000")]
    pub epoch_cap: String,
    /// Agent cap per recipient per epoch, whole tokens.
    #[arg(long, default_value = "50000")]
    pub recipient_cap: String,
    /// Move this many whole tokens from the deployer into the allocator.
    #[arg(long, default_value = "1000000")]
    pub fund: String,
    /// Governor: voting delay and period in blocks, quorum percent; timelock delay in seconds.
    #[arg(long, default_value_t = 1)]
    pub voting_delay: u64,
    #[arg(long, default_value_t = 50)]
    pub voting_period: u64,
    #[arg(long, default_value_t = 4)]
    pub quorum_percent: u64,
    #[arg(long, default_value_t = 172_800)]
    pub timelock_delay: u64,
    /// CSV `address,amount` of governance token (ALLO, 18 decimals, whole tokens) holders; default: 1,000,000
    /// to the deployer alone, which makes every vote the deployer's (fine for trials, not for a DAO).
    #[arg(long, value_name = "FILE")]
    pub holders: Option<PathBuf>,
    /// Keep the deployer as the allocator's owner instead of handing it to the timelock (testing only).
    #[arg(long)]
    pub keep_owner: bool,
    /// Print the deployment as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the deployment file (addresses and endpoint) to FILE.
    #[arg(short = 'o', long = "out", value_name = "FILE", default_value = "deployment.json")]
    pub out: PathBuf,
}

fn parse_address(s: &str, what: &str) -> Result<Address> {
    allonet_core::Address::parse(s).map(|a| a.0).map_err(|e| anyhow!("{what}: {e}"))
}

fn whole(s: &str, decimals: u8, what: &str) -> Result<U256> {
    Ok(Token::new("", decimals).parse(s).map_err(|e| anyhow!("{what} {s:?}: {e}"))?.units())
}

pub fn run_deploy(a: &DeployArgs) -> Result<()> {
    let (mut open, endpoint) = open(&a.connect, None)?;
    let (d, steps) = deploy_with(&mut open, a)?;
    open.save()?;
    let file = DeploymentFile { schema: DEPLOYMENT_SCHEMA.into(), endpoint, deployment: d.clone() };
    write_atomic(&a.out, (serde_json::to_string_pretty(&file)? + "\n").as_bytes())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"deployment": file, "transactions": steps}))?);
        return Ok(());
    }
    println!("Deployed on {} (chain {}), compiler {}", open.chain().describe(), d.chain_id, d.compiler);
    let mut t = table(&["step", "tx", "gas"]);
    for s in &steps {
        t.add_row(vec![s.what.clone(), short(&s.tx_hash), crate::output::group_thousands(&s.gas_used.to_string())]);
    }
    right(&mut t, &[2]);
    println!("{t}");
    let mut t = table(&["contract", "address"]);
    for (n, addr) in [
        ("AIAllocator", d.allocator),
        (&format!("payout asset ({})", d.asset_symbol), d.asset),
        ("AlloToken (votes)", d.gov_token),
        ("TimelockController", d.timelock),
        ("AlloGovernor", d.governor),
        ("agent", d.agent),
        ("guardian", d.guardian),
    ] {
        t.add_row(vec![n.to_string(), addr.to_string()]);
    }
    println!("{t}");
    println!(
        "deployment written to {}; next: `allonet payout plan.json --deployment {}`",
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

fn deploy_with(open: &mut Open, a: &DeployArgs) -> Result<(Deployment, Vec<allonet_chain::deploy::Step>)> {
    let embedded = matches!(open, Open::Embedded(_));
    let chain = open.chain();
    let sender = *chain.signers().first().ok_or_else(|| anyhow!("no sender"))?;
    let asset = match a.asset.as_str() {
        "native" | "eth" | "ETH" => Asset::Native,
        s if s.starts_with("new:") => {
            let parts: Vec<&str> = s.split(':').collect();
            if parts.len() != 4 {
                bail!("--asset new:SYMBOL:DECIMALS:SUPPLY, e.g. new:USDC:6:1000000000 (got {s:?})");
            }
            let decimals: u8 =
                parts[2].parse().map_err(|_| anyhow!("--asset: decimals {:?} is not 0..=255", parts[2]))?;
            Asset::NewToken {
                symbol: parts[1].to_string(),
                decimals,
                supply: whole(parts[3], decimals, "--asset supply")?,
            }
        }
        s => Asset::Erc20(parse_address(s, "--asset")?),
    };
    let decimals = match &asset {
        Asset::Native => 18,
        Asset::NewToken { decimals, .. } => *decimals,
        Asset::Erc20(t) => read(chain, *t, &allonet_chain::contracts::PayToken::decimalsCall {})
            .map_err(|e| anyhow!("--asset {t}: cannot read decimals(): {e}"))?,
    };
    let agent = match &a.agent {
        Some(s) => parse_address(s, "--agent")?,
        None if embedded => dev_address(1),
        None => sender,
    };
    let guardian = match &a.guardian {
        Some(s) => parse_address(s, "--guardian")?,
        None => sender,
    };
    let cfg = DeployConfig {
        deployer: sender,
        agent,
        guardian,
        asset,
        epoch_length: a.epoch_length,
        epoch_cap: whole(&a.epoch_cap, decimals, "--epoch-cap")?,
        recipient_cap: whole(&a.recipient_cap, decimals, "--recipient-cap")?,
        holders: match &a.holders {
            None => vec![(sender, whole("1000000", 18, "supply")?)],
            Some(p) => read_holders(p)?,
        },
        voting_delay: a.voting_delay,
        voting_period: a.voting_period,
        quorum_percent: a.quorum_percent,
        timelock_delay: a.timelock_delay,
        fund: whole(&a.fund, decimals, "--fund")?,
        hand_to_timelock: !a.keep_owner,
    };
    Ok(deploy(chain, &cfg)?)
}

/// Exact amount with thousands separators (payouts are never rounded for display).
fn exact(token: &Token, units: U256) -> String {
    crate::output::group_thousands(&token.format(TokenAmount(units)))
}

/// `address,amount` rows (whole ALLO tokens), each address once.
fn read_holders(path: &Path) -> Result<Vec<(Address, U256)>> {
    let t = allonet_core::Table::read(path)?;
    let a = t.require_one_of(&["address", "holder", "account"], "address")?;
    let n = t.require_one_of(&["amount", "balance", "tokens"], "amount")?;
    let mut out: Vec<(Address, U256)> = Vec::new();
    for row in t.rows() {
        let addr = allonet_core::Address::parse(row.get(a)).map_err(|e| t.error(row, a, e.to_string()))?.0;
        let amount = Token::new("ALLO", 18).parse(row.get(n)).map_err(|e| t.error(row, n, e.to_string()))?.units();
        if out.iter().any(|(x, _)| *x == addr) {
            return Err(t.error(row, a, format!("{addr} listed twice")).into());
        }
        out.push((addr, amount));
    }
    if out.is_empty() {
        bail!("{}: no holders", path.display());
    }
    Ok(out)
}

fn short(h: &str) -> String {
    if h.len() > 14 {
        format!("{}…{}", &h[..10], &h[h.len() - 4..])
    } else {
        h.to_string()
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct PlanArgs {
    /// A result file written by `allonet round -o` or `allonet retro -o`.
    #[arg(long, value_name = "FILE", conflicts_with = "payments", requires = "addresses")]
    pub result: Option<PathBuf>,
    /// CSV `id,address[,chain]`: who receives each project's payment (and on which chain).
    #[arg(long, value_name = "FILE")]
    pub addresses: Option<PathBuf>,
    /// CSV `recipient,amount[,chain][,label]` with amounts in whole tokens (use --token and --decimals).
    #[arg(long, value_name = "FILE")]
    pub payments: Option<PathBuf>,
    /// Token symbol and decimals for --payments.
    #[arg(long, default_value = "USDC")]
    pub token: String,
    #[arg(long, default_value_t = 6)]
    pub decimals: u8,
    /// Write the plan to FILE.
    #[arg(short = 'o', long = "out", value_name = "FILE", default_value = "plan.json")]
    pub out: PathBuf,
}

/// Lines of a result file: (project, base units) and the token, whatever command wrote it.
fn result_lines(v: &serde_json::Value) -> Option<(Vec<(String, String)>, PlanToken)> {
    fn token(v: &serde_json::Value) -> Option<PlanToken> {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(t) = m.get("token") {
                    if let (Some(s), Some(d)) =
                        (t.get("symbol").and_then(|s| s.as_str()), t.get("decimals").and_then(|d| d.as_u64()))
                    {
                        return Some(PlanToken { symbol: s.to_string(), decimals: d as u8 });
                    }
                }
                m.values().find_map(token)
            }
            _ => None,
        }
    }
    fn lines(v: &serde_json::Value) -> Option<Vec<(String, String)>> {
        match v {
            serde_json::Value::Array(a) if !a.is_empty() => {
                let rows: Option<Vec<(String, String)>> = a
                    .iter()
                    .map(|x| {
                        let id = x.get("project").or_else(|| x.get("id"))?.as_str()?;
                        let amt = x.get("matched").or_else(|| x.get("amount"))?.as_str()?;
                        Some((id.to_string(), amt.to_string()))
                    })
                    .collect();
                rows
            }
            serde_json::Value::Object(m) => m.values().find_map(lines),
            _ => None,
        }
    }
    Some((lines(v)?, token(v)?))
}

pub fn run_plan(a: &PlanArgs) -> Result<()> {
    let plan = build_plan(a)?;
    plan.save(&a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
    let token = Token::new(plan.token.symbol.clone(), plan.token.decimals);
    let chains: std::collections::BTreeSet<_> =
        plan.payments.iter().map(|p| p.chain.clone().unwrap_or_else(|| "default".into())).collect();
    println!(
        "plan {} : {} payments, {} {} on {} chain(s) ({}) -> {}",
        plan.digest,
        plan.payments.len(),
        crate::output::show_amount(&token, plan.total, 2),
        plan.token.symbol,
        chains.len(),
        chains.into_iter().collect::<Vec<_>>().join(", "),
        a.out.display()
    );
    Ok(())
}

fn build_plan(a: &PlanArgs) -> Result<PayoutPlan> {
    if let Some(rf) = &a.result {
        let file: crate::output::ResultFile = allonet_core::input::read_json(rf).map_err(|e| anyhow!("{e}"))?;
        let (lines, token) = result_lines(&file.result).ok_or_else(|| {
            anyhow!("{}: no payout lines (project + amount) and token found in the result", rf.display())
        })?;
        let book = read_address_book(a.addresses.as_deref().expect("clap requires --addresses"))?;
        let mut payments = Vec::new();
        let mut missing = Vec::new();
        for (id, units) in lines {
            let amount =
                TokenAmount(units.parse::<U256>().map_err(|_| anyhow!("{}: amount {units:?} for {id}", rf.display()))?);
            if amount.is_zero() {
                continue;
            }
            match book.get(&id) {
                Some((addr, chain)) => {
                    payments.push(Payment { recipient: addr.clone(), amount, chain: chain.clone(), label: Some(id) })
                }
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            bail!(
                "{} projects with a payout have no address in the address book: {}",
                missing.len(),
                missing.join(", ")
            );
        }
        return Ok(PayoutPlan::new(token, Some(file.output_digest), payments)?);
    }
    let Some(path) = &a.payments else { bail!("give --result with --addresses, or --payments") };
    let t = allonet_core::Table::read(path)?;
    let r = t.require_one_of(&["recipient", "address"], "recipient")?;
    let amt = t.require_one_of(&["amount"], "amount")?;
    let chain = t.find_column(&["chain"]);
    let label = t.find_column(&["label", "project", "id"]);
    let token = Token::new(a.token.clone(), a.decimals);
    let mut payments = Vec::new();
    for row in t.rows() {
        let addr = allonet_core::Address::parse(row.get(r)).map_err(|e| t.error(row, r, e.to_string()))?;
        let amount = token.parse(row.get(amt)).map_err(|e| t.error(row, amt, e.to_string()))?;
        payments.push(Payment {
            recipient: addr.to_checksum(),
            amount,
            chain: chain.map(|c| row.get(c).to_string()).filter(|c| !c.is_empty()),
            label: label.map(|c| row.get(c).to_string()).filter(|c| !c.is_empty()),
        });
    }
    Ok(PayoutPlan::new(PlanToken { symbol: a.token.clone(), decimals: a.decimals }, None, payments)?)
}

#[derive(clap::Args, Clone, Debug)]
pub struct PayoutArgs {
    /// The payout plan (from `allonet chain plan`).
    pub plan: PathBuf,
    /// Deployment file of the default chain (payments without a `chain`).
    #[arg(long, value_name = "FILE", default_value = "deployment.json")]
    pub deployment: PathBuf,
    /// TOML naming the chains a plan's payments go to: `[chains.NAME] deployment = "..."`, optional `rpc`,
    /// `chain_id`, `key_file`, `key_env`.
    #[arg(long, value_name = "FILE")]
    pub chains: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Pay as the allocator's `agent` (capped) or its `owner` (embedded only; on RPC the key decides).
    #[arg(long = "as", default_value = "agent", value_parser = ["agent", "owner"])]
    pub role: String,
    /// Target gas per batch transaction.
    #[arg(long, default_value_t = 15_000_000)]
    pub batch_gas: u64,
    /// At most this many recipients per batch (0 = as many as the gas allows).
    #[arg(long, default_value_t = 0)]
    pub max_batch: usize,
    /// Wait between batches, milliseconds (for rate-limited endpoints).
    #[arg(long, default_value_t = 0)]
    pub interval_ms: u64,
    /// Check the plan against the chain and size the batches; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave out this recipient (repeatable), e.g. one the token refuses; the plan and its digest stay the
    /// same, so a later run without --skip pays it and nobody else twice.
    #[arg(long, value_name = "ADDRESS")]
    pub skip: Vec<String>,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML report (gas per batch, every transaction) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// The payout as a self-contained page: a bar per batch (gas), and every batch with its transaction.
fn payout_html(plan: &PayoutPlan, token: &Token, reports: &[(String, PayoutReport)], skip: &[Address]) -> String {
    use crate::html::{report, Bar};
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for (chain, r) in reports {
        for b in &r.batches {
            bars.push(Bar {
                label: format!("{chain} · batch {} · {} recipients", b.index, b.count),
                value: b.gas_used as f64,
                text: format!("{} gas ({}/recipient)", b.gas_used, b.gas_used / b.count.max(1) as u64),
            });
            rows.push(vec![
                chain.clone(),
                b.index.to_string(),
                b.count.to_string(),
                exact(token, b.total),
                b.gas_used.to_string(),
                b.tx_hash.map(|h| h.to_string()).unwrap_or_else(|| "(dry run)".into()),
            ]);
        }
    }
    let mut summary = vec![format!(
        "plan {} · {} payments · {} {}",
        plan.digest,
        plan.payments.len(),
        exact(token, plan.total.units()),
        token.symbol
    )];
    for (chain, r) in reports {
        summary.push(format!(
            "chain {chain} (id {}): paid now {} {} to {} recipients in {} batches, {} already paid before, gas {}; on-chain digest {}",
            r.chain_id,
            exact(token, r.paid_now),
            token.symbol,
            r.recipients_now,
            r.batches.len(),
            r.already_paid,
            r.gas_used,
            r.onchain_digest.map(|d| d.to_string()).unwrap_or_else(|| "-".into())
        ));
    }
    if !skip.is_empty() {
        summary.push(format!("skipped: {}", skip.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")));
    }
    report(
        "allonet payout",
        &summary,
        "Gas per batch",
        &bars,
        &["chain", "batch", "recipients", "amount", "gas", "transaction"],
        &rows,
    )
}

/// `[chains.NAME]` entries of a chains config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ChainsFile {
    chains: BTreeMap<String, ChainEntry>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct ChainEntry {
    deployment: PathBuf,
    rpc: Option<String>,
    /// Embedded EVM state file (when there is no `rpc`).
    state: Option<PathBuf>,
    chain_id: Option<u64>,
    key_file: Option<PathBuf>,
    key_env: Option<String>,
}

pub fn run_payout(a: &PayoutArgs) -> Result<()> {
    let plan = PayoutPlan::load(&a.plan)?;
    let mut groups = plan.by_chain();
    let skip: Vec<Address> = a.skip.iter().map(|s| parse_address(s, "--skip")).collect::<Result<_>>()?;
    for s in &skip {
        if !groups.values().flatten().any(|p| p.recipient == *s) {
            bail!("--skip {s}: not a recipient of this plan");
        }
    }
    for pays in groups.values_mut() {
        pays.retain(|p| !skip.contains(&p.recipient));
    }
    groups.retain(|_, pays| !pays.is_empty());
    let chains: Option<ChainsFile> = match &a.chains {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            Some(toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    // Resolve every chain first: a plan naming an unknown chain is refused before anything is sent.
    let base = a.chains.as_ref().and_then(|p| p.parent()).map(Path::to_path_buf).unwrap_or_default();
    let mut targets = Vec::new();
    for (name, pays) in &groups {
        let (dep_path, connect, key_env) = match name {
            None => (a.deployment.clone(), a.connect.clone(), "ALLONET_KEY".to_string()),
            Some(n) => {
                let entry = chains
                    .as_ref()
                    .and_then(|c| c.chains.get(n))
                    .ok_or_else(|| {
                        anyhow!(
                            "the plan pays on chain {n:?}, which {} does not define",
                            a.chains
                                .as_ref()
                                .map(|p| p.display().to_string())
                                .unwrap_or_else(|| "no --chains file".into())
                        )
                    })?
                    .clone();
                if let Some(env) = &entry.key_env {
                    if entry.key_file.is_none() && std::env::var(env).is_err() {
                        bail!("chain {n:?}: environment variable {env} (its key) is not set");
                    }
                }
                let connect = ConnectArgs {
                    // No rpc and no state: reconnect where the deployment file says it lives.
                    embedded: entry.rpc.is_none() && entry.state.is_some(),
                    rpc: entry.rpc.clone(),
                    chain_id: entry.chain_id,
                    key_file: entry.key_file.as_ref().map(|k| base.join(k)),
                    state: entry.state.as_ref().map(|p| base.join(p)).unwrap_or_else(|| a.connect.state.clone()),
                };
                let key_env = entry.key_env.clone().unwrap_or_else(|| "ALLONET_KEY".into());
                (base.join(&entry.deployment), connect, key_env)
            }
        };
        let dep = DeploymentFile::load(&dep_path)?;
        targets.push((name.clone(), dep, connect, pays.clone(), key_env));
    }
    let opts = PayoutOptions {
        batch_gas: a.batch_gas,
        max_batch: a.max_batch,
        interval: Duration::from_millis(a.interval_ms),
        dry_run: a.dry_run,
    };
    let token = Token::new(plan.token.symbol.clone(), plan.token.decimals);
    // Connect to every chain and check its part of the plan before paying on any of them.
    let mut ready = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (name, dep, connect, pays, key_env) in targets {
        let label = name.clone().unwrap_or_else(|| "default".into());
        let (mut open, _) =
            open_with_key(&connect, Some(&dep.endpoint), &key_env).map_err(|e| anyhow!("chain {label:?}: {e:#}"))?;
        let d = &dep.deployment;
        if open.chain().chain_id() != d.chain_id {
            bail!(
                "chain {label:?}: the endpoint is chain {} but the deployment is on chain {}",
                open.chain().chain_id(),
                d.chain_id
            );
        }
        if d.asset_decimals != plan.token.decimals {
            bail!(
                "chain {label:?}: the plan pays {} ({} decimals) but the allocator pays {} ({} decimals)",
                plan.token.symbol,
                plan.token.decimals,
                d.asset_symbol,
                d.asset_decimals
            );
        }
        let payer = match (&open, a.role.as_str()) {
            (Open::Embedded(_), "owner") => read(open.chain(), d.allocator, &AIAllocator::ownerCall {})?,
            (Open::Embedded(_), _) => d.agent,
            (Open::Rpc(r), _) => *r
                .signers()
                .first()
                .ok_or_else(|| anyhow!("chain {label:?}: no signing key (set {key_env} or pass --key-file)"))?,
        };
        let target = Target { allocator: d.allocator, payer, from_block: d.from_block };
        if !seen.insert((d.chain_id, d.allocator)) {
            bail!(
                "chain {label:?} resolves to allocator {} on chain {}, which another group of this plan already uses: \
                 give each payment one chain name",
                d.allocator,
                d.chain_id
            );
        }
        let status = allonet_chain::payout::check(open.chain(), &target, plan.digest_bytes(), &pays)
            .map_err(|e| anyhow!("chain {label:?}: {e}"))?;
        ready.push((label, open, dep, target, pays, status));
    }
    let mut reports = Vec::new();
    for (label, mut open, dep, target, pays, status) in ready {
        let d = &dep.deployment;
        let payer = target.payer;
        let total: usize = pays.len();
        let bar = if std::io::stderr().is_terminal() && !a.json {
            ProgressBar::new(total as u64)
        } else {
            ProgressBar::hidden()
        };
        // Without a terminal (logs, CI) each batch is printed as it lands; with one, a bar and a table at the end.
        let streamed = bar.is_hidden();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg} [{bar:30}] {pos}/{len} recipients")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_message(format!("paying on {label}"));
        let mut on_batch = |b: &allonet_chain::payout::BatchReport, s: &allonet_chain::payout::PlanStatus| {
            if bar.position() == 0 {
                bar.set_position(s.paid_recipients as u64);
            }
            bar.inc(b.count as u64);
            if !a.json && !bar.is_hidden() {
                return;
            }
            if !a.json {
                println!(
                    "  batch {:>3}: {:>5} recipients, {} {}, gas {}, tx {}",
                    b.index,
                    b.count,
                    exact(&token, b.total),
                    token.symbol,
                    crate::output::group_thousands(&b.gas_used.to_string()),
                    b.tx_hash.map(|h| short(&h.to_string())).unwrap_or_else(|| "(dry run)".into())
                );
            }
        };
        if !a.json {
            println!("chain {label}: {} · allocator {} · paying as {payer}", open.chain().describe(), d.allocator);
        }
        let result = execute_checked(open.chain(), &target, plan.digest_bytes(), &status, &opts, &mut on_batch);
        bar.finish_and_clear();
        open.save()?;
        let report = result.map_err(|e| anyhow!("chain {label}: {e}"))?;
        if !a.json {
            print_report(&report, &token, &plan, streamed);
        }
        reports.push((label, report));
    }
    if let Some(path) = &a.html {
        write_atomic(path, payout_html(&plan, &token, &reports, &skip).as_bytes())?;
    }
    if a.json {
        let v: Vec<_> = reports.iter().map(|(n, r)| serde_json::json!({"chain": n, "report": r})).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"plan": plan.digest, "chains": v}))?);
    }
    Ok(())
}

fn print_report(r: &PayoutReport, token: &Token, plan: &PayoutPlan, streamed: bool) {
    if r.batches.is_empty() {
        println!(
            "  nothing to send: all {} recipients of this chain were already paid under plan {}",
            r.already_paid, plan.digest
        );
    } else if !streamed {
        let mut t = table(&["batch", "recipients", "amount", "gas", "gas/recipient", "tx"]);
        for b in &r.batches {
            t.add_row(vec![
                b.index.to_string(),
                b.count.to_string(),
                exact(token, b.total),
                crate::output::group_thousands(&b.gas_used.to_string()),
                crate::output::group_thousands(&(b.gas_used / b.count.max(1) as u64).to_string()),
                b.tx_hash.map(|h| short(&h.to_string())).unwrap_or_else(|| "(dry run)".into()),
            ]);
        }
        right(&mut t, &[0, 1, 2, 3, 4]);
        println!("{t}");
    }
    if !r.batches.is_empty() {
        println!(
            "  paid now {} {} to {} recipients ({} already paid before this run), gas {}",
            exact(token, r.paid_now),
            token.symbol,
            r.recipients_now,
            r.already_paid,
            crate::output::group_thousands(&r.gas_used.to_string())
        );
    }
    match r.onchain_digest {
        Some(d) => println!("  on-chain plan digest {d} (matches the plan: {})", d == plan.digest_bytes()),
        None if r.batches.iter().any(|b| b.tx_hash.is_none()) => println!("  dry run: nothing sent"),
        None => {}
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct StatusArgs {
    /// Deployment file.
    #[arg(long, value_name = "FILE", default_value = "deployment.json")]
    pub deployment: PathBuf,
    /// Also show how much of this plan is paid.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// With --plan: the plan's payments for this chain name (default: those without a chain).
    #[arg(long)]
    pub chain: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[arg(long)]
    pub json: bool,
}

pub fn run_status(a: &StatusArgs) -> Result<()> {
    let dep = DeploymentFile::load(&a.deployment)?;
    let d = &dep.deployment;
    let (mut open, _) = open(&a.connect, Some(&dep.endpoint))?;
    let c = open.chain();
    let al = d.allocator;
    let owner = read(c, al, &AIAllocator::ownerCall {})?;
    let agent = read(c, al, &AIAllocator::agentCall {})?;
    let guardian = read(c, al, &AIAllocator::guardianCall {})?;
    let paused = read(c, al, &AIAllocator::pausedCall {})?;
    let epoch_cap = read(c, al, &AIAllocator::epochCapCall {})?;
    let recipient_cap = read(c, al, &AIAllocator::recipientCapCall {})?;
    let left = read(c, al, &AIAllocator::remainingEpochAllowanceCall {})?;
    let epoch = read(c, al, &AIAllocator::currentEpochCall {})?;
    let balance = allonet_chain::payout::asset_balance(c, d.asset, al)?;
    let block = c.block_number()?;
    let token = Token::new(d.asset_symbol.clone(), d.asset_decimals);
    let amt = |u: U256| format!("{} {}", crate::output::show_amount(&token, TokenAmount(u), 2), token.symbol);
    let mut rows = vec![
        ("chain".to_string(), format!("{} · block {block}", c.describe())),
        ("allocator".into(), al.to_string()),
        ("owner".into(), format!("{owner}{}", if owner == d.timelock { " (timelock: governance)" } else { "" })),
        ("agent".into(), agent.to_string()),
        ("guardian".into(), guardian.to_string()),
        ("paused".into(), paused.to_string()),
        ("balance".into(), amt(balance)),
        ("epoch cap".into(), amt(epoch_cap)),
        ("recipient cap".into(), amt(recipient_cap)),
        (format!("left this epoch ({epoch})"), amt(left)),
    ];
    let mut plan_json = serde_json::Value::Null;
    if let Some(p) = &a.plan {
        let plan = PayoutPlan::load(p)?;
        let pays = plan.by_chain().remove(&a.chain).unwrap_or_default();
        let (paid, next, batches) = paid_from_events(c, al, plan.digest_bytes(), d.from_block)?;
        let done = pays.iter().filter(|p| paid.get(&p.recipient) == Some(&p.amount)).count();
        let sum: U256 = paid.values().copied().sum();
        rows.push(("plan".into(), plan.digest.to_string()));
        rows.push((
            "plan progress".into(),
            format!("{done}/{} recipients, {} in {batches} batches (next index {next})", pays.len(), amt(sum)),
        ));
        plan_json = serde_json::json!({"digest": plan.digest, "recipients": pays.len(), "paid_recipients": done, "paid": sum.to_string(), "batches": batches});
    }
    if a.json {
        let mut m: serde_json::Map<String, serde_json::Value> =
            rows.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        m.insert("plan_status".into(), plan_json);
        println!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(());
    }
    let mut t = table(&["field", "value"]);
    for (k, v) in rows {
        t.add_row(vec![k, v]);
    }
    println!("{t}");
    Ok(())
}

#[derive(clap::Args, Clone, Debug)]
pub struct ExportSafeArgs {
    /// The payout plan.
    pub plan: PathBuf,
    /// The Safe that will sign the batch.
    #[arg(long)]
    pub safe: String,
    /// Chain id of the Safe (else taken from --deployment).
    #[arg(long)]
    pub chain_id: Option<u64>,
    /// ERC-20 token the Safe pays with (transfer per recipient).
    #[arg(long, conflicts_with_all = ["native", "via_allocator"])]
    pub token: Option<String>,
    /// Pay in the native coin (one value transfer per recipient).
    #[arg(long, conflicts_with = "via_allocator")]
    pub native: bool,
    /// The Safe owns the allocator and calls allocateBatch (the plan digest goes on chain); needs --deployment.
    #[arg(long, requires = "deployment")]
    pub via_allocator: bool,
    /// Deployment file (allocator address, chain id, asset).
    #[arg(long, value_name = "FILE")]
    pub deployment: Option<PathBuf>,
    /// Recipients per allocateBatch call with --via-allocator.
    #[arg(long, default_value_t = 100)]
    pub chunk: usize,
    /// Which chain's payments of the plan to export (default: those without a chain).
    #[arg(long)]
    pub chain: Option<String>,
    /// Write the batch file to FILE.
    #[arg(short = 'o', long = "out", value_name = "FILE", default_value = "safe-batch.json")]
    pub out: PathBuf,
}

pub fn run_export_safe(a: &ExportSafeArgs) -> Result<()> {
    use allonet_chain::safe::{export_safe_batch, SafeExport, SafeMode};
    let plan = PayoutPlan::load(&a.plan)?;
    let dep = a.deployment.as_deref().map(DeploymentFile::load).transpose()?;
    let safe = parse_address(&a.safe, "--safe")?;
    let chain_id = a
        .chain_id
        .or(dep.as_ref().map(|d| d.deployment.chain_id))
        .ok_or_else(|| anyhow!("give --chain-id (or --deployment)"))?;
    let mode = if a.via_allocator {
        SafeMode::Allocator {
            allocator: dep.as_ref().expect("clap requires --deployment").deployment.allocator,
            chunk: a.chunk,
        }
    } else if a.native {
        SafeMode::Transfer { asset: None }
    } else {
        let token = match (&a.token, &dep) {
            (Some(t), _) => parse_address(t, "--token")?,
            (None, Some(d)) if d.deployment.asset != Address::ZERO => d.deployment.asset,
            (None, Some(_)) => bail!("the deployment pays in the native coin: use --native"),
            (None, None) => bail!("give --token ADDRESS, --native, or --via-allocator with --deployment"),
        };
        SafeMode::Transfer { asset: Some(token) }
    };
    if let Some(d) = &dep {
        if !a.via_allocator && a.token.is_none() && !a.native && d.deployment.asset_decimals != plan.token.decimals {
            bail!(
                "the plan pays {} with {} decimals but the deployment's asset {} has {}",
                plan.token.symbol,
                plan.token.decimals,
                d.deployment.asset_symbol,
                d.deployment.asset_decimals
            );
        }
        if a.via_allocator && d.deployment.asset_decimals != plan.token.decimals {
            bail!(
                "the plan pays {} with {} decimals but the allocator pays {} with {}",
                plan.token.symbol,
                plan.token.decimals,
                d.deployment.asset_symbol,
                d.deployment.asset_decimals
            );
        }
    }
    let created_at_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let opts = SafeExport { chain_id, safe, created_at_ms, mode, chain: a.chain.clone() };
    let batch = export_safe_batch(&plan, &opts)?;
    let text = serde_json::to_string_pretty(&batch)? + "\n";
    write_atomic(&a.out, text.as_bytes())?;
    let n = batch.transactions.len();
    println!(
        "wrote {} ({} transactions for Safe {safe} on chain {chain_id}, plan {}, checksum {})",
        a.out.display(),
        n,
        plan.digest,
        batch.meta.checksum.as_deref().unwrap_or("-")
    );
    println!("load it in Safe{{Wallet}} → Apps → Transaction Builder → drag the file in, review, create batch.");
    Ok(())
}
