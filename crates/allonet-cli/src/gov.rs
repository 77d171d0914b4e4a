//! `allonet gov …`: a DAO's governance on a SQLite database.

use crate::output::write_atomic;
use allonet_core::Table;
use allonet_engine::offchain::{open_writable, submit_act};
use allonet_governance::governor::{proposal_id, Act, Action, GovParams, Support};
use allonet_governance::power::{PowerConfig, Strategy};
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
    /// The guardian's kill switch: pause the agent at once, no vote needed (lifting it takes a passing `unpause` proposal).
    Pause(PauseArgs),
    /// Append acts members signed elsewhere (`gov vote … --sign-only act.json`), under the operator's key; prints each
    /// signer's receipt (the operator's signature on the head at its entry).
    #[command(
        after_help = "Example:\n  allonet gov vote --db copy-of-dao.db --key alice.key --proposal 0x… --support for --sign-only vote.json\n  allonet gov submit --db dao.db vote.json"
    )]
    Submit(SubmitArgs),
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
    /// Re-verify the log: the hash chain, every act's signature, nonce, time and rights (by replaying the rules),
    /// and the operator's signature on each head; with --anchor, also against every head the operator wrote on
    /// chain, which detects a rewrite with recomputed hashes or a deleted tail. Names the first broken entry.
    #[command(
        after_help = "Examples:\n  allonet gov audit verify --db dao.db\n  allonet gov audit verify --db dao.db --anchor --deployment deployment.json\n  allonet gov audit verify --log dao.jsonl --anchor --deployment deployment.json   # no database needed"
    )]
    Verify(AuditVerifyArgs),
    /// Write the log's head (DAO id, entry, hash) on chain, signed and sent by the operator's key.
    #[command(after_help = "Example:\n  allonet gov audit anchor --db dao.db --deployment deployment.json")]
    Anchor(AuditAnchorArgs),
    /// Export the log as JSON Lines (one entry a line, the exact hashed bytes), for anyone to re-verify.
    #[command(after_help = "Example:\n  allonet gov audit export --db dao.db -o dao.jsonl")]
    Export(AuditExportArgs),
}

/// Where anchors live on chain.
#[derive(clap::Args, Clone, Debug)]
pub struct AnchorChainArgs {
    /// The deployment file whose anchor contract holds the heads.
    #[arg(long, value_name = "FILE", default_value = "deployment.json")]
    pub deployment: PathBuf,
    /// A JSON-RPC endpoint instead of the one the deployment file records.
    #[arg(long, value_name = "URL")]
    pub rpc: Option<String>,
}

#[derive(clap::Args)]
pub struct AuditVerifyArgs {
    /// The governance database (SQLite).
    #[arg(long, default_value = "allonet-gov.db", conflicts_with = "log")]
    pub db: PathBuf,
    /// Verify an exported log (JSON Lines from `gov audit export`) instead of a database.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Also check the log against every head its operator anchored on chain.
    #[arg(long)]
    pub anchor: bool,
    #[command(flatten)]
    pub chain: AnchorChainArgs,
}

#[derive(clap::Args)]
pub struct AuditAnchorArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub chain: AnchorChainArgs,
}

#[derive(clap::Args)]
pub struct AuditExportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Where to write the JSON Lines.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,
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
    /// Only in a rehearsal database (`gov init --rehearsal`): the time of the act (unix seconds). A real DAO's
    /// clock is the system's.
    #[arg(long)]
    pub now: Option<u64>,
}

#[derive(clap::Args, Clone, Debug)]
pub struct OperatorArgs {
    /// The operator's key file, which signs the log's head after each write (default: `<db>.operator.key`, made
    /// by `gov init`).
    #[arg(long, value_name = "FILE")]
    pub operator_key: Option<PathBuf>,
}

/// Open the database to write, with the operator's key.
fn writable(db: &DbArgs, op: &OperatorArgs) -> Result<Store> {
    Ok(open_writable(&db.db, op.operator_key.as_deref())?)
}

#[derive(clap::Args, Clone, Debug)]
pub struct SignOnlyArgs {
    /// Only sign the act (against --db, which may be a copy; no operator key needed) and write it to FILE, for the
    /// operator to append with `allonet gov submit`.
    #[arg(long, value_name = "FILE")]
    pub sign_only: Option<PathBuf>,
}

