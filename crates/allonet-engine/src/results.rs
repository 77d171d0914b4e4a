//! Mechanism results and the files that carry them: `round`, `retro` and `tally` from typed options and input
//! tables, each with its input and output digests, and `verify`, which recomputes a [`ResultFile`] from the
//! options and inputs it records.
//!
//! The options structs ([`RoundOptions`], [`RetroOptions`], [`TallyOptions`]) are what a result file records under
//! `options`; their serde field names are the command-line option names, so files written by earlier versions
//! still verify. Errors name the option (`--pool`, `--cap`, …) or the file, line and column at fault.
//!
//! **Never:** prints; progress is reported through a callback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use allonet_core::input::{json_from_bytes, read_json};
use allonet_core::{digest, InputError, Table, Token, TokenAmount};
use allonet_mechanisms::donations::{contributions_from_table, normalise_id, ContributionColumns, ReadStats};
use allonet_mechanisms::matching::{allocate, Allocation, Cap};
use allonet_mechanisms::qf::CocmStyle;
use allonet_mechanisms::qv::{credit_qv, snapshot_quadratic, CreditElection, SnapshotProposal};
use allonet_mechanisms::retro::{
    capped_proportional, metric_ballots_from_table, project_metrics_from_table, r3_median, r4_metric_ballots, R3Params,
    R4Params,
};
use allonet_mechanisms::round::{run_round, Mechanism, RoundConfig, RoundInputs, RoundResult};
use allonet_mechanisms::sybil::SybilPolicy;
use serde::{Deserialize, Serialize};

pub use crate::plans::ResultFile;
use crate::EngineError;

fn config_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Config(e.to_string())
}

// ---------------------------------------------------------------------------------------------------------------
// round

/// The matching mechanism of a round, as named in options (`qf`, `pairwise`, `cluster`, `cocm`, `blend`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MechanismChoice {
    /// Classic quadratic funding.
    Qf,
    /// Pairwise-bounded QF (see `pairwise_m`, `trust`).
    Pairwise,
    /// Cluster match over donation profiles (or operator clusters).
    Cluster,
    /// Connection-oriented cluster match (Gitcoin's COCM; harsh unless `soft`).
    Cocm,
    /// `pct_cocm` · COCM + (1 − `pct_cocm`) · QF.
    Blend,
}

/// Options of a round, as recorded in its result file (`allonet round`'s options, input paths included).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoundOptions {
    /// Contributions CSV: one row per gift.
    pub contributions: PathBuf,
    /// Matching mechanism.
    pub mechanism: MechanismChoice,
    /// Matching pool in whole tokens, e.g. `50000` or `1234.5`.
    pub pool: String,
    /// Token symbol.
    pub token: String,
    /// Token decimals.
    pub decimals: u8,
    /// Per-project cap: a share of the pool (`10%`) or an amount (`5000`).
    pub cap: Option<String>,
    /// Pay out the whole pool even when the QF scores sum to less.
    pub fill: bool,
    /// Donor score CSV for sybil weighting.
    pub sybil_scores: Option<PathBuf>,
    /// Score at which a donor's gifts count half (below: zero).
    pub s50: f64,
    /// Score at which gifts count in full.
    pub s100: f64,
    /// Gifts below this amount (whole tokens) are ignored.
    pub min_gift: f64,
    /// Operator clusters CSV (donor, cluster[, weight]).
    pub clusters: Option<PathBuf>,
    /// Donor trust CSV (donor, trust in 0..1) for pairwise QF.
    pub trust: Option<PathBuf>,
    /// The M of pairwise-bounded QF.
    pub pairwise_m: f64,
    /// Weight of COCM in a blend, 0..1.
    pub pct_cocm: f64,
    /// Soft COCM (connected gifts count as √c) instead of harsh.
    pub soft: bool,
    /// Drop rows with a negative amount instead of refusing the file.
    pub skip_negative: bool,
    /// Name of the donor column, when not auto-detected.
    pub donor_col: Option<String>,
    /// Name of the project column.
    pub project_col: Option<String>,
    /// Name of the amount column.
    pub amount_col: Option<String>,
}

