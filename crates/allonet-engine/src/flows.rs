//! Allocation networks as flows: `flow run`, `simulate`, `fit`, `score` and `tune` without a front end.
//!
//! Each flow loads its files into typed inputs ([`load_network`], [`read_pairs`], [`read_weights`]: errors
//! name file, line and column), computes with `allonet-flow`, and returns a plain result: a [`FlowRun`]
//! (exact propagation, every base unit kept or in flight), a [`Simulation`]'s [`SimResult`]s, a [`Fit`], a
//! [`Scoring`] or a [`Tuning`]. The front end prints them; result files (CSV) are serialised here.
//!
//! Sources: Drips splits (receivers' weights in parts per million, out of 1,000,000, paid by running totals
//! so nothing is lost to rounding); Deep Funding (the `repo,parent,weight` dependency graph and jurors'
//! pairwise judgements, scored by the squared error of log ratios); BlockScience cadCAD (timesteps, Monte
//! Carlo runs and parameter sweeps).
//!
//! **Never:** prints, or holds an amount that moves as a float.

use std::collections::BTreeMap;
use std::path::Path;

use allonet_core::{InputError, Table, Token};
use allonet_flow::fit::{best_blend, cost, fit, Fit, Pair};
use allonet_flow::graph::{from_edge_table, from_node_link, set_pinch, GraphError, Network};
use allonet_flow::model::FlowModel;
use allonet_flow::propagate::{attribute, propagate, propagate_fast, PropagateOptions, Propagation};
use allonet_flow::sim::{SimResult, SimSpec};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// The most rows [`Simulation::trajectories_csv`] writes (parameter sets × runs × steps × nodes).
pub const MAX_TRAJECTORY_ROWS: usize = 20_000_000;

/// A network error as an engine error: located input problems stay located.
fn graph_err(e: GraphError) -> EngineError {
    match e {
        GraphError::Input(i) => EngineError::Input(i),
        other => EngineError::Config(other.to_string()),
    }
}

fn csv_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Config(format!("cannot write CSV: {e}"))
}

/// Serialises rows (the first is the header) as CSV bytes.
fn csv_bytes<R, I, F>(rows: R) -> Result<Vec<u8>, EngineError>
where
    R: IntoIterator<Item = I>,
    I: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r).map_err(csv_err)?;
    }
    w.into_inner().map_err(csv_err)
}

/// A network from a file, chosen by extension: a TOML model (`.toml`, with the CSV and JSON files it names
/// read relative to it), networkx node-link JSON (`.json`), or else an edge-list CSV (Deep Funding
/// `repo,parent,weight`, or `source,target[,weight]`; `source_col` / `target_col` name other columns).
pub fn load_network(path: &Path, source_col: Option<&str>, target_col: Option<&str>) -> Result<FlowModel, EngineError> {
    let name = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let io = |e| EngineError::Io { path: name.clone(), source: e };
    Ok(match ext.as_str() {
        "toml" => {
            let text = std::fs::read_to_string(path).map_err(io)?;
            let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            let read = |p: &str| -> Result<Table, InputError> { Table::read(&base.join(p)) };
            let read_bytes = |p: &str| -> Result<Vec<u8>, InputError> {
                std::fs::read(base.join(p)).map_err(|e| InputError::file(p, format!("cannot read: {e}")))
            };
            allonet_flow::model::parse_model_with(&name, &text, &read, &read_bytes).map_err(graph_err)?
        }
        "json" => {
            let bytes = std::fs::read(path).map_err(io)?;
            FlowModel { network: from_node_link(&name, &bytes).map_err(graph_err)?, simulation: None }
        }
        _ => FlowModel {
            network: from_edge_table(&Table::read(path)?, source_col, target_col).map_err(graph_err)?,
            simulation: None,
        },
    })
}

