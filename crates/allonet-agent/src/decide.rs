//! Propose mode: the epoch's plans go to the DAO as one proposal (`ApprovePayoutPlan` for each pool's plan,
//! signed by the agent's key), the agent waits for the DAO's decision, and reconciles what was approved. The
//! agent proposes nothing else: it cannot touch caps, registry, mode or weights, which only the members' votes
//! change.
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
    prior[&Stage::Allocate]["plans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let d = p["plan"]["digest"].as_str()?.parse().ok()?;
            Some((p["pool"].as_str()?.to_string(), d))
        })
        .collect()
}

pub(crate) fn run(a: &Agent, epoch: u64, stage: Stage, prior: &BTreeMap<Stage, Value>) -> Result<Value, AgentError> {
    let e = |m: String| stage_err(epoch, stage, m);
    let plans = plan_digests(prior);
    match stage {
        Stage::Propose => {
            let key_file = a.setup.key_file.as_ref().ok_or_else(|| {
                e("propose mode needs the agent's key: add key_file = \"…\" to [agent] in agent.toml".into())
            })?;
            let key = allonet_engine::keys::load_key_file(key_file).map_err(|x| e(x.to_string()))?;
            let actions: Vec<Action> = plans.iter().map(|(_, d)| Action::ApprovePayoutPlan { digest: *d }).collect();
            let allocation = prior[&Stage::Allocate]["allocation"]["plan_digest"].as_str().unwrap_or_default();
            let description = format!(
                "{}: epoch {epoch}: approve the allocation {allocation} ({} pool plans)",
                a.setup.name,
                plans.len()
            );
            let mut store = open_writable(&a.setup.governance, None).map_err(|x| e(x.to_string()))?;
            let id = proposal_id(store.governor().dao, key.address(), &actions, &description, &[]);
            if !actions.is_empty() && !store.governor().proposals.contains_key(&id) {
                let now = store.governor().rehearsal.then(|| agent_time(&store));
                let act = Act::Propose { actions, description: description.clone(), options: vec![] };
                submit_act(&mut store, &key, act, now).map_err(|x| e(format!("filing the proposal: {x}")))?;
            }
            let plans: Vec<Value> = plans.iter().map(|(pool, d)| json!({ "pool": pool, "digest": d })).collect();
            Ok(json!({
                "mode": Mode::Propose,
                "proposal": id,
                "proposer": key.address(),
                "description": description,
                "plans": plans,
            }))
        }
        Stage::Await => {
            let proposal: B256 = prior[&Stage::Propose]["proposal"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| e("the propose stage recorded no proposal".into()))?;
            let store = allonet_engine::models::open_governance(&a.setup.governance).map_err(|x| e(x.to_string()))?;
            let state = store.governor().state(proposal, agent_time(&store)).map_err(|x| e(x.to_string()))?;
            let approved = match state {
                ProposalState::Executed => true,
                ProposalState::Defeated | ProposalState::Canceled | ProposalState::Expired => false,
                waiting => return Err(AgentError::Waiting { epoch, proposal, state: format!("{waiting:?}") }),
            };
            Ok(json!({ "mode": Mode::Propose, "proposal": proposal, "state": state, "approved": approved }))
        }
        Stage::Execute => {
            let approved = prior[&Stage::Await]["approved"].as_bool().unwrap_or(false);
            let note = if approved {
                "approved: no chain is configured for this agent, so it pays nothing; `allonet payout` pays an \
                 approved plan"
            } else {
                "not approved: nothing is paid"
            };
            Ok(json!({ "mode": Mode::Propose, "approved": approved, "paid": [], "note": note }))
        }
        Stage::Reconcile => {
            let store = allonet_engine::models::open_governance(&a.setup.governance).map_err(|x| e(x.to_string()))?;
            let registry = &store.governor().registry;
            let lines: Vec<Value> = plans
                .iter()
                .map(|(pool, d)| {
                    json!({
                        "pool": pool,
                        "plan": d,
                        "approved": registry.approved_plans.contains_key(d),
                        "paid": "0",
                    })
                })
                .collect();
            Ok(json!({ "mode": Mode::Propose, "plans": lines }))
        }
        _ => Err(e("not a decision stage".into())),
    }
}
