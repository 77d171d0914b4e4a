//! Random forests of CART regression trees (Breiman, "Random Forests", Machine Learning 45, 2001) with
//! scikit-learn's `RandomForestRegressor` parameters and defaults, and quantile regression forests
//! (Meinshausen, "Quantile Regression Forests", JMLR 7, 2006).

use crate::data::{r2, Dataset, Rng};
use crate::tree::{grow, presort, MaxFeatures, Scratch, Tree, TreeParams};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Forest parameters (scikit-learn names; defaults as `RandomForestRegressor()`: 100 trees, all features
/// per split, bootstrap, fully grown trees).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    /// Number of trees (`n_estimators`).
    pub n_trees: usize,
    /// Tree growth limits.
    pub tree: TreeParams,
    /// Draw a bootstrap sample per tree (else every tree sees every row once).
    pub bootstrap: bool,
    /// Seed (`random_state`).
    pub seed: u64,
    /// Record, per leaf, the training rows that fall into it (needed for quantile intervals).
    pub keep_leaf_members: bool,
    /// Compute out-of-bag predictions (scikit-learn's `oob_score=True`).
    pub oob: bool,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 100,
            tree: TreeParams::default(),
            bootstrap: true,
            seed: 42,
            keep_leaf_members: true,
            oob: true,
        }
    }
}

/// Training rows falling into each leaf of one tree, in CSR form: rows of node `n` are
/// `rows[offsets[n]..offsets[n+1]]` (empty for inner nodes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeafMembers {
    /// Per node offsets, `len = nodes + 1`.
    pub offsets: Vec<u32>,
    /// Training row indices.
    pub rows: Vec<u32>,
}

/// A fitted forest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// The parameters it was grown with.
    pub params: ForestParams,
    /// Number of features.
    pub n_features: usize,
    /// The trees.
    pub trees: Vec<Tree>,
    /// Per tree, the training rows in each leaf (empty when not kept).
    pub leaf_members: Vec<LeafMembers>,
    /// Training targets, for quantile intervals (empty when leaf members are not kept).
    pub train_y: Vec<f64>,
    /// Out-of-bag prediction per training row (`None` where a row was in every bootstrap sample).
    pub oob_prediction: Vec<Option<f64>>,
}

/// Why a forest cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Too few rows.
    #[error("need at least 2 training rows, got {0}")]
    TooFewRows(usize),
    /// No target.
    #[error("the data has no target values")]
    NoTarget,
    /// A non-finite value.
    #[error("feature `{feature}` row {row} is not a finite number")]
    NotFinite {
        /// feature name
        feature: String,
        /// row index (0-based)
        row: usize,
    },
    /// Bad parameter.
    #[error("{0}")]
    Param(String),
}

