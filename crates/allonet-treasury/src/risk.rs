//! Price histories and risk: returns, volatility, covariance (sample and Ledoit–Wolf), correlation,
//! historical and parametric VaR / CVaR, maximum drawdown.

use allonet_core::{InputError, Table};
use serde::{Deserialize, Serialize};

/// Aligned daily prices: one date column, one column per asset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    /// Dates (ISO, strictly increasing).
    pub dates: Vec<String>,
    /// Asset names.
    pub assets: Vec<String>,
    /// `prices[a][t]`.
    pub prices: Vec<Vec<f64>>,
}

/// Reads a wide price CSV (`date`, then one column per asset). Refuses gaps (empty cells), non-positive
/// prices and dates that are not strictly increasing (misaligned or duplicated rows).
pub fn prices_from_table(t: &Table) -> Result<Prices, InputError> {
    let dc = t.require_one_of(&["date", "Date", "timestamp"], "date")?;
    let cols: Vec<usize> = (0..t.headers.len()).filter(|&c| c != dc).collect();
    if cols.is_empty() {
        return Err(t.header_error("no asset columns"));
    }
    let mut dates: Vec<String> = Vec::with_capacity(t.len());
    let mut prices = vec![Vec::with_capacity(t.len()); cols.len()];
    for row in t.rows() {
        let d = row.get(dc).to_string();
        if let Some(last) = dates.last() {
            if d.as_str() <= last.as_str() {
                return Err(t.error(
                    row,
                    dc,
                    format!("date {d} does not come after {last}; rows must be aligned and in order"),
                ));
            }
        }
        for (k, &c) in cols.iter().enumerate() {
            if row.get(c).is_empty() {
                return Err(t.error(row, c, format!("gap: no price on {d}")));
            }
            let p = t.parse_f64(row, c)?;
            if p <= 0.0 {
                return Err(t.error(row, c, format!("price {p} is not positive")));
            }
            prices[k].push(p);
        }
        dates.push(d);
    }
    if dates.len() < 3 {
        return Err(InputError::file(&t.file, "need at least 3 dates of prices"));
    }
    Ok(Prices { dates, assets: cols.iter().map(|&c| t.headers[c].clone()).collect(), prices })
}

/// Simple returns per asset: r_t = p_t / p_{t−1} − 1.
pub fn returns(p: &Prices) -> Vec<Vec<f64>> {
    p.prices.iter().map(|s| s.windows(2).map(|w| w[1] / w[0] - 1.0).collect()).collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample covariance matrix (n − 1 denominator) of return series.
pub fn sample_cov(r: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let k = r.len();
    let n = r[0].len();
    let m: Vec<f64> = r.iter().map(|x| mean(x)).collect();
    (0..k)
        .map(|i| {
            (0..k)
                .map(|j| (0..n).map(|t| (r[i][t] - m[i]) * (r[j][t] - m[j])).sum::<f64>() / (n as f64 - 1.0))
                .collect()
        })
        .collect()
}

/// Ledoit–Wolf shrinkage of the covariance towards a scaled identity: Σ = δ·μI + (1 − δ)·S, with δ from
/// Ledoit & Wolf, "A well-conditioned estimator for large-dimensional covariance matrices", J. Multivariate
/// Analysis 88 (2004). Returns (Σ, δ).
#[allow(clippy::needless_range_loop)] // the estimator reads as written in the paper
pub fn ledoit_wolf(r: &[Vec<f64>]) -> (Vec<Vec<f64>>, f64) {
    let k = r.len();
    let n = r[0].len() as f64;
    let m: Vec<f64> = r.iter().map(|x| mean(x)).collect();
    let x: Vec<Vec<f64>> = r.iter().zip(&m).map(|(s, mu)| s.iter().map(|v| v - mu).collect()).collect();
    // the estimator uses the 1/n covariance
    let s: Vec<Vec<f64>> =
        (0..k).map(|i| (0..k).map(|j| x[i].iter().zip(&x[j]).map(|(a, b)| a * b).sum::<f64>() / n).collect()).collect();
    let mu = (0..k).map(|i| s[i][i]).sum::<f64>() / k as f64;
    let d2: f64 = (0..k)
        .flat_map(|i| (0..k).map(move |j| (i, j)))
        .map(|(i, j)| (s[i][j] - if i == j { mu } else { 0.0 }).powi(2))
        .sum::<f64>()
        / k as f64;
    let mut b2 = 0.0;
    for t in 0..r[0].len() {
        let mut acc = 0.0;
        for i in 0..k {
            for j in 0..k {
                acc += (x[i][t] * x[j][t] - s[i][j]).powi(2);
            }
        }
        b2 += acc / k as f64;
    }
    b2 /= n * n;
    let b2 = b2.min(d2);
    let delta = if d2 > 0.0 { b2 / d2 } else { 0.0 };
    let sigma = (0..k)
        .map(|i| (0..k).map(|j| delta * if i == j { mu } else { 0.0 } + (1.0 - delta) * s[i][j]).collect())
        .collect();
    (sigma, delta)
}

/// Correlation matrix from a covariance matrix.
pub fn correlation(cov: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let k = cov.len();
    (0..k).map(|i| (0..k).map(|j| cov[i][j] / (cov[i][i] * cov[j][j]).sqrt()).collect()).collect()
}

/// Historical VaR and CVaR at level `alpha` (e.g. 0.95) of a return series, as positive losses.
pub fn historical_var_cvar(r: &[f64], alpha: f64) -> (f64, f64) {
    let mut s = r.to_vec();
    s.sort_by(f64::total_cmp);
    let k = (((1.0 - alpha) * s.len() as f64).floor() as usize).max(1);
    let var = -s[k - 1];
    let cvar = -mean(&s[..k]);
    (var, cvar)
}

/// Parametric (normal) VaR and CVaR at level `alpha`, as positive losses.
pub fn parametric_var_cvar(r: &[f64], alpha: f64) -> (f64, f64) {
    let m = mean(r);
    let sd = (r.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (r.len() as f64 - 1.0)).sqrt();
    let z = inverse_normal(alpha);
    let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (-(m - z * sd), -(m - sd * pdf / (1.0 - alpha)))
}

/// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
#[allow(clippy::excessive_precision)] // the published coefficients, as published
pub fn inverse_normal(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -inverse_normal(1.0 - p)
    }
}

