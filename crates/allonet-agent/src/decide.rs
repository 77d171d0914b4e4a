//! Propose and autonomous modes. In propose mode the epoch's plans go to the DAO as one proposal
//! (`ApprovePayoutPlan` for each pool's plan, signed by the agent's key), the agent waits for the DAO's decision,
//! pays what passed and reconciles. In autonomous mode a plan the pool's allocator would accept from the agent under
//! the standing caps is queued by the agent directly, and paid once its veto window has passed unless the guardian
//! cancelled it inside the window; any other plan (above a cap, a recipient outside the registry) goes to the
//! members as in propose mode. The agent proposes nothing but its plans: it cannot touch caps, registry, mode or
//! weights, which only the members' votes change.
//!
//! Each stage is idempotent: the proposal's id is fixed by its content (DAO, proposer, actions, description), so a
//! resumed propose stage finds the proposal it filed instead of filing it twice.

use std::collections::BTreeMap;

use allonet_engine::offchain::{open_writable, submit_act};
use allonet_governance::governor::{proposal_id, Act, Action, ProposalState};
use alloy_primitives::B256;
use serde_json::{json, Value};

use crate::stages::{stage_err, Mode, Stage};
use crate::{Agent, AgentError};

/// The time the agent acts at: the store's clock, or in a rehearsal database the log's own (its latest act).
pub(crate) fn agent_time(store: &allonet_store::Store) -> u64 {
    let g = store.governor();
    if g.rehearsal {
        g.last_at
    } else {
        store.now()
    }
}

/// Each pool's plan digest, from the allocate stage.
fn plan_digests(prior: &BTreeMap<Stage, Value>) -> Vec<(String, B256)> {
    crate::stages::final_plans(prior)["plans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let d = p["plan"]["digest"].as_str()?.parse().ok()?;
            Some((p["pool"].as_str()?.to_string(), d))
        })
        .collect()
}

/// What the propose stage decides for `epoch` (its output, with the proposal's id, and the proposal's actions),
/// before anything is filed: each plan's route, and whether the rebalance goes to the members.
fn propose_decision(
    a: &Agent,
    epoch: u64,
    prior: &BTreeMap<Stage, Value>,
    key: &alloy_signer_local::PrivateKeySigner,
) -> Result<(Value, Vec<Action>), String> {
    let plans = plan_digests(prior);
    let mode = crate::stages::seen(&prior[&Stage::Observe])?.mode();
    // Autonomous: a plan the allocator would accept from the agent under its standing caps goes that way;
    // anything else (above a cap, a recipient outside the registry, no allocator) goes to the members.
    let mut routes = Vec::new();
    let mut earlier = BTreeMap::new();
    for (pool, d) in &plans {
        // The allocator pays a plan once (its id is its payments, not its epoch): the same payments as a
        // plan an earlier epoch put on chain are neither proposed nor paid again.
        if let Some(status) = onchain_before(a, prior, pool)? {
            earlier.insert(pool.clone(), status);
            continue;
        }
        let standing = match mode {
            Mode::Autonomous => standing_check(a, prior, pool)?,
            _ => Err(vec!["propose mode: every plan goes to the members".to_string()]),
        };
        routes.push((pool.clone(), *d, standing));
    }
    let mut actions: Vec<Action> =
        routes.iter().filter(|r| r.2.is_err()).map(|(_, d, _)| Action::ApprovePayoutPlan { digest: *d }).collect();
    // A rebalance the policy calls for goes to the members, in the same proposal, unless an earlier
    // epoch's is still before them (it runs once they pass it).
    let drafted = rebalance_digest(prior);
    let deferred = match drafted {
        Some(_) => {
            let ops: crate::rebalance::Ops =
                serde_json::from_value(prior[&Stage::Treasury]["rebalance"]["ops"].clone())
                    .map_err(|x| x.to_string())?;
            pending_rebalance(a, epoch, &ops)?
        }
        None => None,
    };
    let rebalance = drafted.filter(|_| deferred.is_none());
    if let Some(digest) = rebalance {
        actions.push(Action::ApproveTreasuryOps { digest });
    }
    let allocation = crate::stages::final_plans(prior)["allocation"]["plan_digest"].as_str().unwrap_or_default();
    let plans_filed = actions.len() - usize::from(rebalance.is_some());
    let description = match rebalance {
        None => {
            format!("{}: epoch {epoch}: approve the allocation {allocation} ({plans_filed} pool plans)", a.setup.name)
        }
        Some(d) => format!(
            "{}: epoch {epoch}: approve the allocation {allocation} ({plans_filed} pool plans) and the treasury \
             rebalance {d}",
            a.setup.name
        ),
    };
    let mut proposal = None;
    if !actions.is_empty() {
        let store = allonet_engine::models::open_governance(&a.setup.governance).map_err(|x| x.to_string())?;
        proposal = Some(proposal_id(store.governor().dao, key.address(), &actions, &description, &[]));
    }
    let earlier_plans: Vec<(String, B256)> = plans.iter().filter(|(p, _)| earlier.contains_key(p)).cloned().collect();
    let mut plans: Vec<Value> = routes
        .iter()
        .map(|(pool, d, r)| match r {
            Ok(()) => json!({ "pool": pool, "digest": d, "route": "standing" }),
            Err(why) => json!({ "pool": pool, "digest": d, "route": "proposal", "why": why }),
        })
        .collect();
    for (pool, d) in &earlier_plans {
        plans.push(json!({ "pool": pool, "digest": d, "route": "earlier", "why": format!(
            "the same payments are already on this pool's allocator ({}), from an earlier epoch: an allocator \
             pays a plan once, so nothing is proposed or paid for it", earlier[pool]) }));
    }
    let mut out = json!({
        "mode": mode,
        "proposal": proposal,
        "proposer": key.address(),
        "description": description,
        "plans": plans,
        "rebalance": rebalance,
        // Whether the payouts wait for the vote (a plan above the caps, or propose mode); a rebalance alone
        // does not hold back what the standing caps allow.
        "plans_need_vote": plans_filed > 0,
    });
    if let Some(x) = deferred {
        out["rebalance_deferred_to"] = json!({ "epoch": x });
    }
    Ok((out, actions))
}

