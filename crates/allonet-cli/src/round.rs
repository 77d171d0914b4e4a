//! `allonet round`: contributions CSV → matching.

use crate::output::{self, emit, right, rows_to_show, show_amount, table, OutputArgs, Progress, ResultFile};
use allonet_core::{InputError, Table, Token};
use allonet_mechanisms::donations::{contributions_from_table, normalise_id, ContributionColumns, ReadStats};
use allonet_mechanisms::matching::Cap;
use allonet_mechanisms::qf::CocmStyle;
use allonet_mechanisms::round::{run_round, Mechanism, RoundConfig, RoundInputs, RoundResult};
use allonet_mechanisms::sybil::SybilPolicy;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MechanismArg {
    /// Classic quadratic funding.
    Qf,
    /// Pairwise-bounded QF (see --pairwise-m, --trust).
    Pairwise,
    /// Cluster match over donation profiles (or --clusters).
    Cluster,
    /// Connection-oriented cluster match (Gitcoin's COCM; harsh unless --soft).
    Cocm,
    /// --pct-cocm · COCM + (1 − pct) · QF.
    Blend,
}

/// Options of `allonet round`. Serialised into result files so `allonet verify` can re-run them.
#[derive(clap::Args, Clone, Debug, Serialize, Deserialize)]
pub struct RoundArgs {
    /// Contributions CSV: one row per gift. Columns are found by name (donor|contributor|voter|address,
    /// project|grant|recipient, amount); a `success` column keeps only True rows.
    pub contributions: PathBuf,
    /// Matching mechanism.
    #[arg(short, long, value_enum, default_value_t = MechanismArg::Qf)]
    pub mechanism: MechanismArg,
    /// Matching pool in whole tokens, e.g. 50000 or 1234.5.
    #[arg(long, default_value = "10000")]
    pub pool: String,
    /// Token symbol shown in output.
    #[arg(long, default_value = "USD")]
    pub token: String,
    /// Token decimals (base units per token = 10^decimals); 6 for USDC, 18 for DAI/ETH/OP.
    #[arg(long, default_value_t = 6)]
    pub decimals: u8,
    /// Per-project cap: a share of the pool (`10%`) or an amount (`5000`); overflow goes to the others.
    #[arg(long)]
    pub cap: Option<String>,
    /// Pay out the whole pool even when the QF scores sum to less (pluralistic.js ignoreSaturation).
    #[arg(long)]
    pub fill: bool,
    /// Donor score CSV (donor|address, score|aggregate_score) for sybil weighting; unscored donors count 0.
    #[arg(long, value_name = "CSV")]
    pub sybil_scores: Option<PathBuf>,
    /// Score at which a donor's gifts count half (below: zero).
    #[arg(long, default_value_t = 15.0)]
    pub s50: f64,
    /// Score at which gifts count in full.
    #[arg(long, default_value_t = 25.0)]
    pub s100: f64,
    /// Ignore gifts below this amount (whole tokens).
    #[arg(long, default_value_t = 0.0)]
    pub min_gift: f64,
    /// Operator clusters CSV (donor, cluster[, weight]) for cluster match / COCM instead of the defaults.
    #[arg(long, value_name = "CSV")]
    pub clusters: Option<PathBuf>,
    /// Donor trust CSV (donor, trust in 0..1) for pairwise QF.
    #[arg(long, value_name = "CSV")]
    pub trust: Option<PathBuf>,
    /// The M of pairwise-bounded QF.
    #[arg(long, default_value_t = 25.0)]
    pub pairwise_m: f64,
    /// Weight of COCM in --mechanism blend, 0..1.
    #[arg(long, default_value_t = 0.5)]
    pub pct_cocm: f64,
    /// Soft COCM (connected gifts count as √c) instead of harsh.
    #[arg(long)]
    pub soft: bool,
    /// Drop rows with a negative amount (refunds in Gitcoin exports) instead of refusing the file.
    #[arg(long)]
    pub skip_negative: bool,
    /// Name of the donor column, when not auto-detected.
    #[arg(long)]
    pub donor_col: Option<String>,
    /// Name of the project column.
    #[arg(long)]
    pub project_col: Option<String>,
    /// Name of the amount column.
    #[arg(long)]
    pub amount_col: Option<String>,
    #[command(flatten)]
    #[serde(skip)]
    pub out: OutputArgs,
}

