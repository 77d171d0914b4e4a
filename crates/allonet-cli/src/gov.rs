//! `allonet gov …`: a DAO's governance on a SQLite database.

use crate::output::write_atomic;
use allonet_core::Table;
use allonet_governance::governor::{proposal_id, Action, Event, GovParams};
use allonet_governance::power::{PowerConfig, Strategy};
use allonet_governance::{Clock, SystemClock};
use allonet_store::Store;
use alloy_primitives::B256;
use alloy_signer_local::PrivateKeySigner;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum GovCommand {
    /// Create a DAO: token holders, voting strategy, parameters, guardian.
    #[command(
        after_help = "Example:\n  allonet gov keys new -o guardian.key\n  allonet gov init --db dao.db --holders holders.csv --guardian 0x… --strategy quadratic"
    )]
    Init(InitArgs),
    /// Propose typed actions (approve-plan:0xDIGEST, caps:EPOCH:RECIPIENT, activate-model:0xID, rollback-model, pause, unpause).
    Propose(Box<ProposeArgs>),
    /// Cast a vote, signed (EIP-712) with your key.
    Vote(VoteArgs),
    /// Delegate your votes, signed (EIP-712) with your key.
    Delegate(DelegateArgs),
    /// Queue a succeeded proposal in the timelock.
    Queue(IdArgs),
    /// Execute a queued proposal once its timelock is over.
    Execute(IdArgs),
    /// Cancel (the proposer while pending; the guardian until execution).
    Cancel(CancelArgs),
    /// The guardian's kill switch: pause the agent at once (or `--resume`), no vote needed.
    Pause(PauseArgs),
    /// Proposals with their state and live tallies; what governance has enacted.
    Status(StatusArgs),
    /// Write the record of the executed proposal that approved a payout plan (proposal, tally, plan digest, audit
    /// head, digest): what `allonet payout --queue --decision` presents to queue the plan under the standing caps.
    #[command(
        after_help = "Example:\n  allonet gov decision --db dao.db --plan plan.json -o decision.json\n  allonet payout plan.json --queue --decision decision.json --db dao.db"
    )]
    Decision(DecisionArgs),
    /// Audit log commands.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Cast votes one by one, printing `ack N` after each commit (used by the crash test).
    #[command(hide = true)]
    Stress(StressArgs),
}

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; names the first broken entry.
    Verify(DbArgs),
}

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create a secp256k1 key file (JSON with address and private key; keep it secret).
    New {
        /// Where to write the key.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct DbArgs {
    /// The governance database (SQLite; created by `gov init`).
    #[arg(long, default_value = "allonet-gov.db")]
    pub db: PathBuf,
}

#[derive(clap::Args)]
pub struct KeyArgs {
    /// Key file from `allonet gov keys new`.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Environment variable holding the private key (hex).
    #[arg(long, value_name = "VAR", default_value = "ALLONET_KEY")]
    pub key_env: String,
}

#[derive(clap::Args)]
pub struct TimeArgs {
    /// Time of the action (unix seconds; default: now). For rehearsals and scripts.
    #[arg(long)]
    pub now: Option<u64>,
}

impl TimeArgs {
    fn now(&self) -> u64 {
        self.now.unwrap_or_else(|| SystemClock.now())
    }
}

fn load_key(k: &KeyArgs) -> Result<PrivateKeySigner> {
    Ok(allonet_engine::keys::load_key(k.key.as_deref(), &k.key_env)?)
}

pub fn open(db: &Path) -> Result<Store> {
    Ok(allonet_engine::offchain::open(db)?)
}

use allonet_engine::offchain::signed_vote;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum StrategyArg {
    /// Delegated token balance.
    Token,
    /// One vote per allowlisted address.
    OnePerson,
    /// √(delegated balance).
    Quadratic,
    /// Balance as credits; n votes cost n².
    Credits,
}

