//! The treasury flows: typed inputs (policy, holdings, prices), the report against the policy, runway,
//! stress, optimal weights, rebalancing, backtests, and the check of a payout before it leaves the treasury.
//!
//! The formulas live in `allonet-treasury`; this module decides which of them a question needs, with which
//! settings, and returns plain serialisable results. The caller reads the files and prints. Every `Serialize`
//! result below serialises to the JSON `allonet treasury … --json` prints (keys sorted, as a
//! `serde_json::Value` holds them); fields marked "not in the JSON form" are there for tables and charts.

use crate::EngineError;
use allonet_core::{InputError, Table};
use allonet_treasury::optim::{self, Inputs, Limits};
use allonet_treasury::policy::{AssetRule, Policy, Violation};
use allonet_treasury::rebalance::{self, Plan, Rebalancing};
use allonet_treasury::risk::{
    correlation, historical_var_cvar, ledoit_wolf, max_drawdown, parametric_var_cvar, portfolio_returns, returns,
    sample_cov, Prices,
};
use allonet_treasury::spending::{self, spending_path, Runway, RunwaySpec};
use allonet_treasury::stress::{self, StressResult};
use serde::Serialize;
use std::collections::BTreeMap;

/// Holdings: asset → value in the unit of account (e.g. USD).
pub type Holdings = BTreeMap<String, f64>;

/// Days per year used to annualise daily risk figures of crypto prices (markets that never close).
pub const DAYS_PER_YEAR: f64 = 365.0;

/// Mean days per month (365.25 / 12), to scale a daily volatility to a monthly one.
pub const DAYS_PER_MONTH: f64 = 30.4375;

/// Parses and validates a TOML policy; `name` (the file) is named in the error.
pub fn policy_from_toml(name: &str, text: &str) -> Result<Policy, InputError> {
    Policy::from_toml(name, text).map_err(|e| InputError::file(e.file, e.message))
}

/// Holdings from a CSV table: an `asset` (or `symbol`) column and a `value_usd` (or `value`, `amount`)
/// column. Refuses a missing column, a negative or non-numeric value and an asset listed twice, naming the
/// line and column.
pub fn holdings_from_table(t: &Table) -> Result<Holdings, InputError> {
    let ac = t.require_one_of(&["asset", "symbol"], "asset")?;
    let vc = t.require_one_of(&["value_usd", "value", "amount"], "value")?;
    let mut h = BTreeMap::new();
    for row in t.rows() {
        let v = t.parse_non_negative(row, vc)?;
        if h.insert(row.get(ac).to_string(), v).is_some() {
            return Err(t.error(row, ac, format!("`{}` appears twice", row.get(ac))));
        }
    }
    Ok(h)
}

/// This month's spending under the policy's rule for a treasury worth `total`: the first step of
/// [`spending_path`] (for the endowment rule, Yale's S₁ = w·S₀·(1 + π) + (1 − w)·r·V).
pub fn monthly_spending(policy: &Policy, total: f64) -> f64 {
    spending_path(&policy.spending, &[total])[0]
}

/// Months of spending the stablecoins held cover (stable value / monthly spending).
pub fn stable_months(policy: &Policy, holdings: &Holdings, monthly_spending: f64) -> f64 {
    let stable: f64 =
        holdings.iter().filter(|(n, _)| policy.assets.get(*n).is_some_and(|x| x.stable)).map(|(_, v)| v).sum();
    stable / monthly_spending.max(f64::MIN_POSITIVE)
}

/// For each policy asset, its column in the price file; and its cap. In the policy's (sorted) order.
pub fn policy_columns(policy: &Policy, p: &Prices) -> Result<(Vec<usize>, Vec<f64>), EngineError> {
    let mut cols = Vec::new();
    let mut caps = Vec::new();
    for (name, rule) in &policy.assets {
        cols.push(price_column(p, name)?);
        caps.push(rule.cap);
    }
    Ok((cols, caps))
}

fn price_column(p: &Prices, asset: &str) -> Result<usize, EngineError> {
    p.assets
        .iter()
        .position(|a| a == asset)
        .ok_or_else(|| EngineError::Config(format!("the price file has no column for `{asset}`")))
}

/// Held assets as a portfolio over the price columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Portfolio {
    /// Weight per price column (value / total; 0 for columns not held).
    pub weights: Vec<f64>,
    /// Daily simple returns per price column.
    pub asset_returns: Vec<Vec<f64>>,
    /// The portfolio's daily returns at these fixed weights.
    pub returns: Vec<f64>,
}

