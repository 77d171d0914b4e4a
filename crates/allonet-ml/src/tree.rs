//! CART regression trees (Breiman, Friedman, Olshen, Stone, *Classification and Regression Trees*, 1984)
//! grown the way scikit-learn's `DecisionTreeRegressor` grows them inside a random forest: squared-error
//! criterion, best split over a random subset of features, thresholds at midpoints between distinct
//! values, bootstrap counts as sample weights.
//!
//! Two splitters share one tree. Nodes with at least [`HIST_MIN_ROWS`] in-bag rows are split on
//! histograms of one-byte quantile bins (LightGBM's method, with the smaller child's histogram built and
//! the larger one's subtracted from the parent's); features with at most 256 distinct values are binned
//! one value per bin, so on them this is exact too. Below a few thousand rows a node's bins are merged in
//! runs (32–128 bins per feature, about one per 16 rows, see [`bin_level`]), so its histogram costs about
//! as much as its rows. Smaller nodes — the great majority of a fully grown tree's nodes — are split
//! exactly, as scikit-learn does: every feature's rows are sorted once per forest, each subtree's sorted
//! lists are cut out of those in one pass, and each split partitions them stably, so a node is scanned in
//! O(n·d) with no sorting. On 100k × 10 Friedman-1 the forest's held-out R² stays within 0.001 of
//! scikit-learn's (`bench/forest_bench.py`).

use crate::data::Rng;
use serde::{Deserialize, Serialize};

mod simd;

/// Marks a leaf in [`Node::feature`].
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

/// One node of a [`Tree`] in the layout prediction walks (16 bytes, four to a cache line). An inner node
/// holds its split — rows with `x[feature] <= threshold` go to `left`, the others to `left + 1` — and a leaf
/// holds [`LEAF`] in `feature` and `left`, and its value in `threshold`, so a walk reads nothing else.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Node {
    /// Split threshold of an inner node; a leaf's value.
    pub threshold: f64,
    /// Split feature, or [`LEAF`].
    pub feature: u32,
    /// Left child (the right child is the next node), or [`LEAF`].
    pub left: u32,
}

impl Node {
    /// Whether this node is a leaf.
    #[inline(always)]
    pub fn is_leaf(&self) -> bool {
        self.feature == LEAF
    }
    /// (left, right) children of an inner node.
    #[inline(always)]
    pub fn children(&self) -> (usize, usize) {
        (self.left as usize, self.left as usize + 1)
    }
    /// The child of an inner node a value of its split feature goes to: left where `v <= threshold`, so a
    /// NaN goes right (the one walk rule: prediction, leaf lookup and TreeSHAP all use it), without a branch.
    #[inline(always)]
    pub fn child(&self, v: f64) -> usize {
        (self.left + 1 - (v <= self.threshold) as u32) as usize
    }
}

/// A fitted regression tree (node 0 is the root): the nodes in traversal layout, and the statistics of
/// each node in flat arrays. Children always come after their parent and the right child right after the
/// left one, so a tree is one array that prediction walks without a second lookup. Written to model files
/// as [`TreeFile`] (the arrays of earlier versions, so files and model ids do not depend on this layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// Split (or leaf value) and children per node.
    pub nodes: Vec<Node>,
    /// Node value: weighted mean of the target.
    pub value: Vec<f64>,
    /// Weighted sample count (bootstrap multiplicity) per node: the "cover" TreeSHAP uses.
    pub cover: Vec<f64>,
    /// Distinct training samples per node.
    pub n_samples: Vec<u32>,
    /// Weighted variance of the target per node (squared-error impurity).
    pub impurity: Vec<f64>,
}

/// A tree as model files hold it: per node the split feature ([`LEAF`] for leaves), threshold (0 for
/// leaves), left and right children ([`LEAF`] for leaves), value, cover, distinct samples and impurity.
#[derive(Deserialize)]
struct TreeFile {
    feature: Vec<u32>,
    threshold: Vec<f64>,
    left: Vec<u32>,
    right: Vec<u32>,
    value: Vec<f64>,
    cover: Vec<f64>,
    n_samples: Vec<u32>,
    impurity: Vec<f64>,
}

/// Written as [`TreeFile`]'s fields, in its order.
impl Serialize for Tree {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let nodes = &self.nodes;
        let feature: Vec<u32> = nodes.iter().map(|n| n.feature).collect();
        let threshold: Vec<f64> = nodes.iter().map(|n| if n.is_leaf() { 0.0 } else { n.threshold }).collect();
        let left: Vec<u32> = nodes.iter().map(|n| if n.is_leaf() { LEAF } else { n.left }).collect();
        let right: Vec<u32> = nodes.iter().map(|n| if n.is_leaf() { LEAF } else { n.left + 1 }).collect();
        let mut st = s.serialize_struct("Tree", 8)?;
        st.serialize_field("feature", &feature)?;
        st.serialize_field("threshold", &threshold)?;
        st.serialize_field("left", &left)?;
        st.serialize_field("right", &right)?;
        st.serialize_field("value", &self.value)?;
        st.serialize_field("cover", &self.cover)?;
        st.serialize_field("n_samples", &self.n_samples)?;
        st.serialize_field("impurity", &self.impurity)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = TreeFile::deserialize(d)?;
        Tree::from_file(f).map_err(serde::de::Error::custom)
    }
}

