//! Allocation across DAOs: one convex program spreads several pools' budgets over the projects they share,
//! and returns exact per-pool plans with the reasons for each amount.
//!
//! Pools d (a DAO's budget B_d in its own token at price p_d), projects i, and x_di ≥ 0 what pool d gives
//! project i:
//! ```text
//! maximise   Σ_i w_i·u_i(Σ_d p_d·x_di) − ρ·Σ_d,i (x_di − b_di)²
//! subject to Σ_i x_di ≤ B_d  (= B_d when the pool must be spent)
//!            x_di ≤ c_di, x_di = 0 where i is not eligible in d, x_di ≤ s_d·B_d
//!            Σ_d p_d·x_di ≤ C_i                       (no double funding across pools)
//!            x_di = 0 or x_di ≥ m_d                    (minimum grant: drop and re-solve)
//! ```
//! with concave utilities (log, saturating, √, linear; [`input::Utility`]), w_i the governance mix of
//! normalised signals (AI recommendation, quadratic votes, …), and b the baseline (e.g. a QF result).
//!
//! The steps ([`allocate`]): validate ([`input`]); check that pools that must be spent can be, naming the
//! conflict otherwise ([`feasible`]); solve by Newton on the pools' prices ([`dual`]), or where that stalls the
//! conic program with Clarabel ([`solve`]); drop grants below
//! a pool's minimum and re-solve until none is left; round each pool to base units by largest remainder
//! with every bound kept exactly ([`round`]); explain each amount ([`explain`]). The optimum is a
//! Karush–Kuhn–Tucker point: a project funded inside its bounds by pool d has marginal value
//! w_i·u_i'(X_i)·p_d = μ_d, the pool's shadow price (Boyd & Vandenberghe, *Convex Optimization*, 2004,
//! §5.5.3, where one pool with log utilities is water-filling).

pub mod dual;
pub mod explain;
pub mod feasible;
pub mod gen;
pub mod input;
pub mod round;
pub mod signals;
pub mod solve;

use allonet_core::{digest, Address, Digest, TokenAmount};
use alloy_primitives::U256;
use rayon::prelude::*;
use serde::Serialize;

pub use explain::{Allocation, PoolResult, ProjectResult};
pub use input::{Pool, Problem, Project, Utility};
pub use solve::{Continuous, Pair};

/// Schema tag of allocation files.
pub const ALLOCATION_SCHEMA: &str = "allonet.allocation/1";

/// Why an allocation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocError {
    /// A field of the instance is wrong: `file: field: message`.
    #[error("{file}: {}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Input { file: String, field: String, message: String },
    /// The constraints admit no allocation; the message says which conflict.
    #[error("infeasible: {0}")]
    Infeasible(String),
    /// The solver failed.
    #[error("solver: {0}")]
    Solver(String),
}

impl AllocError {
    pub(crate) fn input(file: &str, field: &str, message: impl Into<String>) -> Self {
        AllocError::Input { file: file.into(), field: field.into(), message: message.into() }
    }
}

pub(crate) fn tok(x: u128) -> TokenAmount {
    TokenAmount(U256::from(x))
}

/// The continuous optimum after the minimum-grant rule: which pairs remain, their amounts, duals.
#[derive(Debug, Clone)]
pub struct Solved {
    pub pairs: Vec<Pair>,
    pub sol: Continuous,
    /// Pairs dropped because the optimum gave them less than the pool's minimum.
    pub dropped: Vec<(usize, usize)>,
    /// Solver calls made (1 + re-solves after drops).
    pub rounds: u32,
    pub iterations: u32,
}

/// Every eligible pair with room above zero and above the pool's minimum, in pool-then-project order.
/// A pair with room left out here counts as `NotWorthIt` or `NoRoom` in the explanation.
pub fn pairs(p: &Problem) -> Vec<Pair> {
    let mut out = Vec::new();
    for d in 0..p.pools.len() {
        for i in 0..p.projects.len() {
            let ub = p.pair_bound(d, i);
            // A project of weight 0 adds nothing: it is a variable only where the budget must be spent or
            // the baseline pulls (else the solver would be indifferent and could hand it slack budget).
            let wanted =
                p.projects[i].weight > 0.0 || p.pools[d].spend_all || (p.rho > 0.0 && p.projects[i].baseline[d] > 0);
            if wanted && ub > 0 && ub >= p.pools[d].min_grant {
                out.push(Pair { d, i, ub });
            }
        }
    }
    out
}

