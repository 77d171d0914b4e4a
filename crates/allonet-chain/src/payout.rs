//! Executing a payout plan through `AIAllocator.payBatch`: checked whole before anything is sent, one
//! transaction per committed batch, idempotent.
//!
//! A chain's part of a plan is paid only when the allocator holds it as approved (by its owner, the
//! governance timelock) or as queued by the agent and past its veto delay; [`check`] reads that state and
//! refuses, naming every reason, before a single transaction is sent. The contract checks it all again:
//! each batch is proved against the approved Merkle root, paid at most once (a bitmap per plan), and the
//! plan never pays beyond its total, so neither a hand-edited plan nor a stale transaction can pay more.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolEvent;
use serde::Serialize;

use crate::chain::{read, Chain, ChainError, LogFilter, Tx};
use crate::contracts::{AIAllocator, PayToken};
use crate::plan::Commitment;

/// Token amounts in reports serialise as decimal strings (base units), like `TokenAmount` everywhere else.
pub fn dec<S: serde::Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// Errors of a payout.
#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    /// The plan cannot be executed as it stands; nothing was sent.
    #[error("payout refused, nothing sent:\n  - {}", .0.join("\n  - "))]
    Refused(Vec<String>),
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// How to execute.
#[derive(Debug, Clone, Default)]
pub struct PayoutOptions {
    /// Wait between batches (public endpoints rate-limit).
    pub interval: Duration,
    /// Check the plan and estimate every batch, send nothing.
    pub dry_run: bool,
}

/// Which allocator to pay through, and as whom.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub allocator: Address,
    pub payer: Address,
}

/// A plan as the allocator holds it (`AIAllocator.plans`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OnChainPlan {
    /// `none`, `approved`, `queued` or `cancelled`.
    pub status: &'static str,
    #[serde(serialize_with = "dec")]
    pub total: U256,
    #[serde(serialize_with = "dec")]
    pub paid: U256,
    /// Unix time from which it may pay.
    pub payable_at: u64,
    pub batches: u64,
}

/// Read plan `id` from the allocator.
pub fn read_plan(chain: &mut dyn Chain, allocator: Address, id: B256) -> Result<OnChainPlan, ChainError> {
    let p = read(chain, allocator, &AIAllocator::plansCall(id))?;
    let status = match p.status {
        0 => "none",
        1 => "approved",
        2 => "queued",
        _ => "cancelled",
    };
    Ok(OnChainPlan {
        status,
        total: U256::from(p.total),
        paid: U256::from(p.paid),
        payable_at: p.payableAt.to::<u64>(),
        batches: u64::from(p.batches),
    })
}

/// State of a plan on one chain, read before paying.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStatus {
    pub chain_id: u64,
    pub allocator: Address,
    pub payer: Address,
    pub payer_role: &'static str,
    /// The plan's id on this allocator (chain id, allocator and asset bound in).
    pub plan_id: B256,
    pub root: B256,
    pub onchain: OnChainPlan,
    pub paused: bool,
    pub recipients: usize,
    pub paid_recipients: usize,
    pub batches: usize,
    pub paid_batches: usize,
    #[serde(serialize_with = "dec")]
    pub paid: U256,
    #[serde(serialize_with = "dec")]
    pub missing: U256,
    /// Batch indices still to pay, in order.
    #[serde(skip)]
    pub remaining: Vec<usize>,
    #[serde(serialize_with = "dec")]
    pub balance: U256,
}

/// One batch sent (or, in a dry run, estimated).
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub index: u64,
    pub count: usize,
    #[serde(serialize_with = "dec")]
    pub total: U256,
    pub gas_used: u64,
    pub tx_hash: Option<B256>,
    pub block: u64,
}

/// What a payout did.
#[derive(Debug, Clone, Serialize)]
pub struct PayoutReport {
    pub chain_id: u64,
    pub plan_id: B256,
    /// Batches paid before this run.
    pub already_paid: usize,
    pub batches: Vec<BatchReport>,
    #[serde(serialize_with = "dec")]
    pub paid_now: U256,
    pub recipients_now: usize,
    pub gas_used: u64,
    pub complete: bool,
}

