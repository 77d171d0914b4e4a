//! `allonet retro`: retro funding from ballots (RF4 metric ballots, RetroPGF 3 medians) or scores.

use crate::output::{emit, print_text, OutputArgs, Progress};
use allonet_engine::results::{self, RetroOptions};
use allonet_report::results as report;
use anyhow::Result;
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

/// Runs `allonet retro`: reads the ballots (or votes, or scores), allocates the budget, compares with official
/// results when asked, then prints and writes what was asked.
pub fn run(args: &RetroArgs) -> Result<()> {
    let progress = Progress::new(true);
    progress.stage("reading ballots and computing");
    let (r, file) = results::retro(&args.options())?;
    let official = args.compare.as_deref().map(results::read_official).transpose()?;
    progress.finish();
    emit(&args.out, &file, &report::retro_csv(&r), || report::retro_html(&r, &file))?;
    print_text(&args.out, &report::retro_table(&r, &file, args.out.top, official.as_ref()));
    Ok(())
}