pub(crate) fn run(a: &Agent, epoch: u64, stage: Stage, prior: &BTreeMap<Stage, Value>) -> Result<Value, AgentError> {
    let e = |m: String| stage_err(epoch, stage, m);
    let plans = plan_digests(prior);
    match stage {
        Stage::Propose => {
            let key_file = a.setup.key_file.as_ref().ok_or_else(|| {
                e("propose and autonomous modes need the agent's key: add key_file = \"…\" to [agent] in agent.toml".into())
            })?;
            let key = allonet_engine::keys::load_key_file(key_file).map_err(|x| e(x.to_string()))?;
            // The decision (routes, rebalance, the proposal's actions) is written before anything is filed, so a run
            // that crashed between filing and recording files the same proposal again, not a second one decided
            // on a chain or a vote that moved meanwhile.
            let dir = a.dir.join(format!("epochs/{epoch:06}"));
            let draft = dir.join("propose.draft.json");
            let (out, actions) = match std::fs::read(&draft) {
                Ok(bytes) => {
                    let v: Value =
                        serde_json::from_slice(&bytes).map_err(|x| e(format!("{}: {x}", draft.display())))?;
                    let actions: Vec<Action> = serde_json::from_value(v["actions"].clone())
                        .map_err(|x| e(format!("{}: {x}", draft.display())))?;
                    (v["output"].clone(), actions)
                }
                Err(x) if x.kind() == std::io::ErrorKind::NotFound => {
                    let (out, actions) = propose_decision(a, epoch, prior, &key).map_err(e)?;
                    std::fs::create_dir_all(&dir).map_err(|x| e(format!("{}: {x}", dir.display())))?;
                    let v = json!({ "output": out, "actions": actions });
                    allonet_engine::write_atomic(&draft, v.to_string().as_bytes()).map_err(|x| e(x.to_string()))?;
                    (out, actions)
                }
                Err(x) => return Err(e(format!("{}: {x}", draft.display()))),
            };
            if !actions.is_empty() {
                let mut store = open_writable(&a.setup.governance, None).map_err(|x| e(x.to_string()))?;
                let description = out["description"].as_str().unwrap_or_default().to_string();
                let id = proposal_id(store.governor().dao, key.address(), &actions, &description, &[]);
                if out["proposal"].as_str() != Some(id.to_string().as_str()) {
                    return Err(e(format!("{} names another proposal than its actions make", draft.display())));
                }
                if !store.governor().proposals.contains_key(&id) {
                    let now = store.governor().rehearsal.then(|| agent_time(&store));
                    let act = Act::Propose { actions, description, options: vec![] };
                    submit_act(&mut store, &key, act, now).map_err(|x| e(format!("filing the proposal: {x}")))?;
                }
            }
            Ok(out)
        }
        Stage::Await => {
            let mode = prior[&Stage::Propose]["mode"].clone();
            let Some(proposal) = prior[&Stage::Propose]["proposal"].as_str().and_then(|s| s.parse::<B256>().ok())
            else {
                return Ok(json!({ "mode": mode, "proposal": null, "approved": null,
                    "note": "every plan is within the standing caps: no proposal" }));
            };
            let store = allonet_engine::models::open_governance(&a.setup.governance).map_err(|x| e(x.to_string()))?;
            let state = store.governor().state(proposal, agent_time(&store)).map_err(|x| e(x.to_string()))?;
            let approved = match state {
                ProposalState::Executed => true,
                ProposalState::Defeated | ProposalState::Canceled | ProposalState::Expired => false,
                _ if prior[&Stage::Propose]["plans_need_vote"] == false => {
                    return Ok(json!({ "mode": mode, "proposal": proposal, "state": state, "approved": null,
                        "note": "only the rebalance is put to the vote: the plans pay under the standing caps meanwhile" }));
                }
                waiting => return Err(AgentError::Waiting { epoch, proposal, state: format!("{waiting:?}") }),
            };
            Ok(json!({ "mode": mode, "proposal": proposal, "state": state, "approved": approved }))
        }
        Stage::Execute => {
            let mode = prior[&Stage::Propose]["mode"].clone();
            let approved = prior[&Stage::Await]["approved"].as_bool();
            let lines = pay(a, epoch, prior).map_err(|x| match x {
                AgentError::Stage { .. } | AgentError::VetoWindow { .. } => x,
                other => e(other.to_string()),
            })?;
            let rebalance = rebalance_step(a, epoch, prior).map_err(|x| match x {
                AgentError::Stage { .. } | AgentError::Paused => x,
                other => e(other.to_string()),
            })?;
            Ok(json!({ "mode": mode, "approved": approved, "pools": lines, "rebalance": rebalance }))
        }
        Stage::Reconcile => {
            let store = allonet_engine::models::open_governance(&a.setup.governance).map_err(|x| e(x.to_string()))?;
            let registry = &store.governor().registry;
            let paid = prior[&Stage::Execute]["pools"].as_array().cloned().unwrap_or_default();
            let lines: Vec<Value> = plans
                .iter()
                .map(|(pool, d)| {
                    let line = paid.iter().find(|l| l["pool"] == pool.as_str());
                    json!({
                        "pool": pool,
                        "plan": d,
                        "approved": registry.approved_plans.contains_key(d),
                        "paid": line.and_then(|l| l["paid"].as_str()).unwrap_or("0"),
                        "route": line.map(|l| l["route"].clone()),
                        "vetoed": line.and_then(|l| l["vetoed"].as_bool()).unwrap_or(false),
                        "remainder": line.and_then(|l| l["remainder"].as_str()),
                        "mismatches": line.map(|l| l["mismatches"].clone()),
                        "gas_used": line.and_then(|l| l["gas_used"].as_u64()),
                    })
                })
                .collect();
            Ok(json!({ "mode": prior[&Stage::Propose]["mode"].clone(), "plans": lines }))
        }
        _ => Err(e("not a decision stage".into())),
    }
}