impl RoundArgs {
    pub fn mechanism(&self) -> Mechanism {
        let style = if self.soft { CocmStyle::Soft } else { CocmStyle::Harsh };
        match self.mechanism {
            MechanismArg::Qf => Mechanism::Qf,
            MechanismArg::Pairwise => Mechanism::Pairwise { m: self.pairwise_m },
            MechanismArg::Cluster => Mechanism::ClusterMatch,
            MechanismArg::Cocm => Mechanism::Cocm { style },
            MechanismArg::Blend => Mechanism::Blend { pct_cocm: self.pct_cocm, style },
        }
    }

    pub fn config(&self) -> Result<RoundConfig> {
        let token = Token::new(&self.token, self.decimals);
        let pool = token.parse(&self.pool).with_context(|| format!("--pool {}", self.pool))?;
        let cap = self.cap.as_deref().map(|c| Cap::parse(c, &token)).transpose().context("--cap")?;
        let sybil = match &self.sybil_scores {
            Some(_) => Some(SybilPolicy::new(self.s50, self.s100)?),
            None => None,
        };
        if !(self.min_gift.is_finite() && self.min_gift >= 0.0) {
            anyhow::bail!("--min-gift must be zero or more");
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

/// The loaded input tables of a round.
pub struct RoundTables {
    pub contributions: Table,
    pub sybil_scores: Option<Table>,
    pub clusters: Option<Table>,
    pub trust: Option<Table>,
}

/// Reads every input file of a round (all before computing anything).
pub fn load(args: &RoundArgs, progress: &Progress) -> Result<RoundTables, InputError> {
    let opt = |p: &Option<PathBuf>| p.as_ref().map(|p| Table::read(p)).transpose();
    let msg = format!("reading {}", args.contributions.display());
    Ok(RoundTables {
        contributions: Table::read_with_progress(&args.contributions, &mut |d, t| progress.bytes(&msg, d, t))?,
        sybil_scores: opt(&args.sybil_scores)?,
        clusters: opt(&args.clusters)?,
        trust: opt(&args.trust)?,
    })
}

/// Validates the loaded tables and runs the round.
pub fn compute_tables(args: &RoundArgs, tables: &RoundTables, progress: &Progress) -> Result<(RoundResult, ReadStats)> {
    let config = args.config()?;
    let t = &tables.contributions;
    let cols = ContributionColumns {
        donor: args.donor_col.clone(),
        project: args.project_col.clone(),
        amount: args.amount_col.clone(),
        skip_negative: args.skip_negative,
    };
    let (contributions, stats) = contributions_from_table(t, &cols)?;
    if contributions.is_empty() {
        anyhow::bail!("{}: no gifts with a positive amount", t.file);
    }
    let sybil_scores = tables
        .sybil_scores
        .as_ref()
        .map(|t| {
            read_scores(t, &["donor", "address", "contributor", "voter"], &["score", "aggregate_score", "rawScore"])
        })
        .transpose()?;
    let clusters = tables.clusters.as_ref().map(read_clusters).transpose()?;
    let trust = tables
        .trust
        .as_ref()
        .map(|t| read_scores(t, &["donor", "address", "contributor"], &["trust", "weight"]))
        .transpose()?;
    let inputs = RoundInputs { contributions, sybil_scores, clusters, trust };
    progress.stage(format!("scoring {} gifts with {}", stats.kept, config.mechanism.name()));
    let r = run_round(&inputs, &config)?;
    Ok((r, stats))
}

/// Reads the inputs of a round and runs it.
pub fn compute(args: &RoundArgs, progress: &Progress) -> Result<(RoundResult, ReadStats)> {
    args.config()?; // refuse bad options before reading large files
    let tables = load(args, progress)?;
    compute_tables(args, &tables, progress)
}

pub fn result_file(args: &RoundArgs, r: &RoundResult) -> Result<ResultFile> {
    ResultFile::new("round", args, r.input_digest, r.output_digest, r)
}

pub fn print_table(r: &RoundResult, top: Option<usize>) {
    let token = &r.config.token;
    let mut lines: Vec<_> = r.lines.iter().collect();
    lines.sort_by(|a, b| b.matched.cmp(&a.matched).then(a.project.cmp(&b.project)));
    let show = rows_to_show(top, lines.len());
    let mut t =
        table(&["#", "project", "donors", "contributed", "score", &format!("match ({})", token.symbol), "share"]);
    let total = r.config.pool.to_f64_lossy();
    for (i, l) in lines.iter().take(show).enumerate() {
        let share = if total > 0.0 { l.matched.to_f64_lossy() / total * 100.0 } else { 0.0 };
        t.add_row(vec![
            (i + 1).to_string(),
            truncate(&l.project, 48),
            l.donors.to_string(),
            output::group_thousands(&format!("{:.2}", l.contributed)),
            output::group_thousands(&format!("{:.2}", l.score)),
            format!("{}{}", show_amount(token, l.matched, 2), if l.capped { " (cap)" } else { "" }),
            format!("{share:.2}%"),
        ]);
    }
    right(&mut t, &[0, 2, 3, 4, 5, 6]);
    println!("{t}");
    if show < lines.len() {
        println!("… {} more projects (use --top N, --csv or --json for all)", lines.len() - show);
    }
    println!(
        "{} · {} donors · {} projects · {} gifts · pool {} {} · paid {} · unallocated {}",
        r.config.mechanism.name(),
        r.donors,
        r.projects,
        r.gifts,
        show_amount(token, r.config.pool, 2),
        token.symbol,
        show_amount(token, r.distributed, 6),
        show_amount(token, r.unallocated, 6),
    );
    println!("{}", output::digests_line(&r.input_digest, &r.output_digest));
}

fn html_report(r: &RoundResult) -> String {
    let token = &r.config.token;
    let mut lines: Vec<_> = r.lines.iter().collect();
    lines.sort_by(|a, b| b.matched.cmp(&a.matched).then(a.project.cmp(&b.project)));
    let bars: Vec<crate::html::Bar> = lines
        .iter()
        .take(40)
        .map(|l| crate::html::Bar {
            label: l.project.clone(),
            value: l.matched.to_f64_lossy(),
            text: format!("{} {}", show_amount(token, l.matched, 2), token.symbol),
        })
        .collect();
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                l.project.clone(),
                l.donors.to_string(),
                format!("{:.2}", l.contributed),
                format!("{:.4}", l.score),
                token.format(l.matched),
                if l.capped { "cap".into() } else { String::new() },
            ]
        })
        .collect();
    let summary = vec![
        format!("{} · {} donors · {} projects · {} gifts", r.config.mechanism.name(), r.donors, r.projects, r.gifts),
        format!(
            "pool {} {} · paid {} · unallocated {}",
            token.format(r.config.pool),
            token.symbol,
            token.format(r.distributed),
            token.format(r.unallocated)
        ),
        format!("input digest {}", r.input_digest),
        format!("output digest {}", r.output_digest),
    ];
    crate::html::report(
        "allonet round",
        &summary,
        &format!("Matching per project ({}, top {})", token.symbol, bars.len()),
        &bars,
        &["project", "donors", "contributed", "score", &format!("match ({})", token.symbol), ""],
        &rows,
    )
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

pub fn run(args: &RoundArgs) -> Result<()> {
    let progress = Progress::new(true);
    let (r, stats) = compute(args, &progress)?;
    progress.finish();
    let file = result_file(args, &r)?;
    let token = &r.config.token;
    let rows: Vec<Vec<String>> = r
        .lines
        .iter()
        .map(|l| {
            vec![
                l.project.clone(),
                l.donors.to_string(),
                l.contributed.to_string(),
                l.score.to_string(),
                l.matched.to_string(),
                token.format(l.matched),
            ]
        })
        .collect();
    emit(
        &args.out,
        &file,
        &rows,
        &["project", "donors", "contributed", "score", "matched_base_units", "matched"],
        || html_report(&r),
    )?;
    if !args.out.json {
        if stats.kept < stats.rows {
            eprintln!(
                "note: read {} rows, kept {} (skipped {} with success=False, {} with zero amount, {} negative)",
                stats.rows, stats.kept, stats.skipped_failed, stats.skipped_zero, stats.skipped_negative
            );
        }
        print_table(&r, args.out.top);
        if let Some(p) = &args.out.out {
            println!("result written to {} (check it with `allonet verify {}`)", p.display(), p.display());
        }
    }
    Ok(())
}
