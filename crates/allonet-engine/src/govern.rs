//! Approval of plans: on chain (Governor + Timelock proposals that call the allocator) and off chain (signed
//! votes in SQLite, as Snapshot) turned into a decision record under which the agent queues a plan within the
//! standing caps.
//!
//! An off-chain decision binds nothing on chain by itself, so it is used only where the chain bounds the
//! damage: the agent may queue a plan that fits the caps governance set on chain, to recipients of the
//! on-chain registry, and the plan waits out the veto delay, in which the guardian can cancel it. A plan above
//! the caps must be approved on chain.

use allonet_chain::contracts::AIAllocator;
use allonet_chain::deploy::Deployment;
use allonet_chain::governor::Action;
use allonet_chain::payout::{queue_call, read_plan, OnChainPlan};
use allonet_chain::plan::{Commitment, PayoutPlan};
use allonet_chain::{read, transact, Chain, Receipt};
use allonet_core::{digest, Digest, Token};
use allonet_governance::governor::ProposalState;
use allonet_store::Store;
use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// The commitment of a plan's part on one chain (`None` = the default chain).
pub fn commitment(plan: &PayoutPlan, chain: Option<&str>) -> Result<Commitment, EngineError> {
    plan.commitment(chain).ok_or_else(|| {
        EngineError::Config(format!("plan {} has no payments on chain {}", plan.digest, chain.unwrap_or("default")))
    })
}

/// The standing authority a first proposal gives the agent: caps, the registry of every recipient of `plan`
/// (on `chain`), and the veto delay.
pub fn standing_actions(
    epoch_cap: U256,
    recipient_cap: U256,
    recipients: Vec<Address>,
    veto_delay: u64,
) -> Vec<Action> {
    let mut v = vec![Action::SetCaps { epoch_cap, recipient_cap }, Action::SetVetoDelay { seconds: veto_delay }];
    if !recipients.is_empty() {
        v.push(Action::SetRecipients { recipients, allowed: true });
    }
    v
}

/// Schema tag of decision records.
pub const DECISION_SCHEMA: &str = "allonet.decision/1";

/// An executed off-chain decision approving a plan: what the agent presents to queue it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub schema: String,
    /// The SQLite governor's proposal id.
    pub proposal: B256,
    pub description: String,
    /// Votes for, against, abstain (base units of voting power).
    pub votes_for: String,
    pub votes_against: String,
    pub votes_abstain: String,
    /// The plan it approved.
    pub plan_digest: Digest,
    /// The audit log's head when the record was made: entry number and hash.
    pub audit_seq: u64,
    pub audit_hash: B256,
    /// keccak-256 of everything above.
    pub digest: Digest,
}

#[derive(Serialize)]
struct DecisionBody<'a> {
    schema: &'a str,
    proposal: &'a B256,
    description: &'a str,
    votes_for: &'a str,
    votes_against: &'a str,
    votes_abstain: &'a str,
    plan_digest: &'a Digest,
    audit_seq: u64,
    audit_hash: &'a B256,
}

impl Decision {
    fn body_digest(&self) -> Digest {
        digest(&DecisionBody {
            schema: &self.schema,
            proposal: &self.proposal,
            description: &self.description,
            votes_for: &self.votes_for,
            votes_against: &self.votes_against,
            votes_abstain: &self.votes_abstain,
            plan_digest: &self.plan_digest,
            audit_seq: self.audit_seq,
            audit_hash: &self.audit_hash,
        })
    }

    /// Read a decision record (its digest is checked by [`check_decision`]).
    pub fn load(path: &std::path::Path) -> Result<Self, EngineError> {
        Ok(allonet_core::input::read_json(path)?)
    }
}

