//! `allonet verify`: recompute a result file from its inputs and check both digests.

use crate::output::ResultFile;
use crate::{retro, round, tally};
use allonet_core::input::read_json;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Clone, Debug)]
pub struct VerifyArgs {
    /// A result file written with `-o` by `allonet round`, `retro` or `tally`.
    pub result: PathBuf,
}

/// Input paths are tried as written (from the current directory), then relative to the result file.
fn resolve(p: &Path, base: &Path) -> PathBuf {
    if p.is_absolute() || p.exists() {
        return p.to_path_buf();
    }
    let alt = base.join(p);
    if alt.exists() {
        alt
    } else {
        p.to_path_buf()
    }
}

fn fix(p: &mut PathBuf, base: &Path) {
    *p = resolve(p, base);
}

/// Recomputes the file's result; returns the fresh result file.
pub fn recompute(file: &ResultFile, base: &Path) -> Result<ResultFile> {
    Ok(match file.command.as_str() {
        "round" => {
            let mut a: round::RoundArgs = serde_json::from_value(file.options.clone())?;
            fix(&mut a.contributions, base);
            for p in [&mut a.sybil_scores, &mut a.clusters, &mut a.trust].into_iter().flatten() {
                fix(p, base);
            }
            let (r, _) = round::compute(&a, &crate::output::Progress::new(false))?;
            round::result_file(&a, &r)?
        }
        "retro" => {
            let mut a: retro::RetroArgs = serde_json::from_value(file.options.clone())?;
            for p in [&mut a.ballots, &mut a.metrics, &mut a.votes, &mut a.scores].into_iter().flatten() {
                fix(p, base);
            }
            retro::compute(&a)?.1
        }
        "tally" => {
            let mut a: tally::TallyArgs = serde_json::from_value(file.options.clone())?;
            fix(&mut a.votes, base);
            let (r, d) = tally::compute_from_bytes(&a, &a.votes.display().to_string(), None)?;
            ResultFile::new("tally", &a, d, allonet_core::digest(&r), &r)?
        }
        other => bail!("unknown command `{other}` in result file"),
    })
}

pub fn run(args: &VerifyArgs) -> Result<()> {
    let file: ResultFile = read_json(&args.result)?;
    let base = args.result.parent().unwrap_or(Path::new("."));
    let fresh = recompute(&file, base)?;
    let input_ok = fresh.input_digest == file.input_digest;
    let output_ok = fresh.output_digest == file.output_digest;
    let body_ok = fresh.result == file.result;
    let mark = |ok: bool| if ok { "ok      " } else { "MISMATCH" };
    println!("{} input digest  {} (recorded {})", mark(input_ok), fresh.input_digest, file.input_digest);
    println!("{} output digest {} (recorded {})", mark(output_ok), fresh.output_digest, file.output_digest);
    println!(
        "{} result body   {}",
        mark(body_ok),
        if body_ok { "identical to the recomputation" } else { "differs from the recomputation" }
    );
    if !input_ok {
        bail!("{}: the inputs differ from those the result was computed from", args.result.display());
    }
    if !output_ok || !body_ok {
        bail!("{}: the recorded result does not match a recomputation from its inputs", args.result.display());
    }
    println!("verified: {} ({})", args.result.display(), file.command);
    Ok(())
}
