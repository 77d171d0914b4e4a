//! The instance: one TOML file of pools, projects and signals, read strictly into a [`Problem`].
//!
//! Amounts are decimal strings in whole tokens (budgets, minimums, per-pool caps, baselines) or in units
//! of value (a project's cap across pools); they become exact integers here (token base units, value in
//! units of 10⁻¹⁸) so that every constraint can be checked exactly after rounding. Each refusal names the
//! field (`pools[1] (gitcoin).budget`), and nothing is written when one is found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use allonet_core::digest::keccak;
use allonet_core::{digest, Address, Digest, Token};
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

use crate::signals::{self, SignalFile};
use crate::AllocError;

/// Decimals of exact value amounts (prices, value caps, shares): value is held in units of 10⁻¹⁸.
pub const VALUE_DECIMALS: u8 = 18;

/// Most decimals a pool's token may have (every ERC-20 in use has at most 18).
pub const MAX_TOKEN_DECIMALS: u8 = 18;

/// A project's utility of the value X it receives from all pools together (concave, increasing).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Utility {
    /// u = ln(a + X): diminishing returns from the first unit (water-filling when alone).
    Log { a: f64 },
    /// u = s(1 − e^(−X/s)): close to linear below s, saturated above a few s.
    Saturating { s: f64 },
    /// u = √(a + X).
    Sqrt {
        #[serde(default)]
        a: f64,
    },
    /// u = X: constant returns; meaningful with caps.
    Linear,
}

impl Utility {
    /// u(X).
    pub fn value(&self, x: f64) -> f64 {
        match *self {
            Utility::Log { a } => (a + x).ln(),
            Utility::Saturating { s } => s * (1.0 - (-x / s).exp()),
            Utility::Sqrt { a } => (a + x).sqrt(),
            Utility::Linear => x,
        }
    }

    /// u'(X), the marginal utility of value (infinite for √ at 0 with a = 0).
    pub fn slope(&self, x: f64) -> f64 {
        match *self {
            Utility::Log { a } => 1.0 / (a + x),
            Utility::Saturating { s } => (-x / s).exp(),
            Utility::Sqrt { a } => 0.5 / (a + x).sqrt(),
            Utility::Linear => 1.0,
        }
    }

    /// u''(X), for the polishing Newton step.
    pub fn curvature(&self, x: f64) -> f64 {
        match *self {
            Utility::Log { a } => -1.0 / ((a + x) * (a + x)),
            Utility::Saturating { s } => -(-x / s).exp() / s,
            Utility::Sqrt { a } => -0.25 / ((a + x) * (a + x).sqrt()),
            Utility::Linear => 0.0,
        }
    }

    /// The name used in files and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Utility::Log { .. } => "log",
            Utility::Saturating { .. } => "saturating",
            Utility::Sqrt { .. } => "sqrt",
            Utility::Linear => "linear",
        }
    }
}

/// One pool: a DAO's budget in its own token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pool {
    pub id: String,
    pub token: Token,
    /// Units of value per whole token.
    pub price: f64,
    /// The price exactly, in units of 10⁻¹⁸ value per whole token.
    #[serde(skip)]
    pub price_exact: U256,
    /// Budget in base units.
    pub budget: u128,
    /// Whether the whole budget must be given.
    pub spend_all: bool,
    /// Most one project may get, as a share of the budget.
    pub max_share: Option<f64>,
    /// Smallest grant in base units (0: none).
    pub min_grant: u128,
    /// Chain name the pool's plan pays on.
    pub chain: Option<String>,
}

impl Pool {
    /// Base units per whole token, as f64.
    pub fn unit(&self) -> f64 {
        10f64.powi(self.token.decimals as i32)
    }

    /// Budget in whole tokens (f64).
    pub fn budget_tokens(&self) -> f64 {
        self.budget as f64 / self.unit()
    }
}

