//! CART regression trees (Breiman, Friedman, Olshen, Stone, *Classification and Regression Trees*, 1984)
//! grown the way scikit-learn's `DecisionTreeRegressor` grows them inside a random forest: squared-error
//! criterion, best split over a random subset of features, thresholds at midpoints between distinct
//! values, bootstrap counts as sample weights.
//!
//! The splitter is exact: every feature's samples are pre-sorted once, and each split partitions those
//! sorted lists stably, so a node is scanned in O(n·d) with no sorting.

use crate::data::Rng;
use serde::{Deserialize, Serialize};

/// Marks a leaf in [`Tree::feature`].
pub const LEAF: u32 = u32::MAX;
/// Two feature values closer than this are the same value (scikit-learn's `FEATURE_THRESHOLD`).
const FEATURE_THRESHOLD: f64 = 1e-7;

/// How many features each split considers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxFeatures {
    /// All features (scikit-learn's default for regression forests, `max_features=1.0`).
    All,
    /// ⌈√d⌉ … scikit-learn's `"sqrt"` (floor of √d, at least 1).
    Sqrt,
    /// A fraction of d (floor, at least 1).
    Fraction(f64),
    /// A fixed count (at most d).
    Count(usize),
}

impl MaxFeatures {
    /// The number of features to draw for `d` features.
    pub fn resolve(&self, d: usize) -> usize {
        let k = match *self {
            MaxFeatures::All => d,
            MaxFeatures::Sqrt => (d as f64).sqrt().floor() as usize,
            MaxFeatures::Fraction(f) => (f * d as f64).floor() as usize,
            MaxFeatures::Count(c) => c,
        };
        k.clamp(1, d.max(1))
    }
}

/// Growth limits, with scikit-learn's names and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    /// Deepest level (`None`: grow until leaves are pure or too small).
    pub max_depth: Option<usize>,
    /// Smallest node that may be split (2).
    pub min_samples_split: usize,
    /// Smallest leaf, in samples (1).
    pub min_samples_leaf: usize,
    /// Features drawn per split.
    pub max_features: MaxFeatures,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams { max_depth: None, min_samples_split: 2, min_samples_leaf: 1, max_features: MaxFeatures::All }
    }
}

/// A fitted regression tree in flat arrays (node 0 is the root).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Split feature per node, [`LEAF`] for leaves.
    pub feature: Vec<u32>,
    /// Split threshold: rows with `x[feature] <= threshold` go left.
    pub threshold: Vec<f64>,
    /// Left child.
    pub left: Vec<u32>,
    /// Right child.
    pub right: Vec<u32>,
    /// Node value: weighted mean of the target.
    pub value: Vec<f64>,
    /// Weighted sample count (bootstrap multiplicity) per node: the "cover" TreeSHAP uses.
    pub cover: Vec<f64>,
    /// Distinct training samples per node.
    pub n_samples: Vec<u32>,
    /// Weighted variance of the target per node (squared-error impurity).
    pub impurity: Vec<f64>,
}

impl Tree {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.feature.len()
    }
    /// Whether the tree is empty (never, once fitted).
    pub fn is_empty(&self) -> bool {
        self.feature.is_empty()
    }
    /// Whether `node` is a leaf.
    pub fn is_leaf(&self, node: usize) -> bool {
        self.feature[node] == LEAF
    }
    /// The leaf a row falls into.
    pub fn leaf_of(&self, row: &[f64]) -> usize {
        let mut n = 0usize;
        while self.feature[n] != LEAF {
            n = if row[self.feature[n] as usize] <= self.threshold[n] { self.left[n] } else { self.right[n] } as usize;
        }
        n
    }
    /// Leaf for row `i` of column-major data.
    pub fn leaf_of_col(&self, x: &[Vec<f64>], i: usize) -> usize {
        let mut n = 0usize;
        while self.feature[n] != LEAF {
            n = if x[self.feature[n] as usize][i] <= self.threshold[n] { self.left[n] } else { self.right[n] } as usize;
        }
        n
    }
    /// Prediction for one row.
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.value[self.leaf_of(row)]
    }
    /// Depth of the deepest leaf.
    pub fn depth(&self) -> usize {
        fn d(t: &Tree, n: usize) -> usize {
            if t.is_leaf(n) {
                0
            } else {
                1 + d(t, t.left[n] as usize).max(d(t, t.right[n] as usize))
            }
        }
        d(self, 0)
    }

    fn push(&mut self, value: f64, cover: f64, n: u32, impurity: f64) -> usize {
        self.feature.push(LEAF);
        self.threshold.push(0.0);
        self.left.push(LEAF);
        self.right.push(LEAF);
        self.value.push(value);
        self.cover.push(cover);
        self.n_samples.push(n);
        self.impurity.push(impurity);
        self.feature.len() - 1
    }
}

/// A node laid out for fast traversal: inner nodes hold (threshold, feature, left child; the right child
/// is `left + 1`), leaves hold their value in `threshold` and [`LEAF`] in `feature`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PackedNode {
    /// Threshold, or the leaf value.
    pub threshold: f64,
    /// Feature, or [`LEAF`].
    pub feature: u32,
    /// Left child (right is `left + 1`).
    pub left: u32,
}

