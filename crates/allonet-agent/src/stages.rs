//! The stages of an epoch. Each is a function of the agent's setup and the outputs of the stages before it
//! (observe alone reads files and the governance store), so re-running a stage after a crash gives the same
//! output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use allonet_core::digest::keccak;
use allonet_core::Table;
use allonet_engine::models;
use allonet_engine::results::{tally_from_bytes, TallyOptions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{Agent, AgentError};

/// One stage of the pipeline, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Observe,
    Score,
    Recommend,
    Allocate,
    Treasury,
    Propose,
    Await,
    Execute,
    Reconcile,
    Report,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 10] = [
        Stage::Observe,
        Stage::Score,
        Stage::Recommend,
        Stage::Allocate,
        Stage::Treasury,
        Stage::Propose,
        Stage::Await,
        Stage::Execute,
        Stage::Reconcile,
        Stage::Report,
    ];

    /// The name used in the database, status and reports.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Observe => "observe",
            Stage::Score => "score",
            Stage::Recommend => "recommend",
            Stage::Allocate => "allocate",
            Stage::Treasury => "treasury",
            Stage::Propose => "propose",
            Stage::Await => "await",
            Stage::Execute => "execute",
            Stage::Reconcile => "reconcile",
            Stage::Report => "report",
        }
    }

    pub fn from_name(s: &str) -> Option<Stage> {
        Stage::ALL.iter().copied().find(|x| x.name() == s)
    }

    /// Position in the pipeline (0 = observe).
    pub fn position(self) -> usize {
        Stage::ALL.iter().position(|&s| s == self).expect("every stage is in ALL")
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

pub use allonet_governance::governor::{AgentMode as Mode, AgentPolicy};

/// One observed input: its name, file, digest and text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub name: String,
    pub file: String,
    pub digest: allonet_core::Digest,
    pub text: String,
}

/// The governance state an epoch starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovernanceSeen {
    pub dao: alloy_primitives::B256,
    /// Entries in the audit log and the hash of the last.
    pub log_entries: u64,
    pub log_head: alloy_primitives::B256,
    pub rehearsal: bool,
    pub active_model: Option<alloy_primitives::B256>,
    /// The agent's mode and signal mix as governance set them (none: advise, with the instance's own mix).
    pub policy: Option<AgentPolicy>,
}

impl GovernanceSeen {
    /// The mode governance set (advise when it set none).
    pub fn mode(&self) -> Mode {
        self.policy.as_ref().map_or(Mode::Advise, |p| p.mode)
    }
}

/// The governance state observe recorded.
pub fn seen(observe: &Value) -> Result<GovernanceSeen, String> {
    serde_json::from_value(observe["governance"].clone()).map_err(|e| format!("the observed governance state: {e}"))
}

pub(crate) fn stage_err(epoch: u64, stage: Stage, message: impl std::fmt::Display) -> AgentError {
    AgentError::Stage { epoch, stage: stage.name(), message: message.to_string() }
}

