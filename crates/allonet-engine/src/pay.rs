//! Paying a plan across chains: resolve every chain, check every chain's approval, pause, caps, registry and
//! balance, and only then pay any of them; batches, resume after a crash (the allocator's bitmap says what is
//! paid), and reconcile paid against approved from the chain's events.

use std::collections::BTreeSet;
use std::time::Duration;

use allonet_chain::payout::{
    check, execute_checked, reconcile, BatchReport, PayoutReport, PlanStatus, Reconciliation, Target,
};
use allonet_chain::plan::{Commitment, PayoutPlan};
use alloy_primitives::Address;
use serde::Serialize;

use crate::connect::{connect, ChainTarget, Connection};
use crate::EngineError;

/// Who sends the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer {
    /// The allocator's agent (the normal case).
    Agent,
    /// The allocator's owner (embedded rehearsals where the owner is a plain account).
    Owner,
}

/// How to pay.
#[derive(Debug, Clone)]
pub struct PayOptions {
    pub payer: Payer,
    /// Check and estimate every batch; send nothing.
    pub dry_run: bool,
    /// Wait between batches.
    pub interval: Duration,
    /// Refuse a chain where the plan is only queued by the agent (not approved by governance on chain): set
    /// unless the caller has checked the off-chain decision the agent queued it under.
    pub require_decision_for_queued: bool,
}

impl Default for PayOptions {
    fn default() -> Self {
        PayOptions { payer: Payer::Agent, dry_run: false, interval: Duration::ZERO, require_decision_for_queued: true }
    }
}

/// What the front end is told while paying (progress bars, streamed lines).
pub trait Observer {
    /// A chain is about to be paid.
    fn chain_started(&mut self, _label: &str, _describe: &str, _status: &PlanStatus) {}
    /// A batch landed (or, in a dry run, was estimated).
    fn batch(&mut self, _label: &str, _batch: &BatchReport, _status: &PlanStatus) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// One chain's payout.
#[derive(Debug, Clone, Serialize)]
pub struct ChainPayout {
    pub chain: String,
    pub status: PlanStatus,
    pub report: PayoutReport,
    /// Paid against approved, from events (after a real run).
    pub reconciliation: Option<Reconciliation>,
}

/// A chain connected, checked and ready to pay.
pub struct Checked {
    pub target: ChainTarget,
    pub connection: Connection,
    pub payer: Target,
    pub commitment: Commitment,
    pub status: PlanStatus,
}

/// Connect to every chain of the plan and check its part: chain id and decimals agree with the deployment, the
/// payer holds a key, each allocator appears once, and [`check`] passes. Every problem on every chain is
/// collected; nothing is sent.
pub fn check_all(plan: &PayoutPlan, targets: Vec<ChainTarget>, opts: &PayOptions) -> Result<Vec<Checked>, EngineError> {
    let mut commitments = plan.commitments();
    let mut problems = Vec::new();
    let mut ready = Vec::new();
    let mut seen = BTreeSet::new();
    for target in targets {
        let label = target.label();
        let Some(commitment) = commitments.remove(&target.name) else {
            problems.push(format!("chain {label:?}: the plan has no payments there"));
            continue;
        };
        let d = target.deployment.deployment.clone();
        let (mut conn, _) = match connect(&target.connect, Some(&target.deployment.endpoint)) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("chain {label:?}: {e}"));
                continue;
            }
        };
        let chain = conn.chain();
        if chain.chain_id() != d.chain_id {
            problems.push(format!(
                "chain {label:?}: the endpoint is chain {} but the deployment is on chain {}",
                chain.chain_id(),
                d.chain_id
            ));
            continue;
        }
        if d.asset_decimals != plan.token.decimals {
            problems.push(format!(
                "chain {label:?}: the plan pays {} ({} decimals) but the allocator pays {} ({} decimals)",
                plan.token.symbol, plan.token.decimals, d.asset_symbol, d.asset_decimals
            ));
            continue;
        }
        if !seen.insert((d.chain_id, d.allocator)) {
            problems.push(format!(
                "chain {label:?} resolves to allocator {} on chain {}, which another part of this plan already uses",
                d.allocator, d.chain_id
            ));
            continue;
        }
        let payer = match (&conn, opts.payer) {
            (Connection::Embedded(..), Payer::Agent) => Some(d.agent),
            (Connection::Embedded(..), Payer::Owner) => {
                allonet_chain::read(conn.chain(), d.allocator, &allonet_chain::contracts::AIAllocator::ownerCall {})
                    .ok()
            }
            (Connection::Rpc(r), _) => allonet_chain::Chain::signers(r).first().copied(),
        };
        let Some(payer) = payer else {
            problems
                .push(format!("chain {label:?}: no signing key (set {} or give a key file)", target.connect.key_env));
            continue;
        };
        let t = Target { allocator: d.allocator, payer };
        match check(conn.chain(), &t, &commitment) {
            Ok(status) if status.onchain.status == "queued" && opts.require_decision_for_queued => {
                problems.push(format!(
                "chain {label:?}: plan {} was queued by the agent, not approved on chain: give the off-chain decision \
                 it was queued under (--decision with --db) so it can be checked",
                status.plan_id
            ))
            }
            Ok(status) => ready.push(Checked { target, connection: conn, payer: t, commitment, status }),
            Err(e) => {
                problems.extend(EngineError::from(e).reasons().into_iter().map(|r| format!("chain {label:?}: {r}")))
            }
        }
    }
    for (name, _) in commitments {
        problems.push(format!(
            "chain {:?}: the plan pays there but no deployment was given for it",
            name.unwrap_or_else(|| "default".into())
        ));
    }
    if !problems.is_empty() {
        return Err(EngineError::Refused(problems));
    }
    Ok(ready)
}