/// The digest of the treasury stage's rebalance swaps, when it made some.
fn rebalance_digest(prior: &BTreeMap<Stage, Value>) -> Option<B256> {
    prior[&Stage::Treasury]["rebalance"]["digest"].as_str().and_then(|d| d.parse().ok())
}

/// The rebalance, once the members approved its swaps: written as a Safe batch, and executed from the treasury
/// account when its key is configured (see [`crate::rebalance`]). Read again before every transaction: a pause
/// stops what is not yet sent.
fn rebalance_step(a: &Agent, epoch: u64, prior: &BTreeMap<Stage, Value>) -> Result<Value, AgentError> {
    let e = |m: String| stage_err(epoch, Stage::Execute, m);
    // An earlier epoch's rebalance, still before the members when this epoch began, runs here once they pass it,
    // from that epoch's records (its swaps, its proposal, its note of what was sent).
    let carried = prior[&Stage::Propose]["rebalance_deferred_to"]["epoch"].as_u64();
    let (files, whose) = match carried {
        Some(x) => (x, format!("epoch {x}'s proposal")),
        None => (epoch, "this epoch's proposal".to_string()),
    };
    let earlier = match carried {
        Some(x) => Some(a.ck.outputs(x)?),
        None => None,
    };
    let src = earlier.as_ref().unwrap_or(prior);
    let Some(digest) = rebalance_digest(src) else {
        return match carried {
            Some(x) => Err(e(format!("epoch {x} drafted no rebalance"))),
            None => Ok(Value::Null),
        };
    };
    let ops: crate::rebalance::Ops =
        serde_json::from_value(src[&Stage::Treasury]["rebalance"]["ops"].clone()).map_err(|x| e(x.to_string()))?;
    if ops.digest() != digest {
        return Err(e(format!("epoch {files}'s recorded rebalance does not hash to its digest {digest}")));
    }
    let filed = src[&Stage::Propose]["proposal"].as_str().and_then(|p| p.parse::<B256>().ok());
    let done = run_rebalance(a, epoch, files, digest, ops, filed, &whose)?;
    Ok(match carried {
        // Shown whole as its epoch drafted it (its trades, weights and swaps), with what ran here.
        Some(x) => {
            let mut out = crate::report::json_merge(&src[&Stage::Treasury]["rebalance"], &done);
            out["from_epoch"] = json!(x);
            out
        }
        None => done,
    })
}

