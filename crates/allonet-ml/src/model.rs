//! Trained models, their training pipeline, and versioned model files.
//!
//! A model file is canonical JSON (keys sorted, no whitespace) holding the format version, the feature
//! schema, the training-data digest, the parameters, the evaluation metrics and the model itself. The
//! model id is the keccak-256 of the file's bytes, so a governance vote can name exactly one model.

use crate::data::{Dataset, ReadSpec};
use crate::eval::{compare_predictions, cross_validate, interval_coverage, permutation_importances, split, Comparison};
use crate::forest::{FitError, Forest, ForestParams};
use crate::shap::forest_shap;
use allonet_core::{canonical_json, Digest, InputError, Table};
use forust_ml::gradientbooster::ContributionsMethod;
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use serde::{Deserialize, Serialize};

/// Current model file format version.
pub const FORMAT_VERSION: u32 = 1;

/// Which model family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Random forest (this crate).
    RandomForest,
    /// Gradient-boosted trees (forust-ml, histogram-based, squared loss).
    GradientBoosting,
}

/// Gradient boosting parameters (forust-ml names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GbmParams {
    /// Boosting rounds.
    pub iterations: usize,
    /// Shrinkage.
    pub learning_rate: f32,
    /// Tree depth.
    pub max_depth: usize,
    /// Minimum hessian weight in a leaf.
    pub min_leaf_weight: f32,
    /// Seed.
    pub seed: u64,
}

impl Default for GbmParams {
    fn default() -> Self {
        GbmParams { iterations: 300, learning_rate: 0.05, max_depth: 4, min_leaf_weight: 1.0, seed: 42 }
    }
}

/// The feature schema a model was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// Feature names in order.
    pub features: Vec<String>,
    /// Target name.
    pub target: String,
}

/// A fitted point model of either family.
pub enum PointModel {
    /// A random forest.
    Forest(Box<Forest>),
    /// A forust gradient booster.
    Gbm(Box<GradientBooster>),
}

/// A fitted model: the point model, and the quantile forest that gives its intervals.
///
/// Intervals come from a separate quantile regression forest grown with larger leaves
/// (`interval_min_leaf`, default 10): with fully grown trees a leaf holds about one training row and the
/// conditional distribution collapses (measured on synthetic data: 64% coverage of a 10–90% interval
/// with leaves of 1, 78% with leaves of 10). Meinshausen (2006) likewise grows quantile forests with
/// several observations per node.
pub struct Model {
    /// Point predictions and explanations.
    pub point: PointModel,
    /// Quantile intervals.
    pub quantile: Option<Forest>,
}

/// An explanation of one prediction: `base + Σ contributions = prediction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Expected prediction over the training data (φ₀).
    pub base: f64,
    /// One Shapley value per feature, in schema order.
    pub contributions: Vec<f64>,
    /// The prediction.
    pub prediction: f64,
}

fn column_major(d: &Dataset) -> Vec<f64> {
    d.x.iter().flatten().copied().collect()
}

impl Model {
    /// Predictions for every row.
    pub fn predict(&self, d: &Dataset) -> Vec<f64> {
        match &self.point {
            PointModel::Forest(f) => f.predict(d),
            PointModel::Gbm(g) => {
                let data = column_major(d);
                g.predict(&Matrix::new(&data, d.rows(), d.n_features()), true)
            }
        }
    }

    /// Shapley explanations for every row (TreeSHAP for forests; forust's Shapley contributions for boosting).
    pub fn explain(&self, d: &Dataset) -> Vec<Explanation> {
        match &self.point {
            PointModel::Forest(f) => {
                use rayon::prelude::*;
                (0..d.rows())
                    .into_par_iter()
                    .map(|i| {
                        let row = d.row(i);
                        let (base, contributions) = forest_shap(f, &row);
                        Explanation { base, contributions, prediction: f.predict_row(&row) }
                    })
                    .collect()
            }
            PointModel::Gbm(g) => {
                let data = column_major(d);
                let m = Matrix::new(&data, d.rows(), d.n_features());
                let pred = g.predict(&m, true);
                let c = g.predict_contributions(&m, ContributionsMethod::Shapley, true);
                let k = d.n_features() + 1;
                (0..d.rows())
                    .map(|i| {
                        let r = &c[i * k..(i + 1) * k];
                        Explanation { base: r[k - 1], contributions: r[..k - 1].to_vec(), prediction: pred[i] }
                    })
                    .collect()
            }
        }
    }

