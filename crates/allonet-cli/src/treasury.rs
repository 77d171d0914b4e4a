//! `allonet treasury …`: policy checks, risk, runway and stress tests for a DAO treasury.

use crate::output::{group_thousands, right, table, write_atomic};
use allonet_core::Table;
use allonet_treasury::policy::{Policy, SpendingRule};
use allonet_treasury::risk::{
    correlation, historical_var_cvar, ledoit_wolf, max_drawdown, parametric_var_cvar, portfolio_returns,
    prices_from_table, returns, sample_cov, Prices,
};
use allonet_treasury::spending::{runway, spending_path, Runway, RunwaySpec};
use allonet_treasury::stress::{apply, builtin};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

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

fn read_policy(path: &std::path::Path) -> Result<Policy> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    Ok(Policy::from_toml(&name, &text)?)
}

fn read_prices(path: &std::path::Path) -> Result<Prices> {
    Ok(prices_from_table(&Table::read(path)?)?)
}

/// Policy assets with prices, in price-column order, and their caps.
fn policy_columns(policy: &Policy, p: &Prices) -> Result<(Vec<usize>, Vec<f64>)> {
    let mut cols = Vec::new();
    let mut caps = Vec::new();
    for name in policy.assets.keys() {
        let c = p
            .assets
            .iter()
            .position(|a| a == name)
            .with_context(|| format!("the price file has no column for `{name}`"))?;
        cols.push(c);
        caps.push(policy.assets[name].cap);
    }
    Ok((cols, caps))
}