impl Tree {
    /// The tree in traversal layout (one cache line serves four nodes).
    pub fn packed(&self) -> Vec<PackedNode> {
        (0..self.len())
            .map(|n| {
                if self.is_leaf(n) {
                    PackedNode { threshold: self.value[n], feature: LEAF, left: 0 }
                } else {
                    debug_assert_eq!(self.right[n], self.left[n] + 1);
                    PackedNode { threshold: self.threshold[n], feature: self.feature[n], left: self.left[n] }
                }
            })
            .collect()
    }
}

/// Prediction of a packed tree for one row.
#[inline]
pub fn predict_packed(nodes: &[PackedNode], row: &[f64]) -> f64 {
    let mut n = &nodes[0];
    while n.feature != LEAF {
        let go_right = row[n.feature as usize] > n.threshold;
        n = &nodes[(n.left + go_right as u32) as usize];
    }
    n.threshold
}

/// One row as a feature's presorted list holds it.
#[derive(Clone, Copy, Debug)]
pub struct Sorted {
    x: f64,
    y: f64,
    row: u32,
}

/// Every feature's rows sorted by value (ties by row index), with value and target alongside so that
/// each tree's in-bag lists are built in one sequential pass: computed once per forest.
pub fn presort(x: &[Vec<f64>], y: &[f64]) -> Vec<Vec<Sorted>> {
    use rayon::prelude::*;
    x.par_iter()
        .map(|col| {
            let mut idx: Vec<u32> = (0..col.len() as u32).collect();
            idx.sort_by(|&a, &b| col[a as usize].total_cmp(&col[b as usize]).then(a.cmp(&b)));
            idx.into_iter().map(|i| Sorted { x: col[i as usize], y: y[i as usize], row: i }).collect()
        })
        .collect()
}

struct Best {
    feature: usize,
    pos: usize,
    threshold: f64,
    proxy: f64,
}

/// One in-bag sample as a feature's sorted list holds it: value, weight·target, row, weight. Keeping
/// these together makes both the split scan and the partition sequential passes over memory.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    x: f64,
    yw: f64,
    row: u32,
    w: u32,
}

/// (Σw, Σw·y, weighted variance) of a segment.
fn seg_stats(seg: &[Entry]) -> (f64, f64, f64) {
    let (mut sw, mut swy, mut swyy) = (0.0, 0.0, 0.0);
    for e in seg {
        let w = e.w as f64;
        sw += w;
        swy += e.yw;
        swyy += e.yw * e.yw / w;
    }
    let mean = swy / sw;
    (sw, swy, (swyy / sw - mean * mean).max(0.0))
}

/// Working memory of [`grow`], reused across the trees a thread grows (no re-allocation, no page faults).
#[derive(Default)]
pub struct Scratch {
    ord: Vec<Vec<Entry>>,
    buf: Vec<Entry>,
    left_bits: Vec<u64>,
}

