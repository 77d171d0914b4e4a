//! Simulation over time in the cadCAD mould: a state (what each node holds in flight and has kept),
//! policies (stochastic injections), state updates (one hop of propagation per timestep), Monte Carlo runs
//! and a full-grid parameter sweep, run in parallel and seeded.
//!
//! Each run draws from its own ChaCha stream, and results are integer sums, so a simulation gives the same
//! numbers for any thread count.
//!
//! Source: BlockScience cadCAD (complex adaptive dynamics computer-aided design): partial state update
//! blocks of policies and state update functions, timesteps, Monte Carlo runs, parameter sweeps.

use crate::graph::{Network, Pinch};
use allonet_ml::data::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A per-step injection: log-normal with the given median and σ (σ = 0: always the median).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InjectSpec {
    /// Node index.
    pub node: u32,
    /// Median base units per step.
    pub median: f64,
    /// Log-normal σ.
    pub sigma: f64,
}

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimSpec {
    /// Timesteps per run.
    pub steps: usize,
    /// Monte Carlo runs per parameter set.
    pub runs: usize,
    /// Seed.
    pub seed: u64,
    /// Injections each step.
    pub inject: Vec<InjectSpec>,
    /// Pinch shares (ppm) to sweep; empty: the network's own pinch only.
    pub pinch_sweep: Vec<u32>,
    /// Multipliers of every injection's median to sweep; empty: 1 only. The sweep is the full grid
    /// pinch × scale.
    #[serde(default)]
    pub inject_scale_sweep: Vec<f64>,
}

/// Results for one parameter set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimResult {
    /// The pinch in force (ppm).
    pub pinch_ppm: u32,
    /// The injection scale in force.
    pub inject_scale: f64,
    /// Mean over runs of what each node has kept, per step: `kept[step][node]`.
    pub mean_kept: Vec<Vec<f64>>,
    /// Mean over runs of what each node received in each step.
    pub mean_received: Vec<Vec<f64>>,
    /// Mean in flight (all nodes) per step.
    pub mean_in_flight: Vec<f64>,
    /// Final kept per node, 10th / 50th / 90th percentile over runs.
    pub final_kept_p10_p50_p90: Vec<[u128; 3]>,
    /// Mean total injected per run.
    pub mean_injected: f64,
}

/// Sums over runs: kept and received per (step, node), in flight per step, injected; final kept per run.
type Acc = (Vec<u128>, Vec<u128>, Vec<u128>, u128, Vec<Vec<u128>>);

/// One Monte Carlo run on the flat-array fast path (splits and weights only; u64 amounts).
fn run_into_fast(g: &crate::propagate::Csr, net: &Network, spec: &SimSpec, run: u64, acc: &mut Acc) {
    let n = net.nodes.len();
    let mut rng = Rng::new(spec.seed, run);
    let mut pending = vec![0u64; n];
    let mut kept = vec![0u64; n];
    let mut incoming = vec![0u64; n];
    for step in 0..spec.steps {
        let rec = &mut acc.1[step * n..(step + 1) * n];
        for i in &spec.inject {
            let a = if i.sigma > 0.0 { i.median * (i.sigma * rng.normal()).exp() } else { i.median };
            let a = a.round().max(0.0) as u64;
            pending[i.node as usize] += a;
            rec[i.node as usize] += a as u128;
            acc.3 += a as u128;
        }
        for v in 0..n {
            let amount = std::mem::take(&mut pending[v]);
            if amount != 0 {
                kept[v] += crate::propagate::hop_fast(g, net.pinch, v, amount, &mut incoming);
            }
        }
        let mut flight = 0u128;
        for v in 0..n {
            let a = std::mem::take(&mut incoming[v]);
            rec[v] += a as u128;
            pending[v] += a;
            flight += pending[v] as u128;
        }
        for (a, k) in acc.0[step * n..(step + 1) * n].iter_mut().zip(&kept) {
            *a += *k as u128;
        }
        acc.2[step] += flight;
    }
    acc.4.push(kept.into_iter().map(|k| k as u128).collect());
}

/// One Monte Carlo run, added straight into the accumulator (no per-run tables).
fn run_into(net: &Network, spec: &SimSpec, run: u64, acc: &mut Acc) {
    let n = net.nodes.len();
    let mut rng = Rng::new(spec.seed, run);
    let mut pending = vec![0u128; n];
    let mut kept = vec![0u128; n];
    let mut incoming = vec![0u128; n];
    let mut out = Vec::new();
    for step in 0..spec.steps {
        let rec = &mut acc.1[step * n..(step + 1) * n];
        // policy: injections
        for i in &spec.inject {
            let a = if i.sigma > 0.0 { i.median * (i.sigma * rng.normal()).exp() } else { i.median };
            let a = a.round().max(0.0) as u128;
            pending[i.node as usize] += a;
            rec[i.node as usize] += a;
            acc.3 += a;
        }
        // state update: one hop
        for v in 0..n {
            let amount = std::mem::take(&mut pending[v]);
            if amount == 0 {
                continue;
            }
            out.clear();
            let k = crate::propagate::dispatch(net, v as u32, amount, &mut out);
            kept[v] += k;
            for &(u, a) in &out {
                incoming[u as usize] += a;
                rec[u as usize] += a;
            }
        }
        let mut flight = 0u128;
        for v in 0..n {
            pending[v] += std::mem::take(&mut incoming[v]);
            flight += pending[v];
        }
        for (a, k) in acc.0[step * n..(step + 1) * n].iter_mut().zip(&kept) {
            *a += k;
        }
        acc.2[step] += flight;
    }
    acc.4.push(kept);
}

