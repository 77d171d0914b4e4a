//! `allonet flow …`: run, simulate, fit, score and tune allocation networks.

use crate::output::{group_thousands, right, table, write_atomic};
use allonet_core::Token;
use allonet_engine::flows::{self, FlowRun, RunRequest, SimOverrides, Simulation, TuneRequest};
use allonet_engine::EngineError;
use allonet_flow::graph::{Network, Rule};
use allonet_flow::model::FlowModel;
use allonet_flow::propagate::Propagation;
use anyhow::{bail, Context, Result};
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
        after_help = "Example:\n  allonet flow tune examples/deepfunding/repo_parent_weight_graph.csv --inject ethereum=1000000 --pinch-target ethereum/go-ethereum --target-share 0.05"
    )]
    Tune(TuneArgs),
}

/// An engine error, with a file that cannot be read worded as before (`cannot read FILE: cause`).
fn cannot_read(e: EngineError) -> anyhow::Error {
    match e {
        EngineError::Io { path, source } => anyhow::Error::new(source).context(format!("cannot read {path}")),
        e => e.into(),
    }
}

/// A network from a file: edge-list CSV, node-link JSON or TOML model.
fn load_network(path: &Path, source_col: Option<&str>, target_col: Option<&str>) -> Result<FlowModel> {
    flows::load_network(path, source_col, target_col).map_err(cannot_read)
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

fn rule_name(r: &Rule) -> String {
    match r {
        Rule::Keep => "sink".into(),
        Rule::Splits { receivers } => format!("splits ({})", receivers.len()),
        Rule::Weights { receivers } => format!("weights ({})", receivers.len()),
        Rule::Shares { mechanism, receivers } => format!("{mechanism} ({})", receivers.len()),
    }
}

pub fn print_propagation(net: &Network, p: &Propagation, token: &Token, top: usize) {
    let mut order: Vec<usize> = (0..net.nodes.len()).filter(|&v| p.received[v] > 0).collect();
    order.sort_by(|&a, &b| p.kept[b].cmp(&p.kept[a]).then(a.cmp(&b)));
    let f = |a: u128| group_thousands(&token.format(allonet_core::TokenAmount::from_base_units(a)));
    let mut t = table(&["node", "rule", "received", "kept", "passed on", "share of total"]);
    for &v in order.iter().take(top) {
        t.add_row(vec![
            crate::round::truncate(&net.nodes[v].id, 48),
            rule_name(&net.nodes[v].rule),
            f(p.received[v]),
            f(p.kept[v]),
            f(p.passed[v]),
            format!("{:.4}%", p.kept[v] as f64 / p.injected.max(1) as f64 * 100.0),
        ]);
    }
    right(&mut t, &[2, 3, 4, 5]);
    println!("{t}");
    if order.len() > top {
        println!("… {} more nodes received funds (--top N, --json for all)", order.len() - top);
    }
    let tot = flows::totals(p);
    println!(
        "{} nodes, {} edges · injected {} = kept {} + in flight {} ({}) · {} hops, {}",
        net.nodes.len(),
        net.edges(),
        f(tot.injected),
        f(tot.kept),
        f(tot.in_flight),
        if tot.conserved() { "every unit accounted for" } else { "CONSERVATION BROKEN" },
        p.hops,
        if p.converged { "converged" } else { "stopped at the hop limit" }
    );
}

pub fn run_run(a: &RunArgs) -> Result<()> {
    let m = load_network(&a.graph, a.source_col.as_deref(), a.target_col.as_deref())?;
    let pinch = match &a.pinch {
        Some(p) => {
            let (node, ppm) = p.rsplit_once('=').context("--pinch: expected NODE=PPM")?;
            Some((node, ppm.parse().with_context(|| format!("--pinch {p}: PPM must be a whole number"))?))
        }
        None => None,
    };
    let req = RunRequest {
        inject: &a.inject,
        pinch,
        decimals: a.decimals,
        max_hops: a.max_hops,
        trace: a.trace.is_some() || a.html.is_some(),
        attribution: a.attribution,
    };
    let r = flows::run(m.network, &req)?;
    let (net, p, token) = (&r.network, &r.propagation, &r.token);
    if let Some(path) = &a.trace {
        write_atomic(path, &r.trace_csv()?)?;
    }
    if let Some(path) = &a.html {
        write_atomic(path, sankey_html(&r).as_bytes())?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::to_value(r.report())?)?);
        return Ok(());
    }
    print_propagation(net, p, token, a.top);
    if let Some(rows) = &r.attribution {
        let f = |x: u128| group_thousands(&token.format(allonet_core::TokenAmount::from_base_units(x)));
        let mut header = vec!["node (who funded whom)".to_string()];
        header.extend(r.injections.iter().map(|(s, _)| format!("from {}", net.nodes[*s as usize].id)));
        let mut t = table(&header.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        let mut order: Vec<usize> = (0..net.nodes.len()).filter(|&v| p.kept[v] > 0).collect();
        order.sort_by(|&x, &y| p.kept[y].cmp(&p.kept[x]));
        for &v in order.iter().take(a.top) {
            let mut row = vec![net.nodes[v].id.clone()];
            row.extend(rows.iter().map(|r| f(r[v])));
            t.add_row(row);
        }
        println!("{t}");
    }
    Ok(())
}