/// Runs `stage` of `epoch` from the outputs before it.
pub fn run(a: &Agent, epoch: u64, stage: Stage, prior: &BTreeMap<Stage, Value>) -> Result<Value, AgentError> {
    // The kill switch is checked before every stage: a pause takes effect at the next step.
    let store = models::open_governance(&a.setup.governance).map_err(|e| stage_err(epoch, stage, e))?;
    if store.governor().registry.paused {
        return Err(AgentError::Paused);
    }
    drop(store);
    let get = |s: Stage| {
        prior.get(&s).ok_or_else(|| stage_err(epoch, stage, format!("the {} stage has no recorded output", s.name())))
    };
    let e = |m: String| stage_err(epoch, stage, m);
    match stage {
        Stage::Observe => observe(a, epoch),
        Stage::Score => {
            let votes = input(get(Stage::Observe)?, "votes").map_err(e)?;
            let opts =
                TallyOptions { votes: PathBuf::from(&votes.file), budget: None, token: String::new(), decimals: 0 };
            let (_, file) =
                tally_from_bytes(&opts, &votes.file, votes.text.as_bytes()).map_err(|x| e(x.to_string()))?;
            serde_json::to_value(file).map_err(|x| e(x.to_string()))
        }
        Stage::Recommend => recommend(a, get(Stage::Observe)?).map_err(e),
        Stage::Allocate => allocate(a, prior).map_err(e),
        Stage::Treasury => crate::treasury::check(a, epoch, prior).map_err(e),
        Stage::Propose | Stage::Await | Stage::Execute | Stage::Reconcile => {
            let seen = seen(get(Stage::Observe)?).map_err(e)?;
            match seen.mode() {
                Mode::Advise => Ok(json!({
                    "mode": Mode::Advise,
                    "note": "advise mode: nothing is filed, approved or paid",
                })),
                _ => crate::decide::run(a, epoch, stage, prior),
            }
        }
        Stage::Report => crate::report::build_and_record(a, epoch, prior),
    }
}

/// The observed input named `name`.
pub fn input(observe: &Value, name: &str) -> Result<Observed, String> {
    let list: Vec<Observed> = serde_json::from_value(observe["inputs"].clone()).map_err(|e| e.to_string())?;
    list.into_iter().find(|o| o.name == name).ok_or_else(|| format!("no input `{name}` was observed"))
}

fn observe(a: &Agent, epoch: u64) -> Result<Value, AgentError> {
    let e = |m: String| stage_err(epoch, Stage::Observe, m);
    let i = &a.setup.inputs;
    let mut inputs = Vec::new();
    let mut files = vec![("problem", &i.problem), ("votes", &i.votes), ("features", &i.features)];
    if let Some(t) = &a.setup.treasury {
        files.push(("treasury_policy", &t.policy));
        files.push(("treasury_holdings", &t.holdings));
    }
    for (name, path) in files {
        let named = path.display().to_string();
        let (bytes, shown) = if crate::source::is_url(&named) {
            (crate::source::fetch(&named).map_err(e)?, named.clone())
        } else {
            let full = a.dir.join(path);
            let bytes = std::fs::read(&full).map_err(|x| e(format!("{}: cannot read it: {x}", full.display())))?;
            (bytes, full.display().to_string())
        };
        let digest = keccak(&bytes);
        let text = String::from_utf8(bytes).map_err(|_| e(format!("{shown}: is not UTF-8 text")))?;
        inputs.push(Observed { name: name.into(), file: named, digest, text });
    }
    // Each pool's allocator as the epoch found it: balance, caps, pause, veto delay (read, never written).
    let mut chains = serde_json::Map::new();
    for (pool, t) in &a.setup.payouts {
        let read = || -> Result<Value, String> {
            let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment).map_err(|x| x.to_string())?;
            let (mut conn, _) =
                allonet_engine::connect::connect(&t.connect_spec(), Some(&dep.endpoint)).map_err(|x| x.to_string())?;
            let s =
                allonet_engine::pay::allocator_status(&mut conn, &dep.deployment, None).map_err(|x| x.to_string())?;
            Ok(json!({
                "chain_id": dep.deployment.chain_id,
                "block": s.block,
                "allocator": s.allocator,
                "owned_by_timelock": s.owned_by_timelock,
                "paused": s.paused,
                "balance": s.balance.to_string(),
                "epoch_cap": s.epoch_cap.to_string(),
                "recipient_cap": s.recipient_cap.to_string(),
                "left_this_epoch": s.left_this_epoch.to_string(),
                "veto_delay": s.veto_delay,
            }))
        };
        chains.insert(pool.clone(), read().map_err(|x| e(format!("pool {pool}'s allocator: {x}")))?);
    }
    let store = models::open_governance(&a.setup.governance).map_err(|x| e(x.to_string()))?;
    let g = store.governor();
    let (entries, head) = store.head();
    let seen = GovernanceSeen {
        dao: g.dao,
        log_entries: entries,
        log_head: head,
        rehearsal: g.rehearsal,
        active_model: g.registry.active_model(),
        policy: g.registry.agent_policy.clone(),
    };
    Ok(json!({ "mode": seen.mode(), "inputs": inputs, "governance": seen, "chains": chains, "setup": a.setup.digest }))
}