/// The record of the executed proposal of `store` that approved `plan_digest`. The audit log must verify.
pub fn decision_record(store: &Store, plan_digest: Digest) -> Result<Decision, EngineError> {
    store.verify_audit().map_err(|b| EngineError::Config(b.to_string()))?;
    let g = store.governor();
    let proposal = *g.registry.approved_plans.get(&plan_digest.0).ok_or_else(|| {
        EngineError::Refused(vec![format!("no executed proposal of this governance approves plan {plan_digest}")])
    })?;
    let p = &g.proposals[&proposal];
    let (audit_seq, audit_hash) = store.head();
    let mut d = Decision {
        schema: DECISION_SCHEMA.into(),
        proposal,
        description: p.description.clone(),
        votes_for: p.for_votes.to_string(),
        votes_against: p.against.to_string(),
        votes_abstain: p.abstain.to_string(),
        plan_digest,
        audit_seq,
        audit_hash,
        digest: Digest(B256::ZERO),
    };
    d.digest = d.body_digest();
    Ok(d)
}

/// Check a decision record against the governance store and the plan: its digest recomputes, it approves this
/// plan, the store's audit log verifies and holds the record's head, and the store's executed proposal
/// approved this plan with the recorded tally. Every mismatch is named.
pub fn check_decision(store: &Store, d: &Decision, plan: &PayoutPlan, now: u64) -> Result<(), EngineError> {
    let mut problems = Vec::new();
    if d.schema != DECISION_SCHEMA {
        problems.push(format!("the decision's schema is {:?}, expected {DECISION_SCHEMA:?}", d.schema));
    }
    if d.body_digest() != d.digest {
        problems.push(format!("the decision record was edited: it hashes to {}, not {}", d.body_digest(), d.digest));
    }
    if d.plan_digest != plan.digest {
        problems.push(format!("the decision approves plan {}, not this plan ({})", d.plan_digest, plan.digest));
    }
    match store.verify_audit() {
        Err(b) => problems.push(b.to_string()),
        Ok(n) if n < d.audit_seq => {
            problems.push(format!("the audit log has {n} entries, fewer than the decision's head #{}", d.audit_seq))
        }
        Ok(_) => match store.hash_at(d.audit_seq) {
            Ok(Some(h)) if h == d.audit_hash => {}
            _ => problems.push(format!("audit entry #{} is not the decision's ({})", d.audit_seq, d.audit_hash)),
        },
    }
    let g = store.governor();
    if g.rehearsal {
        problems.push(
            "the governance database is a rehearsal (its clock is the caller's): no payout takes decisions from it"
                .into(),
        );
    }
    match g.proposals.get(&d.proposal) {
        None => problems.push(format!("proposal {} is not in this governance store", d.proposal)),
        Some(p) => {
            if !matches!(g.state(d.proposal, now), Ok(ProposalState::Executed)) {
                problems.push(format!("proposal {} is not executed", d.proposal));
            }
            if (p.for_votes.to_string(), p.against.to_string(), p.abstain.to_string())
                != (d.votes_for.clone(), d.votes_against.clone(), d.votes_abstain.clone())
            {
                problems.push(format!("the recorded tally differs from the store's for proposal {}", d.proposal));
            }
        }
    }
    if g.registry.approved_plans.get(&plan.digest.0) != Some(&d.proposal) {
        problems.push(format!("the store does not record proposal {} as approving plan {}", d.proposal, plan.digest));
    }
    if g.registry.paused {
        problems.push("governance is paused (guardian kill switch)".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Refused(problems))
    }
}

/// Whether the store's audit log already records a plan queued for `plan_digest` (a decision queues its plan
/// once; a second queue, e.g. on another allocator, needs a new decision).
fn already_queued(store: &Store, plan_digest: Digest) -> Result<bool, EngineError> {
    let rows: Result<Vec<String>, _> = store
        .connection()
        .prepare("SELECT payload FROM events WHERE kind = 'record'")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
    let rows = rows.map_err(|e| EngineError::Config(format!("the governance store cannot be read: {e}")))?;
    let want = serde_json::json!(plan_digest);
    Ok(rows.iter().any(|payload| {
        let Ok(allonet_governance::governor::Event {
            act: allonet_governance::governor::Act::Record { kind, detail },
            ..
        }) = serde_json::from_str(payload)
        else {
            return false;
        };
        kind == "plan_queued" && serde_json::from_str::<serde_json::Value>(&detail).is_ok_and(|v| v["plan"] == want)
    }))
}