/// One project that pools may fund.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    pub id: String,
    pub name: Option<String>,
    pub address: Address,
    /// w_i, the project's weight in the objective.
    pub weight: f64,
    pub utility: Utility,
    /// C_i in units of value (f64) and exactly (units of 10⁻¹⁸).
    pub cap: Option<f64>,
    #[serde(skip)]
    pub cap_exact: Option<U256>,
    /// Eligibility per pool (in pool order).
    pub eligible: Vec<bool>,
    /// b_di in base units per pool.
    pub baseline: Vec<u128>,
    /// c_di in base units per pool.
    pub pool_caps: Vec<Option<u128>>,
}

/// How a named signal entered the weights.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalUse {
    pub name: String,
    /// α, its share of the mix.
    pub alpha: f64,
    /// The file it was read from and that file's keccak-256, if any.
    pub file: Option<String>,
    pub file_digest: Option<Digest>,
    /// What kind of allonet output the file was (`recommend`, `round`, `tally`).
    pub source: Option<String>,
    /// Projects that received a value, and the file's entries that matched no project.
    pub matched: usize,
    pub unmatched: Vec<String>,
}

/// A validated instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub rho: f64,
    pub pools: Vec<Pool>,
    pub projects: Vec<Project>,
    pub signals: Vec<SignalUse>,
    /// keccak-256 over the instance file's bytes and every file it read (see [`Problem::from_toml`]).
    pub input_digest: Digest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    rho: Option<f64>,
    #[serde(default)]
    weights: BTreeMap<String, f64>,
    #[serde(default)]
    signals: BTreeMap<String, String>,
    #[serde(default)]
    utility: Option<Utility>,
    #[serde(default)]
    pools: Vec<PoolSpec>,
    #[serde(default)]
    projects: Vec<ProjectSpec>,
}

