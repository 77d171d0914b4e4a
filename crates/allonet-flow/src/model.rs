//! TOML network models: nodes with rules, the pinch, and a simulation section.
//!
//! ```toml
//! [[node]]
//! id = "treasury"
//! rule = "splits"                       # splits | weights | sink | qf | cocm | shares
//! receivers = { grants = 600000, retro = 300000 }   # ppm; the rest is kept
//!
//! [[node]]
//! id = "grants"
//! rule = "qf"                           # scores from a contributions CSV (projects become sinks)
//! contributions = "gifts.csv"           # (also: rule = "retro", votes = "votes.csv", quorum, min_median;
//!                                       #  rule = "vote", tally = "snapshot.json" with node ids as choices)
//!
//! [pinch]
//! target = "protocol-guild"
//! ppm = 10000
//!
//! [simulation]
//! steps = 100
//! runs = 1000
//! seed = 42
//! inject = [{ node = "treasury", median = 1000000, sigma = 0.5 }]
//! sweep = { pinch_ppm = [0, 10000, 50000], inject_scale = [0.5, 1.0, 2.0] }   # full grid
//! ```

use crate::graph::{GraphError, Network, Node, Pinch, Rule, MAX_SPLITS_RECEIVERS};
use crate::sim::{InjectSpec, SimSpec};
use allonet_core::{InputError, Table};
use allonet_mechanisms::donations::{contributions_from_table, ContributionColumns, Donations};
use allonet_mechanisms::qf::{classic_qf_scores, cocm_scores, CocmStyle, Groups};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSpec {
    id: String,
    #[serde(default = "sink")]
    rule: String,
    #[serde(default)]
    receivers: BTreeMap<String, f64>,
    #[serde(default)]
    contributions: Option<String>,
    #[serde(default)]
    scores: BTreeMap<String, f64>,
    /// `retro`: RetroPGF-3-style votes CSV (voter, project, amount).
    #[serde(default)]
    votes: Option<String>,
    /// `retro`: ballots a project needs.
    #[serde(default)]
    quorum: Option<usize>,
    /// `retro`: smallest median.
    #[serde(default)]
    min_median: Option<f64>,
    /// `vote`: Snapshot-style quadratic vote JSON whose choices are node ids.
    #[serde(default)]
    tally: Option<String>,
}

