//! The fast exact path: Newton's method on the pools' prices.
//!
//! Pools are coupled only through their budgets; everything else (bounds, eligibility, the cross-pool cap, the
//! utility) belongs to one project. So for given shadow prices μ (one per pool) the problem splits into one
//! small problem per project (Bertsekas, *Nonlinear Programming*, 3rd ed., 2016, §6.1: separable problems and
//! the dual function), and the dual
//! ```text
//! g(μ) = Σ_i max_{0 ≤ x_i ≤ ub_i, Σ_d p_d x_di ≤ C_i} [ w_i·u_i(Σ_d p_d x_di) − Σ_d (κ_d x_di² − 2ρ b_di x_di + μ_d x_di) ] + Σ_d μ_d B_d
//! ```
//! (κ_d = ρ + ε_d, ε_d the tie-break) is convex, with gradient B − spent(μ) and a Hessian made of one diagonal
//! plus rank-one block per project (the same structure as the polishing step in [`crate::solve`]). Each
//! project's problem is solved exactly: with λ = w·u'(X) − ν its marginal value, every pair is the clamp
//! x_d = clamp((λ·p_d − μ_d + 2ρ·b_d)/(2κ_d), 0, ub_d), so X(λ) is piecewise linear and increasing, and λ is
//! the root of λ = w·u'(X(λ)) (or X(λ) = C_i when the cap binds), found on the segment between two breakpoints
//! (closed form for log, monotone Newton otherwise).
//!
//! The prices are found by Newton's method with an exact line search along the step (the dual is convex, so
//! its derivative along the step is increasing: Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006,
//! §3.5), pools whose every pair sits at a bound moving to the price at which the next pair leaves it. The
//! tie-break makes the dual very steep across pools of equal value price, so the tie-break is followed by
//! continuation: solved first a hundred times larger, then shrunk to its true size, each solve starting from
//! the last (Allgower & Georg, *Introduction to Numerical Continuation Methods*, 2003, ch. 1). The result goes
//! through the same polishing step as the interior-point solution; if either fails, the caller falls back to
//! Clarabel.

use rayon::prelude::*;

use crate::input::{Problem, Utility};
use crate::solve::{Continuous, Pair, Scaling};

/// The problem in project-major order.
struct Layout {
    nd: usize,
    /// Per project, its range in the pair arrays.
    start: Vec<usize>,
    /// Project of each range.
    project: Vec<usize>,
    /// Per pair (project-major): pool, price, upper bound (tokens), 2ρb, index in `pairs`, tie-break ε.
    d: Vec<usize>,
    price: Vec<f64>,
    ub: Vec<f64>,
    pull: Vec<f64>,
    index: Vec<usize>,
    eps: Vec<f64>,
    budget: Vec<f64>,
    spend_all: Vec<bool>,
    in_pool: Vec<bool>,
}

/// One project's exact answer at given prices.
#[derive(Clone, Copy, Default)]
struct Answer {
    /// Marginal value of one unit of value to the project (w·u'(X) − ν).
    lambda: f64,
    nu: f64,
    /// Whether the cross-pool cap binds.
    capped: bool,
    /// w·u''(X), the curvature of the project's utility where it stands.
    h: f64,
}

/// Projects solved in one parallel task: fixed, so the sums are the same whatever the thread count.
const CHUNK: usize = 128;

