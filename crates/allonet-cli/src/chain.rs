//! `allonet chain ...` and `allonet payout`: deploy the contracts, build payout plans, pay them on the
//! embedded EVM or any chain over JSON-RPC (several at once), report status, export Safe batches.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use allonet_chain::payout::{BatchReport, PlanStatus};
use allonet_chain::plan::{PayoutPlan, DEFAULT_BATCH_SIZE};
use allonet_core::Token;
use allonet_engine::connect::{connect, resolve_chains, ConnectSpec, DeploymentFile};
use allonet_engine::deploy::{journal_path, DeploySpec};
use allonet_engine::pay::{Observer, PayOptions, Payer};
use alloy_primitives::{Address, U256};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::output::write_atomic;

#[derive(clap::Subcommand)]
pub enum ChainCommand {
    /// Deploy the governance token, timelock, governor, payout token and AIAllocator, wired so that the
    /// timelock (governance) owns the allocator and only a vote changes the agent's caps, and the AlloAnchor
    /// the off-chain audit log's heads are anchored in.
    #[command(
        after_help = "Examples:\n  allonet chain deploy --embedded -o deployment.json\n  allonet chain deploy --embedded --asset native -o eth.json\n  ALLONET_KEY=0x... allonet chain deploy --rpc http://127.0.0.1:8545 --chain-id 31337 --agent 0xAGENT --guardian 0xGUARDIAN --holders holders.csv -o deployment.json"
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
    /// Move a development chain (the embedded EVM or anvil) forward: blocks and seconds, to rehearse a vote's
    /// period, a timelock or a veto window. Real chains refuse it.
    #[command(
        after_help = "Example:\n  allonet chain advance --deployment deployment.json --blocks 50 --seconds 172800"
    )]
    Advance(AdvanceArgs),
}

#[derive(clap::Args, Clone, Debug)]
pub struct AdvanceArgs {
    /// Deployment file (its chain is advanced).
    #[arg(long, value_name = "FILE", default_value = "deployment.json")]
    pub deployment: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Blocks to mine.
    #[arg(long, default_value_t = 0)]
    pub blocks: u64,
    /// Seconds to add to the clock.
    #[arg(long, default_value_t = 0)]
    pub seconds: u64,
}

pub fn run_advance(a: &AdvanceArgs) -> Result<()> {
    let dep = DeploymentFile::load(&a.deployment)?;
    let (mut conn, _) = connect(&a.connect.spec(), Some(&dep.endpoint))?;
    conn.advance(a.blocks, a.seconds)?;
    conn.save()?;
    let c = conn.chain();
    println!("{}: now block {} at {}", c.describe(), c.block_number()?, c.timestamp()?);
    Ok(())
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
    /// Key file of the sender (JSON, from `allonet gov keys new`; else the hex key in ALLONET_KEY). Not used
    /// with --embedded, where anvil's dev accounts send.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Over --rpc: the most a transaction may offer per gas, in gwei (default 2000). A transaction not mined
    /// within a minute is replaced at the same nonce with fees 25 % higher, up to this ceiling.
    #[arg(long, value_name = "GWEI", requires = "rpc")]
    pub max_fee_gwei: Option<u64>,
}

impl ConnectArgs {
    /// The engine's connection spec (the sender's key from `--key-file`, else `ALLONET_KEY`).
    pub fn spec(&self) -> ConnectSpec {
        ConnectSpec {
            embedded: self.embedded,
            state: self.state.clone(),
            rpc: self.rpc.clone(),
            chain_id: self.chain_id,
            key_file: self.key_file.clone(),
            key_env: "ALLONET_KEY".into(),
            key: None,
            send_policy: self.max_fee_gwei.map(|g| allonet_chain::rpc::SendPolicy {
                max_fee_per_gas: g as u128 * 1_000_000_000,
                ..Default::default()
            }),
        }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Payout asset: `native` (ETH), an ERC-20 address, or `new:SYMBOL:DECIMALS:SUPPLY` to deploy a PayToken
    /// minted to the deployer (SUPPLY in whole tokens).
    #[arg(long, default_value = "new:USDC:6:1000000000")]
    pub asset: String,
    /// The agent: queues plans within the caps governance sets and pays approved ones. A key of its own
    /// (required on RPC; embedded: anvil's dev account 1).
    #[arg(long)]
    pub agent: Option<String>,
    /// The guardian: pauses and cancels queued plans and timelock operations (required on RPC; embedded: dev
    /// account 2).
    #[arg(long)]
    pub guardian: Option<String>,
    /// Seconds per cap epoch.
    #[arg(long, default_value_t = 86_400)]
    pub epoch_length: u64,
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
    /// CSV `address,amount` of governance token holders (ALLO, whole tokens). Required on RPC; embedded: dev
    /// accounts 3, 4 and 5 hold 400,000, 350,000 and 250,000.
    #[arg(long, value_name = "FILE")]
    pub holders: Option<PathBuf>,
    /// Keep the deployer as the allocator's owner instead of the timelock (embedded contract tests only).
    #[arg(long)]
    pub keep_owner: bool,
    /// Print the deployment as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the deployment file (addresses and endpoint) to FILE; an interrupted deployment resumes from
    /// FILE.journal.
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
    let (mut conn, endpoint) = connect(&a.connect.spec(), None)?;
    let asset = allonet_engine::deploy::parse_asset(&a.asset)?;
    let decimals = allonet_engine::deploy::asset_decimals(conn.chain(), &asset)?;
    let spec = DeploySpec {
        asset,
        agent: a.agent.as_deref().map(|s| allonet_core::Address::parse(s).context("--agent")).transpose()?,
        guardian: a.guardian.as_deref().map(|s| allonet_core::Address::parse(s).context("--guardian")).transpose()?,
        holders: a
            .holders
            .as_deref()
            .map(|p| allonet_engine::keys::read_holders(p, &Token::new("ALLO", 18)))
            .transpose()?,
        epoch_length: a.epoch_length,
        fund: whole(&a.fund, decimals, "--fund")?,
        voting_delay: a.voting_delay,
        voting_period: a.voting_period,
        quorum_percent: a.quorum_percent,
        timelock_delay: a.timelock_delay,
        keep_owner: a.keep_owner,
    };
    let resumed = journal_path(&a.out).exists();
    let embedded_cast = allonet_engine::deploy::uses_embedded_cast(&conn, &spec);
    let (file, steps) = allonet_engine::deploy::deploy(&mut conn, endpoint, &spec, &a.out)?;
    let keys_dir =
        a.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")).join("keys");
    if embedded_cast {
        allonet_engine::deploy::write_dev_keys(&keys_dir)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"deployment": file, "transactions": steps}))?);
        return Ok(());
    }
    let describe = conn.chain().describe();
    let keys = embedded_cast.then_some(keys_dir.as_path());
    println!("{}", allonet_report::chain::deployment(&file, &steps, &describe, resumed, keys, &a.out));
    Ok(())
}

