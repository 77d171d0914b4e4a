//! `allonet flow …`: allocation networks, computed by `allonet_engine::flows`, shown by `allonet_report::flow`.

use crate::output::{write_atomic, Progress};
use allonet_engine::flows::{self, RunRequest, SimOverrides, Simulation, TuneRequest};
use allonet_engine::EngineError;
use allonet_report::flow as report;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum FlowCommand {
    /// Inject funds and propagate them through a network to a fixed point (exact, conserving every unit).
    #[command(
        after_help = "Examples:\n  allonet flow run examples/deepfunding/repo_parent_weight_graph.csv --inject ethereum=1000000\n  allonet flow run examples/flow/regrants.toml --inject dao=250000 --decimals 6 --html flow.html\n  allonet flow run graph.csv --inject a=100 --inject b=50 --attribution --json"
    )]
    Run(RunArgs),
    /// Simulate a TOML model over time: Monte Carlo runs and a pinch sweep (cadCAD-style).
    #[command(
        after_help = "Example:\n  allonet flow simulate examples/flow/regrants.toml --runs 1000 --html sim.html"
    )]
    Simulate(SimulateArgs),
    /// Fit node weights to pairwise judgements (b is worth e^c times a) by least squares.
    #[command(after_help = "Example:\n  allonet flow fit --pairs pairs.csv -o weights.csv")]
    Fit(FitArgs),
    /// Score candidate weightings against pairwise judgements, and find their best blend.
    #[command(
        after_help = "Example:\n  allonet flow score --pairs pairs.csv --weights model-a.csv --weights model-b.csv"
    )]
    Score(ScoreArgs),
    /// Search the pinch share that sends a target share of the injected funds to the pinch's node.
    #[command(
        after_help = "Example:\n  allonet flow tune examples/deepfunding/repo_parent_weight_graph.csv --inject ethereum=1000000 --pinch-target https://github.com/hyperledger/besu --target-share 0.05"
    )]
    Tune(TuneArgs),
}

/// A network from a file (edge-list CSV, node-link JSON or TOML model); `cannot read FILE: cause` if it cannot be.
fn load_network(path: &Path, source: Option<&str>, target: Option<&str>) -> Result<allonet_flow::model::FlowModel> {
    flows::load_network(path, source, target).map_err(|e| match e {
        EngineError::Io { path, cause } => anyhow::Error::new(cause).context(format!("cannot read {path}")),
        e => e.into(),
    })
}

/// A file's contents, made only if the file is asked for.
type Contents<'a> = &'a dyn Fn() -> Result<Vec<u8>, EngineError>;