/// The holdings as weights over the price columns and their daily returns; every held asset needs a column.
pub fn portfolio(holdings: &Holdings, p: &Prices) -> Result<Portfolio, EngineError> {
    let total: f64 = holdings.values().sum();
    let r = returns(p);
    let mut w = vec![0.0; p.assets.len()];
    for (asset, v) in holdings {
        w[price_column(p, asset)?] = v / total;
    }
    let pr = portfolio_returns(&r, &w);
    Ok(Portfolio { weights: w, asset_returns: r, returns: pr })
}

/// One held asset against its rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AssetLine {
    /// Asset.
    pub asset: String,
    /// Value held.
    pub value: f64,
    /// Share of the treasury.
    pub weight: f64,
    /// The policy's rule for it (`None`: not an allowed asset).
    pub rule: Option<AssetRule>,
    /// Inside target ± band and under the cap (false for an asset the policy does not allow).
    pub within_policy: bool,
}

/// Every held asset with its weight and whether it is inside its band and cap, in asset order.
pub fn allocation(policy: &Policy, holdings: &Holdings) -> Vec<AssetLine> {
    let total: f64 = holdings.values().sum();
    holdings
        .iter()
        .map(|(asset, v)| {
            let w = v / total;
            let rule = policy.assets.get(asset).cloned();
            let within_policy =
                rule.as_ref().is_some_and(|x| (w - x.target).abs() <= x.band + 1e-12 && w <= x.cap + 1e-12);
            AssetLine { asset: asset.clone(), value: *v, weight: w, rule, within_policy }
        })
        .collect()
}

/// Risk of the current weights from the price history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Risk {
    /// Daily 95% value at risk, historical (a positive loss).
    pub daily_var95_historical: f64,
    /// Daily 95% conditional value at risk (expected shortfall), historical.
    pub daily_cvar95_historical: f64,
    /// Daily 95% value at risk under a normal fit.
    pub daily_var95_normal: f64,
    /// Daily 95% conditional value at risk under a normal fit.
    pub daily_cvar95_normal: f64,
    /// Largest fall from a running peak of the portfolio's value.
    pub max_drawdown: f64,
    /// Annualised volatility per price column (√(365 · daily variance)).
    pub annual_vol: BTreeMap<String, f64>,
    /// Correlation matrix of daily returns, in `assets` order.
    pub correlation: Vec<Vec<f64>>,
    /// Ledoit–Wolf shrinkage intensity of the covariance.
    pub ledoit_wolf_shrinkage: f64,
    /// Price columns.
    pub assets: Vec<String>,
    /// First date of the prices.
    pub from: String,
    /// Last date of the prices.
    pub to: String,
    /// Dates of prices (not in the JSON form).
    #[serde(skip_serializing)]
    pub days: usize,
}

/// Risk of the holdings' current weights over the price history: historical and normal VaR / CVaR at 95%
/// (`allonet_treasury::risk`), maximum drawdown of the daily-rebalanced portfolio, annual volatilities,
/// correlations, and the Ledoit–Wolf shrinkage intensity (Ledoit & Wolf, "Honey, I shrunk the sample
/// covariance matrix", 2004).
pub fn risk(holdings: &Holdings, p: &Prices) -> Result<Risk, EngineError> {
    let Portfolio { asset_returns: r, returns: pr, .. } = portfolio(holdings, p)?;
    let (hv, hc) = historical_var_cvar(&pr, 0.95);
    let (pv, pc) = parametric_var_cvar(&pr, 0.95);
    let mut value = vec![1.0];
    for x in &pr {
        value.push(value.last().unwrap() * (1.0 + x));
    }
    let cov = sample_cov(&r);
    let (_, delta) = ledoit_wolf(&r);
    let vols = (0..r.len()).map(|i| (cov[i][i] * DAYS_PER_YEAR).sqrt());
    Ok(Risk {
        daily_var95_historical: hv,
        daily_cvar95_historical: hc,
        daily_var95_normal: pv,
        daily_cvar95_normal: pc,
        max_drawdown: max_drawdown(&value),
        annual_vol: p.assets.iter().cloned().zip(vols).collect(),
        correlation: correlation(&cov),
        ledoit_wolf_shrinkage: delta,
        assets: p.assets.clone(),
        from: p.dates.first().cloned().unwrap_or_default(),
        to: p.dates.last().cloned().unwrap_or_default(),
        days: p.dates.len(),
    })
}

