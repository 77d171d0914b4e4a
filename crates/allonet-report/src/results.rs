//! Mechanism results as people see them: the terminal tables, HTML pages and CSV rows of `allonet round`,
//! `retro` and `tally`, and the lines of `allonet verify`. Everything here is computed by
//! [`allonet_engine::results`]; these functions only turn it into text.

use std::collections::BTreeMap;
use std::path::Path;

use allonet_engine::results::{compare, Comparison, ResultFile, RetroLine, RetroResult, TallyResult, Verification};
use allonet_mechanisms::donations::ReadStats;
use allonet_mechanisms::round::{RoundLine, RoundResult};

use crate::html::{report, Bar};
use crate::{digests_line, group_thousands, right, rows_to_show, show_amount, table, truncate};

/// A CSV export: its header and its rows (every line of a result, unrounded).
#[derive(Clone, Debug, PartialEq)]
pub struct Csv {
    /// Column names.
    pub header: &'static [&'static str],
    /// One row per line of the result.
    pub rows: Vec<Vec<String>>,
}

/// Bars drawn in an HTML chart at most.
const CHART_BARS: usize = 40;

/// `… N more projects` when the table shows only some of them.
fn more_line(out: &mut Vec<String>, shown: usize, total: usize) {
    if shown < total {
        out.push(format!("… {} more projects (use --top N, --csv or --json for all)", total - shown));
    }
}

/// The line telling where the result file went and how to check it.
pub fn result_written(path: &Path) -> String {
    format!("result written to {} (check it with `allonet verify {}`)", path.display(), path.display())
}

// ---------------------------------------------------------------------------------------------------------------
// round

/// A round's lines, largest match first (ties by project).
fn round_order(r: &RoundResult) -> Vec<&RoundLine> {
    let mut lines: Vec<_> = r.lines.iter().collect();
    lines.sort_by(|a, b| b.matched.cmp(&a.matched).then(a.project.cmp(&b.project)));
    lines
}

/// The note on rows a round's contributions file had but did not count, when it skipped any.
pub fn read_note(s: &ReadStats) -> Option<String> {
    (s.kept < s.rows).then(|| {
        format!(
            "note: read {} rows, kept {} (skipped {} with success=False, {} with zero amount, {} negative)",
            s.rows, s.kept, s.skipped_failed, s.skipped_zero, s.skipped_negative
        )
    })
}

/// A round in the terminal: the `top` projects by match (see [`rows_to_show`]), totals and digests.
pub fn round_table(r: &RoundResult, top: Option<usize>) -> String {
    let token = &r.config.token;
    let lines = round_order(r);
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
            group_thousands(&format!("{:.2}", l.contributed)),
            group_thousands(&format!("{:.2}", l.score)),
            format!("{}{}", show_amount(token, l.matched, 2), if l.capped { " (cap)" } else { "" }),
            format!("{share:.2}%"),
        ]);
    }
    right(&mut t, &[0, 2, 3, 4, 5, 6]);
    let mut out = vec![t.to_string()];
    more_line(&mut out, show, lines.len());
    out.push(format!(
        "{} · {} donors · {} projects · {} gifts · pool {} {} · paid {} · unallocated {}",
        r.config.mechanism.name(),
        r.donors,
        r.projects,
        r.gifts,
        show_amount(token, r.config.pool, 2),
        token.symbol,
        show_amount(token, r.distributed, 6),
        show_amount(token, r.unallocated, 6),
    ));
    out.push(digests_line(&r.input_digest, &r.output_digest));
    out.join("\n")
}

/// A round as a self-contained HTML page: matching per project as bars, then every line exactly.
pub fn round_html(r: &RoundResult) -> String {
    let token = &r.config.token;
    let lines = round_order(r);
    let bars: Vec<Bar> = lines
        .iter()
        .take(CHART_BARS)
        .map(|l| Bar {
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
    report(
        "allonet round",
        &summary,
        &format!("Matching per project ({}, top {})", token.symbol, bars.len()),
        &bars,
        &["project", "donors", "contributed", "score", &format!("match ({})", token.symbol), ""],
        &rows,
    )
}

/// A round's lines as CSV, in the result's order, matches in base units and in tokens.
pub fn round_csv(r: &RoundResult) -> Csv {
    let token = &r.config.token;
    let rows = r
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
    Csv { header: &["project", "donors", "contributed", "score", "matched_base_units", "matched"], rows }
}

// ---------------------------------------------------------------------------------------------------------------
// retro

/// A retro result's lines, largest award first (ties by id).
fn retro_order(r: &RetroResult) -> Vec<&RetroLine> {
    let mut lines: Vec<&RetroLine> = r.lines.iter().collect();
    lines.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.id.cmp(&b.id)));
    lines
}