fn recommend(a: &Agent, observe: &Value) -> Result<Value, String> {
    let seen = seen(observe)?;
    let id = seen.active_model.ok_or("governance has activated no model (propose `activate-model:<id>`)")?;
    let path = a.setup.models.join(format!("{id}.json"));
    let (mf, file_id) = models::load_model(&path).map_err(|e| e.to_string())?;
    if file_id.0 != id {
        return Err(format!(
            "{} is model {file_id}, not {id}, the version governance activated: it is not served",
            path.display()
        ));
    }
    let features = input(observe, "features")?;
    let table = Table::from_bytes(&features.file, features.text.as_bytes()).map_err(|e| e.to_string())?;
    let d = mf.dataset(&table, false).map_err(|e| e.to_string())?;
    let recs = models::recommend(&mf, &d, mf.options.interval, 3).map_err(|e| e.to_string())?;
    Ok(json!({ "model": file_id, "interval": mf.options.interval, "recommendations": recs }))
}

/// The allocation instance as the epoch saw it: the observed instance text, the signals from the agent's own
/// stages, the mix governance set.
pub fn problem(a: &Agent, prior: &BTreeMap<Stage, Value>) -> Result<allonet_allocate::Problem, String> {
    let problem = input(&prior[&Stage::Observe], "problem")?;
    let served: Vec<&String> = a.setup.signals.keys().collect();
    let read = |f: &str| -> Result<Vec<u8>, String> {
        match a.setup.signals.get(f) {
            Some(stage) => prior
                .get(stage)
                .map(|v| allonet_core::canonical_json(v).into_bytes())
                .ok_or_else(|| format!("{f}: the {stage} stage has no output")),
            None => {
                Err(format!("{f}: the agent serves only the signals it computes ({served:?}), from its own stages"))
            }
        }
    };
    // The mix of signals governance set, in place of the instance's own (basis points → shares).
    let weights = seen(&prior[&Stage::Observe])?
        .policy
        .map(|p| p.weights.into_iter().map(|(k, bp)| (k, bp as f64 / 10_000.0)).collect::<BTreeMap<_, _>>());
    allonet_allocate::Problem::from_toml_with(&problem.file, problem.text.as_bytes(), &read, weights.as_ref())
        .map_err(|e| e.to_string())
}

/// The epoch's final allocation and plans: the treasury stage's when it scaled the plan down, else allocate's.
pub fn final_plans(prior: &BTreeMap<Stage, Value>) -> &Value {
    match prior.get(&Stage::Treasury) {
        Some(t) if t.get("plans").is_some() => t,
        _ => &prior[&Stage::Allocate],
    }
}

fn allocate(a: &Agent, prior: &BTreeMap<Stage, Value>) -> Result<Value, String> {
    let p = problem(a, prior)?;
    allocation_value(a, &p)
}

/// An allocation of `p` and its per-pool plans, as stage output.
pub(crate) fn allocation_value(a: &Agent, p: &allonet_allocate::Problem) -> Result<Value, String> {
    let alloc = allonet_allocate::allocate(p).map_err(|e| e.to_string())?;
    let plans = crate::plans::from_allocation(p, &alloc, a.setup.batch_size)?;
    let plans: Vec<Value> = plans.into_iter().map(|(pool, plan)| json!({ "pool": pool, "plan": plan })).collect();
    Ok(json!({ "allocation": alloc, "plans": plans }))
}