/// The treasury against its policy now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Total value held.
    pub total: f64,
    /// This month's spending under the rule.
    pub monthly_spending: f64,
    /// Months of spending the stablecoins cover.
    pub stable_months: f64,
    /// Every breach of the policy.
    pub violations: Vec<Violation>,
    /// Risk from the price history, when prices are given.
    pub risk: Option<Risk>,
}

/// The report: total, spending, stablecoin cover, breaches and (with prices) risk.
pub fn report(policy: &Policy, holdings: &Holdings, prices: Option<&Prices>) -> Result<Report, EngineError> {
    let total: f64 = holdings.values().sum();
    let spend = monthly_spending(policy, total);
    Ok(Report {
        total,
        monthly_spending: spend,
        stable_months: stable_months(policy, holdings, spend),
        violations: policy.violations(holdings, spend),
        risk: prices.map(|p| risk(holdings, p)).transpose()?,
    })
}

/// Settings of a runway simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct RunwayOptions {
    /// Months simulated (at least 1).
    pub months: usize,
    /// Paths (at least 1).
    pub paths: usize,
    /// Seed of the ChaCha streams.
    pub seed: u64,
    /// Monthly expected log return (default 0: past returns are not extrapolated).
    pub mu: Option<f64>,
    /// Monthly log-return volatility (default: estimated from the prices).
    pub sigma: Option<f64>,
}

/// A runway simulation: its settings and outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunwayReport {
    /// The settings, with μ and σ as used.
    pub spec: RunwaySpec,
    /// Fan chart and probabilities.
    pub runway: Runway,
}

/// The Monte Carlo settings for the holdings: start value, μ (default 0) and σ. Without a given σ, σ is the
/// sample standard deviation of the portfolio's daily log returns scaled by √(days per month), the
/// square-root-of-time rule for independent returns (Hull, *Options, Futures, and Other Derivatives*,
/// "Estimating volatility from historical data"). Refuses zero paths or months, and a missing σ without
/// prices.
pub fn runway_spec(
    policy: &Policy,
    holdings: &Holdings,
    prices: Option<&Prices>,
    o: &RunwayOptions,
) -> Result<RunwaySpec, EngineError> {
    if o.paths == 0 || o.months == 0 {
        return Err(EngineError::Config("a runway needs at least one path and one month".into()));
    }
    let (mu, sigma) = match (o.mu, o.sigma, prices) {
        (Some(m), Some(s), _) => (m, s),
        (m, s, Some(p)) => {
            let pr = portfolio(holdings, p)?.returns;
            let lr: Vec<f64> = pr.iter().map(|x| (1.0 + x).ln()).collect();
            let mean = lr.iter().sum::<f64>() / lr.len() as f64;
            let sd = (lr.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (lr.len() as f64 - 1.0)).sqrt();
            (m.unwrap_or(0.0), s.unwrap_or(sd * DAYS_PER_MONTH.sqrt()))
        }
        (m, Some(s), None) => (m.unwrap_or(0.0), s),
        _ => return Err(EngineError::Config("no prices to estimate the volatility from, and no sigma given".into())),
    };
    Ok(RunwaySpec {
        value: holdings.values().sum(),
        mu,
        sigma,
        months: o.months,
        paths: o.paths,
        seed: o.seed,
        floor_months: policy.runway_floor_months,
    })
}

/// Runway by Monte Carlo under the policy's spending rule ([`spending::runway`], seeded and
/// thread-count independent), with the settings of [`runway_spec`].
pub fn runway(
    policy: &Policy,
    holdings: &Holdings,
    prices: Option<&Prices>,
    o: &RunwayOptions,
) -> Result<RunwayReport, EngineError> {
    let spec = runway_spec(policy, holdings, prices, o)?;
    let runway = spending::runway(&policy.spending, &spec);
    Ok(RunwayReport { spec, runway })
}

/// The built-in stress scenarios applied to the holdings, each with the breaches it causes at this month's
/// spending.
pub fn stress(policy: &Policy, holdings: &Holdings) -> Vec<StressResult> {
    let spend = monthly_spending(policy, holdings.values().sum());
    stress::builtin(policy, holdings).iter().map(|s| stress::apply(policy, holdings, s, spend)).collect()
}