#[derive(clap::Args, Clone, Debug)]
pub struct PlanArgs {
    /// A result file written by `allonet round -o` or `allonet retro -o`; its digest must recompute.
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
    /// Payments per batch transaction (part of what governance approves; ~50,000 gas a fresh recipient).
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    pub batch_size: u32,
    /// Write the plan to FILE.
    #[arg(short = 'o', long = "out", value_name = "FILE", default_value = "plan.json")]
    pub out: PathBuf,
}

pub fn run_plan(a: &PlanArgs) -> Result<()> {
    let plan = match (&a.result, &a.payments) {
        (Some(r), _) => allonet_engine::plans::plan_from_result_file(
            r,
            a.addresses.as_deref().expect("clap requires --addresses"),
            a.batch_size,
        )?,
        (None, Some(p)) => allonet_engine::plans::plan_from_payments(
            &allonet_core::Table::read(p)?,
            &Token::new(a.token.clone(), a.decimals),
            a.batch_size,
        )?,
        (None, None) => bail!("give --result with --addresses, or --payments"),
    };
    plan.save(&a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
    println!("{}", allonet_report::chain::plan(&plan, &a.out));
    Ok(())
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
    /// Pay as the allocator's `agent` or its `owner` (embedded only; on RPC the key decides).
    #[arg(long = "as", default_value = "agent", value_parser = ["agent", "owner"])]
    pub role: String,
    /// Off-chain approval: the decision record (`allonet gov decision`) under which the agent queues the plan
    /// within the standing caps, checked against --db. Required to pay a plan the agent queued.
    #[arg(long, value_name = "FILE", requires = "db")]
    pub decision: Option<PathBuf>,
    /// The SQLite governance database the decision comes from.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// With --decision: the database's operator key, which signs what is recorded in its audit log (default:
    /// `<db>.operator.key`).
    #[arg(long, value_name = "FILE", requires = "decision")]
    pub operator_key: Option<PathBuf>,
    /// With --decision: queue the plan on each chain (payable after the veto delay) instead of paying.
    #[arg(long, requires = "decision")]
    pub queue: bool,
    /// Wait between batches, milliseconds (for rate-limited endpoints).
    #[arg(long, default_value_t = 0)]
    pub interval_ms: u64,
    /// Check the plan against every chain and estimate every batch; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML report (gas per batch, every transaction) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Progress on the terminal: a bar per chain, or (without a terminal) a line per batch.
struct Progress<'a> {
    token: &'a Token,
    json: bool,
    bar: ProgressBar,
}

impl Observer for Progress<'_> {
    fn chain_started(&mut self, label: &str, describe: &str, s: &PlanStatus) {
        self.bar = if std::io::stderr().is_terminal() && !self.json {
            ProgressBar::new(s.recipients as u64)
        } else {
            ProgressBar::hidden()
        };
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg} [{bar:30}] {pos}/{len} recipients")
                .expect("template")
                .progress_chars("=> "),
        );
        self.bar.set_message(format!("paying on {label}"));
        self.bar.set_position(s.paid_recipients as u64);
        if !self.json {
            println!("{}", allonet_report::chain::chain_started(label, describe, s));
        }
    }

    fn batch(&mut self, _label: &str, b: &BatchReport, _s: &PlanStatus) {
        self.bar.inc(b.count as u64);
        if !self.json {
            self.bar.suspend(|| println!("{}", allonet_report::chain::batch(b, self.token)));
        }
    }
}