/// The plan's id on a deployment's allocator.
pub fn plan_id(chain: &mut dyn Chain, d: &Deployment, c: &Commitment) -> B256 {
    c.plan_id(chain.chain_id(), d.allocator, d.asset)
}

/// What queuing a plan under the standing caps did.
#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    pub plan_id: B256,
    pub onchain: OnChainPlan,
    pub gas_used: u64,
}

/// What the contract will check when the agent queues one chain's part of a plan: not already there, not paused,
/// the agent, a veto window of at least [`crate::config::MIN_VETO_DELAY`], the total within what is left of the
/// epoch cap, every recipient in the registry and within its cap. Lists every problem; sends nothing.
pub fn check_queue(chain: &mut dyn Chain, d: &Deployment, agent: Address, c: &Commitment) -> Result<B256, EngineError> {
    let a = d.allocator;
    let id = plan_id(chain, d, c);
    let existing = read_plan(chain, a, id)?;
    if existing.status != "none" {
        return Err(EngineError::Refused(vec![format!("plan {id} is already {} on this allocator", existing.status)]));
    }
    let mut problems = Vec::new();
    if read(chain, a, &AIAllocator::pausedCall {})? {
        problems.push("the allocator is paused".into());
    }
    if read(chain, a, &AIAllocator::agentCall {})? != agent {
        problems.push(format!("{agent} is not the allocator's agent"));
    }
    let veto = read(chain, a, &AIAllocator::vetoDelayCall {})?;
    if veto < crate::config::MIN_VETO_DELAY {
        problems.push(format!(
            "the veto delay is {veto} s, under the {} s the guardian must have: governance must set it first",
            crate::config::MIN_VETO_DELAY
        ));
    }
    let left = read(chain, a, &AIAllocator::remainingEpochAllowanceCall {})?;
    if c.total > left {
        problems.push(format!(
            "the plan's {} units exceed what the agent may still queue this epoch ({left}): above the standing caps a \
             plan needs an on-chain proposal (`allonet gov propose --onchain --approve-plan`)",
            c.total
        ));
    }
    for p in c.batches.iter().flatten() {
        if !read(chain, a, &AIAllocator::isRecipientCall { r: p.recipient })? {
            problems.push(format!("{} is not in the recipient registry", p.recipient));
        } else {
            let r = read(chain, a, &AIAllocator::remainingRecipientAllowanceCall { r: p.recipient })?;
            if p.amount > r {
                problems
                    .push(format!("{} would receive {} but its per-recipient cap leaves {r}", p.recipient, p.amount));
            }
        }
        if problems.len() > 12 {
            problems.push("... (more)".into());
            break;
        }
    }
    if !problems.is_empty() {
        return Err(EngineError::Refused(problems));
    }
    Ok(id)
}

/// The agent queues one chain's part of a plan under the standing authority, after [`check_queue`]. Above the
/// caps the plan must go to an on-chain proposal, and the error says so.
pub fn queue_under_caps(
    chain: &mut dyn Chain,
    d: &Deployment,
    agent: Address,
    c: &Commitment,
) -> Result<Queued, EngineError> {
    let id = check_queue(chain, d, agent, c)?;
    send_queue(chain, d, agent, c, id)
}

/// Send the `queuePlan` a passing [`check_queue`] cleared (its plan id), and read the plan back.
fn send_queue(
    chain: &mut dyn Chain,
    d: &Deployment,
    agent: Address,
    c: &Commitment,
    id: B256,
) -> Result<Queued, EngineError> {
    let r: Receipt = transact(chain, agent, d.allocator, &queue_call(c))?;
    Ok(Queued { plan_id: id, onchain: read_plan(chain, d.allocator, id)?, gas_used: r.gas_used })
}

