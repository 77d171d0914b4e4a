//! `allonet treasury …`: policy checks, risk, runway and stress tests for a DAO treasury.
//!
//! Arguments, files and printing only; every figure comes from `allonet_engine::treasury`.

use crate::html::Bar;
use crate::output::{group_thousands, right, table, write_atomic};
use allonet_core::Table;
use allonet_engine::treasury::{self as tr, Benchmark, Holdings, Objective, RunwayOptions};
use allonet_treasury::policy::{Policy, SpendingRule};
use allonet_treasury::risk::{prices_from_table, Prices};
use allonet_treasury::spending::{Runway, RunwaySpec};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum TreasuryCommand {
    /// Holdings against the policy, every breach, risk from price history, runway in months.
    #[command(
        after_help = "Example:\n  allonet treasury report --policy examples/treasury/policy.toml --holdings examples/treasury/holdings.csv --prices examples/treasury/prices.csv"
    )]
    Report(TreasuryArgs),
    /// Monte Carlo of treasury value under the spending rule (seeded, parallel): P(runway below floor), fan chart.
    #[command(
        after_help = "Example:\n  allonet treasury runway --policy examples/treasury/policy.toml --holdings examples/treasury/holdings.csv --prices examples/treasury/prices.csv --html fan.html"
    )]
    Runway(RunwayArgs),
    /// Named stress scenarios (stablecoin depeg, ETH −80%, correlation break, protocol loss) and the breaches they cause.
    Stress(TreasuryArgs),
    /// Optimal weights within the policy's caps: min-vol, max-sharpe, efficient-return, efficient-risk, utility, min-cvar, risk-parity, hrp.
    #[command(
        after_help = "Example:\n  allonet treasury optimize --policy examples/treasury/policy.toml --prices examples/treasury/prices.csv --method max-sharpe"
    )]
    Optimize(OptimizeArgs),
    /// The trades (in tranches) that bring holdings back inside the bands, and the cost of not trading.
    Rebalance(RebalanceArgs),
    /// Backtest the policy's targets (band rebalancing) against a benchmark (default 60/40 ETH/USDC, monthly).
    #[command(
        after_help = "Example:\n  allonet treasury backtest --policy examples/treasury/policy.toml --prices examples/treasury/prices.csv --html backtest.html"
    )]
    Backtest(BacktestArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Method {
    MinVol,
    MaxSharpe,
    EfficientReturn,
    EfficientRisk,
    Utility,
    MinCvar,
    RiskParity,
    Hrp,
}

#[derive(clap::Args)]
pub struct OptimizeArgs {
    /// Policy TOML (its caps bound every weight).
    #[arg(long)]
    pub policy: PathBuf,
    /// Daily prices CSV.
    #[arg(long)]
    pub prices: PathBuf,
    /// Method.
    #[arg(long, value_enum, default_value_t = Method::MinVol)]
    pub method: Method,
    /// Target return (efficient-return) or volatility (efficient-risk), annual.
    #[arg(long)]
    pub target: Option<f64>,
    /// Risk-free rate, annual.
    #[arg(long, default_value_t = 0.02)]
    pub rf: f64,
    /// Risk aversion δ for utility.
    #[arg(long, default_value_t = 2.0)]
    pub delta: f64,
    /// Periods per year of the prices (365 for crypto, 252 for equities).
    #[arg(long, default_value_t = 365.0)]
    pub frequency: f64,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// HTML report with the allocation chart.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct RebalanceArgs {
    #[command(flatten)]
    pub t: TreasuryArgs,
    /// Skip trades smaller than this.
    #[arg(long, default_value_t = 1000.0)]
    pub min_trade: f64,
}

#[derive(clap::Args)]
pub struct BacktestArgs {
    /// Policy TOML.
    #[arg(long)]
    pub policy: PathBuf,
    /// Daily prices CSV.
    #[arg(long)]
    pub prices: PathBuf,
    /// Benchmark weights, e.g. ETH=0.6,USDC=0.4 (rebalanced monthly).
    #[arg(long, default_value = "ETH=0.6,USDC=0.4")]
    pub benchmark: String,
    /// Periods per year of the prices.
    #[arg(long, default_value_t = 365.0)]
    pub frequency: f64,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// HTML report with value and drawdown charts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct TreasuryArgs {
    /// Policy TOML.
    #[arg(long)]
    pub policy: PathBuf,
    /// Holdings CSV: asset, value (in the unit of account, e.g. USD).
    #[arg(long)]
    pub holdings: PathBuf,
    /// Daily prices CSV: date, then one column per asset.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// HTML report with charts: allocation (report), fan chart (runway), trades (rebalance), losses (stress).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct RunwayArgs {
    #[command(flatten)]
    pub t: TreasuryArgs,
    /// Months to simulate.
    #[arg(long, default_value_t = 120)]
    pub months: usize,
    /// Paths.
    #[arg(long, default_value_t = 100_000)]
    pub paths: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Monthly expected log return (default 0: past crypto returns are a poor guide to future ones).
    #[arg(long)]
    pub mu: Option<f64>,
    /// Monthly log-return volatility (default: estimated from --prices).
    #[arg(long)]
    pub sigma: Option<f64>,
}

impl From<Method> for tr::Method {
    fn from(m: Method) -> Self {
        match m {
            Method::MinVol => tr::Method::MinVol,
            Method::MaxSharpe => tr::Method::MaxSharpe,
            Method::EfficientReturn => tr::Method::EfficientReturn,
            Method::EfficientRisk => tr::Method::EfficientRisk,
            Method::Utility => tr::Method::Utility,
            Method::MinCvar => tr::Method::MinCvar,
            Method::RiskParity => tr::Method::RiskParity,
            Method::Hrp => tr::Method::Hrp,
        }
    }
}

fn read_policy(path: &Path) -> Result<Policy> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    Ok(tr::policy_from_toml(&name, &text)?)
}