/// Parses `NODE=AMOUNT` assignments (whole tokens of `token`, exact to its decimals) into (node index, base
/// units). Errors quote the item, prefixed by `what` (the option that gave it, such as `--inject`).
pub fn parse_injections(
    net: &Network,
    items: &[String],
    token: &Token,
    what: &str,
) -> Result<Vec<(u32, u128)>, EngineError> {
    let idx = net.index();
    items
        .iter()
        .map(|s| {
            let bad = |m: String| EngineError::Config(format!("{what} `{s}`: {m}"));
            let (node, amount) = s.rsplit_once('=').ok_or_else(|| bad("expected NODE=AMOUNT".into()))?;
            let &v = idx.get(node).ok_or_else(|| bad(format!("`{node}` is not a node of the network")))?;
            let a = token.parse(amount).map_err(|e| bad(e.to_string()))?;
            Ok((v, a.units().to::<u128>()))
        })
        .collect()
}

/// Propagates injections to a fixed point (or `max_hops`). Without a trace, the flat-array fast path is
/// used where it applies (splits and weights only, totals under 2⁶³); its result equals the general one.
pub fn propagate_network(net: &Network, injections: &[(u32, u128)], max_hops: usize, trace: bool) -> Propagation {
    if !trace {
        if let Some(p) = propagate_fast(net, injections, max_hops, 0) {
            return p;
        }
    }
    propagate(net, injections, &PropagateOptions { max_hops, trace, ..Default::default() })
}

/// What `flow run` does.
#[derive(Clone, Debug, Default)]
pub struct RunRequest<'a> {
    /// `NODE=AMOUNT` injections (whole tokens).
    pub inject: &'a [String],
    /// Upstream pinch: every node that passes money on sends this many ppm to the node first.
    pub pinch: Option<(&'a str, u32)>,
    /// Token decimals (amounts are exact base units).
    pub decimals: u8,
    /// Stop after this many hops.
    pub max_hops: usize,
    /// Record every transfer (for a trace file or a diagram of the money's paths).
    pub trace: bool,
    /// Per-source attribution: who funded whom.
    pub attribution: bool,
}

/// A propagation with what it ran on.
#[derive(Clone, Debug)]
pub struct FlowRun {
    /// The network, pinch included.
    pub network: Network,
    /// The token amounts are counted in (no symbol).
    pub token: Token,
    /// (node, base units) injected, in the order given.
    pub injections: Vec<(u32, u128)>,
    /// The propagation.
    pub propagation: Propagation,
    /// Per injection (in order), what each node kept of it, when asked for.
    pub attribution: Option<Vec<Vec<u128>>>,
}

/// Sums of a propagation: `injected = kept + in_flight` always.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Σ injected.
    pub injected: u128,
    /// Σ kept.
    pub kept: u128,
    /// Σ still in flight (the hop limit stopped it, or amounts too small to move).
    pub in_flight: u128,
}

impl Totals {
    /// Every unit accounted for.
    pub fn conserved(&self) -> bool {
        self.kept.checked_add(self.in_flight) == Some(self.injected)
    }
}

/// The totals of a propagation.
pub fn totals(p: &Propagation) -> Totals {
    Totals { injected: p.injected, kept: p.kept.iter().sum(), in_flight: p.in_flight.iter().sum() }
}

/// One node of a [`RunReport`] (amounts in base units, as decimal strings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Node id.
    pub node: String,
    /// Everything received, injections included.
    pub received: String,
    /// Kept.
    pub kept: String,
    /// Passed on.
    pub passed: String,
    /// Still in flight.
    pub in_flight: String,
    /// Kept / injected.
    pub share: f64,
}

/// A [`FlowRun`] as a serialisable report: the nodes that received anything, and attribution by source id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Σ injected (base units).
    pub injected: String,
    /// Hops taken.
    pub hops: usize,
    /// Reached a fixed point before the hop limit.
    pub converged: bool,
    /// Nodes that received funds, in network order.
    pub nodes: Vec<NodeReport>,
    /// Source id → (node id → base units kept from that source), nodes with nothing left out.
    pub attribution: Option<BTreeMap<String, BTreeMap<String, String>>>,
}

/// A link of the money's paths: the total that moved from one node to another over all hops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Sender.
    pub from: u32,
    /// Receiver.
    pub to: u32,
    /// Base units.
    pub amount: u128,
}

