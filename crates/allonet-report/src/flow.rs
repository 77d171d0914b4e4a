//! Allocation networks for people ([`allonet_engine::flows`]'s results): what each node received, kept and
//! passed on, who funded whom, simulated means and percentiles, fitted weights, scored candidates and a tuned
//! pinch as terminal text; the money's paths, kept-over-time, weights and errors as HTML pages; the engine's
//! reports as JSON.

use std::collections::{BTreeMap, BTreeSet};

use allonet_core::{Token, TokenAmount};
use allonet_engine::flows::{self, Candidate, FlowRun, Scoring, Simulation, Tuning};
use allonet_flow::fit::Fit;
use allonet_flow::graph::{Network, Rule};
use allonet_flow::propagate::Propagation;
use allonet_flow::sim::SimResult;

use crate::html::{esc, Bar};
use crate::{group_thousands, right, table, truncate};

/// How a node passes money on, for the table: `sink`, or the rule and its number of receivers.
fn rule_name(r: &Rule) -> String {
    match r {
        Rule::Keep => "sink".into(),
        Rule::Splits { receivers } => format!("splits ({})", receivers.len()),
        Rule::Weights { receivers } => format!("weights ({})", receivers.len()),
        Rule::Shares { mechanism, receivers } => format!("{mechanism} ({})", receivers.len()),
    }
}

/// Base units as whole tokens, exact, grouped.
fn amount(token: &Token, a: u128) -> String {
    group_thousands(&token.format(TokenAmount::from_base_units(a)))
}

/// The nodes with `amounts[v] > 0`, most kept first (ties in network order).
fn most_kept(p: &Propagation, amounts: &[u128]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..amounts.len()).filter(|&v| amounts[v] > 0).collect();
    order.sort_by(|&a, &b| p.kept[b].cmp(&p.kept[a]).then(a.cmp(&b)));
    order
}

/// A propagation: the `top` nodes that kept most (received, kept, passed on, share of the injected total), how
/// many more received funds, and the totals (`injected = kept + in flight`), hops and whether it converged.
pub fn propagation(net: &Network, p: &Propagation, token: &Token, top: usize) -> String {
    let order = most_kept(p, &p.received);
    let f = |a: u128| amount(token, a);
    let mut t = table(&["node", "rule", "received", "kept", "passed on", "share of total"]);
    for &v in order.iter().take(top) {
        t.add_row(vec![
            truncate(&net.nodes[v].id, 48),
            rule_name(&net.nodes[v].rule),
            f(p.received[v]),
            f(p.kept[v]),
            f(p.passed[v]),
            format!("{:.4}%", p.kept[v] as f64 / p.injected.max(1) as f64 * 100.0),
        ]);
    }
    right(&mut t, &[2, 3, 4, 5]);
    let mut lines = vec![t.to_string()];
    if order.len() > top {
        lines.push(format!("… {} more nodes received funds (--top N, --json for all)", order.len() - top));
    }
    let tot = flows::totals(p);
    lines.push(format!(
        "{} nodes, {} edges · injected {} = kept {} + in flight {} ({}) · {} hops, {}",
        net.nodes.len(),
        net.edges(),
        f(tot.injected),
        f(tot.kept),
        f(tot.in_flight),
        if tot.conserved() { "every unit accounted for" } else { "CONSERVATION BROKEN" },
        p.hops,
        if p.converged { "converged" } else { "stopped at the hop limit" }
    ));
    lines.join("\n")
}