/// The most recent rebalance an earlier epoch filed that has neither run nor been turned down, while every epoch
/// since has needed one too and its swaps still fit the one drafted now ([`crate::rebalance::still_fits`]): its
/// epoch. A new rebalance is not proposed while it stands (both would run, each sized from holdings before the
/// other).
fn pending_rebalance(a: &Agent, epoch: u64, drafted: &crate::rebalance::Ops) -> Result<Option<u64>, String> {
    let store = allonet_engine::models::open_governance(&a.setup.governance).map_err(|x| x.to_string())?;
    let g = store.governor();
    let now = agent_time(&store);
    for x in (epoch.saturating_sub(64).max(1)..epoch).rev() {
        let out = a.ck.outputs(x).map_err(|x| x.to_string())?;
        let (Some(p), Some(ex)) = (out.get(&Stage::Propose), out.get(&Stage::Execute)) else {
            return Ok(None);
        };
        if ex["rebalance"]["from_epoch"].is_u64() && ex["rebalance"]["approved"] == true {
            return Ok(None); // the last one filed was carried out
        }
        if p["rebalance_deferred_to"].is_object() {
            continue;
        }
        let Some(digest) = p["rebalance"].as_str().and_then(|d| d.parse::<B256>().ok()) else {
            return Ok(None); // an epoch that needed none: an older one is out of date
        };
        if ex["rebalance"]["approved"] == true {
            return Ok(None);
        }
        let Some(proposal) = p["proposal"].as_str().and_then(|s| s.parse::<B256>().ok()) else { return Ok(None) };
        let alive = !matches!(
            g.state(proposal, now),
            Ok(ProposalState::Defeated | ProposalState::Canceled | ProposalState::Expired) | Err(_)
        );
        let vetoed = g.registry.vetoed_plans.contains_key(&digest);
        if !alive || vetoed {
            return Ok(None);
        }
        let Some(s) = a.setup.treasury.as_ref().and_then(|t| t.swaps.as_ref()) else { return Ok(None) };
        let Ok(ops) = serde_json::from_value::<crate::rebalance::Ops>(
            out.get(&Stage::Treasury).map(|t| t["rebalance"]["ops"].clone()).unwrap_or_default(),
        ) else {
            return Ok(None);
        };
        if ops.digest() != digest || !crate::rebalance::still_fits(&ops, drafted) {
            return Ok(None);
        }
        // Its swaps must still be in time on the AMM's chain (if that chain cannot be read now, execute checks again
        // before sending: an AMM outage does not hold back the payouts).
        let in_time = crate::rebalance::chain_time(&a.dir, s).map_or(true, |now| ops.deadline > now);
        return Ok(in_time.then_some(x));
    }
    Ok(None)
}

