//! Recommendation models as people read them: a training report, an evaluation, one prediction explained,
//! recommendations with their intervals and reasons, and a timed forest fit; as terminal text (every line
//! ending in a newline) and as the JSON `--json` prints.

use crate::{group_thousands, right, table};
use allonet_core::Digest;
use allonet_engine::models::{self, Evaluation, ForestBench, Recommendation, RowExplanation};
use allonet_ml::model::{ModelFile, TrainReport};
use serde::Serialize;
use serde_json::json;
use std::fmt::Display;

/// Lines joined, each ending in a newline.
fn text(lines: impl IntoIterator<Item = String>) -> String {
    lines.into_iter().map(|l| l + "\n").collect()
}

/// An optional score with four decimals, or `n/a`.
fn score(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into())
}

/// A feature value as short as it reads: whole numbers without decimals, others with at most three.
fn trim(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}").trim_end_matches('0').to_string()
    }
}

/// How good a trained model is: held-out R² and MAE beside a linear regression and the mean, the split,
/// out-of-bag and cross-validated R², the coverage of the `interval` (quantiles), and the 12 most important
/// features.
pub fn train_report(r: &TrainReport, interval: (f64, f64)) -> String {
    let mut t = table(&["model (held-out)", "R²", "MAE"]);
    let held_out = [
        ("model", &r.held_out.forest),
        ("linear regression", &r.held_out.linear),
        ("mean of training target", &r.held_out.mean),
    ];
    for (name, s) in held_out {
        t.add_row(vec![name.to_string(), format!("{:.4}", s.r2), group_thousands(&format!("{:.2}", s.mae))]);
    }
    right(&mut t, &[1, 2]);
    let cv = models::cv_summary(&r.cv_r2)
        .map(|(m, sd)| format!("{m:.4} ± {sd:.4} ({} folds)", r.cv_r2.len()))
        .unwrap_or_else(|| "n/a".to_string());
    let split = format!(
        "train {} rows / held out {} · OOB R² {} · CV R² {cv} · {:.0}–{:.0}% interval covers {} of held-out rows",
        r.n_train,
        r.n_test,
        score(r.oob_r2),
        interval.0 * 100.0,
        interval.1 * 100.0,
        r.interval_coverage.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "n/a".into()),
    );
    let mut imp = table(&["feature", "impurity importance", "permutation importance (ΔR²)"]);
    for i in models::ranked_importances(r).iter().take(12) {
        imp.add_row(vec![i.feature.clone(), format!("{:.4}", i.impurity), format!("{:.4}", i.permutation)]);
    }
    right(&mut imp, &[1, 2]);
    text([t.to_string(), split, imp.to_string()])
}

/// A trained model: family, training data (`data`, as the user named it), features and target, its
/// [`train_report`], training data digest and model id, and where it was `written` (name, bytes).
pub fn trained(m: &ModelFile, data: impl Display, written: Option<(impl Display, usize)>) -> String {
    let (features, target) = (m.schema.features.join(", "), &m.schema.target);
    let mut s = text([format!("{:?} on {data} · features: {features} · target: {target}", m.family)]);
    s += &train_report(&m.report, m.options.interval);
    let mut lines =
        vec![format!("training data digest {}", m.training_digest), format!("model id            {}", m.id())];
    lines.extend(written.map(|(name, bytes)| format!("model written to {name} ({bytes} bytes)")));
    s + &text(lines)
}

/// A trained model as indented JSON: its id and training report.
pub fn trained_json(m: &ModelFile) -> serde_json::Result<String> {
    #[derive(Serialize)]
    struct Out<'a> {
        model_id: String,
        report: &'a TrainReport,
    }
    serde_json::to_string_pretty(&Out { model_id: m.id().to_string(), report: &m.report })
}

/// A model (`mf`, id `id`) scored on labelled data (`data`, as named): R², MAE and interval coverage, and the
/// scores it had when trained.
pub fn evaluation(mf: &ModelFile, id: &Digest, data: impl Display, e: &Evaluation) -> String {
    let (lo, hi) = e.interval;
    text([
        format!("model {id} on {data} ({} rows)", e.rows),
        format!(
            "R² {:.4} · MAE {} · {:.0}–{:.0}% interval covers {}",
            e.r2,
            group_thousands(&format!("{:.2}", e.mae)),
            lo * 100.0,
            hi * 100.0,
            e.coverage.map(|c| format!("{:.1}% of rows", c * 100.0)).unwrap_or_else(|| "n/a".into())
        ),
        format!("as trained: held-out R² {:.4}, OOB R² {}", mf.report.held_out.forest.r2, score(mf.report.oob_r2)),
    ])
}

/// An evaluation as JSON on one line: model id, rows, R², MAE and interval coverage.
pub fn evaluation_json(id: &Digest, e: &Evaluation) -> String {
    json!({"model_id": id.to_string(), "rows": e.rows, "r2": e.r2, "mae": e.mae, "interval_coverage": e.coverage})
        .to_string()
}