/// The trades that bring the holdings back inside the bands (`allonet_treasury::rebalance`); with prices,
/// the tracking error is priced with the sample covariance annualised by 365 days.
pub fn rebalance(policy: &Policy, holdings: &Holdings, prices: Option<&Prices>, min_trade: f64) -> Plan {
    let cov = prices.map(|p| {
        let c: Vec<Vec<f64>> = sample_cov(&returns(p))
            .into_iter()
            .map(|row| row.into_iter().map(|v| v * DAYS_PER_YEAR).collect())
            .collect();
        (p.assets.clone(), c)
    });
    rebalance::rebalance(policy, holdings, min_trade, cov.as_ref().map(|(n, c)| (n.as_slice(), c.as_slice())))
}

/// A portfolio optimiser (`allonet_treasury::optim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Method {
    /// Minimum volatility.
    MinVol,
    /// Maximum Sharpe ratio at the risk-free rate.
    MaxSharpe,
    /// Minimum volatility for a target return.
    EfficientReturn,
    /// Maximum return for a target volatility.
    EfficientRisk,
    /// Maximum quadratic utility μᵀw − (δ/2)·wᵀΣw.
    Utility,
    /// Minimum CVaR at 95% over the historical daily scenarios.
    MinCvar,
    /// Equal risk contributions (ignores caps).
    RiskParity,
    /// Hierarchical risk parity (ignores caps).
    Hrp,
}

impl Method {
    /// Every optimiser, in the order front ends list them.
    pub const ALL: [Method; 8] = [
        Method::MinVol,
        Method::MaxSharpe,
        Method::EfficientReturn,
        Method::EfficientRisk,
        Method::Utility,
        Method::MinCvar,
        Method::RiskParity,
        Method::Hrp,
    ];

    /// The optimiser's name as users write it: `min-vol`, `max-sharpe`, `efficient-return`, `efficient-risk`,
    /// `utility`, `min-cvar`, `risk-parity`, `hrp`.
    pub fn name(self) -> &'static str {
        match self {
            Method::MinVol => "min-vol",
            Method::MaxSharpe => "max-sharpe",
            Method::EfficientReturn => "efficient-return",
            Method::EfficientRisk => "efficient-risk",
            Method::Utility => "utility",
            Method::MinCvar => "min-cvar",
            Method::RiskParity => "risk-parity",
            Method::Hrp => "hrp",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = EngineError;

    /// The optimiser of a [`Method::name`]; refuses any other word, listing the names.
    fn from_str(s: &str) -> Result<Method, EngineError> {
        Method::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            EngineError::Config(format!("no optimiser `{s}`; one of {}", names.join(", ")))
        })
    }
}

/// Settings of an optimisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    /// The optimiser.
    pub method: Method,
    /// Target annual return (efficient return) or volatility (efficient risk).
    pub target: Option<f64>,
    /// Annual risk-free rate (max Sharpe, and the reported Sharpe ratio).
    pub rf: f64,
    /// Risk aversion δ (utility).
    pub delta: f64,
}

/// The policy's assets as an optimisation problem: PyPortfolioOpt's inputs from the prices and the policy's
/// caps and minimum stablecoin share as limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The policy's assets, in its (sorted) order.
    pub assets: Vec<String>,
    /// Annual expected returns and covariance of those assets.
    pub inputs: Inputs,
    /// Caps (upper bounds) and the minimum stablecoin share.
    pub limits: Limits,
    /// Daily simple returns per asset.
    pub returns: Vec<Vec<f64>>,
}

/// Optimal weights and their figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Optimized {
    /// The optimiser.
    pub method: Method,
    /// Weight per asset.
    pub weights: BTreeMap<String, f64>,
    /// Expected annual return, from history (not a forecast).
    pub expected_return: f64,
    /// Annual volatility.
    pub volatility: f64,
    /// Sharpe ratio at the risk-free rate.
    pub sharpe: f64,
    /// Assets whose weight exceeds their cap by more than 1e-6 (only methods that ignore caps).
    pub over_cap: Vec<String>,
}

impl Problem {
    /// The problem for the policy's assets over the prices (`frequency`: periods per year, 365 for crypto);
    /// every policy asset needs a price column.
    pub fn new(policy: &Policy, p: &Prices, frequency: f64) -> Result<Problem, EngineError> {
        let (cols, caps) = policy_columns(policy, p)?;
        let assets: Vec<String> = policy.assets.keys().cloned().collect();
        let sub: Vec<Vec<f64>> = cols.iter().map(|&c| p.prices[c].clone()).collect();
        let inputs = optim::pypfopt_inputs(&assets, &sub, frequency);
        let stable: Vec<bool> = policy.assets.values().map(|r| r.stable).collect();
        let limits = Limits {
            upper: caps,
            min_groups: if policy.min_stable_share > 0.0 { vec![(stable, policy.min_stable_share)] } else { vec![] },
        };
        let returns = sub.iter().map(|s| s.windows(2).map(|w| w[1] / w[0] - 1.0).collect()).collect();
        Ok(Problem { assets, inputs, limits, returns })
    }