/// A project's name, or its id when the inputs name none.
fn label(l: &RetroLine) -> String {
    if l.name.is_empty() {
        l.id.clone()
    } else {
        l.name.clone()
    }
}

/// A retro result in the terminal: the `top` projects by award, with the official amount and the difference
/// when `official` amounts (whole tokens by id) are given, then totals, the comparison and the digests.
pub fn retro_table(
    r: &RetroResult,
    file: &ResultFile,
    top: Option<usize>,
    official: Option<&BTreeMap<String, f64>>,
) -> String {
    let lines = retro_order(r);
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
        let mut row = vec![
            (i + 1).to_string(),
            truncate(&label(l), 44),
            format!("{}{}", show_amount(&r.token, l.amount, 2), if l.capped { " (cap)" } else { "" }),
        ];
        match official.map(|o| o.get(&l.id)) {
            Some(Some(v)) => {
                row.push(group_thousands(&format!("{v:.1}")));
                row.push(format!("{:+.3}", l.amount.to_f64_lossy() / scale - v));
            }
            Some(None) => row.extend(["—".to_string(), String::new()]),
            None => {}
        }
        t.add_row(row);
    }
    right(&mut t, &[0, 2, 3, 4]);
    let mut out = vec![t.to_string()];
    more_line(&mut out, show, lines.len());
    let funded = r.lines.iter().filter(|l| !l.amount.is_zero()).count();
    out.push(format!(
        "{} · {} projects, {} funded · budget {} {} · paid {} · unallocated {}",
        r.method,
        r.lines.len(),
        funded,
        show_amount(&r.token, r.budget, 2),
        sym,
        show_amount(&r.token, r.distributed, 6),
        show_amount(&r.token, r.unallocated, 6)
    ));
    if let Some(o) = official {
        let Comparison { max_diff: max, within_one: within, unmatched: missing } = compare(r, o);
        out.push(format!(
            "vs official: max |diff| {max:.4} {sym} · {within}/{} within 1 {sym} · {missing} unmatched ids",
            r.lines.len()
        ));
    }
    out.push(digests_line(&file.input_digest, &file.output_digest));
    out.join("\n")
}

