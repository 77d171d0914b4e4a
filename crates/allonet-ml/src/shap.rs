//! Exact Shapley explanations of tree predictions: path-dependent TreeSHAP.
//!
//! Source: Lundberg, Erion, Chen, DeGrave, Prutkin, Nair, Katz, Himmelfarb, Bansal, Lee, "From local
//! explanations to global understanding with explainable AI for trees", Nature Machine Intelligence 2,
//! 2020 (Algorithm 2; O(T·L·D²)). The value of a feature subset S is the tree's expectation with the
//! features outside S integrated out along the training cover of each node. For every row,
//! `base + Σ φᵢ` equals the prediction.

use crate::forest::Forest;
use crate::tree::Tree;

#[derive(Clone, Copy, Debug)]
struct PathElem {
    feature: i64,
    zero: f64,
    one: f64,
    weight: f64,
}

fn extend(path: &mut [PathElem], depth: usize, zero: f64, one: f64, feature: i64) {
    path[depth] = PathElem { feature, zero, one, weight: if depth == 0 { 1.0 } else { 0.0 } };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / d1;
        path[i].weight = zero * path[i].weight * (depth - i) as f64 / d1;
    }
}

fn unwind(path: &mut [PathElem], depth: usize, index: usize) {
    let one = path[index].one;
    let zero = path[index].zero;
    let d1 = (depth + 1) as f64;
    let mut next = path[depth].weight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next * d1 / ((i + 1) as f64 * one);
            next = tmp - path[i].weight * zero * (depth - i) as f64 / d1;
        } else {
            path[i].weight = path[i].weight * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

fn unwound_sum(path: &[PathElem], depth: usize, index: usize) -> f64 {
    let one = path[index].one;
    let zero = path[index].zero;
    let d1 = (depth + 1) as f64;
    let mut next = path[depth].weight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = next * d1 / ((i + 1) as f64 * one);
            total += tmp;
            next = path[i].weight - tmp * zero * (depth - i) as f64 / d1;
        } else if zero != 0.0 {
            total += path[i].weight * d1 / (zero * (depth - i) as f64);
        }
    }
    total
}

#[allow(clippy::too_many_arguments)]
fn recurse(
    t: &Tree,
    row: &[f64],
    phi: &mut [f64],
    node: usize,
    parent: &[PathElem],
    depth: usize,
    zero: f64,
    one: f64,
    feature: i64,
) {
    let mut path = parent.to_vec();
    path.resize(depth + 1, PathElem { feature: -1, zero: 0.0, one: 0.0, weight: 0.0 });
    extend(&mut path, depth, zero, one, feature);
    if t.is_leaf(node) {
        for i in 1..=depth {
            let w = unwound_sum(&path, depth, i);
            let e = path[i];
            phi[e.feature as usize] += w * (e.one - e.zero) * t.value[node];
        }
        return;
    }
    let (f, (l, r)) = (t.nodes[node].feature as usize, t.nodes[node].children());
    let hot = t.nodes[node].child(row[f]);
    let cold = l + r - hot;
    let mut depth = depth;
    let mut iz = 1.0;
    let mut io = 1.0;
    if let Some(k) = (1..=depth).find(|&k| path[k].feature == f as i64) {
        iz = path[k].zero;
        io = path[k].one;
        unwind(&mut path, depth, k);
        depth -= 1;
        path.truncate(depth + 1);
    }
    let c = t.cover[node];
    recurse(t, row, phi, hot, &path, depth + 1, iz * t.cover[hot] / c, io, f as i64);
    recurse(t, row, phi, cold, &path, depth + 1, iz * t.cover[cold] / c, 0.0, f as i64);
}

/// Shapley values of one tree's prediction for `row`; returns (base value, φ per feature).
pub fn tree_shap(t: &Tree, row: &[f64], n_features: usize) -> (f64, Vec<f64>) {
    let mut phi = vec![0.0; n_features];
    recurse(t, row, &mut phi, 0, &[], 0, 1.0, 1.0, -1);
    (t.value[0], phi)
}

/// Shapley values of the forest's prediction: the mean of its trees' values.
pub fn forest_shap(f: &Forest, row: &[f64]) -> (f64, Vec<f64>) {
    let mut phi = vec![0.0; f.n_features];
    let mut base = 0.0;
    for t in &f.trees {
        let (b, p) = tree_shap(t, row, f.n_features);
        base += b;
        for (a, v) in phi.iter_mut().zip(&p) {
            *a += v;
        }
    }
    let n = f.trees.len() as f64;
    phi.iter_mut().for_each(|v| *v /= n);
    (base / n, phi)
}

/// The tree's expected prediction when only the features in `known` are fixed to `row`'s values, the
/// others integrated out along node cover (the value function TreeSHAP's Shapley values are of).
pub fn conditional_expectation(t: &Tree, row: &[f64], known: &[bool]) -> f64 {
    fn go(t: &Tree, row: &[f64], known: &[bool], n: usize) -> f64 {
        if t.is_leaf(n) {
            return t.value[n];
        }
        let (f, (l, r)) = (t.nodes[n].feature as usize, t.nodes[n].children());
        if known[f] {
            go(t, row, known, t.nodes[n].child(row[f]))
        } else {
            (t.cover[l] * go(t, row, known, l) + t.cover[r] * go(t, row, known, r)) / t.cover[n]
        }
    }
    go(t, row, known, 0)
}

/// Shapley values by enumerating every subset (2^d evaluations): the definition, for testing.
pub fn brute_force_shap(t: &Tree, row: &[f64], n_features: usize) -> Vec<f64> {
    let m = n_features;
    let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
    let mut phi = vec![0.0; m];
    for i in 0..m {
        for mask in 0u32..(1 << m) {
            if mask & (1 << i) != 0 {
                continue;
            }
            let s = mask.count_ones() as usize;
            let weight = fact(s) * fact(m - s - 1) / fact(m);
            let mut known: Vec<bool> = (0..m).map(|j| mask & (1 << j) != 0).collect();
            let without = conditional_expectation(t, row, &known);
            known[i] = true;
            let with = conditional_expectation(t, row, &known);
            phi[i] += weight * (with - without);
        }
    }
    phi
}
