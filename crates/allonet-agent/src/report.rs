//! An epoch's report: what went in (every input's digest, the governance state, the model), what came out (the
//! allocation with every project's explanation, each pool's plan), and what was decided and paid. It is a pure
//! function of the epoch's recorded stages, so anyone holding the inputs can recompute it; its digest goes into
//! the DAO's audit log, once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use allonet_core::{digest, Digest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stages::{stage_err, GovernanceSeen, Mode, Observed, Stage};
use crate::{Agent, AgentError};

/// Schema tag of agent reports.
pub const REPORT_SCHEMA: &str = "allonet.agent-report/1";

/// An input as the report names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputLine {
    pub name: String,
    pub file: String,
    pub digest: Digest,
}

/// A signal the allocation read, served from one of the agent's stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalLine {
    /// The file name the instance gives it.
    pub file: String,
    pub stage: Stage,
    /// keccak-256 of the bytes served (the stage's output, canonical JSON).
    pub digest: Digest,
}

/// One pool's plan as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanLine {
    pub pool: String,
    pub chain: Option<String>,
    pub token: String,
    pub payments: usize,
    /// Base units.
    pub total: String,
    /// The plan's digest (what governance approves).
    pub digest: Digest,
}

/// The digest of each stage's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLine {
    pub stage: Stage,
    pub digest: Digest,
}

/// One epoch's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    pub schema: String,
    pub allonet: String,
    pub agent: String,
    pub epoch: u64,
    pub mode: Mode,
    /// The mix of signals governance set (basis points), when it set one; else the instance's own was used.
    pub weights: Option<BTreeMap<String, u32>>,
    pub inputs: Vec<InputLine>,
    pub governance: GovernanceSeen,
    /// Each pool's allocator as observe found it (chain, block, balance, caps, pause, veto delay).
    pub chains: Value,
    /// The model that made the recommendation (the version governance activated).
    pub model: Option<Digest>,
    pub signals: Vec<SignalLine>,
    /// The allocation: objective, every pool (shadow price, binding) and every project's explanation.
    pub allocation: Value,
    pub plans: Vec<PlanLine>,
    pub treasury: Value,
    /// The rebalance the policy called for: its trades and swaps (treasury stage), whether the members approved
    /// them and what each swap paid (execute stage).
    pub rebalance: Value,
    pub decision: Value,
    pub transactions: Vec<Value>,
    pub reconciliation: Value,
    /// Every stage before the report, with the digest of its output.
    pub stages: Vec<StageLine>,
}

/// The digest of a report (as recorded in a checkpoint): keccak-256 of its canonical JSON.
pub fn digest_of(v: &Value) -> Result<Digest, AgentError> {
    Ok(digest(v))
}

/// The audit log's record kind for agent reports.
pub const RECORD_KIND: &str = "agent_report";

