//! The treasury stage: the epoch's plan against the treasury's policy (stable share, protocol caps, runway floor,
//! the spending rule) before anything is filed or paid. Each pool draws on one treasury asset (`draws`), valued at
//! the pool's price. A payout may not add a breach the treasury does not already have: where the whole plan would,
//! the largest share of those pools' budgets that does not is found by bisection, and the allocation is solved
//! again over the scaled budgets (so the plan stays optimal for what the treasury can give). Where no share fits,
//! those pools pay nothing this epoch. The output says which rule and by how much.

use std::collections::{BTreeMap, BTreeSet};

use allonet_core::Table;
use allonet_engine::treasury::{check_payout, holdings_from_table, policy_from_toml, Holdings, RunwayOptions};
use serde_json::{json, Value};

use crate::stages::{allocation_value, input, problem, Stage};
use crate::Agent;

/// Runway simulation for the check: 60 months, 2,000 seeded paths, no drift, 16 % monthly volatility (as the
/// demo's treasury step, with fewer paths: the check asks only whether a floor holds).
fn runway_options() -> RunwayOptions {
    RunwayOptions { months: 60, paths: 2_000, seed: 42, mu: Some(0.0), sigma: Some(0.16) }
}

/// The breaches a payout of `amount` from `asset` adds to those the treasury already has (by rule).
fn added_breaches(
    policy: &allonet_treasury::policy::Policy,
    holdings: &Holdings,
    asset: &str,
    amount: f64,
) -> Result<Vec<String>, String> {
    let o = runway_options();
    let base: BTreeSet<String> = check_payout(policy, holdings, asset, 0.0, None, &o)
        .map_err(|e| e.to_string())?
        .violations
        .iter()
        .map(|v| v.rule.clone())
        .collect();
    let after =
        check_payout(policy, holdings, asset, amount.min(holdings.get(asset).copied().unwrap_or(0.0)), None, &o)
            .map_err(|e| e.to_string())?;
    let mut added: Vec<String> = after
        .violations
        .iter()
        .filter(|v| !base.contains(&v.rule))
        .map(|v| serde_json::to_string(v).unwrap_or_else(|_| v.rule.clone()))
        .collect();
    if amount > holdings.get(asset).copied().unwrap_or(0.0) {
        added.push(format!(
            "the payout of {amount} is more than the {} {asset} held",
            holdings.get(asset).copied().unwrap_or(0.0)
        ));
    }
    Ok(added)
}

/// Base units `pool`'s plan pays (0 when it has none), from the allocate stage's plans.
fn plan_total(plans: &[Value], pool: &str) -> f64 {
    plans
        .iter()
        .find(|x| x["pool"] == pool)
        .and_then(|x| x["plan"]["total"].as_str())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0)
}

pub(crate) fn check(a: &Agent, epoch: u64, prior: &BTreeMap<Stage, Value>) -> Result<Value, String> {
    let Some(t) = &a.setup.treasury else {
        return Ok(json!({
            "checked": false,
            "note": "no treasury policy is configured for the agent: the plan is not checked against a runway floor",
        }));
    };
    let observe = &prior[&Stage::Observe];
    let pol = input(observe, "treasury_policy")?;
    let hold = input(observe, "treasury_holdings")?;
    let policy = policy_from_toml(&pol.file, &pol.text).map_err(|e| e.to_string())?;
    let holdings =
        holdings_from_table(&Table::from_bytes(&hold.file, hold.text.as_bytes()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let p = problem(a, prior)?;
    // Value each pool's plan pays, by the asset it draws on.
    let plans = prior[&Stage::Allocate]["plans"].as_array().cloned().unwrap_or_default();
    let mut by_asset: BTreeMap<String, (f64, Vec<String>)> = BTreeMap::new();
    for (pool, asset) in &t.draws {
        let d =
            p.pools.iter().position(|x| &x.id == pool).ok_or_else(|| format!("treasury.draws: no pool `{pool}`"))?;
        let total = plan_total(&plans, pool);
        let value = total / p.pools[d].unit() * p.pools[d].price;
        let e = by_asset.entry(asset.clone()).or_default();
        e.0 += value;
        e.1.push(pool.clone());
    }
    let mut assets = Vec::new();
    let mut scale: BTreeMap<String, f64> = BTreeMap::new();
    for (asset, (amount, pools)) in &by_asset {
        let full = added_breaches(&policy, &holdings, asset, *amount)?;
        let f = if full.is_empty() {
            1.0
        } else {
            // The largest share of the payout that adds no breach (bisection; the check is monotone in the amount).
            let (mut lo, mut hi) = (0.0f64, 1.0f64);
            for _ in 0..20 {
                let mid = 0.5 * (lo + hi);
                if added_breaches(&policy, &holdings, asset, amount * mid)?.is_empty() {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        for pool in pools {
            scale.insert(pool.clone(), f);
        }
        assets.push(json!({ "asset": asset, "pools": pools, "value": amount, "breaches_at_full": full, "scale": f }));
    }
    let scaled = scale.values().any(|&f| f < 1.0);
    // What the treasury holds once the plan is paid: the rebalance (if the bands call for one) starts there.
    let mut after = holdings.clone();
    for (asset, (amount, pools)) in &by_asset {
        let f = pools.first().and_then(|p| scale.get(p)).copied().unwrap_or(1.0);
        if let Some(h) = after.get_mut(asset) {
            *h = (*h - amount * f).max(0.0);
        }
    }
    let rebalance = crate::rebalance::plan(a, epoch, &policy, &after)?;
    let mut out = json!({ "checked": true, "assets": assets, "scaled": scaled, "rebalance": rebalance });
    if scaled {
        let mut q = p.clone();
        let mut budgets = BTreeMap::new();
        for pool in &mut q.pools {
            if let Some(&f) = scale.get(&pool.id) {
                // The share applies to what the pool's plan pays (not its budget, which it may not spend): the new
                // budget is that share, in whole base units rounded down.
                let spent = plan_total(&plans, &pool.id);
                pool.budget = pool.budget.min((spent * f).floor() as u128);
                budgets.insert(pool.id.clone(), pool.budget.to_string());
            }
        }
        let v = allocation_value(a, &q)?;
        out["budgets"] = json!(budgets);
        out["allocation"] = v["allocation"].clone();
        out["plans"] = v["plans"].clone();
    }
    Ok(out)
}

/// The instance as the treasury stage left it: the allocation problem with the budgets it scaled down.
pub fn scaled(mut p: allonet_allocate::Problem, treasury: Option<&Value>) -> Result<allonet_allocate::Problem, String> {
    if let Some(b) = treasury.and_then(|t| t.get("budgets")).and_then(|b| b.as_object()) {
        for pool in &mut p.pools {
            if let Some(v) = b.get(&pool.id).and_then(|v| v.as_str()) {
                pool.budget = v.parse().map_err(|_| format!("treasury budget `{v}` for {}", pool.id))?;
            }
        }
    }
    Ok(p)
}
