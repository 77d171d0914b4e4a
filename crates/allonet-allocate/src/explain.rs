//! Why each amount is what it is: marginal values, shadow prices, binding constraints, and the gain over
//! the baseline and over each pool matching alone.

use allonet_core::{Address, Digest, Token, TokenAmount};
use serde::Serialize;

use crate::input::{Problem, SignalUse, Utility};
use crate::solve::{objective, Pair};
use crate::{tok, PlanLine, Solved, ALLOCATION_SCHEMA};

/// What bounds one pool's grant to one project at the optimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// Funded inside its bounds: marginal value × price = the pool's shadow price.
    Budget,
    /// At the project's cap in this pool (`pool_caps`).
    PoolCap,
    /// At the pool's max share.
    MaxShare,
    /// The project's value across pools is at its cap C_i.
    CrossPoolCap,
    /// At the pool's minimum grant.
    MinGrant,
    /// The optimum gave less than the minimum: dropped, the rest re-solved.
    BelowMinimum,
    /// Not funded: its marginal value is below the pool's shadow price.
    NotWorthIt,
    /// Not eligible in this pool.
    NotEligible,
    /// Eligible, but its bound (pool cap, max share) is zero or below the pool's minimum.
    NoRoom,
}

/// One pool's grant to one project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub pool: String,
    /// Base units paid.
    pub amount: TokenAmount,
    /// The continuous optimum, whole tokens.
    pub optimum: f64,
    /// b_di, base units.
    pub baseline: TokenAmount,
    pub binding: Binding,
}

/// One project across pools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectResult {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub address: Address,
    /// w_i.
    pub weight: f64,
    pub utility: Utility,
    /// X_i, units of value from every pool (at the rounded amounts).
    pub value: f64,
    /// Units of value of its baseline.
    pub baseline_value: f64,
    /// w_i·u_i'(X_i): objective gained per further unit of value.
    pub marginal: f64,
    /// ν_i: the objective its cross-pool cap costs, per unit of value (0 when it does not bind).
    pub cap_price: f64,
    pub cells: Vec<Cell>,
}

/// One pool's plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolResult {
    pub id: String,
    pub token: Token,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    pub price: f64,
    pub budget: TokenAmount,
    pub spent: TokenAmount,
    pub spend_all: bool,
    /// μ_d: the objective one more whole token of this pool would add.
    pub shadow_price: f64,
    /// μ_d / p_d: the same per unit of value, comparable across pools.
    pub shadow_price_per_value: f64,
    /// Why the pool spent what it did.
    pub binding: String,
    pub dropped_below_minimum: usize,
    pub payments: Vec<PlanLine>,
}

/// The objective at the plan and at the alternatives it is compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objective {
    /// At the continuous optimum.
    pub optimum: f64,
    /// At the rounded plan.
    pub plan: f64,
    /// At the baseline b.
    pub baseline: f64,
    /// Each pool solving the same problem over its own budget only, the results added up (absent when a
    /// pool alone could not be solved, e.g. its spend-all rule is infeasible without the others).
    pub pools_alone: Option<f64>,
    pub gain_over_baseline: f64,
    pub gain_over_pools_alone: Option<f64>,
}

/// How the solver got there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolverInfo {
    pub solver: String,
    pub variables: usize,
    pub solves: u32,
    pub iterations: u32,
    pub dropped_below_minimum: usize,
}

/// The result: per-pool plans, per-project explanations, digests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    pub schema: String,
    pub input_digest: Digest,
    pub plan_digest: Digest,
    pub rho: f64,
    pub signals: Vec<SignalUse>,
    pub objective: Objective,
    pub pools: Vec<PoolResult>,
    pub projects: Vec<ProjectResult>,
    pub solver: SolverInfo,
}