pub fn run_optimize(a: &OptimizeArgs) -> Result<()> {
    use allonet_treasury::optim::*;
    let policy = read_policy(&a.policy)?;
    let p = read_prices(&a.prices)?;
    let (cols, caps) = policy_columns(&policy, &p)?;
    let names: Vec<String> = policy.assets.keys().cloned().collect();
    let sub: Vec<Vec<f64>> = cols.iter().map(|&c| p.prices[c].clone()).collect();
    let x = pypfopt_inputs(&names, &sub, a.frequency);
    let need = |what: &str| a.target.with_context(|| format!("--target is needed for {what}"));
    // the policy's caps and its minimum stablecoin share
    let stable: Vec<bool> = names.iter().map(|n| policy.assets[n].stable).collect();
    let lim = Limits {
        upper: caps.clone(),
        min_groups: if policy.min_stable_share > 0.0 { vec![(stable, policy.min_stable_share)] } else { vec![] },
    };
    let w = match a.method {
        Method::MinVol => min_volatility(&x, &lim)?,
        Method::MaxSharpe => max_sharpe(&x, a.rf, &lim)?,
        Method::EfficientReturn => efficient_return(&x, need("efficient-return")?, &lim)?,
        Method::EfficientRisk => efficient_risk(&x, need("efficient-risk")?, &lim)?,
        Method::Utility => max_quadratic_utility(&x, a.delta, &lim)?,
        Method::MinCvar => {
            let r: Vec<Vec<f64>> = sub.iter().map(|s| s.windows(2).map(|w| w[1] / w[0] - 1.0).collect()).collect();
            let scen: Vec<Vec<f64>> = (0..r[0].len()).map(|t| r.iter().map(|s| s[t]).collect()).collect();
            min_cvar(&scen, 0.95, &lim)?
        }
        Method::RiskParity => risk_parity(&x.cov),
        Method::Hrp => {
            let r: Vec<Vec<f64>> = sub.iter().map(|s| s.windows(2).map(|w| w[1] / w[0] - 1.0).collect()).collect();
            hrp(&pairwise_cov(&r), &pairwise_corr(&r))
        }
    };
    let (ret, vol, sharpe) = performance(&x, &w, a.rf);
    if let Some(path) = &a.html {
        let bars: Vec<crate::html::Bar> = names
            .iter()
            .zip(&w)
            .map(|(n, v)| crate::html::Bar {
                label: n.clone(),
                value: *v,
                text: format!("{:.2}% (target {:.1}%)", v * 100.0, policy.assets[n].target * 100.0),
            })
            .collect();
        let rows: Vec<Vec<String>> = names.iter().zip(&w).map(|(n, v)| vec![n.clone(), format!("{:.4}", v)]).collect();
        let summary = vec![format!(
            "{:?}: expected return {:.2}%, volatility {:.2}%, Sharpe {:.3}",
            a.method,
            ret * 100.0,
            vol * 100.0,
            sharpe
        )];
        write_atomic(
            path,
            crate::html::report(
                "allonet treasury optimize",
                &summary,
                "Allocation",
                &bars,
                &["asset", "weight"],
                &rows,
            )
            .as_bytes(),
        )?;
    }
    let over_cap: Vec<&String> =
        names.iter().zip(&w).zip(&caps).filter(|((_, w), c)| **w > **c + 1e-6).map(|((n, _), _)| n).collect();
    if a.json {
        println!(
            "{}",
            serde_json::json!({"method": format!("{:?}", a.method), "weights": names.iter().zip(&w).map(|(n, v)| (n.clone(), *v)).collect::<BTreeMap<_, _>>(), "expected_return": ret, "volatility": vol, "sharpe": sharpe, "over_cap": over_cap})
        );
        return Ok(());
    }
    let mut t = table(&["asset", "weight", "policy target", "cap", "expected return", "volatility"]);
    for (i, n) in names.iter().enumerate() {
        let r = &policy.assets[n];
        t.add_row(vec![
            n.clone(),
            format!("{:.2}%", w[i] * 100.0),
            format!("{:.1}%", r.target * 100.0),
            format!("{:.0}%", r.cap * 100.0),
            format!("{:.1}%", x.mu[i] * 100.0),
            format!("{:.1}%", x.cov[i][i].sqrt() * 100.0),
        ]);
    }
    right(&mut t, &[1, 2, 3, 4, 5]);
    println!("{t}");
    println!(
        "{:?}: expected return {:.2}%, volatility {:.2}%, Sharpe {:.3} (rf {}) — from history, not a forecast",
        a.method,
        ret * 100.0,
        vol * 100.0,
        sharpe,
        a.rf
    );
    if !over_cap.is_empty() {
        println!(
            "note: {:?} ignores caps and exceeds them for {}",
            a.method,
            over_cap.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

pub fn run_rebalance(a: &RebalanceArgs) -> Result<()> {
    let (policy, h, prices) = load(&a.t)?;
    let cov = match &prices {
        Some(p) => {
            let r = returns(p);
            let c: Vec<Vec<f64>> =
                sample_cov(&r).into_iter().map(|row| row.into_iter().map(|v| v * 365.0).collect()).collect();
            Some((p.assets.clone(), c))
        }
        None => None,
    };
    let plan = allonet_treasury::rebalance::rebalance(
        &policy,
        &h,
        a.min_trade,
        cov.as_ref().map(|(n, c)| (n.as_slice(), c.as_slice())),
    );
    if let Some(path) = &a.t.html {
        let bars: Vec<crate::html::Bar> = plan
            .trades
            .iter()
            .map(|t| crate::html::Bar {
                label: format!("{} {}", if t.amount >= 0.0 { "buy" } else { "sell" }, t.asset),
                value: t.amount.abs(),
                text: format!(
                    "{} in {} tranche(s)",
                    group_thousands(&format!("{:.0}", t.amount.abs())),
                    t.tranches.len()
                ),
            })
            .collect();
        let rows: Vec<Vec<String>> =
            plan.after.iter().map(|(n, w)| vec![n.clone(), format!("{:.2}%", w * 100.0)]).collect();
        let summary: Vec<String> = plan
            .tracking_error
            .map(|te| format!("cost of not rebalancing: {:.2}% annual tracking error", te * 100.0))
            .into_iter()
            .collect();
        let page = crate::html::report(
            "allonet treasury rebalance",
            &summary,
            "Trades",
            &bars,
            &["asset", "weight after"],
            &rows,
        );
        write_atomic(path, page.as_bytes())?;
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
                format!(
                    "{}{}",
                    if tr.amount >= 0.0 { "buy " } else { "sell " },
                    group_thousands(&format!("{:.0}", tr.amount.abs()))
                ),
                format!("{} × {}", tr.tranches.len(), group_thousands(&format!("{:.0}", tr.tranches[0].abs()))),
                format!("{:.2}%", plan.after.get(&tr.asset).copied().unwrap_or(0.0) * 100.0),
            ]);
        }
        right(&mut t, &[1, 2, 3]);
        println!("{t}");
    }
    if let Some(te) = plan.tracking_error {
        println!("cost of not rebalancing: {:.2}% annual tracking error against the targets", te * 100.0);
    }
    Ok(())
}

