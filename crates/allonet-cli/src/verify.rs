//! `allonet verify`: recompute a result file from its inputs and check both digests.

use allonet_report::results as report;
use anyhow::Result;
use std::path::PathBuf;

/// Options of `allonet verify`.
#[derive(clap::Args, Clone, Debug)]
pub struct VerifyArgs {
    /// A result file written with `-o` by `allonet round`, `retro` or `tally`.
    pub result: PathBuf,
}

/// Runs `allonet verify`: recomputes the result file, prints each check, and fails unless all passed.
pub fn run(args: &VerifyArgs) -> Result<()> {
    let (file, v) = allonet_engine::results::verify_file(&args.result)?;
    println!("{}", report::verification(&file, &v));
    let name = args.result.display().to_string();
    v.check(&name)?;
    println!("{}", report::verified(&name, &file));
    Ok(())
}