impl Layout {
    fn new(p: &Problem, pairs: &[Pair]) -> Layout {
        let nd = p.pools.len();
        let sc = Scaling::of(p, pairs);
        let mut by_project: Vec<Vec<usize>> = vec![Vec::new(); p.projects.len()];
        for (k, pr) in pairs.iter().enumerate() {
            by_project[pr.i].push(k);
        }
        let mut l = Layout {
            nd,
            start: vec![0],
            project: Vec::new(),
            d: Vec::new(),
            price: Vec::new(),
            ub: Vec::new(),
            pull: Vec::new(),
            index: Vec::new(),
            eps: Vec::new(),
            budget: (0..nd).map(|d| p.pools[d].budget_tokens()).collect(),
            spend_all: (0..nd).map(|d| p.pools[d].spend_all).collect(),
            in_pool: vec![false; nd],
        };
        for (i, ks) in by_project.iter().enumerate() {
            if ks.is_empty() {
                continue;
            }
            for &k in ks {
                let pr = pairs[k];
                let pool = &p.pools[pr.d];
                l.d.push(pr.d);
                l.price.push(pool.price);
                l.ub.push(pr.ub as f64 / pool.unit());
                l.pull.push(2.0 * p.rho * p.projects[i].baseline[pr.d] as f64 / pool.unit());
                l.index.push(k);
                l.eps.push(sc.tie_break(p, pr.d));
                l.in_pool[pr.d] = true;
            }
            l.project.push(i);
            l.start.push(l.d.len());
        }
        l
    }
}

/// Value X(λ) of a project's pairs at marginal value λ, with q the pairs' 2κ.
fn value_at(l: &Layout, r: std::ops::Range<usize>, q: &[f64], mu: &[f64], lambda: f64) -> f64 {
    r.map(|k| l.price[k] * ((lambda * l.price[k] - mu[l.d[k]] + l.pull[k]) / q[k]).clamp(0.0, l.ub[k])).sum()
}

/// Solves project `j` (index into `l.project`) at prices μ: fills its pairs' amounts in `out` (in the
/// project's own order).
fn project(p: &Problem, l: &Layout, j: usize, q: &[f64], mu: &[f64], out: &mut [f64], bp: &mut Vec<f64>) -> Answer {
    let r = l.start[j]..l.start[j + 1];
    let pj = &p.projects[l.project[j]];
    let w = pj.weight;
    let u = pj.utility;
    let cap = pj.cap;
    // Breakpoints: pair k starts at λ = lo_k and reaches its bound at hi_k.
    bp.clear();
    for k in r.clone() {
        let lo = (mu[l.d[k]] - l.pull[k]) / l.price[k];
        bp.push(lo);
        bp.push(lo + q[k] * l.ub[k] / l.price[k]);
    }
    bp.sort_by(f64::total_cmp);
    let f = |lambda: f64| lambda - w * u.slope(value_at(l, r.clone(), q, mu, lambda));
    // The first breakpoint at which f ≥ 0 (f is increasing): the root lies in the segment before it.
    let root_segment = |g: &dyn Fn(f64) -> bool| -> usize { bp.partition_point(|&b| !g(b)) };
    let lambda = if matches!(u, Utility::Linear) {
        w
    } else {
        let s = root_segment(&|b| f(b) >= 0.0);
        let (a, b) = (if s == 0 { f64::NEG_INFINITY } else { bp[s - 1] }, bp.get(s).copied().unwrap_or(f64::INFINITY));
        segment_root(l, r.clone(), q, mu, w, u, a, b)
    };
    let mut lambda = lambda;
    let mut nu = 0.0;
    let mut capped = false;
    if let Some(c) = cap {
        if value_at(l, r.clone(), q, mu, lambda) > c {
            // X(λ) = C on the segment where X crosses C.
            let s = root_segment(&|b| value_at(l, r.clone(), q, mu, b) >= c);
            let a = if s == 0 { f64::NEG_INFINITY } else { bp[s - 1] };
            let b = bp.get(s).copied().unwrap_or(f64::INFINITY);
            let (x0, slope) = segment_line(l, r.clone(), q, mu, a, b);
            let lc = if slope > 0.0 { (c - x0) / slope } else { b };
            nu = (w * u.slope(c) - lc).max(0.0);
            lambda = lc;
            capped = true;
        }
    }
    let mut value = 0.0;
    for k in r.clone() {
        let v = ((lambda * l.price[k] - mu[l.d[k]] + l.pull[k]) / q[k]).clamp(0.0, l.ub[k]);
        out[k - l.start[j]] = v;
        value += l.price[k] * v;
    }
    Answer { lambda, nu, capped, h: w * u.curvature(value) }
}

