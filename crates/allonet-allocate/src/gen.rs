//! Seeded random instances (as TOML text, so that the Python reference reads the very same file): every
//! constraint kind, every utility, feasible by construction. Used by the tests and `allonet bench allocate`.

use std::fmt::Write;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// What a generated instance contains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenOptions {
    pub pools: usize,
    pub projects: usize,
    /// Minimum grants on some pools (the reference solver cannot take them).
    pub min_grants: bool,
    /// Baselines with ρ > 0 on some instances.
    pub baseline: bool,
    /// Utilities: every kind (else log only).
    pub all_utilities: bool,
    /// Caps, pool caps, max shares, eligibility gaps, spend-all pools.
    pub constraints: bool,
}

impl GenOptions {
    /// Every feature on.
    pub fn full(pools: usize, projects: usize) -> Self {
        GenOptions { pools, projects, min_grants: true, baseline: true, all_utilities: true, constraints: true }
    }
}

struct Rng(ChaCha8Rng);

impl Rng {
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }
}

/// Rounds to `digits` significant decimals, printed in plain decimal (no exponent).
fn dec(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A random instance for `seed`.
pub fn instance(seed: u64, o: GenOptions) -> String {
    let mut r = Rng(ChaCha8Rng::seed_from_u64(seed));
    let np = o.pools.max(1);
    let ni = o.projects.max(1);
    struct P {
        decimals: u32,
        price: f64,
        budget: f64,
        share: Option<f64>,
        min: Option<f64>,
        spend_all: bool,
    }
    let mut pools = Vec::new();
    for _ in 0..np {
        let decimals = [0u32, 6, 18][r.pick(3)];
        let price = (r.range(0.2, 4.0) * 1000.0).round() / 1000.0;
        let budget = (r.range(1_000.0, 100_000.0)).round();
        let share = (o.constraints && r.chance(0.5)).then(|| (r.range(0.02, 0.5) * 1000.0).round() / 1000.0);
        let min = (o.min_grants && r.chance(0.5)).then(|| (budget * r.range(0.001, 0.02)).round().max(1.0));
        let spend_all = o.constraints && r.chance(0.5);
        pools.push(P { decimals, price, budget, share, min, spend_all });
    }
    let total_value: f64 = pools.iter().map(|p| p.price * p.budget).sum();
    let avg = total_value / ni as f64;
    let rho = if o.baseline && r.chance(0.5) { r.range(0.01, 1.0) / (ni as f64 * avg * avg) } else { 0.0 };
    let mut t = String::new();
    writeln!(t, "# generated: seed {seed}, {np} pools, {ni} projects").unwrap();
    writeln!(t, "rho = {rho:e}").unwrap();
    // Projects first (in memory), so that spend-all pools can be checked for room.
    struct J {
        weight: f64,
        utility: String,
        cap: Option<f64>,
        eligible: Vec<bool>,
        pool_caps: Vec<Option<f64>>,
        baseline: Vec<Option<f64>>,
    }
    let mut projects = Vec::new();
    for _ in 0..ni {
        let weight = if r.chance(0.05) { 0.0 } else { (r.range(0.01, 1.0) * 1e6).round() / 1e6 };
        let kind = if o.all_utilities { r.pick(10) } else { 0 };
        let utility = match kind {
            0..=4 => format!("{{ kind = \"log\", a = {} }}", dec(avg * r.range(0.05, 2.0), 3)),
            5..=6 => format!("{{ kind = \"saturating\", s = {} }}", dec(avg * r.range(0.3, 3.0), 3)),
            7..=8 => format!("{{ kind = \"sqrt\", a = {} }}", dec(avg * r.range(0.0, 1.0), 3)),
            _ => "{ kind = \"linear\" }".to_string(),
        };
        let cap = (o.constraints && r.chance(0.3)).then(|| (avg * r.range(0.3, 3.0)).round());
        let eligible: Vec<bool> = (0..np).map(|_| !o.constraints || r.chance(0.8)).collect();
        let pool_caps: Vec<Option<f64>> = (0..np)
            .map(|d| (o.constraints && r.chance(0.2)).then(|| (pools[d].budget * r.range(0.0, 0.05)).round()))
            .collect();
        let baseline: Vec<Option<f64>> = (0..np)
            .map(|d| (o.baseline && r.chance(0.3)).then(|| (pools[d].budget / ni as f64 * r.range(0.0, 3.0)).round()))
            .collect();
        projects.push(J { weight, utility, cap, eligible, pool_caps, baseline });
    }
    // A pool is spent in full only where uncapped eligible projects could take 1.5× its budget.
    for (d, pool) in pools.iter_mut().enumerate() {
        if !pool.spend_all {
            continue;
        }
        let each = pool.share.map_or(pool.budget, |s| (s * pool.budget).floor());
        let room: f64 = projects
            .iter()
            .filter(|j| j.eligible[d] && j.cap.is_none())
            .map(|j| j.pool_caps[d].map_or(each, |c| c.min(each)))
            .filter(|&u| pool.min.is_none_or(|m| u >= m))
            .sum();
        if room < 1.5 * pool.budget {
            pool.spend_all = false;
        }
    }
    for (d, p) in pools.iter().enumerate() {
        writeln!(t, "\n[[pools]]\nid = \"pool{d}\"\ntoken = \"T{d}\"\ndecimals = {}", p.decimals).unwrap();
        writeln!(t, "price = {}\nbudget = \"{}\"", p.price, p.budget).unwrap();
        if p.spend_all {
            writeln!(t, "spend_all = true").unwrap();
        }
        if let Some(s) = p.share {
            writeln!(t, "max_share = {s}").unwrap();
        }
        if let Some(m) = p.min {
            writeln!(t, "min_grant = \"{m}\"").unwrap();
        }
    }
    for (i, j) in projects.iter().enumerate() {
        let addr = alloy_primitives::keccak256(format!("allonet-gen:{seed}:{i}"));
        writeln!(t, "\n[[projects]]\nid = \"p{i:05}\"\naddress = \"0x{}\"", alloy_primitives::hex::encode(&addr[12..]))
            .unwrap();
        writeln!(t, "weight = {}\nutility = {}", j.weight, j.utility).unwrap();
        if let Some(c) = j.cap {
            writeln!(t, "cap = \"{c}\"").unwrap();
        }
        if j.eligible.iter().any(|e| !e) {
            let list: Vec<String> = (0..np).filter(|&d| j.eligible[d]).map(|d| format!("\"pool{d}\"")).collect();
            writeln!(t, "eligible = [{}]", list.join(", ")).unwrap();
        }
        let table = |v: &[Option<f64>]| -> String {
            v.iter()
                .enumerate()
                .filter_map(|(d, x)| x.map(|x| format!("pool{d} = \"{x}\"")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let pc = table(&j.pool_caps);
        if !pc.is_empty() {
            writeln!(t, "pool_caps = {{ {pc} }}").unwrap();
        }
        let b = table(&j.baseline);
        if !b.is_empty() {
            writeln!(t, "baseline = {{ {b} }}").unwrap();
        }
    }
    t
}