fn read_prices(path: &Path) -> Result<Prices> {
    Ok(prices_from_table(&Table::read(path)?)?)
}

fn load(a: &TreasuryArgs) -> Result<(Policy, Holdings, Option<Prices>)> {
    let policy = read_policy(&a.policy)?;
    let h = tr::holdings_from_table(&Table::read(&a.holdings)?)?;
    let prices = a.prices.as_deref().map(read_prices).transpose()?;
    Ok((policy, h, prices))
}

/// A whole number with thousands separators.
fn whole(x: f64) -> String {
    group_thousands(&format!("{x:.0}"))
}

/// A share as a percentage with `places` decimals.
fn pct(x: f64, places: usize) -> String {
    format!("{:.*}%", places, x * 100.0)
}

fn bar(label: String, value: f64, text: String) -> Bar {
    Bar { label, value, text }
}

/// Writes an HTML report: `title`, summary lines, a bar chart `chart` and a table (`header`, `rows`).
fn write_report(
    path: &Path,
    title: &str,
    summary: &[String],
    (chart, bars): (&str, Vec<Bar>),
    (header, rows): (&[&str], Vec<Vec<String>>),
) -> Result<()> {
    write_atomic(path, crate::html::report(title, summary, chart, &bars, header, &rows).as_bytes())
}

