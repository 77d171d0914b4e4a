//! `allonet allocate`: one optimised plan across several DAOs' pools, with the reason for each amount.

use std::path::PathBuf;

use allonet_allocate::explain::{Allocation, Binding};
use allonet_allocate::{allocate, Problem};
use allonet_chain::plan::{PayoutPlan, DEFAULT_BATCH_SIZE};
use allonet_report::html::{esc, page};
use allonet_report::{right, show_amount, table, truncate};
use anyhow::{Context, Result};

use crate::output::{write_atomic, Progress};

/// Options of `allonet allocate`.
#[derive(clap::Args, Clone, Debug)]
pub struct AllocateArgs {
    /// The instance: a TOML file of pools, projects, signals and the weights that mix them (README,
    /// "Allocation across DAOs"; `examples/allocate/allocate.toml`).
    pub input: PathBuf,
    /// Write each pool's payout plan (`DIR/<pool>.plan.json`, what `allonet payout` pays and
    /// `gov propose --action approve-plan:<digest>` approves) and the whole allocation (`DIR/allocation.json`).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the allocation as JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML report (each project's funding by pool, its utility curve) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Projects to show in the terminal table.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Payments per batch in the written plans.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    pub batch_size: u32,
}

/// Runs `allonet allocate`: reads and checks the instance, solves, rounds, explains; writes nothing unless
/// every plan is valid.
pub fn run(a: &AllocateArgs) -> Result<()> {
    let progress = Progress::new(!a.json);
    progress.stage(format!("reading {}", a.input.display()));
    let problem = Problem::load(&a.input)?;
    progress.stage(format!(
        "solving: {} pools × {} projects (Newton on the pools' prices, Clarabel where it stalls), then rounding to base units",
        problem.pools.len(),
        problem.projects.len()
    ));
    let alloc = allocate(&problem)?;
    progress.finish();
    let plans = plans(&problem, &alloc, a.batch_size)?;
    let json = serde_json::to_string_pretty(&alloc)? + "\n";
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (pool, plan) in &plans {
            write_atomic(
                &dir.join(format!("{pool}.plan.json")),
                (serde_json::to_string_pretty(plan)? + "\n").as_bytes(),
            )?;
        }
        // A pool that pays nothing has no plan: an earlier run's file must not stand for it.
        for pool in problem.pools.iter().filter(|q| !plans.iter().any(|(id, _)| *id == q.id)) {
            let stale = dir.join(format!("{}.plan.json", pool.id));
            if stale.exists() {
                std::fs::remove_file(&stale).with_context(|| format!("cannot remove {}", stale.display()))?;
            }
        }
        write_atomic(&dir.join("allocation.json"), json.as_bytes())?;
    }
    if let Some(h) = &a.html {
        write_atomic(h, html(&problem, &alloc).as_bytes())?;
    }
    if a.json {
        print!("{json}");
    } else {
        print!("{}", text(&problem, &alloc, a.top));
        if let Some(dir) = &a.out {
            println!("wrote {} to {}", written(&plans), dir.display());
        }
        if let Some(h) = &a.html {
            println!("HTML report: {}", h.display());
        }
    }
    Ok(())
}

fn written(plans: &[(String, PayoutPlan)]) -> String {
    let names: Vec<String> = plans.iter().map(|(p, _)| format!("{p}.plan.json")).collect();
    format!("{} and allocation.json", names.join(", "))
}

/// Each pool's payments as a payout plan (the pool's chain on every line, the plan digest as its source).
pub fn plans(p: &Problem, a: &Allocation, batch_size: u32) -> Result<Vec<(String, PayoutPlan)>> {
    allonet_agent::plans::from_allocation(p, a, batch_size).map_err(anyhow::Error::msg)
}

fn binding_text(b: Binding) -> &'static str {
    match b {
        Binding::Budget => "budget (marginal = price)",
        Binding::PoolCap => "pool cap",
        Binding::MaxShare => "max share",
        Binding::CrossPoolCap => "cross-pool cap",
        Binding::MinGrant => "at min grant",
        Binding::BelowMinimum => "below min: dropped",
        Binding::NotWorthIt => "not worth it",
        Binding::NotEligible => "not eligible",
        Binding::NoRoom => "no room",
    }
}