/// The money's paths from a traced propagation.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Paths {
    /// Links between distinct nodes, largest first (ties in node order).
    pub links: Vec<Link>,
    /// Hops from the injections at which each node that sent or received was first reached (senders of the
    /// first hop: 0).
    pub depth: BTreeMap<u32, usize>,
}

/// Aggregates a propagation's trace into links and depths (empty without a trace).
pub fn paths(p: &Propagation) -> Paths {
    let mut agg: BTreeMap<(u32, u32), u128> = BTreeMap::new();
    let mut depth: BTreeMap<u32, usize> = BTreeMap::new();
    for t in &p.trace {
        *agg.entry((t.from, t.to)).or_insert(0) += t.amount;
        if t.hop == 1 {
            depth.entry(t.from).or_insert(0);
        }
        let d = depth.get(&t.from).copied().unwrap_or(t.hop - 1) + 1;
        depth.entry(t.to).or_insert(d);
    }
    let mut links: Vec<Link> =
        agg.into_iter().filter(|((a, b), _)| a != b).map(|((from, to), amount)| Link { from, to, amount }).collect();
    links.sort_by_key(|l| std::cmp::Reverse(l.amount));
    Paths { links, depth }
}

/// Runs `flow run`: sets the pinch, parses the injections (`--inject` in errors), propagates (exact, every
/// unit kept or in flight) and attributes when asked.
pub fn run(mut network: Network, r: &RunRequest<'_>) -> Result<FlowRun, EngineError> {
    if let Some((node, ppm)) = r.pinch {
        set_pinch(&mut network, node, ppm).map_err(graph_err)?;
    }
    let token = Token::new("", r.decimals);
    let injections = parse_injections(&network, r.inject, &token, "--inject")?;
    let propagation = propagate_network(&network, &injections, r.max_hops, r.trace);
    let attribution = r.attribution.then(|| {
        attribute(&network, &injections, &PropagateOptions { max_hops: r.max_hops, ..Default::default() })
    });
    Ok(FlowRun { network, token, injections, propagation, attribution })
}

impl FlowRun {
    /// The serialisable report.
    pub fn report(&self) -> RunReport {
        let (net, p) = (&self.network, &self.propagation);
        let nodes = (0..net.nodes.len())
            .filter(|&v| p.received[v] > 0)
            .map(|v| NodeReport {
                node: net.nodes[v].id.clone(),
                received: p.received[v].to_string(),
                kept: p.kept[v].to_string(),
                passed: p.passed[v].to_string(),
                in_flight: p.in_flight[v].to_string(),
                share: p.kept[v] as f64 / p.injected.max(1) as f64,
            })
            .collect();
        let attribution = self.attribution.as_ref().map(|rows| {
            rows.iter()
                .zip(&self.injections)
                .map(|(r, (s, _))| {
                    let m = r
                        .iter()
                        .enumerate()
                        .filter(|(_, &k)| k > 0)
                        .map(|(v, k)| (net.nodes[v].id.clone(), k.to_string()))
                        .collect();
                    (net.nodes[*s as usize].id.clone(), m)
                })
                .collect()
        });
        RunReport { injected: p.injected.to_string(), hops: p.hops, converged: p.converged, nodes, attribution }
    }

    /// Every transfer as CSV (`hop,from,to,amount_base_units`); empty of rows unless run with a trace.
    pub fn trace_csv(&self) -> Result<Vec<u8>, EngineError> {
        let ids = |v: u32| self.network.nodes[v as usize].id.clone();
        let header = ["hop", "from", "to", "amount_base_units"].map(String::from);
        let rows =
            self.propagation.trace.iter().map(|t| [t.hop.to_string(), ids(t.from), ids(t.to), t.amount.to_string()]);
        csv_bytes(std::iter::once(header).chain(rows))
    }
}

/// Overrides of a model's `[simulation]` settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimOverrides {
    /// Monte Carlo runs.
    pub runs: Option<usize>,
    /// Timesteps.
    pub steps: Option<usize>,
    /// Seed.
    pub seed: Option<u64>,
}

/// A checked simulation: a network and its settings (cadCAD-style runs × steps, seeded, with a sweep).
#[derive(Clone, Debug)]
pub struct Simulation {
    /// The network.
    pub network: Network,
    /// The settings in force.
    pub spec: SimSpec,
}