/// X(λ) = x0 + slope·λ on the open segment (a, b) between breakpoints.
fn segment_line(l: &Layout, r: std::ops::Range<usize>, q: &[f64], mu: &[f64], a: f64, b: f64) -> (f64, f64) {
    let mid = if a.is_finite() && b.is_finite() {
        0.5 * (a + b)
    } else if a.is_finite() {
        a + 1.0 + a.abs()
    } else if b.is_finite() {
        b - 1.0 - b.abs()
    } else {
        0.0
    };
    let (mut x0, mut slope) = (0.0, 0.0);
    for k in r {
        let pk = l.price[k];
        let lo = (mu[l.d[k]] - l.pull[k]) / pk;
        let hi = lo + q[k] * l.ub[k] / pk;
        if mid >= hi {
            x0 += pk * l.ub[k];
        } else if mid > lo {
            x0 += pk * (l.pull[k] - mu[l.d[k]]) / q[k];
            slope += pk * pk / q[k];
        }
    }
    (x0, slope)
}

/// The root of λ = w·u'(X(λ)) on the segment (a, b), where X is linear.
#[allow(clippy::too_many_arguments)]
fn segment_root(
    l: &Layout,
    r: std::ops::Range<usize>,
    q: &[f64],
    mu: &[f64],
    w: f64,
    u: Utility,
    a: f64,
    b: f64,
) -> f64 {
    let (x0, s) = segment_line(l, r.clone(), q, mu, a, b);
    if s == 0.0 {
        return w * u.slope(x0);
    }
    // Measure X from the segment's start, where it is known without cancellation.
    let (la, xa) = if a.is_finite() { (a, value_at(l, r, q, mu, a)) } else { (0.0, x0) };
    let xl = |lambda: f64| xa + s * (lambda - la);
    if let Utility::Log { a: shift } = u {
        // λ·(shift + xa + s·(λ − la)) = w: s·λ² + (shift + xa − s·la)·λ − w = 0.
        let bq = shift + xa - s * la;
        let disc = (bq * bq + 4.0 * s * w).sqrt();
        let root = if bq >= 0.0 { 2.0 * w / (bq + disc) } else { (disc - bq) / (2.0 * s) };
        return root.clamp(a, b);
    }
    // φ(λ) = λ − w·u'(X(λ)) is increasing and concave (u' convex): Newton from the left converges monotonically.
    let mut lambda = if a.is_finite() { a } else { (w * u.slope(x0.max(0.0))).min(b) };
    for _ in 0..60 {
        let xv = xl(lambda);
        let phi = lambda - w * u.slope(xv);
        let dphi = 1.0 - w * u.curvature(xv) * s;
        let next = (lambda - phi / dphi).clamp(a, b);
        if (next - lambda).abs() <= 1e-16 * lambda.abs().max(1e-300) {
            return next;
        }
        lambda = next;
    }
    lambda
}

/// Spent per pool, the Jacobian of spent in μ (D×D), and every project's answer, at prices μ.
struct Eval {
    spent: Vec<f64>,
    /// The Jacobian counting also the pairs that sit on a breakpoint (for pools flat in the strict one).
    jac_near: Vec<f64>,
    /// Per pool, Σ 1/q over its inside pairs: the scale against which the Jacobian's diagonal is flat.
    scale: Vec<f64>,
    jac: Vec<f64>,
    x: Vec<f64>,
    answers: Vec<Answer>,
}

