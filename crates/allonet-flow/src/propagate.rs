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

use crate::graph::{Network, Pinch, Rule, ONE_MILLION};
use allonet_core::{apportion_exact, TokenAmount};
use serde::{Deserialize, Serialize};

/// ⌊amount · cum / 10⁶⌋ exactly (cum ≤ 10⁶), in u64 arithmetic when the product fits.
#[inline(always)]
fn cum_part(amount: u128, cum: u64) -> u128 {
    if amount < (1u128 << 44) {
        (amount as u64 * cum / ONE_MILLION as u64) as u128
    } else {
        amount / ONE_MILLION as u128 * cum as u128 + (amount % ONE_MILLION as u128) * cum as u128 / ONE_MILLION as u128
    }
}

/// Splits `amount` by ppm weights with running totals; returns what is kept. Parts are appended to `out`.
#[inline]
pub fn split_running(amount: u128, receivers: &[(u32, u32)], out: &mut Vec<(u32, u128)>) -> u128 {
    let mut cum: u64 = 0;
    let mut given: u128 = 0;
    for &(r, w) in receivers {
        cum += w as u64;
        let target = cum_part(amount, cum);
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
        // ascending order walks memory sequentially (sums are integers, so order never changes results)
        active.sort_unstable();
        next_active.clear();
        for &v in &active {
            let amount = std::mem::take(&mut pending[v as usize]);
            is_active[v as usize] = false;
            out.clear();
            let k = dispatch(net, v, amount, &mut out);
            for &(u, a) in &out {
                if incoming[u as usize] == 0 {
                    next_active.push(u);
                }
                incoming[u as usize] += a;
                if o.trace {
                    trace.push(Transfer { hop: hops, from: v, to: u, amount: a });
                }
            }
            kept[v as usize] += k;
            passed[v as usize] += amount - k;
        }
        for &u in &next_active {
            let a = std::mem::take(&mut incoming[u as usize]);
            received[u as usize] += a;
            pending[u as usize] += a;
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

/// The network as flat arrays for the fast path: per node, its receivers and cumulative weights.
/// The network as flat arrays (splits and weights only).
pub(crate) struct Csr {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    cum: Vec<u32>,
    passes_on: Vec<bool>,
}

pub(crate) fn csr(net: &Network) -> Option<Csr> {
    let mut offsets = Vec::with_capacity(net.nodes.len() + 1);
    let mut targets = Vec::new();
    let mut cum = Vec::new();
    let mut passes_on = Vec::with_capacity(net.nodes.len());
    offsets.push(0u32);
    for n in &net.nodes {
        passes_on.push(!matches!(n.rule, Rule::Keep));
        match &n.rule {
            Rule::Keep => {}
            Rule::Splits { receivers } | Rule::Weights { receivers } => {
                let mut c = 0u32;
                for &(t, w) in receivers {
                    c += w;
                    targets.push(t);
                    cum.push(c);
                }
            }
            Rule::Shares { .. } => return None,
        }
        offsets.push(targets.len() as u32);
    }
    Some(Csr { offsets, targets, cum, passes_on })
}

/// ⌊amount · cum / 10⁶⌋ in u64 without overflow (cum ≤ 10⁶).
#[inline(always)]
fn part(amount: u64, cum: u32) -> u64 {
    let (q, r) = (amount / ONE_MILLION as u64, amount % ONE_MILLION as u64);
    q * cum as u64 + r * cum as u64 / ONE_MILLION as u64
}

/// One node's hop on the fast path: pinch, then running-total split into `incoming`; returns kept.
#[inline(always)]
pub(crate) fn hop_fast(g: &Csr, pinch: Option<Pinch>, v: usize, amount: u64, incoming: &mut [u64]) -> u64 {
    let (s, e) = (g.offsets[v] as usize, g.offsets[v + 1] as usize);
    let mut rest = amount;
    if let Some(p) = pinch {
        if g.passes_on[v] && p.target as usize != v && p.ppm > 0 {
            let a = part(amount, p.ppm);
            incoming[p.target as usize] += a;
            rest = amount - a;
        }
    }
    let mut given = 0u64;
    for k in s..e {
        let target = part(rest, g.cum[k]);
        incoming[g.targets[k] as usize] += target - given;
        given = target;
    }
    rest - given
}

/// [`propagate`] for networks of splits and weights (no mechanism nodes), without a trace and with totals
/// under 2⁶³: flat arrays, u64 arithmetic, and each hop split over threads with private accumulators
/// merged by integer addition, so the result is identical to [`propagate`] for any thread count.
/// `stop_below` ends propagation once the total in flight is at most that many units (0: run to the end).
pub fn propagate_fast(
    net: &Network,
    injections: &[(u32, u128)],
    max_hops: usize,
    stop_below: u128,
) -> Option<Propagation> {
    use rayon::prelude::*;
    let g = csr(net)?;
    let total: u128 = injections.iter().map(|i| i.1).sum();
    if total >= 1u128 << 63 {
        return None;
    }
    let n = net.nodes.len();
    let mut pending = vec![0u64; n];
    let mut received = vec![0u64; n];
    for &(v, a) in injections {
        pending[v as usize] += a as u64;
        received[v as usize] += a as u64;
    }
    let mut kept = vec![0u64; n];
    let mut passed = vec![0u64; n];
    // small graphs: threads cost more than they save
    let threads = if g.targets.len() < 200_000 { 1 } else { rayon::current_num_threads().max(1) };
    let chunk = n.div_ceil(threads).max(1);
    let mut bufs: Vec<Vec<u64>> = (0..threads).map(|_| vec![0u64; n]).collect();
    let mut hops = 0;
    let mut converged = false;
    loop {
        let in_flight: u64 = pending.iter().sum();
        if in_flight == 0 {
            converged = true;
            break;
        }
        if (in_flight as u128) <= stop_below || hops == max_hops {
            break;
        }
        hops += 1;
        // each thread handles a range of senders, scattering into its own buffer
        let moved: u64 = pending
            .par_chunks_mut(chunk)
            .zip(kept.par_chunks_mut(chunk))
            .zip(passed.par_chunks_mut(chunk))
            .zip(bufs.par_iter_mut())
            .enumerate()
            .map(|(c, (((pend, kp), ps), buf))| {
                let base = c * chunk;
                let mut moved = 0u64;
                for (i, p) in pend.iter_mut().enumerate() {
                    let amount = *p;
                    if amount == 0 {
                        continue;
                    }
                    let v = base + i;
                    let k = hop_fast(&g, net.pinch, v, amount, buf);
                    *p = 0;
                    kp[i] += k;
                    ps[i] += amount - k;
                    moved += amount - k;
                }
                moved
            })
            .sum();
        if moved == 0 {
            // everything left is too small to split further: it is kept where it is
            converged = true;
        }
        // merge the buffers in a fixed order (integer sums: order cannot matter anyway)
        pending.par_chunks_mut(chunk).zip(received.par_chunks_mut(chunk)).enumerate().for_each(|(c, (pend, rec))| {
            let base = c * chunk;
            for (i, (p, r)) in pend.iter_mut().zip(rec.iter_mut()).enumerate() {
                let mut a = 0u64;
                for b in &bufs {
                    a += b[base + i];
                }
                *p += a;
                *r += a;
            }
        });
        bufs.par_iter_mut().for_each(|b| b.iter_mut().for_each(|x| *x = 0));
        if converged {
            break;
        }
    }
    let wide = |v: Vec<u64>| v.into_iter().map(|x| x as u128).collect::<Vec<u128>>();
    Some(Propagation {
        injected: total,
        received: wide(received),
        kept: wide(kept),
        passed: wide(passed),
        in_flight: wide(pending),
        hops,
        converged,
        trace: Vec::new(),
    })
}