pub fn run_payout(a: &PayoutArgs) -> Result<()> {
    let plan = PayoutPlan::load(&a.plan)?;
    let names: Vec<Option<String>> = plan.by_chain().into_keys().collect();
    let targets = resolve_chains(&names, &a.deployment, &a.connect.spec(), a.chains.as_deref())?;
    let token = Token::new(plan.token.symbol.clone(), plan.token.decimals);
    let now = allonet_governance::Clock::now(&allonet_governance::SystemClock);
    // With an off-chain decision, its store is also the audit log every step below is appended to.
    let mut decision = match (&a.decision, &a.db) {
        (Some(d), Some(db)) => Some(allonet_engine::govern::load_decision(
            d,
            db,
            a.operator_key.as_deref(),
            &plan,
            now,
            &a.deployment,
            a.connect.rpc.clone(),
        )?),
        _ => None,
    };
    if let (true, Some(d)) = (a.queue, decision.as_mut()) {
        let (queued, _) = allonet_engine::govern::queue_under_decision(&plan, targets, d, now)?;
        let out: Vec<_> = queued.iter().map(|(c, q)| serde_json::json!({"chain": c, "queued": q})).collect();
        match a.json {
            true => println!("{}", serde_json::to_string_pretty(&out)?),
            false => println!("{}", allonet_report::chain::queued(&queued, &token)),
        }
        return Ok(());
    }
    let opts = PayOptions {
        payer: if a.role == "owner" { Payer::Owner } else { Payer::Agent },
        dry_run: a.dry_run,
        interval: Duration::from_millis(a.interval_ms),
        require_decision_for_queued: true,
    };
    let mut progress = Progress { token: &token, json: a.json, bar: ProgressBar::hidden() };
    let (reports, seq) =
        allonet_engine::pay::pay_governed(&plan, targets, &opts, decision.as_mut(), now, &mut progress)?;
    progress.bar.finish_and_clear();
    if let (Some(seq), Some(db), false) = (seq, &a.db, a.json) {
        println!("payout appended to the audit log of {} as entry #{seq}", db.display());
    }
    if let Some(path) = &a.html {
        write_atomic(path, allonet_report::chain::payout_html(&plan, &token, &reports).as_bytes())?;
    }
    match a.json {
        true => {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"plan": plan.digest, "chains": reports}))?)
        }
        false => println!("{}", allonet_report::chain::payouts(&reports, &token, a.dry_run)),
    }
    Ok(())
}

#[derive(clap::Args, Clone, Debug)]
pub struct StatusArgs {
    /// Deployment file.
    #[arg(long, value_name = "FILE", default_value = "deployment.json")]
    pub deployment: PathBuf,
    /// Also show this plan's state on the allocator: approved or queued, batches paid.
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
    let (mut conn, _) = connect(&a.connect.spec(), Some(&dep.endpoint))?;
    let plan = a.plan.as_deref().map(PayoutPlan::load).transpose()?;
    let s = allonet_engine::pay::allocator_status(&mut conn, d, plan.as_ref().map(|p| (p, a.chain.as_deref())))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("{}", allonet_report::chain::status(&s, &Token::new(d.asset_symbol.clone(), d.asset_decimals)));
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
    /// The Safe owns the allocator and approves the plan's commitment (`approvePlan`); the agent then pays it.
    /// Needs --deployment.
    #[arg(long, requires = "deployment")]
    pub via_allocator: bool,
    /// Deployment file (allocator address, chain id, asset).
    #[arg(long, value_name = "FILE")]
    pub deployment: Option<PathBuf>,
    /// Which chain's payments of the plan to export (default: those without a chain).
    #[arg(long)]
    pub chain: Option<String>,
    /// Write the batch file to FILE.
    #[arg(short = 'o', long = "out", value_name = "FILE", default_value = "safe-batch.json")]
    pub out: PathBuf,
}

pub fn run_export_safe(a: &ExportSafeArgs) -> Result<()> {
    use allonet_engine::plans::SafeHow;
    let plan = PayoutPlan::load(&a.plan)?;
    let dep = a.deployment.as_deref().map(DeploymentFile::load).transpose()?;
    let safe = parse_address(&a.safe, "--safe")?;
    let how = match (a.via_allocator, a.native, &a.token) {
        (true, ..) => SafeHow::ViaAllocator,
        (_, true, _) => SafeHow::Native,
        (_, _, t) => SafeHow::Token(t.as_deref().map(|t| parse_address(t, "--token")).transpose()?),
    };
    let created_at_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let opts = allonet_engine::plans::safe_export(
        &plan,
        dep.as_ref().map(|d| &d.deployment),
        safe,
        a.chain_id,
        how,
        a.chain.clone(),
        created_at_ms,
    )?;
    let chain_id = opts.chain_id;
    let batch = allonet_chain::safe::export_safe_batch(&plan, &opts)?;
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