impl RoundOptions {
    /// A classic QF round of `contributions` matching `pool` whole tokens, with `allonet round`'s defaults for
    /// everything else (no cap, no fill, no sybil scores, pairwise M 25, COCM share 0.5 in blends).
    pub fn new(contributions: &str, pool: &str, token: &str, decimals: u8) -> Self {
        RoundOptions {
            contributions: contributions.into(),
            mechanism: MechanismChoice::Qf,
            pool: pool.into(),
            token: token.into(),
            decimals,
            cap: None,
            fill: false,
            sybil_scores: None,
            s50: 15.0,
            s100: 25.0,
            min_gift: 0.0,
            clusters: None,
            trust: None,
            pairwise_m: 25.0,
            pct_cocm: 0.5,
            soft: false,
            skip_negative: false,
            donor_col: None,
            project_col: None,
            amount_col: None,
        }
    }

    /// The mechanism with its parameters.
    pub fn mechanism(&self) -> Mechanism {
        let style = if self.soft { CocmStyle::Soft } else { CocmStyle::Harsh };
        match self.mechanism {
            MechanismChoice::Qf => Mechanism::Qf,
            MechanismChoice::Pairwise => Mechanism::Pairwise { m: self.pairwise_m },
            MechanismChoice::Cluster => Mechanism::ClusterMatch,
            MechanismChoice::Cocm => Mechanism::Cocm { style },
            MechanismChoice::Blend => Mechanism::Blend { pct_cocm: self.pct_cocm, style },
        }
    }

    /// The checked configuration of the round (pool and cap parsed exactly in the token's base units).
    pub fn config(&self) -> Result<RoundConfig, EngineError> {
        let token = Token::new(&self.token, self.decimals);
        let pool = token.parse(&self.pool).map_err(|e| config_err(format!("--pool {}: {e}", self.pool)))?;
        let cap = self.cap.as_deref().map(|c| Cap::parse(c, &token)).transpose();
        let cap = cap.map_err(|e| config_err(format!("--cap: {e}")))?;
        let sybil = match &self.sybil_scores {
            Some(_) => Some(SybilPolicy::new(self.s50, self.s100).map_err(config_err)?),
            None => None,
        };
        if !(self.min_gift.is_finite() && self.min_gift >= 0.0) {
            return Err(config_err("--min-gift must be zero or more"));
        }
        Ok(RoundConfig {
            mechanism: self.mechanism(),
            token,
            pool,
            cap,
            fill: self.fill,
            sybil,
            min_gift: self.min_gift,
        })
    }
}

/// The loaded input tables of a round.
#[derive(Clone, Debug)]
pub struct RoundTables {
    /// The gifts.
    pub contributions: Table,
    /// Donor scores for sybil weighting.
    pub sybil_scores: Option<Table>,
    /// Operator clusters.
    pub clusters: Option<Table>,
    /// Donor trust.
    pub trust: Option<Table>,
}

/// What a round is doing, for a progress display.
#[derive(Clone, Copy, Debug)]
pub enum RoundStep<'a> {
    /// Reading the contributions file: `done` of `total` bytes.
    Reading {
        /// The file.
        file: &'a Path,
        /// Bytes read so far.
        done: u64,
        /// Size of the file.
        total: u64,
    },
    /// Scoring the gifts kept with the mechanism.
    Scoring {
        /// Gifts kept.
        gifts: usize,
        /// The mechanism.
        mechanism: &'a Mechanism,
    },
}

impl RoundTables {
    /// Reads every input file of a round (all before computing anything).
    pub fn read(opts: &RoundOptions, on_step: &mut dyn FnMut(RoundStep)) -> Result<Self, EngineError> {
        let opt = |p: &Option<PathBuf>| p.as_ref().map(|p| Table::read(p)).transpose();
        let file = opts.contributions.as_path();
        Ok(RoundTables {
            contributions: Table::read_with_progress(file, &mut |done, total| {
                on_step(RoundStep::Reading { file, done, total })
            })?,
            sybil_scores: opt(&opts.sybil_scores)?,
            clusters: opt(&opts.clusters)?,
            trust: opt(&opts.trust)?,
        })
    }
}

/// Reads a two-column id → number CSV (sybil scores, trust).
fn read_scores(t: &Table, id_cols: &[&str], value_cols: &[&str]) -> Result<BTreeMap<String, f64>, InputError> {
    let ic = t.require_one_of(id_cols, "id")?;
    let vc = t.require_one_of(value_cols, "value")?;
    let mut m = BTreeMap::new();
    for row in t.rows() {
        let id = normalise_id(t, row, ic)?;
        let v = t.parse_f64(row, vc)?;
        if m.insert(id.clone(), v).is_some() {
            return Err(t.error(row, ic, format!("`{id}` appears twice")));
        }
    }
    Ok(m)
}

