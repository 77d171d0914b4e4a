//! `allonet verify`: recompute a result file from its inputs and check both digests.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct VerifyArgs {
    /// A result file written with `-o` by `allonet round`, `retro` or `tally`.
    pub result: PathBuf,
}

pub fn run(args: &VerifyArgs) -> Result<()> {
    let (file, v) = allonet_engine::results::verify_file(&args.result)?;
    let mark = |ok: bool| if ok { "ok      " } else { "MISMATCH" };
    println!("{} input digest  {} (recorded {})", mark(v.input_ok), v.fresh.input_digest, file.input_digest);
    println!("{} output digest {} (recorded {})", mark(v.output_ok), v.fresh.output_digest, file.output_digest);
    println!(
        "{} result body   {}",
        mark(v.body_ok),
        if v.body_ok { "identical to the recomputation" } else { "differs from the recomputation" }
    );
    v.check(&args.result.display().to_string())?;
    println!("verified: {} ({})", args.result.display(), file.command);
    Ok(())
}
