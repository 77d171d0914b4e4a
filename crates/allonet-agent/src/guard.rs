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
//! - the members approved that digest, or the mode governance set is `autonomous` (the standing caps are then the
//!   members' own grant), and
//! - the members did not veto it.
//!
//! Anything else is cancelled with `cancelPlan`, which the contract lets only the guardian or the owner call: a plan
//! of unknown content, one queued in `advise` or `propose` mode without the members' approval, and a vetoed one.
//! Plans already approved on chain (by the owner, after an on-chain vote) or already cancelled are left alone.

use std::collections::{BTreeMap, BTreeSet};

use allonet_chain::contracts::AIAllocator;
use allonet_chain::payout::read_plan;
use allonet_governance::governor::AgentMode;
use alloy_primitives::{Address, B256};
use serde::Serialize;

use crate::{Agent, AgentError};

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

/// A plan the agent recorded, with the digest its payments hash to.
struct Known {
    digest: B256,
    plan: allonet_chain::plan::PayoutPlan,
}

impl Agent {
    /// Checks every plan queued on the DAO's allocators (module documentation) and cancels, with the guardian's
    /// key, each that governance does not allow. The key must be the DAO's guardian (on an embedded chain the
    /// allocator's guardian account sends the cancel, as `pause` does; over JSON-RPC the key signs it and the
    /// contract checks it). Returns every queued plan seen, with what was done. Every allocator is tried: one chain
    /// failing does not leave the others unwatched.
    pub fn guard(&self, guardian: &alloy_signer_local::PrivateKeySigner) -> Result<Vec<Watched>, AgentError> {
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
        let autonomous = registry.agent_policy.as_ref().map(|p| p.mode) == Some(AgentMode::Autonomous);
        let known = self.known_plans()?;
        let mut seen = Vec::new();
        let mut failed = Vec::new();
        let mut done = BTreeSet::new();
        for (pool, t) in &self.setup.payouts {
            let mut one = || -> Result<(), String> {
                let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment).map_err(|e| e.to_string())?;
                let d = &dep.deployment;
                if !done.insert((t.state.clone(), t.rpc.clone(), d.allocator)) {
                    return Ok(());
                }
                // The pools this allocator pays: a plan of any of them is known here.
                let pools: Vec<&String> = self
                    .setup
                    .payouts
                    .iter()
                    .filter(|(_, u)| {
                        (u.state.clone(), u.rpc.clone()) == (t.state.clone(), t.rpc.clone())
                            && allonet_engine::connect::DeploymentFile::load(&u.deployment)
                                .is_ok_and(|x| x.deployment.allocator == d.allocator)
                    })
                    .map(|(p, _)| p)
                    .collect();
                let spec = allonet_engine::connect::ConnectSpec {
                    key: t.rpc.is_some().then(|| guardian.clone()),
                    ..t.connect_spec()
                };
                let (mut conn, _) =
                    allonet_engine::connect::connect(&spec, Some(&dep.endpoint)).map_err(|e| e.to_string())?;
                let c = conn.chain();
                let chain_id = c.chain_id();
                let mut ids: BTreeMap<B256, (&String, B256)> = BTreeMap::new();
                for p in &pools {
                    for k in known.get(*p).into_iter().flatten() {
                        for commitment in k.plan.commitments().values() {
                            ids.insert(commitment.plan_id(chain_id, d.allocator, d.asset), (*p, k.digest));
                        }
                    }
                }
                let sender = if t.rpc.is_some() { guardian.address() } else { d.guardian };
                let epoch_length =
                    allonet_chain::read(c, d.allocator, &AIAllocator::epochLengthCall {}).map_err(|e| e.to_string())?;
                let now = c.timestamp().map_err(|e| e.to_string())?;
                let mut changed = false;
                for id in queued_ids(c, d.allocator, d.from_block)? {
                    let on = read_plan(c, d.allocator, id).map_err(|e| e.to_string())?;
                    if on.status != "queued" {
                        continue;
                    }
                    let mine = ids.get(&id).copied();
                    let watched = |action: &'static str, reason: String| Watched {
                        pool: mine.map_or_else(|| pool.clone(), |(p, _)| p.clone()),
                        allocator: d.allocator,
                        chain_id,
                        plan_id: id,
                        digest: mine.map(|(_, x)| x),
                        action,
                        reason,
                    };
                    if now > on.payable_at.saturating_add(epoch_length) {
                        seen.push(watched("expired", "past the epoch in which a queued plan may pay".into()));
                        continue;
                    }
                    let verdict = match mine {
                        None => Err("not a plan of any epoch the agent recorded".to_string()),
                        Some((_, digest)) => {
                            if let Some(by) = registry.vetoed_plans.get(&digest) {
                                Err(format!("vetoed by the members (proposal {by})"))
                            } else if let Some(by) = registry.approved_plans.get(&digest) {
                                Ok(format!("approved by the members (proposal {by})"))
                            } else if autonomous {
                                Ok("under the standing caps, in the autonomous mode governance set".to_string())
                            } else {
                                Err(format!(
                                    "not approved by the members, and the mode governance set is {}",
                                    registry.agent_policy.as_ref().map_or("advise (none set)".to_string(), |p| {
                                        format!("{:?}", p.mode).to_lowercase()
                                    })
                                ))
                            }
                        }
                    };
                    match verdict {
                        Ok(why) => seen.push(watched("kept", why)),
                        Err(why) => {
                            allonet_chain::transact(c, sender, d.allocator, &AIAllocator::cancelPlanCall { id })
                                .map_err(|e| format!("cancelling plan {id}: {e}"))?;
                            changed = true;
                            seen.push(watched("cancelled", why));
                        }
                    }
                }
                if changed {
                    conn.save().map_err(|e| e.to_string())?;
                }
                Ok(())
            };
            if let Err(e) = one() {
                failed.push(format!("pool {pool}: {e}"));
            }
        }
        if !failed.is_empty() {
            let cancelled = seen.iter().filter(|w| w.action == "cancelled").count();
            return Err(AgentError::Setup(format!(
                "{cancelled} plan(s) cancelled, but these allocators could not be watched: {}",
                failed.join("; ")
            )));
        }
        Ok(seen)
    }

    /// Every plan of every recorded epoch, by pool, whose payments hash to the digest it carries.
    fn known_plans(&self) -> Result<BTreeMap<String, Vec<Known>>, AgentError> {
        let mut out: BTreeMap<String, Vec<Known>> = BTreeMap::new();
        for epoch in self.ck.epochs()? {
            let prior = self.ck.outputs(epoch)?;
            if !prior.contains_key(&crate::Stage::Allocate) {
                continue;
            }
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
                out.entry(pool.to_string()).or_default().push(Known { digest: plan.digest.0, plan });
            }
        }
        Ok(out)
    }
}

/// The ids of every plan ever queued on `allocator` (its `PlanQueued` events since `from_block`).
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
    let mut ids: Vec<B256> = logs.iter().filter_map(|l| l.topics.get(1).copied()).collect();
    ids.dedup();
    Ok(ids)
}