impl Tree {
    /// A tree from its file form, refusing arrays of unequal lengths and children that do not come after
    /// their parent with the right one next to the left one (which also rules out cycles).
    fn from_file(f: TreeFile) -> Result<Tree, String> {
        let len = f.feature.len();
        let lens = [f.threshold.len(), f.left.len(), f.right.len(), f.value.len(), f.cover.len()];
        if len == 0 || lens.iter().chain(&[f.n_samples.len(), f.impurity.len()]).any(|&l| l != len) {
            return Err(format!("a tree's node arrays must be non-empty and of one length (feature has {len})"));
        }
        let nodes = (0..len)
            .map(|n| {
                if f.feature[n] == LEAF {
                    return Ok(Node { threshold: f.value[n], feature: LEAF, left: LEAF });
                }
                let (l, r) = (f.left[n] as usize, f.right[n] as usize);
                if l <= n || r != l + 1 || r >= len {
                    return Err(format!(
                        "node {n}: children {l} and {r} must follow it, the right one next to the left one, \
                         within the tree's {len} nodes"
                    ));
                }
                Ok(Node { threshold: f.threshold[n], feature: f.feature[n], left: f.left[n] })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tree { nodes, value: f.value, cover: f.cover, n_samples: f.n_samples, impurity: f.impurity })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether the tree is empty (never, once fitted).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Whether `node` is a leaf.
    pub fn is_leaf(&self, node: usize) -> bool {
        self.nodes[node].is_leaf()
    }
    /// The leaf a row falls into.
    pub fn leaf_of(&self, row: &[f64]) -> usize {
        let mut n = 0usize;
        while !self.nodes[n].is_leaf() {
            let node = &self.nodes[n];
            n = node.child(row[node.feature as usize]);
        }
        n
    }
    /// Leaf for row `i` of column-major data.
    pub fn leaf_of_col(&self, x: &[Vec<f64>], i: usize) -> usize {
        let mut n = 0usize;
        while !self.nodes[n].is_leaf() {
            let node = &self.nodes[n];
            n = node.child(x[node.feature as usize][i]);
        }
        n
    }
    /// Prediction for one row.
    pub fn predict(&self, row: &[f64]) -> f64 {
        self.nodes[self.leaf_of(row)].threshold
    }
    /// Depth of the deepest leaf.
    pub fn depth(&self) -> usize {
        fn d(t: &Tree, n: usize) -> usize {
            if t.is_leaf(n) {
                0
            } else {
                let (l, r) = t.nodes[n].children();
                1 + d(t, l).max(d(t, r))
            }
        }
        d(self, 0)
    }

    fn shrink_to_fit(&mut self) {
        self.nodes.shrink_to_fit();
        self.value.shrink_to_fit();
        self.cover.shrink_to_fit();
        self.n_samples.shrink_to_fit();
        self.impurity.shrink_to_fit();
    }

    #[inline(always)]
    fn push(&mut self, value: f64, cover: f64, n: u32, impurity: f64) -> usize {
        self.nodes.push(Node { threshold: value, feature: LEAF, left: LEAF });
        self.value.push(value);
        self.cover.push(cover);
        self.n_samples.push(n);
        self.impurity.push(impurity);
        self.nodes.len() - 1
    }

    /// Makes `node` an inner node on `feature` with two new leaf children, each given as (Σw, Σw·y,
    /// variance, distinct rows); returns (left, right). The threshold is set by the caller.
    fn split(
        &mut self,
        node: usize,
        feature: usize,
        l: (f64, f64, f64, usize),
        r: (f64, f64, f64, usize),
    ) -> (usize, usize) {
        let left = self.push(l.1 / l.0, l.0, l.3 as u32, l.2);
        let right = self.push(r.1 / r.0, r.0, r.3 as u32, r.2);
        let n = &mut self.nodes[node];
        n.feature = feature as u32;
        n.left = left as u32;
        (left, right)
    }

    /// Adds this tree's prediction for every row of `buf` (row-major, `k` features per row) to `acc`.
    /// Eight rows walk down together, one level per step, so the cache misses of their node loads overlap
    /// instead of following one another; each row's result is exactly [`Tree::predict`]'s.
    pub fn add_predictions(&self, buf: &[f64], k: usize, acc: &mut [f64]) {
        const LANES: usize = 8;
        let nodes = &self.nodes;
        let mut chunks = acc.chunks_exact_mut(LANES);
        let mut r0 = 0;
        for lanes in chunks.by_ref() {
            let mut at = [0usize; LANES];
            loop {
                let mut moved = false;
                for (l, a) in at.iter_mut().enumerate() {
                    let n = &nodes[*a];
                    if !n.is_leaf() {
                        *a = n.child(buf[(r0 + l) * k + n.feature as usize]);
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
            for (v, a) in lanes.iter_mut().zip(at) {
                *v += nodes[a].threshold;
            }
            r0 += LANES;
        }
        for (i, v) in chunks.into_remainder().iter_mut().enumerate() {
            let r = r0 + i;
            *v += self.predict(&buf[r * k..(r + 1) * k]);
        }
    }
}

/// One row as a feature's presorted list holds it: the row (low 31 bits) and whether its tie group has
/// other rows (the top bit, [`SHARED`]). Rows whose values are within [`FEATURE_THRESHOLD`] of their sorted
/// neighbour share a tie group, and no split falls inside one.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(transparent)]
struct Sorted(u32);

/// The top bit of [`Sorted`] and [`Entry`]: the row's tie group holds other rows too. Most rows of a
/// continuous feature are alone in theirs, and a boundary next to such a row is never inside a group, so
/// the lists need not carry the groups; the rare rows that share one look theirs up ([`Ties`]).
const SHARED: u32 = 1 << 31;
/// The low 31 bits of [`Sorted`] and [`Entry`]: a row or an in-bag id.
const ID_BITS: u32 = SHARED - 1;

impl Sorted {
    fn row(self) -> usize {
        (self.0 & ID_BITS) as usize
    }
}

/// Histogram bins per feature (codes are one byte).
const BINS: usize = 256;
/// Nodes with at least this many distinct in-bag rows are split on histograms, smaller ones exactly.
pub const HIST_MIN_ROWS: usize = 64;
/// A node's histogram has about one bin per this many of its rows ([`bin_level`]) ...
const HIST_ROWS_PER_BIN: usize = 16;
/// ... but at least 256 >> this many bins per feature (32): coarser bins cost held-out R² on small
/// training sets (0.012 on `tests/forest.rs`' 800-row Friedman-1 with min_samples_leaf 5 at 16 bins).
const MAX_LEVEL: u32 = 3;

/// What a forest computes once from its training features and every tree reuses: each feature's rows in
/// sorted order with tie groups (for exact splits), and a one-byte quantile bin per row and feature with
/// each bin's smallest and largest value (for histogram splits of large nodes).
pub struct Presorted {
    sorted: Vec<Vec<Sorted>>,
    /// Each feature's tie group of every row, by row.
    group: Vec<Vec<u32>>,
    /// Bin of every (row, feature), row-major: a row's codes share a cache line.
    codes: Vec<u8>,
    lower: Vec<Vec<f64>>,
    upper: Vec<Vec<f64>>,
    /// Per histogram level ([`bin_level`], 0 to [`MAX_LEVEL`]): each feature's code shift and bin count.
    levels: Vec<(Vec<u32>, Vec<usize>)>,
}

impl Presorted {
    /// How far feature f's codes are shifted at histogram level `level` ([`bin_level`]): by the level,
    /// less for a feature with fewer than 256 bins, so that it keeps at most 256 >> level bins, and a
    /// feature with few distinct values keeps them apart.
    fn shift(&self, f: usize, level: u32) -> u32 {
        self.levels[level as usize].0[f]
    }

    /// Feature f's number of bins at histogram level `level`.
    fn bins(&self, f: usize, level: u32) -> usize {
        self.levels[level as usize].1[f]
    }

    /// Every feature's (shift, bin count) at histogram level `level`, as [`fill_hist`] takes them.
    fn at_level(&self, level: u32) -> (&[u32], &[usize]) {
        let (shifts, counts) = &self.levels[level as usize];
        (shifts, counts)
    }
}

/// One feature presorted: sorted rows, each row's tie group and bin, and each bin's smallest and largest
/// value.
type SortedFeature = (Vec<Sorted>, Vec<u32>, Vec<u8>, Vec<f64>, Vec<f64>);

/// Sorts every feature once (ties by row index) and bins it.
///
/// Bins follow the sorted order: a feature with at most 256 distinct values (tie groups) gets one bin per
/// value, so histogram splits on it are exact; otherwise bins hold about n/256 rows each and never cut a
/// tie group (LightGBM's quantile binning: Ke et al., "LightGBM", NeurIPS 2017).
pub fn presort(x: &[Vec<f64>]) -> Presorted {
    use rayon::prelude::*;
    let d = x.len();
    let n = x.first().map(|c| c.len()).unwrap_or(0);
    assert!(n <= ID_BITS as usize, "at most 2^31 - 1 training rows");
    let per: Vec<SortedFeature> = x
        .par_iter()
        .map(|col| {
            // (order-preserving bits of the value, row): sorting plain integer pairs is several times faster
            // than sorting indices through a comparator that looks the values up
            let mut keyed: Vec<(u64, u32)> = col
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let b = v.to_bits();
                    (if b >> 63 == 1 { !b } else { b | 1 << 63 }, i as u32)
                })
                .collect();
            keyed.sort_unstable();
            // (row, tie group) in sorted order
            let mut rank = 0u32;
            let mut prev = f64::NEG_INFINITY;
            let ranked: Vec<(u32, u32)> = keyed
                .into_iter()
                .map(|(_, i)| {
                    let v = col[i as usize];
                    if v > prev + FEATURE_THRESHOLD {
                        rank += 1;
                    }
                    prev = v;
                    (i, rank)
                })
                .collect();
            let groups = rank as usize;
            let mut group = vec![0u32; n];
            let sorted: Vec<Sorted> = (0..ranked.len())
                .map(|k| {
                    let (row, g) = ranked[k];
                    group[row as usize] = g;
                    let shared = (k > 0 && ranked[k - 1].1 == g) || ranked.get(k + 1).is_some_and(|r| r.1 == g);
                    Sorted(row | if shared { SHARED } else { 0 })
                })
                .collect();
            let target = n.div_ceil(BINS).max(1);
            let (mut code, mut lower, mut upper) = (vec![0u8; n], Vec::new(), Vec::<f64>::new());
            let (mut count, mut prev_rank) = (0usize, 0u32);
            for &(row, rank) in &ranked {
                let v = col[row as usize];
                if rank != prev_rank && (lower.is_empty() || groups <= BINS || (count >= target && lower.len() < BINS))
                {
                    lower.push(v);
                    upper.push(v);
                    count = 0;
                }
                prev_rank = rank;
                count += 1;
                *upper.last_mut().expect("a bin is open") = v;
                code[row as usize] = (lower.len() - 1) as u8;
            }
            (sorted, group, code, lower, upper)
        })
        .collect();
    let mut codes = vec![0u8; n * d];
    for (f, (_, _, c, _, _)) in per.iter().enumerate() {
        for (i, &b) in c.iter().enumerate() {
            codes[i * d + f] = b;
        }
    }
    let mut pre = Presorted {
        sorted: Vec::new(),
        group: Vec::new(),
        codes,
        lower: Vec::new(),
        upper: Vec::new(),
        levels: Vec::new(),
    };
    for (s, g, _, l, u) in per {
        pre.sorted.push(s);
        pre.group.push(g);
        pre.lower.push(l);
        pre.upper.push(u);
    }
    pre.levels = (0..=MAX_LEVEL)
        .map(|level| {
            pre.lower
                .iter()
                .map(|l| {
                    let bits = usize::BITS - (l.len().max(1) - 1).leading_zeros();
                    let sh = level.saturating_sub(8 - bits);
                    (sh, (l.len() + (1 << sh) - 1) >> sh)
                })
                .unzip()
        })
        .collect();
    pre
}

struct Best {
    feature: usize,
    pos: usize,
    proxy: f64,
}

/// The split threshold between two neighbouring values: their midpoint, or the lower value where the
/// midpoint rounds up to the upper one (scikit-learn's rule).
fn midpoint(xi: f64, xn: f64) -> f64 {
    let thr = xi / 2.0 + xn / 2.0;
    if thr == xn || !thr.is_finite() {
        xi
    } else {
        thr
    }
}

/// One in-bag sample as a feature's sorted list holds it: its index among the tree's in-bag rows (low 31
/// bits) and the [`SHARED`] bit. Four bytes, so a node's lists are scanned and partitioned with little
/// memory traffic; the weights and targets are looked up by id in small per-tree arrays.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(transparent)]
struct Entry(u32);

impl Entry {
    #[inline(always)]
    fn id(self) -> usize {
        (self.0 & ID_BITS) as usize
    }
}

/// Where the tie group of a row marked [`SHARED`] is looked up: each feature's group by training row, and
/// the training row of each in-bag id.
#[derive(Clone, Copy)]
struct Ties<'a> {
    group: &'a [Vec<u32>],
    rows: &'a [u32],
}

impl Ties<'_> {
    /// Whether entries `a` and `b` of feature f's lists are in different tie groups, so that a boundary
    /// between them may split them: certainly where either row is alone in its group.
    #[inline(always)]
    fn apart(&self, f: usize, a: Entry, b: Entry) -> bool {
        let group = |e: Entry| self.group[f][self.rows[e.id()] as usize];
        a != b && (a.0 & b.0 & SHARED == 0 || group(a) != group(b))
    }
}

/// Per in-bag row: bootstrap weight and weight·target (looked up together by the split scan).
#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    yw: f64,
    w: u64,
}

/// One histogram bin in 16 bytes (a feature's 256 bins fit in 4 KiB): Σw·y, and the number of distinct
/// in-bag rows (high half) beside Σw (low half, the integer bootstrap counts) in one word, so a row is
/// added with two adds and a child is subtracted from its parent exactly.
#[derive(Clone, Copy, Debug, Default)]
struct Bin {
    yw: f64,
    nw: u64,
}