pub fn run_optimize(a: &OptimizeArgs) -> Result<()> {
    let policy = read_policy(&a.policy)?;
    let p = read_prices(&a.prices)?;
    let problem = tr::Problem::new(&policy, &p, a.frequency)?;
    let need = |what: &str| a.target.with_context(|| format!("--target is needed for {what}"));
    let target = match a.method {
        Method::EfficientReturn => Some(need("efficient-return")?),
        Method::EfficientRisk => Some(need("efficient-risk")?),
        _ => a.target,
    };
    let o = problem.solve(&Objective { method: a.method.into(), target, rf: a.rf, delta: a.delta })?;
    let summary = format!(
        "{:?}: expected return {}, volatility {}, Sharpe {:.3}",
        a.method,
        pct(o.expected_return, 2),
        pct(o.volatility, 2),
        o.sharpe
    );
    if let Some(path) = &a.html {
        let target = |n: &String| pct(policy.assets[n].target, 1);
        let bars = o.weights.iter().map(|(n, v)| bar(n.clone(), *v, format!("{} (target {})", pct(*v, 2), target(n))));
        let rows = o.weights.iter().map(|(n, v)| vec![n.clone(), format!("{:.4}", v)]).collect();
        let (title, summary) = ("allonet treasury optimize", std::slice::from_ref(&summary));
        write_report(path, title, summary, ("Allocation", bars.collect()), (&["asset", "weight"], rows))?;
    }
    if a.json {
        println!("{}", serde_json::to_value(&o)?);
        return Ok(());
    }
    let vols = problem.volatilities();
    let mut t = table(&["asset", "weight", "policy target", "cap", "expected return", "volatility"]);
    for (i, n) in problem.assets.iter().enumerate() {
        let r = &policy.assets[n];
        let mu = problem.inputs.mu[i];
        t.add_row(vec![n.clone(), pct(o.weights[n], 2), pct(r.target, 1), pct(r.cap, 0), pct(mu, 1), pct(vols[i], 1)]);
    }
    right(&mut t, &[1, 2, 3, 4, 5]);
    println!("{t}");
    println!("{summary} (rf {}) — from history, not a forecast", a.rf);
    if !o.over_cap.is_empty() {
        println!("note: {:?} ignores caps and exceeds them for {}", a.method, o.over_cap.join(", "));
    }
    Ok(())
}

pub fn run_rebalance(a: &RebalanceArgs) -> Result<()> {
    let (policy, h, prices) = load(&a.t)?;
    let plan = tr::rebalance(&policy, &h, prices.as_ref(), a.min_trade);
    let side = |amount: f64| if amount >= 0.0 { "buy" } else { "sell" };
    if let Some(path) = &a.t.html {
        let bars = plan.trades.iter().map(|t| {
            let text = format!("{} in {} tranche(s)", whole(t.amount.abs()), t.tranches.len());
            bar(format!("{} {}", side(t.amount), t.asset), t.amount.abs(), text)
        });
        let rows = plan.after.iter().map(|(n, w)| vec![n.clone(), pct(*w, 2)]).collect();
        let summary: Vec<String> = plan
            .tracking_error
            .map(|te| format!("cost of not rebalancing: {} annual tracking error", pct(te, 2)))
            .into_iter()
            .collect();
        let table = (&["asset", "weight after"][..], rows);
        write_report(path, "allonet treasury rebalance", &summary, ("Trades", bars.collect()), table)?;
    }
    if a.t.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    if plan.trades.is_empty() {
        println!("every asset is inside its band: no trades");
    } else {
        let mut t = table(&["asset", "trade", "tranches", "weight after"]);
        for tr in &plan.trades {
            t.add_row(vec![
                tr.asset.clone(),
                format!("{} {}", side(tr.amount), whole(tr.amount.abs())),
                format!("{} × {}", tr.tranches.len(), whole(tr.tranches[0].abs())),
                pct(plan.after.get(&tr.asset).copied().unwrap_or(0.0), 2),
            ]);
        }
        right(&mut t, &[1, 2, 3]);
        println!("{t}");
    }
    if let Some(te) = plan.tracking_error {
        println!("cost of not rebalancing: {} annual tracking error against the targets", pct(te, 2));
    }
    Ok(())
}

