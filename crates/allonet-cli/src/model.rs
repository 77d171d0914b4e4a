//! `allonet model …` and `allonet recommend`: train, evaluate, explain, recommend.

use crate::output::{right, table, write_atomic};
use allonet_core::Table;
use allonet_ml::data::{dataset_from_table, r2, Dataset, ReadSpec};
use allonet_ml::forest::{parse_max_features, ForestParams};
use allonet_ml::model::{train, Explanation, Family, GbmParams, ModelFile, TrainOptions, TrainReport};
use allonet_ml::synth;
use allonet_ml::tree::TreeParams;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

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

fn interval(v: &[f64]) -> Result<(f64, f64)> {
    match v {
        [lo, hi] if 0.0 <= *lo && lo < hi && *hi <= 100.0 => Ok((lo / 100.0, hi / 100.0)),
        _ => bail!("--interval takes two percentiles LO,HI with 0 <= LO < HI <= 100, e.g. 10,90"),
    }
}

pub fn train_options(a: &TrainArgs) -> Result<TrainOptions> {
    let max_features = parse_max_features(&a.max_features).map_err(anyhow::Error::msg)?;
    Ok(TrainOptions {
        family: match a.family {
            FamilyArg::Forest => Family::RandomForest,
            FamilyArg::Gbm => Family::GradientBoosting,
        },
        forest: ForestParams {
            n_trees: a.trees,
            tree: TreeParams {
                max_depth: a.max_depth,
                min_samples_split: a.min_samples_split,
                min_samples_leaf: a.min_samples_leaf,
                max_features,
            },
            bootstrap: !a.no_bootstrap,
            seed: a.seed,
            keep_leaf_members: false,
            oob: true,
        },
        gbm: GbmParams {
            iterations: a.trees.max(1) * 3,
            learning_rate: a.learning_rate,
            max_depth: a.max_depth.unwrap_or(4),
            seed: a.seed,
            ..GbmParams::default()
        },
        test_fraction: a.test_fraction,
        folds: a.folds,
        interval: interval(&a.interval)?,
        ..TrainOptions::default()
    })
}

pub fn load_dataset(path: &Path, target: Option<&str>, features: Option<Vec<String>>) -> Result<Dataset> {
    let t = Table::read(path)?;
    Ok(dataset_from_table(&t, &ReadSpec { target: target.map(String::from), features })?)
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
    let cv = if r.cv_r2.is_empty() {
        "n/a".to_string()
    } else {
        let m = r.cv_r2.iter().sum::<f64>() / r.cv_r2.len() as f64;
        let sd = (r.cv_r2.iter().map(|v| (v - m).powi(2)).sum::<f64>() / r.cv_r2.len() as f64).sqrt();
        format!("{m:.4} ± {sd:.4} ({} folds)", r.cv_r2.len())
    };
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
    let mut imp: Vec<_> = r.importances.iter().collect();
    imp.sort_by(|a, b| b.permutation.total_cmp(&a.permutation));
    let mut t = table(&["feature", "impurity importance", "permutation importance (ΔR²)"]);
    for i in imp.iter().take(12) {
        t.add_row(vec![i.feature.clone(), format!("{:.4}", i.impurity), format!("{:.4}", i.permutation)]);
    }
    right(&mut t, &[1, 2]);
    println!("{t}");
}