/// The terminal view: pools, the projects that receive most, the objective.
pub fn text(p: &Problem, a: &Allocation, top: usize) -> String {
    let mut s = format!(
        "allocation of {} pools over {} projects · plan {} · inputs {}\n",
        p.pools.len(),
        p.projects.len(),
        a.plan_digest,
        a.input_digest
    );
    for sig in &a.signals {
        s += &format!(
            "  signal {} × {}: {} ({}), {} projects matched{}\n",
            sig.name,
            sig.alpha,
            sig.file.as_deref().unwrap_or("inline"),
            sig.source.as_deref().unwrap_or("values"),
            sig.matched,
            if sig.unmatched.is_empty() {
                String::new()
            } else {
                format!(", {} entries matched no project", sig.unmatched.len())
            }
        );
    }
    let mut t = table(&["pool", "chain", "budget", "spent", "funded", "shadow price / value", "why"]);
    for (pool, r) in p.pools.iter().zip(&a.pools) {
        t.add_row(vec![
            pool.id.clone(),
            pool.chain.clone().unwrap_or_else(|| "default".into()),
            format!("{} {}", show_amount(&pool.token, r.budget, 2), pool.token.symbol),
            format!("{} {}", show_amount(&pool.token, r.spent, 2), pool.token.symbol),
            r.payments.len().to_string(),
            format!("{:.6e}", r.shadow_price_per_value),
            truncate(&r.binding, 48),
        ]);
    }
    right(&mut t, &[2, 3, 4, 5]);
    s += &format!("{t}\n");
    let mut order: Vec<usize> = (0..a.projects.len()).collect();
    order.sort_by(|&x, &y| a.projects[y].value.total_cmp(&a.projects[x].value).then(x.cmp(&y)));
    let mut header = vec!["project", "value", "vs baseline"];
    let pool_names: Vec<String> = p.pools.iter().map(|q| format!("{} ({})", q.id, q.token.symbol)).collect();
    header.extend(pool_names.iter().map(String::as_str));
    header.extend(["marginal w·u'", "binds"]);
    let mut t = table(&header);
    for &i in order.iter().take(top) {
        let r = &a.projects[i];
        let mut row = vec![
            truncate(r.name.as_deref().unwrap_or(&r.id), 28),
            format!("{:.2}", r.value),
            format!("{:+.2}", r.value - r.baseline_value),
        ];
        for pool in &p.pools {
            row.push(match r.cells.iter().find(|c| c.pool == pool.id) {
                Some(c) if !c.amount.is_zero() => show_amount(&pool.token, c.amount, 2),
                Some(c) if c.binding == Binding::NotEligible => "—".into(),
                _ => "0".into(),
            });
        }
        row.push(format!("{:.3e}", r.marginal));
        let mut why: Vec<&str> =
            r.cells.iter().filter(|c| c.binding != Binding::NotEligible).map(|c| binding_text(c.binding)).collect();
        why.dedup();
        row.push(truncate(&why.join(", "), 40));
        t.add_row(row);
    }
    right(&mut t, &(1..3 + p.pools.len() + 1).collect::<Vec<_>>());
    s += &format!("{t}\n");
    if order.len() > top {
        s += &format!("({} more projects: --top N, --json or --html)\n", order.len() - top);
    }
    let o = &a.objective;
    s += &format!(
        "objective Σ w·u(X) − ρ·Σ(x − b)²: plan {:.6} (continuous optimum {:.6}) · baseline {:.6} (gain {:+.6}) · each pool alone {} \n",
        o.plan,
        o.optimum,
        o.baseline,
        o.gain_over_baseline,
        match (o.pools_alone, o.gain_over_pools_alone) {
            (Some(v), Some(g)) => format!("{v:.6} (gain {g:+.6})"),
            _ => "not solvable alone".into(),
        }
    );
    s += &format!(
        "solver: {} · {} variables · {} solves, {} iterations · {} grants dropped below a minimum\n",
        a.solver.solver, a.solver.variables, a.solver.solves, a.solver.iterations, a.solver.dropped_below_minimum
    );
    s
}

const COLOURS: [&str; 8] = ["#4f6bd8", "#e3873b", "#3fa37a", "#c64f6b", "#8d62c9", "#c9b23a", "#3aa6c9", "#7a7a7a"];

