//! Evaluation: held-out scores against baselines, k-fold cross-validation, permutation importances,
//! interval coverage.

use crate::data::{mae, r2, Dataset, Linear, Rng};
use crate::forest::{FitError, Forest, ForestParams};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Scores of one model on one dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// R².
    pub r2: f64,
    /// Mean absolute error.
    pub mae: f64,
}

impl Scores {
    /// Scores predictions against targets.
    pub fn of(y: &[f64], pred: &[f64]) -> Scores {
        Scores { r2: r2(y, pred), mae: mae(y, pred) }
    }
}

/// The forest beside its baselines on a held-out set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The forest.
    pub forest: Scores,
    /// Predicting the training mean.
    pub mean: Scores,
    /// Ordinary least squares.
    pub linear: Scores,
}

/// Compares a fitted forest with the mean and linear baselines fitted on `train`, scored on `test`.
pub fn compare(forest: &Forest, train: &Dataset, test: &Dataset) -> Comparison {
    compare_predictions(&forest.predict(test), train, test)
}

/// Compares any model's predictions on `test` with the mean and linear baselines fitted on `train`.
pub fn compare_predictions(pred: &[f64], train: &Dataset, test: &Dataset) -> Comparison {
    let m = train.y.iter().sum::<f64>() / train.y.len() as f64;
    let lin = Linear::fit(train);
    Comparison {
        forest: Scores::of(&test.y, pred),
        mean: Scores::of(&test.y, &vec![m; test.rows()]),
        linear: Scores::of(&test.y, &lin.predict(test)),
    }
}

/// A deterministic train/test split: rows shuffled with `seed`, the last `test_fraction` held out.
pub fn split(d: &Dataset, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
    let mut idx: Vec<usize> = (0..d.rows()).collect();
    Rng::new(seed, u64::MAX).shuffle(&mut idx);
    let n_test = ((d.rows() as f64) * test_fraction).round().clamp(1.0, (d.rows() - 1) as f64) as usize;
    let cut = d.rows() - n_test;
    (d.subset(&idx[..cut]), d.subset(&idx[cut..]))
}

/// k-fold cross-validation R² of the forest (rows shuffled with the forest's seed); one score per fold.
pub fn cross_validate(d: &Dataset, params: &ForestParams, k: usize) -> Result<Vec<f64>, FitError> {
    if k < 2 {
        return Err(FitError::Param(format!("cross-validation needs at least 2 folds, got {k}")));
    }
    if d.rows() < k {
        return Err(FitError::Param(format!("{} rows cannot be split into {k} folds", d.rows())));
    }
    let mut idx: Vec<usize> = (0..d.rows()).collect();
    Rng::new(params.seed, u64::MAX - 1).shuffle(&mut idx);
    let mut p = params.clone();
    p.keep_leaf_members = false;
    (0..k)
        .map(|f| {
            let test: Vec<usize> = idx.iter().enumerate().filter(|(i, _)| i % k == f).map(|(_, &r)| r).collect();
            let train: Vec<usize> = idx.iter().enumerate().filter(|(i, _)| i % k != f).map(|(_, &r)| r).collect();
            let (tr, te) = (d.subset(&train), d.subset(&test));
            let model = Forest::fit(&tr, &p, None)?;
            Ok(r2(&te.y, &model.predict(&te)))
        })
        .collect()
}

/// Permutation importance (Breiman 2001, §10): the drop in R² when one feature's column is shuffled,
/// averaged over `repeats` seeded shuffles.
pub fn permutation_importances(forest: &Forest, d: &Dataset, repeats: usize, seed: u64) -> Vec<f64> {
    let base = r2(&d.y, &forest.predict(d));
    (0..d.n_features())
        .into_par_iter()
        .map(|f| {
            let mut drop = 0.0;
            for r in 0..repeats.max(1) {
                let mut shuffled = d.clone();
                Rng::new(seed, (f * 1000 + r) as u64).shuffle(&mut shuffled.x[f]);
                drop += base - r2(&d.y, &forest.predict(&shuffled));
            }
            drop / repeats.max(1) as f64
        })
        .collect()
}

/// Share of rows whose target lies within the forest's [lo, hi] quantile interval.
pub fn interval_coverage(forest: &Forest, d: &Dataset, lo: f64, hi: f64) -> Option<f64> {
    let mut inside = 0usize;
    for i in 0..d.rows() {
        let q = forest.quantiles(&d.row(i), &[lo, hi])?;
        if d.y[i] >= q[0] && d.y[i] <= q[1] {
            inside += 1;
        }
    }
    Some(inside as f64 / d.rows() as f64)
}