/// The agent queues every chain's part of a plan under the standing caps ([`queue_under_caps`] on each), after
/// the caller checked the decision it is queued under. Chains are queued in order; a refusal names its chain.
pub fn queue_on_chains(
    plan: &PayoutPlan,
    targets: Vec<crate::connect::ChainTarget>,
    on_queued: &mut dyn FnMut(&str, &Queued) -> Result<(), EngineError>,
) -> Result<Vec<(String, Queued)>, EngineError> {
    let mut commitments = plan.commitments();
    let mut ready = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for t in targets {
        let label = t.label();
        let Some(c) = commitments.remove(&t.name) else {
            problems.push(format!("chain {label:?}: the plan has no payments there"));
            continue;
        };
        let d = t.deployment.deployment.clone();
        let prefix = |r: Vec<String>| r.into_iter().map(|x| format!("chain {label:?}: {x}")).collect::<Vec<_>>();
        let (mut conn, _) = match crate::connect::connect(&t.connect, Some(&t.deployment.endpoint)) {
            Ok(c) => c,
            Err(e) => {
                problems.extend(prefix(e.reasons()));
                continue;
            }
        };
        let chain = conn.chain();
        if chain.chain_id() != d.chain_id
            || d.asset_decimals != plan.token.decimals
            || !seen.insert((d.chain_id, d.allocator))
        {
            problems.push(format!(
                "chain {label:?}: endpoint chain {} against deployment chain {}, plan decimals {} against the allocator's {}, \
                 or an allocator another part of the plan uses",
                chain.chain_id(),
                d.chain_id,
                plan.token.decimals,
                d.asset_decimals
            ));
            continue;
        }
        let agent = if conn.is_embedded() { Some(d.agent) } else { conn.chain().signers().first().copied() };
        let Some(agent) = agent else {
            problems.push(format!("chain {label:?}: no signing key"));
            continue;
        };
        match check_queue(conn.chain(), &d, agent, &c) {
            Ok(id) => ready.push((label, conn, d, agent, c, id)),
            Err(e) => problems.extend(prefix(e.reasons())),
        }
    }
    if !problems.is_empty() {
        return Err(EngineError::Refused(problems));
    }
    let mut out = Vec::new();
    for (label, mut conn, d, agent, c, id) in ready {
        let q = send_queue(conn.chain(), &d, agent, &c, id)?;
        conn.save()?;
        on_queued(&label, &q)?;
        out.push((label, q));
    }
    Ok(out)
}

/// The typed actions an on-chain proposal asks for, as given on a command line or by a service.
#[derive(Debug, Clone, Default)]
pub struct ActionRequest {
    /// Approve this plan file's part on `chain`.
    pub approve_plan: Option<std::path::PathBuf>,
    pub chain: Option<String>,
    /// Caps and veto delay from this `allonet.toml`.
    pub standing: Option<std::path::PathBuf>,
    /// `EPOCH,RECIPIENT` in whole tokens of the allocator's asset.
    pub caps: Option<String>,
    /// Add every recipient of this plan file (or CSV `address` column) to the registry.
    pub registry: Option<std::path::PathBuf>,
    pub veto_delay: Option<u64>,
    pub set_agent: Option<String>,
    pub set_guardian: Option<String>,
    pub unpause: bool,
    pub cancel_plan: Option<String>,
}

fn address(s: &str, what: &str) -> Result<Address, EngineError> {
    allonet_core::Address::parse(s).map(|a| a.0).map_err(|e| EngineError::Config(format!("{what}: {e}")))
}

/// Refuse a file whose token decimals are not the allocator's asset's.
fn same_decimals(p: &std::path::Path, what: &str, decimals: u8, d: &Deployment) -> Result<(), EngineError> {
    if decimals == d.asset_decimals {
        return Ok(());
    }
    Err(EngineError::Config(format!(
        "{}: {what} {decimals} decimals but the allocator's asset has {}",
        p.display(),
        d.asset_decimals
    )))
}