/// One prediction explained (data row `row`, 1-based, of model `id` with `features`): the base value, each
/// feature's value and Shapley contribution (largest first), the prediction, and the additivity check.
pub fn explanation(id: &Digest, features: &[String], row: usize, e: &RowExplanation) -> String {
    let mut t = table(&["feature", "value", "contribution"]);
    t.add_row(vec!["(base: average prediction)".into(), String::new(), format!("{:.2}", e.base)]);
    for i in e.by_size() {
        t.add_row(vec![features[i].clone(), format!("{}", e.values[i]), format!("{:+.2}", e.contributions[i])]);
    }
    t.add_row(vec!["= prediction".into(), String::new(), format!("{:.2}", e.prediction)]);
    right(&mut t, &[1, 2]);
    text([
        format!("row {row} ({}) · model {id}", e.label),
        t.to_string(),
        format!("base + Σ contributions − prediction = {:.2e}", e.additivity_gap()),
    ])
}

/// An explanation as JSON on one line, with the features in schema order.
pub fn explanation_json(id: &Digest, features: &[String], row: usize, e: &RowExplanation) -> String {
    json!({"model_id": id.to_string(), "row": row, "label": e.label, "features": features, "values": e.values,
        "base": e.base, "contributions": e.contributions, "prediction": e.prediction})
    .to_string()
}

/// Recommendations: amount, interval (`iv`, quantiles) and reasons per proposal, then the base the reasons
/// start from.
pub fn recommendations(recs: &[Recommendation], iv: (f64, f64)) -> String {
    let g = |v: f64| group_thousands(&format!("{v:.0}"));
    let interval = format!("{:.0}–{:.0}% interval", iv.0 * 100.0, iv.1 * 100.0);
    let mut t = table(&["proposal", "recommended", &interval, "why (Shapley contributions vs the average)"]);
    for r in recs {
        let sign = |c: f64| if c >= 0.0 { "+" } else { "−" };
        let why: Vec<String> = r
            .reasons
            .iter()
            .map(|x| format!("{}={} {}{}", x.feature, trim(x.value), sign(x.contribution), g(x.contribution.abs())))
            .collect();
        let range = r.interval.map(|(l, h)| format!("{} – {}", g(l), g(h))).unwrap_or_else(|| "n/a".into());
        t.add_row(vec![r.proposal.clone(), g(r.amount), range, why.join("; ")]);
    }
    right(&mut t, &[1, 2]);
    let mut lines = vec![t.to_string()];
    if let Some(r) = recs.first() {
        lines.push(format!(
            "average recommendation (base) {}; each reason says how far that feature moves the amount from it",
            g(r.base)
        ));
    }
    text(lines)
}

/// Recommendations as indented JSON: model id, interval (quantiles) and every recommendation.
pub fn recommendations_json(id: &Digest, iv: (f64, f64), recs: &[Recommendation]) -> String {
    format!("{:#}", json!({"model_id": id.to_string(), "interval": [iv.0, iv.1], "recommendations": recs}))
}

/// A timed forest fit (`trees` trees): seconds to fit and predict, R², threads and the data's size.
pub fn forest_bench(b: &ForestBench, trees: usize) -> String {
    let (fit_s, predict_s, r2, threads) = (b.fit_s, b.predict_s, b.r2, b.threads);
    text([format!(
        "fit {fit_s:.3} s · predict {predict_s:.3} s · R² {r2:.5} · {threads} threads · {trees} trees on {} × {}",
        b.rows, b.features
    )])
}

/// A timed forest fit as JSON on one line: seconds to fit and predict, R² and threads.
pub fn forest_bench_json(b: &ForestBench) -> String {
    json!({"fit_s": b.fit_s, "predict_s": b.predict_s, "r2": b.r2, "threads": b.threads}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use allonet_engine::models::Reason;

    #[test]
    fn recommendations_read_with_reasons_and_explanations_add_up() {
        let reason = |feature: &str, value, contribution| Reason { feature: feature.into(), value, contribution };
        let recs = [Recommendation {
            proposal: "new-001".into(),
            amount: 1575.4,
            interval: Some((1186.0, 1938.2)),
            base: 2616.0,
            reasons: vec![reason("impact_score", 21.63, -1002.0), reason("votes", 50.0, 40.4)],
        }];
        let s = recommendations(&recs, (0.1, 0.9));
        assert!(
            s.contains("│ new-001  ┆       1,575 ┆   1,186 – 1,938 ┆ impact_score=21.63 −1,002; votes=50 +40 "),
            "{s}"
        );
        assert!(s.ends_with(
            "average recommendation (base) 2,616; each reason says how far that feature moves the amount from it\n"
        ));
        let j: serde_json::Value =
            serde_json::from_str(&recommendations_json(&Digest(alloy_primitives::B256::ZERO), (0.1, 0.9), &recs))
                .unwrap();
        assert_eq!(j["recommendations"][0]["amount"], 1575.4);
        let e = RowExplanation {
            label: "p1".into(),
            values: vec![3.0, 0.5],
            base: 10.0,
            contributions: vec![1.0, -2.5],
            prediction: 8.5,
        };
        let s = explanation(&Digest(alloy_primitives::B256::ZERO), &["a".into(), "b".into()], 1, &e);
        assert!(s.starts_with("row 1 (p1) · model 0x0000"), "{s}");
        assert!(s.contains("│ b                          ┆   0.5 ┆        -2.50 │"), "{s}");
        assert!(s.ends_with("base + Σ contributions − prediction = 0.00e0\n"), "{s}");
    }
}
