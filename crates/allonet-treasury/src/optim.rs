//! Portfolio optimisers on the `clarabel` interior-point solver, with PyPortfolioOpt's inputs and
//! formulations (mean historical return with compounding, sample covariance, long-only bounds).
//!
//! Sources: Markowitz, "Portfolio Selection", J. Finance 7 (1952); the max-Sharpe change of variables of
//! Cornuéjols & Tütüncü, *Optimization Methods in Finance* (2007) §8.2, as PyPortfolioOpt
//! (robertmartin8/PyPortfolioOpt, `efficient_frontier.py`) uses it.

#![allow(clippy::needless_range_loop)] // matrix code indexes rows and columns

use clarabel::algebra::CscMatrix;
use clarabel::solver::{DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT};

/// Expected returns and covariance, annualised.
#[derive(Clone, Debug, PartialEq)]
pub struct Inputs {
    /// Asset names.
    pub assets: Vec<String>,
    /// Expected annual returns.
    pub mu: Vec<f64>,
    /// Annual covariance.
    pub cov: Vec<Vec<f64>>,
}

/// PyPortfolioOpt's defaults from a price matrix with possible leading gaps (NaN): daily simple returns,
/// `mean_historical_return` = (Π(1 + r))^(252 / count) − 1 per asset, and the pairwise-complete sample
/// covariance × 252 (pandas `DataFrame.cov`).
pub fn pypfopt_inputs(assets: &[String], prices: &[Vec<f64>], frequency: f64) -> Inputs {
    let r: Vec<Vec<f64>> = prices.iter().map(|p| p.windows(2).map(|w| w[1] / w[0] - 1.0).collect()).collect();
    let mu = r
        .iter()
        .map(|x| {
            let ok: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
            ok.iter().map(|v| 1.0 + v).product::<f64>().powf(frequency / ok.len() as f64) - 1.0
        })
        .collect();
    let cov = pairwise_cov(&r).into_iter().map(|row| row.into_iter().map(|c| c * frequency).collect()).collect();
    Inputs { assets: assets.to_vec(), mu, cov }
}

/// Why an optimisation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the optimiser did not converge: {0}")]
pub struct OptimError(pub String);

/// min ½xᵀPx + qᵀx subject to equalities E x = e and inequalities G x ≤ g.
fn qp(p: &[Vec<f64>], q: &[f64], eq: &[(Vec<f64>, f64)], ineq: &[(Vec<f64>, f64)]) -> Result<Vec<f64>, OptimError> {
    qp_cones(p, q, eq, ineq, &[])
}

fn unit(n: usize, i: usize, v: f64) -> Vec<f64> {
    let mut r = vec![0.0; n];
    r[i] = v;
    r
}

/// What the optimisers must honour: long only, a cap per asset, and minimum shares for groups of assets
/// (e.g. the policy's minimum stablecoin share).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Upper bound per asset.
    pub upper: Vec<f64>,
    /// (membership per asset, minimum total weight of the members).
    pub min_groups: Vec<(Vec<bool>, f64)>,
}

impl Limits {
    /// Caps only.
    pub fn upper(upper: Vec<f64>) -> Limits {
        Limits { upper, min_groups: Vec::new() }
    }
}

/// Rows 0 ≤ wᵢ ≤ upperᵢ and Σ_{i∈g} wᵢ ≥ min_g over `n` variables (weights are the first ones).
fn bounds(n: usize, lim: &Limits) -> Vec<(Vec<f64>, f64)> {
    let mut v = Vec::new();
    for (i, &u) in lim.upper.iter().enumerate() {
        v.push((unit(n, i, -1.0), 0.0));
        v.push((unit(n, i, 1.0), u));
    }
    for (members, min) in &lim.min_groups {
        let mut row = vec![0.0; n];
        for (i, &m) in members.iter().enumerate() {
            if m {
                row[i] = -1.0;
            }
        }
        v.push((row, -min));
    }
    v
}