/// The HTML report: stacked bars of each project's value by pool (with its baseline marked), small charts of
/// the utility curves of the largest with the point each reached, and the full table.
pub fn html(p: &Problem, a: &Allocation) -> String {
    let h = html_parts(p, a);
    let header: Vec<&str> = h.header.iter().map(String::as_str).collect();
    page("allonet allocate", &h.summary, &h.body, &header, &h.rows)
}

/// The pieces of the allocation's HTML report, for pages that embed it (the agent's report).
pub struct HtmlParts {
    pub summary: Vec<String>,
    pub body: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The allocation's summary lines, charts (trusted SVG) and table.
pub fn html_parts(p: &Problem, a: &Allocation) -> HtmlParts {
    let mut order: Vec<usize> = (0..a.projects.len()).collect();
    order.sort_by(|&x, &y| a.projects[y].value.total_cmp(&a.projects[x].value).then(x.cmp(&y)));
    let shown: Vec<usize> = order.iter().copied().take(40).collect();
    let max =
        shown.iter().map(|&i| a.projects[i].value.max(a.projects[i].baseline_value)).fold(0.0f64, f64::max).max(1e-12);
    let (lw, bw, rh) = (240.0, 620.0, 20.0);
    let h = rh * shown.len() as f64 + 40.0;
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">", lw + bw + 120.0);
    for (d, pool) in p.pools.iter().enumerate() {
        svg += &format!(
            "<rect x=\"{}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"13\">{}</text>",
            lw + d as f64 * 130.0,
            COLOURS[d % COLOURS.len()],
            lw + d as f64 * 130.0 + 14.0,
            esc(&pool.id)
        );
    }
    for (row, &i) in shown.iter().enumerate() {
        let r = &a.projects[i];
        let y = 24.0 + row as f64 * rh;
        svg += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            lw - 6.0,
            y + 13.0,
            esc(&truncate(r.name.as_deref().unwrap_or(&r.id), 36))
        );
        let mut x = lw;
        for (d, pool) in p.pools.iter().enumerate() {
            let Some(c) = r.cells.iter().find(|c| c.pool == pool.id) else { continue };
            let v = pool.price * c.amount.to_f64_lossy() / pool.unit();
            let w = v / max * bw;
            if w > 0.0 {
                svg += &format!(
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"><title>{} from {}: {} {} ({})</title></rect>",
                    rh - 5.0,
                    COLOURS[d % COLOURS.len()],
                    esc(&r.id),
                    esc(&pool.id),
                    esc(&pool.token.format(c.amount)),
                    esc(&pool.token.symbol),
                    binding_text(c.binding)
                );
                x += w;
            }
        }
        let bx = lw + r.baseline_value / max * bw;
        if r.baseline_value > 0.0 {
            svg += &format!("<line x1=\"{bx:.1}\" x2=\"{bx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#000\" stroke-width=\"2\"><title>baseline {:.2}</title></line>", y - 1.0, y + rh - 3.0, r.baseline_value);
        }
        svg += &format!("<text x=\"{:.1}\" y=\"{}\">{:.0}</text>", x + 4.0, y + 13.0, r.value);
    }
    svg += "</svg>";
    // Utility curves of the 12 largest: u(X) on [0, 2·max(X, baseline)], the point reached.
    let mut curves = String::new();
    for &i in shown.iter().take(12) {
        let r = &a.projects[i];
        let top = 2.0 * r.value.max(r.baseline_value).max(1.0);
        let (w, hh) = (220.0, 120.0);
        let u = |x: f64| r.utility.value(x) - r.utility.value(0.0);
        let umax = u(top).max(1e-12);
        let pts: Vec<String> = (0..=40)
            .map(|k| {
                let x = top * k as f64 / 40.0;
                format!("{:.1},{:.1}", 10.0 + x / top * (w - 20.0), hh - 20.0 - u(x) / umax * (hh - 40.0))
            })
            .collect();
        let px = 10.0 + r.value / top * (w - 20.0);
        let py = hh - 20.0 - u(r.value) / umax * (hh - 40.0);
        curves += &format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hh}\" font-family=\"sans-serif\" font-size=\"10\" style=\"margin:4px;border:1px solid #ddd\">\
             <text x=\"6\" y=\"12\">{} ({})</text><polyline points=\"{}\" fill=\"none\" stroke=\"#4f6bd8\"/>\
             <circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\" fill=\"#e3873b\"><title>X = {:.2}, marginal {:.3e}</title></circle>\
             <text x=\"6\" y=\"{}\">X = {:.0} of value</text></svg>",
            esc(&truncate(r.name.as_deref().unwrap_or(&r.id), 26)),
            r.utility.kind(),
            pts.join(" "),
            r.value,
            r.marginal,
            hh - 6.0,
            r.value
        );
    }
    let o = &a.objective;
    let summary = vec![
        format!("plan {} · inputs {}", a.plan_digest, a.input_digest),
        format!(
            "objective: plan {:.6} · baseline {:.6} (gain {:+.6}) · each pool alone {}",
            o.plan,
            o.baseline,
            o.gain_over_baseline,
            o.pools_alone.map_or("not solvable alone".into(), |v| format!("{v:.6}"))
        ),
    ]
    .into_iter()
    .chain(a.pools.iter().map(|r| {
        format!(
            "{}: {} of {} {} to {} projects · shadow price per unit of value {:.4e} · {}",
            r.id,
            r.token.format(r.spent),
            r.token.format(r.budget),
            r.token.symbol,
            r.payments.len(),
            r.shadow_price_per_value,
            r.binding
        )
    }))
    .collect::<Vec<_>>();
    let body = format!(
        "<h2>Funding by pool (units of value; black line: baseline), largest 40</h2>{svg}<h2>Utility curves and the point reached</h2><div>{curves}</div>"
    );
    let mut header: Vec<String> =
        ["project", "address", "weight", "value", "baseline", "marginal"].iter().map(|h| h.to_string()).collect();
    header.extend(p.pools.iter().map(|q| q.id.clone()));
    let rows: Vec<Vec<String>> = order
        .iter()
        .map(|&i| {
            let r = &a.projects[i];
            let mut row = vec![
                r.name.clone().unwrap_or_else(|| r.id.clone()),
                r.address.to_string(),
                format!("{:.6}", r.weight),
                format!("{:.2}", r.value),
                format!("{:.2}", r.baseline_value),
                format!("{:.3e}", r.marginal),
            ];
            for pool in &p.pools {
                row.push(match r.cells.iter().find(|c| c.pool == pool.id) {
                    Some(c) => format!("{} ({})", pool.token.format(c.amount), binding_text(c.binding)),
                    None => "not eligible".into(),
                });
            }
            row
        })
        .collect();
    HtmlParts { summary, body, header, rows }
}