pub fn run_backtest(a: &BacktestArgs) -> Result<()> {
    use allonet_treasury::rebalance::{backtest, Rebalancing};
    let policy = read_policy(&a.policy)?;
    let p = read_prices(&a.prices)?;
    let (cols, _) = policy_columns(&policy, &p)?;
    let mut target = vec![0.0; p.assets.len()];
    let mut bands = vec![1.0; p.assets.len()];
    for (name, &c) in policy.assets.keys().zip(&cols) {
        target[c] = policy.assets[name].target;
        bands[c] = policy.assets[name].band;
    }
    let mut bench = vec![0.0; p.assets.len()];
    for part in a.benchmark.split(',') {
        let (n, w) = part.split_once('=').context("--benchmark: expected ASSET=WEIGHT,…")?;
        let c = p
            .assets
            .iter()
            .position(|x| x == n.trim())
            .with_context(|| format!("--benchmark: no price column `{n}`"))?;
        bench[c] = w.trim().parse().with_context(|| format!("--benchmark: `{w}` is not a number"))?;
    }
    if (bench.iter().sum::<f64>() - 1.0).abs() > 1e-9 {
        bail!("--benchmark weights must sum to 1");
    }
    let pol = backtest(&p, &target, &Rebalancing::Bands(bands), a.frequency);
    let ben = backtest(&p, &bench, &Rebalancing::Monthly, a.frequency);
    if let Some(h) = &a.html {
        write_atomic(h, backtest_html(&p, &pol, &ben, &a.benchmark).as_bytes())?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"from": p.dates.first(), "to": p.dates.last(), "policy": {"cagr": pol.cagr, "volatility": pol.volatility, "max_drawdown": pol.max_drawdown, "rebalances": pol.rebalances, "turnover": pol.turnover}, "benchmark": {"cagr": ben.cagr, "volatility": ben.volatility, "max_drawdown": ben.max_drawdown, "rebalances": ben.rebalances, "turnover": ben.turnover}})
        );
        return Ok(());
    }
    let mut t = table(&["portfolio", "CAGR", "volatility", "max drawdown", "rebalances", "turnover"]);
    for (n, b) in [("policy targets, band rebalancing", &pol), (&*format!("benchmark {} monthly", a.benchmark), &ben)] {
        t.add_row(vec![
            n.to_string(),
            format!("{:.1}%", b.cagr * 100.0),
            format!("{:.1}%", b.volatility * 100.0),
            format!("{:.1}%", b.max_drawdown * 100.0),
            b.rebalances.to_string(),
            format!("{:.2}", b.turnover),
        ]);
    }
    right(&mut t, &[1, 2, 3, 4, 5]);
    println!("{t}");
    println!("{} … {} ({} days)", p.dates.first().unwrap(), p.dates.last().unwrap(), p.dates.len());
    Ok(())
}

