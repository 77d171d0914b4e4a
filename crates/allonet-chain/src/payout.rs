//! Executing a payout plan through `AIAllocator.allocateBatch`: checked whole before anything is sent,
//! batched by gas, idempotent.
//!
//! Idempotence has two layers. Off chain, what a plan has already paid is read back from the allocator's
//! events (`BatchPaid` carries the plan digest; the `FundsAllocated` logs of the same transactions name the
//! recipients), so a re-run sends only what is missing. On chain, `planPaid[digest][recipient]` makes a
//! second payment of the same plan to the same recipient revert (`AlreadyPaid`), so not even a stale
//! transaction still in a mempool can pay twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolEvent;
use serde::Serialize;

use crate::chain::{read, Chain, ChainError, LogFilter, Tx};
use crate::contracts::{AIAllocator, PayToken};
use crate::plan::Pay;

/// Token amounts in reports serialise as decimal strings (base units), like `TokenAmount` everywhere else.
fn dec<S: serde::Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

fn dec_opt<S: serde::Serializer>(v: &Option<U256>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&v.to_string()),
        None => s.serialize_none(),
    }
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
#[derive(Debug, Clone)]
pub struct PayoutOptions {
    /// Target gas per batch transaction (stays under EIP-7825's 2^24 per-transaction cap by default).
    pub batch_gas: u64,
    /// Upper bound on recipients per batch (0 = no bound).
    pub max_batch: usize,
    /// Wait between batches (public endpoints rate-limit).
    pub interval: Duration,
    /// Check and size the batches, send nothing.
    pub dry_run: bool,
}

impl Default for PayoutOptions {
    fn default() -> Self {
        PayoutOptions { batch_gas: 15_000_000, max_batch: 0, interval: Duration::ZERO, dry_run: false }
    }
}

/// Which allocator to pay through, as whom, and from which block its events count.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub allocator: Address,
    pub payer: Address,
    pub from_block: u64,
}

/// State of a plan on one chain, read before paying.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStatus {
    pub chain_id: u64,
    pub allocator: Address,
    pub payer: Address,
    pub payer_role: &'static str,
    pub paused: bool,
    pub recipients: usize,
    pub paid_recipients: usize,
    #[serde(serialize_with = "dec")]
    pub paid: U256,
    #[serde(serialize_with = "dec")]
    pub missing: U256,
    /// Batches already on chain for this plan.
    pub batches: usize,
    /// Next batch index to use.
    #[serde(skip)]
    pub next_batch: u64,
    /// Payments still to make, in plan order.
    #[serde(skip)]
    pub remaining: Vec<Pay>,
    #[serde(serialize_with = "dec")]
    pub balance: U256,
    #[serde(serialize_with = "dec")]
    pub epoch: U256,
    #[serde(serialize_with = "dec_opt")]
    pub epoch_allowance: Option<U256>,
}

/// One batch sent (or, in a dry run, planned).
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
    pub plan_digest: B256,
    pub already_paid: usize,
    pub batches: Vec<BatchReport>,
    #[serde(serialize_with = "dec")]
    pub paid_now: U256,
    pub recipients_now: usize,
    pub gas_used: u64,
    /// Digest read back from the chain's `BatchPaid` events after the run.
    pub onchain_digest: Option<B256>,
    pub complete: bool,
}

