//! Optimism Retro Funding 4 reproduced from the 108 real ballots and the impact metrics in `examples/op-rf4`.

use allonet_core::{Table, Token, TokenAmount};
use allonet_mechanisms::retro::{metric_ballots_from_table, project_metrics_from_table, r4_metric_ballots, R4Params};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn example(name: &str) -> Table {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/op-rf4").join(name);
    Table::read(&p).unwrap()
}

#[test]
fn rf4_official_results_reproduce_within_one_op() {
    let ballots = metric_ballots_from_table(&example("rf4_ballots_export.csv")).unwrap();
    let projects = project_metrics_from_table(&example("rf4_impact_metrics_by_project.csv")).unwrap();
    assert_eq!(ballots.len(), 108);
    assert_eq!(projects.len(), 230);
    let op = Token::new("OP", 18);
    let budget = op.parse("10000000").unwrap();
    let (lines, alloc) = r4_metric_ballots(&projects, &ballots, &R4Params::default(), &op, budget).unwrap();

    let results = example("rf4_results.csv");
    let (ic, ac) = (results.column("Project_id").unwrap(), results.column("rf4_allocation").unwrap());
    let official: BTreeMap<String, f64> =
        results.rows().map(|r| (r.get(ic).to_string(), results.parse_f64(r, ac).unwrap())).collect();
    assert_eq!(official.len(), 230);

    let mut worst: f64 = 0.0;
    for p in &alloc.payouts {
        let ours = p.amount.to_f64_lossy() / 1e18;
        let theirs = official[&p.id];
        worst = worst.max((ours - theirs).abs());
        assert!((ours - theirs).abs() <= 1.0, "{}: ours {ours} vs official {theirs}", p.id);
    }
    // official figures are rounded to 0.1 OP, so agreement to 0.05 OP is as close as can be shown
    assert!(worst <= 0.05, "max difference {worst}");
    let total: TokenAmount = alloc.payouts.iter().map(|p| p.amount).sum();
    assert_eq!(total, budget, "payouts sum to exactly 10,000,000 OP in wei");
    assert_eq!(alloc.payouts.iter().filter(|p| !p.amount.is_zero()).count(), 207);
    assert_eq!(lines.iter().filter(|l| l.kept).count(), 207);
    let cap = op.parse("500000").unwrap();
    assert_eq!(alloc.payouts.iter().filter(|p| p.amount == cap).count(), 2, "Layer3 and Zora at the 5% cap");
}

#[test]
fn rf4_ballot_order_does_not_matter() {
    let mut ballots = metric_ballots_from_table(&example("rf4_ballots_export.csv")).unwrap();
    let projects = project_metrics_from_table(&example("rf4_impact_metrics_by_project.csv")).unwrap();
    let op = Token::new("OP", 18);
    let budget = op.parse("10000000").unwrap();
    let (_, a) = r4_metric_ballots(&projects, &ballots, &R4Params::default(), &op, budget).unwrap();
    ballots.reverse();
    let (_, b) = r4_metric_ballots(&projects, &ballots, &R4Params::default(), &op, budget).unwrap();
    assert_eq!(a, b);
}

#[test]
fn rf4_unknown_metric_is_refused() {
    let mut ballots = metric_ballots_from_table(&example("rf4_ballots_export.csv")).unwrap();
    ballots[0].weights.insert("vibes".into(), 5.0);
    let projects = project_metrics_from_table(&example("rf4_impact_metrics_by_project.csv")).unwrap();
    let op = Token::new("OP", 18);
    let e = r4_metric_ballots(&projects, &ballots, &R4Params::default(), &op, op.parse("1").unwrap()).unwrap_err();
    assert!(e.to_string().contains("`vibes`"), "{e}");
}