fn backtest_html(
    p: &Prices,
    pol: &allonet_treasury::rebalance::Backtest,
    ben: &allonet_treasury::rebalance::Backtest,
    bench: &str,
) -> String {
    let (w, h) = (800.0, 260.0);
    let line = |vals: &[f64], max: f64, min: f64, colour: &str| {
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    50.0 + w * i as f64 / (vals.len() - 1) as f64,
                    10.0 + h - h * (v - min) / (max - min).max(1e-12)
                )
            })
            .collect();
        format!("<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>", pts.join(" "))
    };
    let dd = |v: &[f64]| {
        let mut peak = f64::NEG_INFINITY;
        v.iter()
            .map(|&x| {
                peak = peak.max(x);
                x / peak - 1.0
            })
            .collect::<Vec<f64>>()
    };
    let max = pol.values.iter().chain(&ben.values).cloned().fold(f64::MIN, f64::max);
    let min = pol.values.iter().chain(&ben.values).cloned().fold(f64::MAX, f64::min);
    let (dp, db) = (dd(&pol.values), dd(&ben.values));
    let dmin = dp.iter().chain(&db).cloned().fold(0.0, f64::min);
    let chart = |title: &str, body: String| {
        format!(
            "<h2>{title}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\"><rect x=\"50\" y=\"10\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#ccd\"/>{body}<text x=\"50\" y=\"{}\">{} … {}</text><text x=\"{}\" y=\"24\" fill=\"#4f6bd8\">policy</text><text x=\"{}\" y=\"40\" fill=\"#d84f6b\">{}</text></svg>",
            w + 200.0,
            h + 40.0,
            h + 30.0,
            p.dates[0],
            p.dates[p.dates.len() - 1],
            w + 60.0,
            w + 60.0,
            crate::html::esc(bench)
        )
    };
    let body =
        chart("Value (start = 1)", line(&pol.values, max, min, "#4f6bd8") + &line(&ben.values, max, min, "#d84f6b"))
            + &chart("Drawdown", line(&dp, 0.0, dmin, "#4f6bd8") + &line(&db, 0.0, dmin, "#d84f6b"));
    let summary = vec![
        format!(
            "policy: CAGR {:.1}%, volatility {:.1}%, max drawdown {:.1}%",
            pol.cagr * 100.0,
            pol.volatility * 100.0,
            pol.max_drawdown * 100.0
        ),
        format!(
            "benchmark {bench}: CAGR {:.1}%, volatility {:.1}%, max drawdown {:.1}%",
            ben.cagr * 100.0,
            ben.volatility * 100.0,
            ben.max_drawdown * 100.0
        ),
    ];
    crate::html::page("allonet treasury backtest", &summary, &body, &[], &[])
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

fn load(a: &TreasuryArgs) -> Result<(Policy, BTreeMap<String, f64>, Option<Prices>)> {
    let policy = read_policy(&a.policy)?;
    let t = Table::read(&a.holdings)?;
    let ac = t.require_one_of(&["asset", "symbol"], "asset")?;
    let vc = t.require_one_of(&["value_usd", "value", "amount"], "value")?;
    let mut h = BTreeMap::new();
    for row in t.rows() {
        let v = t.parse_non_negative(row, vc)?;
        if h.insert(row.get(ac).to_string(), v).is_some() {
            return Err(t.error(row, ac, format!("`{}` appears twice", row.get(ac))).into());
        }
    }
    let prices = a.prices.as_deref().map(read_prices).transpose()?;
    Ok((policy, h, prices))
}

fn monthly_spending(policy: &Policy, total: f64) -> f64 {
    spending_path(&policy.spending, &[total])[0]
}

/// Weights, per-asset daily returns, and the portfolio's daily returns.
type Portfolio = (Vec<f64>, Vec<Vec<f64>>, Vec<f64>);

/// Weights of held assets that have prices, and their daily portfolio returns.
fn portfolio(h: &BTreeMap<String, f64>, p: &Prices) -> Result<Portfolio> {
    let total: f64 = h.values().sum();
    let r = returns(p);
    let mut w = vec![0.0; p.assets.len()];
    for (asset, v) in h {
        let i = p
            .assets
            .iter()
            .position(|a| a == asset)
            .with_context(|| format!("the price file has no column for `{asset}`"))?;
        w[i] = v / total;
    }
    let pr = portfolio_returns(&r, &w);
    Ok((w, r, pr))
}

