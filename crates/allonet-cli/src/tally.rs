//! `allonet tally`: quadratic voting scores from a votes JSON file.

use crate::output::{emit, right, show_amount, table, OutputArgs};
use allonet_engine::results::{self, ResultFile, TallyOptions, TallyResult};
use anyhow::Result;
use std::path::PathBuf;

/// Options of `allonet tally`; recorded in result files as [`TallyOptions`].
#[derive(clap::Args, Clone, Debug)]
pub struct TallyArgs {
    /// Votes JSON. Snapshot form: {"choices": [...], "votes": [{"choice": {"1": w, ...}, "balance": b}]};
    /// credits form: {"choices": [...], "credits": N, "ballots": [{"voter": v, "votes": {"choice": n}}]}.
    pub votes: PathBuf,
    /// Also split this budget (whole tokens) by the scores, exactly.
    #[arg(long)]
    pub budget: Option<String>,
    /// Token symbol for --budget.
    #[arg(long, default_value = "USD")]
    pub token: String,
    /// Token decimals for --budget.
    #[arg(long, default_value_t = 6)]
    pub decimals: u8,
    #[command(flatten)]
    pub out: OutputArgs,
}

impl TallyArgs {
    /// The options the engine runs and a result file records.
    pub fn options(&self) -> TallyOptions {
        let a = self.clone();
        TallyOptions { votes: a.votes, budget: a.budget, token: a.token, decimals: a.decimals }
    }
}

pub fn print_table(r: &TallyResult, file: &ResultFile) {
    let total: f64 = r.lines.iter().map(|l| l.score.max(0.0)).sum();
    let mut header = vec!["choice", "score", "share"];
    if r.token.is_some() {
        header.push("payout");
    }
    let mut t = table(&header);
    for l in &r.lines {
        let mut row = vec![
            l.choice.clone(),
            format!("{:.4}", l.score),
            format!("{:.2}%", if total > 0.0 { l.score.max(0.0) / total * 100.0 } else { 0.0 }),
        ];
        if let (Some(tok), Some(p)) = (&r.token, l.payout) {
            row.push(format!("{} {}", show_amount(tok, p, 2), tok.symbol));
        }
        t.add_row(row);
    }
    right(&mut t, &[1, 2, 3]);
    println!("{t}");
    println!("{} · {} voters", r.method, r.voters);
    println!("{}", crate::output::digests_line(&file.input_digest, &file.output_digest));
}

pub fn run(args: &TallyArgs) -> Result<()> {
    let (r, file) = results::tally(&args.options())?;
    let rows: Vec<Vec<String>> = r
        .lines
        .iter()
        .map(|l| vec![l.choice.clone(), l.score.to_string(), l.payout.map(|p| p.to_string()).unwrap_or_default()])
        .collect();
    emit(&args.out, &file, &rows, &["choice", "score", "payout_base_units"], || {
        let bars: Vec<crate::html::Bar> = r
            .lines
            .iter()
            .map(|l| crate::html::Bar {
                label: l.choice.clone(),
                value: l.score.max(0.0),
                text: format!("{:.4}", l.score),
            })
            .collect();
        let rows: Vec<Vec<String>> =
            r.lines.iter().map(|l| vec![l.choice.clone(), format!("{:.6}", l.score)]).collect();
        let summary = vec![
            format!("{} · {} voters", r.method, r.voters),
            format!("input digest {}", file.input_digest),
            format!("output digest {}", file.output_digest),
        ];
        crate::html::report("allonet tally", &summary, "Score per choice", &bars, &["choice", "score"], &rows)
    })?;
    if !args.out.json {
        print_table(&r, &file);
    }
    Ok(())
}