impl Bin {
    fn w(&self) -> u64 {
        self.nw & 0xffff_ffff
    }
    fn n(&self) -> usize {
        (self.nw >> 32) as usize
    }
    #[inline(always)]
    fn add(&mut self, c: Bin) {
        self.yw += c.yw;
        self.nw += c.nw;
    }
    #[inline(always)]
    fn sub(&mut self, c: Bin) {
        self.yw -= c.yw;
        self.nw -= c.nw;
    }
}

/// Working memory of [`grow`], reused across the trees a thread grows (no re-allocation, no page faults).
#[derive(Default)]
pub struct Scratch {
    /// Per feature, the in-bag entries of the exactly split nodes, sorted by value; nodes are contiguous
    /// ranges. A split writes its children into the other buffer (`alt`): one pass, no copy back.
    ord: Vec<Vec<Entry>>,
    alt: Vec<Vec<Entry>>,
    /// In-bag id → training row.
    rows: Vec<u32>,
    stat: Vec<Stat>,
    /// (w·y)²/w per in-bag id, for node variances.
    yyw: Vec<f64>,
    /// In-bag ids of the histogram-split nodes (contiguous ranges), and a partition buffer.
    ids: Vec<u32>,
    ids_buf: Vec<u32>,
    /// Training row → (exactly split subtree, in-bag id) packed in one word; the subtree is the sink for
    /// rows out of bag or in a leaf of the histogram phase. `slot32` when both fit in 32 bits.
    slot: Vec<u64>,
    slot32: Vec<u32>,
    /// Spare histograms.
    hists: Vec<Vec<Bin>>,
    /// 1/k for every weight sum k a node can have (the split scan multiplies instead of dividing).
    inv: Vec<f64>,
    /// Per in-bag id (padded to a power of two, all 0 between splits): 1 where the row goes left at the split
    /// being applied.
    goes_left: Vec<u8>,
    /// Use the portable kernels even where the AVX-512 ones run (the tests compare the two).
    pub(crate) portable: bool,
    /// `stat`, `yyw` and `rows` renumbered for the exact phase (in-bag id = position in `ids`).
    renumbered: (Vec<Stat>, Vec<f64>, Vec<u32>),
}

/// A node's sums over its rows: Σw (integer bootstrap counts), Σw·y and Σ(w·y)²/w.
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    w: u64,
    wy: f64,
    wyy: f64,
}

impl Sums {
    #[inline(always)]
    fn add(&mut self, s: Stat, yyw: f64) {
        self.w += s.w;
        self.wy += s.yw;
        self.wyy += yyw;
    }

    /// The sums of a node's rows other than `part`'s (a child's sibling).
    fn without(self, part: Sums) -> Sums {
        Sums { w: self.w - part.w, wy: self.wy - part.wy, wyy: self.wyy - part.wyy }
    }

    /// (Σw, Σw·y, weighted variance).
    fn stats(self) -> (f64, f64, f64) {
        let sw = self.w as f64;
        let mean = self.wy / sw;
        (sw, self.wy, (self.wyy / sw - mean * mean).max(0.0))
    }
}

fn node_sums(ids: impl Iterator<Item = u32>, stat: &[Stat], yyw: &[f64]) -> Sums {
    let mut sums = Sums::default();
    for id in ids {
        sums.add(stat[id as usize], yyw[id as usize]);
    }
    sums
}

/// (Σw, Σw·y, weighted variance) of a node's rows.
fn node_stats(ids: impl Iterator<Item = u32>, stat: &[Stat], yyw: &[f64]) -> (f64, f64, f64) {
    node_sums(ids, stat, yyw).stats()
}

fn seg_stats(seg: &[Entry], stat: &[Stat], yyw: &[f64]) -> (f64, f64, f64) {
    node_stats(seg.iter().map(|e| e.id() as u32), stat, yyw)
}

/// The histogram of a node's rows: `d` blocks of [`BINS`] bins, feature f's codes shifted right by
/// `shifts[f]` into its first `counts[f]` bins (merged bins, see [`bin_level`]); the rest of each block
/// is left as it was and never read.
fn fill_hist(
    h: &mut [Bin],
    ids: &[u32],
    rows: &[u32],
    codes: &[u8],
    (shifts, counts): (&[u32], &[usize]),
    (stat, yyw): (&[Stat], &[f64]),
) -> Sums {
    for (hf, &c) in h.chunks_exact_mut(BINS).zip(counts) {
        hf[..c].fill(Bin::default());
    }
    // the full-resolution fill (the largest nodes, most of the work) without the shifts
    if shifts.iter().all(|&s| s == 0) {
        fill_hist_at::<false>(h, ids, rows, codes, shifts, (stat, yyw))
    } else {
        fill_hist_at::<true>(h, ids, rows, codes, shifts, (stat, yyw))
    }
}

/// [`fill_hist`]'s loop, which also sums the rows it adds.
#[inline(always)]
fn fill_hist_at<const SHIFTED: bool>(
    h: &mut [Bin],
    ids: &[u32],
    rows: &[u32],
    codes: &[u8],
    shifts: &[u32],
    (stat, yyw): (&[Stat], &[f64]),
) -> Sums {
    let d = shifts.len();
    let mut sums = Sums::default();
    for &id in ids {
        let r = rows[id as usize] as usize;
        let s = stat[id as usize];
        sums.add(s, yyw[id as usize]);
        let row = Bin { yw: s.yw, nw: 1 << 32 | s.w };
        // a feature's bins are one 256-long block and a code is one byte: no bounds checks
        for ((hf, &c), &sh) in h.chunks_exact_mut(BINS).zip(&codes[r * d..r * d + d]).zip(shifts) {
            hf[if SHIFTED { (c >> sh) as usize } else { c as usize }].add(row);
        }
    }
    sums
}

/// The resolution of a node's histogram, as a level: at level l a feature's bins are merged 2^l at a
/// time, down to at most 256 >> l bins (features with fewer bins are merged less, see
/// [`Presorted::shift`]). A node of n rows gets level log2(256·[`HIST_ROWS_PER_BIN`] / n), capped at
/// [`MAX_LEVEL`]: scanning, clearing and subtracting its histogram then costs about as much as its rows
/// rather than 256 bins per feature, which is what lets histograms split nodes down to [`HIST_MIN_ROWS`]
/// rows for less than the exact splitter. Bins are merged in the sorted order, so a merged bin is still a
/// run of values and its boundaries are boundaries of the fine bins.
fn bin_level(n: usize) -> u32 {
    let full = usize::BITS - 1 - (BINS * HIST_ROWS_PER_BIN).leading_zeros();
    full.saturating_sub(usize::BITS - 1 - n.max(1).leading_zeros()).min(MAX_LEVEL)
}

/// Merges each feature's bins in place from level `from` to level `to` ([`bin_level`]).
fn coarsen(h: &mut [Bin], pre: &Presorted, from: u32, to: u32) {
    for (f, hf) in h.chunks_exact_mut(BINS).enumerate().take(pre.lower.len()) {
        let (a, b) = (pre.shift(f, from), pre.shift(f, to));
        if b == a {
            continue;
        }
        let (per, count) = (1usize << (b - a), pre.bins(f, from));
        for j in 0..pre.bins(f, to) {
            let mut sum = hf[j * per];
            for &c in &hf[j * per + 1..((j + 1) * per).min(count)] {
                sum.add(c);
            }
            hf[j] = sum;
        }
    }
}

/// What an exact node's split search reads besides its lists: the drawn feature order and how many
/// non-constant features to visit, the in-bag rows' stats and the 1/k table, the node's Σw and Σw·y, and
/// min_samples_leaf.
struct Search<'a> {
    feats: &'a [usize],
    ties: Ties<'a>,
    k: usize,
    stat: &'a [Stat],
    inv: &'a [f64],
    sw: u64,
    swy: f64,
    min_leaf: usize,
}

/// The best exact split of the node whose entries are `lists[f][start..end]`, over the first `k`
/// non-constant features in the drawn order `feats` (scikit-learn's rule). Not inlined into [`grow`]: on
/// its own, the scan keeps its pointers and sums in registers.
#[inline(never)]
fn best_exact(lists: &[Vec<Entry>], start: usize, end: usize, s: &Search) -> Option<Best> {
    if end - start == 3 && !s.feats.is_empty() {
        return best_exact_3(lists, start, s);
    }
    best_exact_scan(lists, start, end, s)
}

/// [`best_exact`] by scanning every boundary of every feature in the drawn order.
#[inline(always)]
fn best_exact_scan(lists: &[Vec<Entry>], start: usize, end: usize, s: &Search) -> Option<Best> {
    let &Search { feats, ties, k, stat, inv, sw, swy, min_leaf } = s;
    let n = end - start;
    let (lo, hi) = (min_leaf - 1, n - min_leaf);
    let mut visited = 0;
    let mut best: Option<Best> = None;
    for &f in feats {
        if visited >= k {
            break;
        }
        let seg = &lists[f][start..end];
        if !ties.apart(f, seg[0], seg[n - 1]) {
            continue; // constant in this node
        }
        visited += 1;
        let floor = best.as_ref().map(|b| b.proxy).unwrap_or(f64::NEG_INFINITY);
        if let (Some(p), proxy) = scan_one(seg, (f, ties), stat, inv, sw, swy, lo, hi, floor) {
            best = Some(Best { feature: f, pos: start + p + 1, proxy });
        }
    }
    best
}

