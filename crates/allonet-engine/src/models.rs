//! Recommendation models as a DAO uses them: training data and model files read, models trained, evaluated
//! and explained, recommendations with intervals and reasons, and which model version is served.
//!
//! Which version is served is governance's decision, not the caller's: a model id (keccak-256 of the model
//! file) becomes active only when a passing proposal `activate-model:<id>` is executed, and the last activated
//! version is the one served (`Registry::model_history`, `active_model()` in `allonet-governance`).
//! [`load_active`] and [`load_served`] refuse any other file, and every model while the guardian's kill switch
//! is on.
//!
//! A recommendation is a number with an interval and reasons; turning it into a payout is governance's job.

use std::path::Path;

use allonet_core::{Digest, Table};
use allonet_ml::data::{dataset_from_table, mae, r2, Dataset, ReadSpec};
use allonet_ml::forest::{parse_max_features, Forest, ForestParams};
use allonet_ml::model::{Family, GbmParams, Importance, ModelError, ModelFile, TrainOptions, TrainReport};
use allonet_ml::synth;
use allonet_ml::tree::TreeParams;
use allonet_store::Store;
use serde::Serialize;

use crate::EngineError;

/// A model error as an engine error (input problems stay located; the others keep their one sentence).
fn ml(e: ModelError) -> EngineError {
    match e {
        ModelError::Input(i) => EngineError::Input(i),
        other => EngineError::Config(other.to_string()),
    }
}

/// An interval given as two percentiles `[LO, HI]` with `0 <= LO < HI <= 100`, as quantiles.
pub fn interval(percentiles: &[f64]) -> Result<(f64, f64), EngineError> {
    match percentiles {
        [lo, hi] if 0.0 <= *lo && lo < hi && *hi <= 100.0 => Ok((lo / 100.0, hi / 100.0)),
        _ => Err(EngineError::Config(
            "--interval takes two percentiles LO,HI with 0 <= LO < HI <= 100, e.g. 10,90".into(),
        )),
    }
}

/// What a training run asks for, as a front end collects it (scikit-learn's names where they exist).
#[derive(Clone, Debug)]
pub struct TrainSpec {
    /// Model family.
    pub family: Family,
    /// Trees in the forest (n_estimators); boosting runs three rounds per tree.
    pub trees: usize,
    /// Seed (random_state).
    pub seed: u64,
    /// Deepest tree level (forest: unlimited when `None`; boosting: 4 when `None`).
    pub max_depth: Option<usize>,
    /// Smallest node that may split.
    pub min_samples_split: usize,
    /// Smallest leaf.
    pub min_samples_leaf: usize,
    /// Features per split: `all`, `sqrt`, a fraction (`0.5`) or a count.
    pub max_features: String,
    /// Grow every tree on a bootstrap sample (otherwise on all rows).
    pub bootstrap: bool,
    /// Boosting learning rate.
    pub learning_rate: f32,
    /// Cross-validation folds.
    pub folds: usize,
    /// Share of rows held out for evaluation.
    pub test_fraction: f64,
    /// Interval percentiles `[LO, HI]`.
    pub interval: Vec<f64>,
}

impl TrainSpec {
    /// The training options: OOB scored, no leaf membership kept for the point forest, every parameter checked.
    pub fn options(&self) -> Result<TrainOptions, EngineError> {
        let max_features = parse_max_features(&self.max_features).map_err(EngineError::Config)?;
        Ok(TrainOptions {
            family: self.family,
            forest: ForestParams {
                n_trees: self.trees,
                tree: TreeParams {
                    max_depth: self.max_depth,
                    min_samples_split: self.min_samples_split,
                    min_samples_leaf: self.min_samples_leaf,
                    max_features,
                },
                bootstrap: self.bootstrap,
                seed: self.seed,
                keep_leaf_members: false,
                oob: true,
            },
            gbm: GbmParams {
                iterations: self.trees.max(1) * 3,
                learning_rate: self.learning_rate,
                max_depth: self.max_depth.unwrap_or(4),
                seed: self.seed,
                ..GbmParams::default()
            },
            test_fraction: self.test_fraction,
            folds: self.folds,
            interval: interval(&self.interval)?,
            ..TrainOptions::default()
        })
    }
}

