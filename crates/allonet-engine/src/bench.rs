//! The benchmarks behind `allonet bench`, as plain figures for a front end to show:
//! - [`gr9`]: classic QF and COCM on Gitcoin Grants Round 9, with [`gr9_peer`] running the NumPy/SciPy peer
//!   (`bench/qf_reference.py`) on the same file and measuring the agreement;
//! - [`flow`]: exact-integer propagation on the Deep Funding graph and a synthetic network, and a Monte Carlo of a
//!   small network, against the SciPy peer (`bench/flow_reference.py`);
//! - [`gov`]: signed votes signed, verified, applied and stored durably;
//! - [`payout`]: the money path on the embedded EVM: gas per recipient of a batch to fresh recipients (whose
//!   token balance and allocator record are new storage: 2 × 22,100 gas of it cannot be avoided) and to
//!   recipients paid before, for governance-approved and agent-queued plans, against one owner call per recipient.
//!
//! Wall times are the best of the repetitions asked for. A peer that cannot run (no `python3`, no NumPy) is
//! reported as absent, never as an error.

use std::path::Path;
use std::time::Instant;

use allonet_chain::contracts::AIAllocator;
use allonet_chain::deploy::{deploy, Asset, DeployConfig};
use allonet_chain::payout::{approve_call, execute, queue_call, PayoutOptions, Target};
use allonet_chain::plan::{Commitment, Pay};
use allonet_chain::{transact, Chain, Embedded};
use alloy_primitives::{keccak256, Address, U256};
use serde::Serialize;

use crate::EngineError;

/// Gas a batch may spend per fresh recipient.
pub const FRESH_TARGET: f64 = 55_000.0;
/// Gas a batch may spend per recipient paid before.
pub const REPEAT_TARGET: f64 = 20_000.0;

/// One measured way of paying.
#[derive(Debug, Clone, Serialize)]
pub struct PayRun {
    /// How the recipients were paid.
    pub method: String,
    /// Transactions sent.
    pub transactions: usize,
    /// Wall time of the first run.
    pub seconds: f64,
    /// Gas of all its transactions (each transaction's 21,000 included).
    pub gas_total: u64,
    /// `gas_total` / recipients.
    pub gas_per_recipient: f64,
}

/// The payout benchmark's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PayoutBench {
    /// Recipients in each plan.
    pub recipients: u64,
    /// Payments per batch transaction.
    pub batch_size: usize,
    /// The chain it ran on.
    pub chain: String,
    /// Gas per fresh recipient, approved plan, batched.
    pub fresh_gas_per_recipient: f64,
    /// Gas per recipient paid before, approved plan, batched.
    pub repeat_gas_per_recipient: f64,
    /// Gas per registered recipient, agent-queued plan, batched.
    pub queued_gas_per_recipient: f64,
    /// Gas per fresh recipient, one `allocateFunds` call each.
    pub single_fresh_gas_per_recipient: f64,
    /// Gas per recipient paid before, one `allocateFunds` call each.
    pub single_repeat_gas_per_recipient: f64,
    /// Fresh ≤ [`FRESH_TARGET`] and paid before ≤ [`REPEAT_TARGET`].
    pub targets_met: bool,
    /// Every way measured, in the order above.
    pub runs: Vec<PayRun>,
}

