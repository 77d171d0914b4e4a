//! From the continuous optimum to base units, with every constraint kept exactly.
//!
//! Each pool's total (its budget when it must be spent, else its optimum rounded) is split over its funded
//! pairs by the largest-remainder method in integers ([`allonet_core::apportion_exact`], Hamilton's method),
//! with bounds: a part above its upper bound is fixed at the bound and the rest re-split, a part below the
//! pool's minimum grant is fixed at the minimum, until no part breaks a bound (pools that must be spent first).
//! A pair's upper bound is the
//! exact least of its pool cap, the pool's max share, and what its project's cross-pool cap leaves after
//! its other pools (pools already rounded count at their rounded amounts, later ones at the floor of their
//! optimum), all in integers: value is compared in units of 10⁻³⁶ (price in 10⁻¹⁸ value per token times
//! base units scaled to 18 decimals), so no float rounding can break a cap.

use allonet_core::{apportion_exact, TokenAmount};
use alloy_primitives::U256;

use crate::input::{Problem, VALUE_DECIMALS};
use crate::{AllocError, Solved};

/// Exact value of `base` units of pool `d`, in units of 10⁻³⁶.
pub fn value_exact(p: &Problem, d: usize, base: u128) -> U256 {
    let pool = &p.pools[d];
    pool.price_exact * U256::from(base) * U256::from(10u8).pow(U256::from(VALUE_DECIMALS - pool.token.decimals))
}

/// A project's cross-pool cap in units of 10⁻³⁶.
pub fn cap_exact(p: &Problem, i: usize) -> Option<U256> {
    p.projects[i].cap_exact.map(|c| c * U256::from(10u8).pow(U256::from(VALUE_DECIMALS)))
}

/// Base units per pair of `s.pairs`.
pub fn apportion(p: &Problem, s: &Solved) -> Result<Vec<u128>, AllocError> {
    let n = s.pairs.len();
    // Targets in base units; one within solver precision (10⁻⁹ of the budget) of its bound is at the bound.
    let target: Vec<f64> = s
        .pairs
        .iter()
        .zip(&s.sol.x)
        .map(|(k, &x)| {
            let (t, ub) = (x * p.pools[k.d].unit(), k.ub as f64);
            if t >= ub - 1e-9 * p.pools[k.d].budget as f64 {
                ub
            } else {
                t
            }
        })
        .collect();
    let floor_t: Vec<u128> =
        s.pairs.iter().zip(&target).map(|(k, &t)| (t.floor().max(0.0) as u128).min(k.ub)).collect();
    let mut base = vec![0u128; n];
    let mut done = vec![false; n];
    let mut of_project: Vec<Vec<usize>> = vec![Vec::new(); p.projects.len()];
    for (k, pr) in s.pairs.iter().enumerate() {
        of_project[pr.i].push(k);
    }
    // Pools that must be spent exactly are rounded first, so that rounding elsewhere cannot take the room
    // their projects' cross-pool caps leave.
    let mut order: Vec<usize> = (0..p.pools.len()).collect();
    order.sort_by_key(|&d| !p.pools[d].spend_all);
    for d in order {
        let pool = &p.pools[d];
        // A pool that must be spent may need a unit or two that cross-pool caps took from a funded pair: its
        // unfunded pairs can take them (only where the pool has no minimum grant).
        let spare = |k: usize| pool.spend_all && pool.min_grant == 0 && s.sol.x[k] <= 0.0;
        let items: Vec<usize> = (0..n).filter(|&k| s.pairs[k].d == d && (s.sol.x[k] > 0.0 || spare(k))).collect();
        let unit_value = value_exact(p, d, 1);
        let mut lb = Vec::with_capacity(items.len());
        let mut ub = Vec::with_capacity(items.len());
        for &k in &items {
            let pr = s.pairs[k];
            let mut hi = pr.ub;
            if let Some(cap) = cap_exact(p, pr.i) {
                let others = of_project[pr.i].iter().filter(|&&j| j != k).fold(U256::ZERO, |a, &j| {
                    a + value_exact(p, s.pairs[j].d, if done[j] { base[j] } else { floor_t[j] })
                });
                let room = cap.saturating_sub(others) / unit_value;
                hi = hi.min(u128::try_from(room).unwrap_or(u128::MAX));
            }
            let lo = if spare(k) { 0 } else { pool.min_grant };
            // A pair whose room fell below the minimum by rounding elsewhere gets nothing.
            if hi < lo {
                lb.push(0);
                ub.push(0);
            } else {
                lb.push(lo);
                ub.push(hi);
            }
        }
        // Minimums raised to whole units can add up past the budget: the smallest grants give way (their
        // units go to the others), until the minimums fit.
        let mut by_size: Vec<usize> = (0..items.len()).filter(|&j| ub[j] > 0).collect();
        by_size.sort_by(|&a, &b| target[items[a]].total_cmp(&target[items[b]]).then(a.cmp(&b)));
        let mut sum_lb: u128 = lb.iter().fold(0u128, |a, &b| a.saturating_add(b));
        for j in by_size {
            if sum_lb <= pool.budget {
                break;
            }
            sum_lb -= lb[j];
            lb[j] = 0;
            ub[j] = 0;
        }
        let sum_ub = ub.iter().fold(0u128, |a, &b| a.saturating_add(b));
        let total = if pool.spend_all {
            if sum_ub < pool.budget {
                return Err(AllocError::Infeasible(format!(
                    "pool `{}`: the rounded bounds of its {} funded projects hold {} of the {} base units it must spend",
                    pool.id,
                    items.len(),
                    sum_ub,
                    pool.budget
                )));
            }
            pool.budget
        } else {
            let t: f64 = items.iter().map(|&k| target[k]).sum();
            let t = (t + 0.5).floor().max(0.0) as u128;
            t.min(pool.budget).max(sum_lb).min(sum_ub)
        };
        let weights: Vec<f64> = items.iter().map(|&k| target[k]).collect();
        let parts = bounded(total, &weights, &lb, &ub).ok_or_else(|| {
            AllocError::Infeasible(format!("pool `{}`: {total} base units cannot be split within its bounds", pool.id))
        })?;
        for (j, &k) in items.iter().enumerate() {
            base[k] = parts[j];
            done[k] = true;
        }
    }
    verify(p, s, &base)?;
    Ok(base)
}