/// `flow run`: the [`propagation`], then, when attribution was asked for, who funded whom (a column per
/// injection) for the `top` nodes that kept most.
pub fn run(r: &FlowRun, top: usize) -> String {
    let (net, p, token) = (&r.network, &r.propagation, &r.token);
    let mut s = propagation(net, p, token, top);
    if let Some(rows) = &r.attribution {
        let mut header = vec!["node (who funded whom)".to_string()];
        header.extend(r.injections.iter().map(|(src, _)| format!("from {}", net.nodes[*src as usize].id)));
        let mut t = table(&header.iter().map(String::as_str).collect::<Vec<_>>());
        for &v in most_kept(p, &p.kept).iter().take(top) {
            let mut row = vec![net.nodes[v].id.clone()];
            row.extend(rows.iter().map(|kept| amount(token, kept[v])));
            t.add_row(row);
        }
        s = format!("{s}\n{t}");
    }
    s
}

/// `flow run --json`: the engine's [`flows::RunReport`], pretty, keys sorted.
pub fn run_json(r: &FlowRun) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&serde_json::to_value(r.report())?)
}

/// `flow run --html`: a Sankey-style diagram (nodes in columns by hops from the injections, links as bands as
/// wide as the amount that moved along them; the largest 60 links) and every node that received funds (up to
/// 200, in base units). Needs a run with a trace.
pub fn run_html(r: &FlowRun) -> String {
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
        let ((x1, y1), (x2, y2)) = (pos[&a], pos[&b]);
        let sw = 1.0 + 14.0 * (amt as f64 / max_amt);
        let (sx, ex) = (x1 + 150.0, x2);
        svg.push_str(&format!(
            "<path d=\"M{sx:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {ex:.1},{:.1}\" stroke=\"#4f6bd8\" stroke-opacity=\"0.35\" stroke-width=\"{sw:.1}\" fill=\"none\"><title>{} → {}: {}</title></path>",
            y1 + 8.0, (sx + ex) / 2.0, y1 + 8.0, (sx + ex) / 2.0, y2 + 8.0, y2 + 8.0,
            esc(&net.nodes[a as usize].id), esc(&net.nodes[b as usize].id), esc(&token.format(TokenAmount::from_base_units(amt)))
        ));
    }
    for (&v, &(x, y)) in &pos {
        let label: String = net.nodes[v as usize].id.chars().take(24).collect();
        svg.push_str(&format!("<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"150\" height=\"16\" rx=\"3\" fill=\"#e8ecfb\" stroke=\"#4f6bd8\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>", x + 4.0, y + 12.0, esc(&label)));
    }
    svg.push_str("</svg>");
    let tot = flows::totals(p);
    let summary = vec![
        format!(
            "{} nodes, {} edges · injected {} base units · {} hops",
            net.nodes.len(),
            net.edges(),
            p.injected,
            p.hops
        ),
        format!("kept {} + in flight {}", tot.kept, tot.in_flight),
    ];
    let rows: Vec<Vec<String>> = most_kept(p, &p.received)
        .into_iter()
        .take(200)
        .map(|v| {
            vec![net.nodes[v].id.clone(), p.received[v].to_string(), p.kept[v].to_string(), p.passed[v].to_string()]
        })
        .collect();
    let body = format!("<h2>Money's paths (largest 60 links, columns by hops from the injections)</h2>{svg}");
    crate::html::page("allonet flow", &summary, &body, &["node", "received", "kept", "passed on"], &rows)
}

/// Node indices, most kept at the last step of `r` first.
fn by_final_kept(r: &SimResult, nodes: usize) -> (Vec<f64>, Vec<usize>) {
    let last = r.mean_kept.last().cloned().unwrap_or_default();
    let mut order: Vec<usize> = (0..nodes).collect();
    order.sort_by(|&x, &y| last[y].total_cmp(&last[x]));
    (last, order)
}

/// `flow simulate`: per parameter set, the mean injected and the 15 nodes that kept most at the end (mean,
/// p10 / p50 / p90 over runs, share); then the time taken (`secs`) and the seed.
pub fn simulation(sim: &Simulation, results: &[SimResult], secs: f64) -> String {
    let (net, spec) = (&sim.network, &sim.spec);
    let mut lines = Vec::new();
    for r in results {
        lines.push(format!(
            "pinch {} ppm · mean injected per run {} · {} runs × {} steps",
            r.pinch_ppm,
            group_thousands(&format!("{:.0}", r.mean_injected)),
            spec.runs,
            spec.steps
        ));
        let (last, order) = by_final_kept(r, net.nodes.len());
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
        lines.push(t.to_string());
    }
    lines.push(format!(
        "simulated in {secs:.2} s (seed {}; the same seed gives the same numbers on any thread count)",
        spec.seed
    ));
    lines.join("\n")
}