/// Pay `n` recipients five ways on a fresh embedded chain; every plan is paid a second time to check that the
/// second run sends nothing.
pub fn payout(n: u64, batch_size: usize) -> Result<PayoutBench, EngineError> {
    let n = n.max(1);
    let (owner, agent) = (Address::repeat_byte(0x0a), Address::repeat_byte(0x0b));
    let mut c = Embedded::new();
    for who in [owner, agent] {
        c.fund(who, U256::from(10u64).pow(U256::from(24)));
    }
    let supply = U256::from(10u64).pow(U256::from(18));
    let cfg = DeployConfig {
        deployer: owner,
        agent,
        guardian: Address::repeat_byte(0x0c),
        asset: Asset::NewToken { symbol: "USDC".into(), decimals: 6, supply },
        epoch_length: 86_400,
        holders: vec![(owner, U256::from(1u64))],
        voting_delay: 1,
        voting_period: 10,
        quorum_percent: 4,
        timelock_delay: 60,
        fund: supply,
        // The owner approves plans directly here: the benchmark measures paying, not voting.
        hand_to_timelock: false,
    };
    let (d, _) = deploy(&mut c, &cfg)?;
    let target = Target { allocator: d.allocator, payer: agent };
    let recipients = |from: u64| -> Vec<Address> {
        (from..from + n).map(|i| Address::from_word(keccak256(i.to_be_bytes()))).collect()
    };
    let plan_of = |rs: &[Address], salt: u64| -> Vec<Pay> {
        rs.iter()
            .enumerate()
            .map(|(i, r)| Pay { recipient: *r, amount: U256::from(1_000_000 + i as u64 * 7 + salt) })
            .collect()
    };
    let bs = batch_size.max(1);
    let per = |gas: u64| gas as f64 / n as f64;
    let pay = |c: &mut Embedded, method: String, plan: &Commitment, queued: bool| -> Result<PayRun, EngineError> {
        if queued {
            transact(c, agent, d.allocator, &queue_call(plan))?;
            c.warp(3_600);
        } else {
            transact(c, owner, d.allocator, &approve_call(plan))?;
        }
        let t = Instant::now();
        let r = execute(c, &target, plan, &PayoutOptions::default(), &mut |_, _| {})?;
        let seconds = t.elapsed().as_secs_f64();
        let again = execute(c, &target, plan, &PayoutOptions::default(), &mut |_, _| {})?;
        if again.recipients_now != 0 {
            return Err(EngineError::Config(format!("{method}: a second run paid again")));
        }
        Ok(PayRun {
            method,
            transactions: r.batches.len(),
            seconds,
            gas_total: r.gas_used,
            gas_per_recipient: per(r.gas_used),
        })
    };
    let mut runs = Vec::new();
    let fresh = recipients(0);
    let m = format!("payBatch, approved plan, fresh recipients ({bs} a batch)");
    runs.push(pay(&mut c, m, &Commitment::new(&plan_of(&fresh, 0), bs), false)?);
    let m = format!("payBatch, approved plan, recipients paid before ({bs} a batch)");
    runs.push(pay(&mut c, m, &Commitment::new(&plan_of(&fresh, 1), bs), false)?);
    // Standing authority: the agent queues under caps; each payment checks the registry and its recipient cap.
    let queued = recipients(10_000_000);
    transact(&mut c, owner, d.allocator, &AIAllocator::setCapsCall { epochCap_: supply, recipientCap_: supply })?;
    transact(&mut c, owner, d.allocator, &AIAllocator::setVetoDelayCall { vetoDelay_: 3_600 })?;
    for chunk in queued.chunks(500) {
        transact(
            &mut c,
            owner,
            d.allocator,
            &AIAllocator::setRecipientsCall { recipients: chunk.to_vec(), allowed: true },
        )?;
    }
    let m = format!("payBatch, agent-queued plan, registered recipients ({bs} a batch)");
    runs.push(pay(&mut c, m, &Commitment::new(&plan_of(&queued, 0), bs), true)?);
    // The reference interface: one owner call per recipient.
    let singles = recipients(20_000_000);
    for (method, salt) in [
        ("allocateFunds, one call per fresh recipient", 0u64),
        ("allocateFunds, one call per recipient paid before", 1),
    ] {
        let t = Instant::now();
        let mut gas = 0u64;
        for p in plan_of(&singles, salt) {
            gas += transact(
                &mut c,
                owner,
                d.allocator,
                &AIAllocator::allocateFundsCall { recipient: p.recipient, amount: p.amount },
            )?
            .gas_used;
        }
        let seconds = t.elapsed().as_secs_f64();
        runs.push(PayRun {
            method: method.into(),
            transactions: n as usize,
            seconds,
            gas_total: gas,
            gas_per_recipient: per(gas),
        });
    }
    let g = |i: usize| runs[i].gas_per_recipient;
    Ok(PayoutBench {
        recipients: n,
        batch_size: bs,
        chain: c.describe(),
        fresh_gas_per_recipient: g(0),
        repeat_gas_per_recipient: g(1),
        queued_gas_per_recipient: g(2),
        single_fresh_gas_per_recipient: g(3),
        single_repeat_gas_per_recipient: g(4),
        targets_met: g(0) <= FRESH_TARGET && g(1) <= REPEAT_TARGET,
        runs,
    })
}

