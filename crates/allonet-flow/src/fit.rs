//! Fitting node weights to human pairwise judgements (Deep Funding).
//!
//! A juror's judgement (a, b, c) says "b is worth e^c times a". Weights w with log-weights ℓ = ln w are
//! fitted by least squares, minimising Σ (ℓ_b − ℓ_a − c)²: the normal equations are a graph Laplacian
//! system L ℓ = r, solved by conjugate gradients with ℓ centred per connected component (the cost does
//! not see a common shift), then w = e^ℓ normalised to sum to 1.
//!
//! Source: Deep Funding (deepfunding.org; deepfunding/scoring: squared error of log ratios); the
//! least-squares ranking from pairwise comparisons is Jiang, Lim, Yao, Ye, "Statistical ranking and
//! combinatorial Hodge theory", Math. Programming 127, 2011.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One judgement: b is worth e^c times a.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// First item.
    pub a: String,
    /// Second item.
    pub b: String,
    /// ln(value_b / value_a).
    pub c: f64,
}

/// Fitted weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Item → weight (summing to 1).
    pub weights: BTreeMap<String, f64>,
    /// Mean squared error of the fit over the pairs.
    pub cost: f64,
    /// Conjugate-gradient iterations.
    pub iterations: usize,
}

/// Mean squared error Σ (ln w_b − ln w_a − c)² / #pairs of a candidate weighting. Errors name the first
/// item the candidate lacks or weighs non-positively.
pub fn cost(pairs: &[Pair], weights: &BTreeMap<String, f64>) -> Result<f64, String> {
    let lw = |k: &str| -> Result<f64, String> {
        match weights.get(k) {
            Some(&w) if w > 0.0 && w.is_finite() => Ok(w.ln()),
            Some(&w) => Err(format!("weight of `{k}` is {w}; weights must be positive")),
            None => Err(format!("the candidate has no weight for `{k}`")),
        }
    };
    let mut s = 0.0;
    for p in pairs {
        let e = lw(&p.b)? - lw(&p.a)? - p.c;
        s += e * e;
    }
    Ok(s / pairs.len().max(1) as f64)
}

/// Least-squares weights from pairs.
pub fn fit(pairs: &[Pair]) -> Result<Fit, String> {
    if pairs.is_empty() {
        return Err("no pairs to fit".into());
    }
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    for p in pairs {
        if !p.c.is_finite() {
            return Err(format!("judgement {} vs {} has a non-finite log ratio", p.a, p.b));
        }
        for k in [p.a.as_str(), p.b.as_str()] {
            let n = ids.len();
            ids.entry(k).or_insert(n);
        }
    }
    let n = ids.len();
    // Laplacian as adjacency lists with multiplicity; right-hand side
    let mut deg = vec![0.0; n];
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut r = vec![0.0; n];
    for p in pairs {
        let (a, b) = (ids[p.a.as_str()], ids[p.b.as_str()]);
        if a == b {
            continue;
        }
        deg[a] += 1.0;
        deg[b] += 1.0;
        adj[a].push(b);
        adj[b].push(a);
        r[b] += p.c;
        r[a] -= p.c;
    }
    // components, to centre per component
    let mut comp = vec![usize::MAX; n];
    let mut n_comp = 0;
    for s in 0..n {
        if comp[s] != usize::MAX {
            continue;
        }
        let mut stack = vec![s];
        comp[s] = n_comp;
        while let Some(v) = stack.pop() {
            for &u in &adj[v] {
                if comp[u] == usize::MAX {
                    comp[u] = n_comp;
                    stack.push(u);
                }
            }
        }
        n_comp += 1;
    }
    let centre = |x: &mut [f64]| {
        let mut sum = vec![0.0; n_comp];
        let mut cnt = vec![0.0; n_comp];
        for (i, v) in x.iter().enumerate() {
            sum[comp[i]] += v;
            cnt[comp[i]] += 1.0;
        }
        for (i, v) in x.iter_mut().enumerate() {
            *v -= sum[comp[i]] / cnt[comp[i]];
        }
    };
    let lap = |x: &[f64], y: &mut [f64]| {
        for v in 0..n {
            y[v] = deg[v] * x[v] - adj[v].iter().map(|&u| x[u]).sum::<f64>();
        }
    };
    centre(&mut r);
    let mut x = vec![0.0; n];
    let mut res = r.clone();
    let mut p = res.clone();
    let mut ap = vec![0.0; n];
    let mut rs: f64 = res.iter().map(|v| v * v).sum();
    let tol = 1e-24 * r.iter().map(|v| v * v).sum::<f64>().max(1e-300);
    let mut it = 0;
    while rs > tol && it < 10 * n + 100 {
        lap(&p, &mut ap);
        let pap: f64 = p.iter().zip(&ap).map(|(a, b)| a * b).sum();
        if pap <= 0.0 {
            break;
        }
        let alpha = rs / pap;
        for i in 0..n {
            x[i] += alpha * p[i];
            res[i] -= alpha * ap[i];
        }
        centre(&mut res);
        let rs2: f64 = res.iter().map(|v| v * v).sum();
        for i in 0..n {
            p[i] = res[i] + rs2 / rs * p[i];
        }
        rs = rs2;
        it += 1;
    }
    centre(&mut x);
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    let weights: BTreeMap<String, f64> = ids.iter().map(|(k, &i)| (k.to_string(), e[i] / s)).collect();
    let c = cost(pairs, &weights)?;
    Ok(Fit { weights, cost: c, iterations: it })
}