/// Reads a training CSV: `target` (when given) and `features` (default: every numeric column but the target),
/// refusing non-finite values with file, line and column.
pub fn load_dataset(path: &Path, target: Option<&str>, features: Option<Vec<String>>) -> Result<Dataset, EngineError> {
    let t = Table::read(path)?;
    Ok(dataset_from_table(&t, &ReadSpec { target: target.map(String::from), features })?)
}

/// Trains and evaluates (held-out split, cross-validation, final fit; see `allonet_ml::model::train`). The
/// model is identical for any `threads`.
pub fn train(d: &Dataset, o: &TrainOptions, threads: Option<usize>) -> Result<ModelFile, EngineError> {
    allonet_ml::model::train(d, o, threads).map_err(ml)
}

/// Mean and (population) standard deviation of the cross-validated R² scores; `None` without folds.
pub fn cv_summary(cv_r2: &[f64]) -> Option<(f64, f64)> {
    if cv_r2.is_empty() {
        return None;
    }
    let n = cv_r2.len() as f64;
    let m = cv_r2.iter().sum::<f64>() / n;
    Some((m, (cv_r2.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt()))
}

/// The report's importances, largest permutation importance first (ties keep schema order).
pub fn ranked_importances(r: &TrainReport) -> Vec<&Importance> {
    let mut imp: Vec<_> = r.importances.iter().collect();
    imp.sort_by(|a, b| b.permutation.total_cmp(&a.permutation));
    imp
}

/// Reads a model file, checking format and version; returns it with its id (keccak-256 of the bytes read).
pub fn load_model(path: &Path) -> Result<(ModelFile, Digest), EngineError> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::Config(format!("cannot read {}: {e}", path.display())))?;
    ModelFile::from_bytes(&path.display().to_string(), &bytes).map_err(ml)
}

/// The model version governance activated last (`None` before any activation).
pub fn active_model(store: &Store) -> Option<Digest> {
    store.governor().registry.active_model().map(Digest)
}

/// Refuses to serve model `id` unless it is the version governance activated and the kill switch is off.
pub fn ensure_active(store: &Store, id: &Digest) -> Result<(), EngineError> {
    let reg = &store.governor().registry;
    if reg.paused {
        return Err(EngineError::Config(
            "governance has paused the agent (kill switch); no recommendations are served".into(),
        ));
    }
    match reg.active_model() {
        Some(active) if active == id.0 => Ok(()),
        Some(active) => Err(EngineError::Config(format!(
            "model {id} is not the version governance activated ({active}); propose `activate-model:{id}`"
        ))),
        None => {
            Err(EngineError::Config(format!("governance has activated no model yet; propose `activate-model:{id}`")))
        }
    }
}

/// Reads the model file at `path` and serves it only if it is the version governance activated in `store`.
pub fn load_active(store: &Store, path: &Path) -> Result<(ModelFile, Digest), EngineError> {
    let (mf, id) = load_model(path)?;
    ensure_active(store, &id)?;
    Ok((mf, id))
}

/// Opens an existing governance database (refusing a path that does not exist, rather than creating one).
pub fn open_governance(db: &Path) -> Result<Store, EngineError> {
    if !db.exists() {
        return Err(EngineError::Config(format!("{} does not exist", db.display())));
    }
    Store::open(db).map_err(|e| EngineError::Config(e.to_string()))
}

/// Reads the model file at `path`; with a governance database, serves it only if it is the activated version
/// ([`load_active`]'s check, the model file read first).
pub fn load_served(path: &Path, gov_db: Option<&Path>) -> Result<(ModelFile, Digest), EngineError> {
    let (mf, id) = load_model(path)?;
    if let Some(db) = gov_db {
        ensure_active(&open_governance(db)?, &id)?;
    }
    Ok((mf, id))
}

/// A model scored on labelled data.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// Rows scored.
    pub rows: usize,
    /// R² of the predictions.
    pub r2: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// The model's interval (quantiles).
    pub interval: (f64, f64),
    /// Share of rows whose target lies inside their interval (`None` without a quantile forest).
    pub coverage: Option<f64>,
}