fn cfg(e: impl std::fmt::Display) -> EngineError {
    EngineError::Config(e.to_string())
}

/// The shortest wall time of `runs` runs of `f` (at least one), and the last run's value.
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

/// Runs `python3 PEER ARGS… --json OUT` (its stdout discarded) and reads OUT. `Ok(None)` when it did not run or
/// failed (no `python3`, no NumPy/SciPy); an error when it succeeded without writing readable JSON.
fn run_peer(peer: &Path, args: &[&std::ffi::OsStr]) -> Result<Option<serde_json::Value>, EngineError> {
    let out = std::env::temp_dir().join(format!("allonet-peer-{}.json", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(peer)
        .args(args)
        .arg("--json")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        return Ok(None);
    }
    let bytes = std::fs::read(&out).map_err(|e| cfg(format!("peer output {}: {e}", out.display())))?;
    let _ = std::fs::remove_file(&out);
    serde_json::from_slice(&bytes).map(Some).map_err(|e| cfg(format!("peer output: {e}")))
}

/// A number the peer reported (NaN when it is missing).
fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------------------------
// GR9

/// `bench gr9`: Gitcoin Grants Round 9 scored by classic QF and by COCM.
#[derive(Debug, Clone, Serialize)]
pub struct Gr9Bench {
    /// Rows in the file.
    pub rows: usize,
    /// Rows kept (success = True, amount > 0).
    pub kept: usize,
    /// Rows dropped for a negative amount (refunds).
    pub skipped_negative: usize,
    /// Donor-project cells (a donor's gifts to one project summed).
    pub cells: usize,
    /// Distinct donors.
    pub donors: usize,
    /// Projects, in the order of the score vectors.
    pub projects: Vec<String>,
    /// Seconds to read and aggregate the file.
    pub load_seconds: f64,
    /// Worker threads.
    pub threads: usize,
    /// Timed repetitions (the best is reported).
    pub runs: usize,
    /// Best wall time of classic QF.
    pub qf_seconds: f64,
    /// Best wall time of COCM.
    pub cocm_seconds: f64,
    /// Classic QF scores per project, (Σᵢ √cᵢ)² (Buterin, Hitzig & Weyl 2018, "A Flexible Design for Funding
    /// Public Goods").
    pub qf: Vec<f64>,
    /// COCM scores per project, harsh, groups = projects (Miller, Weyl & Erichsen 2022, "Beyond Collusion
    /// Resistance"; Gitcoin's implementation).
    pub cocm: Vec<f64>,
}

/// Reads a GR9-form contributions CSV (contributor, grant, amount, success; refunds dropped) and times classic QF
/// and COCM, best of `runs`. `Ok(None)` when `data` is absent (the GR9 data lives outside the project).
pub fn gr9(data: &Path, runs: usize) -> Result<Option<Gr9Bench>, EngineError> {
    use allonet_mechanisms::donations::{contributions_from_table, ContributionColumns, Donations};
    use allonet_mechanisms::qf::{classic_qf_scores, cocm_scores, CocmStyle, Groups};
    if !data.exists() {
        return Ok(None);
    }
    let t0 = Instant::now();
    let table = allonet_core::Table::read(data)?;
    let (gifts, stats) =
        contributions_from_table(&table, &ContributionColumns { skip_negative: true, ..Default::default() })?;
    let d = Donations::from_contributions(&gifts);
    let load_seconds = t0.elapsed().as_secs_f64();
    let (qf_seconds, qf) = best(runs, || classic_qf_scores(&d));
    let groups = Groups::projects(&d);
    let (cocm_seconds, cocm) = best(runs, || cocm_scores(&d, &groups, CocmStyle::Harsh));
    Ok(Some(Gr9Bench {
        rows: stats.rows,
        kept: stats.kept,
        skipped_negative: stats.skipped_negative,
        cells: d.cells(),
        donors: d.donors.len(),
        projects: d.projects.clone(),
        load_seconds,
        threads: rayon::current_num_threads(),
        runs: runs.max(1),
        qf_seconds,
        cocm_seconds,
        qf,
        cocm,
    }))
}

/// The NumPy/SciPy peer on the same GR9 file.
#[derive(Debug, Clone, Serialize)]
pub struct Gr9Peer {
    /// Its classic QF wall time.
    pub qf_seconds: f64,
    /// Its COCM wall time.
    pub cocm_seconds: f64,
    /// Largest relative difference of a project's QF score: |ours − theirs| / max(|ours|, |theirs|, 1).
    pub qf_max_rel_diff: f64,
    /// The same for COCM.
    pub cocm_max_rel_diff: f64,
}

/// Runs the peer script (`python3 PEER DATA --json OUT`) and compares its scores with `b`'s. `Ok(None)` when it
/// did not run.
pub fn gr9_peer(peer: &Path, data: &Path, b: &Gr9Bench) -> Result<Option<Gr9Peer>, EngineError> {
    let Some(v) = run_peer(peer, &[data.as_os_str()])? else { return Ok(None) };
    let worst = |key: &str, ours: &[f64]| -> f64 {
        b.projects.iter().zip(ours).fold(0.0f64, |worst, (p, &o)| {
            let theirs = num(&v[key][p]);
            worst.max((o - theirs).abs() / o.abs().max(theirs.abs()).max(1.0))
        })
    };
    Ok(Some(Gr9Peer {
        qf_seconds: num(&v["timings"]["qf_s"]),
        cocm_seconds: num(&v["timings"]["cocm_s"]),
        qf_max_rel_diff: worst("qf", &b.qf),
        cocm_max_rel_diff: worst("cocm", &b.cocm),
    }))
}

// ---------------------------------------------------------------------------------------------------------------
// flow

/// A random network: `edges` uniform (src, dst) pairs (self-loops allowed); each source passes `pass_ppm` of what
/// it receives on, split by random positive weights apportioned exactly (largest remainder), and keeps the rest.
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
                let same = a.0 == b.0;
                if same {
                    b.1 += a.1;
                }
                same
            });
            let rule = if recs.is_empty() {
                Rule::Keep
            } else {
                let w: Vec<f64> = recs.iter().map(|r| r.1).collect();
                let ppm =
                    allonet_core::apportion_exact(allonet_core::TokenAmount::from_base_units(pass_ppm as u128), &w)
                        .expect("positive weights");
                let receivers = recs.iter().zip(ppm).map(|(r, p)| (r.0, p.units().to::<u32>())).filter(|r| r.1 > 0);
                Rule::Weights { receivers: receivers.collect() }
            };
            Node { id: format!("n{i}"), rule }
        })
        .collect();
    Network { nodes: nodes_v, pinch: None }
}