/// What each recipient has received under `plan_id`, from the allocator's events: the `BatchPaid` logs
/// carrying the digest, and in each of their blocks the `FundsAllocated` logs that precede each such
/// `BatchPaid` in its transaction (the batch's `count` of them, so a transaction that carried other payments
/// too, e.g. a Safe multisend, is attributed correctly). Returns what each recipient was paid.
pub fn paid_from_events(
    chain: &mut dyn Chain,
    allocator: Address,
    plan_id: B256,
    from_block: u64,
) -> Result<BTreeMap<Address, U256>, ChainError> {
    let batches = chain.logs(&LogFilter {
        address: allocator,
        topic0: vec![AIAllocator::BatchPaid::SIGNATURE_HASH],
        topic1: Some(plan_id),
        topic2: None,
        from_block,
        to_block: None,
    })?;
    let blocks: BTreeSet<u64> = batches.iter().map(|l| l.block).collect();
    let mut paid = BTreeMap::new();
    for block in blocks {
        let mut logs = chain.logs(&LogFilter {
            address: allocator,
            topic0: vec![AIAllocator::FundsAllocated::SIGNATURE_HASH, AIAllocator::BatchPaid::SIGNATURE_HASH],
            topic1: None,
            topic2: None,
            from_block: block,
            to_block: Some(block),
        })?;
        logs.sort_by_key(|l| l.log_index);
        let mut pending: BTreeMap<B256, Vec<(Address, U256)>> = BTreeMap::new();
        for log in &logs {
            let tx = pending.entry(log.tx_hash).or_default();
            if let Some(ev) = log.decode::<AIAllocator::FundsAllocated>() {
                tx.push((ev.recipient, ev.amount));
            } else if let Some(ev) = log.decode::<AIAllocator::BatchPaid>() {
                let mine = std::mem::take(tx);
                if ev.planId == plan_id {
                    let n = ev.count.saturating_to::<usize>().min(mine.len());
                    for &(r, a) in &mine[mine.len() - n..] {
                        let e = paid.entry(r).or_insert(U256::ZERO);
                        *e = e.saturating_add(a);
                    }
                }
            }
        }
    }
    Ok(paid)
}

/// One transaction that moved a plan on chain, found from the allocator's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanTransaction {
    /// `approved` (governance), `queued` (the agent, under the caps), `cancelled` or `batch`.
    pub kind: &'static str,
    /// The batch index, for a `batch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<u64>,
    pub tx_hash: B256,
    pub block: u64,
    /// Gas used, from the transaction's receipt (`None` when the node no longer has it).
    pub gas_used: Option<u64>,
}

/// Every transaction that approved, queued, cancelled or paid a batch of `plan_id` on the allocator, in chain
/// order, with the gas each used: the record of what a payout cost, rebuilt from the chain alone (a run that was
/// interrupted and resumed reports the transactions of both).
pub fn plan_transactions(
    chain: &mut dyn Chain,
    allocator: Address,
    plan_id: B256,
    from_block: u64,
) -> Result<Vec<PlanTransaction>, ChainError> {
    let logs = chain.logs(&LogFilter {
        address: allocator,
        topic0: vec![
            AIAllocator::PlanApproved::SIGNATURE_HASH,
            AIAllocator::PlanQueued::SIGNATURE_HASH,
            AIAllocator::PlanCancelled::SIGNATURE_HASH,
            AIAllocator::BatchPaid::SIGNATURE_HASH,
        ],
        topic1: Some(plan_id),
        topic2: None,
        from_block,
        to_block: None,
    })?;
    let mut out = Vec::with_capacity(logs.len());
    for l in logs {
        let (kind, batch) = match l.topics[0] {
            t if t == AIAllocator::PlanApproved::SIGNATURE_HASH => ("approved", None),
            t if t == AIAllocator::PlanQueued::SIGNATURE_HASH => ("queued", None),
            t if t == AIAllocator::PlanCancelled::SIGNATURE_HASH => ("cancelled", None),
            _ => ("batch", l.decode::<AIAllocator::BatchPaid>().map(|e| e.batchIndex.saturating_to::<u64>())),
        };
        let gas_used = chain.gas_used(l.tx_hash)?;
        out.push(PlanTransaction { kind, batch, tx_hash: l.tx_hash, block: l.block, gas_used });
    }
    Ok(out)
}