/// Minimum volatility: min wᵀΣw, Σw = 1, 0 ≤ w ≤ upper.
pub fn min_volatility(x: &Inputs, lim: &Limits) -> Result<Vec<f64>, OptimError> {
    let n = x.mu.len();
    let p: Vec<Vec<f64>> = x.cov.iter().map(|r| r.iter().map(|v| 2.0 * v).collect()).collect();
    qp(&p, &vec![0.0; n], &[(vec![1.0; n], 1.0)], &bounds(n, lim))
}

/// Efficient return: min wᵀΣw subject to μᵀw ≥ target, Σw = 1, bounds.
pub fn efficient_return(x: &Inputs, target: f64, lim: &Limits) -> Result<Vec<f64>, OptimError> {
    let n = x.mu.len();
    let p: Vec<Vec<f64>> = x.cov.iter().map(|r| r.iter().map(|v| 2.0 * v).collect()).collect();
    let mut ineq = bounds(n, lim);
    ineq.push((x.mu.iter().map(|m| -m).collect(), -target));
    qp(&p, &vec![0.0; n], &[(vec![1.0; n], 1.0)], &ineq)
}

/// Maximum quadratic utility: max μᵀw − (δ/2) wᵀΣw, Σw = 1, bounds.
pub fn max_quadratic_utility(x: &Inputs, delta: f64, lim: &Limits) -> Result<Vec<f64>, OptimError> {
    let n = x.mu.len();
    let p: Vec<Vec<f64>> = x.cov.iter().map(|r| r.iter().map(|v| delta * v).collect()).collect();
    let q: Vec<f64> = x.mu.iter().map(|m| -m).collect();
    qp(&p, &q, &[(vec![1.0; n], 1.0)], &bounds(n, lim))
}

/// Maximum Sharpe ratio (long only, upper bounds): with y = k·w, min yᵀΣy s.t. (μ − rf)ᵀy = 1,
/// Σy = k, 0 ≤ y ≤ k·upper, k ≥ 0; then w = y / k.
pub fn max_sharpe(x: &Inputs, rf: f64, lim: &Limits) -> Result<Vec<f64>, OptimError> {
    let n = x.mu.len();
    let nv = n + 1;
    let mut p = vec![vec![0.0; nv]; nv];
    for i in 0..n {
        for j in 0..n {
            p[i][j] = 2.0 * x.cov[i][j];
        }
    }
    let mut excess: Vec<f64> = x.mu.iter().map(|m| m - rf).collect();
    excess.push(0.0);
    let mut sum = vec![1.0; nv];
    sum[n] = -1.0;
    let mut ineq = Vec::new();
    for (i, &u) in lim.upper.iter().enumerate() {
        ineq.push((unit(nv, i, -1.0), 0.0));
        let mut r = unit(nv, i, 1.0);
        r[n] = -u;
        ineq.push((r, 0.0));
    }
    for (members, min) in &lim.min_groups {
        // Σ_g y ≥ min·k
        let mut r = vec![0.0; nv];
        for (i, &m) in members.iter().enumerate() {
            if m {
                r[i] = -1.0;
            }
        }
        r[n] = *min;
        ineq.push((r, 0.0));
    }
    ineq.push((unit(nv, n, -1.0), 0.0));
    let y = qp(&p, &vec![0.0; nv], &[(excess, 1.0), (sum, 0.0)], &ineq)?;
    let k = y[n];
    Ok(y[..n].iter().map(|v| v / k).collect())
}

/// (expected return, volatility, Sharpe ratio at `rf`) of weights.
pub fn performance(x: &Inputs, w: &[f64], rf: f64) -> (f64, f64, f64) {
    let ret: f64 = x.mu.iter().zip(w).map(|(m, v)| m * v).sum();
    let var: f64 = (0..w.len()).map(|i| (0..w.len()).map(|j| w[i] * x.cov[i][j] * w[j]).sum::<f64>()).sum();
    let vol = var.sqrt();
    (ret, vol, (ret - rf) / vol)
}