/// The peer's figures on one workload.
#[derive(Debug, Clone, Serialize)]
pub struct FlowPeer {
    /// Its wall time.
    pub seconds: f64,
    /// Its iterations, when it reports them.
    pub iterations: Option<u64>,
    /// Largest |our integer − its float| amount kept by a node, when compared.
    pub max_abs_diff: Option<f64>,
}

/// Propagation on the Deep Funding graph, 1,000,000 units injected at `ethereum`.
#[derive(Debug, Clone, Serialize)]
pub struct DeepFundingRun {
    /// Nodes of the graph.
    pub nodes: usize,
    /// Edges of the graph.
    pub edges: usize,
    /// Best of 5 wall time.
    pub seconds: f64,
    /// Seconds to read the graph.
    pub load_seconds: f64,
    /// Hops to the fixed point.
    pub hops: usize,
    /// Units kept in all (all of them: nothing is lost).
    pub kept: u128,
    /// The peer, when it ran.
    pub peer: Option<FlowPeer>,
}

/// Propagation of 10¹⁸ units on a synthetic network.
#[derive(Debug, Clone, Serialize)]
pub struct SyntheticRun {
    /// Nodes.
    pub nodes: usize,
    /// Edges drawn.
    pub edges: usize,
    /// Best of 3 wall time, stopping (like the peer) once at most 10⁻⁹ of the total is in flight.
    pub seconds: f64,
    /// Hops to that point.
    pub hops: usize,
    /// Hops until the last unit is kept.
    pub full_hops: usize,
    /// Wall time until the last unit is kept.
    pub full_seconds: f64,
    /// Seconds to build the network.
    pub build_seconds: f64,
    /// The peer, when it ran.
    pub peer: Option<FlowPeer>,
}