/// `flow simulate --json`: the engine's [`flows::SimReport`], pretty, keys sorted.
pub fn simulation_json(sim: &Simulation, results: Vec<SimResult>) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&serde_json::to_value(sim.report(results))?)
}

/// `flow simulate --html`: per parameter set, a chart of the mean kept over time by the 8 nodes that kept most.
pub fn simulation_html(sim: &Simulation, results: &[SimResult]) -> String {
    let (net, spec) = (&sim.network, &sim.spec);
    let mut charts = String::new();
    let colours = ["#4f6bd8", "#d84f6b", "#2f9e6e", "#d89a2f", "#7a4fd8", "#2fa4d8", "#8a8a8a", "#b84fd8"];
    for r in results {
        let (last, order) = by_final_kept(r, net.nodes.len());
        let top: Vec<usize> = order.into_iter().take(8).collect();
        let max = top.iter().map(|&v| last[v]).fold(1.0f64, f64::max);
        let (w, h) = (760.0, 260.0);
        charts.push_str(&format!("<h2>Mean kept over time · pinch {} ppm · injection ×{}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\"><rect x=\"40\" y=\"10\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#ccd\"/>", r.pinch_ppm, r.inject_scale, w + 260.0, h + 40.0));
        for (ci, &v) in top.iter().enumerate() {
            let pts: Vec<String> = (r.mean_kept.iter().enumerate())
                .map(|(s, k)| {
                    format!("{:.1},{:.1}", 40.0 + w * (s as f64 + 1.0) / spec.steps as f64, 10.0 + h - h * k[v] / max)
                })
                .collect();
            let c = colours[ci % colours.len()];
            charts.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
                pts.join(" ")
            ));
            let y = 24.0 + ci as f64 * 16.0;
            charts.push_str(&format!(
                "<text x=\"{}\" y=\"{y}\" fill=\"{c}\">{}</text>",
                w + 50.0,
                esc(&net.nodes[v].id)
            ));
        }
        charts.push_str(&format!("<text x=\"40\" y=\"{}\">step 1 … {}</text></svg>", h + 30.0, spec.steps));
    }
    let summary =
        vec![format!("{} runs × {} steps × {} nodes · seed {}", spec.runs, spec.steps, net.nodes.len(), spec.seed)];
    crate::html::page("allonet flow simulate", &summary, &charts, &[], &[])
}

/// Fitted weights, largest first.
fn by_weight(f: &Fit) -> Vec<(&String, f64)> {
    let mut v: Vec<(&String, f64)> = f.weights.iter().map(|(k, w)| (k, *w)).collect();
    v.sort_by(|x, y| y.1.total_cmp(&x.1));
    v
}

/// `flow fit`: the `top` largest weights, then the number of pairs and nodes, the error and the iterations.
pub fn fit(f: &Fit, pairs: usize, top: usize) -> String {
    let mut t = table(&["node", "weight"]);
    for (k, w) in by_weight(f).into_iter().take(top) {
        t.add_row(vec![k.clone(), format!("{w:.6}")]);
    }
    right(&mut t, &[1]);
    format!(
        "{t}\n{pairs} pairs, {} nodes · mean squared error of log ratios {:.6} · {} CG iterations",
        f.weights.len(),
        f.cost,
        f.iterations
    )
}

/// `flow fit --json`: the fit, pretty, in its fields' order.
pub fn fit_json(f: &Fit) -> serde_json::Result<String> {
    serde_json::to_string_pretty(f)
}

