//! `allonet retro`: retro funding from ballots (RF4 metric ballots, RetroPGF 3 medians) or scores.

use crate::output::{self, emit, right, rows_to_show, show_amount, table, OutputArgs, Progress, ResultFile};
use crate::round::truncate;
use allonet_core::{digest, Digest, Table, Token, TokenAmount};
use allonet_mechanisms::matching::{Allocation, Cap};
use allonet_mechanisms::retro::{
    capped_proportional, metric_ballots_from_table, project_metrics_from_table, r3_median, r4_metric_ballots, R3Params,
    R4Params,
};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Options of `allonet retro`.
#[derive(clap::Args, Clone, Debug, Serialize, Deserialize)]
pub struct RetroArgs {
    /// RF4-style metric ballots CSV (voter `Address` and JSON `Payload` columns); needs --metrics.
    #[arg(long, value_name = "CSV", requires = "metrics")]
    pub ballots: Option<PathBuf>,
    /// Impact metrics per project CSV (`application_id`, `project_name`, `is_oss`, one column per metric).
    #[arg(long, value_name = "CSV")]
    pub metrics: Option<PathBuf>,
    /// RetroPGF 3-style votes CSV (voter, project, amount): median per project with quorum and minimum.
    #[arg(long, value_name = "CSV", conflicts_with_all = ["ballots", "scores"])]
    pub votes: Option<PathBuf>,
    /// Project scores CSV (project, score) for the capped proportional allocator.
    #[arg(long, value_name = "CSV", conflicts_with = "ballots")]
    pub scores: Option<PathBuf>,
    /// Budget in whole tokens.
    #[arg(long, default_value = "10000000")]
    pub budget: String,
    /// Token symbol.
    #[arg(long, default_value = "OP")]
    pub token: String,
    /// Token decimals.
    #[arg(long, default_value_t = 18)]
    pub decimals: u8,
    /// Largest share of the budget one project may get (metric ballots and scores).
    #[arg(long, default_value = "5%")]
    pub cap: String,
    /// Smallest award in whole tokens; projects below it get nothing and the rest is redistributed.
    #[arg(long, default_value = "1000")]
    pub min: String,
    /// RetroPGF 3: ballots a project needs.
    #[arg(long, default_value_t = 17)]
    pub quorum: usize,
    /// RetroPGF 3: smallest median (whole tokens) a project needs.
    #[arg(long, default_value_t = 1500.0)]
    pub min_median: f64,
    /// Official results CSV to compare with (id column and amount column), e.g. rf4_results.csv.
    #[arg(long, value_name = "CSV")]
    pub compare: Option<PathBuf>,
    #[command(flatten)]
    #[serde(skip)]
    pub out: OutputArgs,
}

/// One project's line.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RetroLine {
    pub id: String,
    pub name: String,
    pub score: f64,
    pub amount: TokenAmount,
    pub capped: bool,
}

/// The outcome of `allonet retro`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RetroResult {
    pub method: String,
    pub token: Token,
    pub budget: TokenAmount,
    pub distributed: TokenAmount,
    pub unallocated: TokenAmount,
    pub lines: Vec<RetroLine>,
    pub details: serde_json::Value,
}