    /// Annual volatility per asset (√ of the covariance's diagonal).
    pub fn volatilities(&self) -> Vec<f64> {
        (0..self.assets.len()).map(|i| self.inputs.cov[i][i].sqrt()).collect()
    }

    /// Solves for the weights (Markowitz 1952 and the methods of `allonet_treasury::optim`, PyPortfolioOpt's
    /// formulations) and reports expected return, volatility and Sharpe ratio. Efficient return and
    /// efficient risk need a target.
    pub fn solve(&self, o: &Objective) -> Result<Optimized, EngineError> {
        let (x, lim) = (&self.inputs, &self.limits);
        let target = |what: &str| o.target.ok_or_else(|| EngineError::Config(format!("{what} needs a target")));
        let w = match o.method {
            Method::MinVol => optim::min_volatility(x, lim),
            Method::MaxSharpe => optim::max_sharpe(x, o.rf, lim),
            Method::EfficientReturn => optim::efficient_return(x, target("efficient return")?, lim),
            Method::EfficientRisk => optim::efficient_risk(x, target("efficient risk")?, lim),
            Method::Utility => optim::max_quadratic_utility(x, o.delta, lim),
            Method::MinCvar => {
                let r = &self.returns;
                let scen: Vec<Vec<f64>> = (0..r[0].len()).map(|t| r.iter().map(|s| s[t]).collect()).collect();
                optim::min_cvar(&scen, 0.95, lim)
            }
            Method::RiskParity => Ok(optim::risk_parity(&x.cov)),
            Method::Hrp => Ok(optim::hrp(&optim::pairwise_cov(&self.returns), &optim::pairwise_corr(&self.returns))),
        }
        .map_err(|e| EngineError::Config(e.to_string()))?;
        let (ret, vol, sharpe) = optim::performance(x, &w, o.rf);
        let over_cap =
            self.assets.iter().zip(&w).zip(&lim.upper).filter(|((_, w), c)| **w > **c + 1e-6).map(|((n, _), _)| n);
        Ok(Optimized {
            method: o.method,
            weights: self.assets.iter().cloned().zip(w.iter().copied()).collect(),
            expected_return: ret,
            volatility: vol,
            sharpe,
            over_cap: over_cap.cloned().collect(),
        })
    }
}

/// One backtested portfolio.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Backtested {
    /// Compound annual growth rate.
    pub cagr: f64,
    /// Annualised volatility of daily returns.
    pub volatility: f64,
    /// Maximum drawdown.
    pub max_drawdown: f64,
    /// Rebalances made.
    pub rebalances: usize,
    /// Total turnover (sum of |traded weight|).
    pub turnover: f64,
    /// Value per date, starting at 1 (not in the JSON form).
    #[serde(skip_serializing)]
    pub values: Vec<f64>,
    /// Drawdown per date, value / running peak − 1 (not in the JSON form).
    #[serde(skip_serializing)]
    pub drawdowns: Vec<f64>,
}

impl From<rebalance::Backtest> for Backtested {
    fn from(b: rebalance::Backtest) -> Self {
        let mut peak = f64::NEG_INFINITY;
        let drawdowns = b
            .values
            .iter()
            .map(|&x| {
                peak = peak.max(x);
                x / peak - 1.0
            })
            .collect();
        Backtested {
            cagr: b.cagr,
            volatility: b.volatility,
            max_drawdown: b.max_drawdown,
            rebalances: b.rebalances,
            turnover: b.turnover,
            values: b.values,
            drawdowns,
        }
    }
}

/// The policy's targets against a benchmark over the same prices.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BacktestReport {
    /// First date.
    pub from: String,
    /// Last date.
    pub to: String,
    /// The policy's targets, rebalanced when a weight leaves its band.
    pub policy: Backtested,
    /// The benchmark, rebalanced monthly.
    pub benchmark: Backtested,
    /// Dates (not in the JSON form).
    #[serde(skip_serializing)]
    pub days: usize,
}