fn read_clusters(t: &Table) -> Result<Vec<(String, String, f64)>, InputError> {
    let dc = t.require_one_of(&["donor", "contributor", "voter", "address"], "donor")?;
    let cc = t.require_one_of(&["cluster", "group", "community"], "cluster")?;
    let wc = t.find_column(&["weight"]);
    let mut out = Vec::new();
    for row in t.rows() {
        let w = match wc {
            Some(c) => t.parse_non_negative(row, c)?,
            None => 1.0,
        };
        let cluster = row.get(cc);
        if cluster.is_empty() {
            return Err(t.error(row, cc, "empty cluster"));
        }
        out.push((normalise_id(t, row, dc)?, cluster.to_string(), w));
    }
    Ok(out)
}

/// Validates the loaded tables and runs the round; also returns what reading the contributions kept and skipped.
pub fn round_from_tables(
    opts: &RoundOptions,
    tables: &RoundTables,
    on_step: &mut dyn FnMut(RoundStep),
) -> Result<(RoundResult, ReadStats), EngineError> {
    let config = opts.config()?;
    let t = &tables.contributions;
    let cols = ContributionColumns {
        donor: opts.donor_col.clone(),
        project: opts.project_col.clone(),
        amount: opts.amount_col.clone(),
        skip_negative: opts.skip_negative,
    };
    let (contributions, stats) = contributions_from_table(t, &cols)?;
    if contributions.is_empty() {
        return Err(InputError::file(&t.file, "no gifts with a positive amount").into());
    }
    let donor_cols = ["donor", "address", "contributor", "voter"];
    let sybil_scores = tables
        .sybil_scores
        .as_ref()
        .map(|t| read_scores(t, &donor_cols, &["score", "aggregate_score", "rawScore"]))
        .transpose()?;
    let clusters = tables.clusters.as_ref().map(read_clusters).transpose()?;
    let trust = tables.trust.as_ref().map(|t| read_scores(t, &donor_cols[..3], &["trust", "weight"])).transpose()?;
    let inputs = RoundInputs { contributions, sybil_scores, clusters, trust };
    on_step(RoundStep::Scoring { gifts: stats.kept, mechanism: &config.mechanism });
    let r = run_round(&inputs, &config).map_err(config_err)?;
    Ok((r, stats))
}

/// Reads the inputs of a round and runs it; bad options are refused before any file is read.
pub fn round(opts: &RoundOptions, on_step: &mut dyn FnMut(RoundStep)) -> Result<(RoundResult, ReadStats), EngineError> {
    opts.config()?;
    let tables = RoundTables::read(opts, on_step)?;
    round_from_tables(opts, &tables, on_step)
}

/// The result file of a round (its digests are the round's own).
pub fn round_file(opts: &RoundOptions, r: &RoundResult) -> Result<ResultFile, EngineError> {
    ResultFile::new("round", opts, r.input_digest, r.output_digest, r).map_err(config_err)
}

// ---------------------------------------------------------------------------------------------------------------
// retro

/// Options of a retro funding run, as recorded in its result file (`allonet retro`'s options).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RetroOptions {
    /// RF4-style metric ballots CSV (voter `Address` and JSON `Payload` columns); needs `metrics`.
    pub ballots: Option<PathBuf>,
    /// Impact metrics per project CSV.
    pub metrics: Option<PathBuf>,
    /// RetroPGF 3-style votes CSV (voter, project, amount).
    pub votes: Option<PathBuf>,
    /// Project scores CSV (project, score) for the capped proportional allocator.
    pub scores: Option<PathBuf>,
    /// Budget in whole tokens.
    pub budget: String,
    /// Token symbol.
    pub token: String,
    /// Token decimals.
    pub decimals: u8,
    /// Largest share of the budget one project may get, such as `5%`.
    pub cap: String,
    /// Smallest award in whole tokens.
    pub min: String,
    /// RetroPGF 3: ballots a project needs.
    pub quorum: usize,
    /// RetroPGF 3: smallest median (whole tokens) a project needs.
    pub min_median: f64,
    /// Official results CSV to compare with (recorded, not used by the computation).
    pub compare: Option<PathBuf>,
}

/// One project's line of a retro result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RetroLine {
    /// Project id.
    pub id: String,
    /// Project name, when the inputs give one.
    pub name: String,
    /// The method's score.
    pub score: f64,
    /// Award in base units.
    pub amount: TokenAmount,
    /// Whether the cap bound.
    pub capped: bool,
}