/// Adds one project's Jacobian block over the pairs `t` = (pool, p/q, p²/q, 1/q): J = −diag(1/q) + c·t·tᵀ with
/// c = −h/(1 − h·S) (capped: 1/S), S = Σ p²/q. The diagonal is written −(1/q)·(1 − h·S₋)/(1 − h·S) (S₋ = S without
/// the pair; capped: S₋/S), exactly zero for a capped project's only free pair instead of a difference of two
/// large numbers.
fn add_block(jac: &mut [f64], nd: usize, t: &[(usize, f64, f64, f64)], capped: bool, h: f64) {
    let sum: f64 = t.iter().map(|x| x.2).sum();
    if sum == 0.0 {
        return;
    }
    let c = if capped { 1.0 / sum } else { -h / (1.0 - h * sum) };
    for &(d, td, wd, iq) in t {
        let rest = sum - wd;
        let keep = if capped { rest / sum } else { (1.0 - h * rest) / (1.0 - h * sum) };
        jac[d * nd + d] -= iq * keep;
        for &(e, te, _, _) in t {
            if e != d {
                jac[d * nd + e] += c * td * te;
            }
        }
    }
}

fn evaluate(p: &Problem, l: &Layout, q: &[f64], mu: &[f64]) -> Eval {
    let nd = l.nd;
    let nproj = l.project.len();
    let chunk = |c: usize| -> Eval {
        let js = c * CHUNK..((c + 1) * CHUNK).min(nproj);
        let base = l.start[js.start];
        let mut part = Eval {
            spent: vec![0.0; nd],
            scale: vec![0.0; nd],
            jac: vec![0.0; nd * nd],
            jac_near: vec![0.0; nd * nd],
            x: vec![0.0; l.start[js.end] - base],
            answers: Vec::with_capacity(js.len()),
        };
        let (mut inside, mut near) = (Vec::new(), Vec::new());
        let mut bp = Vec::new();
        for j in js {
            let r = l.start[j]..l.start[j + 1];
            let a = project(p, l, j, q, mu, &mut part.x[r.start - base..r.end - base], &mut bp);
            inside.clear();
            near.clear();
            for k in r {
                let v = part.x[k - base];
                part.spent[l.d[k]] += v;
                let entry = (l.d[k], l.price[k] / q[k], l.price[k] * l.price[k] / q[k], 1.0 / q[k]);
                if v > 0.0 && v < l.ub[k] {
                    part.scale[l.d[k]] += 1.0 / q[k];
                    inside.push(entry);
                    near.push(entry);
                    continue;
                }
                // A pair at a bound within rounding of its breakpoint: inside on the side where it enters.
                let margin = a.lambda * l.price[k] - mu[l.d[k]] + l.pull[k];
                let tol = 1e-12 * (a.lambda * l.price[k]).abs().max(mu[l.d[k]].abs());
                if (v <= 0.0 && margin >= -tol) || (v >= l.ub[k] && margin - q[k] * l.ub[k] <= tol) {
                    near.push(entry);
                }
            }
            add_block(&mut part.jac, nd, &inside, a.capped, a.h);
            add_block(&mut part.jac_near, nd, &near, a.capped, a.h);
            part.answers.push(a);
        }
        part
    };
    // The same chunks either way, so the same sums whatever the thread count; a few chunks are not worth
    // waking threads for.
    let n = nproj.div_ceil(CHUNK);
    let parts: Vec<Eval> =
        if n >= 4 { (0..n).into_par_iter().map(chunk).collect() } else { (0..n).map(chunk).collect() };
    let mut out = Eval {
        spent: vec![0.0; nd],
        scale: vec![0.0; nd],
        jac: vec![0.0; nd * nd],
        jac_near: vec![0.0; nd * nd],
        x: Vec::new(),
        answers: Vec::new(),
    };
    out.x.reserve(l.d.len());
    out.answers.reserve(nproj);
    for part in parts {
        for d in 0..nd {
            out.spent[d] += part.spent[d];
            out.scale[d] += part.scale[d];
        }
        for (t, v) in out.jac.iter_mut().zip(part.jac) {
            *t += v;
        }
        for (t, v) in out.jac_near.iter_mut().zip(part.jac_near) {
            *t += v;
        }
        out.answers.extend(part.answers);
        out.x.extend(part.x);
    }
    out
}