/// A simulation's results, serialisable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// Runs per parameter set.
    pub runs: usize,
    /// Timesteps per run.
    pub steps: usize,
    /// Seed.
    pub seed: u64,
    /// One per parameter set of the sweep.
    pub results: Vec<SimResult>,
    /// Node ids, the order of every per-node vector.
    pub nodes: Vec<String>,
}

impl Simulation {
    /// Loads a TOML model (see [`load_network`]) and checks its `[simulation]` section with the overrides.
    pub fn load(path: &Path, o: &SimOverrides) -> Result<Simulation, EngineError> {
        Simulation::from_model(load_network(path, None, None)?, &path.display().to_string(), o)
    }

    /// Checks a model's simulation settings (named `name` in errors): at least one step and one run, and a
    /// pinch to vary when the sweep varies it.
    pub fn from_model(m: FlowModel, name: &str, o: &SimOverrides) -> Result<Simulation, EngineError> {
        let Some(mut spec) = m.simulation else {
            return Err(EngineError::Config(format!("{name}: no [simulation] section")));
        };
        spec.runs = o.runs.unwrap_or(spec.runs);
        spec.steps = o.steps.unwrap_or(spec.steps);
        spec.seed = o.seed.unwrap_or(spec.seed);
        if spec.steps == 0 || spec.runs == 0 {
            return Err(EngineError::Config("a simulation needs at least one step and one run".into()));
        }
        if !spec.pinch_sweep.is_empty() && m.network.pinch.is_none() {
            return Err(EngineError::Config(format!(
                "{name}: the sweep varies the pinch, but the model has no [pinch] section"
            )));
        }
        Ok(Simulation { network: m.network, spec })
    }

    /// Runs every parameter set (in parallel, seeded: the same numbers on any thread count).
    pub fn run(&self) -> Vec<SimResult> {
        allonet_flow::sim::simulate(&self.network, &self.spec)
    }

    /// The serialisable report of `results`.
    pub fn report(&self, results: Vec<SimResult>) -> SimReport {
        SimReport {
            runs: self.spec.runs,
            steps: self.spec.steps,
            seed: self.spec.seed,
            results,
            nodes: self.network.nodes.iter().map(|n| n.id.clone()).collect(),
        }
    }

    /// The means as CSV: `pinch_ppm,step,node,mean_kept,mean_received` (steps from 1, three decimals).
    pub fn means_csv(&self, results: &[SimResult]) -> Result<Vec<u8>, EngineError> {
        let header = ["pinch_ppm", "step", "node", "mean_kept", "mean_received"].map(String::from);
        let nodes = &self.network.nodes;
        let rows = results.iter().flat_map(|r| {
            r.mean_kept.iter().zip(&r.mean_received).enumerate().flat_map(move |(s, (k, rec))| {
                nodes.iter().enumerate().map(move |(v, node)| {
                    [
                        r.pinch_ppm.to_string(),
                        (s + 1).to_string(),
                        node.id.clone(),
                        format!("{:.3}", k[v]),
                        format!("{:.3}", rec[v]),
                    ]
                })
            })
        });
        csv_bytes(std::iter::once(header).chain(rows))
    }

    /// Every run's trajectory as CSV: `pinch_ppm,inject_scale,run,step,node,kept,received` (exact base
    /// units; each run as it contributes to the means). Refuses more than [`MAX_TRAJECTORY_ROWS`] rows.
    pub fn trajectories_csv(&self) -> Result<Vec<u8>, EngineError> {
        let sets = allonet_flow::sim::grid(&self.network, &self.spec);
        let (runs, steps) = (self.spec.runs, self.spec.steps);
        let cells = sets.len() * runs * steps * self.network.nodes.len();
        if cells > MAX_TRAJECTORY_ROWS {
            return Err(EngineError::Config(format!(
                "--rows would write {cells} rows; lower --runs or --steps (at most 20,000,000)"
            )));
        }
        let header = ["pinch_ppm", "inject_scale", "run", "step", "node", "kept", "received"].map(String::from);
        let rows = sets.iter().flat_map(|(nt, sp, ppm, scale)| {
            (0..runs as u64).flat_map(move |run| {
                let (kept, rec) = allonet_flow::sim::trajectory(nt, sp, run);
                (0..steps)
                    .flat_map(|step| (0..nt.nodes.len()).map(move |v| (step, v)))
                    .map(|(step, v)| {
                        let i = step * nt.nodes.len() + v;
                        [
                            ppm.to_string(),
                            scale.to_string(),
                            run.to_string(),
                            (step + 1).to_string(),
                            nt.nodes[v].id.clone(),
                            kept[i].to_string(),
                            rec[i].to_string(),
                        ]
                    })
                    .collect::<Vec<_>>()
            })
        });
        csv_bytes(std::iter::once(header).chain(rows))
    }
}