/// The outcome of a retro funding run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RetroResult {
    /// `r4 metric ballots`, `r3 median` or `capped proportional`.
    pub method: String,
    /// The token.
    pub token: Token,
    /// The budget in base units.
    pub budget: TokenAmount,
    /// Paid out.
    pub distributed: TokenAmount,
    /// Left over.
    pub unallocated: TokenAmount,
    /// One line per project.
    pub lines: Vec<RetroLine>,
    /// The method's per-project details (RF4 and R3 lines), or null.
    pub details: serde_json::Value,
}

/// The loaded input tables of a retro run.
#[derive(Clone, Debug)]
pub enum RetroTables {
    /// RF4 metric ballots and the impact metrics per project.
    Metrics {
        /// The ballots.
        ballots: Table,
        /// The metrics.
        metrics: Table,
    },
    /// RetroPGF 3 votes.
    Votes(Table),
    /// Project scores.
    Scores(Table),
}

impl RetroTables {
    /// Reads the input files the options name; exactly one method's inputs must be given.
    pub fn read(opts: &RetroOptions) -> Result<Self, EngineError> {
        Ok(match (&opts.ballots, &opts.metrics, &opts.votes, &opts.scores) {
            (Some(b), Some(m), None, None) => RetroTables::Metrics { ballots: Table::read(b)?, metrics: Table::read(m)? },
            (None, _, Some(v), None) => RetroTables::Votes(Table::read(v)?),
            (None, _, None, Some(s)) => RetroTables::Scores(Table::read(s)?),
            _ => return Err(config_err("give --ballots with --metrics (RF4 metric ballots), --votes (RetroPGF 3 medians) or --scores (capped proportional)")),
        })
    }
}

fn cap_share(s: &str) -> Result<f64, EngineError> {
    match Cap::parse(s, &Token::new("", 0)).map_err(|e| config_err(format!("--cap: {e}")))? {
        Cap::Ppm(p) => Ok(p as f64 / 1e6),
        Cap::Absolute(_) => Err(config_err("--cap for retro funding is a share of the budget, such as 5%")),
    }
}

fn lines_from(alloc: &Allocation, names: &BTreeMap<String, String>) -> Vec<RetroLine> {
    alloc
        .payouts
        .iter()
        .map(|p| RetroLine {
            id: p.id.clone(),
            name: names.get(&p.id).cloned().unwrap_or_default(),
            score: p.score,
            amount: p.amount,
            capped: p.capped,
        })
        .collect()
}

/// Computes the allocation from loaded tables; returns the result and its result file.
pub fn retro_from_tables(opts: &RetroOptions, tables: RetroTables) -> Result<(RetroResult, ResultFile), EngineError> {
    let token = Token::new(&opts.token, opts.decimals);
    let budget = token.parse(&opts.budget).map_err(|e| config_err(format!("--budget {}: {e}", opts.budget)))?;
    let min = token.parse(&opts.min).map_err(|e| config_err(format!("--min {}: {e}", opts.min)))?;
    let share = cap_share(&opts.cap)?;
    let (method, alloc, names, details, input_digest) = match tables {
        RetroTables::Metrics { ballots, metrics } => {
            let ballots = metric_ballots_from_table(&ballots)?;
            let projects = project_metrics_from_table(&metrics)?;
            let params =
                R4Params { cap_share: share, min_amount: min.to_f64_lossy() / 10f64.powi(opts.decimals as i32) };
            let (lines, alloc) = r4_metric_ballots(&projects, &ballots, &params, &token, budget).map_err(config_err)?;
            let names = projects.iter().map(|p| (p.id.clone(), p.name.clone())).collect();
            let d = digest(&("retro/r4", &params, &token, &budget, &ballots, &projects));
            ("r4 metric ballots", alloc, names, serde_json::to_value(&lines).map_err(config_err)?, d)
        }
        RetroTables::Votes(t) => {
            let vc = t.require_one_of(&["voter", "badgeholder", "address"], "voter")?;
            let pc = t.require_one_of(&["project", "project_id", "grant"], "project")?;
            let ac = t.require_one_of(&["amount", "votes", "op"], "amount")?;
            let mut votes = Vec::with_capacity(t.len());
            for row in t.rows() {
                votes.push((row.get(vc).to_string(), row.get(pc).to_string(), t.parse_non_negative(row, ac)?));
            }
            let params = R3Params { quorum: opts.quorum, min_median: opts.min_median };
            let (lines, alloc) = r3_median(&votes, &params, &token, budget).map_err(config_err)?;
            let mut sorted = votes.clone();
            sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
            let d = digest(&("retro/r3", &params, &token, &budget, &sorted));
            ("r3 median", alloc, BTreeMap::new(), serde_json::to_value(&lines).map_err(config_err)?, d)
        }
        RetroTables::Scores(t) => {
            let pc = t.require_one_of(&["project", "id", "project_id"], "project")?;
            let sc = t.require_one_of(&["score", "weight", "value"], "score")?;
            let mut m = BTreeMap::new();
            for row in t.rows() {
                let id = row.get(pc).to_string();
                let s = t.parse_non_negative(row, sc)?;
                if m.insert(id.clone(), s).is_some() {
                    return Err(t.error(row, pc, format!("project `{id}` appears twice")).into());
                }
            }
            let ids: Vec<String> = m.keys().cloned().collect();
            let scores: Vec<f64> = m.values().copied().collect();
            let alloc = capped_proportional(&ids, &scores, &token, budget, share, min).map_err(config_err)?;
            let d = digest(&("retro/capped", share, &min, &token, &budget, &m));
            ("capped proportional", alloc, BTreeMap::new(), serde_json::Value::Null, d)
        }
    };
    let r = RetroResult {
        method: method.to_string(),
        token,
        budget,
        distributed: alloc.distributed,
        unallocated: alloc.unallocated,
        lines: lines_from(&alloc, &names),
        details,
    };
    let file = ResultFile::new("retro", opts, input_digest, digest(&r), &r).map_err(config_err)?;
    Ok((r, file))
}