/// Maximum drawdown of a value series: the largest fall from a running peak, as a positive share.
pub fn max_drawdown(values: &[f64]) -> f64 {
    let mut peak = f64::NEG_INFINITY;
    let mut worst: f64 = 0.0;
    for &v in values {
        peak = peak.max(v);
        worst = worst.max(1.0 - v / peak);
    }
    worst
}

/// A portfolio's daily returns for fixed weights (rebalanced daily).
pub fn portfolio_returns(r: &[Vec<f64>], w: &[f64]) -> Vec<f64> {
    (0..r[0].len()).map(|t| r.iter().zip(w).map(|(s, wi)| s[t] * wi).sum()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_price_files_are_refused_by_place() {
        let e = prices_from_table(
            &Table::from_bytes("p.csv", b"date,ETH\n2024-01-01,100\n2024-01-02,\n2024-01-03,90\n").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "p.csv:3: column `ETH`: gap: no price on 2024-01-02");
        let e = prices_from_table(
            &Table::from_bytes("p.csv", b"date,ETH\n2024-01-01,100\n2024-01-02,0\n2024-01-03,90\n").unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not positive"));
        let e = prices_from_table(
            &Table::from_bytes("p.csv", b"date,ETH\n2024-01-02,100\n2024-01-01,99\n2024-01-03,90\n").unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not come after"), "{e}");
    }

    #[test]
    fn risk_measures_by_hand() {
        assert!((max_drawdown(&[100.0, 120.0, 60.0, 130.0, 65.0]) - 0.5).abs() < 1e-12);
        let r: Vec<f64> = (0..100).map(|i| (i as f64 - 49.5) / 1000.0).collect();
        let (var, cvar) = historical_var_cvar(&r, 0.95);
        assert!((var - 0.0455).abs() < 1e-12 && (cvar - 0.0475).abs() < 1e-12, "{var} {cvar}");
        assert!((inverse_normal(0.975) - 1.959963984540054).abs() < 1e-8);
        let (lw, delta) = ledoit_wolf(&[r.clone(), r.iter().map(|v| v * 0.5 + 0.001).collect()]);
        assert!((0.0..=1.0).contains(&delta) && lw[0][1] > 0.0);
    }
}
