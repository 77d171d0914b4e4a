//! PyPortfolioOpt's published results on its own `stock_prices.csv` (MIT, copied with its license).

use allonet_core::Table;
use allonet_treasury::optim::{
    efficient_return, max_quadratic_utility, max_sharpe, min_volatility, performance, pypfopt_inputs, Inputs,
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
    let up = vec![1.0; x.mu.len()];
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