pub fn run_backtest(a: &BacktestArgs) -> Result<()> {
    let policy = read_policy(&a.policy)?;
    let p = read_prices(&a.prices)?;
    let r = tr::backtest(&policy, &p, &Benchmark { spec: &a.benchmark, name: "--benchmark" }, a.frequency)?;
    if let Some(h) = &a.html {
        write_atomic(h, backtest_html(&r, &a.benchmark).as_bytes())?;
    }
    if a.json {
        println!("{}", serde_json::to_value(&r)?);
        return Ok(());
    }
    let mut t = table(&["portfolio", "CAGR", "volatility", "max drawdown", "rebalances", "turnover"]);
    let bench = format!("benchmark {} monthly", a.benchmark);
    for (n, b) in [("policy targets, band rebalancing", &r.policy), (bench.as_str(), &r.benchmark)] {
        let turnover = format!("{:.2}", b.turnover);
        let (cagr, vol, dd) = (pct(b.cagr, 1), pct(b.volatility, 1), pct(b.max_drawdown, 1));
        t.add_row(vec![n.to_string(), cagr, vol, dd, b.rebalances.to_string(), turnover]);
    }
    right(&mut t, &[1, 2, 3, 4, 5]);
    println!("{t}");
    println!("{} … {} ({} days)", r.from, r.to, r.days);
    Ok(())
}

fn backtest_html(r: &tr::BacktestReport, bench: &str) -> String {
    let (pol, ben) = (&r.policy, &r.benchmark);
    let (w, h) = (800.0, 260.0);
    let line = |vals: &[f64], max: f64, min: f64, colour: &str| {
        let x = |i: usize| 50.0 + w * i as f64 / (vals.len() - 1) as f64;
        let y = |v: f64| 10.0 + h - h * (v - min) / (max - min).max(1e-12);
        let pts: Vec<String> = vals.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
        format!("<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>", pts.join(" "))
    };
    let max = pol.values.iter().chain(&ben.values).cloned().fold(f64::MIN, f64::max);
    let min = pol.values.iter().chain(&ben.values).cloned().fold(f64::MAX, f64::min);
    let (dp, db) = (&pol.drawdowns, &ben.drawdowns);
    let dmin = dp.iter().chain(db).cloned().fold(0.0, f64::min);
    let chart = |title: &str, body: String| {
        format!(
            "<h2>{title}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\"><rect x=\"50\" y=\"10\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#ccd\"/>{body}<text x=\"50\" y=\"{}\">{} … {}</text><text x=\"{}\" y=\"24\" fill=\"#4f6bd8\">policy</text><text x=\"{}\" y=\"40\" fill=\"#d84f6b\">{}</text></svg>",
            w + 200.0,
            h + 40.0,
            h + 30.0,
            r.from,
            r.to,
            w + 60.0,
            w + 60.0,
            crate::html::esc(bench)
        )
    };
    let body =
        chart("Value (start = 1)", line(&pol.values, max, min, "#4f6bd8") + &line(&ben.values, max, min, "#d84f6b"))
            + &chart("Drawdown", line(dp, 0.0, dmin, "#4f6bd8") + &line(db, 0.0, dmin, "#d84f6b"));
    let figures = |b: &tr::Backtested| {
        format!("CAGR {}, volatility {}, max drawdown {}", pct(b.cagr, 1), pct(b.volatility, 1), pct(b.max_drawdown, 1))
    };
    let summary = vec![format!("policy: {}", figures(pol)), format!("benchmark {bench}: {}", figures(ben))];
    crate::html::page("allonet treasury backtest", &summary, &body, &[], &[])
}