/// Balance of the allocator in its asset.
pub fn asset_balance(chain: &mut dyn Chain, asset: Address, who: Address) -> Result<U256, ChainError> {
    if asset == Address::ZERO {
        chain.balance(who)
    } else {
        read(chain, asset, &PayToken::balanceOfCall { account: who })
    }
}

/// Read the plan's state on this chain and check that the rest of it can be paid: the allocator holds it as
/// approved, or as queued and past its veto delay (and every queued recipient is in the registry and within
/// its cap); it is not paused; the payer is the agent or the owner and this backend holds its key; the
/// allocator holds enough. Returns the status; `Err(Refused)` lists every problem found. Sends nothing.
pub fn check(chain: &mut dyn Chain, target: &Target, plan: &Commitment) -> Result<PlanStatus, PayoutError> {
    let Target { allocator, payer } = *target;
    let owner = read(chain, allocator, &AIAllocator::ownerCall {}).map_err(|e| {
        PayoutError::Refused(vec![format!("no AIAllocator at {allocator} on chain {}: {e}", chain.chain_id())])
    })?;
    let agent = read(chain, allocator, &AIAllocator::agentCall {})?;
    let paused = read(chain, allocator, &AIAllocator::pausedCall {})?;
    let asset = read(chain, allocator, &AIAllocator::assetCall {})?;
    let chain_id = chain.chain_id();
    let id = plan.plan_id(chain_id, allocator, asset);
    let onchain = read_plan(chain, allocator, id)?;
    let now = chain.timestamp()?;
    let mut problems = Vec::new();
    let payer_role = if payer == agent {
        "agent"
    } else if payer == owner {
        "owner"
    } else {
        problems.push(format!("{payer} is neither the allocator's agent ({agent}) nor its owner ({owner})"));
        "none"
    };
    if !chain.signers().contains(&payer) {
        problems.push(format!("{payer} is not an account this backend can send from (no key for it)"));
    }
    if paused {
        problems.push("the allocator is paused (guardian kill switch): no funds move until governance unpauses".into());
    }
    match onchain.status {
        "none" => problems.push(format!(
            "plan {id} (root {}, total {} base units, {} batches) is not approved on chain {chain_id} allocator {allocator}: \
             governance must approve it (`approvePlan`) or the agent queue it within the standing caps",
            plan.root(),
            plan.total,
            plan.batches.len()
        )),
        "cancelled" => problems.push(format!("plan {id} was cancelled on chain {chain_id}: it can never pay again")),
        "queued" if now < onchain.payable_at => problems.push(format!(
            "plan {id} is queued and in its veto window until {} ({} s from now): it cannot pay before then",
            onchain.payable_at,
            onchain.payable_at - now
        )),
        "queued" => {
            let expiry = onchain.payable_at.saturating_add(read(chain, allocator, &AIAllocator::epochLengthCall {})?);
            // The next block is at least one second later than the latest.
            if now.saturating_add(1) > expiry {
                problems.push(format!(
                    "plan {id} was queued and expired at {expiry}, one epoch after its veto window: only governance can \
                     revive it now (`approvePlan` through a proposal)"
                ));
            }
        }
        _ => {}
    }
    let mut remaining = Vec::new();
    let (mut paid_sum, mut missing, mut paid_recipients) = (U256::ZERO, U256::ZERO, 0);
    for (i, batch) in plan.batches.iter().enumerate() {
        let sum: U256 = batch.iter().map(|p| p.amount).sum();
        if onchain.status != "none"
            && read(chain, allocator, &AIAllocator::batchPaidCall { id, batchIndex: U256::from(i) })?
        {
            paid_sum = paid_sum.saturating_add(sum);
            paid_recipients += batch.len();
        } else {
            missing = missing.saturating_add(sum);
            remaining.push(i);
        }
    }
    if onchain.status != "none" && paid_sum != onchain.paid {
        problems.push(format!(
            "the allocator says plan {id} paid {} but its paid batches sum to {paid_sum}: the plan file is not the approved one",
            onchain.paid
        ));
    }
    let balance = asset_balance(chain, asset, allocator)?;
    if balance < missing {
        problems.push(format!("the allocator holds {balance} units but {missing} are still to pay"));
    }
    if onchain.status == "queued" {
        let cap = read(chain, allocator, &AIAllocator::recipientCapCall {})?;
        let mut over = Vec::new();
        for &i in &remaining {
            for p in &plan.batches[i] {
                if !read(chain, allocator, &AIAllocator::isRecipientCall { r: p.recipient })? {
                    over.push(format!("{} is not in the recipient registry governance set", p.recipient));
                    continue;
                }
                let left = read(chain, allocator, &AIAllocator::remainingRecipientAllowanceCall { r: p.recipient })?;
                if p.amount > left {
                    over.push(format!(
                        "{} wants {} but its per-recipient cap ({cap}) leaves {left}",
                        p.recipient, p.amount
                    ));
                }
            }
        }
        let n = over.len();
        problems.extend(over.into_iter().take(10));
        if n > 10 {
            problems.push(format!("... and {} more recipients outside the registry or over their cap", n - 10));
        }
    }
    if !problems.is_empty() {
        return Err(PayoutError::Refused(problems));
    }
    Ok(PlanStatus {
        chain_id,
        allocator,
        payer,
        payer_role,
        plan_id: id,
        root: plan.root(),
        onchain,
        paused,
        recipients: plan.batches.iter().map(Vec::len).sum(),
        paid_recipients,
        batches: plan.batches.len(),
        paid_batches: plan.batches.len() - remaining.len(),
        paid: paid_sum,
        missing,
        remaining,
        balance,
    })
}