/// Scores a model on the labelled CSV at `data` (the model's features and target).
pub fn evaluate(mf: &ModelFile, data: &Path) -> Result<Evaluation, EngineError> {
    let d = mf.dataset(&Table::read(data)?, true).map_err(ml)?;
    let model = mf.model().map_err(ml)?;
    let pred = model.predict(&d);
    let (lo, hi) = mf.options.interval;
    let coverage = model
        .intervals(&d, lo, hi)
        .map(|iv| iv.iter().zip(&d.y).filter(|((l, h), y)| **y >= *l && **y <= *h).count() as f64 / d.rows() as f64);
    Ok(Evaluation { rows: d.rows(), r2: r2(&d.y, &pred), mae: mae(&d.y, &pred), interval: (lo, hi), coverage })
}

/// One prediction explained: the base value and each feature's Shapley contribution.
#[derive(Clone, Debug)]
pub struct RowExplanation {
    /// The row's label.
    pub label: String,
    /// The row's feature values, in schema order.
    pub values: Vec<f64>,
    /// Expected prediction over the training data (φ₀).
    pub base: f64,
    /// One Shapley value per feature, in schema order.
    pub contributions: Vec<f64>,
    /// The prediction.
    pub prediction: f64,
}

impl RowExplanation {
    /// Feature indices, largest |contribution| first (ties keep schema order).
    pub fn by_size(&self) -> Vec<usize> {
        by_size(&self.contributions)
    }

    /// base + Σ contributions − prediction (zero up to rounding: Shapley values are additive).
    pub fn additivity_gap(&self) -> f64 {
        self.base + self.contributions.iter().sum::<f64>() - self.prediction
    }
}

fn by_size(contributions: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..contributions.len()).collect();
    order.sort_by(|&x, &y| contributions[y].abs().total_cmp(&contributions[x].abs()));
    order
}

/// Explains data row `row` (1-based, as counted in the file's data rows) of the CSV at `data`.
pub fn explain_row(mf: &ModelFile, data: &Path, row: usize) -> Result<RowExplanation, EngineError> {
    let d = mf.dataset(&Table::read(data)?, false).map_err(ml)?;
    if row == 0 || row > d.rows() {
        return Err(EngineError::Config(format!(
            "--row {row} is outside 1..{} (the data rows of {})",
            d.rows(),
            data.display()
        )));
    }
    let one = d.subset(&[row - 1]);
    let e = mf.model().map_err(ml)?.explain(&one).remove(0);
    Ok(RowExplanation {
        label: one.labels[0].clone(),
        values: one.row(0),
        base: e.base,
        contributions: e.contributions,
        prediction: e.prediction,
    })
}

/// One recommendation.
#[derive(Serialize, Clone, Debug)]
pub struct Recommendation {
    /// The proposal (its label in the proposals file).
    pub proposal: String,
    /// Recommended amount (the model's prediction).
    pub amount: f64,
    /// The interval around it, when the model has a quantile forest.
    pub interval: Option<(f64, f64)>,
    /// The average recommendation the reasons start from (φ₀).
    pub base: f64,
    /// The largest Shapley contributions, largest first.
    pub reasons: Vec<Reason>,
}

/// Why: how far one feature moves the amount from the base.
#[derive(Serialize, Clone, Debug)]
pub struct Reason {
    /// The feature.
    pub feature: String,
    /// Its value for this proposal.
    pub value: f64,
    /// Its Shapley contribution.
    pub contribution: f64,
}

/// Recommends an amount for every row of `d` with interval `iv` (quantiles) and the `n_reasons` largest
/// contributions as reasons.
pub fn recommend(
    mf: &ModelFile,
    d: &Dataset,
    iv: (f64, f64),
    n_reasons: usize,
) -> Result<Vec<Recommendation>, EngineError> {
    let model = mf.model().map_err(ml)?;
    let ex = model.explain(d);
    let ints = model.intervals(d, iv.0, iv.1);
    Ok(ex
        .into_iter()
        .enumerate()
        .map(|(i, e)| Recommendation {
            proposal: d.labels[i].clone(),
            amount: e.prediction,
            interval: ints.as_ref().map(|v| v[i]),
            base: e.base,
            reasons: by_size(&e.contributions)
                .into_iter()
                .take(n_reasons)
                .map(|f| Reason {
                    feature: mf.schema.features[f].clone(),
                    value: d.x[f][i],
                    contribution: e.contributions[f],
                })
                .collect(),
        })
        .collect())
}