/// Sign `act` as `signer`: append it under the operator's key, or with --sign-only write it for the operator.
/// Returns the store and the entry when appended.
fn perform(
    db: &DbArgs,
    op: &OperatorArgs,
    so: &SignOnlyArgs,
    signer: &PrivateKeySigner,
    act: Act,
    now: Option<u64>,
) -> Result<Option<(Store, u64)>> {
    if let Some(out) = &so.sign_only {
        let s = open(&db.db)?;
        let e = allonet_engine::offchain::sign_act(&s, signer, act, now)?;
        write_atomic(out, (serde_json::to_string_pretty(&e)? + "\n").as_bytes())?;
        println!(
            "signed {} act by {} (nonce {}, signed at {}) -> {}\nsend it to the operator, who appends it within 6 days with `allonet gov submit --db <the DAO's database> {}`",
            e.act.kind(),
            e.signer,
            e.nonce,
            e.signed_at,
            out.display(),
            out.display()
        );
        return Ok(None);
    }
    let mut s = writable(db, op)?;
    let seq = submit_act(&mut s, signer, act, now)?;
    Ok(Some((s, seq)))
}

/// The operator's signed head at `seq`: what the signer keeps as proof the act was accepted there.
fn receipt_line(s: &Store, seq: u64) -> Result<String> {
    let r = allonet_engine::offchain::receipt(s, seq)?;
    Ok(format!("receipt: entry #{} head {} signed by the operator {}: {}", r.seq, r.head, r.operator, r.signature))
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    /// Signed acts (from `gov … --sign-only`), appended in order.
    #[arg(required = true, value_name = "ACT")]
    pub acts: Vec<PathBuf>,
}

pub fn run_submit(a: &SubmitArgs) -> Result<()> {
    let mut s = writable(&a.db, &a.operator)?;
    for f in &a.acts {
        let (e, _) = allonet_engine::offchain::submit_signed(&mut s, f)?;
        let seq = s.len();
        println!(
            "{}: {} by {} appended as entry #{seq}\n  {}",
            f.display(),
            e.act.kind(),
            e.signer,
            receipt_line(&s, seq)?
        );
    }
    Ok(())
}

fn load_key(k: &KeyArgs) -> Result<PrivateKeySigner> {
    Ok(allonet_engine::keys::load_key(k.key.as_deref(), &k.key_env)?)
}

pub fn open(db: &Path) -> Result<Store> {
    Ok(allonet_engine::offchain::open(db)?)
}

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
    /// A rehearsal: acts take `--now` times instead of the system clock. Marked in every status and export; no
    /// payout takes decisions from it.
    #[arg(long)]
    pub rehearsal: bool,
    /// The operator's key (signs the genesis and each head of the log); created there if missing (default:
    /// `<db>.operator.key`).
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub time: TimeArgs,
}