#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Holders CSV `address,amount` (whole tokens of --decimals; the one holders format). Every holder starts
    /// self-delegated.
    #[arg(long)]
    pub holders: PathBuf,
    /// Decimals of the holders file's amounts: balances are whole tokens of this many decimals, counted in base
    /// units (the one holders format; 0 = whole units of voting power).
    #[arg(long, default_value_t = 0)]
    pub decimals: u8,
    /// Guardian address (may cancel until execution).
    #[arg(long)]
    pub guardian: String,
    /// Voting power strategy.
    #[arg(long, value_enum, default_value_t = StrategyArg::Token)]
    pub strategy: StrategyArg,
    /// Seconds from proposing to the snapshot.
    #[arg(long, default_value_t = 3600)]
    pub voting_delay: u64,
    /// Seconds of voting.
    #[arg(long, default_value_t = 259_200)]
    pub voting_period: u64,
    /// Power needed to propose.
    #[arg(long, default_value_t = 0)]
    pub threshold: u128,
    /// Quorum, percent of total power at the snapshot (for + abstain count).
    #[arg(long, default_value_t = 4)]
    pub quorum: u32,
    /// Timelock seconds between queue and execute.
    #[arg(long, default_value_t = 172_800)]
    pub timelock: u64,
    /// Seconds after the timelock before a queued proposal expires.
    #[arg(long, default_value_t = 1_209_600)]
    pub grace: u64,
    /// EIP-712 chain id for signed ballots.
    #[arg(long, default_value_t = 1)]
    pub chain_id: u64,
    /// Scale every member's power by a sybil score (CSV: address, score); unscored members count 0.
    #[arg(long, value_name = "CSV")]
    pub sybil_scores: Option<PathBuf>,
    /// Score at which power counts half (below: zero).
    #[arg(long, default_value_t = 15.0)]
    pub s50: f64,
    /// Score at which power counts in full.
    #[arg(long, default_value_t = 25.0)]
    pub s100: f64,
    #[command(flatten)]
    pub time: TimeArgs,
}

