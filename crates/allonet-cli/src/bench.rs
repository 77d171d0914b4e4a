//! `allonet bench gr9`: QF and COCM on Gitcoin Grants Round 9, side by side with the NumPy peer.

use crate::output::{right, table};
use allonet_core::Table;
use allonet_mechanisms::donations::{contributions_from_table, ContributionColumns, Donations};
use allonet_mechanisms::qf::{classic_qf_scores, cocm_scores, CocmStyle, Groups};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Contributions CSV in GR9 form (contributor, grant, amount, success).
    #[arg(long, default_value = "../shared/data/gitcoin-gr9/gr9_contributions.csv")]
    pub data: PathBuf,
    /// The Python peer to run on the same file (needs numpy and scipy); `none` to skip.
    #[arg(long, default_value = "bench/qf_reference.py")]
    pub peer: String,
    /// Timed repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.expect("ran at least once"))
}

fn top10(d: &Donations, scores: &[f64], title: &str) {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let total: f64 = scores.iter().sum();
    let mut t = table(&["#", title, "score", "share"]);
    for (r, &i) in idx.iter().take(10).enumerate() {
        t.add_row(vec![
            (r + 1).to_string(),
            crate::round::truncate(&d.projects[i], 50),
            crate::output::group_thousands(&format!("{:.2}", scores[i])),
            format!("{:.2}%", scores[i] / total * 100.0),
        ]);
    }
    right(&mut t, &[0, 2, 3]);
    println!("{t}");
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if !args.data.exists() {
        println!(
            "skipped: {} is absent (the GR9 data lives in ../shared/data, outside the project)",
            args.data.display()
        );
        return Ok(());
    }
    let t0 = Instant::now();
    let table = Table::read(&args.data)?;
    let (gifts, stats) =
        contributions_from_table(&table, &ContributionColumns { skip_negative: true, ..Default::default() })?;
    let d = Donations::from_contributions(&gifts);
    let load = t0.elapsed().as_secs_f64();
    println!(
        "GR9: {} rows, {} kept (success=True, amount>0; {} negative dropped) → {} donor-project cells, {} donors, {} projects · load {:.3} s · {} threads",
        stats.rows,
        stats.kept,
        stats.skipped_negative,
        d.cells(),
        d.donors.len(),
        d.projects.len(),
        load,
        rayon::current_num_threads()
    );
    let (t_qf, qf) = best(args.runs, || classic_qf_scores(&d));
    let groups = Groups::projects(&d);
    let (t_cocm, cocm) = best(args.runs, || cocm_scores(&d, &groups, CocmStyle::Harsh));
    top10(&d, &qf, "classic QF");
    top10(&d, &cocm, "COCM (harsh, groups = projects)");
    println!("allonet: QF {:.4} s · COCM {:.4} s (best of {})", t_qf, t_cocm, args.runs);

    if args.peer == "none" {
        return Ok(());
    }
    let out = std::env::temp_dir().join(format!("allonet-peer-{}.json", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(&args.peer)
        .arg(&args.data)
        .arg("--json")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => {
            println!(
                "peer skipped: `python3 {} …` did not run (install numpy and scipy: pip install numpy scipy)",
                args.peer
            );
            return Ok(());
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).context("peer output")?)?;
    let _ = std::fs::remove_file(&out);
    let get = |k: &str| v["timings"][k].as_f64().unwrap_or(f64::NAN);
    let (p_qf, p_cocm) = (get("qf_s"), get("cocm_s"));
    let agree = |key: &str, ours: &[f64]| -> f64 {
        let mut worst: f64 = 0.0;
        for (i, p) in d.projects.iter().enumerate() {
            let theirs = v[key][p].as_f64().unwrap_or(f64::NAN);
            let scale = ours[i].abs().max(theirs.abs()).max(1.0);
            worst = worst.max((ours[i] - theirs).abs() / scale);
        }
        worst
    };
    println!("peer (NumPy/SciPy, {}): QF {:.4} s · COCM {:.4} s", args.peer, p_qf, p_cocm);
    println!("speed-up: QF {:.1}× · COCM {:.1}×", p_qf / t_qf, p_cocm / t_cocm);
    println!("agreement: max relative difference QF {:.1e} · COCM {:.1e}", agree("qf", &qf), agree("cocm", &cocm));
    Ok(())
}