fn cap_share(s: &str) -> Result<f64> {
    match Cap::parse(s, &Token::new("", 0)).context("--cap")? {
        Cap::Ppm(p) => Ok(p as f64 / 1e6),
        Cap::Absolute(_) => bail!("--cap for retro funding is a share of the budget, such as 5%"),
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

/// Reads the inputs and computes the allocation; returns the result and its input digest.
pub fn compute_from_tables(args: &RetroArgs, tables: RetroTables) -> Result<(RetroResult, Digest)> {
    let token = Token::new(&args.token, args.decimals);
    let budget = token.parse(&args.budget).with_context(|| format!("--budget {}", args.budget))?;
    let min = token.parse(&args.min).with_context(|| format!("--min {}", args.min))?;
    let share = cap_share(&args.cap)?;
    let (method, alloc, names, details, input_digest) = match tables {
        RetroTables::Metrics { ballots, metrics } => {
            let ballots = metric_ballots_from_table(&ballots)?;
            let projects = project_metrics_from_table(&metrics)?;
            let params =
                R4Params { cap_share: share, min_amount: min.to_f64_lossy() / 10f64.powi(args.decimals as i32) };
            let (lines, alloc) = r4_metric_ballots(&projects, &ballots, &params, &token, budget)?;
            let names = projects.iter().map(|p| (p.id.clone(), p.name.clone())).collect();
            let d = digest(&("retro/r4", &params, &token, &budget, &ballots, &projects));
            ("r4 metric ballots".to_string(), alloc, names, serde_json::to_value(&lines)?, d)
        }
        RetroTables::Votes(t) => {
            let vc = t.require_one_of(&["voter", "badgeholder", "address"], "voter")?;
            let pc = t.require_one_of(&["project", "project_id", "grant"], "project")?;
            let ac = t.require_one_of(&["amount", "votes", "op"], "amount")?;
            let mut votes = Vec::with_capacity(t.len());
            for row in t.rows() {
                votes.push((row.get(vc).to_string(), row.get(pc).to_string(), t.parse_non_negative(row, ac)?));
            }
            let params = R3Params { quorum: args.quorum, min_median: args.min_median };
            let (lines, alloc) = r3_median(&votes, &params, &token, budget)?;
            let mut sorted = votes.clone();
            sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
            let d = digest(&("retro/r3", &params, &token, &budget, &sorted));
            ("r3 median".to_string(), alloc, BTreeMap::new(), serde_json::to_value(&lines)?, d)
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
            let alloc = capped_proportional(&ids, &scores, &token, budget, share, min)?;
            let d = digest(&("retro/capped", share, &min, &token, &budget, &m));
            ("capped proportional".to_string(), alloc, BTreeMap::new(), serde_json::Value::Null, d)
        }
    };
    let r = RetroResult {
        method,
        token,
        budget,
        distributed: alloc.distributed,
        unallocated: alloc.unallocated,
        lines: lines_from(&alloc, &names),
        details,
    };
    Ok((r, input_digest))
}

/// The loaded input tables of a retro run.
pub enum RetroTables {
    Metrics { ballots: Table, metrics: Table },
    Votes(Table),
    Scores(Table),
}

pub fn load(args: &RetroArgs) -> Result<RetroTables> {
    Ok(match (&args.ballots, &args.metrics, &args.votes, &args.scores) {
        (Some(b), Some(m), None, None) => RetroTables::Metrics { ballots: Table::read(b)?, metrics: Table::read(m)? },
        (None, _, Some(v), None) => RetroTables::Votes(Table::read(v)?),
        (None, _, None, Some(s)) => RetroTables::Scores(Table::read(s)?),
        _ => bail!("give --ballots with --metrics (RF4 metric ballots), --votes (RetroPGF 3 medians) or --scores (capped proportional)"),
    })
}

pub fn compute(args: &RetroArgs) -> Result<(RetroResult, ResultFile)> {
    let (r, d) = compute_from_tables(args, load(args)?)?;
    let file = ResultFile::new("retro", args, d, digest(&r), &r)?;
    Ok((r, file))
}

/// Official amounts by id, from a results CSV.
pub fn read_official(path: &std::path::Path) -> Result<BTreeMap<String, f64>> {
    official_from_table(&Table::read(path)?)
}

/// Official amounts by id, from a loaded results table.
pub fn official_from_table(t: &Table) -> Result<BTreeMap<String, f64>> {
    let ic = t.require_one_of(&["Project_id", "application_id", "project", "id"], "id")?;
    let ac = t.require_one_of(&["rf4_allocation", "amount", "allocation"], "amount")?;
    let mut m = BTreeMap::new();
    for row in t.rows() {
        m.insert(row.get(ic).to_string(), t.parse_non_negative(row, ac)?);
    }
    Ok(m)
}

/// Largest absolute difference (whole tokens), count within one token, and projects missing on either side.
pub fn compare(r: &RetroResult, official: &BTreeMap<String, f64>) -> (f64, usize, usize) {
    let scale = 10f64.powi(r.token.decimals as i32);
    let mut max = 0.0f64;
    let mut within = 0;
    let mut missing = 0;
    for l in &r.lines {
        match official.get(&l.id) {
            Some(o) => {
                let d = (l.amount.to_f64_lossy() / scale - o).abs();
                max = max.max(d);
                if d <= 1.0 {
                    within += 1;
                }
            }
            None => missing += 1,
        }
    }
    missing += official.keys().filter(|k| !r.lines.iter().any(|l| &l.id == *k)).count();
    (max, within, missing)
}

pub fn print_table(r: &RetroResult, file: &ResultFile, top: Option<usize>, official: Option<&BTreeMap<String, f64>>) {
    let mut lines: Vec<&RetroLine> = r.lines.iter().collect();
    lines.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.id.cmp(&b.id)));
    let show = rows_to_show(top, lines.len());
    let sym = &r.token.symbol;
    let mut header = vec!["#".to_string(), "project".to_string(), format!("amount ({sym})")];
    if official.is_some() {
        header.push("official".into());
        header.push("diff".into());
    }
    let mut t = table(&header.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    let scale = 10f64.powi(r.token.decimals as i32);
    for (i, l) in lines.iter().take(show).enumerate() {
        let label = if l.name.is_empty() { l.id.clone() } else { l.name.clone() };
        let mut row = vec![
            (i + 1).to_string(),
            truncate(&label, 44),
            format!("{}{}", show_amount(&r.token, l.amount, 2), if l.capped { " (cap)" } else { "" }),
        ];
        if let Some(o) = official {
            match o.get(&l.id) {
                Some(v) => {
                    row.push(output::group_thousands(&format!("{v:.1}")));
                    row.push(format!("{:+.3}", l.amount.to_f64_lossy() / scale - v));
                }
                None => {
                    row.push("—".into());
                    row.push("".into());
                }
            }
        }
        t.add_row(row);
    }
    right(&mut t, &[0, 2, 3, 4]);
    println!("{t}");
    if show < lines.len() {
        println!("… {} more projects (use --top N, --csv or --json for all)", lines.len() - show);
    }
    let funded = r.lines.iter().filter(|l| !l.amount.is_zero()).count();
    println!(
        "{} · {} projects, {} funded · budget {} {} · paid {} · unallocated {}",
        r.method,
        r.lines.len(),
        funded,
        show_amount(&r.token, r.budget, 2),
        sym,
        show_amount(&r.token, r.distributed, 6),
        show_amount(&r.token, r.unallocated, 6)
    );
    if let Some(o) = official {
        let (max, within, missing) = compare(r, o);
        println!(
            "vs official: max |diff| {max:.4} {sym} · {within}/{} within 1 {sym} · {missing} unmatched ids",
            r.lines.len()
        );
    }
    println!("{}", output::digests_line(&file.input_digest, &file.output_digest));
}

fn html_report(r: &RetroResult, file: &ResultFile) -> String {
    let mut lines: Vec<&RetroLine> = r.lines.iter().collect();
    lines.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.id.cmp(&b.id)));
    let label = |l: &RetroLine| if l.name.is_empty() { l.id.clone() } else { l.name.clone() };
    let bars: Vec<crate::html::Bar> = lines
        .iter()
        .take(40)
        .map(|l| crate::html::Bar {
            label: label(l),
            value: l.amount.to_f64_lossy(),
            text: format!("{} {}", show_amount(&r.token, l.amount, 0), r.token.symbol),
        })
        .collect();
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| vec![label(l), l.id.clone(), format!("{:.6}", l.score), r.token.format(l.amount)])
        .collect();
    let summary = vec![
        format!("{} · {} projects · budget {} {}", r.method, r.lines.len(), r.token.format(r.budget), r.token.symbol),
        format!("paid {} · unallocated {}", r.token.format(r.distributed), r.token.format(r.unallocated)),
        format!("input digest {}", file.input_digest),
        format!("output digest {}", file.output_digest),
    ];
    crate::html::report(
        "allonet retro",
        &summary,
        &format!("Allocation per project ({}, top {})", r.token.symbol, bars.len()),
        &bars,
        &["project", "id", "score", &format!("amount ({})", r.token.symbol)],
        &rows,
    )
}

pub fn run(args: &RetroArgs) -> Result<()> {
    let progress = Progress::new(true);
    progress.stage("reading ballots and computing");
    let (r, file) = compute(args)?;
    let official = args.compare.as_deref().map(read_official).transpose()?;
    progress.finish();
    let rows: Vec<Vec<String>> = r
        .lines
        .iter()
        .map(|l| {
            vec![l.id.clone(), l.name.clone(), l.score.to_string(), l.amount.to_string(), r.token.format(l.amount)]
        })
        .collect();
    emit(&args.out, &file, &rows, &["id", "name", "score", "amount_base_units", "amount"], || html_report(&r, &file))?;
    if !args.out.json {
        print_table(&r, &file, args.out.top, official.as_ref());
        if let Some(p) = &args.out.out {
            println!("result written to {} (check it with `allonet verify {}`)", p.display(), p.display());
        }
    }
    Ok(())
}