/// A number written as a TOML float or integer, or as a decimal string (exact).
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Float(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolSpec {
    id: String,
    token: String,
    decimals: i64,
    price: Number,
    budget: String,
    #[serde(default)]
    spend_all: bool,
    max_share: Option<f64>,
    min_grant: Option<String>,
    chain: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectSpec {
    id: String,
    name: Option<String>,
    address: String,
    weight: Option<f64>,
    #[serde(default)]
    signals: BTreeMap<String, f64>,
    utility: Option<Utility>,
    cap: Option<String>,
    eligible: Option<Vec<String>>,
    #[serde(default)]
    baseline: BTreeMap<String, String>,
    #[serde(default)]
    pool_caps: BTreeMap<String, String>,
}

/// Digest of the inputs: the instance's bytes and each file it read, by name.
#[derive(Serialize)]
struct InputFiles<'a> {
    instance: Digest,
    signals: BTreeMap<&'a str, Digest>,
    /// The mix given in place of the file's [weights] (absent when the file's own is used).
    #[serde(skip_serializing_if = "Option::is_none")]
    weights: Option<&'a BTreeMap<String, f64>>,
}

impl Problem {
    /// Reads an instance file; signal files are resolved against its directory.
    pub fn load(path: &Path) -> Result<Problem, AllocError> {
        let name = path.display().to_string();
        let text = std::fs::read(path).map_err(|e| AllocError::input(&name, "", format!("cannot read it: {e}")))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Problem::from_toml(&name, &text, &|f: &str| {
            let p = dir.join(f);
            std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        })
    }

    /// Parses and validates an instance. `read` returns the bytes of a file the instance names (a signal
    /// file), so that embedded data works as well as files.
    pub fn from_toml(
        name: &str,
        bytes: &[u8],
        read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    ) -> Result<Problem, AllocError> {
        Problem::from_toml_with(name, bytes, read, None)
    }

    /// [`Problem::from_toml`] with the signals mixed by `weights` instead of the file's [weights] (as a DAO's
    /// governance sets them for its agent). Every signal of the file needs a weight, and every weight a signal;
    /// the mix is part of the input digest.
    pub fn from_toml_with(
        name: &str,
        bytes: &[u8],
        read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
        weights: Option<&BTreeMap<String, f64>>,
    ) -> Result<Problem, AllocError> {
        let err = |field: &str, m: String| AllocError::input(name, field, m);
        let text = std::str::from_utf8(bytes).map_err(|_| err("", "is not UTF-8 text".into()))?;
        let mut spec: FileSpec = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            AllocError::input(name, &line.map(|l| format!("line {l}")).unwrap_or_default(), msg)
        })?;
        if let Some(w) = weights {
            if let Some(s) = w.keys().find(|s| !spec.signals.contains_key(*s)) {
                return Err(err(
                    "weights",
                    format!("the mix given names `{s}`, which is not one of the file's [signals]"),
                ));
            }
            spec.weights = w.clone();
        }
        let rho = spec.rho.unwrap_or(0.0);
        if !rho.is_finite() || rho < 0.0 {
            return Err(err("rho", format!("{rho} must be a finite number ≥ 0")));
        }
        if spec.pools.is_empty() {
            return Err(err("pools", "no [[pools]]: give at least one pool".into()));
        }
        if spec.projects.is_empty() {
            return Err(err("projects", "no [[projects]]: give at least one project".into()));
        }
        let value = Token::new("value", VALUE_DECIMALS);

        // Pools.
        let mut pools = Vec::with_capacity(spec.pools.len());
        let mut pool_index = BTreeMap::new();
        for (k, p) in spec.pools.iter().enumerate() {
            let f = |field: &str| format!("pools[{k}] ({}).{field}", p.id);
            if p.id.trim().is_empty() {
                return Err(err(&format!("pools[{k}].id"), "is empty".into()));
            }
            // Pool ids name plan files (`<id>.plan.json`): letters, digits, `-`, `_`, `.`; never a path.
            if p.id.len() > 64
                || p.id.starts_with('.')
                || !p.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(err(
                    &f("id"),
                    format!("`{}` must be 1 to 64 letters, digits, `-`, `_` or `.` (not starting with `.`): it names the pool's plan file", p.id),
                ));
            }
            if pool_index.insert(p.id.clone(), k).is_some() {
                return Err(err(&f("id"), format!("pool `{}` is given twice", p.id)));
            }
            if !(0..=MAX_TOKEN_DECIMALS as i64).contains(&p.decimals) {
                return Err(err(&f("decimals"), format!("{} is not in 0..={MAX_TOKEN_DECIMALS}", p.decimals)));
            }
            let token = Token::new(p.token.clone(), p.decimals as u8);
            // A price given as a string ("1.9") is taken exactly; a TOML float by its shortest decimal form.
            let price_text = match &p.price {
                Number::Float(x) => x.to_string(),
                Number::Text(t) => t.trim().to_string(),
            };
            let price_exact = value
                .parse(&price_text)
                .map_err(|e| err(&f("price"), format!("{e} (units of value per token, > 0, at most 18 decimals)")))?
                .0;
            if price_exact.is_zero() {
                return Err(err(&f("price"), format!("{price_text} must be > 0 (units of value per token)")));
            }
            if price_exact > U256::from(10u128.pow(24)) {
                return Err(err(
                    &f("price"),
                    format!("{price_text} is above the largest price taken (10^6 per token)"),
                ));
            }
            let price: f64 =
                price_text.parse().map_err(|_| err(&f("price"), format!("`{price_text}` is not a number")))?;
            let budget = parse_tokens(&token, &p.budget).map_err(|m| err(&f("budget"), m))?;
            // What one plan may pay on a chain: the allocator keeps totals in 96 bits.
            if budget >= 1u128 << 96 {
                return Err(err(
                    &f("budget"),
                    format!("`{}` is above the largest budget a plan can pay (2^96 − 1 base units)", p.budget),
                ));
            }
            if let Some(s) = p.max_share {
                if !(s.is_finite() && s > 0.0 && s <= 1.0) {
                    return Err(err(&f("max_share"), format!("{s} must be in (0, 1]")));
                }
                value.parse(&s.to_string()).map_err(|e| err(&f("max_share"), format!("{s}: {e}")))?;
            }
            let min_grant = match &p.min_grant {
                Some(m) => parse_tokens(&token, m).map_err(|e| err(&f("min_grant"), e))?,
                None => 0,
            };
            if min_grant > budget {
                return Err(err(
                    &f("min_grant"),
                    format!("`{}` exceeds the pool's budget `{}`", p.min_grant.as_deref().unwrap_or(""), p.budget),
                ));
            }
            if let Some(c) = &p.chain {
                if c.trim().is_empty() {
                    return Err(err(&f("chain"), "is empty; omit it for the default chain".into()));
                }
            }
            pools.push(Pool {
                id: p.id.clone(),
                token,
                price,
                price_exact,
                budget,
                spend_all: p.spend_all,
                max_share: p.max_share,
                min_grant,
                chain: p.chain.clone(),
            });
        }

        // Signals: the mix and the files.
        for (s, a) in &spec.weights {
            if !(a.is_finite() && (0.0..=1e6).contains(a)) {
                return Err(err(&format!("weights.{s}"), format!("{a} must be a number in [0, 10^6]")));
            }
        }
        let mut files: BTreeMap<String, (SignalFile, Digest, String)> = BTreeMap::new();
        for (s, file) in &spec.signals {
            if !spec.weights.contains_key(s) {
                return Err(err(
                    &format!("signals.{s}"),
                    format!("signal `{s}` has no weight: add `{s} = …` to [weights] (the mix governance sets)"),
                ));
            }
            let bytes = read(file).map_err(|m| err(&format!("signals.{s}"), m))?;
            let parsed = signals::parse(&bytes).map_err(|m| err(&format!("signals.{s}"), format!("{file}: {m}")))?;
            files.insert(s.clone(), (parsed, keccak(&bytes), file.clone()));
        }

        // Projects.
        let np = pools.len();
        let mut ids = BTreeSet::new();
        let mut addrs: BTreeMap<Address, String> = BTreeMap::new();
        let mut keys: BTreeMap<String, usize> = BTreeMap::new();
        let with_weight = spec.projects.iter().filter(|p| p.weight.is_some()).count();
        if with_weight != 0 && with_weight != spec.projects.len() {
            let missing = spec.projects.iter().position(|p| p.weight.is_none()).unwrap_or(0);
            return Err(err(
                &format!("projects[{missing}] ({}).weight", spec.projects[missing].id),
                format!(
                    "{with_weight} of {} projects give `weight`: give it on every project, or on none and mix signals with [weights]",
                    spec.projects.len()
                ),
            ));
        }
        if with_weight != 0 && (!spec.weights.is_empty() || !spec.signals.is_empty()) {
            return Err(err(
                "weights",
                "every project gives `weight`, so [weights] and [signals] would be ignored: give one or the other"
                    .into(),
            ));
        }
        if with_weight == 0 && spec.weights.is_empty() {
            return Err(err("weights", "no project has `weight` and there is no [weights] mix of signals".into()));
        }
        let mut projects = Vec::with_capacity(spec.projects.len());
        for (k, p) in spec.projects.iter().enumerate() {
            let f = |field: &str| format!("projects[{k}] ({}).{field}", p.id);
            if p.id.trim().is_empty() {
                return Err(err(&format!("projects[{k}].id"), "is empty".into()));
            }
            if !ids.insert(p.id.clone()) {
                return Err(err(&f("id"), format!("project `{}` is given twice", p.id)));
            }
            let address = Address::parse(&p.address).map_err(|e| err(&f("address"), e.to_string()))?;
            if address.0.is_zero() {
                return Err(err(&f("address"), "is the zero address".into()));
            }
            if let Some(other) = addrs.insert(address, p.id.clone()) {
                return Err(err(
                    &f("address"),
                    format!("{address} is also project `{other}`'s: one address per project"),
                ));
            }
            for key in std::iter::once(&p.id).chain(p.name.as_ref()) {
                if let Some(&j) = keys.get(key) {
                    if j != k {
                        return Err(err(
                            &f("name"),
                            format!("`{key}` already names project `{}`", spec.projects[j].id),
                        ));
                    }
                }
                keys.insert(key.clone(), k);
            }
            if let Some(w) = p.weight {
                if !(w.is_finite() && (0.0..=1e12).contains(&w)) {
                    return Err(err(&f("weight"), format!("{w} must be a number in [0, 10^12]")));
                }
                if !p.signals.is_empty() {
                    return Err(err(&f("signals"), "give `weight` or `signals`, not both".into()));
                }
            }
            for (s, v) in &p.signals {
                if !spec.weights.contains_key(s) {
                    return Err(err(&format!("{}.{s}", f("signals")), format!("signal `{s}` is not in [weights]")));
                }
                if !(v.is_finite() && (0.0..=1e30).contains(v)) {
                    return Err(err(&format!("{}.{s}", f("signals")), format!("{v} must be a number in [0, 10^30]")));
                }
            }
            let utility = p.utility.or(spec.utility).ok_or_else(|| {
                err(
                    &f("utility"),
                    "no utility: give `utility = { kind = \"log\", a = … }` here or a default [utility]".into(),
                )
            })?;
            check_utility(&utility).map_err(|m| err(&f("utility"), m))?;
            let (cap, cap_exact) = match &p.cap {
                Some(c) => {
                    let e = value.parse(c).map_err(|e| err(&f("cap"), e.to_string()))?.0;
                    if e > U256::from(10u128.pow(30)) * U256::from(10u128.pow(VALUE_DECIMALS as u32)) {
                        return Err(err(
                            &f("cap"),
                            format!("`{c}` is above the largest cap taken (10^30 units of value)"),
                        ));
                    }
                    (Some(c.trim().parse::<f64>().unwrap_or(f64::NAN)), Some(e))
                }
                None => (None, None),
            };
            let mut eligible = vec![p.eligible.is_none(); np];
            if let Some(list) = &p.eligible {
                for pid in list {
                    let d = *pool_index.get(pid).ok_or_else(|| err(&f("eligible"), unknown_pool(pid, &pools)))?;
                    eligible[d] = true;
                }
            }
            let mut baseline = vec![0u128; np];
            for (pid, amount) in &p.baseline {
                let d = *pool_index.get(pid).ok_or_else(|| err(&f("baseline"), unknown_pool(pid, &pools)))?;
                baseline[d] =
                    parse_tokens(&pools[d].token, amount).map_err(|m| err(&format!("{}.{pid}", f("baseline")), m))?;
            }
            let mut pool_caps = vec![None; np];
            for (pid, amount) in &p.pool_caps {
                let d = *pool_index.get(pid).ok_or_else(|| err(&f("pool_caps"), unknown_pool(pid, &pools)))?;
                pool_caps[d] = Some(
                    parse_tokens(&pools[d].token, amount).map_err(|m| err(&format!("{}.{pid}", f("pool_caps")), m))?,
                );
            }
            projects.push(Project {
                id: p.id.clone(),
                name: p.name.clone(),
                address,
                weight: p.weight.unwrap_or(0.0),
                utility,
                cap,
                cap_exact,
                eligible,
                baseline,
                pool_caps,
            });
        }

        // Weights from signals: each signal normalised over projects to sum 1, then mixed by α.
        let mut uses = Vec::new();
        if with_weight == 0 {
            for (s, &alpha) in &spec.weights {
                let mut vals = vec![0.0f64; projects.len()];
                let mut matched = 0;
                let mut unmatched = Vec::new();
                let file = files.get(s);
                if let Some((sf, _, fname)) = file {
                    let mut seen: BTreeMap<usize, &str> = BTreeMap::new();
                    for (key, v) in &sf.entries {
                        match keys.get(key) {
                            Some(&i) => {
                                if !(v.is_finite() && (0.0..=1e30).contains(v)) {
                                    return Err(err(
                                        &format!("signals.{s}"),
                                        format!("{fname}: entry `{key}` is {v}; signals must be in [0, 10^30]"),
                                    ));
                                }
                                if let Some(first) = seen.insert(i, key) {
                                    return Err(err(
                                        &format!("signals.{s}"),
                                        format!(
                                            "{fname}: entries `{first}` and `{key}` both name project `{}`",
                                            projects[i].id
                                        ),
                                    ));
                                }
                                vals[i] = *v;
                            }
                            None => unmatched.push(key.clone()),
                        }
                    }
                }
                for (i, p) in spec.projects.iter().enumerate() {
                    if let Some(v) = p.signals.get(s) {
                        vals[i] = *v;
                    }
                }
                matched += vals.iter().filter(|v| **v > 0.0).count();
                let total: f64 = vals.iter().sum();
                if total > 0.0 {
                    for (p, v) in projects.iter_mut().zip(&vals) {
                        p.weight += alpha * v / total;
                    }
                }
                uses.push(SignalUse {
                    name: s.clone(),
                    alpha,
                    file: file.map(|f| f.2.clone()),
                    file_digest: file.map(|f| f.1),
                    source: file.map(|f| f.0.source.to_string()),
                    matched,
                    unmatched,
                });
            }
        }
        let input_digest = digest(&InputFiles {
            instance: keccak(bytes),
            signals: files.iter().map(|(k, v)| (k.as_str(), v.1)).collect(),
            weights,
        });
        Ok(Problem { rho, pools, projects, signals: uses, input_digest })
    }

    /// The exact upper bound of pair (d, i) in base units: the pool's budget, its max share, the project's
    /// cap in this pool; 0 where the project is not eligible or the minimum grant is above the bound.
    pub fn pair_bound(&self, d: usize, i: usize) -> u128 {
        let pool = &self.pools[d];
        let p = &self.projects[i];
        if !p.eligible[d] {
            return 0;
        }
        let mut ub = pool.budget;
        if let Some(c) = p.pool_caps[d] {
            ub = ub.min(c);
        }
        if let Some(s) = pool.max_share {
            ub = ub.min(share_of(s, pool.budget));
        }
        ub
    }
}