/// The rebalance `digest` (`ops`, recorded in epoch `files`), approved by the executed proposal `filed` (`whose`,
/// for the note): written as a Safe batch and executed (module documentation of [`crate::rebalance`]).
#[allow(clippy::too_many_arguments)]
fn run_rebalance(
    a: &Agent,
    epoch: u64,
    files: u64,
    digest: B256,
    ops: crate::rebalance::Ops,
    filed: Option<B256>,
    whose: &str,
) -> Result<Value, AgentError> {
    let e = |m: String| stage_err(epoch, Stage::Execute, m);
    // Approved by its own epoch's proposal (executed, with this digest), not by any that approved the same digest.
    let approved_by = {
        let store = allonet_engine::models::open_governance(&a.setup.governance).map_err(|x| e(x.to_string()))?;
        let g = store.governor();
        filed.filter(|id| {
            g.proposals.get(id).is_some_and(|p| {
                p.enacted().iter().any(|x| matches!(x, Action::ApproveTreasuryOps { digest: d } if *d == digest))
            }) && matches!(g.state(*id, agent_time(&store)), Ok(ProposalState::Executed))
        })
    };
    let Some(by) = approved_by else {
        return Ok(json!({ "digest": digest, "approved": false,
            "note": format!("not approved by the members in {whose} (yet): no swap is made") }));
    };
    let dir = a.dir.join(format!("epochs/{files:06}"));
    let swaps = a.setup.treasury.as_ref().and_then(|t| t.swaps.clone());
    if let Err(why) = still_allowed(a, digest, false)? {
        let mut out = json!({ "digest": digest, "approved": true, "proposal": by, "vetoed": true, "note": why });
        // A run that crashed mid-rebalance may have landed swaps before the veto: they are listed (from the note
        // of what was sent, else the chain's events); none is sent now.
        if let Some(s) = swaps.filter(|s| s.executor_key.is_some()) {
            let refuse = why.clone();
            let sent = dir.join("rebalance.sent.json");
            match crate::rebalance::execute(&a.dir, &s, &ops, &sent, &mut || Err(refuse.clone())) {
                Ok(done) if done["executed"].as_array().is_some_and(|x| !x.is_empty()) => {
                    out["executed"] = done["executed"].clone();
                }
                Ok(_) => {}
                Err(x) => out["landed_unknown"] = json!(format!("what landed before the veto could not be read: {x}")),
            }
        }
        return Ok(out);
    }
    let Some(s) = swaps else {
        return Err(e("the rebalance was approved but agent.toml has no [treasury.swaps] any more".into()));
    };
    std::fs::create_dir_all(&dir).map_err(|x| e(format!("{}: {x}", dir.display())))?;
    let batch = crate::rebalance::safe_batch(&ops, ops.deadline.saturating_sub(7 * 86_400) * 1_000).map_err(e)?;
    let safe = dir.join("rebalance.safe.json");
    allonet_engine::write_atomic(&safe, batch.to_json().as_bytes()).map_err(|x| e(x.to_string()))?;
    let mut out = json!({
        "digest": digest,
        "approved": true,
        "proposal": by,
        "safe_batch": format!("epochs/{files:06}/rebalance.safe.json"),
    });
    if s.executor_key.is_none() {
        out["note"] = json!("no executor_key: the Safe batch is for the treasury's owners to sign");
        return Ok(out);
    }
    let mut allowed = || -> Result<(), String> {
        match still_allowed(a, digest, false) {
            Err(AgentError::Paused) => Err("the DAO is paused: no further swap is sent".into()),
            Err(x) => Err(x.to_string()),
            Ok(Err(why)) => Err(why),
            Ok(Ok(())) => Ok(()),
        }
    };
    let done =
        crate::rebalance::execute(&a.dir, &s, &ops, &dir.join("rebalance.sent.json"), &mut allowed).map_err(e)?;
    out["executed"] = done["executed"].clone();
    if !done["stopped"].is_null() {
        out["stopped"] = done["stopped"].clone();
    }
    Ok(out)
}

/// Seconds since the Unix epoch (the system clock; decisions are checked against it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The on-chain status of `pool`'s plan before this epoch touched it (`None` when its allocator has never seen
/// it, or the pool has no `[payouts]` entry). Read at the propose stage, which sends nothing to any chain.
fn onchain_before(a: &Agent, prior: &BTreeMap<Stage, Value>, pool: &str) -> Result<Option<String>, String> {
    let Some(t) = a.setup.payouts.get(pool) else { return Ok(None) };
    let plan = recorded_plan(prior, pool)?;
    let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment).map_err(|x| x.to_string())?;
    let (mut conn, _) =
        allonet_engine::connect::connect(&t.connect_spec(), Some(&dep.endpoint)).map_err(|x| x.to_string())?;
    let chain = plan.payments.first().and_then(|x| x.chain.clone());
    let s = allonet_engine::pay::allocator_status(&mut conn, &dep.deployment, Some((&plan, chain.as_deref())))
        .map_err(|x| x.to_string())?;
    Ok(s.plan.map(|p| p.onchain.status.to_string()).filter(|st| st != "none"))
}

