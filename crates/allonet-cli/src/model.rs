//! `allonet model …` and `allonet recommend`: train, evaluate, explain, recommend.

use crate::output::{right, table, write_atomic};
use allonet_engine::models::{self, Recommendation};
use allonet_ml::model::{Family, TrainReport};
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

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

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FamilyArg {
    /// Random forest (CART trees, scikit-learn defaults).
    Forest,
    /// Gradient boosting (forust-ml).
    Gbm,
}

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

pub fn print_report(r: &TrainReport, interval: (f64, f64)) {
    let mut t = table(&["model (held-out)", "R²", "MAE"]);
    for (name, s) in [
        ("model", &r.held_out.forest),
        ("linear regression", &r.held_out.linear),
        ("mean of training target", &r.held_out.mean),
    ] {
        t.add_row(vec![
            name.to_string(),
            format!("{:.4}", s.r2),
            crate::output::group_thousands(&format!("{:.2}", s.mae)),
        ]);
    }
    right(&mut t, &[1, 2]);
    println!("{t}");
    let cv = models::cv_summary(&r.cv_r2)
        .map(|(m, sd)| format!("{m:.4} ± {sd:.4} ({} folds)", r.cv_r2.len()))
        .unwrap_or_else(|| "n/a".to_string());
    println!(
        "train {} rows / held out {} · OOB R² {} · CV R² {} · {:.0}–{:.0}% interval covers {} of held-out rows",
        r.n_train,
        r.n_test,
        r.oob_r2.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into()),
        cv,
        interval.0 * 100.0,
        interval.1 * 100.0,
        r.interval_coverage.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "n/a".into()),
    );
    let imp = models::ranked_importances(r);
    let mut t = table(&["feature", "impurity importance", "permutation importance (ΔR²)"]);
    for i in imp.iter().take(12) {
        t.add_row(vec![i.feature.clone(), format!("{:.4}", i.impurity), format!("{:.4}", i.permutation)]);
    }
    right(&mut t, &[1, 2]);
    println!("{t}");
}

pub fn run_train(a: &TrainArgs) -> Result<()> {
    let o = train_spec(a).options()?;
    let d = models::load_dataset(&a.data, Some(&a.target), a.features.clone())?;
    let progress = crate::output::Progress::new(!a.json);
    progress.stage(format!(
        "training on {} rows × {} features (held-out split, {} CV folds, final fit)",
        d.rows(),
        d.n_features(),
        o.folds
    ));
    let m = models::train(&d, &o, a.threads)?;
    progress.finish();
    let bytes = m.to_bytes();
    if let Some(p) = &a.out {
        write_atomic(p, &bytes)?;
    }
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            model_id: String,
            report: &'a TrainReport,
        }
        println!("{}", serde_json::to_string_pretty(&Out { model_id: m.id().to_string(), report: &m.report })?);
        return Ok(());
    }
    println!(
        "{:?} on {} · features: {} · target: {}",
        m.family,
        a.data.display(),
        m.schema.features.join(", "),
        m.schema.target
    );
    print_report(&m.report, o.interval);
    println!("training data digest {}", m.training_digest);
    println!("model id            {}", m.id());
    if let Some(p) = &a.out {
        println!("model written to {} ({} bytes)", p.display(), bytes.len());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// Model file from `allonet model train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled CSV with the model's features and target.
    #[arg(long)]
    pub data: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run_evaluate(a: &EvaluateArgs) -> Result<()> {
    let (mf, id) = models::load_model(&a.model)?;
    let e = models::evaluate(&mf, &a.data)?;
    let ((lo, hi), coverage) = (e.interval, e.coverage);
    if a.json {
        println!(
            "{}",
            serde_json::json!({"model_id": id.to_string(), "rows": e.rows, "r2": e.r2, "mae": e.mae, "interval_coverage": coverage})
        );
        return Ok(());
    }
    println!("model {id} on {} ({} rows)", a.data.display(), e.rows);
    println!(
        "R² {:.4} · MAE {} · {:.0}–{:.0}% interval covers {}",
        e.r2,
        crate::output::group_thousands(&format!("{:.2}", e.mae)),
        lo * 100.0,
        hi * 100.0,
        coverage.map(|c| format!("{:.1}% of rows", c * 100.0)).unwrap_or_else(|| "n/a".into())
    );
    println!(
        "as trained: held-out R² {:.4}, OOB R² {}",
        mf.report.held_out.forest.r2,
        mf.report.oob_r2.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into())
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// Model file.
    #[arg(long)]
    pub model: PathBuf,
    /// CSV with the model's features.
    #[arg(long)]
    pub data: PathBuf,
    /// Row to explain (1-based, as counted in the file's data rows).
    #[arg(long, default_value_t = 1)]
    pub row: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run_explain(a: &ExplainArgs) -> Result<()> {
    let (mf, id) = models::load_model(&a.model)?;
    let e = models::explain_row(&mf, &a.data, a.row)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"model_id": id.to_string(), "row": a.row, "label": e.label, "features": mf.schema.features, "values": e.values, "base": e.base, "contributions": e.contributions, "prediction": e.prediction})
        );
        return Ok(());
    }
    println!("row {} ({}) · model {id}", a.row, e.label);
    let mut t = table(&["feature", "value", "contribution"]);
    t.add_row(vec!["(base: average prediction)".into(), String::new(), format!("{:.2}", e.base)]);
    for i in e.by_size() {
        t.add_row(vec![
            mf.schema.features[i].clone(),
            format!("{}", e.values[i]),
            format!("{:+.2}", e.contributions[i]),
        ]);
    }
    t.add_row(vec!["= prediction".into(), String::new(), format!("{:.2}", e.prediction)]);
    right(&mut t, &[1, 2]);
    println!("{t}");
    println!("base + Σ contributions − prediction = {:.2e}", e.additivity_gap());
    Ok(())
}

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
    /// Serve only the model version governance activated: refuse unless the model's id is the active
    /// model of this governance database.
    #[arg(long, value_name = "DB")]
    pub gov_db: Option<PathBuf>,
}