fn sink() -> String {
    "sink".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinchSpec {
    target: String,
    ppm: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectToml {
    node: String,
    median: f64,
    #[serde(default)]
    sigma: f64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SweepToml {
    #[serde(default)]
    pinch_ppm: Vec<u32>,
    #[serde(default)]
    inject_scale: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimToml {
    #[serde(default = "default_steps")]
    steps: usize,
    #[serde(default = "default_runs")]
    runs: usize,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    inject: Vec<InjectToml>,
    #[serde(default)]
    sweep: SweepToml,
}

fn default_steps() -> usize {
    100
}
fn default_runs() -> usize {
    100
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelToml {
    node: Vec<NodeSpec>,
    #[serde(default)]
    pinch: Option<PinchSpec>,
    #[serde(default)]
    simulation: Option<SimToml>,
}

/// A network with its simulation settings.
pub struct FlowModel {
    /// The network.
    pub network: Network,
    /// Simulation settings, when the file has a `[simulation]` section.
    pub simulation: Option<SimSpec>,
}

/// Parses a TOML model. `read_table` loads a CSV named in the model (contributions of QF/COCM nodes),
/// so this function does no I/O itself.
pub fn parse_model(
    name: &str,
    text: &str,
    read_table: &dyn Fn(&str) -> Result<Table, InputError>,
) -> Result<FlowModel, GraphError> {
    parse_model_with(name, text, read_table, &|p: &str| Err(InputError::file(p, "JSON inputs are not available here")))
}

/// [`parse_model`] with a loader for JSON files too (the tally of `vote` nodes).
pub fn parse_model_with(
    name: &str,
    text: &str,
    read_table: &dyn Fn(&str) -> Result<Table, InputError>,
    read_bytes: &dyn Fn(&str) -> Result<Vec<u8>, InputError>,
) -> Result<FlowModel, GraphError> {
    let m: ModelToml = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].lines().count().max(1) as u64);
        GraphError::Input(InputError { file: name.into(), line, field: None, message: e.message().to_string() })
    })?;
    let mut index: HashMap<String, u32> = HashMap::new();
    for (i, n) in m.node.iter().enumerate() {
        if index.insert(n.id.clone(), i as u32).is_some() {
            return Err(GraphError::Node { node: n.id.clone(), message: "declared twice".into() });
        }
    }
    let mut nodes: Vec<Node> = m.node.iter().map(|n| Node { id: n.id.clone(), rule: Rule::Keep }).collect();
    let err = |node: &str, message: String| GraphError::Node { node: node.to_string(), message };
    for (i, spec) in m.node.iter().enumerate() {
        let rule = match spec.rule.as_str() {
            "sink" | "keep" | "project" => Rule::Keep,
            "splits" | "weights" => {
                let mut receivers = Vec::new();
                for (r, &w) in &spec.receivers {
                    let &t = index.get(r).ok_or_else(|| err(&spec.id, format!("receiver `{r}` is not a node")))?;
                    if !(w.is_finite() && w >= 0.0 && w.fract() == 0.0) {
                        return Err(err(
                            &spec.id,
                            format!("weight {w} for `{r}` must be a whole number of ppm, zero or more"),
                        ));
                    }
                    if w > 1_000_000.0 {
                        return Err(err(&spec.id, format!("weight {w} for `{r}` is over 1,000,000")));
                    }
                    receivers.push((t, w as u32));
                }
                if spec.rule == "splits" && receivers.len() > MAX_SPLITS_RECEIVERS {
                    return Err(err(
                        &spec.id,
                        format!("{} splits receivers; Drips allows at most {MAX_SPLITS_RECEIVERS}", receivers.len()),
                    ));
                }
                if spec.rule == "splits" {
                    Rule::Splits { receivers }
                } else {
                    Rule::Weights { receivers }
                }
            }
            "shares" => {
                let mut receivers = Vec::new();
                for (r, &s) in &spec.scores {
                    let &t = index.get(r).ok_or_else(|| err(&spec.id, format!("scored node `{r}` is not a node")))?;
                    receivers.push((t, s));
                }
                Rule::Shares { mechanism: "scores".into(), receivers }
            }
            "qf" | "cocm" => {
                let path = spec.contributions.as_deref().ok_or_else(|| {
                    err(&spec.id, format!("rule `{}` needs `contributions = \"file.csv\"`", spec.rule))
                })?;
                let t = read_table(path)?;
                let (gifts, _) = contributions_from_table(&t, &ContributionColumns::default())?;
                let d = Donations::from_contributions(&gifts);
                let scores = if spec.rule == "qf" {
                    classic_qf_scores(&d)
                } else {
                    cocm_scores(&d, &Groups::projects(&d), CocmStyle::Harsh)
                };
                let mut receivers = Vec::new();
                for (p, s) in d.projects.iter().zip(scores) {
                    receivers.push((intern(&mut index, &mut nodes, p), s));
                }
                Rule::Shares { mechanism: spec.rule.clone(), receivers }
            }
            "retro" => {
                let path = spec
                    .votes
                    .as_deref()
                    .ok_or_else(|| err(&spec.id, "rule `retro` needs `votes = \"file.csv\"`".into()))?;
                let t = read_table(path)?;
                let vc = t.require_one_of(&["voter", "badgeholder", "address"], "voter")?;
                let pc = t.require_one_of(&["project", "project_id"], "project")?;
                let ac = t.require_one_of(&["amount", "votes"], "amount")?;
                let mut votes = Vec::with_capacity(t.len());
                for row in t.rows() {
                    votes.push((row.get(vc).to_string(), row.get(pc).to_string(), t.parse_non_negative(row, ac)?));
                }
                let params = allonet_mechanisms::retro::R3Params {
                    quorum: spec.quorum.unwrap_or(1),
                    min_median: spec.min_median.unwrap_or(0.0),
                };
                let token = allonet_core::Token::new("", 0);
                let one = allonet_core::TokenAmount::from_base_units(1);
                let (lines, _) = allonet_mechanisms::retro::r3_median(&votes, &params, &token, one)
                    .map_err(|e| err(&spec.id, e.to_string()))?;
                let mut receivers = Vec::new();
                for l in lines {
                    let t = intern(&mut index, &mut nodes, &l.project);
                    receivers.push((t, if l.eligible { l.median } else { 0.0 }));
                }
                Rule::Shares { mechanism: "retro".into(), receivers }
            }
            "vote" => {
                let path = spec
                    .tally
                    .as_deref()
                    .ok_or_else(|| err(&spec.id, "rule `vote` needs `tally = \"votes.json\"`".into()))?;
                let bytes = read_bytes(path)?;
                let p: allonet_mechanisms::qv::SnapshotProposal = allonet_core::input::json_from_bytes(path, &bytes)?;
                let scores =
                    allonet_mechanisms::qv::snapshot_quadratic(&p).map_err(|e| err(&spec.id, e.to_string()))?;
                let mut receivers = Vec::new();
                for (c, sc) in p.choices.iter().zip(scores) {
                    let &t = index.get(c).ok_or_else(|| err(&spec.id, format!("vote choice `{c}` is not a node")))?;
                    receivers.push((t, sc));
                }
                Rule::Shares { mechanism: "vote".into(), receivers }
            }
            other => {
                return Err(err(
                    &spec.id,
                    format!("unknown rule `{other}` (splits, weights, sink, qf, cocm, retro, vote, shares)"),
                ))
            }
        };
        nodes[i].rule = rule;
    }
    let mut network = Network { nodes, pinch: None };
    if let Some(p) = &m.pinch {
        let &t = index
            .get(&p.target)
            .ok_or_else(|| GraphError::Other(format!("pinch target `{}` is not a node", p.target)))?;
        network.pinch = Some(Pinch { target: t, ppm: p.ppm });
    }
    network.validate()?;
    let simulation = match m.simulation {
        None => None,
        Some(s) => {
            let mut inject = Vec::new();
            for i in s.inject {
                let &node = index
                    .get(&i.node)
                    .ok_or_else(|| GraphError::Other(format!("injection at `{}`, which is not a node", i.node)))?;
                if !(i.median.is_finite() && i.median >= 0.0 && i.sigma.is_finite() && i.sigma >= 0.0) {
                    return Err(GraphError::Other(format!(
                        "injection at `{}` needs median >= 0 and sigma >= 0",
                        i.node
                    )));
                }
                inject.push(InjectSpec { node, median: i.median, sigma: i.sigma });
            }
            if s.sweep.inject_scale.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
                return Err(GraphError::Other("sweep.inject_scale values must be zero or more".into()));
            }
            Some(SimSpec {
                steps: s.steps,
                runs: s.runs,
                seed: s.seed,
                inject,
                pinch_sweep: s.sweep.pinch_ppm,
                inject_scale_sweep: s.sweep.inject_scale,
            })
        }
    };
    Ok(FlowModel { network, simulation })
}

/// The index of a project node, adding it as a sink when the model did not declare it.
fn intern(index: &mut HashMap<String, u32>, nodes: &mut Vec<Node>, id: &str) -> u32 {
    if let Some(&t) = index.get(id) {
        return t;
    }
    let t = nodes.len() as u32;
    index.insert(id.to_string(), t);
    nodes.push(Node { id: id.to_string(), rule: Rule::Keep });
    t
}