/// A benchmark portfolio written `ASSET=WEIGHT,…` (e.g. `ETH=0.6,USDC=0.4`), weights summing to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Benchmark<'a> {
    /// The weights, `ASSET=WEIGHT,…`.
    pub spec: &'a str,
    /// What the caller calls it, to start error messages (the CLI: `--benchmark`).
    pub name: &'a str,
}

impl Benchmark<'_> {
    /// Weight per price column; refuses a part without `=`, an asset without prices, a weight that is not a
    /// number and weights that do not sum to 1 (within 1e-9). A repeated asset keeps its last weight.
    pub fn weights(&self, p: &Prices) -> Result<Vec<f64>, EngineError> {
        let name = self.name;
        let mut bench = vec![0.0; p.assets.len()];
        for part in self.spec.split(',') {
            let (n, w) =
                part.split_once('=').ok_or_else(|| EngineError::Config(format!("{name}: expected ASSET=WEIGHT,…")))?;
            let c = p
                .assets
                .iter()
                .position(|x| x == n.trim())
                .ok_or_else(|| EngineError::Config(format!("{name}: no price column `{n}`")))?;
            bench[c] =
                w.trim().parse().map_err(|e| EngineError::Config(format!("{name}: `{w}` is not a number: {e}")))?;
        }
        if (bench.iter().sum::<f64>() - 1.0).abs() > 1e-9 {
            return Err(EngineError::Config(format!("{name} weights must sum to 1")));
        }
        Ok(bench)
    }
}

/// Backtests the policy's targets with band rebalancing against the benchmark rebalanced monthly
/// (`allonet_treasury::rebalance::backtest`); `frequency` is periods per year of the prices.
pub fn backtest(
    policy: &Policy,
    p: &Prices,
    benchmark: &Benchmark<'_>,
    frequency: f64,
) -> Result<BacktestReport, EngineError> {
    let (cols, _) = policy_columns(policy, p)?;
    let mut target = vec![0.0; p.assets.len()];
    let mut bands = vec![1.0; p.assets.len()];
    for (rule, &c) in policy.assets.values().zip(&cols) {
        target[c] = rule.target;
        bands[c] = rule.band;
    }
    let bench = benchmark.weights(p)?;
    let pol = rebalance::backtest(p, &target, &Rebalancing::Bands(bands), frequency);
    let ben = rebalance::backtest(p, &bench, &Rebalancing::Monthly, frequency);
    Ok(BacktestReport {
        from: p.dates.first().cloned().unwrap_or_default(),
        to: p.dates.last().cloned().unwrap_or_default(),
        policy: pol.into(),
        benchmark: ben.into(),
        days: p.dates.len(),
    })
}

/// The treasury after a payout: what the policy says about it, and its runway.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PayoutCheck {
    /// Holdings after the payout.
    pub holdings: Holdings,
    /// Total value after the payout.
    pub total: f64,
    /// This month's spending under the rule, at the value after the payout.
    pub monthly_spending: f64,
    /// Every breach of the policy after the payout (empty: the policy allows it).
    pub violations: Vec<Violation>,
    /// Runway settings, from the value after the payout.
    pub spec: RunwaySpec,
    /// Runway after the payout.
    pub runway: Runway,
}

/// Checks a payout of `amount` (unit of account) from `asset` before it leaves the treasury: the holdings
/// after it, the spending rule's spending, every policy breach ([`Policy::violations`]) and the runway by
/// Monte Carlo ([`runway`]). Refuses an asset not held, and an amount that is negative, not finite or more
/// than is held.
pub fn check_payout(
    policy: &Policy,
    holdings: &Holdings,
    asset: &str,
    amount: f64,
    prices: Option<&Prices>,
    o: &RunwayOptions,
) -> Result<PayoutCheck, EngineError> {
    let held = *holdings
        .get(asset)
        .ok_or_else(|| EngineError::Config(format!("the treasury holds no `{asset}` to pay from")))?;
    if !(amount.is_finite() && amount >= 0.0) {
        return Err(EngineError::Config(format!("the payout {amount} must be a finite amount, zero or more")));
    }
    if amount > held {
        return Err(EngineError::Config(format!("the payout of {amount} {asset} is more than the {held} held")));
    }
    let mut after = holdings.clone();
    *after.get_mut(asset).expect("checked above") -= amount;
    let total: f64 = after.values().sum();
    let spend = monthly_spending(policy, total);
    let violations = policy.violations(&after, spend);
    let RunwayReport { spec, runway } = runway(policy, &after, prices, o)?;
    Ok(PayoutCheck { holdings: after, total, monthly_spending: spend, violations, spec, runway })
}

