//! Sybil weighting of donors by a passport-style score, and a minimum gift.
//!
//! Rule (Gitcoin's QF calculator, `apply_voting_eligibility` in gitcoinco/qf-calculator
//! `fundingutils.py`): a donor scoring below `s50` counts for nothing; at `s50` a gift counts half,
//! rising linearly to full weight at `s100` and above. Donors absent from the score file score 0.

use crate::donations::Contribution;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The two thresholds of the sybil weighting.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SybilPolicy {
    /// Score at which a donor's gifts count half (below it: zero).
    pub s50: f64,
    /// Score at which (and above which) gifts count in full.
    pub s100: f64,
}

/// Why a sybil policy is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("sybil thresholds must satisfy 0 <= s50 < s100 (got s50 = {s50}, s100 = {s100})")]
pub struct SybilPolicyError {
    /// given s50
    pub s50: f64,
    /// given s100
    pub s100: f64,
}

impl SybilPolicy {
    /// A validated policy.
    pub fn new(s50: f64, s100: f64) -> Result<Self, SybilPolicyError> {
        if !(s50.is_finite() && s100.is_finite() && s50 >= 0.0 && s50 < s100) {
            return Err(SybilPolicyError { s50, s100 });
        }
        Ok(SybilPolicy { s50, s100 })
    }

    /// The weight in [0, 1] a donor with `score` gets.
    pub fn weight(&self, score: f64) -> f64 {
        if score.is_nan() || score < self.s50 {
            0.0
        } else if score >= self.s100 {
            1.0
        } else {
            0.5 + 0.5 * (score - self.s50) / (self.s100 - self.s50)
        }
    }
}

/// Scales every gift by its donor's weight; donors without a score get weight 0. Gifts below
/// `min_gift` (compared on the original amount) are dropped first.
pub fn apply_sybil_weights(
    gifts: &[Contribution],
    scores: Option<(&BTreeMap<String, f64>, SybilPolicy)>,
    min_gift: f64,
) -> Vec<Contribution> {
    gifts
        .iter()
        .filter(|g| g.amount >= min_gift)
        .map(|g| {
            let w = match scores {
                Some((map, policy)) => policy.weight(map.get(&g.donor).copied().unwrap_or(0.0)),
                None => 1.0,
            };
            Contribution { amount: g.amount * w, ..g.clone() }
        })
        .filter(|g| g.amount > 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_is_zero_half_then_linear_to_one() {
        let p = SybilPolicy::new(15.0, 25.0).unwrap();
        assert_eq!(p.weight(14.99), 0.0);
        assert_eq!(p.weight(15.0), 0.5);
        assert_eq!(p.weight(20.0), 0.75);
        assert_eq!(p.weight(25.0), 1.0);
        assert_eq!(p.weight(99.0), 1.0);
        assert!(SybilPolicy::new(25.0, 15.0).is_err());
    }

    #[test]
    fn unknown_donors_and_small_gifts_drop_out() {
        let g = |d: &str, a: f64| Contribution { donor: d.into(), project: "p".into(), amount: a };
        let scores: BTreeMap<String, f64> = [("a".to_string(), 20.0)].into_iter().collect();
        let p = SybilPolicy::new(15.0, 25.0).unwrap();
        let out = apply_sybil_weights(&[g("a", 4.0), g("b", 4.0), g("a", 0.5)], Some((&scores, p)), 1.0);
        assert_eq!(out, vec![g("a", 3.0)]);
    }
}