/// The `payBatch` call of batch `index` of a plan.
pub fn pay_batch_call(plan: &Commitment, index: usize) -> AIAllocator::payBatchCall {
    let batch = &plan.batches[index];
    AIAllocator::payBatchCall {
        root: plan.root(),
        total: plan.total,
        batches: U256::from(plan.batches.len()),
        batchIndex: U256::from(index),
        recipients: batch.iter().map(|p| p.recipient).collect(),
        amounts: batch.iter().map(|p| p.amount).collect(),
        proof: plan.proof(index),
    }
}

/// The owner's `approvePlan` call for a plan (what a governance proposal executes).
pub fn approve_call(plan: &Commitment) -> AIAllocator::approvePlanCall {
    AIAllocator::approvePlanCall { root: plan.root(), total: plan.total, batches: U256::from(plan.batches.len()) }
}

/// The agent's `queuePlan` call for a plan (standing authority: within the caps, after the veto delay).
pub fn queue_call(plan: &Commitment) -> AIAllocator::queuePlanCall {
    AIAllocator::queuePlanCall { root: plan.root(), total: plan.total, batches: U256::from(plan.batches.len()) }
}

/// Pay what is missing of a plan on one chain. `on_batch` sees every batch as it lands.
pub fn execute(
    chain: &mut dyn Chain,
    target: &Target,
    plan: &Commitment,
    opts: &PayoutOptions,
    on_batch: &mut dyn FnMut(&BatchReport, &PlanStatus),
) -> Result<PayoutReport, PayoutError> {
    let status = check(chain, target, plan)?;
    execute_checked(chain, target, plan, &status, opts, on_batch)
}