/// Builds the explanation of `main` rounded to `amounts`, comparing with each pool `alone`.
pub fn explain(p: &Problem, main: &Solved, amounts: &[u128], alone: Option<&[Solved]>) -> Allocation {
    let nd = p.pools.len();
    let ni = p.projects.len();
    let mut index = vec![vec![usize::MAX; nd]; ni];
    for (k, pr) in main.pairs.iter().enumerate() {
        index[pr.i][pr.d] = k;
    }
    let mut value = vec![0.0; ni];
    let mut cont_value = vec![0.0; ni];
    for (k, pr) in main.pairs.iter().enumerate() {
        let pool = &p.pools[pr.d];
        value[pr.i] += pool.price * amounts[k] as f64 / pool.unit();
        cont_value[pr.i] += pool.price * main.sol.x[k];
    }
    let dropped: std::collections::BTreeSet<(usize, usize)> = main.dropped.iter().copied().collect();
    let tol = 1e-6;
    let mut projects = Vec::with_capacity(ni);
    for (i, pj) in p.projects.iter().enumerate() {
        let at_cap = pj.cap.is_some_and(|c| cont_value[i] >= c * (1.0 - tol) && c > 0.0);
        let mut cells = Vec::new();
        let mut baseline_value = 0.0;
        for (d, pool) in p.pools.iter().enumerate() {
            let k = index[i][d];
            let b = pj.baseline[d];
            baseline_value += pool.price * b as f64 / pool.unit();
            let binding = if !pj.eligible[d] {
                Binding::NotEligible
            } else if dropped.contains(&(d, i)) {
                Binding::BelowMinimum
            } else if k == usize::MAX {
                Binding::NoRoom
            } else {
                let x = main.sol.x[k];
                let ub = main.pairs[k].ub as f64 / pool.unit();
                let m = pool.min_grant as f64 / pool.unit();
                if x <= 0.0 {
                    if at_cap {
                        Binding::CrossPoolCap
                    } else {
                        Binding::NotWorthIt
                    }
                } else if x >= ub * (1.0 - tol) {
                    if pj.pool_caps[d] == Some(main.pairs[k].ub) {
                        Binding::PoolCap
                    } else if pool.max_share.is_some() && main.pairs[k].ub < pool.budget {
                        Binding::MaxShare
                    } else {
                        Binding::Budget
                    }
                } else if at_cap {
                    Binding::CrossPoolCap
                } else if m > 0.0 && (x - m).abs() <= tol * m.max(1.0) {
                    Binding::MinGrant
                } else {
                    Binding::Budget
                }
            };
            if binding == Binding::NotEligible && b == 0 {
                continue;
            }
            cells.push(Cell {
                pool: pool.id.clone(),
                amount: tok(if k == usize::MAX { 0 } else { amounts[k] }),
                optimum: if k == usize::MAX { 0.0 } else { main.sol.x[k] },
                baseline: tok(b),
                binding,
            });
        }
        projects.push(ProjectResult {
            id: pj.id.clone(),
            name: pj.name.clone(),
            address: pj.address,
            weight: pj.weight,
            utility: pj.utility,
            value: value[i],
            baseline_value,
            marginal: pj.weight * pj.utility.slope(cont_value[i]),
            cap_price: main.sol.nu[i],
            cells,
        });
    }
    let mut pools = Vec::with_capacity(nd);
    for (d, pool) in p.pools.iter().enumerate() {
        let mut payments = Vec::new();
        let mut spent = 0u128;
        for (k, pr) in main.pairs.iter().enumerate() {
            if pr.d == d && amounts[k] > 0 {
                spent += amounts[k];
                payments.push(PlanLine {
                    project: p.projects[pr.i].id.clone(),
                    address: p.projects[pr.i].address,
                    amount: tok(amounts[k]),
                });
            }
        }
        let mu = main.sol.mu[d];
        let binding = if pool.spend_all {
            "spend_all: the whole budget is given".to_string()
        } else if spent == pool.budget || mu > 1e-9 * mu_scale(main) {
            "the budget binds: every token is worth giving".to_string()
        } else {
            "budget left: every project it may fund is at a bound or not worth more".to_string()
        };
        pools.push(PoolResult {
            id: pool.id.clone(),
            token: pool.token.clone(),
            chain: pool.chain.clone(),
            price: pool.price,
            budget: tok(pool.budget),
            spent: tok(spent),
            spend_all: pool.spend_all,
            shadow_price: mu,
            shadow_price_per_value: mu / pool.price,
            binding,
            dropped_below_minimum: main.dropped.iter().filter(|x| x.0 == d).count(),
            payments,
        });
    }
    let optimum = objective(p, &main.pairs, &main.sol.x);
    let rounded: Vec<f64> = main.pairs.iter().zip(amounts).map(|(k, &a)| a as f64 / p.pools[k.d].unit()).collect();
    let plan = objective(p, &main.pairs, &rounded);
    let (bpairs, bx) = baseline_point(p);
    let baseline = objective(p, &bpairs, &bx);
    let pools_alone = alone.map(|alone| {
        let (apairs, ax): (Vec<Pair>, Vec<f64>) =
            alone.iter().flat_map(|s| s.pairs.iter().copied().zip(s.sol.x.iter().copied())).unzip();
        objective(p, &apairs, &ax)
    });
    Allocation {
        schema: ALLOCATION_SCHEMA.into(),
        input_digest: p.input_digest,
        plan_digest: Digest::default_zero(),
        rho: p.rho,
        signals: p.signals.clone(),
        objective: Objective {
            optimum,
            plan,
            baseline,
            pools_alone,
            gain_over_baseline: plan - baseline,
            gain_over_pools_alone: pools_alone.map(|a| plan - a),
        },
        pools,
        projects,
        solver: SolverInfo {
            solver: main.sol.solver.into(),
            variables: main.pairs.len(),
            solves: main.rounds,
            iterations: main.iterations,
            dropped_below_minimum: main.dropped.len(),
        },
    }
}

