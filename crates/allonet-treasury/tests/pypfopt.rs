//! PyPortfolioOpt's published results on its own `stock_prices.csv` (MIT, copied with its license).

use allonet_core::Table;
use allonet_treasury::optim::{
    efficient_return, max_quadratic_utility, max_sharpe, min_volatility, performance, pypfopt_inputs, Inputs, Limits,
};
use std::path::PathBuf;

fn inputs() -> Inputs {
    let t = Table::read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/stock_prices.csv")).unwrap();
    let assets: Vec<String> = t.headers[1..].to_vec();
    let mut prices = vec![Vec::new(); assets.len()];
    for row in t.rows() {
        for (k, p) in prices.iter_mut().enumerate() {
            let s = row.get(k + 1);
            p.push(if s.is_empty() { f64::NAN } else { s.parse().unwrap() });
        }
    }
    pypfopt_inputs(&assets, &prices, 252.0)
}

fn close(got: (f64, f64, f64), want: (f64, f64, f64), what: &str) {
    for (g, w) in [(got.0, want.0), (got.1, want.1), (got.2, want.2)] {
        assert!(((g - w) / w).abs() < 1e-6, "{what}: got {got:?}, PyPortfolioOpt {want:?}");
    }
}

#[test]
fn reproduces_pypfopt_min_volatility_max_sharpe_efficient_return_and_utility() {
    let x = inputs();
    let up = Limits::upper(vec![1.0; x.mu.len()]);
    let w = min_volatility(&x, &up).unwrap();
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-8);
    close(performance(&x, &w, 0.02), (0.15056821399482578, 0.15915084514118694, 0.8204054077060996), "min volatility");
    let w = max_sharpe(&x, 0.02, &up).unwrap();
    close(performance(&x, &w, 0.02), (0.3047768672819914, 0.22165566922402932, 1.2847714127003216), "max Sharpe");
    let w = efficient_return(&x, 0.25, &up).unwrap();
    close(performance(&x, &w, 0.02), (0.25, 0.18723269942026335, 1.2284179030274036), "efficient return 0.25");
    let w = max_quadratic_utility(&x, 2.0, &up).unwrap();
    close(
        performance(&x, &w, 0.02),
        (0.3677732711751504, 0.2921342197778279, 1.1904571516463793),
        "max quadratic utility 2",
    );
}

#[test]
fn hierarchical_risk_parity_matches_pypfopt_weights() {
    use allonet_treasury::optim::{hrp, pairwise_corr, pairwise_cov};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let t = Table::read(&dir.join("stock_prices.csv")).unwrap();
    let assets: Vec<String> = t.headers[1..].to_vec();
    let mut prices = vec![Vec::new(); assets.len()];
    for row in t.rows() {
        for (k, p) in prices.iter_mut().enumerate() {
            let s = row.get(k + 1);
            p.push(if s.is_empty() { f64::NAN } else { s.parse().unwrap() });
        }
    }
    let r: Vec<Vec<f64>> = prices.iter().map(|p| p.windows(2).map(|w| w[1] / w[0] - 1.0).collect()).collect();
    let w = hrp(&pairwise_cov(&r), &pairwise_corr(&r));
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let expected = Table::read(&dir.join("weights_hrp.csv")).unwrap();
    let mut checked = 0;
    for row in expected.rows() {
        let (name, want): (&str, f64) = (row.get(0), row.get(1).parse().unwrap());
        let i = assets.iter().position(|a| a == name).unwrap();
        assert!((w[i] - want).abs() < 1e-2, "{name}: {} vs {want}", w[i]);
        checked += 1;
    }
    assert_eq!(checked, 20);
}

#[test]
fn efficient_risk_min_cvar_and_risk_parity_behave() {
    use allonet_treasury::optim::{efficient_risk, min_cvar, risk_parity};
    let x = inputs();
    let up = Limits::upper(vec![1.0; x.mu.len()]);
    // at the min-volatility portfolio's risk, efficient risk cannot beat it on volatility, and it returns at least as much
    let (mr, mv, _) = performance(&x, &min_volatility(&x, &up).unwrap(), 0.02);
    let w = efficient_risk(&x, 0.2, &up).unwrap();
    let (r, v, _) = performance(&x, &w, 0.02);
    assert!(v <= 0.2 + 1e-6 && r > mr && v > mv, "{r} {v}");
    // max Sharpe's volatility gives back max Sharpe's return (the frontier is consistent)
    let (sr, sv, _) = performance(&x, &max_sharpe(&x, 0.02, &up).unwrap(), 0.02);
    let (r2, _, _) = performance(&x, &efficient_risk(&x, sv, &up).unwrap(), 0.02);
    assert!((r2 - sr).abs() < 1e-5, "{r2} vs {sr}");
    // risk parity: equal risk contributions
    let w = risk_parity(&x.cov);
    let sw: Vec<f64> = (0..w.len()).map(|i| (0..w.len()).map(|j| x.cov[i][j] * w[j]).sum::<f64>() * w[i]).collect();
    let m = sw.iter().sum::<f64>() / sw.len() as f64;
    assert!(sw.iter().all(|c| (c - m).abs() < 1e-10 * m.max(1e-12) + 1e-14), "{sw:?}");
    // min CVaR on scenarios where asset 0 never loses: all weight there
    let scen: Vec<Vec<f64>> = (0..200).map(|t| vec![0.001, if t % 10 == 0 { -0.2 } else { 0.02 }]).collect();
    let w = min_cvar(&scen, 0.95, &Limits::upper(vec![1.0, 1.0])).unwrap();
    // a minimum share for asset 1 forces it in
    let lim = Limits { upper: vec![1.0, 1.0], min_groups: vec![(vec![false, true], 0.3)] };
    let w2 = min_cvar(&scen, 0.95, &lim).unwrap();
    assert!((w2[1] - 0.3).abs() < 1e-6, "{w2:?}");
    let ms = max_sharpe(
        &x,
        0.02,
        &Limits { upper: vec![1.0; x.mu.len()], min_groups: vec![((0..x.mu.len()).map(|i| i == 0).collect(), 0.2)] },
    )
    .unwrap();
    assert!(ms[0] >= 0.2 - 1e-7, "{}", ms[0]);
    assert!((w[0] - 1.0).abs() < 1e-6, "{w:?}");
}