/// Reads the inputs of a retro run and computes it.
pub fn retro(opts: &RetroOptions) -> Result<(RetroResult, ResultFile), EngineError> {
    retro_from_tables(opts, RetroTables::read(opts)?)
}

/// Official amounts (whole tokens) by project id, from a results CSV such as `rf4_results.csv`.
pub fn read_official(path: &Path) -> Result<BTreeMap<String, f64>, EngineError> {
    official_from_table(&Table::read(path)?)
}

/// Official amounts (whole tokens) by project id, from a loaded results table.
pub fn official_from_table(t: &Table) -> Result<BTreeMap<String, f64>, EngineError> {
    let ic = t.require_one_of(&["Project_id", "application_id", "project", "id"], "id")?;
    let ac = t.require_one_of(&["rf4_allocation", "amount", "allocation"], "amount")?;
    let mut m = BTreeMap::new();
    for row in t.rows() {
        m.insert(row.get(ic).to_string(), t.parse_non_negative(row, ac)?);
    }
    Ok(m)
}

/// How a retro result compares with official amounts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// Largest absolute difference, whole tokens.
    pub max_diff: f64,
    /// Projects within one token of the official amount.
    pub within_one: usize,
    /// Projects on one side only.
    pub unmatched: usize,
}

/// Compares a retro result with official amounts (whole tokens) by id.
pub fn compare(r: &RetroResult, official: &BTreeMap<String, f64>) -> Comparison {
    let scale = 10f64.powi(r.token.decimals as i32);
    let mut c = Comparison { max_diff: 0.0, within_one: 0, unmatched: 0 };
    for l in &r.lines {
        match official.get(&l.id) {
            Some(o) => {
                let d = (l.amount.to_f64_lossy() / scale - o).abs();
                c.max_diff = c.max_diff.max(d);
                if d <= 1.0 {
                    c.within_one += 1;
                }
            }
            None => c.unmatched += 1,
        }
    }
    c.unmatched += official.keys().filter(|k| !r.lines.iter().any(|l| &l.id == *k)).count();
    c
}

// ---------------------------------------------------------------------------------------------------------------
// tally

/// Options of a quadratic vote tally, as recorded in its result file (`allonet tally`'s options).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TallyOptions {
    /// Votes JSON (Snapshot proposal or credits election).
    pub votes: PathBuf,
    /// Also split this budget (whole tokens) by the scores, exactly.
    pub budget: Option<String>,
    /// Token symbol for the budget.
    pub token: String,
    /// Token decimals for the budget.
    pub decimals: u8,
}

