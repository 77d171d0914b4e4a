//! The continuous problem: [`solve`] tries the fast path ([`crate::dual`], Newton on the pools' prices) and
//! polishes it; where that stalls, the conic program goes to Clarabel (Goulart & Chen, "Clarabel: An
//! interior-point solver for conic programs with quadratic objectives", arXiv:2405.12762, 2024).
//!
//! Variables are scaled to units of value: y_k = p_d·x_k / V for each eligible pair k = (d, i), where V is
//! the average value per project, so that the solver sees numbers near 1. Each project's utility becomes
//! a cone (Boyd & Vandenberghe, *Convex Optimization*, 2004, §4.6: exponential and second-order cones):
//! - log:        t ≤ ln(ã + Y)         ⇔ (t, 1, ã + Y) ∈ K_exp
//! - saturating: t ≥ e^(−Y/s̃)          ⇔ (−Y/s̃, 1, t) ∈ K_exp, and u = s̃(1 − t)
//! - sqrt:       t ≤ √(ã + Y)          ⇔ ‖(2t, ã + Y − 1)‖ ≤ ã + Y + 1
//! - linear:     w·Y directly in the objective,
//!
//! with Y = Σ_d y_di, ã = a/V, s̃ = s/V. The baseline pull ρ(x − b)² is the quadratic term, with a
//! tie-break η·y² (η = 10⁻⁸ of the objective's scale): where two pools could fund a project equally well the
//! split would otherwise be arbitrary; with it the optimum is unique (the least-squares split) and moves the
//! objective by about 10⁻⁸ of itself (10⁻⁹ left the fast path's prices unable to resolve the split: an amount
//! moves by ulp(μ)/η). The budget rows' duals are the pools' shadow prices.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT};

use crate::input::{Problem, Utility};
use crate::AllocError;

/// One variable: what pool `d` gives project `i`, at most `ub` base units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub d: usize,
    pub i: usize,
    pub ub: u128,
}

/// The continuous optimum.
#[derive(Debug, Clone, PartialEq)]
pub struct Continuous {
    /// Per pair, whole tokens.
    pub x: Vec<f64>,
    /// Per pool, μ_d: the objective gained by one more whole token of budget (0 for pools without pairs).
    pub mu: Vec<f64>,
    /// Per project, ν_i: the objective gained by one more unit of value of its cross-pool cap.
    pub nu: Vec<f64>,
    pub iterations: u32,
    /// Which method found it: `newton` (the dual fast path, [`crate::dual`]) or `clarabel`.
    pub solver: &'static str,
}

/// The units the solvers work in: V, the average value per funded project (variables are value / V), and
/// S, the largest utility coefficient (the objective is divided by it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    pub v: f64,
    pub s: f64,
}

/// Tie-break weight in scaled units: η·Σ y² is subtracted from the scaled objective.
pub const TIE_BREAK: f64 = 1e-8;

impl Scaling {
    pub fn of(p: &Problem, pairs: &[Pair]) -> Scaling {
        let nd = p.pools.len();
        let mut active = vec![false; nd];
        let mut funded = vec![false; p.projects.len()];
        for pr in pairs {
            active[pr.d] = true;
            funded[pr.i] = true;
        }
        let total_value: f64 =
            (0..nd).filter(|&d| active[d]).map(|d| p.pools[d].price * p.pools[d].budget_tokens()).sum();
        let n = funded.iter().filter(|f| **f).count().max(1);
        let v = if total_value > 0.0 { total_value / n as f64 } else { 1.0 };
        let s = (0..p.projects.len()).filter(|&i| funded[i]).map(|i| Scaling::coef_of(p, i, v)).fold(0.0f64, f64::max);
        Scaling { v, s: if s > 0.0 { s } else { 1.0 } }
    }

    fn coef_of(p: &Problem, i: usize, v: f64) -> f64 {
        let w = p.projects[i].weight;
        match p.projects[i].utility {
            Utility::Log { .. } => w,
            Utility::Saturating { .. } | Utility::Linear => w * v,
            Utility::Sqrt { .. } => w * v.sqrt(),
        }
    }

