//! Datasets: a numeric feature matrix (column-major) and a target, read from CSV with located errors.

use allonet_core::{digest, Digest, InputError, Table};
use serde::{Deserialize, Serialize};

/// A regression dataset: `x[f][i]` is feature `f` of row `i`; `y[i]` the target (empty when unlabelled).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Feature names, in column order.
    pub features: Vec<String>,
    /// Target name.
    pub target: String,
    /// Column-major features.
    pub x: Vec<Vec<f64>>,
    /// Target values (empty when the data has no target column).
    pub y: Vec<f64>,
    /// Row labels (an id or name column when present, else the row number), for reports.
    pub labels: Vec<String>,
}

impl Dataset {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.x.first().map(|c| c.len()).unwrap_or(self.y.len())
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.x.len()
    }

    /// Row `i` as a vector.
    pub fn row(&self, i: usize) -> Vec<f64> {
        self.x.iter().map(|c| c[i]).collect()
    }

    /// A subset of rows, in the given order.
    pub fn subset(&self, rows: &[usize]) -> Dataset {
        Dataset {
            features: self.features.clone(),
            target: self.target.clone(),
            x: self.x.iter().map(|c| rows.iter().map(|&i| c[i]).collect()).collect(),
            y: if self.y.is_empty() { Vec::new() } else { rows.iter().map(|&i| self.y[i]).collect() },
            labels: rows.iter().map(|&i| self.labels[i].clone()).collect(),
        }
    }

    /// keccak-256 of the canonical dataset (names, values); identifies training data in model files.
    pub fn digest(&self) -> Digest {
        digest(&(&self.features, &self.target, &self.x, &self.y))
    }
}

fn parse_feature(t: &Table, row: allonet_core::input::Row<'_>, col: usize) -> Result<f64, InputError> {
    match row.get(col).to_ascii_lowercase().as_str() {
        "true" => Ok(1.0),
        "false" => Ok(0.0),
        _ => t.parse_f64(row, col),
    }
}

fn is_numeric(s: &str) -> bool {
    let l = s.trim().to_ascii_lowercase();
    l == "true" || l == "false" || l.parse::<f64>().map(|v| v.is_finite()).unwrap_or(false)
}

/// What to read from a table.
#[derive(Clone, Debug, Default)]
pub struct ReadSpec {
    /// Target column; `None` reads features only (proposals to score).
    pub target: Option<String>,
    /// Feature columns; `None` takes every column whose first value is numeric, except the target.
    pub features: Option<Vec<String>>,
}

/// Reads a dataset. Every chosen feature and the target must be a finite number (or true/false) on
/// every row; the error names file, line and column.
pub fn dataset_from_table(t: &Table, spec: &ReadSpec) -> Result<Dataset, InputError> {
    let target_col = match &spec.target {
        Some(name) => Some(t.column(name)?),
        None => None,
    };
    let feature_cols: Vec<usize> = match &spec.features {
        Some(names) => names.iter().map(|n| t.column(n)).collect::<Result<_, _>>()?,
        None => {
            let first = t.rows().next().expect("tables have rows");
            (0..t.headers.len()).filter(|&c| Some(c) != target_col && is_numeric(first.get(c))).collect()
        }
    };
    if feature_cols.is_empty() {
        return Err(t.header_error("no numeric feature columns"));
    }
    if let Some(tc) = target_col {
        if feature_cols.contains(&tc) {
            return Err(t.header_error(format!("`{}` is both the target and a feature", t.headers[tc])));
        }
    }
    let label_col = t.find_column(&["project_name", "name", "id", "application_id", "proposal"]);
    let mut x = vec![Vec::with_capacity(t.len()); feature_cols.len()];
    let mut y = Vec::with_capacity(if target_col.is_some() { t.len() } else { 0 });
    let mut labels = Vec::with_capacity(t.len());
    for (i, row) in t.rows().enumerate() {
        for (k, &c) in feature_cols.iter().enumerate() {
            x[k].push(parse_feature(t, row, c)?);
        }
        if let Some(tc) = target_col {
            y.push(t.parse_f64(row, tc)?);
        }
        labels.push(label_col.map(|c| row.get(c).to_string()).unwrap_or_else(|| format!("row {}", i + 1)));
    }
    Ok(Dataset {
        features: feature_cols.iter().map(|&c| t.headers[c].clone()).collect(),
        target: spec.target.clone().unwrap_or_default(),
        x,
        y,
        labels,
    })
}