pub fn run_report(a: &TreasuryArgs) -> Result<()> {
    let (policy, h, prices) = load(a)?;
    let total: f64 = h.values().sum();
    let spend = monthly_spending(&policy, total);
    let violations = policy.violations(&h, spend);
    let stable: f64 = h.iter().filter(|(n, _)| policy.assets.get(*n).is_some_and(|x| x.stable)).map(|(_, v)| v).sum();
    let risk = match &prices {
        None => None,
        Some(p) => {
            let (_, r, pr) = portfolio(&h, p)?;
            let (hv, hc) = historical_var_cvar(&pr, 0.95);
            let (pv, pc) = parametric_var_cvar(&pr, 0.95);
            let mut value = vec![1.0];
            for x in &pr {
                value.push(value.last().unwrap() * (1.0 + x));
            }
            let cov = sample_cov(&r);
            let (_, delta) = ledoit_wolf(&r);
            let vols: Vec<f64> = (0..r.len()).map(|i| (cov[i][i] * 365.0).sqrt()).collect();
            Some((hv, hc, pv, pc, max_drawdown(&value), vols, correlation(&cov), delta, p.clone()))
        }
    };
    if let Some(path) = &a.html {
        let bars: Vec<crate::html::Bar> = h
            .iter()
            .map(|(n, v)| crate::html::Bar {
                label: n.clone(),
                value: *v,
                text: format!(
                    "{:.2}% (target {})",
                    v / total * 100.0,
                    policy
                        .assets
                        .get(n)
                        .map(|x| format!("{:.1}%", x.target * 100.0))
                        .unwrap_or_else(|| "not allowed".into())
                ),
            })
            .collect();
        let rows: Vec<Vec<String>> = violations.iter().map(|v| vec![v.rule.clone(), v.detail.clone()]).collect();
        let summary = vec![format!(
            "total {total:.0} · spending {spend:.0} a month · stablecoins cover {:.1} months",
            stable / spend.max(f64::MIN_POSITIVE)
        )];
        write_atomic(
            path,
            crate::html::report(
                "allonet treasury report",
                &summary,
                "Allocation",
                &bars,
                &["breached rule", "figures"],
                &rows,
            )
            .as_bytes(),
        )?;
    }
    if a.json {
        let r = risk.as_ref().map(|(hv, hc, pv, pc, dd, vols, corr, delta, p)| {
            serde_json::json!({"daily_var95_historical": hv, "daily_cvar95_historical": hc, "daily_var95_normal": pv, "daily_cvar95_normal": pc,
                "max_drawdown": dd, "annual_vol": p.assets.iter().zip(vols).map(|(a, v)| (a.clone(), *v)).collect::<BTreeMap<_, _>>(),
                "correlation": corr, "ledoit_wolf_shrinkage": delta, "assets": p.assets, "from": p.dates.first(), "to": p.dates.last()})
        });
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"total": total, "monthly_spending": spend, "stable_months": stable / spend.max(f64::MIN_POSITIVE), "violations": violations, "risk": r})
            )?
        );
        return Ok(());
    }
    let mut t = table(&["asset", "value", "weight", "target ± band", "cap", "status"]);
    for (asset, v) in &h {
        let w = v / total;
        let (tb, cap, ok) = match policy.assets.get(asset) {
            Some(x) => (
                format!("{:.1}% ± {:.1}%", x.target * 100.0, x.band * 100.0),
                format!("{:.0}%", x.cap * 100.0),
                (w - x.target).abs() <= x.band + 1e-12 && w <= x.cap + 1e-12,
            ),
            None => ("not allowed".into(), "—".into(), false),
        };
        t.add_row(vec![
            asset.clone(),
            group_thousands(&format!("{v:.0}")),
            format!("{:.2}%", w * 100.0),
            tb,
            cap,
            if ok { "ok".into() } else { "BREACH".into() },
        ]);
    }
    right(&mut t, &[1, 2, 3, 4]);
    println!("{t}");
    println!(
        "total {} · spending now {} a month ({}) · stablecoins cover {:.1} months (floor {:.0})",
        group_thousands(&format!("{total:.0}")),
        group_thousands(&format!("{spend:.0}")),
        match policy.spending {
            SpendingRule::Fixed { .. } => "fixed",
            SpendingRule::Percent { .. } => "percent of value",
            SpendingRule::Endowment { .. } => "endowment rule",
        },
        stable / spend.max(f64::MIN_POSITIVE),
        policy.runway_floor_months
    );
    if violations.is_empty() {
        println!("policy: no breaches");
    } else {
        let mut t = table(&["breached rule", "figures"]);
        for v in &violations {
            t.add_row(vec![v.rule.clone(), v.detail.clone()]);
        }
        println!("{t}");
    }
    if let Some((hv, hc, pv, pc, dd, vols, corr, delta, p)) = risk {
        println!(
            "risk over {} days ({} … {}), current weights: daily 95% VaR {:.2}% (historical) / {:.2}% (normal); CVaR {:.2}% / {:.2}%; max drawdown {:.1}%",
            p.dates.len(),
            p.dates.first().unwrap(),
            p.dates.last().unwrap(),
            hv * 100.0,
            pv * 100.0,
            hc * 100.0,
            pc * 100.0,
            dd * 100.0
        );
        let mut header = vec!["asset".to_string(), "annual vol".to_string()];
        header.extend(p.assets.iter().map(|x| format!("ρ {x}")));
        let mut t = table(&header.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        for (i, asset) in p.assets.iter().enumerate() {
            let mut row = vec![asset.clone(), format!("{:.1}%", vols[i] * 100.0)];
            row.extend(corr[i].iter().map(|c| format!("{c:+.2}")));
            t.add_row(row);
        }
        println!("{t}");
        println!("Ledoit–Wolf shrinkage intensity {delta:.4}");
    }
    Ok(())
}

