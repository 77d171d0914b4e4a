//! `allonet bench`: the figures of [`allonet_engine::bench`] as terminal text.

use std::fmt::Write;
use std::path::Path;

use allonet_engine::bench::{
    FlowBench, FlowPeer, GovBench, Gr9Bench, Gr9Peer, PayoutBench, FRESH_TARGET, REPEAT_TARGET,
};

use crate::{group_thousands, right, table, truncate};

/// `bench gr9` without its data: the skip notice.
pub fn gr9_absent(data: &Path) -> String {
    format!("skipped: {} is absent (the GR9 data lives in ../shared/data, outside the project)\n", data.display())
}

/// The ten highest scores with their share of the total.
fn top10(projects: &[String], scores: &[f64], title: &str) -> String {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let total: f64 = scores.iter().sum();
    let mut t = table(&["#", title, "score", "share"]);
    for (r, &i) in idx.iter().take(10).enumerate() {
        t.add_row(vec![
            (r + 1).to_string(),
            truncate(&projects[i], 50),
            group_thousands(&format!("{:.2}", scores[i])),
            format!("{:.2}%", scores[i] / total * 100.0),
        ]);
    }
    right(&mut t, &[0, 2, 3]);
    format!("{t}\n")
}

/// `bench gr9`: the data, the top ten by classic QF and by COCM, and our timings.
pub fn gr9(b: &Gr9Bench) -> String {
    let mut s = format!(
        "GR9: {} rows, {} kept (success=True, amount>0; {} negative dropped) → {} donor-project cells, {} donors, {} projects · load {:.3} s · {} threads\n",
        b.rows, b.kept, b.skipped_negative, b.cells, b.donors, b.projects.len(), b.load_seconds, b.threads
    );
    s += &top10(&b.projects, &b.qf, "classic QF");
    s += &top10(&b.projects, &b.cocm, "COCM (harsh, groups = projects)");
    let _ = writeln!(s, "allonet: QF {:.4} s · COCM {:.4} s (best of {})", b.qf_seconds, b.cocm_seconds, b.runs);
    s
}

/// `bench gr9`'s peer `peer` compared with us (`p`), or why it was skipped (`None`: it did not run).
pub fn gr9_peer(peer: &str, b: &Gr9Bench, p: Option<&Gr9Peer>) -> String {
    let Some(p) = p else {
        return format!(
            "peer skipped: `python3 {peer} …` did not run (install numpy and scipy: pip install numpy scipy)\n"
        );
    };
    format!(
        "peer (NumPy/SciPy, {peer}): QF {:.4} s · COCM {:.4} s\nspeed-up: QF {:.1}× · COCM {:.1}×\nagreement: max relative difference QF {:.1e} · COCM {:.1e}\n",
        p.qf_seconds,
        p.cocm_seconds,
        p.qf_seconds / b.qf_seconds,
        p.cocm_seconds / b.cocm_seconds,
        p.qf_max_rel_diff,
        p.cocm_max_rel_diff
    )
}

/// `bench flow`: one row per workload (ours, the peer's, the speed-up, notes), then the threads.
pub fn flow(b: &FlowBench) -> String {
    let mut t = table(&["workload", "allonet", "NumPy/SciPy peer", "speed-up", "notes"]);
    // the peer's cells: its time with `places` decimals (and iterations), and the speed-up over `ours`
    let peer = |p: &Option<FlowPeer>, ours: f64, places: usize| match p {
        Some(p) => {
            let its = p.iterations.map(|i| format!(" ({i} iterations)")).unwrap_or_default();
            (format!("{:.places$} s{its}", p.seconds), format!("{:.1}×", p.seconds / ours))
        }
        None => ("skipped".to_string(), String::new()),
    };
    let d = &b.deep_funding;
    let (ps, up) = peer(&d.peer, d.seconds, 4);
    let mut notes = format!("{} hops, load {:.3} s, kept {}", d.hops, d.load_seconds, d.kept);
    if let Some(w) = d.peer.as_ref().and_then(|p| p.max_abs_diff) {
        let _ = write!(notes, "; max |integer − float| {w:.2} units");
    }
    let name = format!("Deep Funding graph ({} nodes, {} edges), 1,000,000 units", d.nodes, d.edges);
    t.add_row(vec![name, format!("{:.4} s", d.seconds), ps, up, notes]);
    let s = &b.synthetic;
    let (ps, up) = peer(&s.peer, s.seconds, 3);
    let notes = format!(
        "{} hops to ≤1e-9 in flight (to the last unit: {} hops, {:.2} s); build {:.2} s; conserved",
        s.hops, s.full_hops, s.full_seconds, s.build_seconds
    );
    let name = format!("synthetic ({} nodes, {} edges), 10^18 units", s.nodes, s.edges);
    t.add_row(vec![name, format!("{:.3} s", s.seconds), ps, up, notes]);
    let m = &b.monte_carlo;
    let (ps, up) = peer(&m.peer, m.seconds, 3);
    let name = format!("Monte Carlo: {} runs × 100 steps × 50 nodes", m.runs);
    t.add_row(vec![name, format!("{:.3} s", m.seconds), ps, up, format!("mean injected {:.0}", m.mean_injected)]);
    let mut out = format!(
        "{t}\n{} threads; allonet moves exact integers (every unit conserved), the peer moves floats\n",
        b.threads
    );
    if !b.peer_found {
        out += "peer skipped (bench/flow_reference.py needs python3 with numpy and scipy)\n";
    }
    out
}

