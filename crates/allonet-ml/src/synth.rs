//! Synthetic round histories with the reference schema (impact_score, votes → amount), seeded.
//!
//! Each proposal has an impact score in [0, 100] and a vote count that grows with impact (log-normal
//! noise); the amount funded follows a known non-linear rule with multiplicative noise, so models can be
//! checked against ground truth:
//! `amount = (400 + 60·impact^0.85 + 30·√votes · (1 + 0.6·[impact > 60])) · exp(0.12·ε)`.

use crate::data::Rng;

/// One synthetic proposal.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthRow {
    /// `r{round}-p{index}`.
    pub proposal: String,
    /// Impact score in [0, 100].
    pub impact_score: f64,
    /// Votes received.
    pub votes: f64,
    /// Amount funded (none for new proposals).
    pub amount: Option<f64>,
}

/// The noiseless amount for an impact score and vote count.
pub fn true_amount(impact: f64, votes: f64) -> f64 {
    400.0 + 60.0 * impact.powf(0.85) + 30.0 * votes.sqrt() * (1.0 + if impact > 60.0 { 0.6 } else { 0.0 })
}

/// `rounds × per_round` historical proposals (with amounts) from `seed`.
pub fn history(rounds: usize, per_round: usize, seed: u64) -> Vec<SynthRow> {
    let mut rng = Rng::new(seed, 7);
    let mut out = Vec::with_capacity(rounds * per_round);
    for r in 0..rounds {
        for p in 0..per_round {
            let impact = (rng.unit() * 100.0 * 100.0).round() / 100.0;
            let votes = (20.0 + impact * 3.0 * (0.5 * rng.normal()).exp()).round();
            let amount = true_amount(impact, votes) * (0.12 * rng.normal()).exp();
            out.push(SynthRow {
                proposal: format!("r{:02}-p{:03}", r + 1, p + 1),
                impact_score: impact,
                votes,
                amount: Some((amount * 100.0).round() / 100.0),
            });
        }
    }
    out
}

/// New proposals (no amount) for the next round.
pub fn proposals(n: usize, seed: u64) -> Vec<SynthRow> {
    let mut h = history(1, n, seed ^ 0x5eed);
    for (i, r) in h.iter_mut().enumerate() {
        r.amount = None;
        r.proposal = format!("new-{:03}", i + 1);
    }
    h
}

/// CSV text of rows (`proposal,impact_score,votes[,amount]`).
pub fn to_csv(rows: &[SynthRow]) -> String {
    let with_amount = rows.iter().all(|r| r.amount.is_some());
    let mut s = String::from(if with_amount {
        "proposal,impact_score,votes,amount\n"
    } else {
        "proposal,impact_score,votes\n"
    });
    for r in rows {
        match (with_amount, r.amount) {
            (true, Some(a)) => s.push_str(&format!("{},{},{},{}\n", r.proposal, r.impact_score, r.votes, a)),
            _ => s.push_str(&format!("{},{},{}\n", r.proposal, r.impact_score, r.votes)),
        }
    }
    s
}