pub fn run_runway(a: &RunwayArgs) -> Result<()> {
    let (policy, h, prices) = load(&a.t)?;
    let total: f64 = h.values().sum();
    if a.paths == 0 || a.months == 0 {
        bail!("--paths and --months must be at least 1");
    }
    let (mu, sigma) = match (a.mu, a.sigma, &prices) {
        (Some(m), Some(s), _) => (m, s),
        (m, s, Some(p)) => {
            let (_, _, pr) = portfolio(&h, p)?;
            let lr: Vec<f64> = pr.iter().map(|x| (1.0 + x).ln()).collect();
            let mean = lr.iter().sum::<f64>() / lr.len() as f64;
            let sd = (lr.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (lr.len() as f64 - 1.0)).sqrt();
            let _ = mean; // reported by `treasury report`; not extrapolated
            (m.unwrap_or(0.0), s.unwrap_or(sd * 30.4375f64.sqrt()))
        }
        (m, Some(s), None) => (m.unwrap_or(0.0), s),
        _ => bail!("give --prices to estimate volatility, or --sigma"),
    };
    let spec = RunwaySpec {
        value: total,
        mu,
        sigma,
        months: a.months,
        paths: a.paths,
        seed: a.seed,
        floor_months: policy.runway_floor_months,
    };
    let t0 = std::time::Instant::now();
    let r = runway(&policy.spending, &spec);
    let secs = t0.elapsed().as_secs_f64();
    if let Some(p) = &a.t.html {
        write_atomic(p, fan_html(&r, &spec).as_bytes())?;
    }
    if a.t.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"spec": spec, "runway": r}))?);
        return Ok(());
    }
    let mut t = table(&["month", "p5", "p25", "median", "p75", "p95"]);
    for m in (11..a.months).step_by(12).chain(std::iter::once(a.months - 1)).collect::<std::collections::BTreeSet<_>>()
    {
        let f = r.fan[m];
        let mut row = vec![(m + 1).to_string()];
        row.extend(f.iter().map(|v| group_thousands(&format!("{v:.0}"))));
        t.add_row(row);
    }
    right(&mut t, &[0, 1, 2, 3, 4, 5]);
    println!("{t}");
    println!(
        "{} paths × {} months in {secs:.2} s · monthly μ {mu:.4}, σ {sigma:.4} · P(value below {} months of spending) {:.2}% · P(depleted) {:.2}%{}",
        a.paths,
        a.months,
        policy.runway_floor_months,
        r.p_below_floor * 100.0,
        r.p_depleted * 100.0,
        r.median_depletion_month.map(|m| format!(" · median depletion month {m}")).unwrap_or_default()
    );
    Ok(())
}