/// Recommends for the proposals CSV at `proposals`, with the interval percentiles given (default: the
/// model's interval); returns the interval used (quantiles) and the recommendations.
pub fn recommend_file(
    mf: &ModelFile,
    proposals: &Path,
    percentiles: Option<&[f64]>,
    n_reasons: usize,
) -> Result<((f64, f64), Vec<Recommendation>), EngineError> {
    let d = mf.dataset(&Table::read(proposals)?, false).map_err(ml)?;
    let iv = match percentiles {
        Some(v) => interval(v)?,
        None => mf.options.interval,
    };
    Ok((iv, recommend(mf, &d, iv, n_reasons)?))
}

/// A synthetic round history (impact_score, votes → amount) as CSV, with its row count.
pub fn synth_history(rounds: usize, per_round: usize, seed: u64) -> (usize, String) {
    let h = synth::history(rounds, per_round, seed);
    (h.len(), synth::to_csv(&h))
}

/// `n` synthetic new proposals (no amount) as CSV, with their row count.
pub fn synth_proposals(n: usize, seed: u64) -> (usize, String) {
    let p = synth::proposals(n, seed);
    (p.len(), synth::to_csv(&p))
}

/// One timed forest fit and prediction (`allonet bench forest`, beside scikit-learn in `bench/forest_bench.py`).
#[derive(Clone, Debug, Serialize)]
pub struct ForestBench {
    /// Seconds to fit.
    pub fit_s: f64,
    /// Seconds to predict the test rows.
    pub predict_s: f64,
    /// Held-out R².
    pub r2: f64,
    /// Threads used.
    pub threads: usize,
    /// Training rows.
    pub rows: usize,
    /// Features.
    pub features: usize,
}

