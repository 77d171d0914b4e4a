//! The allocation network: nodes with rules, weighted edges, an optional upstream pinch; loaders for
//! edge lists (Deep Funding `repo,parent,weight`, generic `source,target[,weight]`, the Optimism
//! dependency graph), networkx node-link JSON, and TOML models.

use allonet_core::{apportion_exact, InputError, Table, TokenAmount};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Weights are parts per million of what a node passes on (Drips: "out of 1,000,000").
pub const ONE_MILLION: u32 = 1_000_000;
/// Drips' limit on receivers of one splits configuration.
pub const MAX_SPLITS_RECEIVERS: usize = 200;

/// What a node does with money it receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// Keeps everything (a project, a sink).
    Keep,
    /// Drips splits: at most 200 receivers weighted out of 1,000,000; the remainder is kept.
    Splits {
        /// (receiver, weight in ppm)
        receivers: Vec<(u32, u32)>,
    },
    /// Dependency weights (Deep Funding): like splits, any number of receivers.
    Weights {
        /// (receiver, weight in ppm)
        receivers: Vec<(u32, u32)>,
    },
    /// A mechanism's result (a QF pool, a retro round, a vote): everything received is passed on in
    /// proportion to the scores, apportioned exactly.
    Shares {
        /// Which mechanism produced the scores (for reports).
        mechanism: String,
        /// (receiver, score)
        receivers: Vec<(u32, f64)>,
    },
}

/// A node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Id.
    pub id: String,
    /// Rule.
    #[serde(flatten)]
    pub rule: Rule,
}

/// The upstream pinch: every node that passes money on first sends `ppm` of what it receives to `target`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pinch {
    /// Receiving node.
    pub target: u32,
    /// Share in ppm.
    pub ppm: u32,
}

/// An allocation network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Nodes, indexed by position.
    pub nodes: Vec<Node>,
    /// Optional upstream pinch.
    pub pinch: Option<Pinch>,
}

/// Why a network is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// Located input problem.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A rule broken by a node.
    #[error("node `{node}`: {message}")]
    Node {
        /// node id
        node: String,
        /// what is wrong
        message: String,
    },
    /// Something else.
    #[error("{0}")]
    Other(String),
}

fn node_err(node: &str, message: impl Into<String>) -> GraphError {
    GraphError::Node { node: node.to_string(), message: message.into() }
}

impl Network {
    /// Index of a node id.
    pub fn index(&self) -> HashMap<&str, u32> {
        self.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i as u32)).collect()
    }

    /// Number of edges.
    pub fn edges(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.rule {
                Rule::Keep => 0,
                Rule::Splits { receivers } | Rule::Weights { receivers } => receivers.len(),
                Rule::Shares { receivers, .. } => receivers.len(),
            })
            .sum()
    }

    /// Checks every node's rule: weights within 1,000,000 in total, at most 200 splits receivers,
    /// receivers that exist, non-negative finite scores, a pinch within 1,000,000 to an existing node.
    pub fn validate(&self) -> Result<(), GraphError> {
        let n = self.nodes.len() as u32;
        for node in &self.nodes {
            match &node.rule {
                Rule::Keep => {}
                Rule::Splits { receivers } | Rule::Weights { receivers } => {
                    if matches!(node.rule, Rule::Splits { .. }) && receivers.len() > MAX_SPLITS_RECEIVERS {
                        return Err(node_err(
                            &node.id,
                            format!(
                                "{} splits receivers; Drips allows at most {MAX_SPLITS_RECEIVERS}",
                                receivers.len()
                            ),
                        ));
                    }
                    let total: u64 = receivers.iter().map(|r| r.1 as u64).sum();
                    if total > ONE_MILLION as u64 {
                        return Err(node_err(&node.id, format!("weights sum to {total}, over 1,000,000")));
                    }
                    if let Some(r) = receivers.iter().find(|r| r.0 >= n) {
                        return Err(node_err(&node.id, format!("receiver #{} does not exist", r.0)));
                    }
                }
                Rule::Shares { receivers, .. } => {
                    if let Some(r) = receivers.iter().find(|r| !(r.1.is_finite() && r.1 >= 0.0)) {
                        return Err(node_err(&node.id, format!("score {} must be finite and non-negative", r.1)));
                    }
                }
            }
        }
        if let Some(p) = self.pinch {
            if p.ppm > ONE_MILLION || p.target >= n {
                return Err(GraphError::Other(format!("pinch of {} ppm to node #{} is invalid", p.ppm, p.target)));
            }
        }
        Ok(())
    }
}