/// A Sankey-style diagram: nodes in columns by hop distance from the injections, links as bands whose width
/// is the amount that moved along them (the largest links, up to 60).
fn sankey_html(r: &FlowRun) -> String {
    use crate::html::esc;
    use std::collections::{BTreeMap, BTreeSet};
    let (net, p, token) = (&r.network, &r.propagation, &r.token);
    let flows::Paths { mut links, depth } = flows::paths(p);
    links.truncate(60);
    let mut cols: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let shown: BTreeSet<u32> = links.iter().flat_map(|l| [l.from, l.to]).collect();
    for &v in &shown {
        cols.entry(depth.get(&v).copied().unwrap_or(0).min(6)).or_default().push(v);
    }
    let (w, col_w) = (1100.0, 1100.0 / (cols.len().max(1) as f64));
    let max_rows = cols.values().map(|c| c.len()).max().unwrap_or(1) as f64;
    let h = (max_rows * 26.0 + 40.0).max(200.0);
    let mut pos: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for (ci, (_, vs)) in cols.iter_mut().enumerate() {
        vs.sort_by(|a, b| p.received[*b as usize].cmp(&p.received[*a as usize]));
        for (ri, &v) in vs.iter().enumerate() {
            pos.insert(v, (20.0 + ci as f64 * col_w, 20.0 + ri as f64 * 26.0));
        }
    }
    let max_amt = links.first().map(|l| l.amount).unwrap_or(1) as f64;
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">");
    for &flows::Link { from: a, to: b, amount: amt } in &links {
        let (x1, y1) = pos[&a];
        let (x2, y2) = pos[&b];
        let sw = 1.0 + 14.0 * (amt as f64 / max_amt);
        let (sx, ex) = (x1 + 150.0, x2);
        svg.push_str(&format!(
            "<path d=\"M{sx:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {ex:.1},{:.1}\" stroke=\"#4f6bd8\" stroke-opacity=\"0.35\" stroke-width=\"{sw:.1}\" fill=\"none\"><title>{} → {}: {}</title></path>",
            y1 + 8.0, (sx + ex) / 2.0, y1 + 8.0, (sx + ex) / 2.0, y2 + 8.0, y2 + 8.0,
            esc(&net.nodes[a as usize].id), esc(&net.nodes[b as usize].id), esc(&token.format(allonet_core::TokenAmount::from_base_units(amt)))
        ));
    }
    for (&v, &(x, y)) in &pos {
        let label: String = net.nodes[v as usize].id.chars().take(24).collect();
        svg.push_str(&format!("<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"150\" height=\"16\" rx=\"3\" fill=\"#e8ecfb\" stroke=\"#4f6bd8\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>", x + 4.0, y + 12.0, esc(&label)));
    }
    svg.push_str("</svg>");
    let tot = flows::totals(p);
    let summary = vec![
        format!("{} nodes, {} edges · injected {} base units · {} hops", net.nodes.len(), net.edges(), p.injected, p.hops),
        format!("kept {} + in flight {}", tot.kept, tot.in_flight),
    ];
    let mut order: Vec<usize> = (0..net.nodes.len()).filter(|&v| p.received[v] > 0).collect();
    order.sort_by(|&a, &b| p.kept[b].cmp(&p.kept[a]));
    let rows: Vec<Vec<String>> = order
        .iter()
        .take(200)
        .map(|&v| {
            vec![net.nodes[v].id.clone(), p.received[v].to_string(), p.kept[v].to_string(), p.passed[v].to_string()]
        })
        .collect();
    let body = format!("<h2>Money's paths (largest 60 links, columns by hops from the injections)</h2>{svg}");
    crate::html::page("allonet flow", &summary, &body, &["node", "received", "kept", "passed on"], &rows)
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