pub fn run_report(a: &TreasuryArgs) -> Result<()> {
    let (policy, h, prices) = load(a)?;
    let r = tr::report(&policy, &h, prices.as_ref())?;
    let (total, spend) = (r.total, r.monthly_spending);
    let lines = tr::allocation(&policy, &h);
    if let Some(path) = &a.html {
        let bars = lines.iter().map(|l| {
            let target = l.rule.as_ref().map(|x| pct(x.target, 1)).unwrap_or_else(|| "not allowed".into());
            bar(l.asset.clone(), l.value, format!("{} (target {target})", pct(l.weight, 2)))
        });
        let rows = r.violations.iter().map(|v| vec![v.rule.clone(), v.detail.clone()]).collect();
        let summary = [format!(
            "total {total:.0} · spending {spend:.0} a month · stablecoins cover {:.1} months",
            r.stable_months
        )];
        let table = (&["breached rule", "figures"][..], rows);
        write_report(path, "allonet treasury report", &summary, ("Allocation", bars.collect()), table)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::to_value(&r)?)?);
        return Ok(());
    }
    let mut t = table(&["asset", "value", "weight", "target ± band", "cap", "status"]);
    for l in &lines {
        let (tb, cap) = match &l.rule {
            Some(x) => (format!("{} ± {}", pct(x.target, 1), pct(x.band, 1)), pct(x.cap, 0)),
            None => ("not allowed".into(), "—".into()),
        };
        let status = if l.within_policy { "ok" } else { "BREACH" };
        t.add_row(vec![l.asset.clone(), whole(l.value), pct(l.weight, 2), tb, cap, status.into()]);
    }
    right(&mut t, &[1, 2, 3, 4]);
    println!("{t}");
    let rule = match policy.spending {
        SpendingRule::Fixed { .. } => "fixed",
        SpendingRule::Percent { .. } => "percent of value",
        SpendingRule::Endowment { .. } => "endowment rule",
    };
    println!(
        "total {} · spending now {} a month ({rule}) · stablecoins cover {:.1} months (floor {:.0})",
        whole(total),
        whole(spend),
        r.stable_months,
        policy.runway_floor_months
    );
    if r.violations.is_empty() {
        println!("policy: no breaches");
    } else {
        let mut t = table(&["breached rule", "figures"]);
        for v in &r.violations {
            t.add_row(vec![v.rule.clone(), v.detail.clone()]);
        }
        println!("{t}");
    }
    if let Some(k) = &r.risk {
        println!(
            "risk over {} days ({} … {}), current weights: daily 95% VaR {} (historical) / {} (normal); CVaR {} / {}; max drawdown {}",
            k.days,
            k.from,
            k.to,
            pct(k.daily_var95_historical, 2),
            pct(k.daily_var95_normal, 2),
            pct(k.daily_cvar95_historical, 2),
            pct(k.daily_cvar95_normal, 2),
            pct(k.max_drawdown, 1)
        );
        let mut header = vec!["asset".to_string(), "annual vol".to_string()];
        header.extend(k.assets.iter().map(|x| format!("ρ {x}")));
        let mut t = table(&header.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        for (i, asset) in k.assets.iter().enumerate() {
            let mut row = vec![asset.clone(), pct(k.annual_vol[asset], 1)];
            row.extend(k.correlation[i].iter().map(|c| format!("{c:+.2}")));
            t.add_row(row);
        }
        println!("{t}");
        println!("Ledoit–Wolf shrinkage intensity {:.4}", k.ledoit_wolf_shrinkage);
    }
    Ok(())
}

pub fn run_runway(a: &RunwayArgs) -> Result<()> {
    let (policy, h, prices) = load(&a.t)?;
    if a.paths == 0 || a.months == 0 {
        bail!("--paths and --months must be at least 1");
    }
    if a.sigma.is_none() && prices.is_none() {
        bail!("give --prices to estimate volatility, or --sigma");
    }
    let o = RunwayOptions { months: a.months, paths: a.paths, seed: a.seed, mu: a.mu, sigma: a.sigma };
    let t0 = std::time::Instant::now();
    let report = tr::runway(&policy, &h, prices.as_ref(), &o)?;
    let secs = t0.elapsed().as_secs_f64();
    let (spec, r) = (&report.spec, &report.runway);
    if let Some(p) = &a.t.html {
        write_atomic(p, fan_html(r, spec).as_bytes())?;
    }
    if a.t.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::to_value(&report)?)?);
        return Ok(());
    }
    let mut t = table(&["month", "p5", "p25", "median", "p75", "p95"]);
    let months: std::collections::BTreeSet<usize> = (11..a.months).step_by(12).chain([a.months - 1]).collect();
    for m in months {
        t.add_row([(m + 1).to_string()].into_iter().chain(r.fan[m].iter().map(|v| whole(*v))).collect::<Vec<_>>());
    }
    right(&mut t, &[0, 1, 2, 3, 4, 5]);
    println!("{t}");
    println!(
        "{} paths × {} months in {secs:.2} s · monthly μ {:.4}, σ {:.4} · P(value below {} months of spending) {} · P(depleted) {}{}",
        a.paths,
        a.months,
        spec.mu,
        spec.sigma,
        policy.runway_floor_months,
        pct(r.p_below_floor, 2),
        pct(r.p_depleted, 2),
        r.median_depletion_month.map(|m| format!(" · median depletion month {m}")).unwrap_or_default()
    );
    Ok(())
}