/// What each recipient has received under `plan_digest`, from the allocator's events: the `BatchPaid` logs
/// carrying the digest, and in each of their blocks the `FundsAllocated` logs that precede each such
/// `BatchPaid` in its transaction (the batch's `count` of them, so a transaction that carried other payments
/// too, e.g. a Safe multisend, is attributed correctly). Returns (paid per recipient, next batch index,
/// batches found).
pub fn paid_from_events(
    chain: &mut dyn Chain,
    allocator: Address,
    plan_digest: B256,
    from_block: u64,
) -> Result<(BTreeMap<Address, U256>, u64, usize), ChainError> {
    let batches = chain.logs(&LogFilter {
        address: allocator,
        topic0: vec![AIAllocator::BatchPaid::SIGNATURE_HASH],
        topic1: Some(plan_digest),
        from_block,
        to_block: None,
    })?;
    let mut next_batch = 0u64;
    for log in &batches {
        if let Some(ev) = log.decode::<AIAllocator::BatchPaid>() {
            next_batch = next_batch.max(ev.batchIndex.saturating_to::<u64>() + 1);
        }
    }
    let blocks: BTreeSet<u64> = batches.iter().map(|l| l.block).collect();
    let mut paid = BTreeMap::new();
    for block in blocks {
        let mut logs = chain.logs(&LogFilter {
            address: allocator,
            topic0: vec![AIAllocator::FundsAllocated::SIGNATURE_HASH, AIAllocator::BatchPaid::SIGNATURE_HASH],
            topic1: None,
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
                if ev.planDigest == plan_digest {
                    let n = ev.count.saturating_to::<usize>().min(mine.len());
                    for &(r, a) in &mine[mine.len() - n..] {
                        *paid.entry(r).or_insert(U256::ZERO) += a;
                    }
                }
            }
        }
    }
    Ok((paid, next_batch, batches.len()))
}

/// Balance of the allocator in its asset.
pub fn asset_balance(chain: &mut dyn Chain, asset: Address, who: Address) -> Result<U256, ChainError> {
    if asset == Address::ZERO {
        chain.balance(who)
    } else {
        read(chain, asset, &PayToken::balanceOfCall { account: who })
    }
}

/// Read the plan's state on this chain and check that the rest of it can be paid: not paused, the payer is
/// owner or agent, the allocator holds enough, and (for the agent) every payment fits the caps governance set.
/// Returns the status; `Err(Refused)` lists every problem found.
pub fn check(
    chain: &mut dyn Chain,
    target: &Target,
    plan_digest: B256,
    pays: &[Pay],
) -> Result<PlanStatus, PayoutError> {
    let Target { allocator, payer, from_block } = *target;
    let owner = read(chain, allocator, &AIAllocator::ownerCall {}).map_err(|e| {
        PayoutError::Refused(vec![format!("no AIAllocator at {allocator} on chain {}: {e}", chain.chain_id())])
    })?;
    let agent = read(chain, allocator, &AIAllocator::agentCall {})?;
    let paused = read(chain, allocator, &AIAllocator::pausedCall {})?;
    let asset = read(chain, allocator, &AIAllocator::assetCall {})?;
    let epoch = read(chain, allocator, &AIAllocator::currentEpochCall {})?;
    let (paid, next_batch, batches) = paid_from_events(chain, allocator, plan_digest, from_block)?;
    let mut problems = Vec::new();
    let payer_role = if payer == owner {
        "owner"
    } else if payer == agent {
        "agent"
    } else {
        problems.push(format!("{payer} is neither the allocator's owner ({owner}) nor its agent ({agent})"));
        "none"
    };
    if !chain.signers().contains(&payer) {
        problems.push(format!("{payer} is not an account this backend can send from (no key for it)"));
    }
    if paused {
        problems.push("the allocator is paused (guardian kill switch): no funds move until governance unpauses".into());
    }
    let mut remaining = Vec::new();
    let (mut paid_sum, mut missing) = (U256::ZERO, U256::ZERO);
    for p in pays {
        match paid.get(&p.recipient) {
            Some(&got) if got == p.amount => paid_sum += got,
            Some(&got) => problems.push(format!(
                "{} received {got} under this plan but the plan says {}: the chain disagrees with the plan",
                p.recipient, p.amount
            )),
            None => {
                missing += p.amount;
                remaining.push(*p);
            }
        }
    }
    let balance = asset_balance(chain, asset, allocator)?;
    if balance < missing {
        problems.push(format!("the allocator holds {balance} units but {missing} are still to pay"));
    }
    let mut epoch_allowance = None;
    if payer_role == "agent" {
        let left = read(chain, allocator, &AIAllocator::remainingEpochAllowanceCall {})?;
        epoch_allowance = Some(left);
        if missing > left {
            problems.push(format!(
                "epoch cap: {missing} units still to pay but the agent may spend only {left} more in epoch {epoch}"
            ));
        }
        let mut over = Vec::new();
        for p in &remaining {
            let r = read(chain, allocator, &AIAllocator::remainingRecipientAllowanceCall { r: p.recipient })?;
            if p.amount > r {
                over.push(format!("{} wants {} but its per-recipient cap leaves {r}", p.recipient, p.amount));
            }
        }
        let n = over.len();
        problems.extend(over.into_iter().take(10));
        if n > 10 {
            problems.push(format!("... and {} more recipients over their cap", n - 10));
        }
    }
    if !problems.is_empty() {
        return Err(PayoutError::Refused(problems));
    }
    Ok(PlanStatus {
        chain_id: chain.chain_id(),
        allocator,
        payer,
        payer_role,
        paused,
        recipients: pays.len(),
        paid_recipients: pays.len() - remaining.len(),
        paid: paid_sum,
        missing,
        batches,
        next_batch,
        remaining,
        balance,
        epoch,
        epoch_allowance,
    })
}

