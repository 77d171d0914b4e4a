//! Printing and writing: tables, progress, result files written atomically.

use allonet_core::Digest;
use allonet_engine::plans::ResultFile;
use anyhow::{Context, Result};
use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a command's output goes, shared by round, retro and tally.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct OutputArgs {
    /// Print the full result as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the allocation as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the result file (inputs, options, result, digests) to FILE; `allonet verify FILE` rechecks it.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write an HTML report with a chart to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Rows to show in the terminal table (default: all up to 40, else 20).
    #[arg(long)]
    pub top: Option<usize>,
}

/// Writes bytes to `path` through a temporary file and a rename, so a failure never leaves a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("out")));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes the outputs a command was asked for (after everything succeeded).
pub fn emit(
    out: &OutputArgs,
    file: &ResultFile,
    csv_rows: &[Vec<String>],
    csv_header: &[&str],
    html: impl FnOnce() -> String,
) -> Result<()> {
    if let Some(p) = &out.html {
        write_atomic(p, html().as_bytes())?;
    }
    if let Some(p) = &out.csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(csv_header)?;
        for r in csv_rows {
            w.write_record(r)?;
        }
        write_atomic(p, &w.into_inner()?)?;
    }
    if let Some(p) = &out.out {
        write_atomic(p, serde_json::to_string_pretty(file)?.as_bytes())?;
    }
    if out.json {
        println!("{}", serde_json::to_string_pretty(file)?);
    }
    Ok(())
}

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
    t
}

pub fn right(t: &mut Table, cols: &[usize]) {
    for &c in cols {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// How many rows to show by default.
pub fn rows_to_show(top: Option<usize>, n: usize) -> usize {
    top.unwrap_or(if n <= 40 { n } else { 20 }).min(n)
}

pub fn digests_line(input: &Digest, output: &Digest) -> String {
    format!("input digest  {input}\noutput digest {output}")
}

/// A spinner with stages on stderr; hidden when stderr is not a terminal.
pub struct Progress(ProgressBar);

impl Progress {
    pub fn new(show: bool) -> Self {
        let pb = if show { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
        pb.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("template"));
        pb.enable_steady_tick(Duration::from_millis(100));
        Progress(pb)
    }
    /// A spinner stage: work whose size is unknown.
    pub fn stage(&self, msg: impl Into<String>) {
        self.0.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("template"));
        self.0.set_message(msg.into());
    }
    /// A bar stage over bytes.
    pub fn bytes(&self, msg: impl Into<String>, done: u64, total: u64) {
        if self.0.length() != Some(total) {
            self.0.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg} [{bar:30}] {bytes}/{total_bytes}")
                    .expect("template")
                    .progress_chars("=> "),
            );
            self.0.set_length(total);
            self.0.set_message(msg.into());
        }
        self.0.set_position(done);
    }
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Thousands separators for a decimal string such as `1234567.891`.
pub fn group_thousands(s: &str) -> String {
    let (int, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A token amount rounded for display to `places` decimals, grouped.
pub fn show_amount(token: &allonet_core::Token, a: allonet_core::TokenAmount, places: usize) -> String {
    let s = token.format(a);
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if places == 0 || frac.is_empty() {
        return group_thousands(int);
    }
    // truncate, not round, so the displayed total never exceeds the exact one
    let f: String = frac.chars().chain(std::iter::repeat('0')).take(places).collect();
    group_thousands(&format!("{int}.{f}"))
}