fn fan_html(r: &Runway, spec: &RunwaySpec) -> String {
    let (w, h) = (800.0, 320.0);
    let max = r.fan.iter().map(|f| f[4]).fold(1.0f64, f64::max);
    let x = |m: usize| 50.0 + w * (m as f64 + 1.0) / spec.months as f64;
    let y = |v: f64| 10.0 + h - h * v / max;
    let band = |lo: usize, hi: usize, colour: &str| {
        let mut pts: Vec<String> = (0..r.fan.len()).map(|m| format!("{:.1},{:.1}", x(m), y(r.fan[m][hi]))).collect();
        pts.extend((0..r.fan.len()).rev().map(|m| format!("{:.1},{:.1}", x(m), y(r.fan[m][lo]))));
        format!("<polygon points=\"{}\" fill=\"{colour}\" stroke=\"none\"/>", pts.join(" "))
    };
    let median: Vec<String> = (0..r.fan.len()).map(|m| format!("{:.1},{:.1}", x(m), y(r.fan[m][2]))).collect();
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
        group_thousands(&format!("{max:.0}"))
    );
    let summary = vec![
        format!("start {:.0} · monthly μ {:.4} σ {:.4} · seed {}", spec.value, spec.mu, spec.sigma, spec.seed),
        format!(
            "P(below the {}-month floor) {:.2}% · P(depleted) {:.2}%",
            spec.floor_months,
            r.p_below_floor * 100.0,
            r.p_depleted * 100.0
        ),
    ];
    crate::html::page("allonet treasury runway", &summary, &svg, &[], &[])
}

pub fn run_stress(a: &TreasuryArgs) -> Result<()> {
    let (policy, h, _) = load(a)?;
    let spend = monthly_spending(&policy, h.values().sum());
    let results: Vec<_> = builtin(&policy, &h).iter().map(|s| apply(&policy, &h, s, spend)).collect();
    if let Some(path) = &a.html {
        let bars: Vec<crate::html::Bar> = results
            .iter()
            .map(|r| crate::html::Bar {
                label: r.scenario.clone(),
                value: r.before - r.after,
                text: format!("−{:.1}% · {} breach(es)", (1.0 - r.after / r.before) * 100.0, r.violations.len()),
            })
            .collect();
        let rows: Vec<Vec<String>> = results
            .iter()
            .flat_map(|r| r.violations.iter().map(move |v| vec![r.scenario.clone(), v.rule.clone(), v.detail.clone()]))
            .collect();
        write_atomic(
            path,
            crate::html::report(
                "allonet treasury stress",
                &[],
                "Loss per scenario",
                &bars,
                &["scenario", "breached rule", "figures"],
                &rows,
            )
            .as_bytes(),
        )?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    let mut t = table(&["scenario", "before", "after", "change", "breaches it causes"]);
    for r in &results {
        t.add_row(vec![
            r.scenario.clone(),
            group_thousands(&format!("{:.0}", r.before)),
            group_thousands(&format!("{:.0}", r.after)),
            format!("{:+.1}%", (r.after / r.before - 1.0) * 100.0),
            if r.violations.is_empty() {
                "none".into()
            } else {
                r.violations.iter().map(|v| v.rule.clone()).collect::<Vec<_>>().join("; ")
            },
        ]);
    }
    right(&mut t, &[1, 2, 3]);
    println!("{t}");
    Ok(())
}