/// A Monte Carlo of a 50-node network (100 steps, log-normal injections).
#[derive(Debug, Clone, Serialize)]
pub struct MonteCarloRun {
    /// Runs.
    pub runs: usize,
    /// Wall time.
    pub seconds: f64,
    /// Mean total injected per run.
    pub mean_injected: f64,
    /// The peer, when it ran.
    pub peer: Option<FlowPeer>,
}

/// `bench flow`'s figures.
#[derive(Debug, Clone, Serialize)]
pub struct FlowBench {
    /// Worker threads.
    pub threads: usize,
    /// Whether the peer script was asked for and found (it may still have failed to run).
    pub peer_found: bool,
    /// The Deep Funding graph.
    pub deep_funding: DeepFundingRun,
    /// The synthetic network.
    pub synthetic: SyntheticRun,
    /// The Monte Carlo.
    pub monte_carlo: MonteCarloRun,
}

/// Times exact-integer propagation on the Deep Funding `graph` (repo,parent,weight) and on a random network of
/// `nodes` and `edges`, and `runs` Monte Carlo runs of a 50-node network; the SciPy `peer` (when given and
/// present) runs the same workloads on floats.
pub fn flow(
    graph: &Path,
    peer: Option<&Path>,
    nodes: usize,
    edges: usize,
    runs: usize,
) -> Result<FlowBench, EngineError> {
    use allonet_flow::propagate::propagate_fast;
    use allonet_flow::sim::{simulate, InjectSpec, SimSpec};
    let peer = peer.filter(|p| p.exists());
    let ask = |args: &[&str]| -> Option<serde_json::Value> {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        run_peer(peer?, &args).ok().flatten()
    };
    let splits_only = || cfg("the fast path needs a splits-only graph");
    // 1. Deep Funding graph
    let t0 = Instant::now();
    let net = allonet_flow::graph::from_edge_table(&allonet_core::Table::read(graph)?, None, None).map_err(cfg)?;
    let load_seconds = t0.elapsed().as_secs_f64();
    let eth = *net.index().get("ethereum").ok_or_else(|| cfg("the graph has no `ethereum` node"))?;
    let (seconds, p) = best(5, || propagate_fast(&net, &[(eth, 1_000_000)], 10_000, 0));
    let p = p.ok_or_else(splits_only)?;
    let g = graph.display().to_string();
    let df_peer = ask(&["--graph-csv", &g, "--inject", "ethereum=1000000"]).map(|v| FlowPeer {
        seconds: num(&v["timings"]["propagate_s"]),
        iterations: None,
        max_abs_diff: Some(
            net.nodes
                .iter()
                .zip(&p.kept)
                .fold(0.0f64, |w, (n, &k)| w.max((k as f64 - v["kept"][&n.id].as_f64().unwrap_or(0.0)).abs())),
        ),
    });
    let deep_funding = DeepFundingRun {
        nodes: net.nodes.len(),
        edges: net.edges(),
        seconds,
        load_seconds,
        hops: p.hops,
        kept: p.kept.iter().sum(),
        peer: df_peer,
    };
    // 2. synthetic
    let t0 = Instant::now();
    let big = random_network(nodes, edges, 900_000, 1);
    let build_seconds = t0.elapsed().as_secs_f64();
    let amount: u128 = 1_000_000_000_000_000_000;
    // like the peer: stop once at most 1e-9 of the total is still in flight
    let (seconds, p) = best(3, || propagate_fast(&big, &[(0, amount)], 10_000, amount / 1_000_000_000));
    let p = p.ok_or_else(splits_only)?;
    if p.accounted() != amount {
        return Err(cfg(format!("propagation lost units: {} of {amount} accounted for", p.accounted())));
    }
    let (full_seconds, pf) = best(1, || propagate_fast(&big, &[(0, amount)], 10_000, 0));
    let pf = pf.ok_or_else(splits_only)?;
    let (n, e) = (nodes.to_string(), edges.to_string());
    let syn_peer = ask(&["--synthetic", &n, &e, "--seed", "1"]).map(|v| FlowPeer {
        seconds: num(&v["timings"]["propagate_s"]),
        iterations: v["iterations"].as_u64(),
        max_abs_diff: None,
    });
    let synthetic = SyntheticRun {
        nodes,
        edges,
        seconds,
        hops: p.hops,
        full_hops: pf.hops,
        full_seconds,
        build_seconds,
        peer: syn_peer,
    };
    // 3. Monte Carlo
    let small = random_network(50, 150, 800_000, 2);
    let spec = SimSpec {
        steps: 100,
        runs,
        seed: 42,
        inject: vec![InjectSpec { node: 0, median: 1000.0, sigma: 0.5 }],
        pinch_sweep: vec![],
        inject_scale_sweep: vec![],
    };
    let (seconds, r) = best(1, || simulate(&small, &spec));
    let mc_peer = ask(&["--mc", &runs.to_string(), "100", "50"]).map(|v| FlowPeer {
        seconds: num(&v["timings"]["mc_s"]),
        iterations: None,
        max_abs_diff: None,
    });
    let mean_injected = r.first().map_or(f64::NAN, |r| r.mean_injected);
    Ok(FlowBench {
        threads: rayon::current_num_threads(),
        peer_found: peer.is_some(),
        deep_funding,
        synthetic,
        monte_carlo: MonteCarloRun { runs, seconds, mean_injected, peer: mc_peer },
    })
}