/// Fits a forest with scikit-learn's defaults (no OOB score, no leaf membership) on the CSV `train` and
/// scores it on `test`, both with the target column `target`.
pub fn forest_bench(
    train: &Path,
    test: &Path,
    target: &str,
    trees: usize,
    seed: u64,
    max_depth: Option<usize>,
) -> Result<ForestBench, EngineError> {
    let tr = load_dataset(train, Some(target), None)?;
    let te = load_dataset(test, Some(target), None)?;
    let mut p = ForestParams { n_trees: trees, seed, keep_leaf_members: false, oob: false, ..Default::default() };
    p.tree.max_depth = max_depth;
    let t0 = std::time::Instant::now();
    let f = Forest::fit(&tr, &p, None).map_err(|e| EngineError::Config(e.to_string()))?;
    let fit_s = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let pred = f.predict(&te);
    let predict_s = t1.elapsed().as_secs_f64();
    Ok(ForestBench {
        fit_s,
        predict_s,
        r2: r2(&te.y, &pred),
        threads: rayon::current_num_threads(),
        rows: tr.rows(),
        features: tr.n_features(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use allonet_governance::governor::{Act, Action, GovParams};
    use allonet_governance::power::{PowerConfig, Strategy};
    use std::path::PathBuf;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("allonet-engine-models-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A small model written to `d/name`, with its id.
    fn model_file(d: &Path, name: &str, seed: u64) -> (PathBuf, Digest) {
        let h = d.join(format!("{name}.csv"));
        std::fs::write(&h, synth_history(4, 30, seed).1).unwrap();
        let spec = TrainSpec {
            family: Family::RandomForest,
            trees: 5,
            seed,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: "all".into(),
            bootstrap: true,
            learning_rate: 0.05,
            folds: 3,
            test_fraction: 0.2,
            interval: vec![10.0, 90.0],
        };
        let m = train(&load_dataset(&h, Some("amount"), None).unwrap(), &spec.options().unwrap(), Some(1)).unwrap();
        let p = d.join(format!("{name}.json"));
        std::fs::write(&p, m.to_bytes()).unwrap();
        (p, m.id())
    }

    /// A rehearsal DAO of one holder; with `activate`, a proposal activating that model version passes and is
    /// executed. The guardian is `member_key(5, 99)`.
    fn dao(d: &Path, activate: Option<Digest>) -> Store {
        use crate::offchain::{create, member_key, pass, NewDao};
        let holder = member_key(5, 1);
        let new = NewDao {
            params: GovParams {
                voting_delay: 1,
                voting_period: 10,
                proposal_threshold: 0,
                quorum_percent: 10,
                timelock_delay: 5,
                grace_period: 50,
            },
            power: PowerConfig { strategy: Strategy::Token, sybil: None },
            guardian: member_key(5, 99).address(),
            holders: vec![(holder.address(), 100)],
            chain_id: 1,
            rehearsal: true,
            salt: None,
        };
        let mut s = create(&d.join("dao.db"), new, &member_key(5, 0), Some(0)).unwrap();
        if let Some(id) = activate {
            let actions = vec![Action::ActivateModel { model_id: id.0 }];
            pass(&mut s, None, &holder, std::slice::from_ref(&holder), actions, "model").unwrap();
        }
        s
    }

    #[test]
    fn a_model_governance_did_not_activate_is_refused() {
        let d = dir("refused");
        let (p, id) = model_file(&d, "m", 1);
        // nothing activated yet
        let store = dao(&d, None);
        assert_eq!(active_model(&store), None);
        let e = load_active(&store, &p).unwrap_err().to_string();
        assert!(e.contains("activated no model") && e.contains(&format!("activate-model:{id}")), "{e}");
        drop(store);
        // another version activated: this file is still refused
        std::fs::remove_file(d.join("dao.db")).unwrap();
        let (_, other) = model_file(&d, "other", 2);
        assert_ne!(id, other);
        let store = dao(&d, Some(other));
        let e = load_active(&store, &p).unwrap_err().to_string();
        assert!(e.contains("is not the version governance activated"), "{e}");
        drop(store);
        let e = load_served(&p, Some(&d.join("dao.db"))).unwrap_err().to_string();
        assert!(e.contains("is not the version governance activated"), "{e}");
        // a missing database is refused, not created
        let e = load_served(&p, Some(&d.join("none.db"))).unwrap_err().to_string();
        assert!(e.ends_with("none.db does not exist") && !d.join("none.db").exists(), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_activated_model_is_served_until_the_kill_switch() {
        let d = dir("served");
        let (p, id) = model_file(&d, "m", 1);
        let mut store = dao(&d, Some(id));
        assert_eq!(active_model(&store), Some(id));
        let (mf, served) = load_active(&store, &p).unwrap();
        assert_eq!((served, mf.id()), (id, id));
        let (iv, recs) = recommend_file(&mf, &d.join("m.csv"), None, 2).unwrap();
        assert_eq!(iv, (0.1, 0.9));
        assert_eq!(recs.len(), 120);
        assert!(recs.iter().all(|r| r.reasons.len() == 2));
        let guardian = crate::offchain::member_key(5, 99);
        crate::offchain::submit_act(&mut store, &guardian, Act::Pause { paused: true }, Some(40)).unwrap();
        let e = load_active(&store, &p).unwrap_err().to_string();
        assert!(e.contains("paused"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_training_input_is_refused_with_its_location() {
        let d = dir("bad");
        let t = d.join("t.csv");
        std::fs::write(&t, "impact_score,votes,amount\n1,2,3\n4,lots,6\n").unwrap();
        let features = Some(vec!["impact_score".to_string(), "votes".to_string()]);
        match load_dataset(&t, Some("amount"), features) {
            Err(EngineError::Input(e)) => {
                assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("votes")));
                assert!(e.to_string().ends_with("t.csv:3: column `votes`: `lots` is not a finite number"), "{e}");
            }
            other => panic!("expected a located input error, got {other:?}"),
        }
        let e = load_dataset(&t, Some("funding"), None).unwrap_err().to_string();
        assert!(e.contains("missing column `funding`"), "{e}");
        // too few rows for the folds, and a bad interval, are refused before any fit
        let ok = d.join("ok.csv");
        std::fs::write(&ok, "impact_score,votes,amount\n1,2,3\n4,5,6\n7,8,9\n").unwrap();
        let data = load_dataset(&ok, Some("amount"), None).unwrap();
        let e = train(&data, &TrainOptions::default(), None).unwrap_err().to_string();
        assert!(e.contains("fewer than the 5 cross-validation folds"), "{e}");
        assert!(interval(&[90.0, 10.0]).is_err() && interval(&[10.0, 90.0]).unwrap() == (0.1, 0.9));
        let e = load_model(&ok).unwrap_err().to_string();
        assert!(e.contains("ok.csv"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
