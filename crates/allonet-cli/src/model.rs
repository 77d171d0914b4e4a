//! `allonet model …` and `allonet recommend`: train, evaluate, explain, recommend.
//!
//! Arguments, files and printing only: models come from `allonet_engine::models`, text and JSON from
//! `allonet_report::model`.

use crate::output::write_atomic;
use crate::treasury::print;
use allonet_engine::models;
use allonet_ml::model::Family;
use allonet_report::model as show;
use anyhow::Result;
use std::path::PathBuf;

/// `allonet model …`.
#[derive(clap::Subcommand)]
pub enum ModelCommand {
    /// Train a model on a history of funded proposals and report how good it is.
    #[command(
        after_help = "Examples:\n  allonet model synth -o history.csv --proposals proposals.csv\n  allonet model train --data history.csv --target amount -o model.json\n  allonet model train --data examples/op-rf4/rf4_training.csv --target rf4_allocation --trees 200 -o rf4.json\n  allonet model train --data history.csv --target amount --family gbm -o gbm.json"
    )]
    Train(TrainArgs),
    /// Score a model on labelled data: R², MAE and interval coverage.
    Evaluate(EvaluateArgs),
    /// Explain one prediction: the base value and each feature's Shapley contribution.
    Explain(ExplainArgs),
    /// Write a synthetic round history (impact_score, votes → amount) and new proposals.
    Synth(SynthArgs),
}

/// `--family`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FamilyArg {
    /// Random forest (CART trees, scikit-learn defaults).
    Forest,
    /// Gradient boosting (forust-ml).
    Gbm,
}

/// `allonet model train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// History CSV: one row per past proposal with its features and the amount it received.
    #[arg(long)]
    pub data: PathBuf,
    /// Target column (what to predict).
    #[arg(long, default_value = "amount")]
    pub target: String,
    /// Feature columns, comma-separated (default: every numeric column but the target).
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Model family.
    #[arg(long, value_enum, default_value_t = FamilyArg::Forest)]
    pub family: FamilyArg,
    /// Trees in the forest (n_estimators) or boosting rounds.
    #[arg(long, default_value_t = 100)]
    pub trees: usize,
    /// Seed (random_state).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Deepest tree level (forest default: unlimited; boosting default: 4).
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Smallest node that may split.
    #[arg(long, default_value_t = 2)]
    pub min_samples_split: usize,
    /// Smallest leaf.
    #[arg(long, default_value_t = 1)]
    pub min_samples_leaf: usize,
    /// Features per split: all, sqrt, a fraction (0.5) or a count.
    #[arg(long, default_value = "all")]
    pub max_features: String,
    /// Grow every tree on all rows instead of a bootstrap sample.
    #[arg(long)]
    pub no_bootstrap: bool,
    /// Boosting learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub learning_rate: f32,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Share of rows held out for evaluation.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Interval percentiles, e.g. 10,90.
    #[arg(long, value_delimiter = ',', default_value = "10,90")]
    pub interval: Vec<f64>,
    /// Threads (default: all cores). The model is identical for any count.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where to write the model file.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The engine's training request, from the arguments.
pub fn train_spec(a: &TrainArgs) -> models::TrainSpec {
    models::TrainSpec {
        family: match a.family {
            FamilyArg::Forest => Family::RandomForest,
            FamilyArg::Gbm => Family::GradientBoosting,
        },
        trees: a.trees,
        seed: a.seed,
        max_depth: a.max_depth,
        min_samples_split: a.min_samples_split,
        min_samples_leaf: a.min_samples_leaf,
        max_features: a.max_features.clone(),
        bootstrap: !a.no_bootstrap,
        learning_rate: a.learning_rate,
        folds: a.folds,
        test_fraction: a.test_fraction,
        interval: a.interval.clone(),
    }
}

/// `allonet model train`: trains, writes and reports a model.
pub fn run_train(a: &TrainArgs) -> Result<()> {
    let o = train_spec(a).options()?;
    let d = models::load_dataset(&a.data, Some(&a.target), a.features.clone())?;
    let progress = crate::output::Progress::new(!a.json);
    let (rows, features, folds) = (d.rows(), d.n_features(), o.folds);
    progress
        .stage(format!("training on {rows} rows × {features} features (held-out split, {folds} CV folds, final fit)"));
    let m = models::train(&d, &o, a.threads)?;
    progress.finish();
    let bytes = m.to_bytes();
    if let Some(p) = &a.out {
        write_atomic(p, &bytes)?;
    }
    let written = a.out.as_ref().map(|p| (p.display(), bytes.len()));
    print(a.json.then(|| show::trained_json(&m)), || show::trained(&m, a.data.display(), written))
}

