//! Fund propagation to a fixed point with exact integer conservation.
//!
//! Amounts are integer base units. A node splits what it receives with running totals (Drips: receiver k
//! gets ⌊X·W_k/10⁶⌋ − ⌊X·W_{k−1}/10⁶⌋ where W_k is the cumulative weight), so the parts and the kept
//! remainder add up to X exactly, at every hop. Cycles and self-loops are allowed: propagation repeats hop
//! by hop until nothing large enough to move is in flight, or the hop limit is reached.
//! Invariant, always: injected = Σ kept + Σ in flight.
//!
//! Source: Drips protocol splits (drips.network, "Splits": receivers weighted out of 1,000,000, at most
//! 200, remainder kept by the splitter).

use crate::graph::{Network, Rule, ONE_MILLION};
use allonet_core::{apportion_exact, TokenAmount};
use serde::{Deserialize, Serialize};

/// Splits `amount` by ppm weights with running totals; returns what is kept. Parts are appended to `out`.
#[inline]
pub fn split_running(amount: u128, receivers: &[(u32, u32)], out: &mut Vec<(u32, u128)>) -> u128 {
    let mut cum: u64 = 0;
    let mut given: u128 = 0;
    let small = amount < (1u128 << 44);
    for &(r, w) in receivers {
        cum += w as u64;
        let target = if small {
            (amount as u64 * cum / ONE_MILLION as u64) as u128
        } else {
            amount / ONE_MILLION as u128 * cum as u128
                + (amount % ONE_MILLION as u128) * cum as u128 / ONE_MILLION as u128
        };
        if target > given {
            out.push((r, target - given));
        }
        given = target;
    }
    amount - given
}

/// Options of [`propagate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropagateOptions {
    /// Stop after this many hops.
    pub max_hops: usize,
    /// Amounts below this stay where they are (in flight) rather than move.
    pub min_move: u128,
    /// Record every transfer (hop, from, to, amount).
    pub trace: bool,
}

impl Default for PropagateOptions {
    fn default() -> Self {
        PropagateOptions { max_hops: 10_000, min_move: 1, trace: false }
    }
}

/// One transfer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// Hop number (1-based).
    pub hop: usize,
    /// Sender.
    pub from: u32,
    /// Receiver.
    pub to: u32,
    /// Base units.
    pub amount: u128,
}

/// The outcome of a propagation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Propagation {
    /// Total injected.
    pub injected: u128,
    /// Per node: everything received (injections included).
    pub received: Vec<u128>,
    /// Per node: kept.
    pub kept: Vec<u128>,
    /// Per node: passed on (to others or itself).
    pub passed: Vec<u128>,
    /// Per node: still in flight when propagation stopped.
    pub in_flight: Vec<u128>,
    /// Hops run.
    pub hops: usize,
    /// Whether it stopped because nothing could move (rather than at the hop limit).
    pub converged: bool,
    /// Transfers, when traced.
    pub trace: Vec<Transfer>,
}

impl Propagation {
    /// Σ kept + Σ in flight (equals `injected`, always).
    pub fn accounted(&self) -> u128 {
        self.kept.iter().sum::<u128>() + self.in_flight.iter().sum::<u128>()
    }
}

/// Sends one node's pending amount according to its rule (after the pinch); returns the kept part.
pub fn dispatch(net: &Network, v: u32, amount: u128, out: &mut Vec<(u32, u128)>) -> u128 {
    let node = &net.nodes[v as usize];
    let passes_on = !matches!(node.rule, Rule::Keep);
    let mut rest = amount;
    if let Some(p) = net.pinch {
        if passes_on && p.target != v && p.ppm > 0 {
            let pinch = split_running(amount, &[(p.target, p.ppm)], out);
            rest = pinch; // what was not pinched
        }
    }
    match &node.rule {
        Rule::Keep => rest,
        Rule::Splits { receivers } | Rule::Weights { receivers } => split_running(rest, receivers, out),
        Rule::Shares { receivers, .. } => {
            if rest == 0 || receivers.is_empty() {
                return rest;
            }
            let scores: Vec<f64> = receivers.iter().map(|r| r.1).collect();
            match apportion_exact(TokenAmount::from_base_units(rest), &scores) {
                Ok(parts) => {
                    for (r, a) in receivers.iter().zip(parts) {
                        let a = a.units().to::<u128>();
                        if a > 0 {
                            out.push((r.0, a));
                        }
                    }
                    0
                }
                Err(_) => rest, // all scores zero: the node keeps what it received
            }
        }
    }
}

/// Injects amounts and propagates them hop by hop until nothing of at least `min_move` is in flight.
pub fn propagate(net: &Network, injections: &[(u32, u128)], o: &PropagateOptions) -> Propagation {
    let n = net.nodes.len();
    let mut pending = vec![0u128; n];
    let mut received = vec![0u128; n];
    let mut kept = vec![0u128; n];
    let mut passed = vec![0u128; n];
    let mut injected = 0u128;
    let mut active: Vec<u32> = Vec::new();
    let mut is_active = vec![false; n];
    for &(v, a) in injections {
        pending[v as usize] += a;
        received[v as usize] += a;
        injected += a;
        if !is_active[v as usize] && a > 0 {
            is_active[v as usize] = true;
            active.push(v);
        }
    }
    let mut trace = Vec::new();
    let mut out: Vec<(u32, u128)> = Vec::new();
    let mut hops = 0;
    let mut incoming = vec![0u128; n];
    let mut next_active: Vec<u32> = Vec::new();
    let mut converged = false;
    loop {
        // who moves this hop
        active.retain(|&v| {
            let keep = pending[v as usize] >= o.min_move && pending[v as usize] > 0;
            if !keep {
                is_active[v as usize] = false;
            }
            keep
        });
        if active.is_empty() {
            converged = true;
            break;
        }
        if hops == o.max_hops {
            break;
        }
        hops += 1;
        active.sort_unstable();
        next_active.clear();
        for &v in &active {
            let amount = std::mem::take(&mut pending[v as usize]);
            is_active[v as usize] = false;
            out.clear();
            let k = dispatch(net, v, amount, &mut out);
            kept[v as usize] += k;
            passed[v as usize] += amount - k;
            for &(u, a) in &out {
                if incoming[u as usize] == 0 {
                    next_active.push(u);
                }
                incoming[u as usize] += a;
                received[u as usize] += a;
                if o.trace {
                    trace.push(Transfer { hop: hops, from: v, to: u, amount: a });
                }
            }
        }
        for &u in &next_active {
            pending[u as usize] += std::mem::take(&mut incoming[u as usize]);
        }
        // next hop: every node that received, plus nodes still holding amounts (below min_move stay)
        active.clear();
        for &u in &next_active {
            if !is_active[u as usize] {
                is_active[u as usize] = true;
                active.push(u);
            }
        }
    }
    Propagation { injected, received, kept, passed, in_flight: pending, hops, converged, trace }
}

/// Per-source attribution: for each injection, the amount each node keeps when only that source is
/// injected ("who funded whom"). Rows follow `injections`; rounding makes their sum differ from a joint
/// run by at most a few units per node.
pub fn attribute(net: &Network, injections: &[(u32, u128)], o: &PropagateOptions) -> Vec<Vec<u128>> {
    use rayon::prelude::*;
    let o = PropagateOptions { trace: false, ..o.clone() };
    injections.par_iter().map(|&inj| propagate(net, &[inj], &o).kept).collect()
}