/// Solves the continuous problem by Newton's method on the pools' prices; `None` when it does not converge
/// (the caller then uses the interior-point solver). The flag says whether every budget holds to 10⁻⁹ (else the
/// line search stalled within 10⁻⁶ and only the polishing step can finish).
pub fn solve(p: &Problem, pairs: &[Pair]) -> Option<(Continuous, bool)> {
    let l = Layout::new(p, pairs);
    let nd = l.nd;
    if l.project.is_empty() {
        return None;
    }
    // Starting prices: one price per unit of value for every pool, the water level at which the projects,
    // each taking what its marginal value is worth up to its bounds, would take all the pools' value.
    let pi0 = water_level(p, &l);
    let mut mu: Vec<f64> = (0..nd).map(|d| if l.in_pool[d] { p.pools[d].price * pi0 } else { 0.0 }).collect();
    let mut iterations = 0u32;
    let mut last = None;
    // One pool has no ties between pools to resolve: no continuation needed.
    let stages: &[f64] = if l.in_pool.iter().filter(|b| **b).count() == 1 { &[1.0] } else { &[100.0, 1.0] };
    for &stretch in stages {
        let q: Vec<f64> = (0..l.d.len()).map(|k| 2.0 * (p.rho + stretch * l.eps[k])).collect();
        // An earlier stage only has to come close; the last must meet the budgets.
        let (tol, stall) = if stretch == 1.0 { (TOL, STALL_TOL) } else { (1e-6, f64::INFINITY) };
        let (m, e, it) = newton(p, &l, &q, mu, tol, stall)?;
        iterations += it;
        mu = m;
        last = Some(e);
    }
    let e = last?;
    let exact = stalled_ok(&l, &e, &mu, TOL);
    let mut x = vec![0.0; pairs.len()];
    for (k, &idx) in l.index.iter().enumerate() {
        x[idx] = e.x[k];
    }
    let mut nu = vec![0.0; p.projects.len()];
    for (j, a) in e.answers.iter().enumerate() {
        nu[l.project[j]] = a.nu;
    }
    Some((Continuous { x, mu, nu, iterations, solver: "newton" }, exact))
}