pub fn run_simulate(a: &SimulateArgs) -> Result<()> {
    let m = load_network(&a.model, None, None)?;
    let o = SimOverrides { runs: a.runs, steps: a.steps, seed: a.seed };
    let sim = Simulation::from_model(m, &a.model.display().to_string(), &o)?;
    let (net, spec) = (&sim.network, &sim.spec);
    let progress = crate::output::Progress::new(!a.json);
    progress.stage(format!("simulating {} runs × {} steps × {} nodes", spec.runs, spec.steps, net.nodes.len()));
    let t0 = std::time::Instant::now();
    let results = sim.run();
    let secs = t0.elapsed().as_secs_f64();
    progress.finish();
    if let Some(p) = &a.csv {
        write_atomic(p, &sim.means_csv(&results)?)?;
    }
    if let Some(p) = &a.html {
        write_atomic(p, sim_html(net, &results, spec).as_bytes())?;
    }
    if let Some(p) = &a.rows {
        write_atomic(p, &sim.trajectories_csv()?)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::to_value(sim.report(results))?)?);
        return Ok(());
    }
    for r in &results {
        println!(
            "pinch {} ppm · mean injected per run {} · {} runs × {} steps",
            r.pinch_ppm,
            group_thousands(&format!("{:.0}", r.mean_injected)),
            spec.runs,
            spec.steps
        );
        let last = r.mean_kept.last().expect("steps > 0");
        let mut order: Vec<usize> = (0..net.nodes.len()).collect();
        order.sort_by(|&x, &y| last[y].total_cmp(&last[x]));
        let mut t = table(&["node", "mean kept (final)", "p10", "p50", "p90", "share"]);
        for &v in order.iter().take(15) {
            let q = r.final_kept_p10_p50_p90[v];
            t.add_row(vec![
                net.nodes[v].id.clone(),
                group_thousands(&format!("{:.0}", last[v])),
                group_thousands(&q[0].to_string()),
                group_thousands(&q[1].to_string()),
                group_thousands(&q[2].to_string()),
                format!("{:.2}%", last[v] / r.mean_injected.max(1.0) * 100.0),
            ]);
        }
        right(&mut t, &[1, 2, 3, 4, 5]);
        println!("{t}");
    }
    println!("simulated in {secs:.2} s (seed {}; the same seed gives the same numbers on any thread count)", spec.seed);
    Ok(())
}

fn sim_html(net: &Network, results: &[allonet_flow::sim::SimResult], spec: &allonet_flow::sim::SimSpec) -> String {
    use crate::html::esc;
    let mut charts = String::new();
    let colours = ["#4f6bd8", "#d84f6b", "#2f9e6e", "#d89a2f", "#7a4fd8", "#2fa4d8", "#8a8a8a", "#b84fd8"];
    for r in results {
        let last = r.mean_kept.last().cloned().unwrap_or_default();
        let mut order: Vec<usize> = (0..net.nodes.len()).collect();
        order.sort_by(|&x, &y| last[y].total_cmp(&last[x]));
        let top: Vec<usize> = order.into_iter().take(8).collect();
        let max = top.iter().map(|&v| last[v]).fold(1.0f64, f64::max);
        let (w, h) = (760.0, 260.0);
        let mut svg = format!("<h2>Mean kept over time · pinch {} ppm · injection ×{}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\"><rect x=\"40\" y=\"10\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#ccd\"/>", r.pinch_ppm, r.inject_scale, w + 260.0, h + 40.0);
        for (ci, &v) in top.iter().enumerate() {
            let pts: Vec<String> = r
                .mean_kept
                .iter()
                .enumerate()
                .map(|(s, k)| {
                    format!("{:.1},{:.1}", 40.0 + w * (s as f64 + 1.0) / spec.steps as f64, 10.0 + h - h * k[v] / max)
                })
                .collect();
            let c = colours[ci % colours.len()];
            svg.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
                pts.join(" ")
            ));
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{}</text>",
                w + 50.0,
                24.0 + ci as f64 * 16.0,
                esc(&net.nodes[v].id)
            ));
        }
        svg.push_str(&format!("<text x=\"40\" y=\"{}\">step 1 … {}</text></svg>", h + 30.0, spec.steps));
        charts.push_str(&svg);
    }
    let summary =
        vec![format!("{} runs × {} steps × {} nodes · seed {}", spec.runs, spec.steps, net.nodes.len(), spec.seed)];
    crate::html::page("allonet flow simulate", &summary, &charts, &[], &[])
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