/// `flow fit --html`: a bar chart of the 60 largest weights and every weight.
pub fn fit_html(f: &Fit, pairs: usize) -> String {
    let v = by_weight(f);
    let bars: Vec<Bar> =
        v.iter().take(60).map(|(k, w)| Bar { label: k.to_string(), value: *w, text: format!("{w:.4}") }).collect();
    let rows: Vec<Vec<String>> = v.iter().map(|(k, w)| vec![k.to_string(), format!("{w:.8}")]).collect();
    let summary = vec![format!("{pairs} pairs · {} nodes · mean squared error {:.6}", f.weights.len(), f.cost)];
    crate::html::report("allonet flow fit", &summary, "Fitted weights", &bars, &["node", "weight"], &rows)
}

/// `flow score`: each candidate (name, weights: as scored, in order) with its error and weight in the best
/// blend, then the blend's error on `pairs` pairs.
pub fn scoring(candidates: &[Candidate], sc: &Scoring, pairs: usize) -> String {
    let mut t = table(&["candidate", "mean squared error", "blend weight λ"]);
    for (((n, _), c), l) in candidates.iter().zip(&sc.costs).zip(&sc.blend.lambda) {
        t.add_row(vec![n.clone(), format!("{c:.6}"), format!("{l:.4}")]);
    }
    right(&mut t, &[1, 2]);
    format!("{t}\nbest log-linear blend: mean squared error {:.6} on {pairs} pairs", sc.blend.cost)
}

/// `flow score --json`: the scoring on one line, keys sorted.
pub fn scoring_json(sc: &Scoring) -> serde_json::Result<String> {
    Ok(serde_json::to_value(sc)?.to_string())
}

/// `flow score --html`: a bar chart of the candidates' errors and the best blend's, and the table.
pub fn scoring_html(candidates: &[Candidate], sc: &Scoring, pairs: usize) -> String {
    let mut bars: Vec<Bar> = (candidates.iter().zip(&sc.costs))
        .map(|((n, _), c)| Bar { label: n.clone(), value: *c, text: format!("{c:.6}") })
        .collect();
    let blend = sc.blend.cost;
    bars.push(Bar { label: "best blend".into(), value: blend, text: format!("{blend:.6}") });
    let rows: Vec<Vec<String>> = (candidates.iter().zip(&sc.costs).zip(&sc.blend.lambda))
        .map(|(((n, _), c), l)| vec![n.clone(), format!("{c:.8}"), format!("{l:.6}")])
        .collect();
    let summary = vec![format!("{pairs} pairs · {} candidates", candidates.len())];
    let chart = "Mean squared error of log ratios (lower is better)";
    crate::html::report("allonet flow score", &summary, chart, &bars, &["candidate", "error", "blend λ"], &rows)
}

