//! `allonet tally`: quadratic voting scores from a votes JSON file.

use crate::output::{emit, right, show_amount, table, OutputArgs, ResultFile};
use allonet_core::input::{json_from_bytes, read_json};
use allonet_core::{digest, Digest, Token, TokenAmount};
use allonet_mechanisms::matching::allocate;
use allonet_mechanisms::qv::{credit_qv, snapshot_quadratic, CreditElection, SnapshotProposal};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Options of `allonet tally`.
#[derive(clap::Args, Clone, Debug, Serialize, Deserialize)]
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
    #[serde(skip)]
    pub out: OutputArgs,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TallyLine {
    pub choice: String,
    pub score: f64,
    pub payout: Option<TokenAmount>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TallyResult {
    pub method: String,
    pub voters: usize,
    pub lines: Vec<TallyLine>,
    pub token: Option<Token>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Votes {
    Credits(CreditElection),
    Snapshot(SnapshotProposal),
}

pub fn compute_from_bytes(args: &TallyArgs, name: &str, bytes: Option<&[u8]>) -> Result<(TallyResult, Digest)> {
    let votes: Votes = match bytes {
        Some(b) => json_from_bytes(name, b)?,
        None => read_json(&args.votes)?,
    };
    let (method, choices, scores, voters, d) = match &votes {
        Votes::Snapshot(p) => {
            let s = snapshot_quadratic(p).with_context(|| name.to_string())?;
            ("snapshot quadratic", p.choices.clone(), s, p.votes.len(), digest(&("tally/snapshot", p)))
        }
        Votes::Credits(e) => {
            let s = credit_qv(e).with_context(|| name.to_string())?;
            (
                "qv credits",
                e.choices.clone(),
                s.into_iter().map(|v| v as f64).collect(),
                e.ballots.len(),
                digest(&("tally/credits", e)),
            )
        }
    };
    let (token, payouts) = match &args.budget {
        Some(b) => {
            let token = Token::new(&args.token, args.decimals);
            let budget = token.parse(b).with_context(|| format!("--budget {b}"))?;
            let positive: Vec<f64> = scores.iter().map(|s| s.max(0.0)).collect();
            let a = allocate(&choices, &positive, &token, budget, budget, None)?;
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
    let d = digest(&(d, &token, &args.budget));
    Ok((TallyResult { method: method.to_string(), voters, lines, token }, d))
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
    let (r, d) = compute_from_bytes(args, &args.votes.display().to_string(), None)?;
    let file = ResultFile::new("tally", args, d, digest(&r), &r)?;
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