pub fn run_init(a: &InitArgs) -> Result<()> {
    if a.db.db.exists() {
        bail!("{} already exists; refusing to overwrite a DAO", a.db.db.display());
    }
    let holders = allonet_engine::offchain::holders(&Table::read(&a.holders)?, a.decimals)?;
    let guardian = allonet_core::Address::parse(&a.guardian).context("--guardian")?.0;
    let strategy = match a.strategy {
        StrategyArg::Token => Strategy::Token,
        StrategyArg::OnePerson => Strategy::OnePersonOneVote,
        StrategyArg::Quadratic => Strategy::QuadraticSqrt,
        StrategyArg::Credits => Strategy::QuadraticCredits,
    };
    let sybil = match &a.sybil_scores {
        None => None,
        Some(p) => Some((
            allonet_engine::offchain::sybil_scores(&Table::read(p)?)?,
            allonet_mechanisms::sybil::SybilPolicy::new(a.s50, a.s100)?,
        )),
    };
    let params = GovParams {
        voting_delay: a.voting_delay,
        voting_period: a.voting_period,
        proposal_threshold: a.threshold,
        quorum_percent: a.quorum,
        timelock_delay: a.timelock,
        grace_period: a.grace,
    };
    let e = allonet_engine::offchain::init_event(
        params,
        PowerConfig { strategy, sybil },
        guardian,
        holders,
        a.chain_id,
        a.time.now(),
    )?;

    let mut s = Store::open(&a.db.db)?;
    s.submit(&e)?;
    println!(
        "created {} with {} holders ({:?} voting)",
        a.db.db.display(),
        s.governor().ledger.balances.len(),
        strategy
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub onchain: crate::onchain::OnchainArgs,
    #[command(flatten)]
    pub chain_actions: crate::onchain::ActionArgs,
    /// An action of the SQLite governor; repeat for several.
    #[arg(long = "action", required_unless_present = "onchain")]
    pub actions: Vec<String>,
    /// What the proposal is for.
    #[arg(long)]
    pub description: String,
    /// Options of a multi-choice proposal, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub options: Vec<String>,
    #[command(flatten)]
    pub time: TimeArgs,
}

pub fn parse_action(s: &str) -> Result<Action> {
    Ok(allonet_engine::offchain::parse_action(s)?)
}

pub fn run_propose(a: &ProposeArgs) -> Result<()> {
    let signer = load_key(&a.key)?;
    if a.onchain.onchain {
        return crate::onchain::propose(&a.onchain, &a.chain_actions, &a.description, &signer);
    }
    let actions: Vec<Action> = a.actions.iter().map(|s| parse_action(s)).collect::<Result<_>>()?;
    let mut s = open(&a.db.db)?;
    let e = Event::Propose {
        proposer: signer.address(),
        actions: actions.clone(),
        description: a.description.clone(),
        options: a.options.clone(),
        at: a.time.now(),
    };
    s.submit(&e)?;
    let id = proposal_id(&actions, &a.description, &a.options);
    let p = &s.governor().proposals[&id];
    println!("proposal {id}\nvoting from {} to {} (snapshot {})", p.snapshot + 1, p.deadline, p.snapshot);
    Ok(())
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SupportArg {
    For,
    Against,
    Abstain,
}

#[derive(clap::Args)]
pub struct VoteArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Proposal id.
    #[arg(long)]
    pub proposal: String,
    /// Your vote.
    #[arg(long, value_enum)]
    pub support: SupportArg,
    /// With credits voting: how many votes (they cost votes² credits).
    #[arg(long, default_value_t = 0)]
    pub votes: u128,
    #[command(flatten)]
    pub time: TimeArgs,
    #[command(flatten)]
    pub onchain: crate::onchain::OnchainArgs,
    /// With --onchain: sign the ballot (EIP-712, `castVoteBySig`) and let --relayer-key send it.
    #[arg(long, requires = "relayer_key")]
    pub by_sig: bool,
    /// With --by-sig: key file of whoever sends the signed ballot (pays the gas; cannot change the vote).
    #[arg(long, value_name = "FILE")]
    pub relayer_key: Option<PathBuf>,
}

fn support_u8(s: SupportArg) -> u8 {
    match s {
        SupportArg::Against => 0,
        SupportArg::For => 1,
        SupportArg::Abstain => 2,
    }
}

pub fn run_vote(a: &VoteArgs) -> Result<()> {
    let signer = load_key(&a.key)?;
    if a.onchain.onchain {
        let relayer = a.relayer_key.as_deref().map(allonet_engine::keys::load_key_file).transpose()?;
        return crate::onchain::vote(&a.onchain, &a.proposal, support_u8(a.support), &signer, relayer.as_ref());
    }
    let id: B256 = a.proposal.parse().context("--proposal")?;
    let mut s = open(&a.db.db)?;
    let support = support_u8(a.support);
    let e = signed_vote(s.governor(), &signer, id, support, a.votes, a.time.now())?;
    let seq = s.submit(&e)?;
    let p = &s.governor().proposals[&id];
    println!(
        "vote by {} recorded as audit entry #{seq} · for {} · against {} · abstain {}",
        signer.address(),
        p.for_votes,
        p.against,
        p.abstain
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct DelegateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Delegatee address.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub time: TimeArgs,
}

pub fn run_delegate(a: &DelegateArgs) -> Result<()> {
    let signer = load_key(&a.key)?;
    let to = allonet_core::Address::parse(&a.to).context("--to")?.0;
    let mut s = open(&a.db.db)?;
    let e = allonet_engine::offchain::signed_delegation(s.governor(), &signer, to, a.time.now())?;
    s.submit(&e)?;
    println!("{} now delegates to {to}", signer.address());
    Ok(())
}

#[derive(clap::Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Proposal id.
    #[arg(long)]
    pub proposal: String,
    #[command(flatten)]
    pub time: TimeArgs,
    #[command(flatten)]
    pub onchain: crate::onchain::OnchainArgs,
    /// With --onchain: who sends the transaction (anyone may queue and execute).
    #[command(flatten)]
    pub key: KeyArgs,
}

pub fn run_queue(a: &IdArgs) -> Result<()> {
    if a.onchain.onchain {
        return crate::onchain::step(&a.onchain, &a.proposal, allonet_engine::govern::Step::Queue, &load_key(&a.key)?);
    }
    let id: B256 = a.proposal.parse().context("--proposal")?;
    let mut s = open(&a.db.db)?;
    s.submit(&Event::Queue { proposal: id, at: a.time.now() })?;
    println!("queued; executable from {}", s.governor().proposals[&id].eta.unwrap_or(0));
    Ok(())
}

pub fn run_execute(a: &IdArgs) -> Result<()> {
    if a.onchain.onchain {
        return crate::onchain::step(
            &a.onchain,
            &a.proposal,
            allonet_engine::govern::Step::Execute,
            &load_key(&a.key)?,
        );
    }
    let id: B256 = a.proposal.parse().context("--proposal")?;
    let mut s = open(&a.db.db)?;
    s.submit(&Event::Execute { proposal: id, at: a.time.now() })?;
    println!("executed {id}");
    Ok(())
}

#[derive(clap::Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Proposal id.
    #[arg(long)]
    pub proposal: String,
    #[command(flatten)]
    pub time: TimeArgs,
    /// With --onchain: the guardian cancels the proposal's queued timelock operation.
    #[command(flatten)]
    pub onchain: crate::onchain::OnchainArgs,
}