/// The allocator calls a request asks for, in a fixed order; amounts in whole tokens of the allocator's asset.
pub fn proposal_actions(a: &ActionRequest, d: &Deployment) -> Result<Vec<Action>, EngineError> {
    let token = Token::new(d.asset_symbol.clone(), d.asset_decimals);
    let mut out = Vec::new();
    if let Some(p) = &a.approve_plan {
        let plan = allonet_chain::plan::PayoutPlan::load(p)?;
        same_decimals(p, "the plan pays", plan.token.decimals, d)?;
        out.push(Action::approve(&commitment(&plan, a.chain.as_deref())?));
    }
    if let Some(p) = &a.standing {
        let cfg = crate::config::DaoConfig::load(p)?;
        same_decimals(p, "its token has", cfg.token.decimals, d)?;
        out.extend(cfg.standing_actions());
    }
    if let Some(c) = &a.caps {
        let (e, r) = c
            .split_once(',')
            .ok_or_else(|| EngineError::Config("--caps EPOCH,RECIPIENT in whole tokens, e.g. 10000,2500".into()))?;
        let parse = |s: &str| {
            token.parse(s.trim()).map(|t| t.units()).map_err(|e| EngineError::Config(format!("--caps {s:?}: {e}")))
        };
        out.push(Action::SetCaps { epoch_cap: parse(e)?, recipient_cap: parse(r)? });
    }
    if let Some(p) = &a.registry {
        out.push(Action::SetRecipients { recipients: registry(p, a.chain.as_deref())?, allowed: true });
    }
    if let Some(s) = a.veto_delay {
        out.push(Action::SetVetoDelay { seconds: s });
    }
    if let Some(s) = &a.set_agent {
        out.push(Action::SetAgent { agent: address(s, "--set-agent")? });
    }
    if let Some(s) = &a.set_guardian {
        out.push(Action::SetGuardian { guardian: address(s, "--set-guardian")? });
    }
    if a.unpause {
        out.push(Action::Unpause);
    }
    if let Some(s) = &a.cancel_plan {
        out.push(Action::CancelPlan {
            plan_id: s.parse().map_err(|_| EngineError::Config(format!("--cancel-plan {s:?} is not a plan id")))?,
        });
    }
    if out.is_empty() {
        return Err(EngineError::Config(
            "an on-chain proposal needs an action: --approve-plan, --standing, --caps, --registry, --veto-delay, \
             --set-agent, --set-guardian, --unpause or --cancel-plan"
                .into(),
        ));
    }
    Ok(out)
}

/// Registry addresses: a plan file's recipients (on `chain`), or a CSV's `address` column.
fn registry(p: &std::path::Path, chain: Option<&str>) -> Result<Vec<Address>, EngineError> {
    if p.extension().and_then(|e| e.to_str()) == Some("json") {
        let plan = allonet_chain::plan::PayoutPlan::load(p)?;
        let c = commitment(&plan, chain)?;
        return Ok(c.batches.iter().flatten().map(|x| x.recipient).collect());
    }
    let t = allonet_core::Table::read(p)?;
    let col = t.require_one_of(&["address", "recipient"], "address")?;
    t.rows()
        .map(|r| {
            allonet_core::Address::parse(r.get(col)).map(|a| a.0).map_err(|e| t.error(r, col, e.to_string()).into())
        })
        .collect()
}

/// An off-chain decision checked against its store, which is also the audit log the money path appends to.
pub struct CheckedDecision {
    store: Store,
    decision: Decision,
}

impl CheckedDecision {
    /// Append a payout made under this decision to its audit log; returns the entry.
    pub fn record_payout(
        &mut self,
        plan: &PayoutPlan,
        reports: &[crate::pay::ChainPayout],
        now: u64,
    ) -> Result<u64, EngineError> {
        let detail = serde_json::json!({"plan": plan.digest, "decision": self.decision.digest, "chains": reports});
        crate::audit::record(&mut self.store, "payout", &detail, now)
    }