pub fn run_train(a: &TrainArgs) -> Result<()> {
    let o = train_options(a)?;
    let d = load_dataset(&a.data, Some(&a.target), a.features.clone())?;
    let progress = crate::output::Progress::new(!a.json);
    progress.stage(format!(
        "training on {} rows × {} features (held-out split, {} CV folds, final fit)",
        d.rows(),
        d.n_features(),
        o.folds
    ));
    let m = train(&d, &o, a.threads)?;
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

pub fn load_model(path: &Path) -> Result<(ModelFile, allonet_core::Digest)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(ModelFile::from_bytes(&path.display().to_string(), &bytes)?)
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
    let (mf, id) = load_model(&a.model)?;
    let d = mf.dataset(&Table::read(&a.data)?, true)?;
    let model = mf.model()?;
    let pred = model.predict(&d);
    let (lo, hi) = mf.options.interval;
    let coverage = model
        .intervals(&d, lo, hi)
        .map(|iv| iv.iter().zip(&d.y).filter(|((l, h), y)| **y >= *l && **y <= *h).count() as f64 / d.rows() as f64);
    let r2v = r2(&d.y, &pred);
    let maev = allonet_ml::data::mae(&d.y, &pred);
    if a.json {
        println!(
            "{}",
            serde_json::json!({"model_id": id.to_string(), "rows": d.rows(), "r2": r2v, "mae": maev, "interval_coverage": coverage})
        );
        return Ok(());
    }
    println!("model {id} on {} ({} rows)", a.data.display(), d.rows());
    println!(
        "R² {r2v:.4} · MAE {} · {:.0}–{:.0}% interval covers {}",
        crate::output::group_thousands(&format!("{maev:.2}")),
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
    let (mf, id) = load_model(&a.model)?;
    let d = mf.dataset(&Table::read(&a.data)?, false)?;
    if a.row == 0 || a.row > d.rows() {
        bail!("--row {} is outside 1..{} (the data rows of {})", a.row, d.rows(), a.data.display());
    }
    let one = d.subset(&[a.row - 1]);
    let model = mf.model()?;
    let e = model.explain(&one).remove(0);
    if a.json {
        println!(
            "{}",
            serde_json::json!({"model_id": id.to_string(), "row": a.row, "label": one.labels[0], "features": mf.schema.features, "values": one.row(0), "base": e.base, "contributions": e.contributions, "prediction": e.prediction})
        );
        return Ok(());
    }
    println!("row {} ({}) · model {id}", a.row, one.labels[0]);
    let mut order: Vec<usize> = (0..e.contributions.len()).collect();
    order.sort_by(|&x, &y| e.contributions[y].abs().total_cmp(&e.contributions[x].abs()));
    let mut t = table(&["feature", "value", "contribution"]);
    t.add_row(vec!["(base: average prediction)".into(), String::new(), format!("{:.2}", e.base)]);
    for i in order {
        t.add_row(vec![
            mf.schema.features[i].clone(),
            format!("{}", one.x[i][0]),
            format!("{:+.2}", e.contributions[i]),
        ]);
    }
    t.add_row(vec!["= prediction".into(), String::new(), format!("{:.2}", e.prediction)]);
    right(&mut t, &[1, 2]);
    println!("{t}");
    let gap = e.base + e.contributions.iter().sum::<f64>() - e.prediction;
    println!("base + Σ contributions − prediction = {gap:.2e}");
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
    let h = synth::history(a.rounds, a.per_round, a.seed);
    write_atomic(&a.out, synth::to_csv(&h).as_bytes())?;
    println!("wrote {} past proposals to {}", h.len(), a.out.display());
    if let Some(p) = &a.proposals_out {
        let n = synth::proposals(a.new, a.seed);
        write_atomic(p, synth::to_csv(&n).as_bytes())?;
        println!("wrote {} new proposals to {}", n.len(), p.display());
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

/// One recommendation.
#[derive(Serialize, Clone, Debug)]
pub struct Recommendation {
    pub proposal: String,
    pub amount: f64,
    pub interval: Option<(f64, f64)>,
    pub base: f64,
    pub reasons: Vec<Reason>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Reason {
    pub feature: String,
    pub value: f64,
    pub contribution: f64,
}

pub fn recommend(mf: &ModelFile, d: &Dataset, iv: (f64, f64), n_reasons: usize) -> Result<Vec<Recommendation>> {
    let model = mf.model()?;
    let ex: Vec<Explanation> = model.explain(d);
    let ints = model.intervals(d, iv.0, iv.1);
    Ok(ex
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let mut order: Vec<usize> = (0..e.contributions.len()).collect();
            order.sort_by(|&x, &y| e.contributions[y].abs().total_cmp(&e.contributions[x].abs()));
            Recommendation {
                proposal: d.labels[i].clone(),
                amount: e.prediction,
                interval: ints.as_ref().map(|v| v[i]),
                base: e.base,
                reasons: order
                    .into_iter()
                    .take(n_reasons)
                    .map(|f| Reason {
                        feature: mf.schema.features[f].clone(),
                        value: d.x[f][i],
                        contribution: e.contributions[f],
                    })
                    .collect(),
            }
        })
        .collect())
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
    let (mf, id) = load_model(&a.model)?;
    if let Some(db) = &a.gov_db {
        if !db.exists() {
            bail!("{} does not exist", db.display());
        }
        let store = allonet_store::Store::open(db)?;
        let reg = &store.governor().registry;
        if reg.paused {
            bail!("governance has paused the agent (kill switch); no recommendations are served");
        }
        match reg.active_model() {
            Some(active) if active == id.0 => {}
            Some(active) => {
                bail!("model {id} is not the version governance activated ({active}); propose `activate-model:{id}`")
            }
            None => bail!("governance has activated no model yet; propose `activate-model:{id}`"),
        }
    }
    let d = mf.dataset(&Table::read(&a.proposals)?, false)?;
    let iv = match &a.interval {
        Some(v) => interval(v)?,
        None => mf.options.interval,
    };
    let recs = recommend(&mf, &d, iv, a.reasons)?;
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
    let tr = load_dataset(&a.train, Some(&a.target), None)?;
    let te = load_dataset(&a.test, Some(&a.target), None)?;
    // as scikit-learn's defaults: no OOB score, no leaf membership
    let mut p =
        ForestParams { n_trees: a.trees, seed: a.seed, keep_leaf_members: false, oob: false, ..Default::default() };
    p.tree.max_depth = a.max_depth;
    let t0 = std::time::Instant::now();
    let f = allonet_ml::forest::Forest::fit(&tr, &p, None)?;
    let fit_s = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let pred = f.predict(&te);
    let predict_s = t1.elapsed().as_secs_f64();
    let r2v = r2(&te.y, &pred);
    let threads = rayon::current_num_threads();
    if a.json {
        println!("{}", serde_json::json!({"fit_s": fit_s, "predict_s": predict_s, "r2": r2v, "threads": threads}));
    } else {
        println!(
            "fit {fit_s:.3} s · predict {predict_s:.3} s · R² {r2v:.5} · {threads} threads · {} trees on {} × {}",
            a.trees,
            tr.rows(),
            tr.n_features()
        );
    }
    Ok(())
}