/// Builds a network from (source, target, fraction) edges: each source's fractions become ppm weights
/// (exactly apportioned, summing to round(Σ fraction · 1e6)); nodes with no out-edges keep everything.
/// Fractions per source must be non-negative and sum to at most 1.
pub fn from_fraction_edges(edges: &[(String, String, f64)], splits_rule: bool) -> Result<Network, GraphError> {
    let mut ids: Vec<&str> = Vec::new();
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for (s, t, _) in edges {
        for v in [s.as_str(), t.as_str()] {
            if !seen.contains_key(v) {
                seen.insert(v, ids.len() as u32);
                ids.push(v);
            }
        }
    }
    let mut out: BTreeMap<u32, Vec<(u32, f64)>> = BTreeMap::new();
    for (s, t, w) in edges {
        if !(w.is_finite() && *w >= 0.0) {
            return Err(node_err(s, format!("edge to `{t}` has weight {w}; weights must be zero or more")));
        }
        out.entry(seen[s.as_str()]).or_default().push((seen[t.as_str()], *w));
    }
    let mut nodes: Vec<Node> = ids.iter().map(|id| Node { id: id.to_string(), rule: Rule::Keep }).collect();
    for (src, recs) in out {
        // merge duplicate edges
        let mut merged: BTreeMap<u32, f64> = BTreeMap::new();
        for (t, w) in recs {
            *merged.entry(t).or_insert(0.0) += w;
        }
        let total: f64 = merged.values().sum();
        let id = &nodes[src as usize].id;
        if total > 1.0 + 1e-9 {
            return Err(node_err(id, format!("out-weights sum to {total}, over 1 (1,000,000 ppm)")));
        }
        let ppm_total = ((total.min(1.0)) * ONE_MILLION as f64).round() as u128;
        let targets: Vec<u32> = merged.keys().copied().collect();
        let ws: Vec<f64> = merged.values().copied().collect();
        let ppm = if ppm_total == 0 || ws.iter().all(|&w| w == 0.0) {
            vec![TokenAmount::ZERO; ws.len()]
        } else {
            apportion_exact(TokenAmount::from_base_units(ppm_total), &ws).map_err(|e| node_err(id, e.to_string()))?
        };
        let receivers: Vec<(u32, u32)> =
            targets.into_iter().zip(ppm).map(|(t, a)| (t, a.units().to::<u32>())).filter(|r| r.1 > 0).collect();
        nodes[src as usize].rule = if splits_rule { Rule::Splits { receivers } } else { Rule::Weights { receivers } };
    }
    let net = Network { nodes, pinch: None };
    net.validate()?;
    Ok(net)
}

/// Reads an edge-list CSV. Deep Funding's `repo,parent,weight` (money flows parent → repo) is
/// recognised by its header; otherwise `source|from|parent` and `target|to|repo` columns, with an optional
/// `weight` (a fraction; absent or all zero: equal split of everything).
pub fn from_edge_table(t: &Table, source_col: Option<&str>, target_col: Option<&str>) -> Result<Network, GraphError> {
    let sc = match source_col {
        Some(c) => t.column(c)?,
        None => t.require_one_of(&["parent", "source", "from", "onchain_builder_project_id"], "source")?,
    };
    let tc = match target_col {
        Some(c) => t.column(c)?,
        None => t.require_one_of(&["repo", "target", "to", "devtooling_project_id"], "target")?,
    };
    let wc = t.find_column(&["weight", "fraction"]);
    let mut edges = Vec::with_capacity(t.len());
    for row in t.rows() {
        let (s, d) = (row.get(sc), row.get(tc));
        if s.is_empty() || d.is_empty() {
            return Err(t.error(row, if s.is_empty() { sc } else { tc }, "empty node id").into());
        }
        let w = match wc {
            Some(c) => {
                let v = t.parse_f64(row, c)?;
                if v < 0.0 {
                    return Err(t.error(row, c, format!("weight {v} is negative (edge {s} → {d})")).into());
                }
                v
            }
            None => f64::NAN,
        };
        edges.push((s.to_string(), d.to_string(), w));
    }
    equalise_unweighted(&mut edges);
    from_fraction_edges(&edges, false)
}

/// Sources whose edges carry no weight (NaN or all zero) split equally.
fn equalise_unweighted(edges: &mut [(String, String, f64)]) {
    let mut per: HashMap<String, (usize, f64)> = HashMap::new();
    for (s, _, w) in edges.iter() {
        let e = per.entry(s.clone()).or_insert((0, 0.0));
        e.0 += 1;
        if w.is_finite() {
            e.1 += w;
        }
    }
    for (s, _, w) in edges.iter_mut() {
        let (count, sum) = per[s.as_str()];
        if !w.is_finite() || sum == 0.0 {
            *w = 1.0 / count as f64;
        }
    }
}

/// Reads networkx node-link JSON (`nodes: [{id}]`, `links: [{source, target, weight?}]`); money flows
/// source → target (in Deep Funding's graph: dependent → dependency). Zero weights split equally.
pub fn from_node_link(name: &str, bytes: &[u8]) -> Result<Network, GraphError> {
    #[derive(Deserialize)]
    struct Link {
        source: serde_json::Value,
        target: serde_json::Value,
        #[serde(default)]
        weight: Option<f64>,
    }
    #[derive(Deserialize)]
    struct NodeLink {
        #[serde(default)]
        nodes: Vec<serde_json::Value>,
        #[serde(alias = "edges")]
        links: Vec<Link>,
    }
    let g: NodeLink = allonet_core::input::json_from_bytes(name, bytes)?;
    let id = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut edges: Vec<(String, String, f64)> =
        g.links.iter().map(|l| (id(&l.source), id(&l.target), l.weight.unwrap_or(f64::NAN))).collect();
    equalise_unweighted(&mut edges);
    let mut net = from_fraction_edges(&edges, false)?;
    // isolated nodes listed without links
    let known: std::collections::HashSet<String> = net.nodes.iter().map(|n| n.id.clone()).collect();
    for n in &g.nodes {
        let nid = n.get("id").map(id).unwrap_or_else(|| id(n));
        if !known.contains(&nid) {
            net.nodes.push(Node { id: nid, rule: Rule::Keep });
        }
    }
    Ok(net)
}

/// Sets the pinch by node id.
pub fn set_pinch(net: &mut Network, target: &str, ppm: u32) -> Result<(), GraphError> {
    let idx = net.index();
    let t = *idx.get(target).ok_or_else(|| GraphError::Other(format!("pinch target `{target}` is not a node")))?;
    if ppm > ONE_MILLION {
        return Err(GraphError::Other(format!("pinch of {ppm} ppm is over 1,000,000")));
    }
    net.pinch = Some(Pinch { target: t, ppm });
    Ok(())
}