/// The best log-linear (geometric) blend of candidate weightings: ℓ = Σ λ_k ln w_k with λ on the simplex,
/// minimising the pairs' squared error. The cost is a convex quadratic in λ; every support set is solved
/// exactly (K ≤ 12 candidates) and the best feasible one kept. Returns (λ, cost).
pub fn best_blend(pairs: &[Pair], candidates: &[BTreeMap<String, f64>]) -> Result<(Vec<f64>, f64), String> {
    let k = candidates.len();
    if k == 0 || k > 12 {
        return Err(format!("blend needs 1 to 12 candidates, got {k}"));
    }
    for c in candidates {
        cost(pairs, c)?; // validates coverage and positivity
    }
    // design: A[p][j] = ln w_j(b) − ln w_j(a); target c_p
    let a: Vec<Vec<f64>> =
        pairs.iter().map(|p| candidates.iter().map(|c| c[&p.b].ln() - c[&p.a].ln()).collect()).collect();
    let q: Vec<Vec<f64>> =
        (0..k).map(|i| (0..k).map(|j| a.iter().map(|row| row[i] * row[j]).sum()).collect()).collect();
    let g: Vec<f64> = (0..k).map(|i| a.iter().zip(pairs).map(|(row, p)| row[i] * p.c).sum()).collect();
    let eval = |lam: &[f64]| -> f64 {
        pairs
            .iter()
            .zip(&a)
            .map(|(p, row)| (row.iter().zip(lam).map(|(x, l)| x * l).sum::<f64>() - p.c).powi(2))
            .sum::<f64>()
            / pairs.len() as f64
    };
    let mut best: Option<(Vec<f64>, f64)> = None;
    for mask in 1u32..(1 << k) {
        let s: Vec<usize> = (0..k).filter(|i| mask & (1 << i) != 0).collect();
        // minimise λᵀQλ − 2gᵀλ subject to Σλ = 1 on support s: KKT system
        let m = s.len();
        let mut mat = vec![vec![0.0; m + 1]; m + 1];
        let mut rhs = vec![0.0; m + 1];
        for (ii, &i) in s.iter().enumerate() {
            for (jj, &j) in s.iter().enumerate() {
                mat[ii][jj] = 2.0 * q[i][j];
            }
            mat[ii][m] = 1.0;
            mat[m][ii] = 1.0;
            rhs[ii] = 2.0 * g[i];
        }
        rhs[m] = 1.0;
        let Some(sol) = solve(mat, rhs) else { continue };
        if sol[..m].iter().any(|&l| l < -1e-12) {
            continue;
        }
        let mut lam = vec![0.0; k];
        for (ii, &i) in s.iter().enumerate() {
            lam[i] = sol[ii].max(0.0);
        }
        let c = eval(&lam);
        if best.as_ref().is_none_or(|b| c < b.1 - 1e-15) {
            best = Some((lam, c));
        }
    }
    best.ok_or_else(|| "no feasible blend".to_string())
}