#[cfg(test)]
mod tests {
    use super::*;
    use allonet_treasury::risk::prices_from_table;

    const POLICY: &str = include_str!("../../../examples/treasury/policy.toml");
    const HOLDINGS: &[u8] = include_bytes!("../../../examples/treasury/holdings.csv");

    fn example() -> (Policy, Holdings) {
        let policy = policy_from_toml("policy.toml", POLICY).unwrap();
        let h = holdings_from_table(&Table::from_bytes("holdings.csv", HOLDINGS).unwrap()).unwrap();
        (policy, h)
    }

    fn prices(csv: &str) -> Prices {
        prices_from_table(&Table::from_bytes("prices.csv", csv.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn bad_holdings_and_policies_are_refused_by_place() {
        let read = |csv: &str| holdings_from_table(&Table::from_bytes("h.csv", csv.as_bytes()).unwrap());
        let e = read("asset,value\nETH,5\nUSDC,1\nETH,6\n").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(4), Some("asset")));
        assert_eq!(e.to_string(), "h.csv:4: column `asset`: `ETH` appears twice");
        let e = read("asset,value\nETH,-5\n").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(2), Some("value")));
        let e = read("coin,value\nETH,5\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = policy_from_toml("p.toml", &POLICY.replace("target = 0.15", "target = 0.25")).unwrap_err();
        assert_eq!(e.file, "p.toml");
        assert!(e.to_string().contains("sum to 1.1"), "{e}");
        let (policy, h) = example();
        let e = report(&policy, &h, Some(&prices("date,ETH,USDC\n2020-01-01,1,1\n2020-01-02,2,1\n2020-01-03,3,1\n")))
            .unwrap_err();
        assert_eq!(e.to_string(), "the price file has no column for `BTC`");
    }

    #[test]
    fn report_figures_match_the_endowment_rule_and_known_risk() {
        let (policy, h) = example();
        // Yale's rule, first month: 0.8 · 60,000 · 1.0025 + 0.2 · 0.004 · 11,000,000 = 48,120 + 8,800
        assert!((monthly_spending(&policy, 11_000_000.0) - 56_920.0).abs() < 1e-9);
        let r = report(&policy, &h, None).unwrap();
        assert_eq!(r.total, 11_000_000.0);
        assert!((r.stable_months - 4_100_000.0 / 56_920.0).abs() < 1e-9);
        let rules: Vec<&str> = r.violations.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(rules, ["cap of ETH", "band of ETH"]);
        let eth = allocation(&policy, &h).into_iter().find(|l| l.asset == "ETH").unwrap();
        assert!(!eth.within_policy && (eth.weight - 5.6 / 11.0).abs() < 1e-15);
        // one asset that doubles then halves: drawdown 50%, returns +100% / −50%
        let only: Holdings = [("X".to_string(), 1.0)].into_iter().collect();
        let risk = risk(&only, &prices("date,X\n2020-01-01,1\n2020-01-02,2\n2020-01-03,1\n")).unwrap();
        assert_eq!(risk.max_drawdown, 0.5);
        assert_eq!((risk.from.as_str(), risk.to.as_str(), risk.days), ("2020-01-01", "2020-01-03", 3));
        // sample variance of (1, −0.5) is 1.125 a day
        assert!((risk.annual_vol["X"] - (1.125f64 * 365.0).sqrt()).abs() < 1e-12);
        // stress: a USDC depeg to 0.88 costs 12% of the USDC held
        let s = stress(&policy, &h);
        assert_eq!(s[0].scenario, "USDC depeg");
        assert!((s[0].after - (11_000_000.0 - 0.12 * 3_200_000.0)).abs() < 1e-6);
    }

    #[test]
    fn runway_needs_a_volatility_and_estimates_it_from_prices() {
        let (policy, h) = example();
        let o = RunwayOptions { months: 12, paths: 200, seed: 1, mu: None, sigma: None };
        assert!(matches!(runway_spec(&policy, &h, None, &o), Err(EngineError::Config(_))));
        assert!(runway_spec(&policy, &h, None, &RunwayOptions { paths: 0, sigma: Some(0.1), ..o.clone() }).is_err());
        // daily log returns ln 2 and −ln 2: sample sd √2·ln 2, monthly × √30.4375
        let only: Holdings = [("X".to_string(), 1.0)].into_iter().collect();
        let p = prices("date,X\n2020-01-01,1\n2020-01-02,2\n2020-01-03,1\n");
        let spec = runway_spec(&policy, &only, Some(&p), &o).unwrap();
        assert_eq!(spec.mu, 0.0);
        assert!((spec.sigma - 2f64.sqrt() * 2f64.ln() * 30.4375f64.sqrt()).abs() < 1e-12);
        let a = runway(&policy, &h, None, &RunwayOptions { sigma: Some(0.1), ..o.clone() }).unwrap();
        let b = runway(&policy, &h, None, &RunwayOptions { sigma: Some(0.1), ..o }).unwrap();
        assert_eq!(a, b, "seeded");
        assert_eq!(a.runway.fan.len(), 12);
    }