pub fn print_recommendations(recs: &[Recommendation], iv: (f64, f64)) {
    let g = |v: f64| crate::output::group_thousands(&format!("{v:.0}"));
    let mut t = table(&[
        "proposal",
        "recommended",
        &format!("{:.0}–{:.0}% interval", iv.0 * 100.0, iv.1 * 100.0),
        "why (Shapley contributions vs the average)",
    ]);
    for r in recs {
        let why = r
            .reasons
            .iter()
            .map(|x| {
                format!(
                    "{}={} {}{}",
                    x.feature,
                    trim(x.value),
                    if x.contribution >= 0.0 { "+" } else { "−" },
                    g(x.contribution.abs())
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        t.add_row(vec![
            r.proposal.clone(),
            g(r.amount),
            r.interval.map(|(l, h)| format!("{} – {}", g(l), g(h))).unwrap_or_else(|| "n/a".into()),
            why,
        ]);
    }
    right(&mut t, &[1, 2]);
    println!("{t}");
    if let Some(r) = recs.first() {
        println!(
            "average recommendation (base) {}; each reason says how far that feature moves the amount from it",
            g(r.base)
        );
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}").trim_end_matches('0').to_string()
    }
}

pub fn run_recommend(a: &RecommendArgs) -> Result<()> {
    let (mf, id) = models::load_served(&a.model, a.gov_db.as_deref())?;
    let (iv, recs) = models::recommend_file(&mf, &a.proposals, a.interval.as_deref(), a.reasons)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"model_id": id.to_string(), "interval": [iv.0, iv.1], "recommendations": recs})
            )?
        );
        return Ok(());
    }
    print_recommendations(&recs, iv);
    println!("model {id} (a recommendation: governance decides)");
    Ok(())
}

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

pub fn run_forest_bench(a: &ForestBenchArgs) -> Result<()> {
    let b = models::forest_bench(&a.train, &a.test, &a.target, a.trees, a.seed, a.max_depth)?;
    let (fit_s, predict_s, r2v, threads) = (b.fit_s, b.predict_s, b.r2, b.threads);
    if a.json {
        println!("{}", serde_json::json!({"fit_s": fit_s, "predict_s": predict_s, "r2": r2v, "threads": threads}));
    } else {
        println!(
            "fit {fit_s:.3} s · predict {predict_s:.3} s · R² {r2v:.5} · {threads} threads · {} trees on {} × {}",
            a.trees, b.rows, b.features
        );
    }
    Ok(())
}