/// Makes the contents of every file asked for, then writes them: nothing is written unless all were made.
fn write_files(files: &[(&Option<PathBuf>, Contents<'_>)]) -> Result<()> {
    let made = files.iter().filter_map(|(p, make)| p.as_ref().map(|p| Ok((p, make()?))));
    made.collect::<Result<Vec<_>>>()?.into_iter().try_for_each(|(p, bytes)| write_atomic(p, &bytes))
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Network: edge-list CSV (Deep Funding `repo,parent,weight`, or `source,target[,weight]`), node-link JSON, or TOML model.
    pub graph: PathBuf,
    /// Inject AMOUNT (whole tokens) at NODE; repeat for several.
    #[arg(long, value_name = "NODE=AMOUNT", required = true)]
    pub inject: Vec<String>,
    /// Upstream pinch: every node that passes money on sends PPM (out of 1,000,000) to NODE first.
    #[arg(long, value_name = "NODE=PPM")]
    pub pinch: Option<String>,
    /// Token decimals (amounts are exact base units).
    #[arg(long, default_value_t = 0)]
    pub decimals: u8,
    /// Stop after this many hops.
    #[arg(long, default_value_t = 10_000)]
    pub max_hops: usize,
    /// Per-source attribution: who funded whom.
    #[arg(long)]
    pub attribution: bool,
    /// Write every transfer (hop, from, to, amount) to a CSV.
    #[arg(long, value_name = "CSV")]
    pub trace: Option<PathBuf>,
    /// Source column of an edge-list CSV.
    #[arg(long)]
    pub source_col: Option<String>,
    /// Target column of an edge-list CSV.
    #[arg(long)]
    pub target_col: Option<String>,
    /// Rows in the table.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// HTML report with a Sankey-style diagram of the money's paths.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `allonet flow run`: propagate, write the trace and the diagram, print the table (or JSON).
pub fn run_run(a: &RunArgs) -> Result<()> {
    let m = load_network(&a.graph, a.source_col.as_deref(), a.target_col.as_deref())?;
    let pinch = a.pinch.as_deref().map(flows::parse_pinch).transpose()?;
    let (trace, attribution) = (a.trace.is_some() || a.html.is_some(), a.attribution);
    let req = RunRequest { inject: &a.inject, pinch, decimals: a.decimals, max_hops: a.max_hops, trace, attribution };
    let r = flows::run(m.network, &req)?;
    write_files(&[(&a.trace, &|| r.trace_csv()), (&a.html, &|| Ok(report::run_html(&r).into_bytes()))])?;
    println!("{}", if a.json { report::run_json(&r)? } else { report::run(&r, a.top) });
    Ok(())
}

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// TOML model with a [simulation] section.
    pub model: PathBuf,
    /// Override the number of Monte Carlo runs.
    #[arg(long)]
    pub runs: Option<usize>,
    /// Override the number of timesteps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Override the seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the table (param, step, node, mean kept, mean received) to a CSV.
    #[arg(long, value_name = "CSV")]
    pub csv: Option<PathBuf>,
    /// Write every run's trajectory (pinch, scale, run, step, node, kept, received) to a CSV.
    #[arg(long, value_name = "CSV")]
    pub rows: Option<PathBuf>,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// HTML report with kept-over-time charts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `allonet flow simulate`: check the settings (and the --rows limit), simulate, write the files, print.
pub fn run_simulate(a: &SimulateArgs) -> Result<()> {
    let o = SimOverrides { runs: a.runs, steps: a.steps, seed: a.seed };
    let sim = Simulation::from_model(load_network(&a.model, None, None)?, &a.model.display().to_string(), &o)?;
    a.rows.as_ref().map(|_| sim.check_trajectory_rows()).transpose()?;
    let (progress, spec, t0) = (Progress::new(!a.json), &sim.spec, std::time::Instant::now());
    progress.stage(format!("simulating {} runs × {} steps × {} nodes", spec.runs, spec.steps, sim.network.nodes.len()));
    let (res, secs) = (sim.run(), t0.elapsed().as_secs_f64());
    progress.finish();
    write_files(&[
        (&a.csv, &|| sim.means_csv(&res)),
        (&a.html, &|| Ok(report::simulation_html(&sim, &res).into_bytes())),
        (&a.rows, &|| sim.trajectories_csv()),
    ])?;
    println!("{}", if a.json { report::simulation_json(&sim, res)? } else { report::simulation(&sim, &res, secs) });
    Ok(())
}

#[derive(clap::Args)]
pub struct FitArgs {
    /// Pairs CSV: `a,b,c` (b is worth e^c times a), or Deep Funding jury form `repo_a,repo_b,choice,multiplier`.
    #[arg(long)]
    pub pairs: PathBuf,
    /// Write the weights (node, weight) to a CSV.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Rows in the table.
    #[arg(long, default_value_t = 25)]
    pub top: usize,
    /// HTML report with a bar chart of the weights.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `allonet flow fit`: fit the weights, write them (and the chart), print the table (or JSON).
pub fn run_fit(a: &FitArgs) -> Result<()> {
    let pairs = flows::read_pairs(&a.pairs)?;
    let (f, n) = (flows::fit_pairs(&pairs)?, pairs.len());
    write_files(&[(&a.out, &|| flows::weights_csv(&f)), (&a.html, &|| Ok(report::fit_html(&f, n).into_bytes()))])?;
    println!("{}", if a.json { report::fit_json(&f)? } else { report::fit(&f, n, a.top) });
    Ok(())
}

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// Pairs CSV (see `flow fit`).
    #[arg(long)]
    pub pairs: PathBuf,
    /// Candidate weightings, CSV with node and weight columns; repeat for several.
    #[arg(long = "weights", required = true)]
    pub weights: Vec<PathBuf>,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// HTML report with a bar chart of the candidates' errors.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `allonet flow score`: score each candidate and their blend, write the chart, print the table (or JSON).
pub fn run_score(a: &ScoreArgs) -> Result<()> {
    let (pairs, cands) = (flows::read_pairs(&a.pairs)?, flows::read_candidates(&a.weights)?);
    let sc = flows::score(&pairs, &cands)?;
    write_files(&[(&a.html, &|| Ok(report::scoring_html(&cands, &sc, pairs.len()).into_bytes()))])?;
    println!("{}", if a.json { report::scoring_json(&sc)? } else { report::scoring(&cands, &sc, pairs.len()) });
    Ok(())
}

#[derive(clap::Args)]
pub struct TuneArgs {
    /// Network file (CSV, JSON or TOML).
    pub graph: PathBuf,
    /// Injections NODE=AMOUNT.
    #[arg(long, value_name = "NODE=AMOUNT", required = true)]
    pub inject: Vec<String>,
    /// The node the pinch pays.
    #[arg(long)]
    pub pinch_target: String,
    /// Desired share of the injected total that the pinch target keeps (0..1).
    #[arg(long)]
    pub target_share: f64,
    /// Token decimals.
    #[arg(long, default_value_t = 0)]
    pub decimals: u8,
}

/// `allonet flow tune`: search the pinch share and print it.
pub fn run_tune(a: &TuneArgs) -> Result<()> {
    let (inject, pinch_target, target_share) = (&a.inject, &a.pinch_target, a.target_share);
    let req = TuneRequest { inject, decimals: a.decimals, pinch_target, target_share };
    req.check()?;
    let t = flows::tune_pinch(&load_network(&a.graph, None, None)?.network, &req)?;
    println!("{}", report::tuning(&t, &a.pinch_target, a.target_share));
    Ok(())
}