/// A retro result as a self-contained HTML page: allocation per project as bars, then every line exactly.
pub fn retro_html(r: &RetroResult, file: &ResultFile) -> String {
    let lines = retro_order(r);
    let bars: Vec<Bar> = lines
        .iter()
        .take(CHART_BARS)
        .map(|l| Bar {
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
    report(
        "allonet retro",
        &summary,
        &format!("Allocation per project ({}, top {})", r.token.symbol, bars.len()),
        &bars,
        &["project", "id", "score", &format!("amount ({})", r.token.symbol)],
        &rows,
    )
}

/// A retro result's lines as CSV, in the result's order, awards in base units and in tokens.
pub fn retro_csv(r: &RetroResult) -> Csv {
    let rows = r
        .lines
        .iter()
        .map(|l| {
            vec![l.id.clone(), l.name.clone(), l.score.to_string(), l.amount.to_string(), r.token.format(l.amount)]
        })
        .collect();
    Csv { header: &["id", "name", "score", "amount_base_units", "amount"], rows }
}

// ---------------------------------------------------------------------------------------------------------------
// tally

/// A tally in the terminal: every choice with its score, its share of the positive scores and its payout when
/// a budget was split, then the method, voters and digests.
pub fn tally_table(r: &TallyResult, file: &ResultFile) -> String {
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
    format!("{t}\n{} · {} voters\n{}", r.method, r.voters, digests_line(&file.input_digest, &file.output_digest))
}

/// A tally as a self-contained HTML page: score per choice as bars, then every score.
pub fn tally_html(r: &TallyResult, file: &ResultFile) -> String {
    let bars: Vec<Bar> = r
        .lines
        .iter()
        .map(|l| Bar { label: l.choice.clone(), value: l.score.max(0.0), text: format!("{:.4}", l.score) })
        .collect();
    let rows: Vec<Vec<String>> = r.lines.iter().map(|l| vec![l.choice.clone(), format!("{:.6}", l.score)]).collect();
    let summary = vec![
        format!("{} · {} voters", r.method, r.voters),
        format!("input digest {}", file.input_digest),
        format!("output digest {}", file.output_digest),
    ];
    report("allonet tally", &summary, "Score per choice", &bars, &["choice", "score"], &rows)
}

/// A tally's lines as CSV: choice, score, payout in base units (empty without a budget).
pub fn tally_csv(r: &TallyResult) -> Csv {
    let rows = r
        .lines
        .iter()
        .map(|l| vec![l.choice.clone(), l.score.to_string(), l.payout.map(|p| p.to_string()).unwrap_or_default()])
        .collect();
    Csv { header: &["choice", "score", "payout_base_units"], rows }
}

// ---------------------------------------------------------------------------------------------------------------
// verify

/// The three check lines of `allonet verify`: input digest, output digest and result body, each `ok` or
/// `MISMATCH`, with the recomputed and the recorded values.
pub fn verification(file: &ResultFile, v: &Verification) -> String {
    let mark = |ok: bool| if ok { "ok      " } else { "MISMATCH" };
    let body = if v.body_ok { "identical to the recomputation" } else { "differs from the recomputation" };
    format!(
        "{} input digest  {} (recorded {})\n{} output digest {} (recorded {})\n{} result body   {body}",
        mark(v.input_ok),
        v.fresh.input_digest,
        file.input_digest,
        mark(v.output_ok),
        v.fresh.output_digest,
        file.output_digest,
        mark(v.body_ok),
    )
}

/// The closing line of a passed verification of the result file `name`.
pub fn verified(name: &str, file: &ResultFile) -> String {
    format!("verified: {name} ({})", file.command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use allonet_core::{digest, Token};
    use allonet_engine::results::TallyLine;

    fn tally() -> (TallyResult, ResultFile) {
        let token = Token::new("USD", 6);
        let lines = vec![
            TallyLine { choice: "a <b>".into(), score: 3.0, payout: Some(token.parse("75").unwrap()) },
            TallyLine { choice: "c".into(), score: 1.0, payout: Some(token.parse("25").unwrap()) },
        ];
        let r = TallyResult { method: "qv credits".into(), voters: 2, lines, token: Some(token) };
        let file = ResultFile::new("tally", &"opts", digest(&"in"), digest(&r), &r).unwrap();
        (r, file)
    }

    #[test]
    fn a_tally_table_shows_shares_payouts_and_digests() {
        let (r, file) = tally();
        let text = tally_table(&r, &file);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("choice") && lines[1].contains("payout"), "{text}");
        let a = lines.iter().find(|l| l.contains("a <b>")).unwrap();
        assert!(a.contains("3.0000") && a.contains("75.00%") && a.contains("75 USD"), "{a}");
        assert_eq!(lines[lines.len() - 3], "qv credits · 2 voters");
        assert_eq!(lines[lines.len() - 1], format!("output digest {}", file.output_digest));
        assert!(!text.ends_with('\n'));
        let csv = tally_csv(&r);
        assert_eq!(csv.header, ["choice", "score", "payout_base_units"]);
        assert_eq!(csv.rows[0], ["a <b>", "3", "75000000"]);
    }

    #[test]
    fn a_tally_page_is_self_contained_with_an_svg_chart_and_escaped_text() {
        let (r, file) = tally();
        let page = tally_html(&r, &file);
        assert!(page.starts_with("<!doctype html>") && page.contains("<svg") && page.contains("</svg>"));
        assert!(page.contains("a &lt;b&gt;") && !page.contains("a <b>"));
        assert!(page.contains(&file.output_digest.to_string()));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn a_retro_table_shows_the_top_rows_and_compares_with_official_amounts() {
        let token = Token::new("OP", 18);
        let line = |id: &str, amount: &str| RetroLine {
            id: id.into(),
            name: String::new(),
            score: 1.0,
            amount: token.parse(amount).unwrap(),
            capped: false,
        };
        let r = RetroResult {
            method: "capped proportional".into(),
            token: token.clone(),
            budget: token.parse("100").unwrap(),
            distributed: token.parse("100").unwrap(),
            unallocated: token.parse("0").unwrap(),
            lines: vec![line("p", "30"), line("q", "70")],
            details: serde_json::Value::Null,
        };
        let file = ResultFile::new("retro", &"opts", digest(&"in"), digest(&r), &r).unwrap();
        let official = BTreeMap::from([("q".to_string(), 69.5)]);
        let text = retro_table(&r, &file, Some(1), Some(&official));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[3].contains(" q ") && lines[3].contains("69.5") && lines[3].contains("+0.500"), "{text}");
        assert!(text.contains("… 1 more projects (use --top N, --csv or --json for all)"));
        assert!(text.contains("vs official: max |diff| 0.5000 OP · 1/2 within 1 OP · 1 unmatched ids"), "{text}");
        assert!(retro_html(&r, &file).contains("<svg"));
        assert_eq!(retro_csv(&r).rows[1][3], "70000000000000000000");
    }
}