/// [`execute`] from a status [`check`] has just returned (callers that check several chains before paying any
/// pass each chain's status on instead of reading it again).
pub fn execute_checked(
    chain: &mut dyn Chain,
    target: &Target,
    plan: &Commitment,
    status: &PlanStatus,
    opts: &PayoutOptions,
    on_batch: &mut dyn FnMut(&BatchReport, &PlanStatus),
) -> Result<PayoutReport, PayoutError> {
    let Target { allocator, payer } = *target;
    let mut report = PayoutReport {
        chain_id: chain.chain_id(),
        plan_id: status.plan_id,
        already_paid: status.paid_batches,
        batches: Vec::new(),
        paid_now: U256::ZERO,
        recipients_now: 0,
        gas_used: 0,
        complete: status.remaining.is_empty(),
    };
    for (k, &index) in status.remaining.iter().enumerate() {
        let batch = &plan.batches[index];
        let tx = Tx::call(payer, allocator, &pay_batch_call(plan, index));
        let gas = chain.estimate_gas(&tx).map_err(|e| match e {
            ChainError::Reverted { .. } => PayoutError::Refused(vec![format!(
                "batch {index} ({} recipients, first {}) reverts: {e}; batches before it landed, nothing after it \
                 was sent. A recipient the token refuses needs a corrected plan, approved again",
                batch.len(),
                batch[0].recipient
            )]),
            e => PayoutError::Chain(e),
        })?;
        let total: U256 = batch.iter().map(|p| p.amount).sum();
        let count = batch.len();
        let b = if opts.dry_run {
            BatchReport { index: index as u64, count, total, gas_used: gas, tx_hash: None, block: 0 }
        } else {
            let mut tx = tx;
            // Headroom for state that changes between estimate and inclusion (a new cap epoch writes fresh
            // slots). Unused gas is not charged; EIP-7825 caps a transaction at 2^24.
            tx.gas = Some(gas.saturating_add(gas / 10).saturating_add(50_000).min(1 << 24).max(gas));
            let r = chain.send(tx)?;
            report.paid_now += total;
            report.recipients_now += count;
            report.gas_used += r.gas_used;
            BatchReport {
                index: index as u64,
                count,
                total,
                gas_used: r.gas_used,
                tx_hash: Some(r.tx_hash),
                block: r.block,
            }
        };
        on_batch(&b, status);
        report.batches.push(b);
        if !opts.interval.is_zero() && k + 1 < status.remaining.len() {
            std::thread::sleep(opts.interval);
        }
    }
    if !opts.dry_run {
        report.complete = true;
    }
    Ok(report)
}

/// Paid against approved, after a payout: what the chain's events say each recipient received under the plan,
/// compared pair by pair with the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciliation {
    pub plan_id: B256,
    #[serde(serialize_with = "dec")]
    pub approved: U256,
    #[serde(serialize_with = "dec")]
    pub paid: U256,
    /// `approved - paid`: what the plan may still pay.
    #[serde(serialize_with = "dec")]
    pub remainder: U256,
    pub recipients_paid: usize,
    /// Pairs the chain paid differently from the plan (must be empty).
    pub mismatches: Vec<String>,
}

/// Reconcile a plan with the allocator's events (see [`paid_from_events`]).
pub fn reconcile(
    chain: &mut dyn Chain,
    allocator: Address,
    plan_id: B256,
    from_block: u64,
    plan: &Commitment,
) -> Result<Reconciliation, ChainError> {
    let paid = paid_from_events(chain, allocator, plan_id, from_block)?;
    let mut mismatches = Vec::new();
    let want: BTreeMap<Address, U256> = plan.batches.iter().flatten().map(|p| (p.recipient, p.amount)).collect();
    for (r, got) in &paid {
        match want.get(r) {
            Some(w) if w == got => {}
            Some(w) => mismatches.push(format!("{r} received {got}, the plan says {w}")),
            None => mismatches.push(format!("{r} received {got} but is not in the plan")),
        }
    }
    let total: U256 = paid.values().copied().sum();
    Ok(Reconciliation {
        plan_id,
        approved: plan.total,
        paid: total,
        remainder: plan.total.saturating_sub(total),
        recipients_paid: paid.len(),
        mismatches,
    })
}