    /// A [lo, hi] quantile interval per row, from the quantile forest.
    pub fn intervals(&self, d: &Dataset, lo: f64, hi: f64) -> Option<Vec<(f64, f64)>> {
        let q = self.quantile.as_ref()?;
        (0..d.rows()).map(|i| q.quantiles(&d.row(i), &[lo, hi]).map(|v| (v[0], v[1]))).collect()
    }
}

/// Fits a gradient booster.
pub fn fit_gbm(d: &Dataset, p: &GbmParams, threads: Option<usize>) -> Result<GradientBooster, FitError> {
    let data = column_major(d);
    let m = Matrix::new(&data, d.rows(), d.n_features());
    let mut g = GradientBooster::default()
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(p.iterations)
        .set_learning_rate(p.learning_rate)
        .set_max_depth(p.max_depth)
        .set_min_leaf_weight(p.min_leaf_weight)
        .set_seed(p.seed)
        .set_parallel(true)
        .set_num_threads(threads);
    let w = vec![1.0; d.rows()];
    g.fit(&m, &d.y, &w, None).map_err(|e| FitError::Param(format!("gradient boosting: {e}")))?;
    Ok(g)
}

/// Everything `train` needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Model family.
    pub family: Family,
    /// Forest parameters.
    pub forest: ForestParams,
    /// Boosting parameters.
    pub gbm: GbmParams,
    /// Share of rows held out for evaluation.
    pub test_fraction: f64,
    /// Cross-validation folds.
    pub folds: usize,
    /// Interval quantiles, e.g. (0.1, 0.9).
    pub interval: (f64, f64),
    /// Permutation-importance repeats.
    pub permutation_repeats: usize,
    /// Smallest leaf of the quantile forest that gives intervals.
    pub interval_min_leaf: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            family: Family::RandomForest,
            forest: ForestParams::default(),
            gbm: GbmParams::default(),
            test_fraction: 0.2,
            folds: 5,
            interval: (0.1, 0.9),
            permutation_repeats: 5,
            interval_min_leaf: 10,
        }
    }
}

/// A feature's importance by two measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// Feature.
    pub feature: String,
    /// Mean decrease in impurity, normalised (forests; 0 for boosting).
    pub impurity: f64,
    /// Drop in held-out R² when the feature is shuffled.
    pub permutation: f64,
}

/// What training measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Rows used to fit the evaluation model, and held out.
    pub n_train: usize,
    /// Held-out rows.
    pub n_test: usize,
    /// Held-out scores of the model and the baselines.
    pub held_out: Comparison,
    /// Out-of-bag R² of the final forest.
    pub oob_r2: Option<f64>,
    /// k-fold cross-validated R² per fold.
    pub cv_r2: Vec<f64>,
    /// Importances.
    pub importances: Vec<Importance>,
    /// Held-out coverage of the [lo, hi] interval.
    pub interval_coverage: Option<f64>,
}

/// A model file: format, schema, provenance, parameters, metrics and the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always `allonet-model`.
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// Model family.
    pub family: Family,
    /// Feature schema.
    pub schema: Schema,
    /// Training rows.
    pub training_rows: usize,
    /// keccak-256 of the canonical training dataset.
    pub training_digest: Digest,
    /// Training options.
    pub options: TrainOptions,
    /// Evaluation report.
    pub report: TrainReport,
    /// The forest, for `random_forest`.
    pub forest: Option<Forest>,
    /// The quantile forest giving intervals.
    pub quantile_forest: Option<Forest>,
    /// forust's JSON, for `gradient_boosting`.
    pub gbm: Option<serde_json::Value>,
}

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Input problem.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Fitting problem.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The file is not a model of a version we read.
    #[error("{0}")]
    Format(String),
    /// The data's columns do not match the model's schema.
    #[error("{0}")]
    Schema(String),
}