/// [`best_exact`] for a node of three rows (so min_samples_leaf is 1), with the same result. A feature's
/// two boundaries put its first row alone on the left or its last row alone on the right, and the
/// proxies the scan would compute for these depend on that row only (a sum of two terms does not depend
/// on their order), so the six are computed once per node rather than twice per feature; and once a
/// feature reaches the largest of them no later feature can beat it (ties keep the first), so the rest
/// are skipped.
fn best_exact_3(lists: &[Vec<Entry>], start: usize, s: &Search) -> Option<Best> {
    let &Search { feats, ties, k, stat, inv, sw, swy, .. } = s;
    let ids = {
        let seg = &lists[feats[0]][start..start + 3];
        [seg[0].id(), seg[1].id(), seg[2].id()]
    };
    let st = ids.map(|id| stat[id]);
    let p = |wl: u64, swyl: f64| proxy(swyl, swy - swyl, inv[wl as usize], inv[(sw - wl) as usize]);
    // alone on the left (first) or on the right (last): the scan's sums 0 + yw_i and yw_j + yw_k
    let first = [0, 1, 2].map(|i| p(st[i].w, st[i].yw));
    let last = [0, 1, 2].map(|i| {
        let (j, k) = ((i + 1) % 3, (i + 2) % 3);
        p(st[j].w + st[k].w, st[j].yw + st[k].yw)
    });
    let top = first.iter().chain(&last).fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let local = |e: Entry| (e.id() == ids[1]) as usize + 2 * (e.id() == ids[2]) as usize;
    let (mut visited, mut best): (usize, Option<Best>) = (0, None);
    for &f in feats {
        if visited >= k {
            break;
        }
        let seg = &lists[f][start..start + 3];
        if !ties.apart(f, seg[0], seg[2]) {
            continue; // constant in this node
        }
        visited += 1;
        let floor = best.as_ref().map(|b| b.proxy).unwrap_or(f64::NEG_INFINITY);
        let (a, c) = (first[local(seg[0])], last[local(seg[2])]);
        let mut here = None;
        if a > floor && ties.apart(f, seg[0], seg[1]) {
            here = Some((1, a));
        }
        if c > here.map_or(floor, |h| h.1) && ties.apart(f, seg[1], seg[2]) {
            here = Some((2, c));
        }
        if let Some((nl, proxy)) = here {
            best = Some(Best { feature: f, pos: start + nl, proxy });
            if proxy == top {
                break; // nothing later is strictly better
            }
        }
    }
    best
}

/// The best boundary in one feature's sorted entries of a node: (position p, so that p + 1 rows go left;
/// proxy) for the first boundary with the highest proxy (Σwy)²/Σw left + right above `floor`, ties between
/// equal values and boundaries outside `lo..hi` (leaf-size limits) excluded. Sums run in sorted order; the
/// weights are integers, so 1/Σw comes from the table `inv` instead of two divisions per boundary.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scan_one(
    seg: &[Entry],
    (f, ties): (usize, Ties),
    stat: &[Stat],
    inv: &[f64],
    sw: u64,
    swy: f64,
    lo: usize,
    hi: usize,
    floor: f64,
) -> (Option<usize>, f64) {
    // every weight sum met below is at most sw; every id is below m (entries are made from in-bag ids)
    assert!((sw as usize) < inv.len());
    debug_assert!(seg.iter().all(|e| e.id() < stat.len()));
    // SAFETY: the two facts just asserted bound every index below
    let stat_of = |e: &Entry| unsafe { *stat.get_unchecked(e.id()) };
    let inv_of = |k: u64| unsafe { *inv.get_unchecked(k as usize) };
    let (mut wl, mut swyl) = (0u64, 0.0);
    for e in &seg[..lo] {
        let s = stat_of(e);
        wl += s.w;
        swyl += s.yw;
    }
    let mut best = floor;
    let mut found = usize::MAX;
    // a plain index loop: the boundary after entry p, whose successor seg[p + 1] exists as p < hi < n
    assert!(hi < seg.len());
    for p in lo..hi {
        // SAFETY: p < hi < seg.len(), asserted above
        let (e, next) = unsafe { (seg.get_unchecked(p), seg.get_unchecked(p + 1)) };
        let s = stat_of(e);
        wl += s.w;
        swyl += s.yw;
        let proxy = proxy(swyl, swy - swyl, inv_of(wl), inv_of(sw - wl));
        // no boundary inside a tie group (looked up only where both rows share theirs, which is rare)
        let apart = e.0 & next.0 & SHARED == 0 || ties.apart(f, *e, *next);
        let proxy = if apart { proxy } else { f64::NEG_INFINITY };
        // without a branch: a new best is a coin flip early in a scan
        let better = proxy > best;
        found = if better { p } else { found };
        best = if better { proxy } else { best };
    }
    ((found != usize::MAX).then_some(found), best)
}

/// The best boundary between two occupied bins of one feature's histogram over a node of `n` rows:
/// whether at least two bins are occupied (else the feature is constant as far as the histogram can
/// tell), and the first boundary with the highest proxy above `floor` as (proxy, last bin going left,
/// first bin going right, rows going left), boundaries that leave fewer than `min_leaf` (≥ 1) rows on a
/// side excluded. Written without a branch on occupancy, which is a coin flip in a sparse histogram: the
/// proxy is computed at every bin and kept only where the bin is occupied (the compiler may still skip
/// it for empty bins), and a new best is the one branch.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn scan_bins(
    bins: &[Bin],
    inv: &[f64],
    n: usize,
    sw: u64,
    swy: f64,
    min_leaf: usize,
    floor: f64,
) -> (bool, Option<(f64, usize, usize, usize)>) {
    debug_assert!(min_leaf >= 1);
    // every weight sum met below is at most sw
    assert!((sw as usize) < inv.len());
    // SAFETY: just asserted
    let inv_of = |k: u64| unsafe { *inv.get_unchecked(k as usize) };
    let (mut wl, mut swyl, mut nl, mut last, mut occupied) = (0u64, 0.0, 0usize, 0usize, 0usize);
    let mut best = floor;
    let mut found = None;
    for (bi, bin) in bins.iter().enumerate() {
        let occ = bin.nw != 0;
        // the boundary before this bin; with min_leaf ≥ 1 rows on the left, an earlier bin (`last`) is
        // occupied. Where a side is empty its 1/Σw is infinite and the proxy NaN, which never compares
        // greater
        let proxy = proxy(swyl, swy - swyl, inv_of(wl), inv_of(sw - wl));
        if occ & (nl >= min_leaf) & (nl + min_leaf <= n) & (proxy > best) {
            std::hint::cold_path();
            (best, found) = (proxy, Some((proxy, last, bi, nl)));
        }
        wl += bin.w();
        swyl += bin.yw;
        nl += bin.n();
        last = if occ { bi } else { last };
        occupied += occ as usize;
    }
    (occupied >= 2, found)
}

/// The split proxy (Σwy_l)²/Σw_l + (Σwy_r)²/Σw_r from the two sides' sums and the reciprocals of their
/// weights (scikit-learn's `proxy_impurity_improvement` for squared error), shared by both splitters.
/// Written asymmetrically so the compiler keeps it in four scalar multiplies.
#[inline(always)]
fn proxy(swyl: f64, swyr: f64, inv_wl: f64, inv_wr: f64) -> f64 {
    (swyl * inv_wl) * swyl + swyr * (swyr * inv_wr)
}

/// Which of a node's entries go left at the split being applied.
#[derive(Clone, Copy)]
enum Side<'a> {
    /// Bit `id - base` of the word, where all the node's ids lie in `base..base + 64` (a subtree of at
    /// most 64 rows, whose in-bag ids are consecutive).
    Bits(u64, u32),
    /// A mark per in-bag id (a power-of-two length, so a masked id needs no bounds check).
    Marks(&'a [u8]),
}

impl Side<'_> {
    /// Whether entry `e` goes left. For `Bits`, `e.0 - base` keeps the id's offset in its low six bits
    /// (ids are at least `base`, and the [`SHARED`] bit lies above).
    #[inline(always)]
    fn left(self, e: Entry) -> bool {
        match self {
            Side::Bits(bits, base) => bits >> (e.0.wrapping_sub(base) & 63) & 1 != 0,
            Side::Marks(marks) => marks[e.0 as usize & (marks.len() - 1)] != 0,
        }
    }
}

/// Partitions every feature's entries `start..end` of `src` into `dst` ([`partition`]) around a split on
/// feature `split`.
fn partition_lists(
    src: &[Vec<Entry>],
    dst: &mut [Vec<Entry>],
    range: (usize, usize),
    split: usize,
    nl: usize,
    side: Side,
) {
    for_each_list(src, dst, range, split, |s, t| partition(s, t, nl, side));
}

/// Runs `part` from every feature's entries `start..end` of `src` to those of `dst`, but copies the split
/// feature's, which are in order already. Inlined, so that a caller compiled for other CPU features (the
/// AVX-512 [`simd::partition_lists`]) has its kernel inlined into the loop.
#[inline(always)]
fn for_each_list(
    src: &[Vec<Entry>],
    dst: &mut [Vec<Entry>],
    (start, end): (usize, usize),
    split: usize,
    mut part: impl FnMut(&[Entry], &mut [Entry]),
) {
    for (f, (s, t)) in src.iter().zip(dst.iter_mut()).enumerate() {
        let (s, t) = (&s[start..end], &mut t[start..end]);
        if f == split {
            t.copy_from_slice(s);
        } else {
            part(s, t);
        }
    }
}

/// Writes `s` into `t` stably: entries going left (`nl` of them) to `t[..nl]`, the others after.
fn partition(s: &[Entry], t: &mut [Entry], nl: usize, side: Side) {
    // one loop per kind of side, so that the match is not inside it
    match side {
        Side::Bits(..) => partition_by(s, t, nl, |e| side.left(e)),
        Side::Marks(marks) => {
            debug_assert!(marks.len().is_power_of_two());
            partition_by(s, t, nl, |e| side.left(e))
        }
    }
}