/// Pairwise judgements from a table: `a,b,c` (b is worth e^c times a; `log_ratio` for `c`), or Deep
/// Funding's jury form `repo_a,repo_b,choice,multiplier` (choice 2: b is worth `multiplier` times a; 1: a is).
pub fn pairs_from_table(t: &Table) -> Result<Vec<Pair>, InputError> {
    let mut out = Vec::with_capacity(t.len());
    if let (Some(ac), Some(bc), Some(cc)) =
        (t.find_column(&["a"]), t.find_column(&["b"]), t.find_column(&["c", "log_ratio"]))
    {
        for row in t.rows() {
            out.push(Pair { a: row.get(ac).to_string(), b: row.get(bc).to_string(), c: t.parse_f64(row, cc)? });
        }
        return Ok(out);
    }
    let ac = t.require_one_of(&["repo_a", "a"], "first item")?;
    let bc = t.require_one_of(&["repo_b", "b"], "second item")?;
    let ch = t.require_one_of(&["choice"], "choice")?;
    let mc = t.require_one_of(&["multiplier"], "multiplier")?;
    for row in t.rows() {
        let m = t.parse_f64(row, mc)?;
        if m <= 0.0 {
            return Err(t.error(row, mc, format!("multiplier {m} must be positive")));
        }
        let c = match row.get(ch) {
            "2" => m.ln(),
            "1" => -m.ln(),
            other => return Err(t.error(row, ch, format!("choice `{other}` must be 1 or 2"))),
        };
        out.push(Pair { a: row.get(ac).to_string(), b: row.get(bc).to_string(), c });
    }
    Ok(out)
}

/// Reads pairwise judgements from a CSV file (see [`pairs_from_table`]).
pub fn read_pairs(path: &Path) -> Result<Vec<Pair>, EngineError> {
    Ok(pairs_from_table(&Table::read(path)?)?)
}

/// A candidate weighting from a table: a node column (`node`, `repo`, `id`, `project` or `proposal`) and a
/// weight column (`weight`, `amount`, `score` or `value`).
pub fn weights_from_table(t: &Table) -> Result<BTreeMap<String, f64>, InputError> {
    let nc = t.require_one_of(&["node", "repo", "id", "project", "proposal"], "node")?;
    let wc = t.require_one_of(&["weight", "amount", "score", "value"], "weight")?;
    let mut m = BTreeMap::new();
    for row in t.rows() {
        m.insert(row.get(nc).to_string(), t.parse_f64(row, wc)?);
    }
    Ok(m)
}

/// Reads a candidate weighting from a CSV file (see [`weights_from_table`]).
pub fn read_weights(path: &Path) -> Result<BTreeMap<String, f64>, EngineError> {
    Ok(weights_from_table(&Table::read(path)?)?)
}

/// Fits node weights to pairwise judgements by least squares (Deep Funding; Laplacian system solved by CG).
pub fn fit_pairs(pairs: &[Pair]) -> Result<Fit, EngineError> {
    fit(pairs).map_err(EngineError::Config)
}

/// The fitted weights as CSV (`node,weight`, 17 decimals: the `f64` round-trips).
pub fn weights_csv(f: &Fit) -> Result<Vec<u8>, EngineError> {
    let header = ["node", "weight"].map(String::from);
    csv_bytes(std::iter::once(header).chain(f.weights.iter().map(|(k, v)| [k.clone(), format!("{v:.17}")])))
}