fn fit_family(d: &Dataset, o: &TrainOptions, threads: Option<usize>) -> Result<Model, FitError> {
    let point = match o.family {
        Family::RandomForest => {
            let p = ForestParams { keep_leaf_members: false, ..o.forest.clone() };
            PointModel::Forest(Box::new(Forest::fit(d, &p, threads)?))
        }
        Family::GradientBoosting => PointModel::Gbm(Box::new(fit_gbm(d, &o.gbm, threads)?)),
    };
    let mut qp = ForestParams { keep_leaf_members: true, ..o.forest.clone() };
    qp.tree.min_samples_leaf = qp.tree.min_samples_leaf.max(o.interval_min_leaf);
    Ok(Model { point, quantile: Some(Forest::fit(d, &qp, threads)?) })
}

/// Trains and evaluates: holds out `test_fraction` of the rows (seeded), scores the model beside the mean
/// and linear baselines, measures interval coverage and permutation importances on the held-out rows,
/// cross-validates on all rows, then fits the final model on all rows.
pub fn train(d: &Dataset, o: &TrainOptions, threads: Option<usize>) -> Result<ModelFile, ModelError> {
    if d.y.is_empty() {
        return Err(FitError::NoTarget.into());
    }
    if d.rows() < o.folds.max(2) {
        return Err(
            FitError::Param(format!("{} rows is fewer than the {} cross-validation folds", d.rows(), o.folds)).into()
        );
    }
    let seed = match o.family {
        Family::RandomForest => o.forest.seed,
        Family::GradientBoosting => o.gbm.seed,
    };
    let (tr, te) = split(d, o.test_fraction, seed);
    let eval_model = fit_family(&tr, o, threads)?;
    let pred = eval_model.predict(&te);
    let held_out = compare_predictions(&pred, &tr, &te);
    let interval_coverage =
        eval_model.quantile.as_ref().and_then(|q| interval_coverage(q, &te, o.interval.0, o.interval.1));
    let permutation = match &eval_model.point {
        PointModel::Forest(f) => permutation_importances(f, &te, o.permutation_repeats, seed),
        PointModel::Gbm(_) => gbm_permutation(&eval_model, &te, o.permutation_repeats, seed),
    };
    let cv_r2 = match o.family {
        Family::RandomForest => cross_validate(d, &o.forest, o.folds)?,
        Family::GradientBoosting => Vec::new(),
    };
    let final_model = fit_family(d, o, threads)?;
    let (oob_r2, impurity) = match &final_model.point {
        PointModel::Forest(f) => (f.oob_r2(&d.y), f.impurity_importances()),
        PointModel::Gbm(_) => (None, vec![0.0; d.n_features()]),
    };
    let importances = d
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| Importance { feature: f.clone(), impurity: impurity[i], permutation: permutation[i] })
        .collect();
    let report =
        TrainReport { n_train: tr.rows(), n_test: te.rows(), held_out, oob_r2, cv_r2, importances, interval_coverage };
    let quantile_forest = final_model.quantile;
    let (forest, gbm) = match final_model.point {
        PointModel::Forest(f) => (Some(*f), None),
        PointModel::Gbm(g) => {
            let json = g.json_dump().map_err(|e| ModelError::Format(format!("gradient boosting: {e}")))?;
            let mut v: serde_json::Value =
                serde_json::from_str(&json).map_err(|e| ModelError::Format(e.to_string()))?;
            // the thread count is how it was trained, not what it is: keep the file (and its id) independent of it
            if let Some(obj) = v.as_object_mut() {
                obj.insert("num_threads".into(), serde_json::Value::Null);
            }
            (None, Some(v))
        }
    };
    Ok(ModelFile {
        format: "allonet-model".into(),
        version: FORMAT_VERSION,
        family: o.family,
        schema: Schema { features: d.features.clone(), target: d.target.clone() },
        training_rows: d.rows(),
        training_digest: d.digest(),
        options: o.clone(),
        report,
        forest,
        quantile_forest,
        gbm,
    })
}