/// Whether the allocator of `pool` would accept its plan from the agent under the standing caps (read only).
fn standing_check(a: &Agent, prior: &BTreeMap<Stage, Value>, pool: &str) -> Result<Result<(), Vec<String>>, String> {
    let Some(t) = a.setup.payouts.get(pool) else {
        return Ok(Err(vec!["no [payouts] entry for this pool".into()]));
    };
    let plan = recorded_plan(prior, pool)?;
    let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment).map_err(|x| x.to_string())?;
    let (mut conn, _) =
        allonet_engine::connect::connect(&connect_spec(a, t), Some(&dep.endpoint)).map_err(|x| x.to_string())?;
    let chain = plan.payments.first().and_then(|x| x.chain.clone());
    let c = allonet_engine::govern::commitment(&plan, chain.as_deref()).map_err(|x| x.to_string())?;
    let d = &dep.deployment;
    Ok(match allonet_engine::govern::check_queue(conn.chain(), d, d.agent, &c) {
        Ok(_) => Ok(()),
        Err(allonet_engine::EngineError::Refused(why)) => Err(why),
        Err(x) => return Err(x.to_string()),
    })
}

fn recorded_plan(prior: &BTreeMap<Stage, Value>, pool: &str) -> Result<allonet_chain::plan::PayoutPlan, String> {
    let p = crate::stages::final_plans(prior)["plans"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["pool"] == pool)
        .ok_or_else(|| format!("pool {pool} has no recorded plan"))?;
    serde_json::from_value(p["plan"].clone()).map_err(|x| format!("pool {pool}'s plan: {x}"))
}

fn connect_spec(a: &Agent, t: &crate::setup::PayoutTarget) -> allonet_engine::connect::ConnectSpec {
    allonet_engine::connect::ConnectSpec {
        key_file: a.setup.key_file.clone().filter(|_| t.rpc.is_some()),
        ..t.connect_spec()
    }
}

/// What governance says now about paying `digest`: `Err(AgentError::Paused)` when the DAO is paused, `Ok(Err(why))`
/// when the members vetoed the plan or (for a plan under the standing caps) the mode is no longer autonomous.
/// Read again before each queue and payment.
fn still_allowed(a: &Agent, digest: B256, standing: bool) -> Result<Result<(), String>, AgentError> {
    let store =
        allonet_engine::models::open_governance(&a.setup.governance).map_err(|e| AgentError::Setup(e.to_string()))?;
    let r = &store.governor().registry;
    if r.paused {
        return Err(AgentError::Paused);
    }
    if let Some(by) = r.vetoed_plans.get(&digest) {
        return Ok(Err(format!("vetoed by the members (proposal {by}): not paid")));
    }
    let mode = r.agent_policy.as_ref().map(|p| p.mode);
    if standing && mode != Some(Mode::Autonomous) {
        return Ok(Err(format!(
            "governance changed the mode to {mode:?} since the epoch began: not paid under the standing caps"
        )));
    }
    Ok(Ok(()))
}

/// How a pool's plan reaches the allocator.
enum Route {
    /// Queued by the agent under the standing caps (autonomous mode), no decision needed.
    Standing,
    /// Under the members' executed decision (this file).
    Decision(std::path::PathBuf),
}

