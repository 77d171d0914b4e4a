//! Printing and writing: tables, progress, result files written atomically.

use allonet_engine::plans::ResultFile;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Duration;

use allonet_report::results::{result_written, Csv};

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

/// Writes bytes to `path` through a temporary file and a rename (the engine's `write_atomic`), so a failure never
/// leaves a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    allonet_engine::write_atomic(path, bytes).map_err(|e| match e {
        allonet_engine::EngineError::Io { path, cause } => {
            anyhow::Error::new(cause).context(format!("cannot write {path}"))
        }
        e => e.into(),
    })
}

/// Writes the outputs a command was asked for (after everything succeeded): HTML, CSV, result file, JSON.
pub fn emit(out: &OutputArgs, file: &ResultFile, csv: &Csv, html: impl FnOnce() -> String) -> Result<()> {
    if let Some(p) = &out.html {
        write_atomic(p, html().as_bytes())?;
    }
    if let Some(p) = &out.csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(csv.header)?;
        csv.rows.iter().try_for_each(|r| w.write_record(r))?;
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

/// Prints a command's table (unless it printed JSON) and where the result file went.
pub fn print_text(out: &OutputArgs, text: &str) {
    if !out.json {
        println!("{text}");
        if let Some(p) = &out.out {
            println!("{}", result_written(p));
        }
    }
}

/// A spinner with stages on stderr; hidden when stderr is not a terminal.
pub struct Progress(ProgressBar);

impl Progress {
    /// A spinner on stderr when `show` (and stderr is a terminal).
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
    /// Prints a line on stdout above the spinner.
    pub fn println(&self, line: impl AsRef<str>) {
        self.0.suspend(|| println!("{}", line.as_ref()));
    }
    /// Clears the display.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