/// One choice's line of a tally.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TallyLine {
    /// The choice.
    pub choice: String,
    /// Its quadratic score.
    pub score: f64,
    /// Its share of the budget in base units, when a budget was given.
    pub payout: Option<TokenAmount>,
}

/// The outcome of a tally.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TallyResult {
    /// `snapshot quadratic` or `qv credits`.
    pub method: String,
    /// Votes or ballots counted.
    pub voters: usize,
    /// One line per choice, in the file's order.
    pub lines: Vec<TallyLine>,
    /// The budget's token, when a budget was given.
    pub token: Option<Token>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Votes {
    Credits(CreditElection),
    Snapshot(SnapshotProposal),
}

fn tally_votes(opts: &TallyOptions, name: &str, votes: Votes) -> Result<(TallyResult, ResultFile), EngineError> {
    let named = |e| config_err(format!("{name}: {e}"));
    let (method, choices, scores, voters, d) = match &votes {
        Votes::Snapshot(p) => {
            let s = snapshot_quadratic(p).map_err(named)?;
            ("snapshot quadratic", p.choices.clone(), s, p.votes.len(), digest(&("tally/snapshot", p)))
        }
        Votes::Credits(e) => {
            let s = credit_qv(e).map_err(named)?;
            let s = s.into_iter().map(|v| v as f64).collect();
            ("qv credits", e.choices.clone(), s, e.ballots.len(), digest(&("tally/credits", e)))
        }
    };
    let (token, payouts) = match &opts.budget {
        Some(b) => {
            let token = Token::new(&opts.token, opts.decimals);
            let budget = token.parse(b).map_err(|e| config_err(format!("--budget {b}: {e}")))?;
            let positive: Vec<f64> = scores.iter().map(|s| s.max(0.0)).collect();
            let a = allocate(&choices, &positive, &token, budget, budget, None).map_err(config_err)?;
            (Some(token), a.payouts.into_iter().map(|p| Some(p.amount)).collect())
        }
        None => (None, vec![None; choices.len()]),
    };
    let lines = choices
        .into_iter()
        .zip(scores)
        .zip(payouts)
        .map(|((choice, score), payout)| TallyLine { choice, score, payout })
        .collect();
    let d = digest(&(d, &token, &opts.budget));
    let r = TallyResult { method: method.to_string(), voters, lines, token };
    let file = ResultFile::new("tally", opts, d, digest(&r), &r).map_err(config_err)?;
    Ok((r, file))
}

/// Tallies votes given as JSON bytes, naming them `name` in errors.
pub fn tally_from_bytes(
    opts: &TallyOptions,
    name: &str,
    bytes: &[u8],
) -> Result<(TallyResult, ResultFile), EngineError> {
    tally_votes(opts, name, json_from_bytes(name, bytes)?)
}

/// Reads the votes file of the options and tallies it.
pub fn tally(opts: &TallyOptions) -> Result<(TallyResult, ResultFile), EngineError> {
    tally_votes(opts, &opts.votes.display().to_string(), read_json(&opts.votes)?)
}

// ---------------------------------------------------------------------------------------------------------------
// verify

/// An input path as written (from the current directory) when it exists, else relative to `base` when that
/// exists, else as written.
fn resolve(p: &mut PathBuf, base: &Path) {
    if p.is_absolute() || p.exists() {
        return;
    }
    let alt = base.join(&*p);
    if alt.exists() {
        *p = alt;
    }
}

fn options<T: serde::de::DeserializeOwned>(file: &ResultFile) -> Result<T, EngineError> {
    serde_json::from_value(file.options.clone()).map_err(config_err)
}

/// Recomputes a result file from the options and inputs it records; input paths are tried as written, then
/// relative to `base` (the result file's directory). Returns the fresh result file.
pub fn recompute(file: &ResultFile, base: &Path) -> Result<ResultFile, EngineError> {
    match file.command.as_str() {
        "round" => {
            let mut o: RoundOptions = options(file)?;
            resolve(&mut o.contributions, base);
            for p in [&mut o.sybil_scores, &mut o.clusters, &mut o.trust].into_iter().flatten() {
                resolve(p, base);
            }
            let (r, _) = round(&o, &mut |_| {})?;
            round_file(&o, &r)
        }
        "retro" => {
            let mut o: RetroOptions = options(file)?;
            for p in [&mut o.ballots, &mut o.metrics, &mut o.votes, &mut o.scores].into_iter().flatten() {
                resolve(p, base);
            }
            Ok(retro(&o)?.1)
        }
        "tally" => {
            let mut o: TallyOptions = options(file)?;
            resolve(&mut o.votes, base);
            Ok(tally(&o)?.1)
        }
        other => Err(config_err(format!("unknown command `{other}` in result file"))),
    }
}