fn gbm_permutation(m: &Model, d: &Dataset, repeats: usize, seed: u64) -> Vec<f64> {
    let base = crate::data::r2(&d.y, &m.predict(d));
    (0..d.n_features())
        .map(|f| {
            let mut drop = 0.0;
            for r in 0..repeats.max(1) {
                let mut s = d.clone();
                crate::data::Rng::new(seed, (f * 1000 + r) as u64).shuffle(&mut s.x[f]);
                drop += base - crate::data::r2(&d.y, &m.predict(&s));
            }
            drop / repeats.max(1) as f64
        })
        .collect()
}

impl ModelFile {
    /// The file's bytes: canonical JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical_json(self).into_bytes()
    }

    /// The model id: keccak-256 of [`ModelFile::to_bytes`].
    pub fn id(&self) -> Digest {
        allonet_core::digest::keccak(&self.to_bytes())
    }

    /// Reads a model file, checking format and version; returns it with the id of the bytes read.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<(ModelFile, Digest), ModelError> {
        let v: serde_json::Value = allonet_core::input::json_from_bytes(name, bytes)?;
        if v.get("format").and_then(|f| f.as_str()) != Some("allonet-model") {
            return Err(ModelError::Format(format!("{name}: not an allonet model file")));
        }
        let version = v.get("version").and_then(|x| x.as_u64()).unwrap_or(0);
        if version != FORMAT_VERSION as u64 {
            return Err(ModelError::Format(format!(
                "{name}: model format version {version}; this allonet reads version {FORMAT_VERSION}"
            )));
        }
        let m: ModelFile = serde_json::from_value(v).map_err(|e| ModelError::Format(format!("{name}: {e}")))?;
        // every split is on a feature of the schema (a walk would otherwise index past a row's values)
        let d = m.schema.features.len();
        for f in m.forest.iter().chain(&m.quantile_forest) {
            let outside = f.trees.iter().flat_map(|t| &t.nodes).find(|n| !n.is_leaf() && n.feature as usize >= d);
            if f.n_features != d || outside.is_some() {
                return Err(ModelError::Format(format!(
                    "{name}: the forest splits on features the schema does not have (it has {d})"
                )));
            }
        }
        Ok((m, allonet_core::digest::keccak(bytes)))
    }

    /// The fitted model.
    pub fn model(&self) -> Result<Model, ModelError> {
        let point = match (self.family, &self.forest, &self.gbm) {
            (Family::RandomForest, Some(f), _) => PointModel::Forest(Box::new(f.clone())),
            (Family::GradientBoosting, _, Some(g)) => GradientBooster::from_json(&g.to_string())
                .map(|g| PointModel::Gbm(Box::new(g)))
                .map_err(|e| ModelError::Format(format!("gradient boosting model: {e}")))?,
            _ => return Err(ModelError::Format("model file holds no model of its family".into())),
        };
        let quantile = self.quantile_forest.clone();
        Ok(Model { point, quantile })
    }

    /// Reads the model's features from a table, refusing a table whose columns do not match the schema.
    pub fn dataset(&self, t: &Table, with_target: bool) -> Result<Dataset, ModelError> {
        let missing: Vec<&String> =
            self.schema.features.iter().filter(|f| t.find_column(&[f.as_str()]).is_none()).collect();
        if !missing.is_empty() {
            return Err(ModelError::Schema(format!(
                "{}: the model was trained on features [{}] but the file lacks {}",
                t.file,
                self.schema.features.join(", "),
                missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        let spec = ReadSpec {
            target: with_target.then(|| self.schema.target.clone()),
            features: Some(self.schema.features.clone()),
        };
        Ok(crate::data::dataset_from_table(t, &spec)?)
    }
}
