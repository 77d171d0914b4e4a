//! `allonet flow …`: run, simulate, fit, score and tune allocation networks.

use crate::output::{group_thousands, right, table, write_atomic};
use allonet_core::{InputError, Table, Token};
use allonet_flow::fit::{best_blend, cost, fit, Pair};
use allonet_flow::graph::{from_edge_table, from_node_link, set_pinch, Network, Rule};
use allonet_flow::model::FlowModel;
use allonet_flow::propagate::{attribute, propagate, PropagateOptions, Propagation};
use allonet_flow::sim::simulate;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
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

/// A network from a file: edge-list CSV, node-link JSON or TOML model.
pub fn load_network(path: &Path, source_col: Option<&str>, target_col: Option<&str>) -> Result<FlowModel> {
    let name = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    Ok(match ext.as_str() {
        "toml" => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
            let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            let b2 = base.clone();
            let read = move |p: &str| -> Result<Table, InputError> { Table::read(&base.join(p)) };
            let read_bytes = move |p: &str| -> Result<Vec<u8>, InputError> {
                std::fs::read(b2.join(p)).map_err(|e| InputError::file(p, format!("cannot read: {e}")))
            };
            allonet_flow::model::parse_model_with(&name, &text, &read, &read_bytes)?
        }
        "json" => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
            FlowModel { network: from_node_link(&name, &bytes)?, simulation: None }
        }
        _ => FlowModel { network: from_edge_table(&Table::read(path)?, source_col, target_col)?, simulation: None },
    })
}