/// Pays the epoch's plans on their chains through the engine. A plan the members approved: its decision written
/// and checked, the log anchored on that chain up to it, the plan queued under the standing caps. A plan within
/// the standing caps (autonomous mode): queued by the agent. Then, once every queued plan is past its veto window
/// (a plan the guardian cancelled inside it is vetoed, and not paid), each is paid and reconciled. Resuming skips
/// what is done: a queued plan is not queued again, and the allocator pays only batches not yet paid.
fn pay(a: &Agent, epoch: u64, prior: &BTreeMap<Stage, Value>) -> Result<Vec<Value>, AgentError> {
    use allonet_engine::connect::{ChainTarget, DeploymentFile};
    use allonet_engine::govern::{
        decision_record, load_decision, queue_under_caps, queue_under_decision, require_anchored, Decision,
    };
    use allonet_engine::pay::{allocator_status, pay_governed, PayOptions, Quiet};
    let e = |m: String| stage_err(epoch, Stage::Execute, m);
    let eng = |x: allonet_engine::EngineError| e(x.to_string());
    let db = &a.setup.governance;
    let now = unix_now();
    let dir = a.dir.join(format!("epochs/{epoch:06}"));
    std::fs::create_dir_all(&dir).map_err(|x| e(format!("{}: {x}", dir.display())))?;
    let approved = prior[&Stage::Await]["approved"].as_bool() == Some(true);
    let mut ready = Vec::new();
    let mut lines = Vec::new();
    for entry in prior[&Stage::Propose]["plans"].as_array().into_iter().flatten() {
        let pool = entry["pool"].as_str().unwrap_or_default().to_string();
        let plan = recorded_plan(prior, &pool).map_err(e)?;
        let standing = entry["route"] == "standing";
        if entry["route"] == "earlier" {
            lines.push(
                json!({ "pool": pool, "plan": plan.digest, "paid": "0", "route": "earlier", "note": entry["why"] }),
            );
            continue;
        }
        let Some(t) = a.setup.payouts.get(&pool) else {
            lines.push(json!({ "pool": pool, "plan": plan.digest, "paid": "0", "note": "no [payouts] entry: not paid by the agent" }));
            continue;
        };
        if !standing && !approved {
            lines.push(json!({ "pool": pool, "plan": plan.digest, "paid": "0", "route": "proposal", "note": "not approved: nothing is paid" }));
            continue;
        }
        let chain = plan.payments.first().and_then(|x| x.chain.clone());
        let target = ChainTarget {
            name: chain.clone(),
            deployment: DeploymentFile::load(&t.deployment).map_err(eng)?,
            connect: connect_spec(a, t),
        };
        let d = target.deployment.deployment.clone();
        let (mut conn, _) =
            allonet_engine::connect::connect(&target.connect, Some(&target.deployment.endpoint)).map_err(eng)?;
        let status = allocator_status(&mut conn, &d, Some((&plan, chain.as_deref()))).map_err(eng)?;
        let onchain = status.plan.as_ref().map(|x| x.onchain.status).unwrap_or("none");
        let route = if standing {
            // Governance may have paused, vetoed or changed the mode since observe: nothing is queued then.
            if let Err(why) = still_allowed(a, plan.digest.0, true)? {
                lines.push(json!({ "pool": pool, "plan": plan.digest, "paid": "0", "route": "standing", "vetoed": true, "note": why }));
                continue;
            }
            if onchain == "none" {
                let c = allonet_engine::govern::commitment(&plan, chain.as_deref()).map_err(eng)?;
                queue_under_caps(conn.chain(), &d, d.agent, &c).map_err(eng)?;
                conn.save().map_err(eng)?;
            }
            drop(conn);
            Route::Standing
        } else {
            drop(conn);
            // The decision, written once: the executed proposal's tally and the audit head it was recorded at.
            let dfile = dir.join(format!("{pool}.decision.json"));
            if !dfile.exists() {
                let store = allonet_engine::models::open_governance(db).map_err(eng)?;
                let rec = decision_record(&store, plan.digest).map_err(eng)?;
                let text = serde_json::to_string_pretty(&rec).map_err(|x| e(x.to_string()))?;
                allonet_engine::write_atomic(&dfile, text.as_bytes()).map_err(eng)?;
            }
            let decision = Decision::load(&dfile).map_err(eng)?;
            // The log anchored on this chain up to the decision (else it pays nothing).
            let store = allonet_engine::offchain::open_writable(db, None).map_err(eng)?;
            if require_anchored(&store, &decision, &t.deployment, t.rpc.clone()).is_err() {
                allonet_engine::audit::anchor(&store, &t.deployment, t.rpc.clone()).map_err(eng)?;
            }
            drop(store);
            if onchain == "none" {
                // One store at a time: each checked decision holds the governance database open to write to it.
                let mut checked =
                    load_decision(&dfile, db, None, &plan, now, &t.deployment, t.rpc.clone()).map_err(eng)?;
                queue_under_decision(&plan, vec![target.clone()], &mut checked, now).map_err(eng)?;
            }
            Route::Decision(dfile)
        };
        ready.push((pool, plan, target, route, t.clone()));
    }
    // Every queued plan must be past its veto window before any is paid; a cancelled one was vetoed.
    let mut vetoed = std::collections::BTreeSet::new();
    for (pool, plan, target, _, _) in &ready {
        let (mut conn, _) =
            allonet_engine::connect::connect(&target.connect, Some(&target.deployment.endpoint)).map_err(eng)?;
        let chain_time = conn.chain().timestamp().map_err(|x| e(x.to_string()))?;
        let status = allocator_status(&mut conn, &target.deployment.deployment, Some((plan, target.name.as_deref())))
            .map_err(eng)?;
        if let Some(p) = &status.plan {
            if p.onchain.status == "cancelled" {
                vetoed.insert(pool.clone());
            } else if p.onchain.status == "queued" && chain_time < p.onchain.payable_at {
                return Err(AgentError::VetoWindow {
                    epoch,
                    pool: pool.clone(),
                    payable_at: p.onchain.payable_at,
                    chain_time,
                });
            }
        }
    }
    // A veto vote: the members passed `VetoPlan` for it (inside the window, since nothing was paid yet).
    for (pool, plan, target, route, t) in ready {
        let route_name = if matches!(route, Route::Standing) { "standing" } else { "proposal" };
        // Read again right before each payment: a veto, a pause or a new mode stops what is not yet paid.
        let now_allowed = still_allowed(a, plan.digest.0, matches!(route, Route::Standing))?;
        if let Err(why) = now_allowed {
            lines.push(json!({ "pool": pool, "plan": plan.digest, "paid": "0", "route": route_name, "vetoed": true, "note": why }));
            continue;
        }
        if vetoed.contains(&pool) {
            lines.push(json!({ "pool": pool, "plan": plan.digest, "paid": "0", "route": route_name, "vetoed": true,
                "note": "cancelled inside its veto window: not paid" }));
            continue;
        }
        let paid = match route {
            Route::Decision(dfile) => {
                let mut checked =
                    load_decision(&dfile, db, None, &plan, now, &t.deployment, t.rpc.clone()).map_err(eng)?;
                let (paid, _) =
                    pay_governed(&plan, vec![target], &PayOptions::default(), Some(&mut checked), now, &mut Quiet)
                        .map_err(eng)?;
                paid
            }
            Route::Standing => {
                let opts = PayOptions { require_decision_for_queued: false, ..Default::default() };
                let paid = allonet_engine::pay::pay_plan(&plan, vec![target], &opts, &mut Quiet).map_err(eng)?;
                // What was paid under the standing caps, from the chain's events: the same record however many
                // runs it took, written once.
                let rec = paid.first().and_then(|c| c.reconciliation.as_ref());
                let detail = json!({
                    "agent": a.setup.name, "epoch": epoch, "pool": pool, "plan": plan.digest,
                    "route": "standing caps", "chain": paid.first().map(|c| c.chain.clone()),
                    "paid": rec.map(|r| r.paid.to_string()), "remainder": rec.map(|r| r.remainder.to_string()),
                });
                crate::report::audit_once(db, "agent_payout", &detail, Some(now)).map_err(e)?;
                paid
            }
        };
        let r = paid.into_iter().next().ok_or_else(|| e(format!("pool {pool}: the engine paid no chain")))?;
        let rec = r.reconciliation.as_ref();
        // Every transaction of the plan, from the allocator's events: those of an interrupted run too.
        let dep = DeploymentFile::load(&t.deployment).map_err(eng)?;
        let (mut conn, _) = allonet_engine::connect::connect(&t.connect_spec(), Some(&dep.endpoint)).map_err(eng)?;
        let txs = allonet_chain::payout::plan_transactions(
            conn.chain(),
            r.status.allocator,
            r.status.plan_id,
            dep.deployment.from_block,
        )
        .map_err(|x| e(format!("pool {pool}: reading its transactions: {x}")))?;
        let gas: u64 = txs.iter().filter_map(|x| x.gas_used).sum();
        lines.push(json!({
            "pool": pool,
            "chain": r.chain,
            "plan": plan.digest,
            "route": route_name,
            // The plan's batch count, not the batches this run sent: a resumed run sends fewer.
            "batches": plan.payments.len().div_ceil(plan.batch_size.max(1) as usize),
            "paid": rec.map(|x| x.paid.to_string()).unwrap_or_else(|| "0".into()),
            "remainder": rec.map(|x| x.remainder.to_string()),
            "mismatches": rec.map(|x| x.mismatches.clone()).unwrap_or_default(),
            "transactions": txs,
            "gas_used": gas,
        }));
    }
    Ok(lines)
}