/// Relative size below which a solver amount is zero (an interior-point method never returns exact zeros).
pub const ZERO_TOL: f64 = 1e-9;

/// Solves over `pairs`, then applies the minimum-grant rule: every pair the optimum funds with less than
/// its pool's minimum (but more than solver noise) is dropped, and the rest re-solved, until none is left.
/// Deterministic: the same pairs and the same solver give the same drops.
pub fn solve_with_minimums(
    p: &Problem,
    mut pairs: Vec<Pair>,
    pools: &[usize],
    context: &str,
) -> Result<Solved, AllocError> {
    feasible::check(p, &pairs, pools, context)?;
    let mut dropped = Vec::new();
    let mut rounds = 0;
    let mut iterations = 0;
    loop {
        let mut sol = solve::solve(p, &pairs).map_err(|e| match (e, dropped.len()) {
            (AllocError::Solver(m), n) if n > 0 => AllocError::Infeasible(format!(
                "after dropping {n} grants below their pool's min_grant{context}, the rest cannot be solved ({m}): \
                 the pools that must be spent are left with (almost) no room; lower min_grant or spend_all"
            )),
            (e, _) => e,
        })?;
        rounds += 1;
        iterations += sol.iterations;
        let mut keep = Vec::with_capacity(pairs.len());
        let mut drop_now = Vec::new();
        for (k, pr) in pairs.iter().enumerate() {
            let pool = &p.pools[pr.d];
            let x = sol.x[k];
            let noise = ZERO_TOL * pool.budget_tokens().max(1.0);
            let m = pool.min_grant as f64 / pool.unit();
            if pool.min_grant > 0 && x > noise && x < m * (1.0 - 1e-7) {
                drop_now.push(k);
            } else {
                keep.push(k);
            }
        }
        if drop_now.is_empty() {
            for (k, pr) in pairs.iter().enumerate() {
                let noise = ZERO_TOL * p.pools[pr.d].budget_tokens().max(1.0);
                if sol.x[k] <= noise {
                    sol.x[k] = 0.0;
                }
            }
            return Ok(Solved { pairs, sol, dropped, rounds, iterations });
        }
        dropped.extend(drop_now.iter().map(|&k| (pairs[k].d, pairs[k].i)));
        pairs = keep.iter().map(|&k| pairs[k]).collect();
        let ctx = format!("{context} after dropping {} grants below their pool's min_grant", dropped.len());
        feasible::check(p, &pairs, pools, &ctx)?;
    }
}

/// One payment of a pool's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanLine {
    pub project: String,
    pub address: Address,
    /// Base units.
    pub amount: TokenAmount,
}

/// What is digested as "the plan": every pool's exact payments.
#[derive(Serialize)]
struct PlanBody<'a> {
    schema: &'a str,
    input_digest: Digest,
    pools: Vec<(&'a str, &'a [PlanLine])>,
}

/// Runs the whole allocation: feasibility, solve, minimum grants, exact rounding, explanations, digests.
pub fn allocate(p: &Problem) -> Result<Allocation, AllocError> {
    let all = pairs(p);
    let every: Vec<usize> = (0..p.pools.len()).collect();
    let main = solve_with_minimums(p, all.clone(), &every, "")?;
    let amounts = round::apportion(p, &main)?;
    // Each pool alone, for comparison: independent solves, run in parallel; results by index.
    let alone: Vec<Result<Solved, AllocError>> = (0..p.pools.len())
        .into_par_iter()
        .map(|d| {
            let mine: Vec<Pair> = all.iter().copied().filter(|k| k.d == d).collect();
            solve_with_minimums(p, mine, &[d], &format!(" (pool `{}` alone)", p.pools[d].id))
        })
        .collect();
    // The comparison is informational: if a pool alone cannot be solved, it is reported missing.
    let alone: Option<Vec<Solved>> = alone.into_iter().collect::<Result<_, _>>().ok();
    let mut result = explain::explain(p, &main, &amounts, alone.as_deref());
    result.plan_digest = plan_digest(p, &result);
    Ok(result)
}

/// The digest of the plan: input digest and each pool's payments.
pub fn plan_digest(p: &Problem, a: &Allocation) -> Digest {
    digest(&PlanBody {
        schema: ALLOCATION_SCHEMA,
        input_digest: p.input_digest,
        pools: a.pools.iter().map(|r| (r.id.as_str(), r.payments.as_slice())).collect(),
    })
}