pub fn run_cancel(a: &CancelArgs) -> Result<()> {
    let signer = load_key(&a.key)?;
    if a.onchain.onchain {
        return crate::onchain::step(&a.onchain, &a.proposal, allonet_engine::govern::Step::Cancel, &signer);
    }
    let id: B256 = a.proposal.parse().context("--proposal")?;
    let mut s = open(&a.db.db)?;
    s.submit(&Event::Cancel { proposal: id, by: signer.address(), at: a.time.now() })?;
    println!("canceled {id}");
    Ok(())
}

#[derive(clap::Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Lift the pause instead.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub time: TimeArgs,
}

pub fn run_pause(a: &PauseArgs) -> Result<()> {
    let signer = load_key(&a.key)?;
    let mut s = open(&a.db.db)?;
    s.submit(&Event::GuardianPause { by: signer.address(), paused: !a.resume, at: a.time.now() })?;
    println!(
        "{}",
        if a.resume { "resumed: the agent may act within its caps" } else { "PAUSED: no funds move until resumed" }
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub time: TimeArgs,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub onchain: crate::onchain::OnchainArgs,
}

pub fn run_status(a: &StatusArgs) -> Result<()> {
    if a.onchain.onchain {
        return crate::onchain::status(&a.onchain, a.json);
    }
    let s = open(&a.db.db)?;
    let now = a.time.now();
    match a.json {
        true => println!(
            "{}",
            serde_json::to_string_pretty(&allonet_report::gov::offchain_status_json(s.governor(), now, s.len()))?
        ),
        false => println!("{}", allonet_report::gov::offchain_status(s.governor(), now)),
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct DecisionArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The payout plan an executed proposal approved (`--action approve-plan:<its digest>`).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Write the record to FILE.
    #[arg(short = 'o', long = "out", value_name = "FILE", default_value = "decision.json")]
    pub out: PathBuf,
}

pub fn run_decision(a: &DecisionArgs) -> Result<()> {
    let s = open(&a.db.db)?;
    let plan = allonet_chain::plan::PayoutPlan::load(&a.plan)?;
    let d = allonet_engine::govern::decision_record(&s, plan.digest)?;
    write_atomic(&a.out, (serde_json::to_string_pretty(&d)? + "\n").as_bytes())?;
    println!("{}", allonet_report::gov::decision(&d, &a.out));
    Ok(())
}

pub fn run_audit_verify(a: &DbArgs) -> Result<()> {
    let s = open(&a.db)?;
    match s.verify_audit() {
        Ok(n) => {
            println!("audit chain verified: {n} entries, each hash recomputed from its contents and its predecessor");
            Ok(())
        }
        Err(b) => bail!("audit chain broken at entry #{}: {}", b.seq, b.reason),
    }
}

pub fn run_keys_new(out: &Path) -> Result<()> {
    let k = allonet_engine::keys::new_key_file(out)?;
    println!("{} (key written to {}, readable only by you)", k.address().to_checksum(None), out.display());
    Ok(())
}

#[derive(clap::Args)]
pub struct StressArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Members (each votes once).
    #[arg(long, default_value_t = 2000)]
    pub voters: u64,
    /// Key seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// The crash-test workload: create the DAO if new, then every member that has not voted votes, each in
/// its own durable transaction, printing `ack i` once committed.
pub fn run_stress(a: &StressArgs) -> Result<()> {
    use std::io::Write;
    let mut s = Store::open(&a.db.db)?;
    let (keys, id) = allonet_engine::offchain::stress_dao(&mut s, a.voters, a.seed)?;
    let mut out = std::io::stdout().lock();
    for (i, k) in keys.iter().enumerate() {
        if s.governor().proposals[&id].voters.contains(&k.address()) {
            continue;
        }
        let e = signed_vote(s.governor(), k, id, 1, 0, 3)?;
        s.submit(&e)?;
        writeln!(out, "ack {i}")?;
        out.flush()?;
    }
    Ok(())
}