fn batch_tx(payer: Address, allocator: Address, digest: B256, index: u64, pays: &[Pay]) -> Tx {
    Tx::call(
        payer,
        allocator,
        &AIAllocator::allocateBatchCall {
            planDigest: digest,
            batchIndex: U256::from(index),
            recipients: pays.iter().map(|p| p.recipient).collect(),
            amounts: pays.iter().map(|p| p.amount).collect(),
        },
    )
}

/// Recipients per batch so that a batch stays under `batch_gas`: fitted from the gas of a 1- and a k-payment
/// probe (base + k × marginal).
pub fn size_batches(
    chain: &mut dyn Chain,
    allocator: Address,
    payer: Address,
    digest: B256,
    pays: &[Pay],
    opts: &PayoutOptions,
) -> Result<usize, ChainError> {
    let k = pays.len().min(16);
    let g1 = chain.estimate_gas(&batch_tx(payer, allocator, digest, 0, &pays[..1]))?;
    let mut size = if k > 1 {
        let gk = chain.estimate_gas(&batch_tx(payer, allocator, digest, 0, &pays[..k]))?;
        let marginal = (gk.saturating_sub(g1) / (k as u64 - 1)).max(1);
        let base = g1.saturating_sub(marginal);
        (opts.batch_gas.saturating_sub(base) / marginal) as usize
    } else {
        1
    };
    if opts.max_batch > 0 {
        size = size.min(opts.max_batch);
    }
    Ok(size.clamp(1, pays.len().max(1)))
}

/// Pay what is missing of a plan on one chain. `on_batch` sees every batch as it lands.
pub fn execute(
    chain: &mut dyn Chain,
    target: &Target,
    plan_digest: B256,
    pays: &[Pay],
    opts: &PayoutOptions,
    on_batch: &mut dyn FnMut(&BatchReport, &PlanStatus),
) -> Result<PayoutReport, PayoutError> {
    let status = check(chain, target, plan_digest, pays)?;
    execute_checked(chain, target, plan_digest, &status, opts, on_batch)
}