/// [`partition`]'s loop. Branch-free, as the side is a coin flip to the branch predictor; the clamped
/// store needs no bounds check.
#[inline(always)]
fn partition_by(s: &[Entry], t: &mut [Entry], nl: usize, left: impl Fn(Entry) -> bool) {
    let Some(last) = t.len().checked_sub(1) else { return };
    let (mut l, mut r) = (0usize, nl);
    for &e in s {
        let go_left = left(e);
        t[(if go_left { l } else { r }).min(last)] = e;
        l += go_left as usize;
        r += !go_left as usize;
    }
    assert!(l == nl && r == s.len(), "the split's sides have the counts it was given");
}

/// Partitions a histogram node's in-bag ids stably by bin, in place (through `buf`): ids whose row's
/// code (`codes[row * d]`, the split feature's) shifted right by `sh` is at most `lb` first, `nl` of them.
/// On its own so that the slices stay in registers.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn partition_ids(
    ids: &mut [u32],
    buf: &mut [u32],
    nl: usize,
    rows: &[u32],
    codes: &[u8],
    d: usize,
    sh: u32,
    lb: usize,
) {
    let (mut l, mut r) = (0, nl);
    for &id in ids.iter() {
        let go_left = (codes[rows[id as usize] as usize * d] >> sh) as usize <= lb;
        buf[if go_left { l } else { r }] = id;
        l += go_left as usize;
        r += !go_left as usize;
    }
    assert!(l == nl && r == ids.len(), "the split's sides have the counts it was given");
    ids.copy_from_slice(buf);
}

/// Asks for the cache line holding `v` to be loaded, without waiting for it.
#[inline(always)]
fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint, and `v` is a valid reference
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(v as *const T as *const i8)
    };
}

/// One feature's sorted lists of every exactly split subtree, cut out of its presorted rows in one stable
/// pass: row r goes to position `at[subtree]` of `v`, where `slot[r]` = subtree << `shift` | in-bag id.
/// Rows of no subtree go to the sink (the last subtree), whose one slot is overwritten again and again,
/// which keeps the pass free of branches. `at` is scratch of `cursor.len() + 1` positions.
#[inline(never)]
fn cut_lists<T: Copy + Into<u64>>(
    sorted: &[Sorted],
    slot: &[T],
    shift: u32,
    cursor: &[usize],
    at: &mut [usize],
    v: &mut [Entry],
) {
    let sink = cursor.len() - 1;
    let mask = (1u64 << shift) - 1;
    // `at` has one more slot than `cursor`, which the sink's advances go to and nothing reads: the sink's
    // position is read unchanged every time, so its many rows do not wait on each other's stores
    at[..=sink].copy_from_slice(cursor);
    for &e in sorted {
        let sl: u64 = slot[e.row()].into();
        let p = (sl >> shift) as usize;
        let a = at[p];
        v[a] = Entry((sl & mask) as u32 | (e.0 & SHARED));
        at[if p == sink { sink + 1 } else { p }] = a + 1;
    }
}

/// A node waiting in the histogram phase: its rows `ids[start..end]`, its histogram at `level`
/// ([`bin_level`]) and its sums.
struct HistNode {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    hist: Vec<Bin>,
    level: u32,
    sums: Sums,
}

/// The split of a node of two rows, given as their entries in some feature's list (`pair`), whose entries
/// are among `lists[f][start..end]` (its own lists, or its parent's): the first feature in the drawn order
/// `feats` on which the two differ separates them, as every such feature does equally well. Returns that
/// feature and the two ids in its sorted order, or None where the rows are equal in every feature.
fn split_pair(
    lists: &[Vec<Entry>],
    (start, end): (usize, usize),
    pair: &[Entry],
    feats: &[usize],
    ties: Ties,
) -> Option<(usize, u32, u32)> {
    let (p, q) = (pair[0].id(), pair[1].id());
    feats.iter().find_map(|&f| {
        let mut two = lists[f][start..end].iter().filter(|e| e.id() == p || e.id() == q);
        let (a, b) = (*two.next()?, *two.next()?);
        ties.apart(f, a, b).then_some((f, a.id() as u32, b.id() as u32))
    })
}

/// A one-row child's (Σw, Σw·y, variance, rows) for [`Tree::split`].
fn single(id: u32, stat: &[Stat], yyw: &[f64]) -> (f64, f64, f64, usize) {
    let (w, wy, imp) = node_stats(std::iter::once(id), stat, yyw);
    (w, wy, imp, 1)
}

/// Whether a node stops growing (scikit-learn's stopping rules).
fn is_final(n: usize, depth: usize, impurity: f64, params: &TreeParams) -> bool {
    n < params.min_samples_split
        || n < 2 * params.min_samples_leaf.max(1)
        || params.max_depth.is_some_and(|md| depth >= md)
        || impurity <= f64::EPSILON
}

