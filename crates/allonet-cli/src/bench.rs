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