pub fn run_fit(a: &FitArgs) -> Result<()> {
    let pairs = flows::read_pairs(&a.pairs)?;
    let f = flows::fit_pairs(&pairs)?;
    if let Some(p) = &a.out {
        write_atomic(p, &flows::weights_csv(&f)?)?;
    }
    if let Some(p) = &a.html {
        let mut v: Vec<(&String, &f64)> = f.weights.iter().collect();
        v.sort_by(|x, y| y.1.total_cmp(x.1));
        let bars: Vec<crate::html::Bar> = v
            .iter()
            .take(60)
            .map(|(k, w)| crate::html::Bar { label: k.to_string(), value: **w, text: format!("{w:.4}") })
            .collect();
        let rows: Vec<Vec<String>> = v.iter().map(|(k, w)| vec![k.to_string(), format!("{w:.8}")]).collect();
        let summary =
            vec![format!("{} pairs · {} nodes · mean squared error {:.6}", pairs.len(), f.weights.len(), f.cost)];
        write_atomic(
            p,
            crate::html::report("allonet flow fit", &summary, "Fitted weights", &bars, &["node", "weight"], &rows)
                .as_bytes(),
        )?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&f)?);
        return Ok(());
    }
    let mut v: Vec<(&String, &f64)> = f.weights.iter().collect();
    v.sort_by(|x, y| y.1.total_cmp(x.1));
    let mut t = table(&["node", "weight"]);
    for (k, w) in v.iter().take(a.top) {
        t.add_row(vec![k.to_string(), format!("{w:.6}")]);
    }
    right(&mut t, &[1]);
    println!("{t}");
    println!(
        "{} pairs, {} nodes · mean squared error of log ratios {:.6} · {} CG iterations",
        pairs.len(),
        f.weights.len(),
        f.cost,
        f.iterations
    );
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

pub fn run_score(a: &ScoreArgs) -> Result<()> {
    let pairs = flows::read_pairs(&a.pairs)?;
    let cands = a
        .weights
        .iter()
        .map(|p| Ok((p.display().to_string(), flows::read_weights(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let sc = flows::score(&pairs, &cands)?;
    let (costs, blend) = (&sc.costs, (&sc.blend.lambda, sc.blend.cost));
    if let Some(p) = &a.html {
        let mut bars: Vec<crate::html::Bar> = a
            .weights
            .iter()
            .zip(costs)
            .map(|(w, c)| crate::html::Bar { label: w.display().to_string(), value: *c, text: format!("{c:.6}") })
            .collect();
        bars.push(crate::html::Bar { label: "best blend".into(), value: blend.1, text: format!("{:.6}", blend.1) });
        let rows: Vec<Vec<String>> = a
            .weights
            .iter()
            .zip(costs)
            .zip(blend.0)
            .map(|((w, c), l)| vec![w.display().to_string(), format!("{c:.8}"), format!("{l:.6}")])
            .collect();
        let summary = vec![format!("{} pairs · {} candidates", pairs.len(), cands.len())];
        write_atomic(
            p,
            crate::html::report(
                "allonet flow score",
                &summary,
                "Mean squared error of log ratios (lower is better)",
                &bars,
                &["candidate", "error", "blend λ"],
                &rows,
            )
            .as_bytes(),
        )?;
    }
    if a.json {
        println!("{}", serde_json::to_value(&sc)?);
        return Ok(());
    }
    let mut t = table(&["candidate", "mean squared error", "blend weight λ"]);
    for ((p, c), l) in a.weights.iter().zip(costs).zip(blend.0) {
        t.add_row(vec![p.display().to_string(), format!("{c:.6}"), format!("{l:.4}")]);
    }
    right(&mut t, &[1, 2]);
    println!("{t}");
    println!("best log-linear blend: mean squared error {:.6} on {} pairs", blend.1, pairs.len());
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

pub fn run_tune(a: &TuneArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&a.target_share) {
        bail!("--target-share must be within 0..1");
    }
    let m = load_network(&a.graph, None, None)?;
    let req = TuneRequest {
        inject: &a.inject,
        decimals: a.decimals,
        pinch_target: &a.pinch_target,
        target_share: a.target_share,
    };
    let t = flows::tune_pinch(&m.network, &req)?;
    println!(
        "pinch {} ppm ({:.4}%) gives `{}` {:.4}% of the injected total (target {:.4}%; {} evaluations)",
        t.ppm,
        t.ppm as f64 / 1e4,
        a.pinch_target,
        t.share * 100.0,
        a.target_share * 100.0,
        t.evaluations
    );
    Ok(())
}
