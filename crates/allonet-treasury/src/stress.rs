//! Named stress scenarios applied to current holdings, with the policy breaches they would cause.

use crate::policy::{Policy, Violation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A scenario: a price multiplier per asset (others unchanged), optionally for assets matching a predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// What happened.
    pub description: String,
    /// Asset → price multiplier.
    pub shocks: BTreeMap<String, f64>,
}

/// The built-in scenarios for a policy's assets: a stablecoin depeg to 0.88 (USDC, March 2023), ETH −80%,
/// a correlation break (every non-stable asset −50% at once), and the loss of the largest protocol.
pub fn builtin(policy: &Policy, holdings: &BTreeMap<String, f64>) -> Vec<Scenario> {
    let mut out = Vec::new();
    let stables: Vec<&String> = policy.assets.iter().filter(|(_, a)| a.stable).map(|(n, _)| n).collect();
    if let Some(s) = stables.iter().find(|n| n.to_ascii_uppercase().contains("USDC")).or(stables.first()) {
        out.push(Scenario {
            name: format!("{s} depeg"),
            description: format!("{s} trades at 0.88, as USDC did on 11 March 2023"),
            shocks: [((*s).clone(), 0.88)].into_iter().collect(),
        });
    }
    if let Some(eth) = policy.assets.keys().find(|n| n.to_ascii_uppercase().contains("ETH")) {
        out.push(Scenario {
            name: "ETH −80%".into(),
            description: "ETH falls 80% (its 2018 and 2022 drawdowns)".into(),
            shocks: [(eth.clone(), 0.2)].into_iter().collect(),
        });
    }
    let risky: BTreeMap<String, f64> =
        policy.assets.iter().filter(|(_, a)| !a.stable).map(|(n, _)| (n.clone(), 0.5)).collect();
    if !risky.is_empty() {
        out.push(Scenario {
            name: "correlation break".into(),
            description: "every non-stable asset falls 50% together".into(),
            shocks: risky,
        });
    }
    let mut per: BTreeMap<String, f64> = BTreeMap::new();
    for (n, v) in holdings {
        if let Some(p) = policy.assets.get(n).and_then(|a| a.protocol.clone()) {
            *per.entry(p).or_insert(0.0) += v;
        }
    }
    if let Some((p, _)) = per.iter().max_by(|a, b| a.1.total_cmp(b.1)) {
        let shocks = policy
            .assets
            .iter()
            .filter(|(_, a)| a.protocol.as_deref() == Some(p))
            .map(|(n, _)| (n.clone(), 0.0))
            .collect();
        out.push(Scenario {
            name: format!("{p} loss"),
            description: format!("everything held through {p} is lost"),
            shocks,
        });
    }
    out
}

/// A scenario's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StressResult {
    /// Scenario name.
    pub scenario: String,
    /// Value before.
    pub before: f64,
    /// Value after.
    pub after: f64,
    /// Breaches after the shock.
    pub violations: Vec<Violation>,
}

/// Applies a scenario.
pub fn apply(policy: &Policy, holdings: &BTreeMap<String, f64>, s: &Scenario, monthly_spending: f64) -> StressResult {
    let after: BTreeMap<String, f64> =
        holdings.iter().map(|(n, v)| (n.clone(), v * s.shocks.get(n).copied().unwrap_or(1.0))).collect();
    StressResult {
        scenario: s.name.clone(),
        before: holdings.values().sum(),
        after: after.values().sum(),
        violations: policy.violations(&after, monthly_spending),
    }
}