pub fn run_init(a: &InitArgs) -> Result<()> {
    if a.db.db.exists() {
        bail!("{} already exists; refusing to overwrite a DAO", a.db.db.display());
    }
    if a.time.now.is_some() && !a.rehearsal {
        bail!("--now needs --rehearsal: a real DAO keeps the system clock");
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
    params.check()?;
    let dao = allonet_engine::offchain::NewDao {
        params,
        power: PowerConfig { strategy, sybil },
        guardian,
        holders,
        chain_id: a.chain_id,
        rehearsal: a.rehearsal,
        salt: None,
    };
    let key_path =
        a.operator.operator_key.clone().unwrap_or_else(|| allonet_engine::offchain::operator_key_path(&a.db.db));
    let (operator, made) = match key_path.exists() {
        true => (allonet_engine::keys::load_key_file(&key_path)?, false),
        false => (allonet_engine::keys::new_key_file(&key_path)?, true),
    };
    let s = allonet_engine::offchain::create(&a.db.db, dao, &operator, a.time.now)?;
    let g = s.governor();
    println!(
        "created {}{} with {} holders ({:?} voting)\nDAO id {} · operator {} (key {}{})",
        a.db.db.display(),
        if g.rehearsal { " as a REHEARSAL (caller-chosen clock; never a source of payout decisions)" } else { "" },
        g.ledger.balances.len(),
        strategy,
        g.dao,
        g.operator,
        key_path.display(),
        if made { ", new: keep it secret" } else { "" }
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
    #[arg(long = "action", required_unless_present_any = ["onchain", "options"])]
    pub actions: Vec<String>,
    /// What the proposal is for.
    #[arg(long)]
    pub description: String,
    /// Options of a multi-choice proposal, comma-separated: `LABEL` or `LABEL=ACTION[+ACTION…]`; only the winning
    /// option's actions run (a proposal has either --action or --options, not both).
    #[arg(long, value_delimiter = ',', conflicts_with = "actions")]
    pub options: Vec<String>,
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub sign: SignOnlyArgs,
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
    let options = allonet_engine::offchain::parse_options(&a.options)?;
    let act = Act::Propose { actions: actions.clone(), description: a.description.clone(), options: options.clone() };
    let Some((s, _)) = perform(&a.db, &a.operator, &a.sign, &signer, act, a.time.now)? else { return Ok(()) };
    let id = proposal_id(s.governor().dao, signer.address(), &actions, &a.description, &options);
    let p = &s.governor().proposals[&id];
    println!(
        "proposal {id}\nproposed by {} · voting from {} to {} (snapshot {}) · quorum {}% · timelock {} s · grace {} s, fixed for this proposal",
        signer.address(),
        p.snapshot + 1,
        p.deadline,
        p.snapshot,
        p.quorum_percent,
        p.timelock_delay,
        p.grace_period
    );
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
    /// Your vote (for/against/abstain proposals).
    #[arg(long, value_enum, required_unless_present = "weights")]
    pub support: Option<SupportArg>,
    /// On a multi-choice proposal: weights across its options by index, e.g. `0=1` (all on the first) or
    /// `0=3,2=1`.
    #[arg(long, value_delimiter = ',', conflicts_with = "support")]
    pub weights: Vec<String>,
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub sign: SignOnlyArgs,
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
        let Some(support) = a.support else { bail!("--onchain votes take --support") };
        let relayer = a.relayer_key.as_deref().map(allonet_engine::keys::load_key_file).transpose()?;
        return crate::onchain::vote(&a.onchain, &a.proposal, support_u8(support), &signer, relayer.as_ref());
    }
    let id: B256 = a.proposal.parse().context("--proposal")?;
    let support = match a.support {
        Some(s) => Support::from_u8(support_u8(s)).expect("0..=2"),
        None => {
            let mut w = std::collections::BTreeMap::new();
            for x in &a.weights {
                let (o, v) = x.split_once('=').unwrap_or((x.as_str(), "1"));
                let o: u32 = o.trim().parse().with_context(|| format!("--weights: `{x}` needs an option index"))?;
                let v: u64 = v.trim().parse().with_context(|| format!("--weights: `{x}` needs a whole weight"))?;
                if w.insert(o, v).is_some() {
                    bail!("--weights: option {o} is named twice");
                }
            }
            Support::Weighted(w)
        }
    };
    let act = Act::Vote { proposal: id, support, votes: a.votes };
    let Some((s, seq)) = perform(&a.db, &a.operator, &a.sign, &signer, act, a.time.now)? else { return Ok(()) };
    let p = &s.governor().proposals[&id];
    let tally = match p.options.is_empty() {
        true => format!("for {} · against {} · abstain {}", p.for_votes, p.against, p.abstain),
        false => p
            .options
            .iter()
            .zip(&p.option_votes)
            .map(|(o, v)| format!("{} {v}", o.label))
            .collect::<Vec<_>>()
            .join(" · "),
    };
    println!(
        "vote by {} (signed) recorded as audit entry #{seq} · {tally}\n{}",
        signer.address(),
        receipt_line(&s, seq)?
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
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub sign: SignOnlyArgs,
    #[command(flatten)]
    pub time: TimeArgs,
}

pub fn run_delegate(a: &DelegateArgs) -> Result<()> {
    let signer = load_key(&a.key)?;
    let to = allonet_core::Address::parse(&a.to).context("--to")?.0;
    let Some(_) = perform(&a.db, &a.operator, &a.sign, &signer, Act::Delegate { to }, a.time.now)? else {
        return Ok(());
    };
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
    /// Who acts (anyone may queue and execute; the act is signed and logged), or with --onchain who sends the
    /// transaction.
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub sign: SignOnlyArgs,
}

pub fn run_queue(a: &IdArgs) -> Result<()> {
    if a.onchain.onchain {
        return crate::onchain::step(&a.onchain, &a.proposal, allonet_engine::govern::Step::Queue, &load_key(&a.key)?);
    }
    let id: B256 = a.proposal.parse().context("--proposal")?;
    let signer = load_key(&a.key)?;
    let Some((s, _)) = perform(&a.db, &a.operator, &a.sign, &signer, Act::Queue { proposal: id }, a.time.now)? else {
        return Ok(());
    };
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
    let signer = load_key(&a.key)?;
    let Some(_) = perform(&a.db, &a.operator, &a.sign, &signer, Act::Execute { proposal: id }, a.time.now)? else {
        return Ok(());
    };
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
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub sign: SignOnlyArgs,
}

pub fn run_cancel(a: &CancelArgs) -> Result<()> {
    let signer = load_key(&a.key)?;
    if a.onchain.onchain {
        return crate::onchain::step(&a.onchain, &a.proposal, allonet_engine::govern::Step::Cancel, &signer);
    }
    let id: B256 = a.proposal.parse().context("--proposal")?;
    let Some(_) = perform(&a.db, &a.operator, &a.sign, &signer, Act::Cancel { proposal: id }, a.time.now)? else {
        return Ok(());
    };
    println!("canceled {id}");
    Ok(())
}

#[derive(clap::Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub operator: OperatorArgs,
    #[command(flatten)]
    pub sign: SignOnlyArgs,
    #[command(flatten)]
    pub time: TimeArgs,
}

pub fn run_pause(a: &PauseArgs) -> Result<()> {
    let signer = load_key(&a.key)?;
    let Some(_) = perform(&a.db, &a.operator, &a.sign, &signer, Act::Pause { paused: true }, a.time.now)? else {
        return Ok(());
    };
    println!("PAUSED: no funds move until the members pass a proposal with the `unpause` action");
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
    let now = match (s.governor().rehearsal, a.time.now) {
        (true, Some(t)) => t,
        (false, Some(_)) => bail!("--now is accepted only by a rehearsal database; this one keeps the system clock"),
        (_, None) => s.now().max(s.governor().last_at),
    };
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

pub fn run_audit_verify(a: &AuditVerifyArgs) -> Result<()> {
    let (log, source) = match &a.log {
        Some(f) => {
            let entries = allonet_engine::audit::read_export(f)?;
            let log = allonet_store::verify_log(&entries).map_err(|b| anyhow::anyhow!("{}: {b}", f.display()))?;
            let now = allonet_governance::Clock::now(&allonet_governance::SystemClock);
            log.check_not_ahead(now).map_err(|b| anyhow::anyhow!("{}: {b}", f.display()))?;
            (log, f.display().to_string())
        }
        None => {
            // opening verifies the whole log and refuses a broken one
            let s = open(&a.db)?;
            let log = s.verified_log().map_err(|b| anyhow::anyhow!("{b}"))?;
            (log, a.db.display().to_string())
        }
    };
    let g = &log.governor;
    println!(
        "{source}: {} entries verified{}: each hash from its contents and predecessor, every act's signature, nonce, \
         time and rights by replaying the rules, {} operator-signed heads\nDAO {} · operator {} · head #{} {}",
        log.len(),
        if g.rehearsal { " (a REHEARSAL: caller-chosen clock)" } else { "" },
        log.signed_heads,
        g.dao,
        g.operator,
        log.head().0,
        log.head().1
    );
    if a.anchor {
        let c = allonet_engine::audit::check_anchored(&log, &a.chain.deployment, a.chain.rpc.clone())?;
        let last = c.anchors.last().expect("at least one");
        println!(
            "anchored: all {} heads the operator wrote on chain match (latest #{} at block {}, time {}){}",
            c.anchors.len(),
            last.seq,
            last.block,
            last.timestamp,
            if last.seq < log.len() {
                format!("; entries #{}..#{} are not anchored yet", last.seq + 1, log.len())
            } else {
                String::new()
            }
        );
        if let Some(c) = &c.caveat {
            println!("note: {c}");
        }
    }
    Ok(())
}

pub fn run_audit_anchor(a: &AuditAnchorArgs) -> Result<()> {
    let s = writable(&a.db, &a.operator)?;
    let r = allonet_engine::audit::anchor(&s, &a.chain.deployment, a.chain.rpc.clone())?;
    println!(
        "anchored DAO {} head #{} {} on chain {} (contract {}) · tx {} · gas {}",
        r.dao, r.seq, r.head, r.chain_id, r.anchor, r.tx_hash, r.gas_used
    );
    Ok(())
}

pub fn run_audit_export(a: &AuditExportArgs) -> Result<()> {
    let s = open(&a.db.db)?;
    let n = allonet_engine::audit::export(&s, &a.out)?;
    println!(
        "exported {n} entries to {}{} (re-verify with `allonet gov audit verify --log {}`)",
        a.out.display(),
        if s.governor().rehearsal { " from a REHEARSAL database" } else { "" },
        a.out.display()
    );
    Ok(())
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
    /// Anchor the head on chain after every N votes (with --deployment), printing `anchored SEQ` once sent.
    #[arg(long, value_name = "N", requires = "deployment")]
    pub anchor_every: Option<u64>,
    /// The deployment whose anchor contract the heads go to.
    #[arg(long, value_name = "FILE")]
    pub deployment: Option<PathBuf>,
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
        let e = allonet_engine::offchain::signed_vote(s.governor(), k, id, 1, 0, 3)?;
        let seq = s.submit(&e)?;
        writeln!(out, "ack {i}")?;
        out.flush()?;
        if let (Some(n), Some(dep)) = (a.anchor_every, &a.deployment) {
            if n > 0 && seq % n == 0 {
                let r = allonet_engine::audit::anchor(&s, dep, None)?;
                writeln!(out, "anchored {}", r.seq)?;
                out.flush()?;
            }
        }
    }
    Ok(())
}