    /// ε_d, the tie-break η·y² in the instance's units: objective per (whole token of pool d)².
    pub fn tie_break(&self, p: &Problem, d: usize) -> f64 {
        let c = p.pools[d].price / self.v;
        TIE_BREAK * self.s * c * c
    }

    /// The objective coefficient of project i's scaled utility term.
    pub fn coef(&self, p: &Problem, i: usize) -> f64 {
        Scaling::coef_of(p, i, self.v)
    }
}

/// Solves the continuous problem over `pairs` (only the pools they name take part): Newton's method on the
/// pools' prices ([`crate::dual`]) polished to the exact optimum of its active set, or, where that does not
/// converge, Clarabel ([`solve_clarabel`]).
pub fn solve(p: &Problem, pairs: &[Pair]) -> Result<Continuous, AllocError> {
    if let Some(c) = solve_newton(p, pairs) {
        return Ok(c);
    }
    solve_clarabel(p, pairs)
}

/// The fast path alone: Newton on the prices, then the polishing step; `None` where either fails.
pub fn solve_newton(p: &Problem, pairs: &[Pair]) -> Option<Continuous> {
    if pairs.is_empty() {
        return None;
    }
    let (c, exact) = crate::dual::solve(p, pairs)?;
    // The dual point meets every optimality condition but the budgets, which hold to 10⁻⁹ when `exact`; the
    // polishing step takes them to rounding error where it can.
    match polish(p, pairs, &c) {
        Some(c) => Some(c),
        None if exact => Some(c),
        None => None,
    }
}