/// ⌊s · budget⌋ exactly, with s read as its shortest decimal form.
pub fn share_of(s: f64, budget: u128) -> u128 {
    let s18 = Token::new("", VALUE_DECIMALS).parse(&s.to_string()).map(|a| a.0).unwrap_or(U256::ZERO);
    let v = s18 * U256::from(budget) / U256::from(10u128.pow(VALUE_DECIMALS as u32));
    v.try_into().unwrap_or(u128::MAX)
}

fn parse_tokens(token: &Token, s: &str) -> Result<u128, String> {
    if s.trim().starts_with('-') {
        return Err(format!("`{s}` is negative; amounts are whole tokens ≥ 0"));
    }
    let a = token.parse(s).map_err(|e| e.to_string())?;
    u128::try_from(a.0).map_err(|_| format!("`{s}` is too large"))
}

fn unknown_pool(pid: &str, pools: &[Pool]) -> String {
    let known: Vec<&str> = pools.iter().map(|p| p.id.as_str()).collect();
    format!("unknown pool `{pid}` (pools: {})", known.join(", "))
}

fn check_utility(u: &Utility) -> Result<(), String> {
    let ok = match *u {
        Utility::Log { a } => a.is_finite() && a > 0.0,
        Utility::Saturating { s } => s.is_finite() && s > 0.0,
        Utility::Sqrt { a } => a.is_finite() && a >= 0.0,
        Utility::Linear => true,
    };
    if ok {
        Ok(())
    } else {
        Err(match u {
            Utility::Log { a } => format!("log needs a > 0 (units of value), got {a}"),
            Utility::Saturating { s } => format!("saturating needs s > 0 (units of value), got {s}"),
            Utility::Sqrt { a } => format!("sqrt needs a ≥ 0, got {a}"),
            Utility::Linear => unreachable!(),
        })
    }
}
