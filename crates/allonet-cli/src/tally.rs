//! `allonet tally`: quadratic voting scores from a votes JSON file.

use crate::output::{emit, OutputArgs};
use allonet_engine::results::{self, TallyOptions};
use allonet_report::results as report;
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

/// Runs `allonet tally`: reads the votes, scores them (and splits the budget), then prints and writes what was
/// asked.
pub fn run(args: &TallyArgs) -> Result<()> {
    let (r, file) = results::tally(&args.options())?;
    emit(&args.out, &file, &report::tally_csv(&r), || report::tally_html(&r, &file))?;
    if !args.out.json {
        println!("{}", report::tally_table(&r, &file));
    }
    Ok(())
}