/// Grows one tree on rows weighted by `w` (bootstrap counts; 0 = not in the sample).
///
/// Nodes with at least [`HIST_MIN_ROWS`] in-bag rows are split on histograms of the one-byte bins (the
/// smaller child's histogram is built from its rows and the larger one's is the parent's minus it, as
/// in LightGBM; both at the larger child's level of merged bins, [`bin_level`]); the best boundary between
/// two non-empty bins is taken, with the threshold midway between the two bins' nearest values. Smaller
/// nodes are split exactly, like scikit-learn: every boundary between distinct values is tried, over
/// per-feature lists sorted once per forest and partitioned at each split.
/// `pre` comes from [`presort`] of the same `x`; `rng` draws the feature order of each node (which also
/// breaks ties between equally good splits, as in scikit-learn).
pub fn grow(
    w: &[u32],
    x: &[Vec<f64>],
    y: &[f64],
    pre: &Presorted,
    params: &TreeParams,
    rng: &mut Rng,
    scratch: &mut Scratch,
) -> Tree {
    let d = pre.sorted.len();
    let Scratch { ord, alt, rows, stat, yyw, inv, ids, ids_buf, slot, slot32, hists, goes_left, portable, renumbered } =
        scratch;
    let avx512 = !*portable && simd::available();
    rows.clear();
    stat.clear();
    yyw.clear();
    for (i, &wi) in w.iter().enumerate() {
        if wi > 0 {
            rows.push(i as u32);
            let wf = wi as f64;
            let yw = wf * y[i];
            stat.push(Stat { yw, w: wi as u64 });
            yyw.push(yw * yw / wf);
        }
    }
    let m = rows.len();
    let total_w: u64 = w.iter().map(|&v| v as u64).sum();
    if inv.len() <= total_w as usize {
        inv.clear();
        inv.extend((0..=total_w).map(|k| 1.0 / k as f64));
    }
    // a tree on m distinct rows has at most 2m − 1 nodes: reserved once (untouched pages cost nothing), so
    // the arrays are never copied while the tree grows; trimmed at the end
    let cap = 2 * m;
    let mut tree = Tree {
        nodes: Vec::with_capacity(cap),
        value: Vec::with_capacity(cap),
        cover: Vec::with_capacity(cap),
        n_samples: Vec::with_capacity(cap),
        impurity: Vec::with_capacity(cap),
    };
    let mut feats: Vec<usize> = (0..d).collect();
    let k = params.max_features.resolve(d);
    let min_leaf = params.min_samples_leaf.max(1);
    let root_sums = node_sums(0..m as u32, stat, yyw);
    let (sw, swy, imp) = root_sums.stats();
    let root = tree.push(swy / sw, sw, m as u32, imp);

    // ---- histogram phase: large nodes; its unfinished small nodes become the exact phase's subtrees
    // (node, start, end, depth) over `ids` (histogram phase) and over the sorted lists (exact phase)
    let mut exact: Vec<(usize, usize, usize, usize)> = Vec::new();
    ids.clear();
    ids.extend(0..m as u32);
    ids_buf.resize(m, 0);
    let new_hist = |hists: &mut Vec<Vec<Bin>>| hists.pop().unwrap_or_else(|| vec![Bin::default(); d * BINS]);
    let mut hstack: Vec<HistNode> = Vec::new();
    if m >= HIST_MIN_ROWS && d > 0 {
        let mut h = new_hist(hists);
        let level = bin_level(m);
        fill_hist(&mut h, ids, rows, &pre.codes, pre.at_level(level), (stat, yyw));
        hstack.push(HistNode { node: root, start: 0, end: m, depth: 0, hist: h, level, sums: root_sums });
    } else {
        exact.push((root, 0, m, 0));
    }
    while let Some(HistNode { node, start, end, depth, mut hist, mut level, sums }) = hstack.pop() {
        let n = end - start;
        let sw = tree.cover[node];
        let swy = tree.value[node] * sw;
        if is_final(n, depth, tree.impurity[node], params) {
            hists.push(hist);
            continue;
        }
        if bin_level(n) > level {
            coarsen(&mut hist, pre, level, bin_level(n));
            level = bin_level(n);
        }
        rng.shuffle_short(&mut feats);
        // (feature, last bin going left, first bin going right, proxy, rows going left)
        let mut best: Option<(usize, usize, usize, f64, usize)> = None;
        let mut visited = 0;
        for &f in feats.iter() {
            if visited >= k {
                break;
            }
            let bins = &hist[f * BINS..f * BINS + pre.bins(f, level)];
            let floor = best.map(|b| b.3).unwrap_or(f64::NEG_INFINITY);
            let (non_constant, found) = scan_bins(bins, inv, n, sw as u64, swy, min_leaf, floor);
            if !non_constant {
                continue; // one bin only: constant as far as the histogram can tell
            }
            visited += 1;
            if let Some((proxy, lb, rb, nl)) = found {
                best = Some((f, lb, rb, proxy, nl));
            }
        }
        let Some((f, lb, rb, _, nl)) = best else {
            // no boundary between bins helps: split it exactly
            exact.push((node, start, end, depth));
            hists.push(hist);
            continue;
        };
        // the bins' nearest values: the last fine bin of lb and the first of rb
        let sh = pre.shift(f, level);
        let thr = midpoint(pre.upper[f][(((lb + 1) << sh) - 1).min(pre.lower[f].len() - 1)], pre.lower[f][rb << sh]);
        partition_ids(&mut ids[start..end], &mut ids_buf[start..end], nl, rows, &pre.codes[f..], d, sh, lb);
        let mid = start + nl;
        let (ls, rs) = ((start, mid, depth + 1), (mid, end, depth + 1));
        let small_is_left = nl <= end - mid;
        let (small, big) = if small_is_left { (ls, rs) } else { (rs, ls) };
        // the children's sums, and the smaller one's histogram if the larger one stays in this phase
        let (lsums, rsums, small_hist) = if big.1 - big.0 < HIST_MIN_ROWS {
            hists.push(hist);
            (
                node_sums(ids[start..mid].iter().copied(), stat, yyw),
                node_sums(ids[mid..end].iter().copied(), stat, yyw),
                None,
            )
        } else {
            // the smaller child's histogram (and sums) from its rows, the larger one's by subtraction,
            // both at the larger one's level
            if bin_level(big.1 - big.0) > level {
                coarsen(&mut hist, pre, level, bin_level(big.1 - big.0));
                level = bin_level(big.1 - big.0);
            }
            let mut hs = new_hist(hists);
            let small_sums =
                fill_hist(&mut hs, &ids[small.0..small.1], rows, &pre.codes, pre.at_level(level), (stat, yyw));
            for ((hp, hc), &count) in hist.chunks_exact_mut(BINS).zip(hs.chunks_exact(BINS)).zip(pre.at_level(level).1)
            {
                for (p, &c) in hp[..count].iter_mut().zip(&hc[..count]) {
                    p.sub(c);
                }
            }
            let big_sums = sums.without(small_sums);
            let (l, r) = if small_is_left { (small_sums, big_sums) } else { (big_sums, small_sums) };
            (l, r, Some((hs, hist)))
        };
        let ((lw, lwy, limp), (rw, rwy, rimp)) = (lsums.stats(), rsums.stats());
        let (lnode, rnode) = tree.split(node, f, (lw, lwy, limp, nl), (rw, rwy, rimp, end - mid));
        tree.nodes[node].threshold = thr;
        let (lnode_sums, rnode_sums) = ((lnode, lsums), (rnode, rsums));
        let ((small_node, small_sums), (big_node, big_sums)) =
            if small_is_left { (lnode_sums, rnode_sums) } else { (rnode_sums, lnode_sums) };
        let Some((hs, hist)) = small_hist else {
            exact.push((rnode, mid, end, depth + 1));
            exact.push((lnode, start, mid, depth + 1));
            continue;
        };
        let big = HistNode { node: big_node, start: big.0, end: big.1, depth: big.2, hist, level, sums: big_sums };
        if small.1 - small.0 >= HIST_MIN_ROWS {
            hstack.push(big);
            hstack.push(HistNode {
                node: small_node,
                start: small.0,
                end: small.1,
                depth: small.2,
                hist: hs,
                level,
                sums: small_sums,
            });
        } else {
            hists.push(hs);
            exact.push((small_node, small.0, small.1, small.2));
            hstack.push(big);
        }
    }

    // ---- exact phase: sorted lists of each remaining subtree, in one stable pass per feature
    // each training row's (subtree, in-bag id), packed in 32 bits when both fit (half the random reads of
    // this memory-bound pass), else in 64
    let sink = exact.len();
    let shift = usize::BITS - m.leading_zeros();
    let narrow = (shift + (usize::BITS - sink.leading_zeros())) <= 32;
    let mut cursor: Vec<usize> = Vec::with_capacity(exact.len() + 1);
    slot.clear();
    slot32.clear();
    if narrow {
        slot32.resize(w.len(), (sink as u32) << shift);
    } else {
        slot.resize(w.len(), (sink as u64) << shift);
    }
    for (s, &(_, start, end, _)) in exact.iter().enumerate() {
        for (pos, &id) in (start..end).zip(&ids[start..end]) {
            let (row, packed) = (rows[id as usize] as usize, (s as u64) << shift | pos as u64);
            if narrow {
                slot32[row] = packed as u32;
            } else {
                slot[row] = packed;
            }
        }
        cursor.push(start);
    }
    cursor.push(m);
    // from here on an in-bag row's id is its position in `ids`: each subtree's rows are then consecutive
    // ids, so its stats and marks are a few cache lines rather than a line per row scattered over arrays
    // larger than the L1 cache
    let (stat, yyw, rows) = {
        let (st, yy, rw) = renumbered;
        st.clear();
        yy.clear();
        rw.clear();
        for &id in ids.iter() {
            st.push(stat[id as usize]);
            yy.push(yyw[id as usize]);
            rw.push(rows[id as usize]);
        }
        (&*st, &*yy, &*rw)
    };
    let ties = Ties { group: &pre.group, rows };
    ord.resize_with(d, Vec::new);
    alt.resize_with(d, Vec::new);
    let mut at = vec![0; cursor.len() + 1];
    for ((v, a), s) in ord.iter_mut().zip(alt.iter_mut()).zip(&pre.sorted) {
        // every position a node reads is written first (by this pass or by a partition), so stale
        // entries from the previous tree need no clearing
        v.resize(m + 1, Entry::default());
        a.resize(m + 1, Entry::default());
        if narrow {
            cut_lists(s, slot32, shift, &cursor, &mut at, v);
        } else {
            cut_lists(s, slot, shift, &cursor, &mut at, v);
        }
    }
    // every mark is reset after its split, so the array only needs growing (to a power of two), not clearing
    if goes_left.len() < m.next_power_of_two() {
        goes_left.clear();
        goes_left.resize(m.next_power_of_two(), 0);
    }
    // thresholds are filled in at the end, all at once, from [node, feature, training rows of the two values
    // around the split]: each value is a load far away in memory, and independent loads overlap where loads
    // inside the split loop would each stall it
    let mut pending: Vec<[u32; 4]> = Vec::new();
    // (node, start, end, depth, whether the node's lists are in `alt`, the subtree's first in-bag id if
    // it has at most 64 rows: see `Side::Bits`)
    let mut stack: Vec<(usize, usize, usize, usize, bool, Option<u32>)> = exact
        .iter()
        .rev()
        .map(|&(node, start, end, depth)| (node, start, end, depth, false, (end - start <= 64).then_some(start as u32)))
        .collect();
    // a node of two rows, whose entries are `pair` among `lists[..][range]`: both children are single
    // rows, and nothing needs partitioning
    let split_two = |tree: &mut Tree,
                     pending: &mut Vec<[u32; 4]>,
                     node: usize,
                     lists: &[Vec<Entry>],
                     range: (usize, usize),
                     pair: &[Entry],
                     feats: &[usize]| {
        if let Some((f, a, b)) = split_pair(lists, range, pair, feats, ties) {
            pending.push([node as u32, f as u32, rows[a as usize], rows[b as usize]]);
            tree.split(node, f, single(a, stat, yyw), single(b, stat, yyw));
        }
    };
    while let Some((node, start, end, depth, in_alt, base)) = stack.pop() {
        let n = end - start;
        let sw = tree.cover[node];
        let swy = tree.value[node] * sw;
        if is_final(n, depth, tree.impurity[node], params) {
            continue;
        }
        let (src, dst) = if in_alt { (&*alt, &mut *ord) } else { (&*ord, &mut *alt) };
        // draw features in random order; stop after k non-constant ones (scikit-learn's rule)
        rng.shuffle_short(&mut feats);
        if n == 2 {
            split_two(&mut tree, &mut pending, node, src, (start, end), &src[feats[0]][start..end], &feats);
            continue;
        }
        let search = Search { feats: &feats, ties, k, stat, inv, sw: sw as u64, swy, min_leaf };
        let best = best_exact(src, start, end, &search);
        let Some(b) = best else { continue };
        let nl = b.pos - start;
        let (lw, lwy, limp) = seg_stats(&src[b.feature][start..b.pos], stat, yyw);
        let (rw, rwy, rimp) = seg_stats(&src[b.feature][b.pos..end], stat, yyw);
        let (l, r) = tree.split(node, b.feature, (lw, lwy, limp, nl), (rw, rwy, rimp, end - b.pos));
        let seg = &src[b.feature];
        pending.push([node as u32, b.feature as u32, rows[seg[b.pos - 1].id()], rows[seg[b.pos].id()]]);
        let grow_left = !is_final(nl, depth + 1, limp, params);
        let grow_right = !is_final(end - b.pos, depth + 1, rimp, params);
        if !grow_left && !grow_right {
            continue; // two leaves: nothing to partition
        }
        if nl <= 2 && end - b.pos <= 2 {
            // children of two rows are split right here from this node's lists (in the order the stack
            // would pop them, left first), so these lists need no partitioning
            for (child, lo, hi, grows) in [(l, start, b.pos, grow_left), (r, b.pos, end, grow_right)] {
                if !grows {
                    continue;
                }
                rng.shuffle_short(&mut feats);
                split_two(&mut tree, &mut pending, child, src, (start, end), &src[b.feature][lo..hi], &feats);
            }
            continue;
        }
        // partition every feature's entries stably around the split, into the other buffer
        let lefts = &src[b.feature][start..b.pos];
        let side = match base {
            Some(base) => Side::Bits(lefts.iter().fold(0, |bits, e| bits | 1 << (e.id() - base as usize)), base),
            None => {
                for e in lefts {
                    goes_left[e.id()] = 1;
                }
                Side::Marks(goes_left)
            }
        };
        if avx512 {
            // SAFETY: the CPU has AVX-512
            unsafe { simd::partition_lists(src, dst, (start, end), b.feature, nl, side) }
        } else {
            partition_lists(src, dst, (start, end), b.feature, nl, side);
        }
        if base.is_none() {
            for e in lefts {
                goes_left[e.id()] = 0;
            }
        }
        if grow_right {
            stack.push((r, b.pos, end, depth + 1, !in_alt, base));
        }
        if grow_left {
            stack.push((l, start, b.pos, depth + 1, !in_alt, base));
        }
    }
    // the values are fetched a few nodes ahead, so that more of these cache misses overlap
    const AHEAD: usize = 16;
    for (i, &[node, f, lo, hi]) in pending.iter().enumerate() {
        if let Some(&[_, f, lo, hi]) = pending.get(i + AHEAD) {
            prefetch(&x[f as usize][lo as usize]);
            prefetch(&x[f as usize][hi as usize]);
        }
        tree.nodes[node as usize].threshold = midpoint(x[f as usize][lo as usize], x[f as usize][hi as usize]);
    }
    tree.shrink_to_fit();
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_avx512_kernels_grow_the_same_trees_as_the_portable_ones() {
        if !simd::available() {
            eprintln!("no AVX-512 on this CPU: only the portable kernels run here");
            return;
        }
        let mut rng = Rng::new(5, 0);
        for (n, d, levels) in [(3000usize, 6usize, 0usize), (2000, 4, 7), (500, 3, 5)] {
            // continuous features, or a few values each (many ties)
            let x: Vec<Vec<f64>> = (0..d)
                .map(|_| {
                    (0..n)
                        .map(|_| if levels == 0 { rng.below(1 << 30) as f64 } else { rng.below(levels) as f64 })
                        .collect()
                })
                .collect();
            let y: Vec<f64> = (0..n).map(|i| x[0][i] * 0.5 + rng.below(100) as f64).collect();
            let w: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
            let pre = presort(&x);
            let params = TreeParams::default();
            let fast = grow(&w, &x, &y, &pre, &params, &mut Rng::new(9, 1), &mut Scratch::default());
            let mut portable = Scratch { portable: true, ..Default::default() };
            let slow = grow(&w, &x, &y, &pre, &params, &mut Rng::new(9, 1), &mut portable);
            assert_eq!(fast, slow, "n {n}, d {d}, levels {levels}");
            assert!(fast.len() > 100, "the tree grew: {} nodes", fast.len());
        }
    }

    #[test]
    fn no_split_falls_inside_a_tie_group() {
        // values in clusters of distinct floats closer than FEATURE_THRESHOLD: each cluster is one tie
        // group, and a split may not separate a node's rows of one group (scikit-learn's rule)
        let mut rng = Rng::new(3, 0);
        for n in [40usize, 300, 3000] {
            let d = 3;
            let cluster: Vec<Vec<usize>> = (0..d).map(|_| (0..n).map(|_| rng.below(n / 4 + 2)).collect()).collect();
            let x: Vec<Vec<f64>> = cluster
                .iter()
                .map(|c| c.iter().map(|&k| k as f64 * 0.01 + rng.below(50) as f64 * 1e-9).collect())
                .collect();
            let y: Vec<f64> = (0..n).map(|_| rng.unit()).collect();
            let w: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
            let t =
                grow(&w, &x, &y, &presort(&x), &TreeParams::default(), &mut Rng::new(4, 0), &mut Scratch::default());
            // the in-bag rows of every node
            let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); t.len()];
            for i in (0..n).filter(|&i| w[i] > 0) {
                let mut node = 0;
                loop {
                    rows_of[node].push(i);
                    if t.is_leaf(node) {
                        break;
                    }
                    let nd = t.nodes[node];
                    node = nd.child(x[nd.feature as usize][i]);
                }
            }
            let mut splits = 0;
            for node in (0..t.len()).filter(|&i| !t.is_leaf(i)) {
                let (f, thr) = (t.nodes[node].feature as usize, t.nodes[node].threshold);
                splits += 1;
                for &i in &rows_of[node] {
                    for &j in &rows_of[node] {
                        if cluster[f][i] == cluster[f][j] {
                            assert_eq!(x[f][i] <= thr, x[f][j] <= thr, "n {n}: node {node} splits a tie group");
                        }
                    }
                }
            }
            assert!(splits > n / 20, "n {n}: the tree split ({splits} splits)");
        }
    }

    #[test]
    fn a_full_tree_fits_its_training_data() {
        let x = vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0]];
        let y = vec![1.0, 2.0, 3.0, 10.0, 11.0, 12.0];
        let w = vec![1; 6];
        let t = grow(&w, &x, &y, &presort(&x), &TreeParams::default(), &mut Rng::new(0, 0), &mut Scratch::default());
        for i in 0..6 {
            assert_eq!(t.predict(&[x[0][i], x[1][i]]), y[i]);
        }
        assert_eq!(t.nodes[0].threshold, 3.5, "first split separates the two groups at the midpoint");
        assert_eq!(t.cover[0], 6.0);
    }

    /// Pseudo-random data big enough for the histogram phase: `d` continuous features plus one with 37
    /// distinct values (binned one value per bin), and a target no axis-aligned split fits in one step.
    fn large(n: usize, d: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
        let mut rng = Rng::new(7, 0);
        let mut x: Vec<Vec<f64>> = (0..d).map(|_| (0..n).map(|_| rng.unit()).collect()).collect();
        x.push((0..n).map(|i| ((i * 7919) % 37) as f64).collect());
        let y = (0..n).map(|i| (6.0 * x[0][i]).sin() + x[1][i] * x[d][i] + 0.1 * rng.normal()).collect();
        (x, y)
    }

    #[test]
    fn histogram_and_exact_phases_together_fit_their_training_data() {
        let n = 20 * HIST_MIN_ROWS;
        let (x, y) = large(n, 3);
        let w: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect(); // a third out of bag, weights 1 and 2
        let t = grow(&w, &x, &y, &presort(&x), &TreeParams::default(), &mut Rng::new(1, 0), &mut Scratch::default());
        let row = |i: usize| x.iter().map(|c| c[i]).collect::<Vec<f64>>();
        for i in (0..n).filter(|&i| w[i] > 0) {
            assert_eq!(t.predict(&row(i)), y[i], "in-bag row {i} falls into its own pure leaf");
        }
        for node in (0..t.len()).filter(|&k| !t.is_leaf(k)) {
            let (l, r) = t.nodes[node].children();
            assert!(l > node, "children follow their parent");
            assert_eq!(t.cover[node], t.cover[l] + t.cover[r]);
            assert_eq!(t.n_samples[node], t.n_samples[l] + t.n_samples[r]);
        }
        assert_eq!(t.n_samples[0] as usize, w.iter().filter(|&&v| v > 0).count());
        assert_eq!(t.cover[0], w.iter().map(|&v| v as f64).sum::<f64>());
    }

    #[test]
    fn min_samples_leaf_and_depth_hold_in_the_histogram_phase() {
        let n = 10 * HIST_MIN_ROWS;
        let (x, y) = large(n, 2);
        let w = vec![1; n];
        let p = TreeParams { max_depth: Some(6), min_samples_leaf: HIST_MIN_ROWS / 2, ..Default::default() };
        let t = grow(&w, &x, &y, &presort(&x), &p, &mut Rng::new(1, 0), &mut Scratch::default());
        assert!(t.depth() <= 6);
        assert!(t.len() > 7, "the tree grew");
        for k in (0..t.len()).filter(|&k| t.is_leaf(k)) {
            assert!(t.n_samples[k] as usize >= HIST_MIN_ROWS / 2);
        }
    }

    #[test]
    fn the_same_seed_grows_the_same_tree_and_another_seed_another() {
        let (x, y) = large(4 * HIST_MIN_ROWS, 3);
        let w = vec![1; y.len()];
        let pre = presort(&x);
        let g = |seed| grow(&w, &x, &y, &pre, &TreeParams::default(), &mut Rng::new(seed, 0), &mut Scratch::default());
        let mut scratch = Scratch::default();
        // a reused scratch (as each worker thread reuses its own) gives the same tree as a fresh one
        let _ = grow(&w, &x, &y, &pre, &TreeParams::default(), &mut Rng::new(5, 0), &mut scratch);
        let again = grow(&w, &x, &y, &pre, &TreeParams::default(), &mut Rng::new(1, 0), &mut scratch);
        assert_eq!(g(1), again);
        assert_ne!(g(1), g(2));
    }

    #[test]
    fn walking_eight_rows_together_predicts_what_one_row_at_a_time_does() {
        let (x, y) = large(2 * HIST_MIN_ROWS + 13, 3);
        let w: Vec<u32> = (0..y.len()).map(|i| (i % 2) as u32).collect();
        let t = grow(&w, &x, &y, &presort(&x), &TreeParams::default(), &mut Rng::new(3, 0), &mut Scratch::default());
        let k = x.len();
        let buf: Vec<f64> = (0..y.len()).flat_map(|i| x.iter().map(move |c| c[i])).collect();
        let mut acc = vec![1.0; y.len()]; // the sum continues from what is already there
        t.add_predictions(&buf, k, &mut acc);
        for (i, a) in acc.iter().enumerate() {
            let row = &buf[i * k..(i + 1) * k];
            assert_eq!(*a, 1.0 + t.predict(row), "row {i}");
            assert_eq!(t.predict(row), t.value[t.leaf_of(row)], "a leaf holds its value twice");
        }
    }

    #[test]
    fn a_merged_histogram_is_the_histogram_of_merged_bins() {
        // feature 0 has about 256 bins, feature 1 two values, feature 2 forty
        let n = 3000;
        let x = vec![
            (0..n).map(|i| ((i * 7919) % n) as f64).collect::<Vec<_>>(),
            (0..n).map(|i| (i % 2) as f64).collect(),
            (0..n).map(|i| (i % 40) as f64).collect(),
        ];
        let pre = presort(&x);
        let d = x.len();
        let stat: Vec<Stat> = (0..n).map(|i| Stat { yw: (i as f64).sin(), w: 1 + (i % 3) as u64 }).collect();
        let (rows, ids): (Vec<u32>, Vec<u32>) = ((0..n as u32).collect(), (0..n as u32).step_by(3).collect());
        let at = |l: u32| -> (Vec<u32>, Vec<usize>) {
            ((0..d).map(|f| pre.shift(f, l)).collect(), (0..d).map(|f| pre.bins(f, l)).collect())
        };
        assert_eq!(at(3).1, vec![32, 2, 20], "a feature with few values keeps them apart");
        assert_eq!(at(0).1, vec![pre.lower[0].len(), 2, 40]);
        let (mut fine, mut coarse) = (vec![Bin::default(); d * BINS], vec![Bin::default(); d * BINS]);
        let (s0, c0) = at(0);
        let yyw = vec![0.0; n];
        fill_hist(&mut fine, &ids, &rows, &pre.codes, (&s0, &c0), (&stat, &yyw));
        coarsen(&mut fine, &pre, 0, 3);
        let (s3, c3) = at(3);
        fill_hist(&mut coarse, &ids, &rows, &pre.codes, (&s3, &c3), (&stat, &yyw));
        for f in 0..d {
            for b in 0..c3[f] {
                let (p, q) = (fine[f * BINS + b], coarse[f * BINS + b]);
                assert_eq!(p.nw, q.nw, "feature {f} bin {b}");
                assert!((p.yw - q.yw).abs() <= 1e-9, "feature {f} bin {b}");
            }
        }
        assert_eq!(bin_level(100_000), 0);
        assert_eq!(bin_level(2048), 1);
        assert_eq!(bin_level(100), MAX_LEVEL);
    }

    #[test]
    fn three_row_nodes_get_the_split_the_scan_finds() {
        let mut rng = Rng::new(7, 0);
        for trial in 0..2000 {
            let d = 1 + rng.below(6);
            let stat: Vec<Stat> =
                (0..3).map(|_| Stat { yw: rng.below(5) as f64 - 2.0, w: 1 + rng.below(3) as u64 }).collect();
            let (sw, swy) = (stat.iter().map(|s| s.w).sum::<u64>(), stat.iter().map(|s| s.yw).sum::<f64>());
            let inv: Vec<f64> = (0..=sw).map(|k| 1.0 / k as f64).collect();
            // each feature: the three ids (rows) in a random order, with random ties between neighbours
            let (mut lists, mut group) = (Vec::new(), Vec::new());
            for _ in 0..d {
                let mut ids = [0u32, 1, 2];
                rng.shuffle(&mut ids);
                let mut g = [0u32; 3];
                for k in 1..3 {
                    g[k] = g[k - 1] + rng.below(2) as u32;
                }
                let shared = |k: usize| (k > 0 && g[k - 1] == g[k]) || (k < 2 && g[k + 1] == g[k]);
                lists.push((0..3).map(|k| Entry(ids[k] | if shared(k) { SHARED } else { 0 })).collect::<Vec<_>>());
                let mut by_row = vec![0u32; 3];
                for k in 0..3 {
                    by_row[ids[k] as usize] = g[k];
                }
                group.push(by_row);
            }
            let ties = Ties { group: &group, rows: &[0, 1, 2] };
            let feats: Vec<usize> = (0..d).collect();
            for k in 1..=d {
                let search = Search { feats: &feats, ties, k, stat: &stat, inv: &inv, sw, swy, min_leaf: 1 };
                let (fast, scan) = (best_exact_3(&lists, 0, &search), best_exact_scan(&lists, 0, 3, &search));
                let key = |b: Option<Best>| b.map(|b| (b.feature, b.pos, b.proxy.to_bits()));
                assert_eq!(key(fast), key(scan), "trial {trial}, k {k}");
            }
        }
    }

    #[test]
    fn a_partition_is_stable_with_the_left_side_first() {
        let mut rng = Rng::new(11, 0);
        for n in [0usize, 1, 7, 8, 9, 16, 17, 40, 64, 203] {
            // ids base..base + m, some marked as sharing a tie group
            let (m, base) = (n + 5 * (n < 60) as usize, 37 + rng.below(100));
            let s: Vec<Entry> =
                (0..n).map(|i| Entry((base + (i * 7 + 3) % m) as u32 | if i % 3 == 0 { SHARED } else { 0 })).collect();
            let mut goes_left = vec![0u8; (base + m).next_power_of_two()];
            for e in &s {
                goes_left[e.id()] = rng.below(2) as u8;
            }
            let nl = s.iter().filter(|e| goes_left[e.id()] != 0).count();
            let expected: Vec<Entry> = s
                .iter()
                .filter(|e| goes_left[e.id()] != 0)
                .chain(s.iter().filter(|e| goes_left[e.id()] == 0))
                .copied()
                .collect();
            let mut sides = vec![Side::Marks(&goes_left)];
            if m <= 64 {
                let bits = s.iter().filter(|e| goes_left[e.id()] != 0).fold(0u64, |b, e| b | 1 << (e.id() - base));
                sides.push(Side::Bits(bits, base as u32));
            }
            for side in sides {
                let kind = if let Side::Bits(..) = side { "bits" } else { "marks" };
                let mut t = vec![Entry::default(); n];
                partition(&s, &mut t, nl, side);
                assert_eq!(t, expected, "n = {n}, {kind}");
                if simd::available() {
                    let mut t = vec![Entry::default(); n];
                    // SAFETY: the CPU has AVX-512
                    unsafe { simd::partition(&s, &mut t, nl, side) };
                    assert_eq!(t, expected, "n = {n}, {kind}, AVX-512");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "the split's sides have the counts it was given")]
    fn a_partition_refuses_a_wrong_left_count() {
        let s: Vec<Entry> = (0..16).map(Entry).collect();
        let goes_left = vec![1u8; 16];
        let mut t = vec![Entry::default(); 16];
        partition(&s, &mut t, 4, Side::Marks(&goes_left)); // 16 marked, 4 claimed
    }

    #[test]
    fn subtree_lists_are_cut_the_same_from_narrow_and_wide_slots() {
        // rows 0..10 sorted by some feature; rows 2 and 7 are in no subtree (the sink, subtree 2)
        let order = [3u32, 0, 7, 9, 1, 2, 8, 5, 6, 4];
        // rows 0 and 9 share a tie group
        let sorted: Vec<Sorted> =
            order.iter().map(|&row| Sorted(row | if row % 9 == 0 { SHARED } else { 0 })).collect();
        let subtree = [0u32, 1, 2, 0, 1, 0, 1, 2, 0, 1];
        let shift = 4;
        // in-bag ids are numbered per subtree in row order (any distinct ids would do)
        let mut ids = [0u32; 10];
        let mut next = [0u32, 4];
        for r in 0..10 {
            if subtree[r] < 2 {
                ids[r] = next[subtree[r] as usize];
                next[subtree[r] as usize] += 1;
            }
        }
        let narrow: Vec<u32> = (0..10).map(|r| subtree[r] << shift | ids[r]).collect();
        let wide: Vec<u64> = narrow.iter().map(|&v| v as u64).collect();
        let cursor = [0usize, 4, 8]; // subtree 0 holds 4 rows, subtree 1 holds 4, the sink slot is 8
        let (mut a, mut b) = ([0usize; 4], [0usize; 4]);
        let (mut va, mut vb) = (vec![Entry::default(); 9], vec![Entry::default(); 9]);
        cut_lists(&sorted, &narrow, shift, &cursor, &mut a, &mut va);
        cut_lists(&sorted, &wide, shift, &cursor, &mut b, &mut vb);
        assert_eq!(va[..8], vb[..8]);
        assert_eq!(a[..3], [4, 8, 8]);
        // each subtree's rows in sorted order, as in-bag ids: subtree 0 has rows 3, 0, 8, 5 (ids 1, 0, 3, 2),
        // subtree 1 rows 9, 1, 6, 4 (ids 7, 4, 6, 5); the rows sharing a tie group keep the mark
        assert_eq!(va[..4], [Entry(1), Entry(SHARED), Entry(3), Entry(2)]);
        assert_eq!(va[4..8], [Entry(7 | SHARED), Entry(4), Entry(6), Entry(5)]);
    }

    #[test]
    fn limits_are_respected() {
        let x = vec![(0..100).map(|i| i as f64).collect::<Vec<_>>()];
        let y: Vec<f64> = (0..100).map(|i| ((i * 37) % 17) as f64).collect();
        let w = vec![1; 100];
        let p = TreeParams { max_depth: Some(3), min_samples_leaf: 5, ..Default::default() };
        let t = grow(&w, &x, &y, &presort(&x), &p, &mut Rng::new(0, 0), &mut Scratch::default());
        assert!(t.depth() <= 3);
        for n in 0..t.len() {
            if t.is_leaf(n) {
                assert!(t.n_samples[n] >= 5);
            } else {
                let (l, r) = t.nodes[n].children();
                assert_eq!(t.cover[n], t.cover[l] + t.cover[r]);
            }
        }
    }
}
