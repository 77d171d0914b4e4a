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
use std::path::{Path, PathBuf};

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
    let io = |e| EngineError::Io { path: name.clone(), cause: e };
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

/// Parses an upstream pinch `NODE=PPM` (PPM out of 1,000,000); errors quote it as `--pinch`.
pub fn parse_pinch(p: &str) -> Result<(&str, u32), EngineError> {
    let (node, ppm) = p.rsplit_once('=').ok_or_else(|| EngineError::Config("--pinch: expected NODE=PPM".into()))?;
    let ppm = ppm.parse().map_err(|e| EngineError::Config(format!("--pinch {p}: PPM must be a whole number: {e}")))?;
    Ok((node, ppm))
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
    let attribution = r
        .attribution
        .then(|| attribute(&network, &injections, &PropagateOptions { max_hops: r.max_hops, ..Default::default() }));
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

    /// Checks, before anything runs, that [`Simulation::trajectories_csv`] would write at most
    /// [`MAX_TRAJECTORY_ROWS`] rows (parameter sets × runs × steps × nodes).
    pub fn check_trajectory_rows(&self) -> Result<(), EngineError> {
        let sets = allonet_flow::sim::grid(&self.network, &self.spec).len();
        let cells = sets.saturating_mul(self.spec.runs).saturating_mul(self.spec.steps);
        let cells = cells.saturating_mul(self.network.nodes.len());
        if cells > MAX_TRAJECTORY_ROWS {
            return Err(EngineError::Config(format!(
                "--rows would write {cells} rows; lower --runs or --steps (at most 20,000,000)"
            )));
        }
        Ok(())
    }

    /// Every run's trajectory as CSV: `pinch_ppm,inject_scale,run,step,node,kept,received` (exact base
    /// units; each run as it contributes to the means). Refuses more than [`MAX_TRAJECTORY_ROWS`] rows.
    pub fn trajectories_csv(&self) -> Result<Vec<u8>, EngineError> {
        self.check_trajectory_rows()?;
        let sets = allonet_flow::sim::grid(&self.network, &self.spec);
        let (runs, steps) = (self.spec.runs, self.spec.steps);
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

/// A candidate weighting to score: its name and its weight by node.
pub type Candidate = (String, BTreeMap<String, f64>);

/// Reads candidate weightings (see [`read_weights`]), each named by its path as displayed.
pub fn read_candidates(paths: &[PathBuf]) -> Result<Vec<Candidate>, EngineError> {
    paths.iter().map(|p| Ok((p.display().to_string(), read_weights(p)?))).collect()
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
pub fn score(pairs: &[Pair], candidates: &[Candidate]) -> Result<Scoring, EngineError> {
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

impl TuneRequest<'_> {
    /// Checks what needs no network (before one is read): the target share is within 0..1.
    pub fn check(&self) -> Result<(), EngineError> {
        if !(0.0..=1.0).contains(&self.target_share) {
            return Err(EngineError::Config("--target-share must be within 0..1".into()));
        }
        Ok(())
    }
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
    r.check()?;
    let want = r.target_share;
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
    let best = evals.iter().min_by(|x, y| closest(x, y)).copied().expect("grid");
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory.
    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("allonet-engine-flows-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A cyclic network: s splits to a and b, which pass half on to each other and a share to c.
    const CYCLIC: &str = "source,target,weight\ns,a,0.6\ns,b,0.3\na,b,0.5\na,c,0.25\nb,a,0.5\nb,c,0.125\n";

    fn cyclic() -> Network {
        from_edge_table(&Table::from_bytes("g.csv", CYCLIC.as_bytes()).unwrap(), None, None).unwrap()
    }

    fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_accounts_for_every_unit_on_a_cyclic_network() {
        let inject = strings(&["s=1000000.000001", "a=7", "b=0.5"]);
        for (max_hops, trace) in [(10_000, false), (10_000, true), (3, false), (3, true)] {
            let r = RunRequest {
                inject: &inject,
                decimals: 6,
                max_hops,
                trace,
                attribution: true,
                pinch: Some(("c", 20_000)),
            };
            let run = run(cyclic(), &r).unwrap();
            let p = &run.propagation;
            assert_eq!(p.injected, 1_000_000_000_001 + 7_000_000 + 500_000);
            let t = totals(p);
            assert!(t.conserved(), "{t:?}");
            assert_eq!(p.accounted(), p.injected);
            // the report carries the same amounts, exactly
            let rep = run.report();
            let kept: u128 = rep.nodes.iter().map(|n| n.kept.parse::<u128>().unwrap()).sum();
            let flight: u128 = rep.nodes.iter().map(|n| n.in_flight.parse::<u128>().unwrap()).sum();
            assert_eq!(kept + flight, p.injected);
            assert_eq!(rep.injected, p.injected.to_string());
            if max_hops == 3 {
                assert!(!p.converged && flight > 0, "the hop limit leaves money in flight");
            }
            if trace {
                // what the trace moved out of each node is what it passed on
                let mut out = vec![0u128; run.network.nodes.len()];
                for l in &p.trace {
                    out[l.from as usize] += l.amount;
                }
                assert_eq!(out, p.passed);
                let csv = String::from_utf8(run.trace_csv().unwrap()).unwrap();
                assert_eq!(csv.lines().count(), p.trace.len() + 1);
            }
        }
    }

    #[test]
    fn the_fast_path_and_the_traced_path_agree() {
        let net = cyclic();
        let inj = vec![(0, 999_999_937u128), (2, 12_345)];
        let fast = propagate_network(&net, &inj, 10_000, false);
        let mut slow = propagate_network(&net, &inj, 10_000, true);
        assert!(!slow.trace.is_empty());
        slow.trace.clear();
        assert_eq!(fast, slow);
        // links over all hops: Σ out of the injection nodes' links never exceeds what they passed on
        let traced = propagate_network(&net, &inj, 10_000, true);
        let paths = paths(&traced);
        assert!(paths.links.windows(2).all(|w| w[0].amount >= w[1].amount));
        assert_eq!(paths.depth.get(&0), Some(&0));
    }

    #[test]
    fn bad_inputs_are_refused_with_their_location() {
        let d = tmpdir("bad");
        // a jury file with a choice that is neither 1 nor 2, on line 3
        let p = write(&d, "jury.csv", "repo_a,repo_b,choice,multiplier\na,b,2,3\nb,c,3,2\n");
        match read_pairs(&p) {
            Err(EngineError::Input(e)) => {
                assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("choice")), "{e}");
                assert!(e.file.ends_with("jury.csv") && e.message.contains("must be 1 or 2"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // a negative multiplier
        let t = Table::from_bytes("j.csv", b"repo_a,repo_b,choice,multiplier\na,b,2,-1\n").unwrap();
        let e = pairs_from_table(&t).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(2), Some("multiplier")));
        // a weight that is not a number
        let t = Table::from_bytes("w.csv", b"node,weight\na,1\nb,x\n").unwrap();
        assert_eq!(weights_from_table(&t).unwrap_err().line, Some(3));
        // an edge list with a negative weight
        let g = write(&d, "neg.csv", "source,target,weight\ns,a,1\na,b,-0.5\n");
        match load_network(&g, None, None) {
            Err(EngineError::Input(e)) => assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("weight")), "{e}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted a negative weight"),
        }
        // a TOML model with a syntax error on line 3
        let m = write(&d, "m.toml", "[[node]]\nid = \"a\"\nrule = = \"splits\"\n");
        match load_network(&m, None, None) {
            Err(EngineError::Input(e)) => {
                assert_eq!((e.file.as_str(), e.line), (m.display().to_string().as_str(), Some(3)))
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted a broken model"),
        }
        // a file that is not there names itself
        let missing = d.join("missing.toml");
        match load_network(&missing, None, None) {
            Err(EngineError::Io { path, .. }) => assert_eq!(path, missing.display().to_string()),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("read a missing file"),
        }
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn injections_name_the_item_that_is_wrong() {
        let net = cyclic();
        let token = Token::new("", 2);
        let ok = parse_injections(&net, &strings(&["s=1.25", "a=3"]), &token, "--inject").unwrap();
        assert_eq!(ok, vec![(0, 125), (1, 300)]);
        for (item, says) in [
            ("nobody=5", "--inject `nobody=5`: `nobody` is not a node of the network"),
            ("s5", "--inject `s5`: expected NODE=AMOUNT"),
            ("s=1.234", "--inject `s=1.234`: amount `1.234` has more than 2 decimal places"),
            ("s=-1", "--inject `s=-1`: amount `-1` is negative"),
        ] {
            let e = parse_injections(&net, &strings(&[item]), &token, "--inject").unwrap_err().to_string();
            assert!(e.starts_with(says), "{e}");
        }
        let r =
            RunRequest { inject: &strings(&["s=5"]), pinch: Some(("nobody", 5)), max_hops: 10, ..Default::default() };
        assert!(run(cyclic(), &r).unwrap_err().to_string().contains("pinch target `nobody` is not a node"));
    }

    #[test]
    fn fit_and_score_recover_known_weights() {
        let truth = [("a", 0.5f64), ("b", 0.3), ("c", 0.2)];
        let mut pairs = Vec::new();
        for (x, wx) in truth {
            for (y, wy) in truth {
                if x != y {
                    pairs.push(Pair { a: x.into(), b: y.into(), c: (wy / wx).ln() });
                }
            }
        }
        let f = fit_pairs(&pairs).unwrap();
        for (k, w) in truth {
            assert!((f.weights[k] - w).abs() < 1e-9, "{k}: {}", f.weights[k]);
        }
        let csv = String::from_utf8(weights_csv(&f).unwrap()).unwrap();
        let back = weights_from_table(&Table::from_bytes("w.csv", csv.as_bytes()).unwrap()).unwrap();
        assert_eq!(back, f.weights, "17 decimals round-trip");
        let flat: BTreeMap<String, f64> = truth.iter().map(|(k, _)| (k.to_string(), 1.0)).collect();
        let s = score(&pairs, &[("fitted".into(), f.weights.clone()), ("flat".into(), flat)]).unwrap();
        assert!(s.costs[0] < 1e-12 && s.costs[1] > 0.01, "{s:?}");
        assert!(s.blend.cost <= s.costs[0] + 1e-12);
        let short: BTreeMap<String, f64> = [("a".to_string(), 1.0)].into();
        let e = score(&pairs, &[("short.csv".into(), short)]).unwrap_err().to_string();
        assert!(e.starts_with("short.csv: "), "{e}");
    }

    #[test]
    fn tune_finds_the_pinch_that_gives_the_target_its_share() {
        // everything s receives goes on to a (a sink); the pinch to t comes off first
        let d = tmpdir("tune");
        let net =
            load_network(&write(&d, "g.csv", "source,target,weight\ns,a,1\nu,t,1\n"), None, None).unwrap().network;
        let inject = strings(&["s=1000000"]);
        let r = TuneRequest { inject: &inject, decimals: 0, pinch_target: "t", target_share: 0.123456 };
        let t = tune_pinch(&net, &r).unwrap();
        assert_eq!(t.ppm, 123_456, "{t:?}");
        assert!((t.share - 0.123456).abs() < 1e-12);
        let bad = TuneRequest { target_share: 1.5, ..r.clone() };
        assert!(matches!(tune_pinch(&net, &bad), Err(EngineError::Config(_))));
        let nobody = TuneRequest { pinch_target: "nobody", ..r };
        assert_eq!(tune_pinch(&net, &nobody).unwrap_err().to_string(), "`nobody` is not a node");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn simulations_are_checked_and_their_rows_agree_with_the_means() {
        let d = tmpdir("sim");
        let model = "[[node]]\nid = \"dao\"\nrule = \"splits\"\nreceivers = { x = 600000, y = 300000 }\n\n\
                     [[node]]\nid = \"x\"\nrule = \"splits\"\nreceivers = { y = 500000 }\n\n[[node]]\nid = \"y\"\n\n\
                     [pinch]\ntarget = \"y\"\nppm = 10000\n\n\
                     [simulation]\nsteps = 3\nruns = 4\nseed = 7\n\
                     inject = [{ node = \"dao\", median = 1000, sigma = 0.5 }]\nsweep = { pinch_ppm = [0, 50000] }\n";
        let path = write(&d, "m.toml", model);
        let sim = Simulation::load(&path, &SimOverrides::default()).unwrap();
        let results = sim.run();
        assert_eq!(results.len(), 2, "two pinch settings");
        // the per-run rows sum to the means
        let rows = String::from_utf8(sim.trajectories_csv().unwrap()).unwrap();
        assert_eq!(rows.lines().count(), 1 + 2 * 4 * 3 * 3);
        let sum: u128 = rows
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[0] == "50000" && f[3] == "3" && f[4] == "y")
            .map(|f| f[5].parse::<u128>().unwrap())
            .sum();
        assert!((results[1].mean_kept[2][2] - sum as f64 / 4.0).abs() < 1e-9);
        assert_eq!(sim.means_csv(&results).unwrap().iter().filter(|&&b| b == b'\n').count(), 1 + 2 * 3 * 3);
        assert_eq!(sim.report(results).nodes, strings(&["dao", "x", "y"]));

        let none = SimOverrides { runs: Some(0), ..Default::default() };
        assert!(matches!(Simulation::load(&path, &none), Err(EngineError::Config(_))));
        let huge = SimOverrides { runs: Some(1_000_000), steps: Some(100), seed: None };
        let e = Simulation::load(&path, &huge).unwrap().trajectories_csv().unwrap_err().to_string();
        assert!(e.contains("600000000 rows"), "{e}");
        let no_sim = write(&d, "plain.toml", "[[node]]\nid = \"a\"\n");
        let e = Simulation::load(&no_sim, &SimOverrides::default()).unwrap_err().to_string();
        assert!(e.ends_with("no [simulation] section"), "{e}");
        std::fs::remove_dir_all(&d).ok();
    }
}