const EXAMPLE: &[u8] = include_bytes!("../../../examples/allocate/allocate.toml");
const EXAMPLE_RECOMMEND: &[u8] = include_bytes!("../../../examples/allocate/recommend.json");
const EXAMPLE_TALLY: &[u8] = include_bytes!("../../../examples/allocate/tally.json");

/// The demo's step: the bundled three-pool RF4 example (AI recommendation 0.6, quadratic vote 0.4).
pub fn demo() -> Result<String> {
    let p = Problem::from_toml("examples/allocate/allocate.toml", EXAMPLE, &|f: &str| match f {
        "recommend.json" => Ok(EXAMPLE_RECOMMEND.to_vec()),
        "tally.json" => Ok(EXAMPLE_TALLY.to_vec()),
        other => Err(format!("{other} is not bundled")),
    })?;
    let a = allocate(&p)?;
    let plans = plans(&p, &a, DEFAULT_BATCH_SIZE)?;
    let mut s = String::from(
        "\n5. Across DAOs: three pools (OP on Optimism, USDC on Base, ETH on mainnet) over the 230 RF4 projects, one plan\n\
         \x20  maximising Σ w·ln(a + value) with w = 0.6 × the AI recommendation + 0.4 × a quadratic vote of the RF4 ballots\n",
    );
    s += &text(&p, &a, 5);
    for (pool, plan) in &plans {
        s += &format!("   {pool}: payout plan {} ({} payments)\n", plan.digest, plan.payments.len());
    }
    Ok(s)
}