/// Pairwise-complete sample covariance of return series that may hold NaN (pandas `DataFrame.cov`).
pub fn pairwise_cov(r: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let k = r.len();
    let mut cov = vec![vec![0.0; k]; k];
    for i in 0..k {
        for j in 0..=i {
            let pairs: Vec<(f64, f64)> =
                r[i].iter().zip(&r[j]).filter(|(a, b)| a.is_finite() && b.is_finite()).map(|(a, b)| (*a, *b)).collect();
            let n = pairs.len() as f64;
            let (ma, mb) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
            let c = pairs.iter().map(|(a, b)| (a - ma) * (b - mb)).sum::<f64>() / (n - 1.0);
            cov[i][j] = c;
            cov[j][i] = c;
        }
    }
    cov
}

/// Pairwise-complete correlation (pandas `DataFrame.corr`).
pub fn pairwise_corr(r: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let k = r.len();
    let mut c = vec![vec![1.0; k]; k];
    for i in 0..k {
        for j in 0..i {
            let pairs: Vec<(f64, f64)> =
                r[i].iter().zip(&r[j]).filter(|(a, b)| a.is_finite() && b.is_finite()).map(|(a, b)| (*a, *b)).collect();
            let n = pairs.len() as f64;
            let (ma, mb) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
            let sab: f64 = pairs.iter().map(|(a, b)| (a - ma) * (b - mb)).sum();
            let saa: f64 = pairs.iter().map(|(a, _)| (a - ma).powi(2)).sum();
            let sbb: f64 = pairs.iter().map(|(_, b)| (b - mb).powi(2)).sum();
            c[i][j] = sab / (saa * sbb).sqrt();
            c[j][i] = c[i][j];
        }
    }
    c
}

/// Hierarchical risk parity (López de Prado, "Building Diversified Portfolios that Outperform Out of
/// Sample", J. Portfolio Management 42(4), 2016): single-linkage clustering on d = √((1 − ρ)/2), leaves in the
/// tree's pre-order, then recursive bisection weighting each half by the inverse of its inverse-variance
/// portfolio's variance.
pub fn hrp(cov: &[Vec<f64>], corr: &[Vec<f64>]) -> Vec<f64> {
    let n = cov.len();
    let d = |i: usize, j: usize| ((1.0 - corr[i][j]) / 2.0).max(0.0).sqrt();
    // single linkage, merges recorded as scipy does: (smaller id, larger id), new ids n, n+1, …
    let mut members: Vec<Option<Vec<usize>>> = (0..n).map(|i| Some(vec![i])).collect();
    let mut children: Vec<(usize, usize)> = Vec::new();
    for _ in 0..n.saturating_sub(1) {
        let active: Vec<usize> = (0..members.len()).filter(|&c| members[c].is_some()).collect();
        let mut best = (f64::INFINITY, 0, 0);
        for (x, &a) in active.iter().enumerate() {
            for &b in &active[x + 1..] {
                let ma = members[a].as_ref().expect("active");
                let mb = members[b].as_ref().expect("active");
                let dist = ma
                    .iter()
                    .flat_map(|&i| mb.iter().map(move |&j| (i, j)))
                    .map(|(i, j)| d(i, j))
                    .fold(f64::INFINITY, f64::min);
                if dist < best.0 {
                    best = (dist, a, b);
                }
            }
        }
        let (_, a, b) = best;
        let mut merged = members[a].take().expect("active");
        merged.extend(members[b].take().expect("active"));
        members.push(Some(merged));
        children.push((a.min(b), a.max(b)));
    }
    // pre-order of leaves, left child first
    let mut order = Vec::with_capacity(n);
    let mut stack = vec![if n > 1 { 2 * n - 2 } else { 0 }];
    while let Some(c) = stack.pop() {
        if c < n {
            order.push(c);
        } else {
            let (l, r) = children[c - n];
            stack.push(r);
            stack.push(l);
        }
    }
    let cluster_var = |idx: &[usize]| {
        let ivp: Vec<f64> = idx.iter().map(|&i| 1.0 / cov[i][i]).collect();
        let s: f64 = ivp.iter().sum();
        let w: Vec<f64> = ivp.iter().map(|v| v / s).collect();
        idx.iter()
            .enumerate()
            .map(|(a, &i)| idx.iter().enumerate().map(|(b, &j)| w[a] * cov[i][j] * w[b]).sum::<f64>())
            .sum::<f64>()
    };
    let mut w = vec![1.0; n];
    let mut items: Vec<Vec<usize>> = vec![order];
    while !items.is_empty() {
        let mut next = Vec::new();
        for it in items {
            if it.len() < 2 {
                continue;
            }
            let half = it.len() / 2;
            let (l, r) = (it[..half].to_vec(), it[half..].to_vec());
            let (vl, vr) = (cluster_var(&l), cluster_var(&r));
            let alpha = 1.0 - vl / (vl + vr);
            for &i in &l {
                w[i] *= alpha;
            }
            for &i in &r {
                w[i] *= 1.0 - alpha;
            }
            next.push(l);
            next.push(r);
        }
        items = next;
    }
    w
}