/// Grows one tree on rows weighted by `w` (bootstrap counts; 0 = not in the sample).
///
/// `sorted` comes from [`presort`]; `rng` draws the feature order of each node (which also breaks ties
/// between equally good splits, as in scikit-learn).
pub fn grow(w: &[u32], sorted: &[Vec<Sorted>], params: &TreeParams, rng: &mut Rng, scratch: &mut Scratch) -> Tree {
    let d = sorted.len();
    // per-feature sorted entries restricted to the in-bag rows
    let Scratch { ord, buf, left_bits } = scratch;
    ord.resize_with(d, Vec::new);
    for (v, s) in ord.iter_mut().zip(sorted) {
        v.clear();
        for e in s {
            let wi = w[e.row as usize];
            if wi > 0 {
                v.push(Entry { x: e.x, yw: wi as f64 * e.y, row: e.row, w: wi });
            }
        }
    }
    let m = ord.first().map(|o| o.len()).unwrap_or(0);
    let mut tree = Tree {
        feature: vec![],
        threshold: vec![],
        left: vec![],
        right: vec![],
        value: vec![],
        cover: vec![],
        n_samples: vec![],
        impurity: vec![],
    };
    left_bits.clear();
    left_bits.resize(w.len() / 64 + 1, 0);
    buf.resize(m, Entry::default());
    let mut feats: Vec<usize> = (0..d).collect();
    let k = params.max_features.resolve(d);
    let min_leaf = params.min_samples_leaf.max(1);

    let (sw, swy, imp) = seg_stats(&ord[0]);
    let root = tree.push(swy / sw, sw, m as u32, imp);
    // (node, start, end, depth)
    let mut stack = vec![(root, 0usize, m, 0usize)];
    while let Some((node, start, end, depth)) = stack.pop() {
        let n = end - start;
        let sw = tree.cover[node];
        let swy = tree.value[node] * sw;
        let impurity = tree.impurity[node];
        if n < params.min_samples_split
            || n < 2 * min_leaf
            || params.max_depth.is_some_and(|md| depth >= md)
            || impurity <= f64::EPSILON
        {
            continue;
        }
        // draw features in random order; stop after k non-constant ones (scikit-learn's rule)
        rng.shuffle(&mut feats);
        let mut best: Option<Best> = None;
        let mut visited = 0;
        for &f in feats.iter() {
            if visited >= k {
                break;
            }
            let seg = &ord[f][start..end];
            if seg[n - 1].x <= seg[0].x + FEATURE_THRESHOLD {
                continue; // constant in this node
            }
            visited += 1;
            let (mut wl, mut swyl) = (0.0, 0.0);
            let mut best_proxy = best.as_ref().map(|b| b.proxy).unwrap_or(f64::NEG_INFINITY);
            let mut found: Option<(usize, f64, f64)> = None;
            for p in 0..n - 1 {
                let e = seg[p];
                wl += e.w as f64;
                swyl += e.yw;
                let xn = seg[p + 1].x;
                if xn <= e.x + FEATURE_THRESHOLD {
                    continue;
                }
                let nl = p + 1;
                if nl < min_leaf || n - nl < min_leaf {
                    continue;
                }
                let wr = sw - wl;
                let swyr = swy - swyl;
                // proxy = swyl²/wl + swyr²/wr > best, tested without dividing (wl, wr > 0): the division
                // happens only when a better split is found, which is rare once the scan is under way.
                let num = swyl * swyl * wr + swyr * swyr * wl;
                let den = wl * wr;
                if num > best_proxy * den {
                    let proxy = swyl * swyl / wl + swyr * swyr / wr;
                    if proxy > best_proxy {
                        best_proxy = proxy;
                        found = Some((nl, e.x, xn));
                    }
                }
            }
            if let Some((nl, xi, xn)) = found {
                let mut thr = xi / 2.0 + xn / 2.0;
                if thr == xn || !thr.is_finite() {
                    thr = xi;
                }
                best = Some(Best { feature: f, pos: start + nl, threshold: thr, proxy: best_proxy });
            }
        }
        let Some(b) = best else { continue };
        // partition every feature's entries stably around the split
        for e in &ord[b.feature][start..b.pos] {
            left_bits[e.row as usize >> 6] |= 1u64 << (e.row & 63);
        }
        for (f, o) in ord.iter_mut().enumerate() {
            if f == b.feature {
                continue;
            }
            let seg = &mut o[start..end];
            let mut l = 0;
            let mut r = 0;
            // branch-free: the side is a coin flip to the branch predictor
            for p in 0..seg.len() {
                let e = seg[p]; // l <= p, so the in-place write never overtakes the read
                let go_left = ((left_bits[e.row as usize >> 6] >> (e.row & 63)) & 1) as usize;
                seg[l] = e;
                buf[r] = e;
                l += go_left;
                r += 1 - go_left;
            }
            seg[l..].copy_from_slice(&buf[..r]);
        }
        for e in &ord[b.feature][start..b.pos] {
            left_bits[e.row as usize >> 6] = 0;
        }
        let (lw, lwy, limp) = seg_stats(&ord[b.feature][start..b.pos]);
        let (rw, rwy, rimp) = seg_stats(&ord[b.feature][b.pos..end]);
        let l = tree.push(lwy / lw, lw, (b.pos - start) as u32, limp);
        let r = tree.push(rwy / rw, rw, (end - b.pos) as u32, rimp);
        tree.feature[node] = b.feature as u32;
        tree.threshold[node] = b.threshold;
        tree.left[node] = l as u32;
        tree.right[node] = r as u32;
        stack.push((r, b.pos, end, depth + 1));
        stack.push((l, start, b.pos, depth + 1));
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_tree_fits_its_training_data() {
        let x = vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0]];
        let y = vec![1.0, 2.0, 3.0, 10.0, 11.0, 12.0];
        let w = vec![1; 6];
        let t = grow(&w, &presort(&x, &y), &TreeParams::default(), &mut Rng::new(0, 0), &mut Scratch::default());
        for i in 0..6 {
            assert_eq!(t.predict(&[x[0][i], x[1][i]]), y[i]);
        }
        assert_eq!(t.threshold[0], 3.5, "first split separates the two groups at the midpoint");
        assert_eq!(t.cover[0], 6.0);
    }

    #[test]
    fn limits_are_respected() {
        let x = vec![(0..100).map(|i| i as f64).collect::<Vec<_>>()];
        let y: Vec<f64> = (0..100).map(|i| ((i * 37) % 17) as f64).collect();
        let w = vec![1; 100];
        let p = TreeParams { max_depth: Some(3), min_samples_leaf: 5, ..Default::default() };
        let t = grow(&w, &presort(&x, &y), &p, &mut Rng::new(0, 0), &mut Scratch::default());
        assert!(t.depth() <= 3);
        for n in 0..t.len() {
            if t.is_leaf(n) {
                assert!(t.n_samples[n] >= 5);
            } else {
                let (l, r) = (t.left[n] as usize, t.right[n] as usize);
                assert_eq!(t.cover[n], t.cover[l] + t.cover[r]);
            }
        }
    }
}
