//! `allonet round`: contributions CSV → matching.

use crate::output::{emit, print_text, OutputArgs, Progress};
use allonet_engine::results::{self, MechanismChoice, RoundOptions, RoundStep};
use allonet_report::results as report;
use anyhow::Result;
use std::path::PathBuf;

/// `--mechanism`: how gifts are matched.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
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

/// Options of `allonet round`; recorded in result files as [`RoundOptions`] so `allonet verify` can re-run them.
#[derive(clap::Args, Clone, Debug)]
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
    pub out: OutputArgs,
}

impl RoundArgs {
    /// The options the engine runs and a result file records.
    pub fn options(&self) -> RoundOptions {
        let a = self.clone();
        RoundOptions {
            contributions: a.contributions,
            mechanism: match a.mechanism {
                MechanismArg::Qf => MechanismChoice::Qf,
                MechanismArg::Pairwise => MechanismChoice::Pairwise,
                MechanismArg::Cluster => MechanismChoice::Cluster,
                MechanismArg::Cocm => MechanismChoice::Cocm,
                MechanismArg::Blend => MechanismChoice::Blend,
            },
            pool: a.pool,
            token: a.token,
            decimals: a.decimals,
            cap: a.cap,
            fill: a.fill,
            sybil_scores: a.sybil_scores,
            s50: a.s50,
            s100: a.s100,
            min_gift: a.min_gift,
            clusters: a.clusters,
            trust: a.trust,
            pairwise_m: a.pairwise_m,
            pct_cocm: a.pct_cocm,
            soft: a.soft,
            skip_negative: a.skip_negative,
            donor_col: a.donor_col,
            project_col: a.project_col,
            amount_col: a.amount_col,
        }
    }
}

/// Shows a round's steps on the progress display.
pub fn show_step(progress: &Progress) -> impl FnMut(RoundStep) + '_ {
    move |s| match s {
        RoundStep::Reading { file, done, total } => progress.bytes(format!("reading {}", file.display()), done, total),
        RoundStep::Scoring { gifts, mechanism } => {
            progress.stage(format!("scoring {gifts} gifts with {}", mechanism.name()))
        }
    }
}

/// Runs `allonet round`: reads the inputs, computes the matching, then prints and writes what was asked.
pub fn run(args: &RoundArgs) -> Result<()> {
    let progress = Progress::new(true);
    let opts = args.options();
    let (r, stats) = results::round(&opts, &mut show_step(&progress))?;
    progress.finish();
    let file = results::round_file(&opts, &r)?;
    emit(&args.out, &file, &report::round_csv(&r), || report::round_html(&r))?;
    if let Some(note) = report::read_note(&stats).filter(|_| !args.out.json) {
        eprintln!("{note}");
    }
    print_text(&args.out, &report::round_table(&r, args.out.top));
    Ok(())
}