fn mu_scale(s: &Solved) -> f64 {
    s.sol.mu.iter().fold(0.0f64, |a, &b| a.max(b.abs())).max(f64::MIN_POSITIVE)
}

/// The baseline as a point: every (pool, project) with a baseline amount.
fn baseline_point(p: &Problem) -> (Vec<Pair>, Vec<f64>) {
    let mut pairs = Vec::new();
    let mut x = Vec::new();
    for (i, pj) in p.projects.iter().enumerate() {
        for (d, &b) in pj.baseline.iter().enumerate() {
            if b > 0 {
                pairs.push(Pair { d, i, ub: b });
                x.push(b as f64 / p.pools[d].unit());
            }
        }
    }
    (pairs, x)
}

trait ZeroDigest {
    fn default_zero() -> Self;
}

impl ZeroDigest for Digest {
    fn default_zero() -> Self {
        Digest(alloy_primitives::B256::ZERO)
    }
}

/// How far a continuous solution is from the Karush–Kuhn–Tucker conditions, relative to the pool's shadow
/// price: for each pair, g = w_i·u_i'(X_i)·p_d − 2ρ(x − b) − ν_i·p_d (the net marginal objective of one
/// more token, with the solver's tie-break 2ε_d·x) must equal μ_d where 0 < x < ub, be ≤ μ_d where x = 0 and ≥ μ_d where x = ub; μ, ν ≥ 0.
/// A pair counts as at a bound when within `at_bound` (relative to the pool's budget) of it.
pub fn kkt_residual(p: &Problem, s: &Solved, at_bound: f64) -> f64 {
    let sc = crate::solve::Scaling::of(p, &s.pairs);
    let mut value = vec![0.0; p.projects.len()];
    for (k, pr) in s.pairs.iter().enumerate() {
        value[pr.i] += p.pools[pr.d].price * s.sol.x[k];
    }
    // Residuals are relative to the size of the pool's marginal values (its shadow price or the largest
    // marginal value a pair of it has), so that a pool whose budget is slack (μ = 0) is still measured.
    let mut size = s.sol.mu.iter().map(|m| m.abs()).collect::<Vec<f64>>();
    for (k, pr) in s.pairs.iter().enumerate() {
        let pj = &p.projects[pr.i];
        let g = pj.weight * pj.utility.slope(value[pr.i]) * p.pools[pr.d].price;
        size[pr.d] = size[pr.d]
            .max(g.abs())
            .max(2.0 * p.rho * (s.sol.x[k] - pj.baseline[pr.d] as f64 / p.pools[pr.d].unit()).abs());
    }
    let mut worst = 0.0f64;
    for (k, pr) in s.pairs.iter().enumerate() {
        let pool = &p.pools[pr.d];
        let pj = &p.projects[pr.i];
        let x = s.sol.x[k];
        let b = pj.baseline[pr.d] as f64 / pool.unit();
        let g = pj.weight * pj.utility.slope(value[pr.i]) * pool.price
            - 2.0 * (p.rho * (x - b) + sc.tie_break(p, pr.d) * x)
            - s.sol.nu[pr.i] * pool.price;
        let mu = s.sol.mu[pr.d];
        let scale = size[pr.d].max(f64::MIN_POSITIVE);
        let near = at_bound * pool.budget_tokens().max(1.0);
        let ub = pr.ub as f64 / pool.unit();
        let mut r = (g - mu).abs() / scale;
        if x <= near {
            r = r.min(((g - mu) / scale).max(0.0));
        }
        if x >= ub - near {
            r = r.min(((mu - g) / scale).max(0.0));
        }
        worst = worst.max(r);
    }
    for (d, &m) in s.sol.mu.iter().enumerate() {
        if !p.pools[d].spend_all && m < 0.0 {
            worst = worst.max(-m / size[d].max(f64::MIN_POSITIVE));
        }
    }
    worst
}