/// A result file checked against its recomputation.
#[derive(Clone, Debug, PartialEq)]
pub struct Verification {
    /// The recomputed result file.
    pub fresh: ResultFile,
    /// The inputs hash to the recorded input digest.
    pub input_ok: bool,
    /// The recomputed result hashes to the recorded output digest.
    pub output_ok: bool,
    /// The recorded result body equals the recomputed one.
    pub body_ok: bool,
}

impl Verification {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.input_ok && self.output_ok && self.body_ok
    }

    /// `Ok` when every check passed, else the reason, naming the result file `name`.
    pub fn check(&self, name: &str) -> Result<(), EngineError> {
        if !self.input_ok {
            return Err(InputError::file(name, "the inputs differ from those the result was computed from").into());
        }
        if !self.output_ok || !self.body_ok {
            let msg = "the recorded result does not match a recomputation from its inputs";
            return Err(InputError::file(name, msg).into());
        }
        Ok(())
    }
}

/// Recomputes `file` (see [`recompute`]) and compares input digest, output digest and result body.
pub fn verify(file: &ResultFile, base: &Path) -> Result<Verification, EngineError> {
    let fresh = recompute(file, base)?;
    Ok(Verification {
        input_ok: fresh.input_digest == file.input_digest,
        output_ok: fresh.output_digest == file.output_digest,
        body_ok: fresh.result == file.result,
        fresh,
    })
}