impl Forest {
    /// Grows the forest on `threads` threads (`None`: all cores). Tree `t` draws its bootstrap sample and
    /// feature orders from ChaCha stream `t` of the seed, so the result is the same for any thread count.
    pub fn fit(d: &Dataset, params: &ForestParams, threads: Option<usize>) -> Result<Forest, FitError> {
        let n = d.rows();
        if d.y.len() != n || d.y.is_empty() {
            return Err(FitError::NoTarget);
        }
        if n < 2 {
            return Err(FitError::TooFewRows(n));
        }
        if params.n_trees == 0 {
            return Err(FitError::Param("the forest needs at least one tree".into()));
        }
        if params.tree.min_samples_split < 2 || params.tree.min_samples_leaf < 1 {
            return Err(FitError::Param("min_samples_split must be >= 2 and min_samples_leaf >= 1".into()));
        }
        for (f, col) in d.x.iter().enumerate() {
            if let Some(row) = col.iter().position(|v| !v.is_finite()) {
                return Err(FitError::NotFinite { feature: d.features[f].clone(), row });
            }
        }
        if let Some(row) = d.y.iter().position(|v| !v.is_finite()) {
            return Err(FitError::NotFinite { feature: d.target.clone(), row });
        }
        let run = || {
            let sorted = presort(&d.x);
            (0..params.n_trees)
                .into_par_iter()
                .map_init(Scratch::default, |scratch, t| {
                    let mut rng = Rng::new(params.seed, t as u64);
                    let mut w = vec![0u32; n];
                    if params.bootstrap {
                        for _ in 0..n {
                            w[rng.below(n)] += 1;
                        }
                    } else {
                        w.iter_mut().for_each(|v| *v = 1);
                    }
                    let tree = grow(&w, &d.x, &d.y, &sorted, &params.tree, &mut rng, scratch);
                    let members = params.keep_leaf_members.then(|| leaf_members(&tree, &d.x));
                    // out-of-bag predictions of this tree
                    let oob: Vec<(u32, f64)> = if params.oob {
                        (0..n)
                            .filter(|&i| w[i] == 0)
                            .map(|i| (i as u32, tree.value[tree.leaf_of_col(&d.x, i)]))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    (tree, members, oob)
                })
                .collect::<Vec<_>>()
        };
        let grown = match threads {
            Some(k) => rayon::ThreadPoolBuilder::new()
                .num_threads(k.max(1))
                .build()
                .map_err(|e| FitError::Param(format!("thread pool: {e}")))?
                .install(run),
            None => run(),
        };
        let mut sum = vec![0.0; n];
        let mut cnt = vec![0u32; n];
        let mut trees = Vec::with_capacity(grown.len());
        let mut members = Vec::new();
        for (tree, m, oob) in grown {
            for (i, p) in oob {
                sum[i as usize] += p;
                cnt[i as usize] += 1;
            }
            trees.push(tree);
            if let Some(m) = m {
                members.push(m);
            }
        }
        let oob_prediction = sum.iter().zip(&cnt).map(|(s, &c)| (c > 0).then(|| s / c as f64)).collect();
        let forest = Forest {
            params: params.clone(),
            n_features: d.n_features(),
            trees,
            train_y: if params.keep_leaf_members { d.y.clone() } else { Vec::new() },
            leaf_members: members,
            oob_prediction,
        };
        Ok(forest)
    }

    /// Mean of the trees' predictions for one row.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        self.trees.iter().map(|t| t.predict(row)).sum::<f64>() / self.trees.len() as f64
    }

    /// Predictions for every row of a dataset. Rows are processed in blocks, tree by tree within a block,
    /// so each tree stays in cache while the block passes through it; every row's sum runs in tree order,
    /// so the result does not depend on the thread count.
    pub fn predict(&self, d: &Dataset) -> Vec<f64> {
        const BLOCK: usize = 1024;
        let n = d.rows();
        let k = d.n_features();
        let n_trees = self.trees.len() as f64;
        let mut out = vec![0.0; n];
        out.par_chunks_mut(BLOCK).enumerate().for_each(|(b, chunk)| {
            let start = b * BLOCK;
            let rows = chunk.len();
            let mut buf = vec![0.0; rows * k];
            for r in 0..rows {
                for (f, col) in d.x.iter().enumerate() {
                    buf[r * k + f] = col[start + r];
                }
            }
            for t in &self.trees {
                t.add_predictions(&buf, k, chunk);
            }
            chunk.iter_mut().for_each(|v| *v /= n_trees);
        });
        out
    }

    /// Out-of-bag R² over the rows that were out of bag at least once (scikit-learn's `oob_score_`).
    pub fn oob_r2(&self, y: &[f64]) -> Option<f64> {
        let (yy, pp): (Vec<f64>, Vec<f64>) =
            y.iter().zip(&self.oob_prediction).filter_map(|(a, p)| p.map(|p| (*a, p))).unzip();
        (!yy.is_empty()).then(|| r2(&yy, &pp))
    }

