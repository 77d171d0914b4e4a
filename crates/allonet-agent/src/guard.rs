//! The guardian's watch: every plan queued on the DAO's allocators is checked against what governance allows, and
//! the guardian cancels, inside its veto window, any plan it does not.
//!
//! The allocator lets its agent queue any plan within the standing caps (per epoch, per recipient, registry only);
//! on chain it cannot know the DAO's off-chain mode or its votes. A hostile or stolen agent key could therefore
//! queue a plan nobody voted on, and it would pay once the veto window passed. The window exists for the guardian
//! to cancel such plans, and this is what fills it, in the manner of OpenZeppelin Defender's sentinels and of the
//! guardian bots Compound's and Aave's pause guardians run. A queued plan stands only when:
//! - it is a plan of one of the agent's recorded epochs for a pool on that allocator (its digest recomputed from its
//!   payments, its on-chain id recomputed from its Merkle commitment, `keccak256(chainid, allocator, asset, root,
//!   total, batches)` as `AIAllocator.planId`), and
//! - the members approved that digest, or the mode governance set is `autonomous` and the plan is the current
//!   epoch's, which routed it under the standing caps (the caps are then the members' own grant; a plan of an
//!   earlier epoch, or one the epoch sent to the members, does not stand on them), and
//! - the members did not veto it.
//!
//! Anything else is cancelled with `cancelPlan`, which the contract lets only the guardian or the owner call: a plan
//! of unknown content, one queued in `advise` or `propose` mode without the members' approval, an old one, and a
//! vetoed one; those that may pay soonest go first, the largest first among them. Plans approved on chain (by the
//! owner, after an on-chain vote), cancelled or fully paid are left alone. A failure on one allocator or one plan
//! is reported and the rest are still watched.
//!
//! What the watch trusts: the folder's `agent.toml` (which allocators, which governance database) and its
//! checkpoints (which plans the epochs made). Members' approvals, vetoes and the mode come from the signed
//! governance log. A guardian who does not trust the operator's folder runs the watch on its own copy.

use std::collections::BTreeMap;

use allonet_chain::contracts::AIAllocator;
use allonet_chain::payout::read_plan;
use allonet_governance::governor::AgentMode;
use alloy_primitives::{Address, B256, U256};
use serde::Serialize;

use crate::{Agent, AgentError, Stage};

/// What the watch did with one queued plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Watched {
    pub pool: String,
    pub allocator: Address,
    pub chain_id: u64,
    pub plan_id: B256,
    /// The plan's digest, when it is one of the agent's recorded plans.
    pub digest: Option<B256>,
    /// `kept`, `cancelled` or `expired` (past the window in which a queued plan may pay).
    pub action: &'static str,
    pub reason: String,
}

/// One pass of the watch: every queued plan seen, and what could not be watched or cancelled.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Watch {
    pub plans: Vec<Watched>,
    pub failed: Vec<String>,
}

/// A plan the agent recorded, with the digest its payments hash to.
struct Known {
    digest: B256,
    plan: allonet_chain::plan::PayoutPlan,
    epoch: u64,
    /// Its epoch's propose stage routed it under the standing caps.
    standing: bool,
}