/// The best log-linear blend of the candidates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Blend {
    /// Weight λ of each candidate (in order).
    pub lambda: Vec<f64>,
    /// The blend's mean squared error.
    pub cost: f64,
}

/// Candidates scored against pairwise judgements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    /// Mean squared error of log ratios of each candidate (in order; lower is better).
    pub costs: Vec<f64>,
    /// Their best blend.
    pub blend: Blend,
}

/// Scores named candidate weightings (the error names the candidate that lacks an item or weighs it
/// non-positively) and finds their best blend.
pub fn score(pairs: &[Pair], candidates: &[(String, BTreeMap<String, f64>)]) -> Result<Scoring, EngineError> {
    let costs = candidates
        .iter()
        .map(|(name, c)| cost(pairs, c).map_err(|e| EngineError::Config(format!("{name}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let weights: Vec<BTreeMap<String, f64>> = candidates.iter().map(|(_, c)| c.clone()).collect();
    let (lambda, cost) = best_blend(pairs, &weights).map_err(EngineError::Config)?;
    Ok(Scoring { costs, blend: Blend { lambda, cost } })
}

/// What `flow tune` searches.
#[derive(Clone, Debug)]
pub struct TuneRequest<'a> {
    /// `NODE=AMOUNT` injections (whole tokens).
    pub inject: &'a [String],
    /// Token decimals.
    pub decimals: u8,
    /// The node the pinch pays.
    pub pinch_target: &'a str,
    /// Desired share (0..1) of the injected total that the target keeps.
    pub target_share: f64,
}

/// The pinch found by [`tune_pinch`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// Pinch share (ppm).
    pub ppm: u32,
    /// Share of the injected total the target keeps with it.
    pub share: f64,
    /// Propagations run.
    pub evaluations: usize,
}

/// Searches the pinch share that sends `target_share` of the injected total to the pinch's node: a grid
/// of 0..1,000,000 ppm in steps of 50,000, then bisection on the bracket around the best point (the target's
/// share grows with the pinch); returns the closest point evaluated.
pub fn tune_pinch(net: &Network, r: &TuneRequest<'_>) -> Result<Tuning, EngineError> {
    let want = r.target_share;
    if !(0.0..=1.0).contains(&want) {
        return Err(EngineError::Config(format!("target share {want} must be within 0..1")));
    }
    let inj = parse_injections(net, r.inject, &Token::new("", r.decimals), "--inject")?;
    let target = *net
        .index()
        .get(r.pinch_target)
        .ok_or_else(|| EngineError::Config(format!("`{}` is not a node", r.pinch_target)))?;
    let share = |ppm: u32| -> Result<f64, EngineError> {
        let mut net = net.clone();
        set_pinch(&mut net, r.pinch_target, ppm).map_err(graph_err)?;
        let p = propagate(&net, &inj, &PropagateOptions::default());
        Ok(p.kept[target as usize] as f64 / p.injected.max(1) as f64)
    };
    let grid: Vec<u32> = (0..=20).map(|i| i * 50_000).collect();
    let mut evals = Vec::new();
    for &g in &grid {
        evals.push((g, share(g)?));
    }
    let closest = |x: &(u32, f64), y: &(u32, f64)| (x.1 - want).abs().total_cmp(&(y.1 - want).abs());
    let best = evals.iter().min_by(|x, y| closest(*x, *y)).copied().expect("grid");
    let (mut lo, mut hi) = (best.0.saturating_sub(50_000), (best.0 + 50_000).min(1_000_000));
    let (mut s_lo, mut s_hi) = (share(lo)?, share(hi)?);
    let mut steps = 0;
    while hi - lo > 1 && s_lo <= want && want <= s_hi && steps < 40 {
        let mid = (lo + hi) / 2;
        let s = share(mid)?;
        if s < want {
            lo = mid;
            s_lo = s;
        } else {
            hi = mid;
            s_hi = s;
        }
        steps += 1;
    }
    let (ppm, share) = [(lo, s_lo), (hi, s_hi), best].into_iter().min_by(closest).expect("candidates");
    Ok(Tuning { ppm, share, evaluations: grid.len() + 2 + steps })
}