/// Builds the report of `epoch` from its stages, writes `reports/epoch-N.{json,md}` and records its digest in the
/// DAO's audit log (unless a record of the same epoch and digest is already there: a resumed report stage
/// records nothing twice).
pub fn build_and_record(a: &Agent, epoch: u64, prior: &BTreeMap<Stage, Value>) -> Result<Value, AgentError> {
    let e = |m: String| stage_err(epoch, Stage::Report, m);
    let observe = &prior[&Stage::Observe];
    let inputs: Vec<Observed> = serde_json::from_value(observe["inputs"].clone()).map_err(|x| e(x.to_string()))?;
    let governance: GovernanceSeen =
        serde_json::from_value(observe["governance"].clone()).map_err(|x| e(x.to_string()))?;
    let model = prior[&Stage::Recommend]["model"].as_str().and_then(|s| s.parse().ok()).map(Digest);
    let signals = a
        .setup
        .signals
        .iter()
        .map(|(file, &stage)| SignalLine {
            file: file.clone(),
            stage,
            digest: allonet_core::digest::keccak(allonet_core::canonical_json(&prior[&stage]).as_bytes()),
        })
        .collect();
    let allocated = crate::stages::final_plans(prior);
    let mut plans = Vec::new();
    for p in allocated["plans"].as_array().into_iter().flatten() {
        let plan: allonet_chain::plan::PayoutPlan =
            serde_json::from_value(p["plan"].clone()).map_err(|x| e(format!("a recorded plan: {x}")))?;
        plans.push(PlanLine {
            pool: p["pool"].as_str().unwrap_or_default().to_string(),
            chain: plan.payments.first().and_then(|x| x.chain.clone()),
            token: plan.token.symbol.clone(),
            payments: plan.payments.len(),
            total: plan.total.units().to_string(),
            digest: plan.digest,
        });
    }
    let report = EpochReport {
        schema: REPORT_SCHEMA.into(),
        allonet: env!("CARGO_PKG_VERSION").into(),
        agent: a.setup.name.clone(),
        epoch,
        mode: governance.mode(),
        weights: governance.policy.as_ref().map(|p| p.weights.clone()),
        inputs: inputs.into_iter().map(|o| InputLine { name: o.name, file: o.file, digest: o.digest }).collect(),
        governance,
        chains: observe["chains"].clone(),
        model,
        signals,
        allocation: allocated["allocation"].clone(),
        plans,
        treasury: prior[&Stage::Treasury].clone(),
        rebalance: json_merge(&prior[&Stage::Treasury]["rebalance"], &prior[&Stage::Execute]["rebalance"]),
        decision: json_merge(&prior[&Stage::Propose], &prior[&Stage::Await]),
        transactions: prior[&Stage::Execute]["pools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| {
                let (pool, chain) = (l["pool"].clone(), l["chain"].clone());
                l["transactions"].as_array().cloned().unwrap_or_default().into_iter().map(move |mut t| {
                    if let Some(o) = t.as_object_mut() {
                        o.insert("pool".into(), pool.clone());
                        o.insert("chain".into(), chain.clone());
                    }
                    t
                })
            })
            .chain(prior[&Stage::Execute]["rebalance"]["executed"].as_array().into_iter().flatten().map(|x| {
                serde_json::json!({ "pool": "treasury", "chain": null, "kind": "swap",
                    "swap": format!("{} → {}", x["sell"].as_str().unwrap_or_default(), x["buy"].as_str().unwrap_or_default()),
                    "tx_hash": x["tx_hash"], "block": x["block"], "gas_used": x["gas_used"] })
            }))
            .collect(),
        reconciliation: prior[&Stage::Reconcile].clone(),
        stages: Stage::ALL[..Stage::Report.position()]
            .iter()
            .map(|&s| StageLine { stage: s, digest: digest(&prior[&s]) })
            .collect(),
    };
    let value = serde_json::to_value(&report).map_err(|x| e(x.to_string()))?;
    let d = digest(&value);
    write_files(a, &report, &value, d).map_err(e)?;
    record_once(a, epoch, d).map_err(e)?;
    Ok(value)
}