/// The common price per unit of value π at which Σ_i X_i(π) = Σ_d p_d·B_d, where X_i(π) solves w_i·u_i'(X) = π
/// within [0, min(C_i, Σ_d p_d·ub_di)]: the pools merged into one and the pair bounds relaxed to the project's
/// total. Bisection on log π (each step is one closed form per project).
fn water_level(p: &Problem, l: &Layout) -> f64 {
    let room: Vec<f64> = (0..l.project.len())
        .map(|j| {
            let total: f64 = (l.start[j]..l.start[j + 1]).map(|k| l.price[k] * l.ub[k]).sum();
            p.projects[l.project[j]].cap.map_or(total, |c| c.min(total))
        })
        .collect();
    let value: f64 = (0..l.nd).filter(|&d| l.in_pool[d]).map(|d| p.pools[d].price * l.budget[d]).sum();
    let taken = |pi: f64| -> f64 {
        l.project
            .iter()
            .zip(&room)
            .map(|(&i, &room)| {
                let pj = &p.projects[i];
                let w = pj.weight;
                let x = match pj.utility {
                    _ if w <= 0.0 => 0.0,
                    Utility::Log { a } => w / pi - a,
                    Utility::Sqrt { a } => (w / (2.0 * pi)).powi(2) - a,
                    Utility::Saturating { s } => s * (w / pi).ln(),
                    Utility::Linear => {
                        if w > pi {
                            room
                        } else {
                            0.0
                        }
                    }
                };
                x.clamp(0.0, room)
            })
            .sum()
    };
    let (mut lo, mut hi) = (1e-300f64.ln(), 1e300f64.ln());
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if taken(mid.exp()) > value {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (0.5 * (lo + hi)).exp()
}

/// Newton's method on the prices until every budget holds to `tol` (relative); returns prices, the last
/// evaluation and the iterations. Where it stalls (the prices cannot resolve a smaller step) the point is
/// returned if the budgets hold to `stall`, else `None`.
fn newton(p: &Problem, l: &Layout, q: &[f64], mut mu: Vec<f64>, tol: f64, stall: f64) -> Option<(Vec<f64>, Eval, u32)> {
    let nd = l.nd;
    let mut e = evaluate(p, l, q, &mu);
    let (mut best, mut since) = (f64::INFINITY, 0u32);
    for it in 0..60u32 {
        // Residual r = B − spent; a pool below budget at price zero stays there.
        let r: Vec<f64> = (0..nd).map(|d| l.budget[d] - e.spent[d]).collect();
        let fixed: Vec<bool> =
            (0..nd).map(|d| !l.in_pool[d] || (!l.spend_all[d] && mu[d] <= 0.0 && r[d] >= 0.0)).collect();
        let worst = residual(l, &e, &mu);
        if worst <= tol {
            return Some((mu, e, it));
        }
        // Progress near the end: the largest relative residual should halve every few iterations (far from
        // it, crossing many breakpoints, it need not).
        if worst < 0.5 * best || worst > 1e-4 {
            best = best.min(worst);
            since = it;
        } else if it - since >= 10 {
            return stalled_ok(l, &e, &mu, stall).then_some((mu, e, it));
        }
        let mut step = vec![0.0; nd];
        // Pools with no pair inside its bounds: spent is flat in μ_d. Where pairs sit on their breakpoints the
        // derivative on the side where they enter is used; else jump to the next breakpoint.
        let mut jac = e.jac.clone();
        let flat_in = |j: &[f64], d: usize| -j[d * nd + d] <= 1e-12 * e.scale[d].max(f64::MIN_POSITIVE);
        for d in (0..nd).filter(|&d| !fixed[d] && flat_in(&e.jac, d) && !flat_in(&e.jac_near, d)) {
            for f in 0..nd {
                jac[d * nd + f] = e.jac_near[d * nd + f];
                jac[f * nd + d] = e.jac_near[f * nd + d];
            }
        }
        let flat: Vec<bool> = (0..nd).map(|d| !fixed[d] && flat_in(&jac, d)).collect();
        for d in (0..nd).filter(|&d| flat[d] && r[d].abs() > tol * l.budget[d].max(1.0)) {
            step[d] = jump(p, l, &e, q, &mu, d, r[d])? - mu[d];
        }
        let free: Vec<usize> = (0..nd).filter(|&d| !fixed[d] && !flat[d]).collect();
        if !free.is_empty() {
            // (−J)·Δ = spent − B on the free pools.
            // Capped and linear projects make −J singular along directions in which the dual is locally
            // flat; a little Levenberg–Marquardt damping gives a long step there and the line search
            // finds its end.
            let top = free.iter().map(|&d| -jac[d * nd + d]).fold(0.0f64, f64::max);
            let a: Vec<Vec<f64>> = free
                .iter()
                .map(|&d| free.iter().map(|&f| -jac[d * nd + f] + if d == f { 1e-9 * top } else { 0.0 }).collect())
                .collect();
            let b: Vec<f64> = free.iter().map(|&d| -r[d]).collect();
            let s = crate::solve::lu_solve(a, b)?;
            for (&d, v) in free.iter().zip(s) {
                step[d] = v;
            }
        }
        // A step below what the prices resolve (spent moves in quanta of ulp(μ)/q): as far as prices go.
        if (0..nd).all(|d| step[d].abs() <= 1e-14 * mu[d].abs()) {
            return stalled_ok(l, &e, &mu, stall).then_some((mu, e, it));
        }
        match line_search(p, l, q, &mu, &e, &step) {
            Some((m, ev)) => {
                mu = m;
                e = ev;
            }
            // The step is below what the prices can resolve (spent moves in quanta of ulp(μ)/q): stop here
            // if the budgets hold to the stall tolerance; the polishing step finishes in the amounts.
            None => return stalled_ok(l, &e, &mu, stall).then_some((mu, e, it)),
        }
    }
    stalled_ok(l, &e, &mu, stall).then_some((mu, e, 60))
}

/// Exact line search on the convex dual along `step`: its slope r(μ + αΔ)·Δ is increasing in α. Accepts a point
/// where the slope has fallen to half its start in magnitude; longer than the Newton step where the budgets
/// respond less than the Jacobian says, never past a price that may not go below zero. `None` if no point
/// lowers the dual (the step is below what the prices resolve).
fn line_search(p: &Problem, l: &Layout, q: &[f64], mu: &[f64], e: &Eval, step: &[f64]) -> Option<(Vec<f64>, Eval)> {
    let nd = l.nd;
    let limit = (0..nd)
        .filter(|&d| !l.spend_all[d] && step[d] < 0.0)
        .map(|d| mu[d] / -step[d])
        .fold(f64::INFINITY, f64::min)
        .max(0.0);
    let at = |alpha: f64| -> Vec<f64> {
        (0..nd)
            .map(|d| {
                let m = mu[d] + alpha * step[d];
                // Exactly zero at the limit (not a rounding error on either side of it).
                let stops = step[d] < 0.0 && mu[d] / -step[d] == limit;
                if !l.spend_all[d] && (m < 0.0 || (alpha == limit && stops)) {
                    0.0
                } else {
                    m
                }
            })
            .collect()
    };
    let slope = |ev: &Eval| -> f64 { (0..nd).map(|d| (l.budget[d] - ev.spent[d]) * step[d]).sum() };
    let s0 = slope(e);
    if s0 >= 0.0 || limit <= 0.0 {
        return None;
    }
    // Wolfe's curvature condition, c₂ = 0.5 (Nocedal & Wright §3.1).
    let good = |s: f64| s.abs() <= 0.5 * s0.abs();
    // The Newton step, then longer while the slope stays steeply negative.
    let (mut a, mut fa) = (0.0, s0);
    let mut left = None;
    let mut b = limit.min(1.0);
    let fb = loop {
        let mb = at(b);
        let eb = evaluate(p, l, q, &mb);
        let sb = slope(&eb);
        if good(sb) || (sb < 0.0 && (b >= limit || b >= 1e6)) {
            return Some((mb, eb));
        }
        if sb > 0.0 {
            break sb;
        }
        (a, fa) = (b, sb);
        left = Some((mb, eb));
        b = (4.0 * b).min(limit);
    };
    // Between the last negative slope and the first positive one: an Illinois (secant) try every third, halving
    // otherwise: where a pair enters with slope 1/q the slope is nearly a step, on which secants crawl.
    let mut fb = fb;
    let mut side = 0;
    for n in 0..60 {
        let c = if n % 3 != 0 { 0.5 * (a + b) } else { (a * fb - b * fa) / (fb - fa) };
        let mc = at(c);
        let ec = evaluate(p, l, q, &mc);
        let fc = slope(&ec);
        if good(fc) {
            return Some((mc, ec));
        }
        if fc < 0.0 {
            (a, fa) = (c, fc);
            if side == -1 {
                fb *= 0.5;
            }
            side = -1;
            left = Some((mc, ec));
        } else {
            (b, fb) = (c, fc);
            if side == 1 {
                fa *= 0.5;
            }
            side = 1;
        }
        if b - a <= 1e-15 * b {
            break;
        }
    }
    // Where the slope jumps across zero within what α resolves, the last point before the jump still lowers
    // the dual.
    left
}

/// Budgets' relative residual at which Newton's method stops.
const TOL: f64 = 1e-9;

/// Budgets' relative residual at which a stalled line search still hands its point to the polishing step.
const STALL_TOL: f64 = 1e-6;

/// The largest budget residual relative to its budget, over pools whose budget binds or must.
fn residual(l: &Layout, e: &Eval, mu: &[f64]) -> f64 {
    (0..l.nd)
        .filter(|&d| l.in_pool[d])
        .map(|d| {
            let r = l.budget[d] - e.spent[d];
            if !l.spend_all[d] && mu[d] <= 0.0 && r >= 0.0 {
                0.0
            } else {
                r.abs() / l.budget[d].max(1.0)
            }
        })
        .fold(0.0, f64::max)
}

fn stalled_ok(l: &Layout, e: &Eval, mu: &[f64], tol: f64) -> bool {
    residual(l, e, mu) <= tol
}

/// The price at which pool d's spent starts to move towards its budget, where it is flat in μ_d (every pair of
/// d at a bound, or the one pair inside a project held at its cap): the nearest breakpoint. A pair at zero
/// starts when μ_d falls to λp + 2ρb; a pair at its bound comes off when μ_d rises to λp + 2ρb − q·ub; in a
/// capped project whose only inside pair is d's, moving μ_d moves λ by Δμ_d/p_d until another of its pairs
/// changes state (or, rising, until the cap stops binding).
fn jump(p: &Problem, l: &Layout, e: &Eval, q: &[f64], mu: &[f64], d: usize, r: f64) -> Option<f64> {
    let raise = r < 0.0;
    let mut best: Option<f64> = None;
    let mut offer = |m: f64| {
        best = Some(match best {
            None => m,
            Some(b) if raise => b.min(m),
            Some(b) => b.max(m),
        })
    };
    for (j, a) in e.answers.iter().enumerate() {
        let rg = l.start[j]..l.start[j + 1];
        let Some(k) = rg.clone().find(|&k| l.d[k] == d) else { continue };
        let inside = |k: usize| e.x[k] > 0.0 && e.x[k] < l.ub[k];
        let top = a.lambda * l.price[k] + l.pull[k];
        if !inside(k) {
            if raise && e.x[k] >= l.ub[k] {
                offer(top - q[k] * l.ub[k]);
            } else if !raise && e.x[k] <= 0.0 {
                offer(top);
            }
            continue;
        }
        if !a.capped || rg.clone().any(|o| o != k && inside(o)) {
            continue;
        }
        // λ moves with μ_d: the nearest state change among the project's other pairs.
        let mut dl: Option<f64> = None;
        for o in rg.clone().filter(|&o| o != k) {
            let lo = (mu[l.d[o]] - l.pull[o]) / l.price[o];
            let hi = lo + q[o] * l.ub[o] / l.price[o];
            let edge = if raise && e.x[o] <= 0.0 {
                lo - a.lambda
            } else if !raise && e.x[o] >= l.ub[o] {
                a.lambda - hi
            } else {
                continue;
            };
            dl = Some(dl.map_or(edge, |x: f64| x.min(edge)));
        }
        if raise {
            let pj = &p.projects[l.project[j]];
            let release = pj.weight * pj.utility.slope(pj.cap.unwrap_or(f64::INFINITY)) - a.lambda;
            dl = Some(dl.map_or(release, |x: f64| x.min(release)));
        }
        if let Some(dl) = dl {
            let dm = dl.max(0.0) * l.price[k];
            offer(if raise { mu[d] + dm } else { mu[d] - dm });
        }
    }
    let Some(m) = best else {
        // Underspent with every pair at its bound: the budget cannot bind (unless it must be spent).
        return (!raise && !l.spend_all[d]).then_some(0.0);
    };
    // A hair past the breakpoint, so the pair is inside.
    let nudge = 1e-12 * m.abs().max(mu[d].abs()).max(f64::MIN_POSITIVE);
    let m = if raise { m + nudge } else { m - nudge };
    Some(if l.spend_all[d] { m } else { m.max(0.0) })
}
