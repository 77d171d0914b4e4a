//! Spending rules over time, and runway by Monte Carlo.
//!
//! The endowment rule is Yale's (Tobin's intergenerational equity, as implemented by Yale Investments
//! Office): S_t = w·S_{t−1}·(1 + π) + (1 − w)·r·V_t, smoothing spending between last period's amount
//! grown by inflation and a long-run rate of current value.

use crate::policy::SpendingRule;
use allonet_ml::data::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

impl SpendingRule {
    /// Spending before the first period (S_0 of the endowment rule; 0 otherwise).
    pub fn initial(&self) -> f64 {
        match self {
            SpendingRule::Endowment { initial, .. } => *initial,
            _ => 0.0,
        }
    }

    /// This period's spending given last period's (`prev`) and the value now.
    pub fn next(&self, prev: f64, value: f64) -> f64 {
        match self {
            SpendingRule::Fixed { amount } => *amount,
            SpendingRule::Percent { rate } => rate * value,
            SpendingRule::Endowment { smoothing: w, rate: r, inflation: pi, .. } => {
                w * prev * (1.0 + pi) + (1.0 - w) * r * value
            }
        }
    }
}

/// Spending for each period given the treasury's value at each period.
pub fn spending_path(rule: &SpendingRule, values: &[f64]) -> Vec<f64> {
    let mut prev = rule.initial();
    values
        .iter()
        .map(|&v| {
            prev = rule.next(prev, v);
            prev
        })
        .collect()
}

/// Monte Carlo settings: log-normal monthly returns of the whole portfolio.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunwaySpec {
    /// Starting value.
    pub value: f64,
    /// Expected monthly log return.
    pub mu: f64,
    /// Monthly log-return volatility.
    pub sigma: f64,
    /// Months simulated.
    pub months: usize,
    /// Paths.
    pub paths: usize,
    /// Seed.
    pub seed: u64,
    /// Runway floor in months of spending: a path breaches it when value < floor × spending.
    pub floor_months: f64,
}

/// Runway outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Runway {
    /// Value percentiles (5, 25, 50, 75, 95) per month: the fan chart.
    pub fan: Vec<[f64; 5]>,
    /// Share of paths that breach the floor at some month.
    pub p_below_floor: f64,
    /// Share of paths that run out of money.
    pub p_depleted: f64,
    /// Median month of depletion among depleted paths (None if fewer than half deplete).
    pub median_depletion_month: Option<usize>,
}

/// Simulates value under the spending rule: each month V ← V·e^(μ + σ·z) − S. Path p draws from ChaCha
/// stream p, so results do not depend on the thread count.
pub fn runway(rule: &SpendingRule, spec: &RunwaySpec) -> Runway {
    let m = spec.months;
    let paths: Vec<(Vec<f64>, bool, Option<usize>)> = (0..spec.paths as u64)
        .into_par_iter()
        .map(|p| {
            let mut rng = Rng::new(spec.seed, p);
            let mut v = spec.value;
            let mut prev = rule.initial();
            let mut vals = Vec::with_capacity(m);
            let mut breached = false;
            let mut depleted = None;
            for t in 0..m {
                v *= (spec.mu + spec.sigma * rng.normal()).exp();
                let s = rule.next(prev, v);
                prev = s;
                if v < spec.floor_months * s {
                    breached = true;
                }
                v -= s;
                if v <= 0.0 {
                    v = 0.0;
                    depleted.get_or_insert(t + 1);
                }
                vals.push(v);
            }
            (vals, breached, depleted)
        })
        .collect();
    let n = paths.len().max(1) as f64;
    let fan = (0..m)
        .map(|t| {
            let mut col: Vec<f64> = paths.iter().map(|p| p.0[t]).collect();
            col.sort_by(f64::total_cmp);
            let q = |x: f64| col[((col.len() - 1) as f64 * x).round() as usize];
            [q(0.05), q(0.25), q(0.5), q(0.75), q(0.95)]
        })
        .collect();
    let mut dep: Vec<usize> = paths.iter().filter_map(|p| p.2).collect();
    dep.sort_unstable();
    Runway {
        fan,
        p_below_floor: paths.iter().filter(|p| p.1).count() as f64 / n,
        p_depleted: dep.len() as f64 / n,
        // paths that never deplete count as later than every month, so the median exists when most deplete
        median_depletion_month: (dep.len() > paths.len() / 2).then(|| dep[paths.len() / 2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endowment_rule_vector() {
        let rule = SpendingRule::Endowment { smoothing: 0.8, rate: 0.05, inflation: 0.03, initial: 5.0 };
        let s = spending_path(&rule, &[100.0, 80.0, 120.0]);
        let expect = [5.12, 5.01888, 5.335557];
        for (a, b) in s.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn runway_is_seeded_and_sensible() {
        let spec =
            RunwaySpec { value: 1_000.0, mu: 0.0, sigma: 0.05, months: 60, paths: 2_000, seed: 9, floor_months: 12.0 };
        let rule = SpendingRule::Fixed { amount: 20.0 };
        let a = runway(&rule, &spec);
        assert_eq!(a, runway(&rule, &spec));
        // 1,000 with 20 a month and no drift: 50 months of money, so about half the paths deplete by month 60
        assert!(a.p_depleted > 0.3 && a.p_depleted < 0.9, "{}", a.p_depleted);
        assert!(a.p_below_floor > a.p_depleted);
        let safe = runway(&SpendingRule::Fixed { amount: 1.0 }, &spec);
        assert_eq!(safe.p_depleted, 0.0);
    }
}
