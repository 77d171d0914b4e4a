//! Rebalancing back inside the policy's bands, in tranches, and backtests of a policy against a benchmark.

use crate::policy::Policy;
use crate::risk::{max_drawdown, Prices};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One trade: positive buys, negative sells (unit of account), split into tranches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Asset.
    pub asset: String,
    /// Value to buy (+) or sell (−).
    pub amount: f64,
    /// Tranches, each at most the policy's maximum trade size.
    pub tranches: Vec<f64>,
}

/// A rebalancing plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Trades (empty when everything is inside its band).
    pub trades: Vec<Trade>,
    /// Weights after the trades.
    pub after: BTreeMap<String, f64>,
    /// Annualised tracking error of the current weights against the targets: the cost of not rebalancing
    /// (when a covariance is given).
    pub tracking_error: Option<f64>,
}

/// Brings holdings back to target weights when any asset is outside its band (or not allowed): every asset
/// moves to its target, trades smaller than `min_trade` are skipped (the largest trade absorbs the residue,
/// so buys and sells still net to zero), and each trade is cut into tranches of at most
/// `max_trade_share × total`. `cov` (assets, annual covariance) prices the drift.
pub fn rebalance(
    policy: &Policy,
    holdings: &BTreeMap<String, f64>,
    min_trade: f64,
    cov: Option<(&[String], &[Vec<f64>])>,
) -> Plan {
    let total: f64 = holdings.values().sum();
    let w = |a: &str| holdings.get(a).copied().unwrap_or(0.0) / total;
    let outside = holdings.keys().any(|a| !policy.assets.contains_key(a))
        || policy.assets.iter().any(|(a, r)| (w(a) - r.target).abs() > r.band + 1e-12);
    let tracking_error = cov.map(|(names, c)| {
        let d: Vec<f64> = names.iter().map(|n| w(n) - policy.assets.get(n).map(|r| r.target).unwrap_or(0.0)).collect();
        (0..d.len()).map(|i| (0..d.len()).map(|j| d[i] * c[i][j] * d[j]).sum::<f64>()).sum::<f64>().max(0.0).sqrt()
    });
    if !outside || total <= 0.0 {
        return Plan {
            trades: vec![],
            after: holdings.iter().map(|(a, v)| (a.clone(), v / total)).collect(),
            tracking_error,
        };
    }
    let mut names: Vec<String> = policy.assets.keys().cloned().collect();
    names.extend(holdings.keys().filter(|a| !policy.assets.contains_key(*a)).cloned());
    let mut deltas: Vec<(String, f64)> = names
        .iter()
        .map(|a| {
            (
                a.clone(),
                policy.assets.get(a).map(|r| r.target).unwrap_or(0.0) * total - holdings.get(a).copied().unwrap_or(0.0),
            )
        })
        .collect();
    let mut residue = 0.0;
    for d in deltas.iter_mut() {
        if d.1.abs() < min_trade {
            residue += d.1;
            d.1 = 0.0;
        }
    }
    if let Some(big) = deltas.iter_mut().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())) {
        big.1 += residue;
    }
    let tranche = (policy.max_trade_share * total).max(f64::MIN_POSITIVE);
    let trades: Vec<Trade> = deltas
        .into_iter()
        .filter(|d| d.1 != 0.0)
        .map(|(asset, amount)| {
            let k = (amount.abs() / tranche).ceil().max(1.0) as usize;
            Trade { asset, amount, tranches: vec![amount / k as f64; k] }
        })
        .collect();
    let mut after: BTreeMap<String, f64> = holdings.clone();
    for t in &trades {
        *after.entry(t.asset.clone()).or_insert(0.0) += t.amount;
    }
    let after = after.into_iter().filter(|(_, v)| v.abs() > 1e-9).map(|(a, v)| (a, v / total)).collect();
    Plan { trades, after, tracking_error }
}

/// How a backtested portfolio is kept on target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Rebalancing {
    /// Back to target whenever a weight leaves target ± band (bands per asset).
    Bands(Vec<f64>),
    /// Back to target on the first day of each month.
    Monthly,
}

/// A backtest's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    /// Portfolio value per date, starting at 1.
    pub values: Vec<f64>,
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
}

/// Backtests fixed target weights (one per price column) on daily prices.
pub fn backtest(p: &Prices, target: &[f64], rule: &Rebalancing, periods_per_year: f64) -> Backtest {
    let k = p.assets.len();
    let days = p.dates.len();
    let mut units: Vec<f64> = (0..k).map(|a| target[a] / p.prices[a][0]).collect();
    let mut values = Vec::with_capacity(days);
    let (mut rebalances, mut turnover) = (0usize, 0.0);
    for t in 0..days {
        let v: f64 = (0..k).map(|a| units[a] * p.prices[a][t]).sum();
        values.push(v);
        let w: Vec<f64> = (0..k).map(|a| units[a] * p.prices[a][t] / v).collect();
        let due = match rule {
            Rebalancing::Bands(b) => (0..k).any(|a| (w[a] - target[a]).abs() > b[a]),
            Rebalancing::Monthly => t > 0 && p.dates[t].get(..7) != p.dates[t - 1].get(..7),
        };
        if due && t + 1 < days {
            turnover += (0..k).map(|a| (w[a] - target[a]).abs()).sum::<f64>();
            rebalances += 1;
            units = (0..k).map(|a| target[a] * v / p.prices[a][t]).collect();
        }
    }
    let r: Vec<f64> = values.windows(2).map(|x| x[1] / x[0] - 1.0).collect();
    let m = r.iter().sum::<f64>() / r.len() as f64;
    let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (r.len() as f64 - 1.0)).sqrt();
    let years = (days - 1) as f64 / periods_per_year;
    Backtest {
        cagr: (values[days - 1] / values[0]).powf(1.0 / years) - 1.0,
        volatility: sd * periods_per_year.sqrt(),
        max_drawdown: max_drawdown(&values),
        values,
        rebalances,
        turnover,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtest_by_hand_and_rebalance_nets_to_zero() {
        // two assets, one doubles then halves: monthly rebalancing at 50/50
        let p = Prices {
            dates: vec!["2024-01-01".into(), "2024-01-15".into(), "2024-02-01".into(), "2024-02-15".into()],
            assets: vec!["A".into(), "B".into()],
            prices: vec![vec![1.0, 2.0, 2.0, 1.0], vec![1.0, 1.0, 1.0, 1.0]],
        };
        let b = backtest(&p, &[0.5, 0.5], &Rebalancing::Monthly, 365.0);
        // day 1: 1.5; Feb 1: 1.5, rebalanced to 0.75/0.75; Feb 15: A halves → 0.375 + 0.75
        assert!((b.values[3] - 1.125).abs() < 1e-12, "{:?}", b.values);
        assert_eq!(b.rebalances, 1);
        let hold = backtest(&p, &[0.5, 0.5], &Rebalancing::Bands(vec![1.0, 1.0]), 365.0);
        assert!((hold.values[3] - 1.0).abs() < 1e-12 && hold.rebalances == 0);
    }
}