// ---------------------------------------------------------------------------------------------------------------
// governance

/// One timed stage of signed-vote ingestion.
#[derive(Debug, Clone, Serialize)]
pub struct GovStage {
    /// What was done.
    pub stage: String,
    /// Votes it handled.
    pub votes: u64,
    /// Wall time.
    pub seconds: f64,
}

/// `bench gov`'s figures.
#[derive(Debug, Clone, Serialize)]
pub struct GovBench {
    /// Members, each casting one vote.
    pub members: u64,
    /// Seconds to derive the members' keys.
    pub key_seconds: f64,
    /// The stages, in order.
    pub stages: Vec<GovStage>,
    /// The proposal's quadratic tally for (Σ √balance).
    pub for_votes: u128,
    /// Entries of the batched store's audit chain, verified.
    pub audit_entries: u64,
}

/// `votes` members (quadratic power) vote on one proposal by EIP-712 signature: sign, verify (one thread and
/// all threads), verify + apply in memory, and durably in SQLite in transactions of 1,000 and, for the first
/// `durable_singles`, one transaction (fsync) each. The stores live in a temporary directory, removed after.
pub fn gov(votes: u64, durable_singles: u64) -> Result<GovBench, EngineError> {
    use crate::offchain::{init_event, member_key, signed_vote, NewDao};
    use allonet_governance::acts::verify;
    use allonet_governance::governor::{proposal_id, Act, Action, GovParams, Governor};
    use allonet_governance::power::{PowerConfig, Strategy};
    use rayon::prelude::*;
    let n = votes.max(1);
    let t0 = Instant::now();
    let keys: Vec<_> = (0..n).map(|i| member_key(11, i)).collect();
    let operator = member_key(11, u64::MAX);
    let key_seconds = t0.elapsed().as_secs_f64();
    let actions = vec![Action::Pause];
    let dao = NewDao {
        params: GovParams { voting_delay: 1, voting_period: 1_000_000, ..GovParams::default() },
        power: PowerConfig { strategy: Strategy::QuadraticSqrt, sybil: None },
        guardian: Address::ZERO,
        holders: keys.iter().enumerate().map(|(i, k)| (k.address(), 1_000 + i as u128)).collect(),
        chain_id: 1,
        rehearsal: true,
        salt: Some(alloy_primitives::B256::with_last_byte(11)),
    };
    let genesis = init_event(dao, &operator, 0)?;
    let g = Governor::replay([&genesis]).map_err(cfg)?;
    let propose = Act::Propose { actions: actions.clone(), description: "bench".into(), options: vec![] };
    let setup = vec![genesis.clone(), g.sign(&keys[0], propose, 1).map_err(cfg)?];
    let id = proposal_id(g.dao, keys[0].address(), &actions, "bench", &[]);
    let g0 = Governor::replay(&setup).map_err(cfg)?;
    let mut stages = Vec::new();
    let mut time = |stage: &str, votes: u64, f: &mut dyn FnMut() -> Result<(), EngineError>| {
        let t0 = Instant::now();
        f()?;
        stages.push(GovStage { stage: stage.into(), votes, seconds: t0.elapsed().as_secs_f64() });
        Ok::<_, EngineError>(())
    };
    let mut ballots = Vec::new();
    time("sign (EIP-712, secp256k1)", n, &mut || {
        ballots = keys.iter().map(|k| signed_vote(&g0, k, id, 1, 0, 3)).collect::<Result<_, _>>()?;
        Ok(())
    })?;
    let (dao, chain) = (g0.dao, g0.chain_id);
    time("verify signature (1 thread)", n, &mut || {
        ballots.iter().try_for_each(|b| verify(b, dao, chain).map(drop)).map_err(cfg)
    })?;
    time("verify signature (all threads)", n, &mut || {
        ballots.par_iter().try_for_each(|b| verify(b, dao, chain).map(drop)).map_err(cfg)
    })?;
    let mut g = g0.clone();
    time("verify + apply + tally (memory, 1 thread)", n, &mut || {
        ballots.iter().try_for_each(|b| g.apply(b)).map_err(cfg)
    })?;
    // durable: batched transactions of 1,000, and one transaction per vote
    let dir = std::env::temp_dir().join(format!("allonet-bench-gov-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::Io { path: dir.display().to_string(), cause: e })?;
    let result = (|| {
        let open = |name: &str| -> Result<allonet_store::Store, EngineError> {
            let mut s = allonet_store::Store::open(&dir.join(name)).map_err(cfg)?;
            s.set_operator(operator.clone()).map_err(cfg)?;
            s.submit_batch(&setup).map_err(cfg)?;
            Ok(s)
        };
        let mut s = open("batched.db")?;
        time("verify + apply + durable, 1,000 per transaction", n, &mut || {
            ballots.chunks(1000).try_for_each(|c| s.submit_batch(c).map(drop)).map_err(cfg)
        })?;
        let audit_entries = s.verify_audit().map_err(|b| cfg(b.to_string()))?;
        let singles = durable_singles.min(n) as usize;
        let mut s1 = open("singles.db")?;
        time("verify + apply + durable, 1 per transaction (fsync each)", singles as u64, &mut || {
            ballots[..singles].iter().try_for_each(|b| s1.submit(b).map(drop)).map_err(cfg)
        })?;
        Ok::<_, EngineError>((s.governor().proposals[&id].for_votes, audit_entries))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let (for_votes, audit_entries) = result?;
    Ok(GovBench { members: n, key_seconds, stages, for_votes, audit_entries })
}

#[cfg(test)]
mod tests {
    #[test]
    fn payouts_meet_the_gas_targets_and_every_second_run_sends_nothing() {
        let b = super::payout(60, 20).unwrap();
        assert_eq!(b.runs.len(), 5);
        assert_eq!(b.runs[0].transactions, 3);
        // Gas is deterministic on the embedded EVM; the targets are what the contract was built to.
        assert!(b.targets_met, "fresh {} repeat {}", b.fresh_gas_per_recipient, b.repeat_gas_per_recipient);
        assert!(b.fresh_gas_per_recipient < b.single_fresh_gas_per_recipient);
    }

    #[test]
    fn flow_conserves_gov_tallies_and_absent_gr9_data_is_skipped() {
        let graph = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/deepfunding/repo_parent_weight_graph.csv");
        let f = super::flow(std::path::Path::new(graph), None, 200, 1_000, 5).unwrap();
        assert_eq!(f.deep_funding.kept, 1_000_000);
        assert!(!f.peer_found && f.synthetic.peer.is_none());
        assert!(f.synthetic.full_hops >= f.synthetic.hops);
        let g = super::gov(20, 5).unwrap();
        assert_eq!(g.stages.len(), 6);
        assert_eq!(g.stages[5].votes, 5);
        assert_eq!(g.audit_entries, 22, "init + proposal + 20 votes");
        // quadratic power: each member's √balance, balances 1,000 + i
        let expected: u128 = (0..20u128).map(|i| ((1_000 + i) as f64).sqrt() as u128).sum();
        assert!(g.for_votes.abs_diff(expected) <= 20, "{} vs {expected}", g.for_votes);
        assert!(super::gr9(std::path::Path::new("/nonexistent/gr9.csv"), 1).unwrap().is_none());
    }
}