/// Efficient risk: max μᵀw subject to √(wᵀΣw) ≤ target volatility, Σw = 1, bounds; a second-order cone
/// program (Σ = LLᵀ, ‖Lᵀw‖ ≤ σ).
pub fn efficient_risk(x: &Inputs, target_vol: f64, lim: &Limits) -> Result<Vec<f64>, OptimError> {
    let n = x.mu.len();
    let l = cholesky(&x.cov).ok_or_else(|| OptimError("the covariance matrix is not positive definite".into()))?;
    let p = vec![vec![0.0; n]; n];
    let q: Vec<f64> = x.mu.iter().map(|m| -m).collect();
    // rows: equality, bounds (nonnegative cone), then the cone block [σ; Lᵀw]
    let eq = vec![(vec![1.0; n], 1.0)];
    let ineq = bounds(n, lim);
    let mut soc: Vec<(Vec<f64>, f64)> = vec![(vec![0.0; n], target_vol)];
    for i in 0..n {
        // s_i = 0 − (−Lᵀ w)_i = (Lᵀ w)_i
        soc.push(((0..n).map(|j| -l[j][i]).collect(), 0.0));
    }
    qp_cones(&p, &q, &eq, &ineq, &soc)
}

fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for j in 0..n {
        let s = a[j][j] - (0..j).map(|k| l[j][k] * l[j][k]).sum::<f64>();
        if s <= 0.0 {
            return None;
        }
        l[j][j] = s.sqrt();
        for i in j + 1..n {
            l[i][j] = (a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>()) / l[j][j];
        }
    }
    Some(l)
}

/// Like `qp`, with an extra second-order-cone block (first row the bound, the rest the vector).
fn qp_cones(
    p: &[Vec<f64>],
    q: &[f64],
    eq: &[(Vec<f64>, f64)],
    ineq: &[(Vec<f64>, f64)],
    soc: &[(Vec<f64>, f64)],
) -> Result<Vec<f64>, OptimError> {
    let n = q.len();
    let (mut colptr, mut rowval, mut nzval) = (vec![0usize], Vec::new(), Vec::new());
    for j in 0..n {
        for (i, row) in p.iter().enumerate().take(j + 1) {
            if row[j] != 0.0 {
                rowval.push(i);
                nzval.push(row[j]);
            }
        }
        colptr.push(rowval.len());
    }
    let pm = CscMatrix::new(n, n, colptr, rowval, nzval);
    let rows: Vec<&(Vec<f64>, f64)> = eq.iter().chain(ineq).chain(soc).collect();
    let m = rows.len();
    let (mut colptr, mut rowval, mut nzval) = (vec![0usize], Vec::new(), Vec::new());
    for j in 0..n {
        for (i, r) in rows.iter().enumerate() {
            if r.0[j] != 0.0 {
                rowval.push(i);
                nzval.push(r.0[j]);
            }
        }
        colptr.push(rowval.len());
    }
    let am = CscMatrix::new(m, n, colptr, rowval, nzval);
    let b: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let mut cones = vec![SupportedConeT::ZeroConeT(eq.len()), SupportedConeT::NonnegativeConeT(ineq.len())];
    if !soc.is_empty() {
        cones.push(SupportedConeT::SecondOrderConeT(soc.len()));
    }
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .tol_gap_abs(1e-12)
        .tol_gap_rel(1e-12)
        .tol_feas(1e-12)
        .max_iter(500)
        .build()
        .map_err(|e| OptimError(format!("{e:?}")))?;
    let mut s = DefaultSolver::new(&pm, q, &am, &b, &cones, settings).map_err(|e| OptimError(format!("{e:?}")))?;
    s.solve();
    match s.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => Ok(s.solution.x.clone()),
        other => Err(OptimError(format!("{other:?}"))),
    }
}

