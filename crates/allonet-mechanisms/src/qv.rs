//! Quadratic voting: Snapshot's quadratic tally over choices, and QV with vote credits.

use crate::MechanismError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One Snapshot-style vote: weights per 1-based choice index (as JSON object keys) and the voter's balance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotVote {
    /// Optional voter address or label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voter: Option<String>,
    /// Choice index ("1".."n") → weight (any non-negative scale).
    pub choice: BTreeMap<String, f64>,
    /// Voting power.
    pub balance: f64,
}

/// A Snapshot proposal's choices and votes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotProposal {
    /// Choice labels, in order.
    pub choices: Vec<String>,
    /// The votes.
    pub votes: Vec<SnapshotVote>,
}

/// Snapshot's quadratic tally: Q_c = (Σ_v √(balance_v · w_vc / Σ_j w_vj))², then scaled so the scores
/// sum to the total balance voted.
///
/// Source: snapshot-labs/snapshot.js `src/voting/quadratic.ts` (quadratic voting type).
pub fn snapshot_quadratic(p: &SnapshotProposal) -> Result<Vec<f64>, MechanismError> {
    let n = p.choices.len();
    if n == 0 {
        return Err(MechanismError::Invalid("the proposal has no choices".into()));
    }
    let mut roots = vec![0.0; n];
    let mut total_balance = 0.0;
    for (vi, v) in p.votes.iter().enumerate() {
        let who = v.voter.clone().unwrap_or_else(|| format!("#{}", vi + 1));
        if !(v.balance.is_finite() && v.balance >= 0.0) {
            return Err(MechanismError::Invalid(format!("vote {who}: balance {} must be non-negative", v.balance)));
        }
        let mut sum_w = 0.0;
        for (k, &w) in &v.choice {
            let idx: usize = k
                .parse()
                .ok()
                .filter(|i| (1..=n).contains(i))
                .ok_or_else(|| MechanismError::Invalid(format!("vote {who}: choice `{k}` is not one of 1..{n}")))?;
            let _ = idx;
            if !(w.is_finite() && w >= 0.0) {
                return Err(MechanismError::Invalid(format!(
                    "vote {who}: weight {w} for choice {k} must be non-negative"
                )));
            }
            sum_w += w;
        }
        total_balance += v.balance;
        if sum_w <= 0.0 {
            continue;
        }
        for (k, &w) in &v.choice {
            let i: usize = k.parse::<usize>().expect("checked") - 1;
            roots[i] += (v.balance * w / sum_w).sqrt();
        }
    }
    let q: Vec<f64> = roots.iter().map(|r| r * r).collect();
    let s: f64 = q.iter().sum();
    Ok(q.iter().map(|x| if s > 0.0 { x / s * total_balance } else { 0.0 }).collect())
}

/// A ballot of QV with credits: votes per choice (negative votes count against).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreditBallot {
    /// Voter address or label.
    pub voter: String,
    /// Choice label → votes.
    pub votes: BTreeMap<String, i64>,
}

/// QV with credits: each voter spends at most `credits`, where n votes on a choice cost n².
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreditElection {
    /// Choice labels.
    pub choices: Vec<String>,
    /// Credits each voter holds.
    pub credits: u64,
    /// The ballots.
    pub ballots: Vec<CreditBallot>,
}

/// Net votes per choice (Σ votes) after checking every ballot's cost Σ n² ≤ credits, one ballot per voter.
///
/// Source: Lalley & Weyl, "Quadratic Voting: How Mechanism Design Can Radicalize Democracy", AEA Papers
/// and Proceedings 108, 2018 (cost of n votes is n²).
pub fn credit_qv(e: &CreditElection) -> Result<Vec<i64>, MechanismError> {
    let idx: BTreeMap<&str, usize> = e.choices.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut net = vec![0i64; e.choices.len()];
    for b in &e.ballots {
        if !seen.insert(b.voter.as_str()) {
            return Err(MechanismError::Invalid(format!("voter {} has more than one ballot", b.voter)));
        }
        let mut cost: u128 = 0;
        for (c, &v) in &b.votes {
            let &i = idx
                .get(c.as_str())
                .ok_or_else(|| MechanismError::Invalid(format!("voter {}: unknown choice `{c}`", b.voter)))?;
            cost += (v as i128 * v as i128) as u128;
            net[i] += v;
        }
        if cost > e.credits as u128 {
            return Err(MechanismError::Invalid(format!(
                "voter {} spends {cost} credits (votes squared) but holds {}",
                b.voter, e.credits
            )));
        }
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(pairs: &[(&str, f64)], balance: f64) -> SnapshotVote {
        SnapshotVote { voter: None, choice: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(), balance }
    }

    #[test]
    fn quadratic_tally_by_hand() {
        // voter 1 (balance 4) all on A; voter 2 (balance 4) split evenly; voter 3 (balance 1) all on B.
        let p = SnapshotProposal {
            choices: vec!["A".into(), "B".into()],
            votes: vec![vote(&[("1", 1.0)], 4.0), vote(&[("1", 1.0), ("2", 1.0)], 4.0), vote(&[("2", 5.0)], 1.0)],
        };
        let s = snapshot_quadratic(&p).unwrap();
        let a = (2.0 + 2f64.sqrt()).powi(2);
        let b = (2f64.sqrt() + 1.0).powi(2);
        assert!((s[0] - a / (a + b) * 9.0).abs() < 1e-12);
        assert!((s[0] + s[1] - 9.0).abs() < 1e-12);
    }

    #[test]
    fn bad_choice_and_overspent_credits_are_refused() {
        let p = SnapshotProposal { choices: vec!["A".into()], votes: vec![vote(&[("2", 1.0)], 1.0)] };
        assert!(snapshot_quadratic(&p).unwrap_err().to_string().contains("choice `2`"));
        let e = CreditElection {
            choices: vec!["A".into(), "B".into()],
            credits: 100,
            ballots: vec![CreditBallot {
                voter: "x".into(),
                votes: [("A".to_string(), 8), ("B".to_string(), -7)].into_iter().collect(),
            }],
        };
        assert!(credit_qv(&e).unwrap_err().to_string().contains("113 credits"));
        let ok = CreditElection { credits: 113, ..e };
        assert_eq!(credit_qv(&ok).unwrap(), vec![8, -7]);
    }
}