fn parse_assignments(net: &Network, items: &[String], token: &Token, what: &str) -> Result<Vec<(u32, u128)>> {
    let idx = net.index();
    items
        .iter()
        .map(|s| {
            let (node, amount) = s.rsplit_once('=').with_context(|| format!("{what} `{s}`: expected NODE=AMOUNT"))?;
            let &v = idx.get(node).with_context(|| format!("{what} `{s}`: `{node}` is not a node of the network"))?;
            let a = token.parse(amount).with_context(|| format!("{what} `{s}`"))?;
            Ok((v, a.units().to::<u128>()))
        })
        .collect()
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

pub fn run_flow(net: &Network, inj: &[(u32, u128)], max_hops: usize, trace: bool) -> Propagation {
    if !trace {
        if let Some(p) = allonet_flow::propagate::propagate_fast(net, inj, max_hops, 0) {
            return p;
        }
    }
    propagate(net, inj, &PropagateOptions { max_hops, trace, ..Default::default() })
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
    let kept: u128 = p.kept.iter().sum();
    let flight: u128 = p.in_flight.iter().sum();
    println!(
        "{} nodes, {} edges · injected {} = kept {} + in flight {} ({}) · {} hops, {}",
        net.nodes.len(),
        net.edges(),
        f(p.injected),
        f(kept),
        f(flight),
        if kept + flight == p.injected { "every unit accounted for" } else { "CONSERVATION BROKEN" },
        p.hops,
        if p.converged { "converged" } else { "stopped at the hop limit" }
    );
}

pub fn run_run(a: &RunArgs) -> Result<()> {
    let mut m = load_network(&a.graph, a.source_col.as_deref(), a.target_col.as_deref())?;
    if let Some(p) = &a.pinch {
        let (node, ppm) = p.rsplit_once('=').context("--pinch: expected NODE=PPM")?;
        let ppm: u32 = ppm.parse().with_context(|| format!("--pinch {p}: PPM must be a whole number"))?;
        set_pinch(&mut m.network, node, ppm)?;
    }
    let net = &m.network;
    let token = Token::new("", a.decimals);
    let inj = parse_assignments(net, &a.inject, &token, "--inject")?;
    let p = run_flow(net, &inj, a.max_hops, a.trace.is_some() || a.html.is_some());
    let attribution =
        a.attribution.then(|| attribute(net, &inj, &PropagateOptions { max_hops: a.max_hops, ..Default::default() }));
    if let Some(path) = &a.trace {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["hop", "from", "to", "amount_base_units"])?;
        for t in &p.trace {
            w.write_record([
                t.hop.to_string(),
                net.nodes[t.from as usize].id.clone(),
                net.nodes[t.to as usize].id.clone(),
                t.amount.to_string(),
            ])?;
        }
        write_atomic(path, &w.into_inner()?)?;
    }
    if let Some(path) = &a.html {
        write_atomic(path, sankey_html(net, &p, &token).as_bytes())?;
    }
    if a.json {
        let nodes: Vec<serde_json::Value> = (0..net.nodes.len())
            .filter(|&v| p.received[v] > 0)
            .map(|v| {
                serde_json::json!({"node": net.nodes[v].id, "received": p.received[v].to_string(), "kept": p.kept[v].to_string(),
                    "passed": p.passed[v].to_string(), "in_flight": p.in_flight[v].to_string(),
                    "share": p.kept[v] as f64 / p.injected.max(1) as f64})
            })
            .collect();
        let attr = attribution.as_ref().map(|rows| {
            rows.iter()
                .zip(&inj)
                .map(|(r, (s, _))| {
                    let m: BTreeMap<String, String> = r
                        .iter()
                        .enumerate()
                        .filter(|(_, &k)| k > 0)
                        .map(|(v, k)| (net.nodes[v].id.clone(), k.to_string()))
                        .collect();
                    (net.nodes[*s as usize].id.clone(), m)
                })
                .collect::<BTreeMap<_, _>>()
        });
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"injected": p.injected.to_string(), "hops": p.hops, "converged": p.converged, "nodes": nodes, "attribution": attr})
            )?
        );
        return Ok(());
    }
    print_propagation(net, &p, &token, a.top);
    if let Some(rows) = attribution {
        let f = |x: u128| group_thousands(&token.format(allonet_core::TokenAmount::from_base_units(x)));
        let mut header = vec!["node (who funded whom)".to_string()];
        header.extend(inj.iter().map(|(s, _)| format!("from {}", net.nodes[*s as usize].id)));
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
fn sankey_html(net: &Network, p: &Propagation, token: &Token) -> String {
    use crate::html::esc;
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
    let mut links: Vec<((u32, u32), u128)> = agg.into_iter().filter(|((a, b), _)| a != b).collect();
    links.sort_by_key(|l| std::cmp::Reverse(l.1));
    links.truncate(60);
    let mut cols: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let mut shown = std::collections::BTreeSet::new();
    for ((a, b), _) in &links {
        shown.insert(*a);
        shown.insert(*b);
    }
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
    let max_amt = links.first().map(|l| l.1).unwrap_or(1) as f64;
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">");
    for ((a, b), amt) in &links {
        let (x1, y1) = pos[a];
        let (x2, y2) = pos[b];
        let sw = 1.0 + 14.0 * (*amt as f64 / max_amt);
        let (sx, ex) = (x1 + 150.0, x2);
        svg.push_str(&format!(
            "<path d=\"M{sx:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {ex:.1},{:.1}\" stroke=\"#4f6bd8\" stroke-opacity=\"0.35\" stroke-width=\"{sw:.1}\" fill=\"none\"><title>{} → {}: {}</title></path>",
            y1 + 8.0, (sx + ex) / 2.0, y1 + 8.0, (sx + ex) / 2.0, y2 + 8.0, y2 + 8.0,
            esc(&net.nodes[*a as usize].id), esc(&net.nodes[*b as usize].id), esc(&token.format(allonet_core::TokenAmount::from_base_units(*amt)))
        ));
    }
    for (&v, &(x, y)) in &pos {
        let label: String = net.nodes[v as usize].id.chars().take(24).collect();
        svg.push_str(&format!("<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"150\" height=\"16\" rx=\"3\" fill=\"#e8ecfb\" stroke=\"#4f6bd8\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>", x + 4.0, y + 12.0, esc(&label)));
    }
    svg.push_str("</svg>");
    let summary = vec![
        format!(
            "{} nodes, {} edges · injected {} base units · {} hops",
            net.nodes.len(),
            net.edges(),
            p.injected,
            p.hops
        ),
        format!("kept {} + in flight {}", p.kept.iter().sum::<u128>(), p.in_flight.iter().sum::<u128>()),
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
    let Some(mut spec) = m.simulation else { bail!("{}: no [simulation] section", a.model.display()) };
    if let Some(r) = a.runs {
        spec.runs = r;
    }
    if let Some(s) = a.steps {
        spec.steps = s;
    }
    if let Some(s) = a.seed {
        spec.seed = s;
    }
    if spec.steps == 0 || spec.runs == 0 {
        bail!("a simulation needs at least one step and one run");
    }
    if !spec.pinch_sweep.is_empty() && m.network.pinch.is_none() {
        bail!("{}: the sweep varies the pinch, but the model has no [pinch] section", a.model.display());
    }
    let net = &m.network;
    let progress = crate::output::Progress::new(!a.json);
    progress.stage(format!("simulating {} runs × {} steps × {} nodes", spec.runs, spec.steps, net.nodes.len()));
    let t0 = std::time::Instant::now();
    let results = simulate(net, &spec);
    let secs = t0.elapsed().as_secs_f64();
    progress.finish();
    if let Some(p) = &a.csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["pinch_ppm", "step", "node", "mean_kept", "mean_received"])?;
        for r in &results {
            for (s, (k, rec)) in r.mean_kept.iter().zip(&r.mean_received).enumerate() {
                for (v, node) in net.nodes.iter().enumerate() {
                    w.write_record([
                        r.pinch_ppm.to_string(),
                        (s + 1).to_string(),
                        node.id.clone(),
                        format!("{:.3}", k[v]),
                        format!("{:.3}", rec[v]),
                    ])?;
                }
            }
        }
        write_atomic(p, &w.into_inner()?)?;
    }
    if let Some(p) = &a.html {
        write_atomic(p, sim_html(net, &results, &spec).as_bytes())?;
    }
    if let Some(p) = &a.rows {
        let sets = allonet_flow::sim::grid(net, &spec);
        let cells = sets.len() * spec.runs * spec.steps * net.nodes.len();
        if cells > 20_000_000 {
            bail!("--rows would write {cells} rows; lower --runs or --steps (at most 20,000,000)");
        }
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["pinch_ppm", "inject_scale", "run", "step", "node", "kept", "received"])?;
        for (nt, sp, ppm, scale) in &sets {
            for run in 0..spec.runs as u64 {
                let (kept, rec) = allonet_flow::sim::trajectory(nt, sp, run);
                for step in 0..spec.steps {
                    for (v, node) in nt.nodes.iter().enumerate() {
                        let i = step * nt.nodes.len() + v;
                        w.write_record([
                            ppm.to_string(),
                            scale.to_string(),
                            run.to_string(),
                            (step + 1).to_string(),
                            node.id.clone(),
                            kept[i].to_string(),
                            rec[i].to_string(),
                        ])?;
                    }
                }
            }
        }
        write_atomic(p, &w.into_inner()?)?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"runs": spec.runs, "steps": spec.steps, "seed": spec.seed, "results": results, "nodes": net.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>()})
            )?
        );
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