/// Minimum CVaR at level β over historical scenarios (Rockafellar & Uryasev, "Optimization of conditional
/// value-at-risk", J. Risk 2, 2000): min α + Σ u_t / ((1 − β)T) with u_t ≥ −r_tᵀw − α, u ≥ 0; a linear program.
pub fn min_cvar(scenarios: &[Vec<f64>], beta: f64, lim: &Limits) -> Result<Vec<f64>, OptimError> {
    let n = lim.upper.len();
    let t = scenarios.len();
    let nv = n + 1 + t;
    let p = vec![vec![0.0; nv]; nv];
    let mut q = vec![0.0; nv];
    q[n] = 1.0;
    for v in q.iter_mut().skip(n + 1) {
        *v = 1.0 / ((1.0 - beta) * t as f64);
    }
    let mut eq_row = vec![0.0; nv];
    eq_row[..n].iter_mut().for_each(|v| *v = 1.0);
    let mut ineq: Vec<(Vec<f64>, f64)> = bounds(n, lim)
        .into_iter()
        .map(|(mut r, b)| {
            r.resize(nv, 0.0);
            (r, b)
        })
        .collect();
    for (k, r) in scenarios.iter().enumerate() {
        // −r·w − α − u_k ≤ 0
        let mut row = vec![0.0; nv];
        for i in 0..n {
            row[i] = -r[i];
        }
        row[n] = -1.0;
        row[n + 1 + k] = -1.0;
        ineq.push((row, 0.0));
        ineq.push((unit(nv, n + 1 + k, -1.0), 0.0));
    }
    let x = qp_cones(&p, &q, &[(eq_row, 1.0)], &ineq, &[])?;
    Ok(x[..n].to_vec())
}

/// Risk parity (equal risk contributions wᵢ(Σw)ᵢ), long only: Newton's method on the convex
/// ½ yᵀΣy − (1/n) Σ ln yᵢ, whose minimiser normalised to sum 1 has equal contributions (Spinu, "An
/// algorithm for computing risk parity weights", 2013).
pub fn risk_parity(cov: &[Vec<f64>]) -> Vec<f64> {
    let n = cov.len();
    let b = 1.0 / n as f64;
    let mut y: Vec<f64> = (0..n).map(|i| 1.0 / cov[i][i].sqrt()).collect();
    for _ in 0..100 {
        let sy: Vec<f64> = (0..n).map(|i| (0..n).map(|j| cov[i][j] * y[j]).sum()).collect();
        let g: Vec<f64> = (0..n).map(|i| sy[i] - b / y[i]).collect();
        if g.iter().map(|v| v * v).sum::<f64>().sqrt() < 1e-14 {
            break;
        }
        let mut h = cov.to_vec();
        for i in 0..n {
            h[i][i] += b / (y[i] * y[i]);
        }
        let l = cholesky(&h).expect("Hessian is positive definite");
        // solve H d = g
        let mut z = vec![0.0; n];
        for i in 0..n {
            z[i] = (g[i] - (0..i).map(|k| l[i][k] * z[k]).sum::<f64>()) / l[i][i];
        }
        let mut d = vec![0.0; n];
        for i in (0..n).rev() {
            d[i] = (z[i] - (i + 1..n).map(|k| l[k][i] * d[k]).sum::<f64>()) / l[i][i];
        }
        // damped step keeping y positive
        let mut step = 1.0;
        while (0..n).any(|i| y[i] - step * d[i] <= 0.0) {
            step *= 0.5;
        }
        for i in 0..n {
            y[i] -= step * d[i];
        }
    }
    let s: f64 = y.iter().sum();
    y.iter().map(|v| v / s).collect()
}