impl Agent {
    /// Checks every plan queued on the DAO's allocators (module documentation) and cancels, with the guardian's
    /// key, each that governance does not allow. The key must be the DAO's guardian, and over JSON-RPC each
    /// allocator's guardian too (the key signs the cancel, and the contract checks it; on an embedded chain the
    /// allocator's guardian account sends it, as `pause` does). Every allocator and every plan is tried: a failure
    /// is listed in [`Watch::failed`], and the rest are still watched. An unreadable deployment file stops the pass
    /// before anything is cancelled (its plans could not be told from strangers).
    pub fn guard(&self, guardian: &alloy_signer_local::PrivateKeySigner) -> Result<Watch, AgentError> {
        let store = allonet_engine::models::open_governance(&self.setup.governance)
            .map_err(|e| AgentError::Setup(e.to_string()))?;
        let g = store.governor();
        if guardian.address() != g.guardian {
            return Err(AgentError::Setup(format!(
                "{} is not the DAO's guardian ({}): only the guardian watches and cancels",
                guardian.address(),
                g.guardian
            )));
        }
        let registry = g.registry.clone();
        drop(store);
        let mode = registry.agent_policy.as_ref().map(|p| p.mode);
        let (known, current) = self.known_plans()?;
        // Allocators by chain and address, each with the pools it pays.
        let mut allocators: BTreeMap<(u64, Address), (allonet_engine::connect::DeploymentFile, Vec<String>, _)> =
            BTreeMap::new();
        for (pool, t) in &self.setup.payouts {
            let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment)
                .map_err(|e| AgentError::Setup(format!("pool {pool}: {e}: nothing was cancelled")))?;
            let key = (dep.deployment.chain_id, dep.deployment.allocator);
            allocators.entry(key).or_insert_with(|| (dep, Vec::new(), t.clone())).1.push(pool.clone());
        }
        let mut watch = Watch::default();
        for ((chain_id, allocator), (dep, pools, t)) in &allocators {
            let d = &dep.deployment;
            let at = format!("allocator {allocator} on chain {chain_id}");
            let (mut conn, sender) = match crate::as_guardian(t, dep, guardian, Some(*chain_id)) {
                Ok(c) => c,
                Err(e) => {
                    watch.failed.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let mut ids: BTreeMap<B256, (&String, &Known)> = BTreeMap::new();
            for p in pools {
                for k in known.get(p).into_iter().flatten() {
                    for commitment in k.plan.commitments().values() {
                        ids.insert(commitment.plan_id(*chain_id, *allocator, d.asset), (p, k));
                    }
                }
            }
            let verdicts = match (|| -> Result<Vec<(Watched, u64, U256)>, String> {
                let c = conn.chain();
                let on_chain_guardian =
                    allonet_chain::read(c, *allocator, &AIAllocator::guardianCall {}).map_err(|e| e.to_string())?;
                if on_chain_guardian != sender {
                    return Err(format!("its guardian is {on_chain_guardian}, not {sender}: it cannot cancel here"));
                }
                let epoch_length =
                    allonet_chain::read(c, *allocator, &AIAllocator::epochLengthCall {}).map_err(|e| e.to_string())?;
                let now = c.timestamp().map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                for id in queued_ids(c, *allocator, d.from_block)? {
                    let on = read_plan(c, *allocator, id).map_err(|e| e.to_string())?;
                    if on.status != "queued" || on.paid >= on.total {
                        continue;
                    }
                    let mine = ids.get(&id).copied();
                    let watched = |action: &'static str, reason: String| Watched {
                        pool: mine.map_or_else(|| pools.join("+"), |(p, _)| p.clone()),
                        allocator: *allocator,
                        chain_id: *chain_id,
                        plan_id: id,
                        digest: mine.map(|(_, k)| k.digest),
                        action,
                        reason,
                    };
                    if now > on.payable_at.saturating_add(epoch_length) {
                        out.push((
                            watched("expired", "past the epoch in which a queued plan may pay".into()),
                            0,
                            on.total,
                        ));
                        continue;
                    }
                    let verdict = match mine {
                        None => Err("not a plan of any epoch the agent recorded".to_string()),
                        Some((_, k)) => verdict(k, &registry, mode, current),
                    };
                    out.push(match verdict {
                        Ok(why) => (watched("kept", why), 0, on.total),
                        Err(why) => (watched("cancelled", why), on.payable_at, on.total),
                    });
                }
                Ok(out)
            })() {
                Ok(v) => v,
                Err(e) => {
                    watch.failed.push(format!("{at}: {e}"));
                    continue;
                }
            };
            // Those that may pay soonest first, the largest first among them.
            let mut order: Vec<usize> = (0..verdicts.len()).collect();
            order.sort_by_key(|&i| {
                (verdicts[i].0.action != "cancelled", verdicts[i].1, std::cmp::Reverse(verdicts[i].2))
            });
            for i in order {
                let mut w = verdicts[i].0.clone();
                if w.action == "cancelled" {
                    let id = w.plan_id;
                    let sent =
                        allonet_chain::transact(conn.chain(), sender, *allocator, &AIAllocator::cancelPlanCall { id });
                    // The embedded chain's state is written after each cancel, whatever comes next.
                    let saved = conn.save();
                    if let Err(e) = sent.map_err(|e| e.to_string()).and(saved.map_err(|e| e.to_string())) {
                        watch.failed.push(format!("{at}: cancelling plan {id} ({}): {e}", w.reason));
                        w.action = "not cancelled";
                    }
                }
                watch.plans.push(w);
            }
        }
        Ok(watch)
    }

