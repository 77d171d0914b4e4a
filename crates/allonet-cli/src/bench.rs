//! `allonet bench gr9|flow|gov|payout`: the engine measures ([`allonet_engine::bench`]), the report shows.

use allonet_engine::bench;
use allonet_report::bench as show;
use anyhow::Result;
use std::path::{Path, PathBuf};

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

/// `bench gr9`: our timings, then the peer's when asked for.
pub fn run(args: &BenchArgs) -> Result<()> {
    let Some(b) = bench::gr9(&args.data, args.runs)? else {
        print!("{}", show::gr9_absent(&args.data));
        return Ok(());
    };
    print!("{}", show::gr9(&b));
    if args.peer != "none" {
        let p = bench::gr9_peer(Path::new(&args.peer), &args.data, &b)?;
        print!("{}", show::gr9_peer(&args.peer, &b, p.as_ref()));
    }
    Ok(())
}

#[derive(clap::Args, Clone, Debug)]
pub struct FlowBenchArgs {
    /// The Deep Funding dependency graph (repo,parent,weight).
    #[arg(long, default_value = "examples/deepfunding/repo_parent_weight_graph.csv")]
    pub graph: PathBuf,
    /// The Python peer (numpy + scipy); `none` to skip.
    #[arg(long, default_value = "bench/flow_reference.py")]
    pub peer: String,
    /// Synthetic graph size: nodes.
    #[arg(long, default_value_t = 100_000)]
    pub nodes: usize,
    /// Synthetic graph size: edges.
    #[arg(long, default_value_t = 1_000_000)]
    pub edges: usize,
    /// Monte Carlo runs of the 50-node network.
    #[arg(long, default_value_t = 10_000)]
    pub runs: usize,
}

/// `bench flow`.
pub fn run_flow(args: &FlowBenchArgs) -> Result<()> {
    let peer = (args.peer != "none").then(|| Path::new(&args.peer));
    print!("{}", show::flow(&bench::flow(&args.graph, peer, args.nodes, args.edges, args.runs)?));
    Ok(())
}

#[derive(clap::Args, Clone, Debug)]
pub struct GovBenchArgs {
    /// Signed votes to ingest.
    #[arg(long, default_value_t = 10_000)]
    pub votes: u64,
    /// Votes written with one durable transaction each (fsync per vote is the slow part).
    #[arg(long, default_value_t = 1_000)]
    pub durable_singles: u64,
}

/// `bench gov`.
pub fn run_gov(args: &GovBenchArgs) -> Result<()> {
    print!("{}", show::gov(&bench::gov(args.votes, args.durable_singles)?));
    Ok(())
}

#[derive(clap::Args, Clone, Debug)]
pub struct PayoutBenchArgs {
    /// Recipients in the plan.
    #[arg(long, default_value_t = 10_000)]
    pub recipients: u64,
    /// Payments per batch transaction.
    #[arg(long, default_value_t = allonet_chain::plan::DEFAULT_BATCH_SIZE)]
    pub batch_size: u32,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `bench payout`, as a table or JSON.
pub fn run_payout(a: &PayoutBenchArgs) -> Result<()> {
    let b = bench::payout(a.recipients, a.batch_size as usize)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&b)?);
    } else {
        print!("{}", show::payout(&b));
    }
    Ok(())
}