/// Solves the continuous problem over `pairs` with Clarabel.
pub fn solve_clarabel(p: &Problem, pairs: &[Pair]) -> Result<Continuous, AllocError> {
    let nd = p.pools.len();
    let ni = p.projects.len();
    let npairs = pairs.len();
    let mut mu = vec![0.0; nd];
    let mut nu = vec![0.0; ni];
    if npairs == 0 {
        return Ok(Continuous { x: vec![], mu, nu, iterations: 0, solver: "none" });
    }
    let mut by_project: Vec<Vec<usize>> = vec![Vec::new(); ni];
    let mut by_pool: Vec<Vec<usize>> = vec![Vec::new(); nd];
    for (k, pr) in pairs.iter().enumerate() {
        by_project[pr.i].push(k);
        by_pool[pr.d].push(k);
    }
    let active: Vec<usize> = (0..nd).filter(|&d| !by_pool[d].is_empty()).collect();
    let funded: Vec<usize> = (0..ni).filter(|&i| !by_project[i].is_empty()).collect();
    let sc = Scaling::of(p, pairs);
    let (v, s) = (sc.v, sc.s);
    let coef = |i: usize| sc.coef(p, i);
    let scale = |d: usize| v / p.pools[d].price; // tokens per scaled unit

    // Columns: pairs, then one t per project with a cone.
    let mut tcol = vec![usize::MAX; ni];
    let mut ncol = npairs;
    for &i in &funded {
        if !matches!(p.projects[i].utility, Utility::Linear) {
            tcol[i] = ncol;
            ncol += 1;
        }
    }
    let mut q = vec![0.0; ncol];
    let (mut pi, mut pj, mut pv) = (Vec::new(), Vec::new(), Vec::new());
    for (k, pr) in pairs.iter().enumerate() {
        let c = scale(pr.d);
        // ρ(x − b)² with x = c·y: ½·(2ρc²)·y² − 2ρc·b·y (+ const); and the tie-break η·y².
        let b = p.projects[pr.i].baseline[pr.d] as f64 / p.pools[pr.d].unit();
        pi.push(k);
        pj.push(k);
        pv.push(2.0 * p.rho * c * c / s + 2.0 * TIE_BREAK);
        q[k] -= 2.0 * p.rho * c * b / s;
        if matches!(p.projects[pr.i].utility, Utility::Linear) {
            q[k] -= coef(pr.i) / s;
        }
    }
    for &i in &funded {
        let c = coef(i) / s;
        match p.projects[i].utility {
            Utility::Log { .. } | Utility::Sqrt { .. } => q[tcol[i]] = -c,
            Utility::Saturating { s: sat } => q[tcol[i]] = c * sat / v,
            Utility::Linear => {}
        }
    }

    let (mut ai, mut aj, mut av, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut row = 0usize;
    let mut push_row = |entries: &mut dyn Iterator<Item = (usize, f64)>, rhs: f64, b: &mut Vec<f64>| -> usize {
        for (col, val) in entries {
            ai.push(row);
            aj.push(col);
            av.push(val);
        }
        b.push(rhs);
        row += 1;
        row - 1
    };
    let mut cones = Vec::new();
    let mut budget_row = vec![usize::MAX; nd];
    // Zero cone: pools that must be spent.
    let eq: Vec<usize> = active.iter().copied().filter(|&d| p.pools[d].spend_all).collect();
    for &d in &eq {
        let bt = p.pools[d].budget_tokens() / scale(d);
        budget_row[d] = push_row(&mut by_pool[d].iter().map(|&k| (k, 1.0)), bt, &mut b);
    }
    if !eq.is_empty() {
        cones.push(SupportedConeT::ZeroConeT(eq.len()));
    }
    let nonneg_start = b.len();
    for &d in active.iter().filter(|&&d| !p.pools[d].spend_all) {
        let bt = p.pools[d].budget_tokens() / scale(d);
        budget_row[d] = push_row(&mut by_pool[d].iter().map(|&k| (k, 1.0)), bt, &mut b);
    }
    for k in 0..npairs {
        push_row(&mut std::iter::once((k, -1.0)), 0.0, &mut b);
    }
    for (k, pr) in pairs.iter().enumerate() {
        if pr.ub < p.pools[pr.d].budget {
            let ub = pr.ub as f64 / p.pools[pr.d].unit() / scale(pr.d);
            push_row(&mut std::iter::once((k, 1.0)), ub, &mut b);
        }
    }
    let mut cap_row = vec![usize::MAX; ni];
    for &i in &funded {
        if let Some(c) = p.projects[i].cap {
            cap_row[i] = push_row(&mut by_project[i].iter().map(|&k| (k, 1.0)), c / v, &mut b);
        }
    }
    cones.push(SupportedConeT::NonnegativeConeT(b.len() - nonneg_start));
    for &i in &funded {
        let ks = &by_project[i];
        match p.projects[i].utility {
            Utility::Log { a } => {
                push_row(&mut std::iter::once((tcol[i], -1.0)), 0.0, &mut b);
                push_row(&mut std::iter::empty(), 1.0, &mut b);
                push_row(&mut ks.iter().map(|&k| (k, -1.0)), a / v, &mut b);
                cones.push(SupportedConeT::ExponentialConeT());
            }
            Utility::Saturating { s: sat } => {
                let st = sat / v;
                push_row(&mut ks.iter().map(|&k| (k, 1.0 / st)), 0.0, &mut b);
                push_row(&mut std::iter::empty(), 1.0, &mut b);
                push_row(&mut std::iter::once((tcol[i], -1.0)), 0.0, &mut b);
                cones.push(SupportedConeT::ExponentialConeT());
            }
            Utility::Sqrt { a } => {
                let at = a / v;
                push_row(&mut ks.iter().map(|&k| (k, -1.0)), at + 1.0, &mut b);
                push_row(&mut std::iter::once((tcol[i], -2.0)), 0.0, &mut b);
                push_row(&mut ks.iter().map(|&k| (k, -1.0)), at - 1.0, &mut b);
                cones.push(SupportedConeT::SecondOrderConeT(3));
            }
            Utility::Linear => {}
        }
    }
    let m = b.len();
    let pm = CscMatrix::new_from_triplets(ncol, ncol, pi, pj, pv);
    let am = CscMatrix::new_from_triplets(m, ncol, ai, aj, av);
    // First a moderate tolerance, polished to the exact optimum of its active set; if the polish cannot
    // confirm it, tight tolerances (where the last digits stall within 80 iterations, looser ones) and
    // multipliers refined from the primal.
    let mut last = String::new();
    // (tolerance, static regularisation, iteration limit, whether a stall is accepted, polish required)
    let attempts = [
        (1e-9, 1e-12, 200, false, true),
        (1e-12, 1e-12, 80, false, false),
        (1e-10, 1e-12, 400, true, false),
        (1e-8, 1e-8, 400, true, false),
    ];
    let mut iterations = 0;
    for (tol, reg, max_iter, lenient, polish_required) in attempts {
        let settings = DefaultSettingsBuilder::default()
            .verbose(false)
            .tol_gap_abs(tol)
            .tol_gap_rel(tol)
            .tol_feas(tol)
            .static_regularization_constant(reg)
            .max_iter(max_iter)
            .build()
            .map_err(|e| AllocError::Solver(format!("{e:?}")))?;
        let mut solver =
            DefaultSolver::new(&pm, &q, &am, &b, &cones, settings).map_err(|e| AllocError::Solver(format!("{e:?}")))?;
        solver.solve();
        let sol = &solver.solution;
        iterations += sol.iterations;
        match sol.status {
            SolverStatus::Solved => {}
            SolverStatus::AlmostSolved if lenient => {}
            SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => {
                return Err(AllocError::Infeasible(
                    "the constraints admit no allocation (the solver found a certificate of infeasibility)".into(),
                ))
            }
            other => {
                last = format!("Clarabel stopped: {other:?} after {} iterations", sol.iterations);
                continue;
            }
        }
        let x: Vec<f64> = pairs.iter().enumerate().map(|(k, pr)| (sol.x[k] * scale(pr.d)).max(0.0)).collect();
        for &d in &active {
            mu[d] = sol.z[budget_row[d]] * s * p.pools[d].price / v;
        }
        for &i in &funded {
            if cap_row[i] != usize::MAX {
                nu[i] = sol.z[cap_row[i]] * s / v;
            }
        }
        let mut c = Continuous { x, mu: mu.clone(), nu: nu.clone(), iterations, solver: "clarabel" };
        if let Some(polished) = polish(p, pairs, &c) {
            return Ok(polished);
        }
        if polish_required {
            continue;
        }
        refine_duals(p, pairs, &mut c);
        return Ok(c);
    }
    Err(AllocError::Solver(last))
}

/// Refines the multipliers from the primal point: the solver's duals are accurate to its tolerance, while
/// the optimality conditions fix them exactly once the primal and its active set are known. μ_d is the
/// median of the net marginal values of pool d's interior pairs of projects whose cap does not bind, and
/// ν_i, for a project at its cap, the mean of what its interior pairs leave above their pool's μ (as in
/// the polishing step of OSQP: Stellato et al., "OSQP: an operator splitting solver for quadratic
/// programs", Math. Prog. Comp. 12, 2020, §4.3).
fn refine_duals(p: &Problem, pairs: &[Pair], c: &mut Continuous) {
    let nd = p.pools.len();
    let ni = p.projects.len();
    let mut value = vec![0.0; ni];
    for (k, pr) in pairs.iter().enumerate() {
        value[pr.i] += p.pools[pr.d].price * c.x[k];
    }
    let sc = Scaling::of(p, pairs);
    let near = |k: usize| 1e-7 * p.pools[pairs[k].d].budget_tokens().max(1.0);
    let interior = |k: usize| c.x[k] > near(k) && c.x[k] < pairs[k].ub as f64 / p.pools[pairs[k].d].unit() - near(k);
    let capped = |i: usize| c.nu[i] > 0.0 && p.projects[i].cap.is_some_and(|cap| value[i] >= cap * (1.0 - 1e-7));
    // g_k without the cap's multiplier.
    let gross = |k: usize| {
        let pr = pairs[k];
        let pj = &p.projects[pr.i];
        let pool = &p.pools[pr.d];
        let b = pj.baseline[pr.d] as f64 / pool.unit();
        pj.weight * pj.utility.slope(value[pr.i]) * pool.price
            - 2.0 * p.rho * (c.x[k] - b)
            - 2.0 * sc.tie_break(p, pr.d) * c.x[k]
    };
    let mut per_pool: Vec<Vec<f64>> = vec![Vec::new(); nd];
    for k in 0..pairs.len() {
        if interior(k) && !capped(pairs[k].i) {
            per_pool[pairs[k].d].push(gross(k));
        }
    }
    for (d, g) in per_pool.iter_mut().enumerate() {
        if !g.is_empty() {
            g.sort_by(f64::total_cmp);
            let m = g[g.len() / 2];
            c.mu[d] = if p.pools[d].spend_all { m } else { m.max(0.0) };
        }
    }
    let mut sum = vec![(0.0, 0usize); ni];
    for (k, pr) in pairs.iter().enumerate() {
        if interior(k) && capped(pr.i) {
            sum[pr.i].0 += (gross(k) - c.mu[pr.d]) / p.pools[pr.d].price;
            sum[pr.i].1 += 1;
        }
    }
    for (i, (s, n)) in sum.into_iter().enumerate() {
        if n > 0 {
            c.nu[i] = (s / n as f64).max(0.0);
        }
    }
}

/// The objective Σ_i w_i·u_i(X_i) − ρ·Σ (x_di − b_di)², in the instance's units, at `x` (whole tokens per pair).
pub fn objective(p: &Problem, pairs: &[Pair], x: &[f64]) -> f64 {
    let mut value = vec![0.0; p.projects.len()];
    let mut pull = 0.0;
    for (pr, &xk) in pairs.iter().zip(x) {
        value[pr.i] += p.pools[pr.d].price * xk;
        if p.rho > 0.0 {
            let b = p.projects[pr.i].baseline[pr.d] as f64 / p.pools[pr.d].unit();
            pull += (xk - b) * (xk - b);
        }
    }
    // The pull also counts baselines on pairs that are not variables (ineligible or dropped).
    if p.rho > 0.0 {
        let mut is_pair = std::collections::HashSet::new();
        for pr in pairs {
            is_pair.insert((pr.d, pr.i));
        }
        for (i, pj) in p.projects.iter().enumerate() {
            for (d, &bb) in pj.baseline.iter().enumerate() {
                if bb > 0 && !is_pair.contains(&(d, i)) {
                    let b = bb as f64 / p.pools[d].unit();
                    pull += b * b;
                }
            }
        }
    }
    let mut f: f64 = p.projects.iter().zip(&value).map(|(pj, &xv)| pj.weight * pj.utility.value(xv)).sum();
    f -= p.rho * pull;
    f
}

/// Polishes an interior-point solution to the exact optimum (as OSQP's polishing step, Stellato et al.,
/// "OSQP: an operator splitting solver for quadratic programs", Math. Prog. Comp. 12, 2020, §4.3): with each
/// pair's state fixed (at zero, at its bound, or inside), the optimality conditions are equations in the inside
/// amounts, the binding pools' prices μ and the capped projects' ν, solved by Newton's method (each project's
/// block is diagonal plus rank one, inverted by Sherman–Morrison; the pools' prices by a D×D Schur complement).
/// A state that the solution contradicts (an amount past its bound, a multiplier of the wrong sign, a cap
/// exceeded) is flipped and the equations solved again, a few times at most. `None` if no state is confirmed.
fn polish(p: &Problem, pairs: &[Pair], c: &Continuous) -> Option<Continuous> {
    let nd = p.pools.len();
    let ni = p.projects.len();
    let np = pairs.len();
    let sc = Scaling::of(p, pairs);
    let price: Vec<f64> = pairs.iter().map(|k| p.pools[k.d].price).collect();
    let ub: Vec<f64> = pairs.iter().map(|k| k.ub as f64 / p.pools[k.d].unit()).collect();
    let base: Vec<f64> = pairs.iter().map(|k| p.projects[k.i].baseline[k.d] as f64 / p.pools[k.d].unit()).collect();
    let q: Vec<f64> = pairs.iter().map(|k| 2.0 * (p.rho + sc.tie_break(p, k.d))).collect();
    let budget: Vec<f64> = (0..nd).map(|d| p.pools[d].budget_tokens()).collect();
    let mut by_project: Vec<Vec<usize>> = vec![Vec::new(); ni];
    let mut in_pool = vec![false; nd];
    for (k, pr) in pairs.iter().enumerate() {
        by_project[pr.i].push(k);
        in_pool[pr.d] = true;
    }
    let values = |x: &[f64]| -> Vec<f64> {
        let mut v = vec![0.0; ni];
        for (k, pr) in pairs.iter().enumerate() {
            v[pr.i] += price[k] * x[k];
        }
        v
    };
    let spent = |x: &[f64], d: usize| -> f64 { pairs.iter().zip(x).filter(|(k, _)| k.d == d).map(|(_, v)| v).sum() };
    let mu_scale = c.mu.iter().fold(0.0f64, |a, m| a.max(m.abs())).max(f64::MIN_POSITIVE);
    let v0 = values(&c.x);
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Zero,
        Top,
        Inside,
    }
    let near = |k: usize| 1e-7 * budget[pairs[k].d].max(1.0);
    let mut state: Vec<State> = (0..np)
        .map(|k| {
            if c.x[k] <= near(k) {
                State::Zero
            } else if c.x[k] >= ub[k] - near(k) {
                State::Top
            } else {
                State::Inside
            }
        })
        .collect();
    let mut capped: Vec<bool> =
        (0..ni).map(|i| p.projects[i].cap.is_some_and(|cap| v0[i] >= cap * (1.0 - 1e-7))).collect();
    let mut binding: Vec<bool> = (0..nd)
        .map(|d| {
            in_pool[d]
                && (p.pools[d].spend_all || (c.mu[d] > 1e-8 * mu_scale && spent(&c.x, d) >= budget[d] * (1.0 - 1e-7)))
        })
        .collect();
    for _ in 0..8 {
        let mut x: Vec<f64> = (0..np)
            .map(|k| match state[k] {
                State::Zero => 0.0,
                State::Top => ub[k],
                State::Inside => c.x[k].clamp(0.0, ub[k]),
            })
            .collect();
        // Unknowns: prices of binding pools with a pair inside; ν of capped projects with a pair inside.
        let has_inside: Vec<bool> =
            (0..nd).map(|d| (0..np).any(|k| pairs[k].d == d && state[k] == State::Inside)).collect();
        let free_mu: Vec<bool> = (0..nd).map(|d| binding[d] && has_inside[d]).collect();
        let free_nu: Vec<bool> =
            (0..ni).map(|i| capped[i] && by_project[i].iter().any(|&k| state[k] == State::Inside)).collect();
        let bidx: Vec<usize> = (0..nd).filter(|&d| free_mu[d]).collect();
        let nb = bidx.len();
        let mut slot = vec![usize::MAX; nd];
        for (sl, &d) in bidx.iter().enumerate() {
            slot[d] = sl;
        }
        let mut mu: Vec<f64> = (0..nd).map(|d| if binding[d] { c.mu[d] } else { 0.0 }).collect();
        let mut nu: Vec<f64> = (0..ni).map(|i| if capped[i] { c.nu[i].max(0.0) } else { 0.0 }).collect();
        let grad = |x: &[f64], value: &[f64], mu: &[f64], nu: &[f64], k: usize| -> f64 {
            let pr = pairs[k];
            let pj = &p.projects[pr.i];
            pj.weight * pj.utility.slope(value[pr.i]) * price[k] - q[k] * x[k] + 2.0 * p.rho * base[k]
                - nu[pr.i] * price[k]
                - mu[pr.d]
        };
        let mut value;
        for _ in 0..30 {
            value = values(&x);
            let mut worst = 0.0f64;
            for k in (0..np).filter(|&k| state[k] == State::Inside) {
                worst = worst.max(grad(&x, &value, &mu, &nu, k).abs() / mu_scale);
            }
            for &d in &bidx {
                worst = worst.max((budget[d] - spent(&x, d)).abs() / budget[d].max(1.0) * 1e3);
            }
            for i in (0..ni).filter(|&i| free_nu[i]) {
                let cap = p.projects[i].cap.unwrap_or(0.0);
                worst = worst.max((cap - value[i]).abs() / cap.max(1.0) * 1e3);
            }
            if worst <= 1e-13 {
                break;
            }
            let mut s = vec![vec![0.0; nb]; nb];
            let mut rhs: Vec<f64> = bidx.iter().map(|&d| budget[d] - spent(&x, d)).collect();
            let mut steps = Vec::new();
            for i in 0..ni {
                let ks: Vec<usize> = by_project[i].iter().copied().filter(|&k| state[k] == State::Inside).collect();
                if ks.is_empty() {
                    continue;
                }
                let pj = &p.projects[i];
                let a = pj.weight * pj.utility.curvature(value[i]);
                let dinv: Vec<f64> = ks.iter().map(|&k| 1.0 / q[k]).collect();
                let pk: Vec<f64> = ks.iter().map(|&k| price[k]).collect();
                let ptdp: f64 = pk.iter().zip(&dinv).map(|(p, d)| p * p * d).sum();
                let den = 1.0 - a * ptdp;
                // H⁻¹v = −D⁻¹v − a·D⁻¹p·(pᵀD⁻¹v)/den, for H = a·ppᵀ − D.
                let apply = |v: &[f64]| -> Vec<f64> {
                    let t: f64 = v.iter().zip(&pk).zip(&dinv).map(|((v, p), d)| v * p * d).sum();
                    (0..v.len()).map(|j| -dinv[j] * v[j] - a * dinv[j] * pk[j] * t / den).collect()
                };
                let f: Vec<f64> = ks.iter().map(|&k| -grad(&x, &value, &mu, &nu, k)).collect();
                let mut c0 = apply(&f);
                let mut c1: Vec<Vec<f64>> = vec![vec![0.0; nb]; ks.len()];
                for (j, &k) in ks.iter().enumerate() {
                    let sl = slot[pairs[k].d];
                    if sl != usize::MAX {
                        let mut e = vec![0.0; ks.len()];
                        e[j] = 1.0;
                        for (r, v) in apply(&e).into_iter().enumerate() {
                            c1[r][sl] += v;
                        }
                    }
                }
                let (mut nu0, mut nu1) = (0.0, vec![0.0; nb]);
                if free_nu[i] {
                    let hp = apply(&pk);
                    let php: f64 = pk.iter().zip(&hp).map(|(p, h)| p * h).sum();
                    if php != 0.0 {
                        let target = pj.cap.unwrap_or(0.0) - value[i];
                        let pc0: f64 = pk.iter().zip(&c0).map(|(p, v)| p * v).sum();
                        nu0 = (target - pc0) / php;
                        for (sl, n1) in nu1.iter_mut().enumerate() {
                            let pc1: f64 = pk.iter().zip(&c1).map(|(p, row)| p * row[sl]).sum();
                            *n1 = -pc1 / php;
                        }
                        for r in 0..ks.len() {
                            c0[r] += nu0 * hp[r];
                            for sl in 0..nb {
                                c1[r][sl] += nu1[sl] * hp[r];
                            }
                        }
                    }
                }
                for (r, &k) in ks.iter().enumerate() {
                    let sl = slot[pairs[k].d];
                    if sl != usize::MAX {
                        rhs[sl] -= c0[r];
                        for (t, v) in c1[r].iter().enumerate() {
                            s[sl][t] += v;
                        }
                    }
                }
                steps.push((i, ks, c0, c1, nu0, nu1));
            }
            // A binding pool whose only inside pairs are capped projects' sole free pairs has an undetermined
            // price (any value in an interval satisfies the conditions): a little damping keeps it where it is.
            let dmu = if nb == 0 {
                Vec::new()
            } else {
                let top = (0..nb).map(|t| s[t][t].abs()).fold(0.0f64, f64::max);
                let mut damped = s.clone();
                for (t, row) in damped.iter_mut().enumerate() {
                    row[t] -= 1e-12 * top;
                }
                match lu_solve(s, rhs.clone()) {
                    Some(v) if v.iter().all(|x| x.is_finite()) => v,
                    _ => lu_solve(damped, rhs)?,
                }
            };
            for (i, ks, c0, c1, nu0, nu1) in &steps {
                for (r, &k) in ks.iter().enumerate() {
                    x[k] += c0[r] + c1[r].iter().zip(&dmu).map(|(a, b)| a * b).sum::<f64>();
                }
                if free_nu[*i] {
                    nu[*i] += nu0 + nu1.iter().zip(&dmu).map(|(a, b)| a * b).sum::<f64>();
                }
            }
            for (sl, &d) in bidx.iter().enumerate() {
                mu[d] += dmu[sl];
            }
        }
        value = values(&x);
        // Confirm the state, or flip what contradicts it.
        let tol = 1e-9;
        let mut flipped = false;
        for k in 0..np {
            let g = grad(&x, &value, &mu, &nu, k) / mu_scale;
            let to = match state[k] {
                State::Inside if x[k] > ub[k] * (1.0 + tol) => Some(State::Top),
                State::Inside if x[k] < -tol * ub[k].max(1.0) => Some(State::Zero),
                State::Inside if g.abs() > 1e-9 => None,
                State::Zero if g > 1e-9 => Some(State::Inside),
                State::Top if g < -1e-9 => Some(State::Inside),
                _ => None,
            };
            if let Some(t) = to {
                state[k] = t;
                flipped = true;
            }
        }
        for d in 0..nd {
            if !in_pool[d] {
                continue;
            }
            // A binding budget the equations could not meet (no pair of it inside): release its pairs.
            let gap = budget[d] - spent(&x, d);
            if binding[d] && gap.abs() > 1e-10 * budget[d].max(1.0) {
                let from = if gap > 0.0 { State::Zero } else { State::Top };
                for k in 0..np {
                    if pairs[k].d == d && state[k] == from {
                        state[k] = State::Inside;
                        flipped = true;
                    }
                }
            }
            if p.pools[d].spend_all {
                continue;
            }
            if !binding[d] && spent(&x, d) > budget[d] * (1.0 + 1e-12) {
                binding[d] = true;
                flipped = true;
            } else if binding[d] && mu[d] < -1e-12 * mu_scale {
                binding[d] = false;
                flipped = true;
            }
        }
        for i in 0..ni {
            let Some(cap) = p.projects[i].cap else { continue };
            if !capped[i] && value[i] > cap * (1.0 + 1e-12) {
                capped[i] = true;
                for &k in &by_project[i] {
                    if state[k] == State::Top {
                        state[k] = State::Inside;
                    }
                }
                flipped = true;
            } else if capped[i] && nu[i] < -1e-12 * mu_scale {
                capped[i] = false;
                flipped = true;
            }
        }
        if !flipped {
            let inside_ok =
                (0..np).all(|k| state[k] != State::Inside || grad(&x, &value, &mu, &nu, k).abs() / mu_scale <= 1e-9);
            let budgets_ok = (0..nd).all(|d| {
                !in_pool[d]
                    || (spent(&x, d) <= budget[d] * (1.0 + 1e-12)
                        && (!binding[d] || (budget[d] - spent(&x, d)).abs() <= 1e-10 * budget[d].max(1.0)))
            });
            if !inside_ok || !budgets_ok {
                return None;
            }
            let x = x.into_iter().zip(&ub).map(|(v, &u)| v.clamp(0.0, u)).collect();
            return Some(Continuous { x, mu, nu, iterations: c.iterations, solver: c.solver });
        }
    }
    None
}

/// Solves a small dense system by Gaussian elimination with partial pivoting.
pub(crate) fn lu_solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[piv][col] == 0.0 || !a[piv][col].is_finite() {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for r in col + 1..n {
            let f = a[r][col] / a[col][col];
            let (top, rest) = a.split_at_mut(r);
            for (x, y) in rest[0][col..].iter_mut().zip(&top[col][col..]) {
                *x -= f * y;
            }
            b[r] -= f * b[col];
        }
    }
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| a[r][c] * b[c]).sum();
        b[r] = (b[r] - s) / a[r][r];
    }
    Some(b)
}