/// `allonet model evaluate`: a model and data.
#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// Model file from `allonet model train`.
    #[arg(long)]
    pub model: PathBuf,
    /// CSV with the model's features (and, to evaluate, its target).
    #[arg(long)]
    pub data: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `allonet model evaluate`: scores a model on labelled data.
pub fn run_evaluate(a: &EvaluateArgs) -> Result<()> {
    let (mf, id) = models::load_model(&a.model)?;
    let e = models::evaluate(&mf, &a.data)?;
    print(a.json.then(|| Ok(show::evaluation_json(&id, &e))), || show::evaluation(&mf, &id, a.data.display(), &e))
}

/// `allonet model explain`.
#[derive(clap::Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    m: EvaluateArgs,
    /// Row to explain (1-based, as counted in the file's data rows).
    #[arg(long, default_value_t = 1)]
    pub row: usize,
}

/// `allonet model explain`: one prediction explained.
pub fn run_explain(a: &ExplainArgs) -> Result<()> {
    let (mf, id) = models::load_model(&a.m.model)?;
    let (e, features) = (models::explain_row(&mf, &a.m.data, a.row)?, &mf.schema.features);
    print(a.m.json.then(|| Ok(show::explanation_json(&id, features, a.row, &e))), || {
        show::explanation(&id, features, a.row, &e)
    })
}

/// `allonet model synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Past rounds.
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// Proposals per round.
    #[arg(long, default_value_t = 40)]
    pub per_round: usize,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// History CSV to write.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Also write this many new proposals (no amount) to --proposals-out.
    #[arg(long, default_value_t = 10)]
    pub new: usize,
    /// Where to write the new proposals.
    #[arg(long = "proposals")]
    pub proposals_out: Option<PathBuf>,
}

/// `allonet model synth`: writes a synthetic history and new proposals.
pub fn run_synth(a: &SynthArgs) -> Result<()> {
    let (n, csv) = models::synth_history(a.rounds, a.per_round, a.seed);
    write_atomic(&a.out, csv.as_bytes())?;
    println!("wrote {n} past proposals to {}", a.out.display());
    if let Some(p) = &a.proposals_out {
        let (n, csv) = models::synth_proposals(a.new, a.seed);
        write_atomic(p, csv.as_bytes())?;
        println!("wrote {n} new proposals to {}", p.display());
    }
    Ok(())
}

/// `allonet recommend`.
#[derive(clap::Args)]
pub struct RecommendArgs {
    /// Model file from `allonet model train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Proposals CSV with the model's feature columns.
    #[arg(long)]
    pub proposals: PathBuf,
    /// Interval percentiles LO,HI (default: the model's).
    #[arg(long, value_delimiter = ',')]
    pub interval: Option<Vec<f64>>,
    /// Reasons shown per proposal.
    #[arg(long, default_value_t = 3)]
    pub reasons: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Serve only the model version this governance database activated (refuse any other).
    #[arg(long, value_name = "DB")]
    pub gov_db: Option<PathBuf>,
}

/// `allonet recommend`: amounts, intervals and reasons from a (governed) model.
pub fn run_recommend(a: &RecommendArgs) -> Result<()> {
    let (mf, id) = models::load_served(&a.model, a.gov_db.as_deref())?;
    let (iv, recs) = models::recommend_file(&mf, &a.proposals, a.interval.as_deref(), a.reasons)?;
    let governed = format!("model {id} (a recommendation: governance decides)\n");
    print(a.json.then(|| Ok(show::recommendations_json(&id, iv, &recs))), || {
        show::recommendations(&recs, iv) + &governed
    })
}

/// `allonet bench forest`.
#[derive(clap::Args)]
pub struct ForestBenchArgs {
    /// Training CSV.
    #[arg(long)]
    pub train: PathBuf,
    /// Test CSV.
    #[arg(long)]
    pub test: PathBuf,
    /// Target column.
    #[arg(long, default_value = "y")]
    pub target: String,
    /// Trees.
    #[arg(long, default_value_t = 100)]
    pub trees: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Deepest tree level (default: unlimited, as scikit-learn).
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `allonet bench forest`: one timed forest fit.
pub fn run_forest_bench(a: &ForestBenchArgs) -> Result<()> {
    let b = models::forest_bench(&a.train, &a.test, &a.target, a.trees, a.seed, a.max_depth)?;
    print(a.json.then(|| Ok(show::forest_bench_json(&b))), || show::forest_bench(&b, a.trees))
}