#[allow(clippy::needless_range_loop)] // Gauss-Jordan reads clearest with indices
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for row in 0..n {
            if row != col {
                let f = a[row][col] / a[col][col];
                if f != 0.0 {
                    for c in col..n {
                        a[row][c] -= f * a[col][c];
                    }
                    b[row] -= f * b[col];
                }
            }
        }
    }
    Some((0..n).map(|i| b[i] / a[i][i]).collect())
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use allonet_ml::data::Rng;

    #[test]
    fn recovers_known_weights_from_noiseless_pairs() {
        let truth: BTreeMap<String, f64> =
            [("a", 0.5), ("b", 0.25), ("c", 0.15), ("d", 0.1)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut rng = Rng::new(3, 0);
        let keys: Vec<&String> = truth.keys().collect();
        let pairs: Vec<Pair> = (0..40)
            .map(|_| {
                let (i, j) = (rng.below(4), rng.below(4));
                let (a, b) = (keys[i].clone(), keys[j].clone());
                let c = (truth[&b] / truth[&a]).ln();
                Pair { a, b, c }
            })
            .filter(|p| p.a != p.b)
            .collect();
        let f = fit(&pairs).unwrap();
        for (k, v) in &truth {
            assert!((f.weights[k] - v).abs() < 1e-9, "{k}: {} vs {v}", f.weights[k]);
        }
        assert!(f.cost < 1e-18);
    }

    #[test]
    fn recovers_weights_approximately_from_noisy_pairs() {
        let n = 30;
        let mut rng = Rng::new(9, 1);
        let raw: Vec<f64> = (0..n).map(|_| (rng.normal() * 1.0).exp()).collect();
        let s: f64 = raw.iter().sum();
        let truth: Vec<f64> = raw.iter().map(|v| v / s).collect();
        let pairs: Vec<Pair> = (0..3000)
            .filter_map(|_| {
                let (i, j) = (rng.below(n), rng.below(n));
                (i != j).then(|| Pair {
                    a: format!("n{i:02}"),
                    b: format!("n{j:02}"),
                    c: (truth[j] / truth[i]).ln() + 0.3 * rng.normal(),
                })
            })
            .collect();
        let f = fit(&pairs).unwrap();
        for i in 0..n {
            let got = f.weights[&format!("n{i:02}")];
            assert!((got / truth[i]).ln().abs() < 0.15, "n{i}: {got} vs {}", truth[i]);
        }
    }

    #[test]
    fn blend_picks_the_candidate_that_generated_the_pairs() {
        let mk =
            |v: &[f64]| -> BTreeMap<String, f64> { v.iter().enumerate().map(|(i, w)| (format!("x{i}"), *w)).collect() };
        let good = mk(&[0.4, 0.3, 0.2, 0.1]);
        let bad = mk(&[0.1, 0.2, 0.3, 0.4]);
        let pairs: Vec<Pair> = (0..4)
            .flat_map(|i| (0..4).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| Pair {
                a: format!("x{i}"),
                b: format!("x{j}"),
                c: (good[&format!("x{j}")] / good[&format!("x{i}")]).ln(),
            })
            .collect();
        let (lam, c) = best_blend(&pairs, &[bad.clone(), good.clone()]).unwrap();
        assert!((lam[1] - 1.0).abs() < 1e-9 && c < 1e-18, "{lam:?} {c}");
        assert!(cost(&pairs, &bad).unwrap() > 0.1);
        let mut missing = good.clone();
        missing.remove("x3");
        assert!(cost(&pairs, &missing).unwrap_err().contains("`x3`"));
    }
}