#[derive(clap::Args, Clone, Debug)]
pub struct AllocateBenchArgs {
    /// Instance sizes POOLSxPROJECTS, comma-separated (seeded random instances with every constraint kind
    /// and every utility, written as TOML so that the peer reads the same file).
    #[arg(long, default_value = "3x200,10x1000")]
    pub sizes: String,
    /// The peer: cvxpy 1.9 with its Clarabel solver on the same file (`pip install cvxpy==1.9.3`); `none` to skip.
    #[arg(long, default_value = "bench/allocate_reference.py")]
    pub peer: String,
    /// The Python that runs the peer.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Seed of the instances.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Timed repetitions of allonet (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// `bench allocate`: allonet end to end (read, solve, minimum grants, exact rounding, explanations, each
/// pool alone) against cvxpy + Clarabel on the same instance, with the objectives compared.
pub fn run_allocate(args: &AllocateBenchArgs) -> Result<()> {
    use allonet_allocate::gen::{instance, GenOptions};
    use std::time::Instant;
    let dir = std::env::temp_dir().join(format!("allonet-bench-allocate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut t = allonet_report::table(&[
        "pools × projects",
        "allonet s",
        "of which solve s",
        "cvxpy + Clarabel s (in process / whole process)",
        "ratio (in process / whole)",
        "objective allonet",
        "objective cvxpy",
        "relative difference",
        "peak memory MB",
    ]);
    for size in args.sizes.split(',') {
        let (np, ni) = size
            .trim()
            .split_once('x')
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("--sizes: `{size}` is not POOLSxPROJECTS (e.g. 3x200)"))?;
        let o = GenOptions {
            pools: np,
            projects: ni,
            min_grants: false,
            baseline: true,
            all_utilities: true,
            constraints: true,
        };
        let path = dir.join(format!("instance-{np}x{ni}.toml"));
        std::fs::write(&path, instance(args.seed, o))?;
        let mut best = f64::INFINITY;
        let mut best_solve = f64::INFINITY;
        let mut objective = 0.0;
        for _ in 0..args.runs.max(1) {
            let p = allonet_allocate::Problem::load(&path)?;
            let t1 = Instant::now();
            let every: Vec<usize> = (0..p.pools.len()).collect();
            allonet_allocate::solve_with_minimums(&p, allonet_allocate::pairs(&p), &every, "")?;
            best_solve = best_solve.min(t1.elapsed().as_secs_f64());
            let t2 = Instant::now();
            let p = allonet_allocate::Problem::load(&path)?;
            let a = allonet_allocate::allocate(&p)?;
            best = best.min(t2.elapsed().as_secs_f64());
            objective = a.objective.optimum;
        }
        let peak = peak_rss_mb();
        let (peer_s, peer_wall, peer_obj) = if args.peer == "none" {
            (None, None, None)
        } else {
            let t0 = Instant::now();
            let out = std::process::Command::new(&args.python).arg(&args.peer).arg(&path).arg("--json").output()?;
            let wall = t0.elapsed().as_secs_f64();
            if !out.status.success() {
                eprintln!("peer failed on {size}: {}", String::from_utf8_lossy(&out.stderr).trim());
                (None, None, None)
            } else {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
                (v["seconds"].as_f64(), Some(wall), v["objective"].as_f64())
            }
        };
        let rel = peer_obj.map(|b| (objective - b).abs() / objective.abs().max(b.abs()).max(1e-300));
        t.add_row(vec![
            format!("{np} × {ni}"),
            format!("{best:.4}"),
            format!("{best_solve:.4}"),
            match (peer_s, peer_wall) {
                (Some(s), Some(w)) => format!("{s:.4} / {w:.3}"),
                _ => "—".into(),
            },
            match (peer_s, peer_wall) {
                (Some(s), Some(w)) => format!("{:.1}× / {:.1}×", s / best, w / best),
                _ => "—".into(),
            },
            format!("{objective:.9}"),
            peer_obj.map_or("—".into(), |b| format!("{b:.9}")),
            rel.map_or("—".into(), |r| format!("{r:.2e}")),
            format!("{peak:.0}"),
        ]);
    }
    allonet_report::right(&mut t, &[1, 2, 3, 4, 5, 6, 7, 8]);
    println!("{t}");
    println!(
        "allonet: best of {} runs, end to end (read, solve, minimum grants, exact rounding, explanations, each pool alone);\n\
         cvxpy: one run; in process = read, build, compile, Clarabel; whole process adds Python's start and imports.\n\
         Peak memory: this process so far.",
        args.runs
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// This process's peak resident memory, MB.
fn peak_rss_mb() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0;
    if ok {
        u.ru_maxrss as f64 / 1024.0
    } else {
        f64::NAN
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct AgentBenchArgs {
    /// Sizes of the example: how many copies of its 230 projects (comma-separated).
    #[arg(long, default_value = "1,5")]
    pub copies: String,
}

/// `bench agent`: one epoch of the example agent end to end in autonomous mode, each stage timed: the plans
/// queued under the standing caps on two embedded chains, the veto window passed (the chains are moved forward,
/// not timed), then paid, reconciled and reported. Setting up (training the model, deploying, the members' vote
/// on the agent's mode) is not part of the epoch. No peer: nothing else runs this pipeline.
pub fn run_agent(args: &AgentBenchArgs) -> Result<()> {
    use allonet_agent::example::{advance_chains, init_with, members_pass, ExampleOptions};
    use allonet_agent::{AgentError, Stage};
    use allonet_governance::governor::{Action, AgentMode, AgentPolicy};
    use std::time::Instant;
    let sizes: Vec<usize> = args
        .copies
        .split(',')
        .map(|c| c.trim().parse::<usize>().map_err(|_| anyhow::anyhow!("--copies: `{c}` is not a whole number")))
        .collect::<Result<_>>()?;
    let mut header = vec!["projects".to_string(), "payments".to_string(), "setup s".to_string()];
    header.extend(Stage::ALL.iter().map(|s| format!("{} s", s.name())));
    header.push("epoch s".into());
    let mut rows = Vec::new();
    for copies in sizes {
        let dir = std::env::temp_dir().join(format!("allonet-bench-agent-{}-{copies}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let t0 = Instant::now();
        init_with(&dir, true, ExampleOptions { voting_period: 1, timelock_delay: 1, copies, ..Default::default() })?;
        let weights = [("ai".to_string(), 6_000), ("qv".to_string(), 4_000)].into_iter().collect();
        let policy = Action::SetAgentPolicy { policy: AgentPolicy { mode: AgentMode::Autonomous, weights } };
        members_pass(&dir, vec![policy], "The agent pays within its caps")?;
        let setup = t0.elapsed().as_secs_f64();
        let mut agent = allonet_agent::Agent::open(&dir)?;
        let mut times = vec![0.0f64; Stage::ALL.len()];
        let mut epoch = 0.0;
        let mut next = Stage::Observe;
        loop {
            let t = Instant::now();
            let r = agent.step();
            let dt = t.elapsed().as_secs_f64();
            times[next.position()] += dt;
            epoch += dt;
            match r {
                Ok(s) if s.epoch_done => break,
                Ok(s) => next = Stage::ALL[s.stage.position() + 1],
                // The veto window: move the embedded chains past it (not timed) and go on.
                Err(AgentError::VetoWindow { .. }) => advance_chains(&dir, 3_601)?,
                Err(e) => return Err(e.into()),
            }
        }
        let r = agent.report(1)?;
        let payments: usize = r.plans.iter().map(|p| p.payments).sum();
        let paid_all = r.reconciliation["plans"]
            .as_array()
            .is_some_and(|l| l.iter().zip(&r.plans).all(|(x, p)| x["paid"].as_str() == Some(p.total.as_str())));
        if !paid_all {
            anyhow::bail!("the epoch did not pay every plan in full: {}", r.reconciliation);
        }
        let n = r.allocation["projects"].as_array().map_or(0, |a| a.len());
        let mut row = vec![n.to_string(), payments.to_string(), format!("{setup:.1}")];
        row.extend(times.iter().map(|t| format!("{t:.3}")));
        row.push(format!("{epoch:.2}"));
        rows.push(row);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(header);
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
    println!(
        "one epoch of the example agent in autonomous mode (three pools, two embedded chains): every plan queued\n\
         under the standing caps, the veto window passed, paid in full and reconciled; each stage's time. Setup\n\
         (model, deployments, the members' vote on the mode, waiting out its 1-second periods) is not in the epoch.\n\
         Peak memory {:.0} MB.",
        peak_rss_mb()
    );
    Ok(())
}