/// `flow tune`: the pinch found, the share it gives `target`, the share wanted (0..1) and the evaluations.
pub fn tuning(t: &Tuning, target: &str, wanted: f64) -> String {
    format!(
        "pinch {} ppm ({:.4}%) gives `{target}` {:.4}% of the injected total (target {:.4}%; {} evaluations)",
        t.ppm,
        t.ppm as f64 / 1e4,
        t.share * 100.0,
        wanted * 100.0,
        t.evaluations
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use allonet_engine::flows::{Blend, RunRequest};

    /// s splits 3:1 to a and b (sinks).
    fn small_run(trace: bool) -> FlowRun {
        let t = allonet_core::Table::from_bytes("g.csv", b"source,target,weight\ns,a,0.75\ns,b,0.25\n").unwrap();
        let net = allonet_flow::graph::from_edge_table(&t, None, None).unwrap();
        let inject = vec!["s=1000".to_string()];
        let r = RunRequest { inject: &inject, max_hops: 100, trace, attribution: true, ..Default::default() };
        flows::run(net, &r).unwrap()
    }

    #[test]
    fn a_run_shows_each_node_and_accounts_for_every_unit() {
        let s = run(&small_run(false), 1);
        assert!(s.lines().any(|l| l.starts_with("│ a ") && l.contains("┆ sink ┆") && l.contains("75.0000%")), "{s}");
        assert!(s.contains("… 2 more nodes received funds"), "{s}");
        assert!(s.contains("3 nodes, 2 edges · injected 1,000 = kept 1,000 + in flight 0 (every unit accounted for)"));
        assert!(s.contains("node (who funded whom) ┆ from s"), "{s}");
        let html = run_html(&small_run(true));
        assert!(html.contains("<svg") && html.contains("<path") && html.contains("s → a: 750"), "{html}");
        assert!(run_json(&small_run(false)).unwrap().contains("\"injected\": \"1000\""));
    }

    #[test]
    fn a_simulation_shows_each_parameter_set_and_charts_kept_over_time() {
        let model = "[[node]]\nid = \"dao\"\nrule = \"splits\"\nreceivers = { x = 600000 }\n\n[[node]]\nid = \"x\"\n\n\
                     [simulation]\nsteps = 2\nruns = 3\nseed = 7\ninject = [{ node = \"dao\", median = 1000, sigma = 0.5 }]\n";
        let read = |p: &str| Err(allonet_core::InputError::file(p, "no tables here"));
        let m = allonet_flow::model::parse_model("m.toml", model, &read).unwrap();
        let sim = Simulation::from_model(m, "m.toml", &Default::default()).unwrap();
        let res = sim.run();
        let s = simulation(&sim, &res, 0.5);
        assert!(s.starts_with("pinch 0 ppm · mean injected per run ") && s.contains(" · 3 runs × 2 steps\n"), "{s}");
        let shown: Vec<&str> = s.lines().filter(|l| l.starts_with("│ x ") || l.starts_with("│ dao ")).collect();
        assert!(shown.len() == 2 && shown.iter().all(|l| l.ends_with("% │")), "{s}");
        assert!(s.ends_with("simulated in 0.50 s (seed 7; the same seed gives the same numbers on any thread count)"));
        let html = simulation_html(&sim, &res);
        assert!(html.contains("<svg") && html.contains("<polyline") && html.contains("3 runs × 2 steps × 2 nodes"));
    }

    #[test]
    fn fits_scores_and_tunings_read_as_sentences() {
        let f = Fit { weights: [("x".to_string(), 0.25), ("y".to_string(), 0.75)].into(), cost: 0.5, iterations: 3 };
        let s = fit(&f, 4, 10);
        assert!(s.find("│ y ").unwrap() < s.find("│ x ").unwrap(), "largest first: {s}");
        assert!(s.ends_with("4 pairs, 2 nodes · mean squared error of log ratios 0.500000 · 3 CG iterations"));
        assert!(fit_html(&f, 4).contains("<svg"));
        let sc = Scoring { costs: vec![0.2, 0.1], blend: Blend { lambda: vec![0.25, 0.75], cost: 0.05 } };
        let names = [("p.csv".to_string(), BTreeMap::new()), ("q<.csv".to_string(), BTreeMap::new())];
        let s = scoring(&names, &sc, 9);
        assert!(s.lines().any(|l| l.contains("q<.csv") && l.contains("0.100000") && l.contains("0.7500")), "{s}");
        assert!(scoring_html(&names, &sc, 9).contains("q&lt;.csv"));
        assert_eq!(scoring_json(&sc).unwrap(), r#"{"blend":{"cost":0.05,"lambda":[0.25,0.75]},"costs":[0.2,0.1]}"#);
        let t = Tuning { ppm: 12_345, share: 0.05, evaluations: 30 };
        assert_eq!(
            tuning(&t, "n", 0.05),
            "pinch 12345 ppm (1.2345%) gives `n` 5.0000% of the injected total (target 5.0000%; 30 evaluations)"
        );
    }
}