impl EngineError {
    /// The reasons of a refusal (one for any other error).
    pub fn reasons(&self) -> Vec<String> {
        match self {
            EngineError::Refused(r) => r.clone(),
            e => vec![e.to_string()],
        }
    }
}

/// Pay a plan on every chain it names: [`check_all`] first, then each chain's missing batches, then reconcile.
pub fn pay_plan(
    plan: &PayoutPlan,
    targets: Vec<ChainTarget>,
    opts: &PayOptions,
    observer: &mut dyn Observer,
) -> Result<Vec<ChainPayout>, EngineError> {
    let ready = check_all(plan, targets, opts)?;
    let mut out = Vec::new();
    for Checked { target, mut connection, payer, commitment, status } in ready {
        let label = target.label();
        let describe = connection.chain().describe();
        observer.chain_started(&label, &describe, &status);
        let run = allonet_chain::payout::PayoutOptions { interval: opts.interval, dry_run: opts.dry_run };
        let result = execute_checked(connection.chain(), &payer, &commitment, &status, &run, &mut |b, s| {
            observer.batch(&label, b, s)
        });
        // Save what landed even when a later batch failed.
        connection.save()?;
        let report = result.map_err(|e| match EngineError::from(e) {
            EngineError::Refused(r) => {
                EngineError::Refused(r.into_iter().map(|r| format!("chain {label:?}: {r}")).collect())
            }
            e => e,
        })?;
        let reconciliation = if opts.dry_run {
            None
        } else {
            let d = &target.deployment.deployment;
            Some(reconcile(connection.chain(), d.allocator, status.plan_id, d.from_block, &commitment)?)
        };
        out.push(ChainPayout { chain: label, status, report, reconciliation });
    }
    Ok(out)
}

/// The allocator a deployment file names, as a target for reads.
pub fn reader(d: &allonet_chain::deploy::Deployment) -> Target {
    Target { allocator: d.allocator, payer: Address::ZERO }
}

