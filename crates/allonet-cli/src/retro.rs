//! `allonet retro`: retro funding from ballots (RF4 metric ballots, RetroPGF 3 medians) or scores.

use crate::output::{self, emit, right, rows_to_show, show_amount, table, OutputArgs, Progress};
use crate::round::truncate;
use allonet_engine::results::{self, Comparison, ResultFile, RetroLine, RetroOptions, RetroResult};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Options of `allonet retro`; recorded in result files as [`RetroOptions`].
#[derive(clap::Args, Clone, Debug)]
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
    pub out: OutputArgs,
}

impl RetroArgs {
    /// The options the engine runs and a result file records.
    pub fn options(&self) -> RetroOptions {
        let a = self.clone();
        RetroOptions {
            ballots: a.ballots,
            metrics: a.metrics,
            votes: a.votes,
            scores: a.scores,
            budget: a.budget,
            token: a.token,
            decimals: a.decimals,
            cap: a.cap,
            min: a.min,
            quorum: a.quorum,
            min_median: a.min_median,
            compare: a.compare,
        }
    }
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
        let Comparison { max_diff: max, within_one: within, unmatched: missing } = results::compare(r, o);
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
    let (r, file) = results::retro(&args.options())?;
    let official = args.compare.as_deref().map(results::read_official).transpose()?;
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