/// The flat-array fast path, when the network has only splits and weights and per-run totals stay far below
/// 2⁶³ (a generous bound on the log-normal injections).
fn fast_path(net: &Network, spec: &SimSpec) -> Option<crate::propagate::Csr> {
    let bound: f64 = spec.inject.iter().map(|i| i.median * (6.0 * i.sigma).exp()).sum::<f64>() * spec.steps as f64;
    crate::propagate::csr(net).filter(|_| bound < 1e17)
}

/// One run's trajectory: `(kept, received)`, each `steps × nodes` (row-major by step), exactly as that run
/// contributes to [`simulate`]'s means. For per-run result tables (run, step, node, metrics).
pub fn trajectory(net: &Network, spec: &SimSpec, run: u64) -> (Vec<u128>, Vec<u128>) {
    let n = net.nodes.len();
    let mut acc: Acc =
        (vec![0u128; spec.steps * n], vec![0u128; spec.steps * n], vec![0u128; spec.steps], 0, Vec::new());
    match fast_path(net, spec) {
        Some(g) => run_into_fast(&g, net, spec, run, &mut acc),
        None => run_into(net, spec, run, &mut acc),
    }
    (acc.0, acc.1)
}

/// The parameter grid of a spec: (network with the pinch set, spec with injections scaled, pinch, scale).
pub fn grid(net: &Network, spec: &SimSpec) -> Vec<(Network, SimSpec, u32, f64)> {
    let pinches: Vec<Option<u32>> =
        if spec.pinch_sweep.is_empty() { vec![None] } else { spec.pinch_sweep.iter().map(|&p| Some(p)).collect() };
    let scales: Vec<f64> = if spec.inject_scale_sweep.is_empty() { vec![1.0] } else { spec.inject_scale_sweep.clone() };
    let mut out = Vec::new();
    for &p in &pinches {
        for &scale in &scales {
            let mut sp = spec.clone();
            sp.inject.iter_mut().for_each(|i| i.median *= scale);
            let mut nt = net.clone();
            if let (Some(p), Some(existing)) = (p, nt.pinch) {
                nt.pinch = Some(Pinch { target: existing.target, ppm: p });
            }
            let ppm = nt.pinch.map(|x| x.ppm).unwrap_or(0);
            out.push((nt, sp, ppm, scale));
        }
    }
    out
}

/// Runs the simulation for every parameter set of the sweep (or the network as given).
pub fn simulate(net: &Network, spec: &SimSpec) -> Vec<SimResult> {
    let n = net.nodes.len();
    grid(net, spec)
        .into_iter()
        .map(|(net, spec, pinch_ppm, scale)| {
            let spec = &spec;
            // integer sums are exact, so the fold/reduce order (which depends on threads) cannot change them
            let zero = || -> Acc {
                (vec![0u128; spec.steps * n], vec![0u128; spec.steps * n], vec![0u128; spec.steps], 0u128, Vec::new())
            };
            // the fast path needs splits/weights only and per-run totals far below 2^63
            let fast = fast_path(&net, spec);
            let (kept, received, flight, injected, finals) = (0..spec.runs as u64)
                .into_par_iter()
                .fold(zero, |mut acc, r| {
                    match &fast {
                        Some(g) => run_into_fast(g, &net, spec, r, &mut acc),
                        None => run_into(&net, spec, r, &mut acc),
                    }
                    acc
                })
                .reduce(zero, |mut a, mut b| {
                    a.0.iter_mut().zip(&b.0).for_each(|(x, y)| *x += y);
                    a.1.iter_mut().zip(&b.1).for_each(|(x, y)| *x += y);
                    a.2.iter_mut().zip(&b.2).for_each(|(x, y)| *x += y);
                    a.3 += b.3;
                    a.4.append(&mut b.4);
                    a
                });
            let runs = spec.runs.max(1) as f64;
            let per_step = |v: &[u128]| -> Vec<Vec<f64>> {
                (0..spec.steps).map(|s| v[s * n..(s + 1) * n].iter().map(|&x| x as f64 / runs).collect()).collect()
            };
            let pct = |node: usize| -> [u128; 3] {
                let mut v: Vec<u128> = finals.iter().map(|f| f[node]).collect();
                v.sort_unstable();
                let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
                if v.is_empty() {
                    [0; 3]
                } else {
                    [q(0.1), q(0.5), q(0.9)]
                }
            };
            SimResult {
                pinch_ppm,
                inject_scale: scale,
                mean_kept: per_step(&kept),
                mean_received: per_step(&received),
                mean_in_flight: flight.iter().map(|&x| x as f64 / runs).collect(),
                final_kept_p10_p50_p90: (0..n).map(pct).collect(),
                mean_injected: injected as f64 / runs,
            }
        })
        .collect()
}