    #[test]
    fn a_payout_is_checked_against_the_policy_and_the_runway() {
        let (policy, h) = example();
        let o = RunwayOptions { months: 60, paths: 2_000, seed: 42, mu: Some(0.0), sigma: Some(0.16) };
        let c = check_payout(&policy, &h, "USDC", 10_000.0, None, &o).unwrap();
        assert_eq!(c.holdings["USDC"], 3_190_000.0);
        assert_eq!(c.total, 10_990_000.0);
        // 0.8 · 60,000 · 1.0025 + 0.2 · 0.004 · 10,990,000
        assert!((c.monthly_spending - 56_912.0).abs() < 1e-9);
        let rules: Vec<&str> = c.violations.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(rules, ["cap of ETH", "band of ETH"]);
        assert_eq!(c.violations[0].detail, "50.96% held, cap 50.00%");
        assert_eq!((c.spec.value, c.spec.floor_months, c.runway.fan.len()), (10_990_000.0, 18.0, 60));
        assert!(c.runway.p_depleted <= c.runway.p_below_floor);
        // paying most of the stablecoins out breaks the stablecoin minimum
        let c = check_payout(&policy, &h, "USDC", 3_000_000.0, None, &o).unwrap();
        assert!(c.violations.iter().any(|v| v.rule == "minimum stablecoin share"), "{:?}", c.violations);
        for (asset, amount) in [("DAI", 1.0), ("USDC", 3_200_001.0), ("USDC", -1.0), ("USDC", f64::NAN)] {
            assert!(matches!(check_payout(&policy, &h, asset, amount, None, &o), Err(EngineError::Config(_))));
        }
    }

    #[test]
    fn optimal_weights_honour_the_policy() {
        let (policy, _) = example();
        let p = prices(include_str!("../../../examples/treasury/prices.csv"));
        let problem = Problem::new(&policy, &p, 365.0).unwrap();
        assert_eq!(problem.assets, ["BTC", "ETH", "USDC", "USDT"]);
        let objective = |method| Objective { method, target: None, rf: 0.02, delta: 2.0 };
        for method in [Method::MinVol, Method::MaxSharpe, Method::Utility, Method::MinCvar] {
            let o = problem.solve(&objective(method)).unwrap();
            assert!((o.weights.values().sum::<f64>() - 1.0).abs() < 1e-6, "{method:?}");
            assert!(o.over_cap.is_empty(), "{method:?}: {:?}", o.over_cap);
            assert!(o.weights["USDC"] + o.weights["USDT"] >= 0.35 - 1e-6, "{method:?}: stablecoin minimum");
        }
        let e = problem.solve(&objective(Method::EfficientReturn)).unwrap_err();
        assert_eq!(e.to_string(), "efficient return needs a target");
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>().unwrap(), m);
        }
        assert!("min-variance".parse::<Method>().unwrap_err().to_string().ends_with(
            "one of min-vol, max-sharpe, efficient-return, efficient-risk, utility, min-cvar, risk-parity, hrp"
        ));
    }

    #[test]
    fn benchmarks_are_parsed_and_checked() {
        let p = prices("date,ETH,USDC\n2020-01-01,1,1\n2020-01-02,2,1\n2020-01-03,3,1\n");
        let b = |spec| Benchmark { spec, name: "--benchmark" }.weights(&p).map_err(|e| e.to_string());
        assert_eq!(b("ETH=0.6, USDC = 0.4"), Ok(vec![0.6, 0.4]));
        assert_eq!(b("ETH"), Err("--benchmark: expected ASSET=WEIGHT,…".into()));
        assert_eq!(b("XRP=1"), Err("--benchmark: no price column `XRP`".into()));
        assert_eq!(b("ETH=x"), Err("--benchmark: `x` is not a number: invalid float literal".into()));
        assert_eq!(b("ETH=0.5,USDC=0.4"), Err("--benchmark weights must sum to 1".into()));
    }
}