fn fan_html(r: &Runway, spec: &RunwaySpec) -> String {
    let (w, h) = (800.0, 320.0);
    let max = r.fan.iter().map(|f| f[4]).fold(1.0f64, f64::max);
    let point = |m: usize, q: usize| {
        format!("{:.1},{:.1}", 50.0 + w * (m as f64 + 1.0) / spec.months as f64, 10.0 + h - h * r.fan[m][q] / max)
    };
    let band = |lo: usize, hi: usize, colour: &str| {
        let pts: Vec<String> =
            (0..r.fan.len()).map(|m| point(m, hi)).chain((0..r.fan.len()).rev().map(|m| point(m, lo))).collect();
        format!("<polygon points=\"{}\" fill=\"{colour}\" stroke=\"none\"/>", pts.join(" "))
    };
    let median: Vec<String> = (0..r.fan.len()).map(|m| point(m, 2)).collect();
    let svg = format!(
        "<h2>Treasury value: 5–95% and 25–75% of {} paths, median line</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">{}{}<polyline fill=\"none\" stroke=\"#1c2a6e\" stroke-width=\"2\" points=\"{}\"/><text x=\"50\" y=\"{}\">month 1 … {}</text><text x=\"4\" y=\"20\">{}</text></svg>",
        spec.paths,
        w + 80.0,
        h + 40.0,
        band(0, 4, "#c9d3f5"),
        band(1, 3, "#8fa3ea"),
        median.join(" "),
        h + 30.0,
        spec.months,
        whole(max)
    );
    let (floor, below, depleted) = (spec.floor_months, pct(r.p_below_floor, 2), pct(r.p_depleted, 2));
    let summary = vec![
        format!("start {:.0} · monthly μ {:.4} σ {:.4} · seed {}", spec.value, spec.mu, spec.sigma, spec.seed),
        format!("P(below the {floor}-month floor) {below} · P(depleted) {depleted}"),
    ];
    crate::html::page("allonet treasury runway", &summary, &svg, &[], &[])
}

pub fn run_stress(a: &TreasuryArgs) -> Result<()> {
    let (policy, h, _) = load(a)?;
    let results = tr::stress(&policy, &h);
    if let Some(path) = &a.html {
        let bars = results.iter().map(|r| {
            let text = format!("−{:.1}% · {} breach(es)", (1.0 - r.after / r.before) * 100.0, r.violations.len());
            bar(r.scenario.clone(), r.before - r.after, text)
        });
        let rows = results
            .iter()
            .flat_map(|r| r.violations.iter().map(move |v| vec![r.scenario.clone(), v.rule.clone(), v.detail.clone()]))
            .collect();
        let table = (&["scenario", "breached rule", "figures"][..], rows);
        write_report(path, "allonet treasury stress", &[], ("Loss per scenario", bars.collect()), table)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    let mut t = table(&["scenario", "before", "after", "change", "breaches it causes"]);
    for r in &results {
        let breaches = r.violations.iter().map(|v| v.rule.clone()).collect::<Vec<_>>().join("; ");
        let change = format!("{:+.1}%", (r.after / r.before - 1.0) * 100.0);
        let breaches = if r.violations.is_empty() { "none".into() } else { breaches };
        t.add_row(vec![r.scenario.clone(), whole(r.before), whole(r.after), change, breaches]);
    }
    right(&mut t, &[1, 2, 3]);
    println!("{t}");
    Ok(())
}