    /// Impurity-based importances (mean decrease in impurity), normalised like scikit-learn: each tree's
    /// decreases are normalised to sum to 1, averaged over trees, and normalised again.
    pub fn impurity_importances(&self) -> Vec<f64> {
        let mut total = vec![0.0; self.n_features];
        for t in &self.trees {
            let mut imp = vec![0.0; self.n_features];
            for n in 0..t.len() {
                if t.is_leaf(n) {
                    continue;
                }
                let (l, r) = t.nodes[n].children();
                imp[t.nodes[n].feature as usize] +=
                    t.cover[n] * t.impurity[n] - t.cover[l] * t.impurity[l] - t.cover[r] * t.impurity[r];
            }
            let s: f64 = imp.iter().sum();
            if s > 0.0 {
                for (a, b) in total.iter_mut().zip(&imp) {
                    *a += b / s;
                }
            }
        }
        let s: f64 = total.iter().sum();
        if s > 0.0 {
            total.iter_mut().for_each(|v| *v /= s);
        }
        total
    }

    /// Quantiles of the conditional distribution of y at `row` (Meinshausen 2006): each training row gets
    /// weight Σ_t 1{in the same leaf of tree t}/(leaf size · T); the q-quantile is the smallest y whose
    /// cumulative weight reaches q. `None` when leaf members were not kept.
    pub fn quantiles(&self, row: &[f64], qs: &[f64]) -> Option<Vec<f64>> {
        if self.leaf_members.is_empty() {
            return None;
        }
        let t_count = self.trees.len() as f64;
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        for (t, m) in self.trees.iter().zip(&self.leaf_members) {
            let leaf = t.leaf_of(row);
            let rows = &m.rows[m.offsets[leaf] as usize..m.offsets[leaf + 1] as usize];
            let w = 1.0 / (rows.len() as f64 * t_count);
            pairs.extend(rows.iter().map(|&r| (self.train_y[r as usize], w)));
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = pairs.iter().map(|p| p.1).sum();
        Some(
            qs.iter()
                .map(|&q| {
                    let target = q * total;
                    let mut acc = 0.0;
                    for &(y, w) in &pairs {
                        acc += w;
                        if acc >= target - 1e-12 {
                            return y;
                        }
                    }
                    pairs.last().map(|p| p.0).unwrap_or(f64::NAN)
                })
                .collect(),
        )
    }
}

fn leaf_members(tree: &Tree, x: &[Vec<f64>]) -> LeafMembers {
    let n = x.first().map(|c| c.len()).unwrap_or(0);
    let leaves: Vec<usize> = (0..n).map(|i| tree.leaf_of_col(x, i)).collect();
    let mut counts = vec![0u32; tree.len() + 1];
    for &l in &leaves {
        counts[l + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    let offsets = counts.clone();
    let mut fill = counts;
    let mut rows = vec![0u32; n];
    for (i, &l) in leaves.iter().enumerate() {
        rows[fill[l] as usize] = i as u32;
        fill[l] += 1;
    }
    LeafMembers { offsets, rows }
}

/// Convenience: scikit-learn-like `max_features` from a string (`all`, `sqrt`, a fraction, or a count).
pub fn parse_max_features(s: &str) -> Result<MaxFeatures, String> {
    match s {
        "all" | "1.0" => Ok(MaxFeatures::All),
        "sqrt" => Ok(MaxFeatures::Sqrt),
        _ if s.contains('.') => s
            .parse::<f64>()
            .ok()
            .filter(|f| *f > 0.0 && *f <= 1.0)
            .map(MaxFeatures::Fraction)
            .ok_or_else(|| format!("max features `{s}`: expected all, sqrt, a fraction in (0, 1] or a count")),
        _ => s
            .parse::<usize>()
            .ok()
            .filter(|c| *c > 0)
            .map(MaxFeatures::Count)
            .ok_or_else(|| format!("max features `{s}`: expected all, sqrt, a fraction in (0, 1] or a count")),
    }
}