/// [`verify`] of a result file on disk, its inputs resolved relative to its directory as a fallback.
pub fn verify_file(path: &Path) -> Result<(ResultFile, Verification), EngineError> {
    let file = ResultFile::load(path)?;
    let v = verify(&file, path.parent().unwrap_or(Path::new(".")))?;
    Ok((file, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("allonet-engine-results-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn opts(contributions: &str, mechanism: MechanismChoice) -> RoundOptions {
        RoundOptions {
            mechanism,
            cap: Some("40%".into()),
            fill: true,
            ..RoundOptions::new(contributions, "1000", "USDC", 6)
        }
    }

    const GIFTS: &str = "donor,project,amount\na,x,1\nb,x,4\nc,y,9\nd,y,1\ne,z,2\nf,z,2\na,z,3\ng,w,5\n";

    fn tables(body: &str) -> RoundTables {
        RoundTables {
            contributions: Table::from_bytes("gifts.csv", body.as_bytes()).unwrap(),
            sybil_scores: None,
            clusters: None,
            trust: None,
        }
    }

    #[test]
    fn a_round_from_a_table_is_reproducible_and_conserves_the_pool() {
        for m in [MechanismChoice::Qf, MechanismChoice::Cocm, MechanismChoice::Blend] {
            let o = opts("gifts.csv", m);
            let mut steps = 0;
            let (a, stats) = round_from_tables(&o, &tables(GIFTS), &mut |_| steps += 1).unwrap();
            let (b, _) = round_from_tables(&o, &tables(GIFTS), &mut |_| {}).unwrap();
            assert_eq!((a.input_digest, a.output_digest), (b.input_digest, b.output_digest));
            assert_eq!(a, b);
            assert_eq!((stats.rows, stats.kept, steps), (8, 8, 1));
            let paid: TokenAmount = a.lines.iter().map(|l| l.matched).sum();
            assert_eq!(paid, a.distributed);
            assert_eq!(a.distributed.checked_add(a.unallocated), Some(a.config.pool));
            assert_eq!(a.config.pool, Token::new("USDC", 6).parse("1000").unwrap());
            let w = a.lines.iter().find(|l| l.project == "w").unwrap();
            assert!(w.matched.is_zero(), "a single donor is matched nothing");
            let file = round_file(&o, &a).unwrap();
            assert_eq!((file.input_digest, file.output_digest), (a.input_digest, a.output_digest));
            assert_eq!(file.options["mechanism"], serde_json::to_value(m).unwrap());
        }
    }

    #[test]
    fn options_round_trip_through_the_recorded_json() {
        let o = opts("gifts.csv", MechanismChoice::Blend);
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["mechanism"], "blend");
        assert_eq!(v["contributions"], "gifts.csv");
        assert_eq!(serde_json::from_value::<RoundOptions>(v).unwrap(), o);
    }

    #[test]
    fn verify_passes_a_fresh_result_and_catches_tampering_and_changed_inputs() {
        let d = tmpdir("verify");
        let input = d.join("gifts.csv");
        std::fs::write(&input, GIFTS).unwrap();
        let o = opts(input.to_str().unwrap(), MechanismChoice::Qf);
        let (r, _) = round(&o, &mut |_| {}).unwrap();
        let file = round_file(&o, &r).unwrap();
        let v = verify(&file, &d).unwrap();
        assert!(v.ok() && v.check("r.json").is_ok(), "{v:?}");

        let mut tampered = file.clone();
        tampered.result["lines"][0]["matched"] = serde_json::Value::String("1".into());
        let v = verify(&tampered, &d).unwrap();
        assert!(v.input_ok && v.output_ok && !v.body_ok);
        let e = v.check("r.json").unwrap_err().to_string();
        assert!(e.starts_with("r.json: ") && e.contains("does not match a recomputation"), "{e}");

        std::fs::write(&input, GIFTS.replace("g,w,5", "g,w,6")).unwrap();
        let v = verify(&file, &d).unwrap();
        assert!(!v.input_ok && !v.ok());
        assert!(v.check("r.json").unwrap_err().to_string().contains("inputs differ"));

        let mut unknown = file;
        unknown.command = "nope".into();
        assert!(verify(&unknown, &d).unwrap_err().to_string().contains("unknown command `nope`"));
    }

    #[test]
    fn verify_finds_inputs_next_to_the_result_file() {
        let d = tmpdir("relative");
        std::fs::write(d.join("scores.csv"), "project,score\np,3\nq,1\n").unwrap();
        let o = RetroOptions {
            ballots: None,
            metrics: None,
            votes: None,
            scores: Some(d.join("scores.csv")),
            budget: "1000".into(),
            token: "OP".into(),
            decimals: 18,
            cap: "80%".into(),
            min: "1".into(),
            quorum: 17,
            min_median: 1500.0,
            compare: None,
        };
        let (r, mut file) = retro(&o).unwrap();
        assert_eq!(r.distributed.checked_add(r.unallocated), Some(r.budget));
        file.options["scores"] = "scores.csv".into();
        let v = verify(&file, &d).unwrap();
        assert!(v.ok(), "{v:?}");
    }

    #[test]
    fn bad_input_is_refused_with_a_located_error() {
        let o = opts("gifts.csv", MechanismChoice::Qf);
        let e = round_from_tables(&o, &tables("donor,project,amount\na,x,1\nb,x,-3\n"), &mut |_| {}).unwrap_err();
        match &e {
            EngineError::Input(i) => {
                assert_eq!((i.file.as_str(), i.line, i.field.as_deref()), ("gifts.csv", Some(3), Some("amount")));
            }
            other => panic!("expected an input error, got {other:?}"),
        }
        let e = round_from_tables(&o, &tables("donor,project,amount\na,x,0\n"), &mut |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "gifts.csv: no gifts with a positive amount");
        let bad = RoundOptions { pool: "lots".into(), ..o.clone() };
        let e = round(&bad, &mut |_| panic!("nothing is read before the options are checked")).unwrap_err();
        assert!(e.to_string().starts_with("--pool lots: "), "{e}");
        let e = tally_from_bytes(
            &TallyOptions { votes: "v.json".into(), budget: None, token: "USD".into(), decimals: 6 },
            "v.json",
            b"{\"choices\": [",
        )
        .unwrap_err();
        assert!(matches!(&e, EngineError::Input(i) if i.file == "v.json" && i.line == Some(1)), "{e:?}");
    }

    #[test]
    fn a_tally_splits_its_budget_exactly() {
        let o = TallyOptions { votes: "v.json".into(), budget: Some("100".into()), token: "USD".into(), decimals: 6 };
        let votes = br#"{"choices":["a","b"],"credits":100,"ballots":[{"voter":"v1","votes":{"a":3,"b":1}},{"voter":"v2","votes":{"b":5}}]}"#;
        let (r, file) = tally_from_bytes(&o, "v.json", votes).unwrap();
        assert_eq!(r.method, "qv credits");
        let paid: TokenAmount = r.lines.iter().map(|l| l.payout.unwrap()).sum();
        assert_eq!(paid, Token::new("USD", 6).parse("100").unwrap());
        assert_eq!(file.output_digest, digest(&r));
    }
}