/// Checks rounded amounts against every rule exactly; an error here is a defect of this crate, and no plan
/// leaves with one.
pub fn verify(p: &Problem, s: &Solved, base: &[u128]) -> Result<(), AllocError> {
    let bad = |m: String| Err(AllocError::Solver(format!("internal check failed, no plan written: {m}")));
    let mut value = vec![U256::ZERO; p.projects.len()];
    for (d, pool) in p.pools.iter().enumerate() {
        let mut total = 0u128;
        for (k, pr) in s.pairs.iter().enumerate().filter(|(_, pr)| pr.d == d) {
            let x = base[k];
            total = total.checked_add(x).ok_or(AllocError::Solver("pool total overflows".into()))?;
            if x == 0 {
                continue;
            }
            if !p.projects[pr.i].eligible[d] || x > p.pair_bound(d, pr.i) || x < pool.min_grant {
                return bad(format!(
                    "pool `{}` pays {} base units to `{}` outside its bounds",
                    pool.id, x, p.projects[pr.i].id
                ));
            }
            value[pr.i] += value_exact(p, d, x);
        }
        if total > pool.budget || (pool.spend_all && total != pool.budget) {
            return bad(format!("pool `{}` pays {total} of its {} base units", pool.id, pool.budget));
        }
    }
    for (i, v) in value.iter().enumerate() {
        if cap_exact(p, i).is_some_and(|c| *v > c) {
            return bad(format!("project `{}` is paid past its cap", p.projects[i].id));
        }
    }
    Ok(())
}

/// Splits `total` in proportion to `weights` with each part in [lb, ub] (largest remainder, exact).
/// Parts whose weight reaches their upper bound start fixed there (a grant at its cap stays at its cap).
pub fn bounded(total: u128, weights: &[f64], lb: &[u128], ub: &[u128]) -> Option<Vec<u128>> {
    let at_cap: Vec<Option<u128>> =
        (0..weights.len()).map(|j| (ub[j] == 0 || weights[j] >= ub[j] as f64).then_some(ub[j])).collect();
    split(total, weights, lb, ub, at_cap.clone())
        .or_else(|| split(total, weights, lb, ub, (0..weights.len()).map(|j| (ub[j] == 0).then_some(0)).collect()))
}

fn split(total: u128, weights: &[f64], lb: &[u128], ub: &[u128], mut fixed: Vec<Option<u128>>) -> Option<Vec<u128>> {
    let n = weights.len();
    loop {
        let used: u128 = fixed.iter().flatten().sum();
        let rest = total.checked_sub(used)?;
        let free: Vec<usize> = (0..n).filter(|&j| fixed[j].is_none()).collect();
        if free.is_empty() {
            return (rest == 0).then(|| fixed.iter().map(|f| f.unwrap_or(0)).collect());
        }
        let w: Vec<f64> = free.iter().map(|&j| weights[j]).collect();
        let w = if w.iter().all(|&x| x <= 0.0) { vec![1.0; w.len()] } else { w };
        let parts: Vec<u128> =
            apportion_exact(TokenAmount(U256::from(rest)), &w).ok()?.into_iter().map(|a| a.0.to::<u128>()).collect();
        let over: Vec<usize> = (0..free.len()).filter(|&q| parts[q] > ub[free[q]]).collect();
        if !over.is_empty() {
            for q in over {
                fixed[free[q]] = Some(ub[free[q]]);
            }
            continue;
        }
        let under: Vec<usize> = (0..free.len()).filter(|&q| parts[q] < lb[free[q]]).collect();
        if !under.is_empty() {
            for q in under {
                fixed[free[q]] = Some(lb[free[q]]);
            }
            continue;
        }
        for (q, &j) in free.iter().enumerate() {
            fixed[j] = Some(parts[q]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn bounded_split_keeps_total_and_bounds() {
        let parts = bounded(100, &[1.0, 1.0, 8.0], &[0, 0, 0], &[100, 100, 50]).unwrap();
        assert_eq!(parts, vec![25, 25, 50]);
        let parts = bounded(100, &[1.0, 50.0, 49.0], &[10, 10, 10], &[100, 100, 100]).unwrap();
        assert_eq!(parts.iter().sum::<u128>(), 100);
        assert!(parts[0] >= 10);
        assert!(bounded(100, &[1.0, 1.0], &[0, 0], &[40, 40]).is_none());
    }
}