/// `bench gov`: votes per second of each stage, then the tally and the audit chain.
pub fn gov(b: &GovBench) -> String {
    let mut t = table(&["stage", "votes", "seconds", "votes / s"]);
    for s in &b.stages {
        let rate = group_thousands(&format!("{:.0}", s.votes as f64 / s.seconds));
        t.add_row(vec![s.stage.clone(), s.votes.to_string(), format!("{:.3}", s.seconds), rate]);
    }
    right(&mut t, &[1, 2, 3]);
    format!(
        "{t}\n{} members, quadratic power; tally for = {} · audit chain of {} entries verified · key generation {:.2} s\n",
        b.members, b.for_votes, b.audit_entries, b.key_seconds
    )
}

/// `bench payout`: each way of paying, then gas per recipient against the targets.
pub fn payout(b: &PayoutBench) -> String {
    let mut s = format!(
        "Payout of {} recipients (ERC-20, 6 decimals) on the embedded EVM (revm); gas includes each transaction's 21,000\n",
        b.recipients
    );
    let mut t = table(&["method", "transactions", "wall time", "recipients/s", "gas/recipient", "gas total"]);
    for r in &b.runs {
        t.add_row(vec![
            r.method.clone(),
            r.transactions.to_string(),
            format!("{:.2} s", r.seconds),
            format!("{:.0}", b.recipients as f64 / r.seconds),
            format!("{:.0}", r.gas_per_recipient),
            group_thousands(&r.gas_total.to_string()),
        ]);
    }
    right(&mut t, &[1, 2, 3, 4, 5]);
    let met = |x: f64, target: f64| if x <= target { "met" } else { "MISSED" };
    let _ = writeln!(
        s,
        "{t}\nper recipient: fresh {:.0} gas (target ≤ {FRESH_TARGET:.0}: {}), paid before {:.0} (target ≤ {REPEAT_TARGET:.0}: {}); \
         a second run of each finished plan sent nothing",
        b.fresh_gas_per_recipient,
        met(b.fresh_gas_per_recipient, FRESH_TARGET),
        b.repeat_gas_per_recipient,
        met(b.repeat_gas_per_recipient, REPEAT_TARGET)
    );
    s
}

#[cfg(test)]
mod tests {
    use allonet_engine::bench::{GovBench, GovStage, Gr9Bench};

    #[test]
    fn gr9_ranks_by_score_and_gov_shows_rates() {
        let b = Gr9Bench {
            rows: 3,
            kept: 3,
            skipped_negative: 0,
            cells: 3,
            donors: 2,
            projects: vec!["a".into(), "b".into()],
            load_seconds: 0.0,
            threads: 1,
            runs: 1,
            qf_seconds: 0.5,
            cocm_seconds: 1.0,
            qf: vec![1.0, 3.0],
            cocm: vec![2.0, 2.0],
        };
        let s = super::gr9(&b);
        let first = s.lines().position(|l| l.contains("│ 1 ┆ b ")).expect("b first by QF");
        assert!(s.lines().nth(first).unwrap().contains("75.00%"), "{s}");
        assert!(s.ends_with("allonet: QF 0.5000 s · COCM 1.0000 s (best of 1)\n"), "{s}");
        assert!(super::gr9_peer("p.py", &b, None).starts_with("peer skipped: `python3 p.py …`"));
        let g = GovBench {
            members: 2,
            key_seconds: 0.0,
            stages: vec![GovStage { stage: "sign".into(), votes: 2_000, seconds: 0.5 }],
            for_votes: 7,
            audit_entries: 4,
        };
        let s = super::gov(&g);
        assert!(s.lines().any(|l| l.contains("sign") && l.contains("4,000")), "{s}");
        assert!(s.contains("tally for = 7 · audit chain of 4 entries verified"), "{s}");
    }
}