    /// Every plan of every recorded epoch, by pool, whose payments hash to the digest it carries; and the current
    /// (last) epoch.
    fn known_plans(&self) -> Result<(BTreeMap<String, Vec<Known>>, u64), AgentError> {
        let mut out: BTreeMap<String, Vec<Known>> = BTreeMap::new();
        let epochs = self.ck.epochs()?;
        let current = epochs.iter().copied().max().unwrap_or(0);
        for epoch in epochs {
            let prior = self.ck.outputs(epoch)?;
            if !prior.contains_key(&Stage::Allocate) {
                continue;
            }
            let standing: Vec<&str> = prior
                .get(&Stage::Propose)
                .and_then(|p| p["plans"].as_array())
                .into_iter()
                .flatten()
                .filter(|p| p["route"] == "standing")
                .filter_map(|p| p["pool"].as_str())
                .collect();
            for p in crate::stages::final_plans(&prior)["plans"].as_array().into_iter().flatten() {
                let Some(pool) = p["pool"].as_str() else { continue };
                let Ok(plan) = serde_json::from_value::<allonet_chain::plan::PayoutPlan>(p["plan"].clone()) else {
                    continue;
                };
                // The digest is recomputed: a record whose payments were edited is not this plan.
                let Ok(again) = allonet_chain::plan::PayoutPlan::new(
                    plan.token.clone(),
                    plan.source,
                    plan.batch_size,
                    plan.payments.clone(),
                ) else {
                    continue;
                };
                if again.digest != plan.digest {
                    continue;
                }
                let k = Known { digest: plan.digest.0, plan, epoch, standing: standing.contains(&pool) };
                out.entry(pool.to_string()).or_default().push(k);
            }
        }
        Ok((out, current))
    }
}

/// Whether a recorded plan may stay queued: `Ok(why)` or `Err(why not)` (module documentation).
fn verdict(
    k: &Known,
    registry: &allonet_governance::governor::Registry,
    mode: Option<AgentMode>,
    current: u64,
) -> Result<String, String> {
    if let Some(by) = registry.vetoed_plans.get(&k.digest) {
        return Err(format!("vetoed by the members (proposal {by})"));
    }
    if let Some(by) = registry.approved_plans.get(&k.digest) {
        return Ok(format!("approved by the members (proposal {by})"));
    }
    match mode {
        Some(AgentMode::Autonomous) if k.standing && k.epoch == current => {
            Ok("under the standing caps, in the autonomous mode governance set".to_string())
        }
        Some(AgentMode::Autonomous) if k.epoch != current => {
            Err(format!("a plan of epoch {}, not of the current epoch {current}, and never approved", k.epoch))
        }
        Some(AgentMode::Autonomous) => {
            Err(format!("epoch {} sent it to the members, who have not approved it", k.epoch))
        }
        other => Err(format!(
            "not approved by the members, and the mode governance set is {}",
            other.map_or("advise (none set)".to_string(), |m| format!("{m:?}").to_lowercase())
        )),
    }
}

/// The ids of every plan ever queued on `allocator` (its `PlanQueued` events since `from_block`), each once.
fn queued_ids(c: &mut dyn allonet_chain::Chain, allocator: Address, from_block: u64) -> Result<Vec<B256>, String> {
    use alloy_sol_types::SolEvent;
    let logs = c
        .logs(&allonet_chain::LogFilter {
            address: allocator,
            topic0: vec![AIAllocator::PlanQueued::SIGNATURE_HASH],
            topic1: None,
            topic2: None,
            from_block,
            to_block: None,
        })
        .map_err(|e| e.to_string())?;
    let mut seen = std::collections::BTreeSet::new();
    Ok(logs.iter().filter_map(|l| l.topics.get(1).copied()).filter(|id| seen.insert(*id)).collect())
}