/// `a` with `b`'s keys put over it, as one object (e.g. the proposal filed and the decision awaited).
pub(crate) fn json_merge(a: &Value, b: &Value) -> Value {
    let mut out = a.clone();
    if let (Some(o), Some(m)) = (out.as_object_mut(), b.as_object()) {
        for (k, v) in m {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

fn write_files(a: &Agent, r: &EpochReport, v: &Value, d: Digest) -> Result<(), String> {
    let dir = a.dir.join("reports");
    std::fs::create_dir_all(&dir).map_err(|x| format!("{}: {x}", dir.display()))?;
    let base = dir.join(format!("epoch-{:06}", r.epoch));
    let json = serde_json::to_string_pretty(v).map_err(|x| x.to_string())? + "\n";
    allonet_engine::write_atomic(&base.with_extension("json"), json.as_bytes()).map_err(|x| x.to_string())?;
    allonet_engine::write_atomic(&base.with_extension("md"), markdown(r, d).as_bytes()).map_err(|x| x.to_string())
}

/// Appends `{agent, epoch, report}` to the audit log unless that exact record is there already.
fn record_once(a: &Agent, epoch: u64, d: Digest) -> Result<(), String> {
    let detail = serde_json::json!({ "agent": a.setup.name, "epoch": epoch, "report": d });
    audit_once(&a.setup.governance, RECORD_KIND, &detail, None)
}

/// Appends a `kind` record with `detail` to the DAO's audit log unless that exact record is there already (a
/// stage resumed after a crash records nothing twice). `at`: the record's time (default: the log's latest act).
pub(crate) fn audit_once(
    governance: &std::path::Path,
    kind: &str,
    detail: &Value,
    at: Option<u64>,
) -> Result<(), String> {
    let text = allonet_core::canonical_json(detail);
    let mut store = allonet_engine::offchain::open_writable(governance, None).map_err(|x| x.to_string())?;
    let entries = store.entries().map_err(|x| x.to_string())?;
    let already = entries.iter().any(|en| {
        serde_json::from_str::<allonet_governance::governor::Event>(&en.payload).is_ok_and(|ev| {
            matches!(ev.act, allonet_governance::governor::Act::Record { kind: k, detail }
                if k == kind && detail == text)
        })
    });
    if already {
        return Ok(());
    }
    let now = at.unwrap_or(store.governor().last_at);
    allonet_engine::audit::record(&mut store, kind, detail, now).map_err(|x| x.to_string())?;
    Ok(())
}

/// The report for people: what went in, the plan per pool, the largest grants and why, what was decided.
pub fn markdown(r: &EpochReport, d: Digest) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}: epoch {}\n", r.agent, r.epoch);
    let paid = r.reconciliation["plans"]
        .as_array()
        .map_or(0, |l| l.iter().filter(|x| x["paid"].as_str().is_some_and(|p| p != "0")).count());
    let mode = match r.mode {
        Mode::Advise => "**advise**: nothing was filed or paid".to_string(),
        Mode::Propose => format!("**propose**: the plans went to the members; {paid} of {} paid", r.plans.len()),
        Mode::Autonomous => format!("**autonomous**: {paid} of {} plans paid", r.plans.len()),
    };
    let _ = writeln!(s, "Report digest `{d}` (recorded in the DAO's audit log). Mode: {mode}.\n");
    match &r.weights {
        Some(w) => {
            let mix: Vec<String> = w.iter().map(|(k, bp)| format!("{k} {:.2}", *bp as f64 / 10_000.0)).collect();
            let _ = writeln!(s, "Signals mixed as governance set: {}.\n", mix.join(", "));
        }
        None => {
            let _ = writeln!(s, "Signals mixed as the instance file says (governance set no mix).\n");
        }
    }
    if let Some(id) = r.decision.get("proposal").and_then(|v| v.as_str()) {
        let _ = writeln!(s, "Proposal `{id}`: {}.\n", r.decision["description"].as_str().unwrap_or_default());
    }
    let _ = writeln!(s, "## Inputs\n\n| input | file | keccak-256 |\n|---|---|---|");
    for i in &r.inputs {
        let _ = writeln!(s, "| {} | `{}` | `{}` |", i.name, i.file, i.digest);
    }
    let _ = writeln!(
        s,
        "\nGovernance: DAO `{}`, log of {} entries ending `{}`{}; model `{}`.\n",
        r.governance.dao,
        r.governance.log_entries,
        r.governance.log_head,
        if r.governance.rehearsal { " (a rehearsal database)" } else { "" },
        r.model.map(|m| m.to_string()).unwrap_or_else(|| "none".into())
    );
    if let Some(chains) = r.chains.as_object().filter(|c| !c.is_empty()) {
        let _ = writeln!(
            s,
            "## Allocators at observe\n\n| pool | chain id | block | balance | epoch cap | left this epoch | veto delay s | paused |\n|---|---:|---:|---:|---:|---:|---:|---|"
        );
        for (pool, c) in chains {
            let _ = writeln!(
                s,
                "| {pool} | {} | {} | {} | {} | {} | {} | {} |",
                c["chain_id"],
                c["block"],
                c["balance"].as_str().unwrap_or_default(),
                c["epoch_cap"].as_str().unwrap_or_default(),
                c["left_this_epoch"].as_str().unwrap_or_default(),
                c["veto_delay"],
                c["paused"]
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Plan per pool\n\n| pool | chain | token | payments | total (base units) | plan digest |\n|---|---|---|---:|---:|---|");
    for p in &r.plans {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | `{}` |",
            p.pool,
            p.chain.as_deref().unwrap_or("-"),
            p.token,
            p.payments,
            p.total,
            p.digest
        );
    }
    let _ =
        writeln!(s, "\n## Pools\n\n| pool | spent | budget | shadow price per value | why |\n|---|---:|---:|---:|---|");
    for p in r.allocation["pools"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.6e} | {} |",
            p["id"].as_str().unwrap_or_default(),
            p["spent"].as_str().unwrap_or_default(),
            p["budget"].as_str().unwrap_or_default(),
            p["shadow_price_per_value"].as_f64().unwrap_or_default(),
            p["binding"].as_str().unwrap_or_default()
        );
    }
    let mut projects: Vec<&Value> = r.allocation["projects"].as_array().into_iter().flatten().collect();
    projects.sort_by(|a, b| b["value"].as_f64().unwrap_or(0.0).total_cmp(&a["value"].as_f64().unwrap_or(0.0)));
    let _ = writeln!(s, "\n## Largest grants\n\n| project | value | baseline | marginal w·u' |\n|---|---:|---:|---:|");
    for p in projects.iter().take(10) {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.4e} |",
            p["name"].as_str().or(p["id"].as_str()).unwrap_or_default(),
            p["value"].as_f64().unwrap_or_default(),
            p["baseline_value"].as_f64().unwrap_or_default(),
            p["marginal"].as_f64().unwrap_or_default()
        );
    }
    let o = &r.allocation["objective"];
    let _ = writeln!(
        s,
        "\nObjective at the plan {:.6} (baseline {:.6}, each pool alone {}).\n",
        o["plan"].as_f64().unwrap_or_default(),
        o["baseline"].as_f64().unwrap_or_default(),
        o["pools_alone"].as_f64().map(|x| format!("{x:.6}")).unwrap_or_else(|| "n/a".into())
    );
    rebalance_markdown(&mut s, &r.rebalance);
    if !r.transactions.is_empty() {
        let gas: u64 = r.transactions.iter().filter_map(|t| t["gas_used"].as_u64()).sum();
        let _ = writeln!(
            s,
            "## Transactions\n\n{} transactions, {gas} gas in total.\n\n| pool | chain | what | block | gas | transaction |\n|---|---|---|---:|---:|---|",
            r.transactions.len()
        );
        for t in &r.transactions {
            let what = match (t["batch"].as_u64(), t["swap"].as_str()) {
                (Some(b), _) => format!("batch {b}"),
                (None, Some(s)) => format!("swap {s}"),
                _ => t["kind"].as_str().unwrap_or_default().to_string(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {what} | {} | {} | `{}` |",
                t["pool"].as_str().unwrap_or_default(),
                t["chain"].as_str().unwrap_or("-"),
                t["block"],
                t["gas_used"].as_u64().map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
                t["tx_hash"].as_str().unwrap_or_default()
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Stages\n\n| stage | output digest |\n|---|---|");
    for st in &r.stages {
        let _ = writeln!(s, "| {} | `{}` |", st.stage, st.digest);
    }
    s
}

/// The rebalance section: the trades back to target, each swap with its bound, and what happened to them.
fn rebalance_markdown(s: &mut String, r: &Value) {
    if r.is_null() || r["needed"] == false {
        return;
    }
    let _ = writeln!(s, "## Treasury rebalance\n");
    let status = match (r["approved"].as_bool(), r["executed"].as_array()) {
        (Some(true), done) if r["vetoed"] == true => format!(
            "approved by the members, then stopped: {}; {} swaps had landed before",
            r["note"].as_str().unwrap_or("vetoed"),
            done.map_or(0, Vec::len)
        ),
        (Some(true), Some(done)) => format!("approved by the members; {} swaps executed", done.len()),
        (Some(true), None) => "approved by the members; written as a Safe batch".to_string(),
        (Some(false), _) => "not approved: no swap was made".to_string(),
        _ => r["note"].as_str().unwrap_or("drafted").to_string(),
    };
    let _ = writeln!(s, "The holdings the epoch leaves are outside the policy's bands: {status}.\n");
    if let Some(x) = r["from_epoch"].as_u64() {
        let _ = writeln!(
            s,
            "No new rebalance was proposed: epoch {x}'s was still before the members, and it is the one shown here.\n"
        );
    }
    if let Some(why) = r["landed_unknown"].as_str() {
        let _ = writeln!(s, "{why}.\n");
    }
    if !r["stopped"].is_null() {
        let _ = writeln!(
            s,
            "Stopped at swap {}: {} (the rest was not sent).\n",
            r["stopped"]["swap"],
            r["stopped"]["reason"].as_str().unwrap_or_default()
        );
    }
    if let Some(refused) = r["refused"].as_array() {
        for x in refused {
            let _ = writeln!(s, "- refused: {}", x.as_str().unwrap_or_default());
        }
        let _ = writeln!(s);
    }
    if let Some(swaps) = r["ops"]["swaps"].as_array() {
        let _ = writeln!(s, "Swaps (digest `{}`), in order:\n", r["digest"].as_str().unwrap_or_default());
        let _ = writeln!(s, "| swap | value | amount in | expected out | least out | impact (bp) | paid out |\n|---|---:|---:|---:|---:|---:|---:|");
        let done = r["executed"].as_array();
        for (i, x) in swaps.iter().enumerate() {
            let paid = done.and_then(|d| d.get(i)).and_then(|d| d["amount_out"].as_str()).unwrap_or("-");
            let _ = writeln!(
                s,
                "| {} → {} | {:.0} | {} | {} | {} | {:.1} | {paid} |",
                x["sell"].as_str().unwrap_or_default(),
                x["buy"].as_str().unwrap_or_default(),
                x["value"].as_f64().unwrap_or_default(),
                x["amount_in"].as_str().unwrap_or_default(),
                x["expected_out"].as_str().unwrap_or_default(),
                x["min_out"].as_str().unwrap_or_default(),
                x["impact_bp"].as_f64().unwrap_or_default()
            );
        }
        let _ = writeln!(s);
    }
}