/// Reads pairwise judgements.
pub fn read_pairs(path: &Path) -> Result<Vec<Pair>> {
    let t = Table::read(path)?;
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
            return Err(t.error(row, mc, format!("multiplier {m} must be positive")).into());
        }
        let c = match row.get(ch) {
            "2" => m.ln(),
            "1" => -m.ln(),
            other => return Err(t.error(row, ch, format!("choice `{other}` must be 1 or 2")).into()),
        };
        out.push(Pair { a: row.get(ac).to_string(), b: row.get(bc).to_string(), c });
    }
    Ok(out)
}

pub fn run_fit(a: &FitArgs) -> Result<()> {
    let pairs = read_pairs(&a.pairs)?;
    let f = fit(&pairs).map_err(anyhow::Error::msg)?;
    if let Some(p) = &a.out {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["node", "weight"])?;
        for (k, v) in &f.weights {
            w.write_record([k.clone(), format!("{v:.17}")])?;
        }
        write_atomic(p, &w.into_inner()?)?;
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

fn read_weights(path: &Path) -> Result<BTreeMap<String, f64>> {
    let t = Table::read(path)?;
    let nc = t.require_one_of(&["node", "repo", "id", "project", "proposal"], "node")?;
    let wc = t.require_one_of(&["weight", "amount", "score", "value"], "weight")?;
    let mut m = BTreeMap::new();
    for row in t.rows() {
        m.insert(row.get(nc).to_string(), t.parse_f64(row, wc)?);
    }
    Ok(m)
}

pub fn run_score(a: &ScoreArgs) -> Result<()> {
    let pairs = read_pairs(&a.pairs)?;
    let cands: Vec<BTreeMap<String, f64>> = a.weights.iter().map(|p| read_weights(p)).collect::<Result<_>>()?;
    let costs: Vec<f64> = cands
        .iter()
        .zip(&a.weights)
        .map(|(c, p)| cost(&pairs, c).map_err(|e| anyhow::anyhow!("{}: {e}", p.display())))
        .collect::<Result<_>>()?;
    let blend = best_blend(&pairs, &cands).map_err(anyhow::Error::msg)?;
    if let Some(p) = &a.html {
        let mut bars: Vec<crate::html::Bar> = a
            .weights
            .iter()
            .zip(&costs)
            .map(|(w, c)| crate::html::Bar { label: w.display().to_string(), value: *c, text: format!("{c:.6}") })
            .collect();
        bars.push(crate::html::Bar { label: "best blend".into(), value: blend.1, text: format!("{:.6}", blend.1) });
        let rows: Vec<Vec<String>> = a
            .weights
            .iter()
            .zip(&costs)
            .zip(&blend.0)
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
        println!("{}", serde_json::json!({"costs": costs, "blend": {"lambda": blend.0, "cost": blend.1}}));
        return Ok(());
    }
    let mut t = table(&["candidate", "mean squared error", "blend weight λ"]);
    for ((p, c), l) in a.weights.iter().zip(&costs).zip(&blend.0) {
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
    let token = Token::new("", a.decimals);
    let inj = parse_assignments(&m.network, &a.inject, &token, "--inject")?;
    let target = *m
        .network
        .index()
        .get(a.pinch_target.as_str())
        .with_context(|| format!("`{}` is not a node", a.pinch_target))?;
    let share = |ppm: u32| -> Result<f64> {
        let mut net = m.network.clone();
        set_pinch(&mut net, &a.pinch_target, ppm)?;
        let p = propagate(&net, &inj, &PropagateOptions::default());
        Ok(p.kept[target as usize] as f64 / p.injected.max(1) as f64)
    };
    // coarse grid, then bisection on the bracket (the target's share grows with the pinch)
    let grid: Vec<u32> = (0..=20).map(|i| i * 50_000).collect();
    let mut evals = Vec::new();
    for &g in &grid {
        evals.push((g, share(g)?));
    }
    let best = evals
        .iter()
        .min_by(|x, y| (x.1 - a.target_share).abs().total_cmp(&(y.1 - a.target_share).abs()))
        .copied()
        .expect("grid");
    let (mut lo, mut hi) = (best.0.saturating_sub(50_000), (best.0 + 50_000).min(1_000_000));
    let (mut s_lo, mut s_hi) = (share(lo)?, share(hi)?);
    let mut steps = 0;
    while hi - lo > 1 && s_lo <= a.target_share && a.target_share <= s_hi && steps < 40 {
        let mid = (lo + hi) / 2;
        let s = share(mid)?;
        if s < a.target_share {
            lo = mid;
            s_lo = s;
        } else {
            hi = mid;
            s_hi = s;
        }
        steps += 1;
    }
    let (ppm, s) = [(lo, s_lo), (hi, s_hi), best]
        .into_iter()
        .min_by(|x, y| (x.1 - a.target_share).abs().total_cmp(&(y.1 - a.target_share).abs()))
        .expect("candidates");
    println!(
        "pinch {ppm} ppm ({:.4}%) gives `{}` {:.4}% of the injected total (target {:.4}%; {} evaluations)",
        ppm as f64 / 1e4,
        a.pinch_target,
        s * 100.0,
        a.target_share * 100.0,
        grid.len() + 2 + steps
    );
    Ok(())
}