/// [`execute`] from a status [`check`] has just returned (callers that check several chains before paying any
/// pass each chain's status on instead of reading it again).
pub fn execute_checked(
    chain: &mut dyn Chain,
    target: &Target,
    plan_digest: B256,
    status: &PlanStatus,
    opts: &PayoutOptions,
    on_batch: &mut dyn FnMut(&BatchReport, &PlanStatus),
) -> Result<PayoutReport, PayoutError> {
    let Target { allocator, payer, .. } = *target;
    let mut report = PayoutReport {
        chain_id: chain.chain_id(),
        plan_digest,
        already_paid: status.paid_recipients,
        batches: Vec::new(),
        paid_now: U256::ZERO,
        recipients_now: 0,
        gas_used: 0,
        onchain_digest: None,
        complete: status.remaining.is_empty(),
    };
    if status.remaining.is_empty() {
        return Ok(report);
    }
    let rest = &status.remaining;
    let size = match size_batches(chain, allocator, payer, plan_digest, rest, opts) {
        Ok(s) => s,
        Err(e @ ChainError::Reverted { .. }) => {
            let probe = &rest[..rest.len().min(16)];
            return Err(culprit(chain, target, plan_digest, status.next_batch, probe, e));
        }
        Err(e) => return Err(e.into()),
    };
    let mut index = status.next_batch;
    let mut start = 0;
    while start < rest.len() {
        let mut n = size.min(rest.len() - start);
        // Re-estimate the actual batch; shrink it when the recipients are costlier than the probe's.
        let gas = loop {
            let g = match chain.estimate_gas(&batch_tx(payer, allocator, plan_digest, index, &rest[start..start + n])) {
                Ok(g) => g,
                Err(e @ ChainError::Reverted { .. }) => {
                    return Err(culprit(chain, target, plan_digest, index, &rest[start..start + n], e));
                }
                Err(e) => return Err(e.into()),
            };
            if g <= opts.batch_gas || n == 1 {
                break g;
            }
            n = (n * 9 / 10).max(1);
        };
        let slice = &rest[start..start + n];
        let total: U256 = slice.iter().map(|p| p.amount).sum();
        let batch = if opts.dry_run {
            BatchReport { index, count: n, total, gas_used: gas, tx_hash: None, block: 0 }
        } else {
            let mut tx = batch_tx(payer, allocator, plan_digest, index, slice);
            // Headroom for state that changes between estimate and inclusion (a new cap epoch writes fresh
            // slots: +20,000 gas each). Unused gas is not charged; EIP-7825 caps a transaction at 2^24.
            tx.gas = Some((gas + gas / 10 + 50_000).min(1 << 24).max(gas));
            let r = chain.send(tx)?;
            // The digest as the chain recorded it, decoded from this transaction's own BatchPaid event.
            if let Some(ev) = r.events::<AIAllocator::BatchPaid>().last() {
                report.onchain_digest = Some(ev.planDigest);
            }
            report.paid_now += total;
            report.recipients_now += n;
            report.gas_used += r.gas_used;
            BatchReport { index, count: n, total, gas_used: r.gas_used, tx_hash: Some(r.tx_hash), block: r.block }
        };
        on_batch(&batch, status);
        report.batches.push(batch);
        index += 1;
        start += n;
        if !opts.interval.is_zero() && start < rest.len() {
            std::thread::sleep(opts.interval);
        }
    }
    if !opts.dry_run {
        report.complete = true;
    }
    Ok(report)
}

/// A batch reverted in its estimate although the whole-plan check passed: find the first recipient that
/// cannot be paid on its own (a blacklisted address, a contract that refuses the coin) by bisection.
fn culprit(
    chain: &mut dyn Chain,
    target: &Target,
    digest: B256,
    index: u64,
    pays: &[Pay],
    err: ChainError,
) -> PayoutError {
    let mut slice = pays;
    let mut reason = err.to_string();
    while slice.len() > 1 {
        let (a, b) = slice.split_at(slice.len() / 2);
        match chain.estimate_gas(&batch_tx(target.payer, target.allocator, digest, index, a)) {
            Err(e @ ChainError::Reverted { .. }) => {
                reason = e.to_string();
                slice = a;
            }
            _ => slice = b,
        }
    }
    if let Err(e @ ChainError::Reverted { .. }) =
        chain.estimate_gas(&batch_tx(target.payer, target.allocator, digest, index, slice))
    {
        reason = e.to_string();
    }
    PayoutError::Refused(vec![format!(
        "recipient {} ({} units) cannot be paid: {reason}; batches before it landed, nothing after it was sent. \
         Re-run with `--skip {}` to pay the others under the same plan digest (a new plan would have a new \
         digest, and recipients already paid would not be recognised)",
        slice[0].recipient, slice[0].amount, slice[0].recipient
    )])
}
