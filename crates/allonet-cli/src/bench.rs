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

/// A random network: `edges` uniform (src, dst) pairs (self-loops allowed); each source passes
/// `pass_ppm` of what it receives on, split by random positive weights, and keeps the rest.
pub fn random_network(nodes: usize, edges: usize, pass_ppm: u32, seed: u64) -> allonet_flow::graph::Network {
    use allonet_flow::graph::{Network, Node, Rule};
    let mut rng = allonet_ml::data::Rng::new(seed, 0);
    let mut out: Vec<Vec<(u32, f64)>> = vec![Vec::new(); nodes];
    for _ in 0..edges {
        let (s, d) = (rng.below(nodes), rng.below(nodes));
        out[s].push((d as u32, 0.05 + rng.unit()));
    }
    let nodes_v = out
        .into_iter()
        .enumerate()
        .map(|(i, mut recs)| {
            recs.sort_by_key(|r| r.0);
            recs.dedup_by(|a, b| {
                if a.0 == b.0 {
                    b.1 += a.1;
                    true
                } else {
                    false
                }
            });
            let rule = if recs.is_empty() {
                Rule::Keep
            } else {
                let w: Vec<f64> = recs.iter().map(|r| r.1).collect();
                let ppm =
                    allonet_core::apportion_exact(allonet_core::TokenAmount::from_base_units(pass_ppm as u128), &w)
                        .expect("positive weights");
                Rule::Weights {
                    receivers: recs
                        .iter()
                        .zip(ppm)
                        .map(|(r, p)| (r.0, p.units().to::<u32>()))
                        .filter(|r| r.1 > 0)
                        .collect(),
                }
            };
            Node { id: format!("n{i}"), rule }
        })
        .collect();
    Network { nodes: nodes_v, pinch: None }
}

