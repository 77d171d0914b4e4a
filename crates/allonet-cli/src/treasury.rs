//! `allonet treasury …`: policy checks, risk, runway and stress tests for a DAO treasury.
//!
//! Arguments, files and printing only: every figure comes from `allonet_engine::treasury`, every table and
//! chart from `allonet_report::treasury`.

use crate::output::write_atomic;
use allonet_core::Table;
use allonet_engine::treasury::{self as tr, Benchmark, Holdings, Method, Objective, RunwayOptions};
use allonet_report::treasury as show;
use allonet_treasury::policy::Policy;
use allonet_treasury::risk::{prices_from_table, Prices};
use anyhow::{bail, Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use std::path::{Path, PathBuf};

/// `allonet treasury …`.
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

/// The policy, the holdings and (optionally) a price history.
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

/// The policy and a price history, for optimising and backtesting.
#[derive(clap::Args)]
pub struct PricedArgs {
    /// Policy TOML (its caps bound the optimal weights; its targets and bands are backtested).
    #[arg(long)]
    pub policy: PathBuf,
    /// Daily prices CSV: date, then one column per asset.
    #[arg(long)]
    pub prices: PathBuf,
    /// Periods per year of the prices (365 for crypto, 252 for equities).
    #[arg(long, default_value_t = 365.0)]
    pub frequency: f64,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// HTML report with charts: allocation (optimize), value and drawdown (backtest).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `allonet treasury optimize`.
#[derive(clap::Args)]
pub struct OptimizeArgs {
    #[command(flatten)]
    p: PricedArgs,
    /// Method.
    #[arg(long, default_value = "min-vol", value_parser = methods())]
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
}

/// `allonet treasury rebalance`.
#[derive(clap::Args)]
pub struct RebalanceArgs {
    #[command(flatten)]
    t: TreasuryArgs,
    /// Skip trades smaller than this.
    #[arg(long, default_value_t = 1000.0)]
    pub min_trade: f64,
}

/// `allonet treasury backtest`.
#[derive(clap::Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    p: PricedArgs,
    /// Benchmark weights, e.g. ETH=0.6,USDC=0.4 (rebalanced monthly).
    #[arg(long, default_value = "ETH=0.6,USDC=0.4")]
    pub benchmark: String,
}

/// `allonet treasury runway`.
#[derive(clap::Args)]
pub struct RunwayArgs {
    #[command(flatten)]
    t: TreasuryArgs,
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

/// `--method`: the engine's optimisers by name.
fn methods() -> impl TypedValueParser<Value = Method> {
    PossibleValuesParser::new(Method::ALL.map(Method::name)).try_map(|s| s.parse::<Method>())
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
    let (policy, h) = (read_policy(&a.policy)?, tr::holdings_from_table(&Table::read(&a.holdings)?)?);
    Ok((policy, h, a.prices.as_deref().map(read_prices).transpose()?))
}

/// Writes the page `page` builds to `path`, when one is asked for.
pub(crate) fn html(path: &Option<PathBuf>, page: impl FnOnce() -> String) -> Result<()> {
    path.as_ref().map_or(Ok(()), |p| write_atomic(p, page().as_bytes()))
}

/// Prints the JSON form when `--json` made one, else `text` (whose lines end in newlines).
pub(crate) fn print(json: Option<serde_json::Result<String>>, text: impl FnOnce() -> String) -> Result<()> {
    match json {
        Some(j) => println!("{}", j?),
        None => print!("{}", text()),
    }
    Ok(())
}

/// `allonet treasury optimize`: optimal weights within the policy.
pub fn run_optimize(a: &OptimizeArgs) -> Result<()> {
    let policy = read_policy(&a.p.policy)?;
    let problem = tr::Problem::new(&policy, &read_prices(&a.p.prices)?, a.p.frequency)?;
    if matches!(a.method, Method::EfficientReturn | Method::EfficientRisk) && a.target.is_none() {
        bail!("--target is needed for {}", a.method.name());
    }
    let o = problem.solve(&Objective { method: a.method, target: a.target, rf: a.rf, delta: a.delta })?;
    html(&a.p.html, || show::optimize_html(&policy, &o))?;
    print(a.p.json.then(|| serde_json::to_value(&o).map(|v| v.to_string())), || {
        show::optimize(&policy, &problem, &o, a.rf)
    })
}

/// `allonet treasury rebalance`: the trades back inside the bands.
pub fn run_rebalance(a: &RebalanceArgs) -> Result<()> {
    let (policy, h, prices) = load(&a.t)?;
    let plan = tr::rebalance(&policy, &h, prices.as_ref(), a.min_trade);
    html(&a.t.html, || show::rebalance_html(&plan))?;
    print(a.t.json.then(|| serde_json::to_string_pretty(&plan)), || show::rebalance(&plan))
}

/// `allonet treasury backtest`: the policy against a benchmark.
pub fn run_backtest(a: &BacktestArgs) -> Result<()> {
    let (policy, p) = (read_policy(&a.p.policy)?, read_prices(&a.p.prices)?);
    let r = tr::backtest(&policy, &p, &Benchmark { spec: &a.benchmark, name: "--benchmark" }, a.p.frequency)?;
    html(&a.p.html, || show::backtest_html(&r, &a.benchmark))?;
    print(a.p.json.then(|| serde_json::to_value(&r).map(|v| v.to_string())), || show::backtest(&r, &a.benchmark))
}

/// `allonet treasury report`: the treasury against its policy.
pub fn run_report(a: &TreasuryArgs) -> Result<()> {
    let (policy, h, prices) = load(a)?;
    let (r, lines) = (tr::report(&policy, &h, prices.as_ref())?, tr::allocation(&policy, &h));
    html(&a.html, || show::report_html(&lines, &r))?;
    print(a.json.then(|| serde_json::to_value(&r).map(|v| format!("{v:#}"))), || show::report(&policy, &lines, &r))
}

/// `allonet treasury runway`: runway by Monte Carlo.
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
    let r = tr::runway(&policy, &h, prices.as_ref(), &o)?;
    let secs = t0.elapsed().as_secs_f64();
    html(&a.t.html, || show::runway_html(&r))?;
    print(a.t.json.then(|| serde_json::to_value(&r).map(|v| format!("{v:#}"))), || show::runway(&r, secs))
}

/// `allonet treasury stress`: the stress scenarios.
pub fn run_stress(a: &TreasuryArgs) -> Result<()> {
    let (policy, h, _) = load(a)?;
    let results = tr::stress(&policy, &h);
    html(&a.html, || show::stress_html(&results))?;
    print(a.json.then(|| serde_json::to_string_pretty(&results)), || show::stress(&results))
}