/// An allocator's state for people: roles, pause, balance, the standing caps and what is left of them, and, when
/// a plan is given, where that plan stands on it.
#[derive(Debug, Clone, Serialize)]
pub struct AllocatorStatus {
    pub chain: String,
    pub block: u64,
    pub allocator: Address,
    pub owner: Address,
    /// Whether the owner is the deployment's timelock (governance).
    pub owned_by_timelock: bool,
    pub agent: Address,
    pub guardian: Address,
    pub paused: bool,
    #[serde(serialize_with = "dec")]
    pub balance: alloy_primitives::U256,
    #[serde(serialize_with = "dec")]
    pub epoch_cap: alloy_primitives::U256,
    #[serde(serialize_with = "dec")]
    pub recipient_cap: alloy_primitives::U256,
    pub veto_delay: u64,
    pub epoch: u64,
    #[serde(serialize_with = "dec")]
    pub left_this_epoch: alloy_primitives::U256,
    pub plan: Option<PlanOnAllocator>,
}

/// A plan's place on one allocator.
#[derive(Debug, Clone, Serialize)]
pub struct PlanOnAllocator {
    pub digest: allonet_core::Digest,
    pub plan_id: alloy_primitives::B256,
    pub onchain: allonet_chain::payout::OnChainPlan,
    pub batches: usize,
    pub paid_batches: usize,
    #[serde(serialize_with = "dec")]
    pub total: alloy_primitives::U256,
}

use allonet_chain::payout::dec;

/// Read an allocator's status (and a plan's part on `chain`, when given).
pub fn allocator_status(
    conn: &mut Connection,
    d: &allonet_chain::deploy::Deployment,
    plan: Option<(&PayoutPlan, Option<&str>)>,
) -> Result<AllocatorStatus, EngineError> {
    use allonet_chain::contracts::AIAllocator as A;
    use allonet_chain::read;
    let c = conn.chain();
    let a = d.allocator;
    let owner = read(c, a, &A::ownerCall {})?;
    let mut status = AllocatorStatus {
        chain: c.describe(),
        block: c.block_number()?,
        allocator: a,
        owner,
        owned_by_timelock: owner == d.timelock,
        agent: read(c, a, &A::agentCall {})?,
        guardian: read(c, a, &A::guardianCall {})?,
        paused: read(c, a, &A::pausedCall {})?,
        balance: allonet_chain::payout::asset_balance(c, d.asset, a)?,
        epoch_cap: read(c, a, &A::epochCapCall {})?,
        recipient_cap: read(c, a, &A::recipientCapCall {})?,
        veto_delay: read(c, a, &A::vetoDelayCall {})?,
        epoch: read(c, a, &A::currentEpochCall {})?.saturating_to(),
        left_this_epoch: read(c, a, &A::remainingEpochAllowanceCall {})?,
        plan: None,
    };
    if let Some((plan, chain)) = plan {
        let commitment = crate::govern::commitment(plan, chain)?;
        let id = commitment.plan_id(c.chain_id(), a, d.asset);
        let onchain = allonet_chain::payout::read_plan(c, a, id)?;
        let mut paid_batches = 0;
        for i in 0..commitment.batches.len() {
            if onchain.status != "none"
                && read(c, a, &A::batchPaidCall { id, batchIndex: alloy_primitives::U256::from(i) })?
            {
                paid_batches += 1;
            }
        }
        status.plan = Some(PlanOnAllocator {
            digest: plan.digest,
            plan_id: id,
            onchain,
            batches: commitment.batches.len(),
            paid_batches,
            total: commitment.total,
        });
    }
    Ok(status)
}

/// [`pay_plan`], paying plans the agent queued only under a checked off-chain decision, whose audit log then gets
/// the payout appended (not for a dry run). Returns the payouts and the audit entry.
pub fn pay_governed(
    plan: &PayoutPlan,
    targets: Vec<ChainTarget>,
    opts: &PayOptions,
    decision: Option<&mut crate::govern::CheckedDecision>,
    now: u64,
    observer: &mut dyn Observer,
) -> Result<(Vec<ChainPayout>, Option<u64>), EngineError> {
    let opts = PayOptions { require_decision_for_queued: decision.is_none(), ..opts.clone() };
    let reports = pay_plan(plan, targets, &opts, observer)?;
    let seq = match (decision, opts.dry_run) {
        (Some(d), false) => Some(d.record_payout(plan, &reports, now)?),
        _ => None,
    };
    Ok((reports, seq))
}