fn peer_json(peer: &str, args: &[&str]) -> Option<serde_json::Value> {
    let out = std::env::temp_dir().join(format!("allonet-flow-peer-{}.json", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(peer)
        .args(args)
        .arg("--json")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let v = serde_json::from_slice(&std::fs::read(&out).ok()?).ok();
    let _ = std::fs::remove_file(&out);
    v
}

pub fn run_flow(args: &FlowBenchArgs) -> Result<()> {
    use allonet_flow::propagate::propagate_fast;
    use allonet_flow::sim::{simulate, InjectSpec, SimSpec};
    let use_peer = args.peer != "none" && std::path::Path::new(&args.peer).exists();
    let mut t = table(&["workload", "allonet", "NumPy/SciPy peer", "speed-up", "notes"]);
    // 1. Deep Funding graph
    let t0 = Instant::now();
    let net = allonet_flow::graph::from_edge_table(&Table::read(&args.graph)?, None, None)?;
    let load = t0.elapsed().as_secs_f64();
    let eth = *net.index().get("ethereum").context("the graph has no `ethereum` node")?;
    let (t_df, p) = best(5, || propagate_fast(&net, &[(eth, 1_000_000)], 10_000, 0).expect("splits-only graph"));
    let mut row = vec![
        format!("Deep Funding graph ({} nodes, {} edges), 1,000,000 units", net.nodes.len(), net.edges()),
        format!("{:.4} s", t_df),
        "skipped".into(),
        String::new(),
        format!("{} hops, load {:.3} s, kept {}", p.hops, load, p.kept.iter().sum::<u128>()),
    ];
    if use_peer {
        let g = args.graph.display().to_string();
        if let Some(v) = peer_json(&args.peer, &["--graph-csv", &g, "--inject", "ethereum=1000000"]) {
            let ps = v["timings"]["propagate_s"].as_f64().unwrap_or(f64::NAN);
            let worst = net
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (p.kept[i] as f64 - v["kept"][&n.id].as_f64().unwrap_or(0.0)).abs())
                .fold(0.0f64, f64::max);
            row[2] = format!("{ps:.4} s");
            row[3] = format!("{:.1}×", ps / t_df);
            row[4].push_str(&format!("; max |integer − float| {worst:.2} units"));
        }
    }
    t.add_row(row);
    // 2. synthetic 100k / 1M
    let t0 = Instant::now();
    let big = random_network(args.nodes, args.edges, 900_000, 1);
    let gen = t0.elapsed().as_secs_f64();
    let amount: u128 = 1_000_000_000_000_000_000;
    // like the peer: stop once at most 1e-9 of the total is still in flight
    let (t_big, p) =
        best(3, || propagate_fast(&big, &[(0, amount)], 10_000, amount / 1_000_000_000).expect("splits-only graph"));
    assert_eq!(p.accounted(), amount);
    let (t_full, pf) = best(1, || propagate_fast(&big, &[(0, amount)], 10_000, 0).expect("splits-only graph"));
    let mut row = vec![
        format!("synthetic ({} nodes, {} edges), 10^18 units", args.nodes, args.edges),
        format!("{:.3} s", t_big),
        "skipped".into(),
        String::new(),
        format!(
            "{} hops to ≤1e-9 in flight (to the last unit: {} hops, {:.2} s); build {:.2} s; conserved",
            p.hops, pf.hops, t_full, gen
        ),
    ];
    if use_peer {
        let (n, e) = (args.nodes.to_string(), args.edges.to_string());
        if let Some(v) = peer_json(&args.peer, &["--synthetic", &n, &e, "--seed", "1"]) {
            let ps = v["timings"]["propagate_s"].as_f64().unwrap_or(f64::NAN);
            row[2] = format!("{ps:.3} s ({} iterations)", v["iterations"]);
            row[3] = format!("{:.1}×", ps / t_big);
        }
    }
    t.add_row(row);
    // 3. Monte Carlo
    let small = random_network(50, 150, 800_000, 2);
    let spec = SimSpec {
        steps: 100,
        runs: args.runs,
        seed: 42,
        inject: vec![InjectSpec { node: 0, median: 1000.0, sigma: 0.5 }],
        pinch_sweep: vec![],
        inject_scale_sweep: vec![],
    };
    let (t_mc, r) = best(1, || simulate(&small, &spec));
    let mut row = vec![
        format!("Monte Carlo: {} runs × 100 steps × 50 nodes", args.runs),
        format!("{:.3} s", t_mc),
        "skipped".into(),
        String::new(),
        format!("mean injected {:.0}", r[0].mean_injected),
    ];
    if use_peer {
        let runs = args.runs.to_string();
        if let Some(v) = peer_json(&args.peer, &["--mc", &runs, "100", "50"]) {
            let ps = v["timings"]["mc_s"].as_f64().unwrap_or(f64::NAN);
            row[2] = format!("{ps:.3} s");
            row[3] = format!("{:.1}×", ps / t_mc);
        }
    }
    t.add_row(row);
    println!("{t}");
    println!(
        "{} threads; allonet moves exact integers (every unit conserved), the peer moves floats",
        rayon::current_num_threads()
    );
    if !use_peer {
        println!("peer skipped (bench/flow_reference.py needs python3 with numpy and scipy)");
    }
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

pub fn run_gov(args: &GovBenchArgs) -> Result<()> {
    use crate::gov::{member_key, signed_vote};
    use allonet_governance::ballot::verify;
    use allonet_governance::governor::{proposal_id, Action, Event, GovParams, Governor};
    use allonet_governance::power::{PowerConfig, Strategy};
    let n = args.votes.max(1);
    let t0 = Instant::now();
    let keys: Vec<_> = (0..n).map(|i| member_key(11, i)).collect();
    let t_keys = t0.elapsed().as_secs_f64();
    let actions = vec![Action::Pause];
    let id = proposal_id(&actions, "bench", &[]);
    let setup = vec![
        Event::Init {
            params: GovParams { voting_delay: 1, voting_period: 1_000_000, ..GovParams::default() },
            power: PowerConfig { strategy: Strategy::QuadraticSqrt, sybil: None },
            guardian: alloy_primitives::Address::ZERO,
            holders: keys.iter().enumerate().map(|(i, k)| (k.address(), 1_000 + i as u128)).collect(),
            allowlist: vec![],
            chain_id: 1,
            at: 0,
        },
        Event::Propose { proposer: keys[0].address(), actions, description: "bench".into(), options: vec![], at: 1 },
    ];
    let g0 = Governor::replay(&setup)?;
    let t0 = Instant::now();
    let ballots: Vec<Event> = keys.iter().map(|k| signed_vote(&g0, k, id, 1, 0, 3)).collect::<Result<_, _>>()?;
    let t_sign = t0.elapsed().as_secs_f64();
    // verify only, one thread and all threads
    let t0 = Instant::now();
    for b in &ballots {
        verify(&g0, b)?;
    }
    let t_verify = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    {
        use rayon::prelude::*;
        ballots.par_iter().try_for_each(|b| allonet_governance::ballot::check_signature(g0.chain_id, b))?;
    }
    let t_verify_par = t0.elapsed().as_secs_f64();
    // verify + apply + tally in memory
    let mut g = g0.clone();
    let t0 = Instant::now();
    for b in &ballots {
        verify(&g, b)?;
        g.apply(b)?;
    }
    let t_apply = t0.elapsed().as_secs_f64();
    // durable: batched transactions of 1,000, and one transaction per vote
    let dir = std::env::temp_dir().join(format!("allonet-bench-gov-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut s = allonet_store::Store::open(&dir.join("batched.db"))?;
    s.submit_batch(&setup)?;
    let t0 = Instant::now();
    for chunk in ballots.chunks(1000) {
        s.submit_batch(chunk)?;
    }
    let t_batch = t0.elapsed().as_secs_f64();
    let audit_n = s.verify_audit().map_err(|b| anyhow::anyhow!("audit broken at #{}", b.seq))?;
    let singles = args.durable_singles.min(n) as usize;
    let mut s1 = allonet_store::Store::open(&dir.join("singles.db"))?;
    s1.submit_batch(&setup)?;
    let t0 = Instant::now();
    for b in &ballots[..singles] {
        s1.submit(b)?;
    }
    let t_single = t0.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let p = &s.governor().proposals[&id];
    let mut t = table(&["stage", "votes", "seconds", "votes / s"]);
    let rate = |k: u64, s: f64| crate::output::group_thousands(&format!("{:.0}", k as f64 / s));
    for (name, k, secs) in [
        ("sign (EIP-712, secp256k1)", n, t_sign),
        ("verify signature (1 thread)", n, t_verify),
        ("verify signature (all threads)", n, t_verify_par),
        ("verify + apply + tally (memory, 1 thread)", n, t_apply),
        ("verify + apply + durable, 1,000 per transaction", n, t_batch),
        ("verify + apply + durable, 1 per transaction (fsync each)", singles as u64, t_single),
    ] {
        t.add_row(vec![name.to_string(), k.to_string(), format!("{secs:.3}"), rate(k, secs)]);
    }
    right(&mut t, &[1, 2, 3]);
    println!("{t}");
    println!(
        "{} members, quadratic power; tally for = {} · audit chain of {} entries verified · key generation {:.2} s",
        n, p.for_votes, audit_n, t_keys
    );
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

pub fn run_payout(a: &PayoutBenchArgs) -> Result<()> {
    use allonet_engine::bench::{FRESH_TARGET, REPEAT_TARGET};
    let b = allonet_engine::bench::payout(a.recipients, a.batch_size as usize)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&b)?);
        return Ok(());
    }
    println!("Payout of {} recipients (ERC-20, 6 decimals) on the embedded EVM (revm); gas includes each transaction's 21,000", b.recipients);
    let mut t = table(&["method", "transactions", "wall time", "recipients/s", "gas/recipient", "gas total"]);
    for r in &b.runs {
        t.add_row(vec![
            r.method.clone(),
            r.transactions.to_string(),
            format!("{:.2} s", r.seconds),
            format!("{:.0}", b.recipients as f64 / r.seconds),
            format!("{:.0}", r.gas_per_recipient),
            crate::output::group_thousands(&r.gas_total.to_string()),
        ]);
    }
    right(&mut t, &[1, 2, 3, 4, 5]);
    println!("{t}");
    let met = |x: f64, target: f64| if x <= target { "met" } else { "MISSED" };
    println!(
        "per recipient: fresh {:.0} gas (target ≤ {FRESH_TARGET:.0}: {}), paid before {:.0} (target ≤ {REPEAT_TARGET:.0}: {}); \
         a second run of each finished plan sent nothing",
        b.fresh_gas_per_recipient,
        met(b.fresh_gas_per_recipient, FRESH_TARGET),
        b.repeat_gas_per_recipient,
        met(b.repeat_gas_per_recipient, REPEAT_TARGET)
    );
    Ok(())
}