/// Coefficient of determination R² = 1 − SS_res / SS_tot (scikit-learn's `r2_score`; 0 when y is constant
/// and predictions are perfect is reported as 1, as sklearn does).
pub fn r2(y: &[f64], pred: &[f64]) -> f64 {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

/// Mean absolute error.
pub fn mae(y: &[f64], pred: &[f64]) -> f64 {
    y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64
}

/// A seeded, portable random stream (ChaCha8): the same seed and stream give the same numbers on every
/// machine, whatever the thread count.
pub struct Rng(rand_chacha::ChaCha8Rng);

impl Rng {
    /// Stream `stream` of `seed`.
    pub fn new(seed: u64, stream: u64) -> Self {
        use rand_core::SeedableRng;
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(stream);
        Rng(r)
    }
    /// A uniform u64.
    pub fn next_u64(&mut self) -> u64 {
        use rand_core::RngCore;
        self.0.next_u64()
    }
    /// Uniform in `0..n` (n > 0), unbiased: Lemire's multiply-and-reject ("Fast Random Integer Generation
    /// in an Interval", ACM TOMACS 2019), which divides only when the low half falls below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let mut m = (self.next_u64() as u128) * (n as u128);
        if (m as u64) < n {
            let t = n.wrapping_neg() % n;
            while (m as u64) < t {
                m = (self.next_u64() as u128) * (n as u128);
            }
        }
        (m >> 64) as usize
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// Fisher–Yates shuffle of a short slice from one 64-bit draw when the number of orders is at most
    /// 2³² (up to 12 elements): each index is the high word of the running 128-bit product and the low
    /// word carries on (Brackett-Rozinsky and Lemire, "Batched Ranged Random Integer Generation",
    /// Software: Practice and Experience, 2024), so every order's probability is within 2⁻³² of uniform.
    /// Longer slices fall back to [`Rng::shuffle`].
    pub fn shuffle_short<T>(&mut self, v: &mut [T]) {
        if v.len() > 12 {
            return self.shuffle(v);
        }
        let mut x = self.next_u64();
        for i in (1..v.len()).rev() {
            let m = (x as u128) * (i as u128 + 1);
            v.swap(i, (m >> 64) as usize);
            x = m as u64;
        }
    }
    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Ordinary least squares with intercept (normal equations, Cholesky), the linear baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Intercept.
    pub intercept: f64,
    /// One coefficient per feature.
    pub coef: Vec<f64>,
}

impl Linear {
    /// Fits OLS on centred features (normal equations by Cholesky); a ridge of 1e-12 of the largest
    /// variance keeps collinear designs solvable without visibly biasing well-posed ones.
    #[allow(clippy::needless_range_loop)] // index form mirrors the textbook Cholesky
    pub fn fit(d: &Dataset) -> Linear {
        let p = d.n_features();
        let n = d.rows() as f64;
        let mx: Vec<f64> = d.x.iter().map(|c| c.iter().sum::<f64>() / n).collect();
        let my = d.y.iter().sum::<f64>() / n;
        let mut a = vec![vec![0.0; p]; p];
        let mut b = vec![0.0; p];
        for j in 0..p {
            for i in 0..d.rows() {
                b[j] += (d.x[j][i] - mx[j]) * (d.y[i] - my);
            }
            for k in 0..=j {
                let s: f64 = (0..d.rows()).map(|i| (d.x[j][i] - mx[j]) * (d.x[k][i] - mx[k])).sum();
                a[j][k] = s;
                a[k][j] = s;
            }
        }
        let scale = (0..p).map(|j| a[j][j]).fold(0.0f64, f64::max).max(f64::MIN_POSITIVE);
        for (j, row) in a.iter_mut().enumerate() {
            row[j] += 1e-12 * scale;
        }
        let mut l = vec![vec![0.0; p]; p];
        for j in 0..p {
            let mut s = a[j][j];
            for k in 0..j {
                s -= l[j][k] * l[j][k];
            }
            let djj = s.max(1e-300).sqrt();
            l[j][j] = djj;
            for i in j + 1..p {
                let mut s = a[i][j];
                for k in 0..j {
                    s -= l[i][k] * l[j][k];
                }
                l[i][j] = s / djj;
            }
        }
        let mut z = vec![0.0; p];
        for i in 0..p {
            let mut s = b[i];
            for k in 0..i {
                s -= l[i][k] * z[k];
            }
            z[i] = s / l[i][i];
        }
        let mut w = vec![0.0; p];
        for i in (0..p).rev() {
            let mut s = z[i];
            for k in i + 1..p {
                s -= l[k][i] * w[k];
            }
            w[i] = s / l[i][i];
        }
        let intercept = my - w.iter().zip(&mx).map(|(c, m)| c * m).sum::<f64>();
        Linear { intercept, coef: w }
    }

    /// Predicts every row.
    pub fn predict(&self, d: &Dataset) -> Vec<f64> {
        (0..d.rows())
            .map(|i| self.intercept + self.coef.iter().zip(&d.x).map(|(c, col)| c * col[i]).sum::<f64>())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_recovers_a_plane() {
        let x0: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let x1: Vec<f64> = (0..50).map(|i| ((i * 7) % 11) as f64).collect();
        let y: Vec<f64> = (0..50).map(|i| 3.0 + 2.0 * x0[i] - 0.5 * x1[i]).collect();
        let d = Dataset {
            features: vec!["a".into(), "b".into()],
            target: "y".into(),
            x: vec![x0, x1],
            y,
            labels: vec![String::new(); 50],
        };
        let m = Linear::fit(&d);
        assert!((m.intercept - 3.0).abs() < 1e-6 && (m.coef[0] - 2.0).abs() < 1e-8 && (m.coef[1] + 0.5).abs() < 1e-8);
        assert!((r2(&d.y, &m.predict(&d)) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_feature_values_are_located() {
        let t = Table::from_bytes("h.csv", b"a,b,y\n1,2,3\n1,x,3\n").unwrap();
        let spec = ReadSpec { target: Some("y".into()), features: Some(vec!["a".into(), "b".into()]) };
        let e = dataset_from_table(&t, &spec).unwrap_err();
        assert_eq!(e.to_string(), "h.csv:3: column `b`: `x` is not a finite number");
        let t = Table::from_bytes("n.csv", b"a,y\nNaN,3\n").unwrap();
        let spec = ReadSpec { target: Some("y".into()), features: Some(vec!["a".into()]) };
        assert!(dataset_from_table(&t, &spec).unwrap_err().to_string().contains("`NaN` is not a finite number"));
        let spec = ReadSpec { target: Some("amount".into()), features: None };
        assert!(dataset_from_table(&t, &spec).unwrap_err().to_string().contains("missing column `amount`"));
    }

    #[test]
    fn rng_is_reproducible_and_unbiased_enough() {
        let a: Vec<usize> = {
            let mut r = Rng::new(42, 3);
            (0..5).map(|_| r.below(10)).collect()
        };
        let b: Vec<usize> = {
            let mut r = Rng::new(42, 3);
            (0..5).map(|_| r.below(10)).collect()
        };
        assert_eq!(a, b);
        let mut r = Rng::new(1, 0);
        let mut counts = [0usize; 4];
        for _ in 0..40_000 {
            counts[r.below(4)] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
    }
}