    /// The checked record.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

/// Load a decision record and its store (writable with the operator's key, from `operator_key` or beside the
/// database, so that what is done under the decision is recorded), [`check_decision`] them against `plan` at
/// `now`, and require the decision to be anchored on the chain of `deployment` ([`require_anchored`]).
pub fn load_decision(
    decision: &std::path::Path,
    db: &std::path::Path,
    operator_key: Option<&std::path::Path>,
    plan: &PayoutPlan,
    now: u64,
    deployment: &std::path::Path,
    rpc: Option<String>,
) -> Result<CheckedDecision, EngineError> {
    let store = crate::offchain::open_writable(db, operator_key)?;
    let decision = Decision::load(decision)?;
    check_decision(&store, &decision, plan, now)?;
    require_anchored(&store, &decision, deployment, rpc)?;
    Ok(CheckedDecision { store, decision })
}

/// A decision pays only once the log that holds it is anchored on chain up to its head: the log must match every
/// anchor its operator wrote (no rewrite, no deleted tail, no entry backdated behind an anchor), and the latest
/// anchor must cover the decision's audit head, so that what it relied on cannot be rewritten unnoticed.
pub fn require_anchored(
    store: &Store,
    d: &Decision,
    deployment: &std::path::Path,
    rpc: Option<String>,
) -> Result<crate::audit::AnchorCheck, EngineError> {
    let log = store.verified_log().map_err(|b| EngineError::Refused(vec![b.to_string()]))?;
    let c =
        crate::audit::check_anchored(&log, deployment, rpc).map_err(|e| EngineError::Refused(vec![e.to_string()]))?;
    let last = c.anchors.last().map(|a| a.seq).unwrap_or(0);
    if last < d.audit_seq {
        return Err(EngineError::Refused(vec![format!(
            "the decision's audit head #{} is not anchored on chain yet (the latest anchor is #{last}): run `allonet gov \
             audit anchor` first",
            d.audit_seq
        )]));
    }
    Ok(c)
}

/// [`queue_on_chains`] under a checked decision, appending the result to its audit log; returns what was queued
/// and the audit entry.
pub fn queue_under_decision(
    plan: &PayoutPlan,
    targets: Vec<crate::connect::ChainTarget>,
    d: &mut CheckedDecision,
    now: u64,
) -> Result<(Vec<(String, Queued)>, u64), EngineError> {
    if already_queued(&d.store, plan.digest)? {
        return Err(EngineError::Refused(vec![format!(
            "the audit log already records plan {} as queued under a decision: a decision queues its plan once",
            plan.digest
        )]));
    }
    let (store, digest) = (&mut d.store, d.decision.digest);
    let mut last = 0;
    let queued = queue_on_chains(plan, targets, &mut |chain, q| {
        let detail = serde_json::json!({"plan": plan.digest, "decision": digest, "chain": chain, "queued": q});
        last = crate::audit::record(store, "plan_queued", &detail, now)?;
        Ok(())
    })?;
    Ok((queued, last))
}

/// Connect to a deployment's chain with `key` as the sender (RPC, or `rpc` instead of the recorded endpoint); on
/// the embedded EVM the key's address is funded if it is not already (rehearsals have accounts, not signatures).
pub fn open_deployment(
    deployment: &std::path::Path,
    rpc: Option<String>,
    key: Option<&alloy_signer_local::PrivateKeySigner>,
) -> Result<(crate::connect::Connection, crate::connect::DeploymentFile), EngineError> {
    use crate::connect::{connect, ConnectSpec, Connection, DeploymentFile};
    let dep = DeploymentFile::load(deployment)?;
    let spec = ConnectSpec { rpc, key_env: "ALLONET_KEY".into(), key: key.cloned(), ..Default::default() };
    let (mut conn, _) = connect(&spec, Some(&dep.endpoint))?;
    if let (Connection::Embedded(e, _), Some(k)) = (&mut conn, key) {
        if !e.signers().contains(&k.address()) {
            e.fund(k.address(), U256::from(10u64).pow(U256::from(21)));
        }
    }
    if conn.chain().chain_id() != dep.deployment.chain_id {
        return Err(EngineError::Config(format!(
            "the endpoint is chain {} but the deployment is on chain {}",
            conn.chain().chain_id(),
            dep.deployment.chain_id
        )));
    }
    Ok((conn, dep))
}

/// A proposal id from its decimal or 0x-hex form.
pub fn parse_proposal_id(s: &str) -> Result<U256, EngineError> {
    s.parse::<U256>()
        .map_err(|_| EngineError::Config(format!("--proposal {s:?} is not a proposal id (decimal or 0x hex)")))
}

/// What one on-chain governance transaction did: its gas and the proposal's status after it.
pub struct GovTx {
    pub proposal: U256,
    pub gas_used: u64,
    pub status: allonet_chain::governor::ProposalStatus,
}

/// Propose `actions` on the deployment's allocator.
pub fn propose_onchain(
    conn: &mut crate::connect::Connection,
    d: &Deployment,
    proposer: Address,
    actions: &[Action],
    description: &str,
) -> Result<GovTx, EngineError> {
    use allonet_chain::governor as g;
    let p = g::Proposal::new(d.allocator, actions, description);
    let (id, r) = g::propose(conn.chain(), d.governor, proposer, &p)?;
    conn.save()?;
    Ok(GovTx { proposal: id, gas_used: r.gas_used, status: g::status(conn.chain(), d.governor, id)? })
}

/// Vote directly, or (with a relayer) by an EIP-712 signature the relayer sends.
pub fn vote_onchain(
    conn: &mut crate::connect::Connection,
    d: &Deployment,
    id: U256,
    support: u8,
    voter: &alloy_signer_local::PrivateKeySigner,
    relayer: Option<Address>,
) -> Result<GovTx, EngineError> {
    use allonet_chain::governor as g;
    let r = match relayer {
        None => g::cast_vote(conn.chain(), d.governor, voter.address(), id, support)?,
        Some(rel) => {
            let sig = g::sign_ballot(conn.chain(), d.governor, voter, id, support)?;
            g::cast_vote_by_sig(conn.chain(), d.governor, rel, id, support, voter.address(), sig)?
        }
    };
    conn.save()?;
    Ok(GovTx { proposal: id, gas_used: r.gas_used, status: g::status(conn.chain(), d.governor, id)? })
}

/// A step of a proposal's life after the vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Queue a succeeded proposal in the timelock (anyone).
    Queue,
    /// Execute it once the timelock delay passed (anyone).
    Execute,
    /// Cancel its queued timelock operation (the guardian, or the governor).
    Cancel,
}

/// Queue, execute or cancel a proposal, read back from the chain's `ProposalCreated` event.
pub fn step_onchain(
    conn: &mut crate::connect::Connection,
    d: &Deployment,
    id: U256,
    step: Step,
    sender: Address,
) -> Result<GovTx, EngineError> {
    use allonet_chain::governor as g;
    let p = g::find_proposal(conn.chain(), d.governor, id, d.from_block)?;
    let c = conn.chain();
    let r = match step {
        Step::Queue => g::queue(c, d.governor, sender, &p),
        Step::Execute => g::execute(c, d.governor, sender, &p),
        Step::Cancel => g::cancel_queued(c, d.governor, d.timelock, sender, &p),
    }
    .map_err(|e| EngineError::Config(format!("{} proposal {id}: {e}", format!("{step:?}").to_lowercase())))?;
    conn.save()?;
    Ok(GovTx { proposal: id, gas_used: r.gas_used, status: g::status(conn.chain(), d.governor, id)? })
}
