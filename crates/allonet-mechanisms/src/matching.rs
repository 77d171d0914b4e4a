//! From scores to money: a pool apportioned in exact token units, with saturation and caps.
//!
//! Rules follow Gitcoin's pluralistic.js (`linear.ts`): when the scores (in token units) sum to less than
//! the pool, each project is paid its score and the rest stays unallocated, unless the round fills the
//! pool; a cap moves every capped project's overflow to the uncapped ones in proportion to their match,
//! repeated until none overflows. Here that is done in integers ([`allonet_core::apportion_capped`]), so
//! payouts plus the unallocated remainder equal the pool exactly.

use crate::MechanismError;
use allonet_core::{apportion_capped, Token, TokenAmount};
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

/// A per-project cap on what one project may receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cap {
    /// A share of the budget in parts per million (5% = 50,000).
    Ppm(u32),
    /// An absolute amount in base units.
    Absolute(TokenAmount),
}

impl Cap {
    /// Parses `5%` (a share of the budget, up to 4 decimal places of a percent) or `500` (whole tokens).
    pub fn parse(s: &str, token: &Token) -> Result<Cap, MechanismError> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let ppm = Token::new("%", 4).parse(p).map_err(|e| MechanismError::Invalid(format!("cap `{t}`: {e}")))?;
            if ppm.units() > U256::from(1_000_000u32) {
                return Err(MechanismError::Invalid(format!("cap `{t}` is over 100%")));
            }
            return Ok(Cap::Ppm(ppm.units().to::<u32>()));
        }
        token
            .parse(t)
            .map(Cap::Absolute)
            .map_err(|e| MechanismError::Invalid(format!("cap `{t}`: {e} (give an amount, or a share such as 10%)")))
    }

    /// The cap in base units for a budget.
    pub fn amount(&self, budget: TokenAmount) -> TokenAmount {
        match *self {
            Cap::Ppm(ppm) => TokenAmount(budget.units() * U256::from(ppm) / U256::from(1_000_000u32)),
            Cap::Absolute(a) => a,
        }
    }
}

/// One project's line in an allocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payout {
    /// Project id.
    pub id: String,
    /// The mechanism's score (its unit depends on the mechanism).
    pub score: f64,
    /// Exact payout in base units.
    pub amount: TokenAmount,
    /// Whether the cap bound this project.
    pub capped: bool,
}

/// Scores turned into exact payouts: `Σ amount + unallocated = budget`, always.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// The token paid.
    pub token: Token,
    /// The budget (pool) in base units.
    pub budget: TokenAmount,
    /// What was paid out in total.
    pub distributed: TokenAmount,
    /// What stayed in the pool (unsaturated round, or every project capped).
    pub unallocated: TokenAmount,
    /// The cap applied, in base units.
    pub cap: Option<TokenAmount>,
    /// One line per project, sorted by id.
    pub payouts: Vec<Payout>,
}

/// Apportions `to_distribute` (≤ `budget`) by `scores` under an optional cap; zero total pays nothing.
pub fn allocate(
    ids: &[String],
    scores: &[f64],
    token: &Token,
    budget: TokenAmount,
    to_distribute: TokenAmount,
    cap: Option<TokenAmount>,
) -> Result<Allocation, MechanismError> {
    debug_assert!(to_distribute <= budget);
    let total: f64 = scores.iter().sum();
    let (amounts, left) = if total > 0.0 && !to_distribute.is_zero() {
        apportion_capped(to_distribute, scores, cap)?
    } else {
        for (i, s) in scores.iter().enumerate() {
            if !s.is_finite() || *s < 0.0 {
                return Err(allonet_core::ApportionError::BadScore { index: i, value: *s }.into());
            }
        }
        (vec![TokenAmount::ZERO; scores.len()], to_distribute)
    };
    let distributed: TokenAmount = amounts.iter().copied().sum();
    let unallocated = budget.saturating_sub(to_distribute).checked_add(left).expect("within budget");
    let payouts = ids
        .iter()
        .zip(scores)
        .zip(amounts)
        .map(|((id, &score), amount)| Payout {
            id: id.clone(),
            score,
            amount,
            capped: cap.is_some_and(|c| amount == c && score > 0.0),
        })
        .collect();
    Ok(Allocation { token: token.clone(), budget, distributed, unallocated, cap, payouts })
}

/// Matches a pool to QF-style scores expressed in whole tokens: pays the scores when they sum to less
/// than the pool (unless `fill`), otherwise scales them to the pool; applies the cap.
pub fn match_pool(
    ids: &[String],
    scores: &[f64],
    token: &Token,
    pool: TokenAmount,
    cap: Option<Cap>,
    fill: bool,
) -> Result<Allocation, MechanismError> {
    let total: f64 = scores.iter().sum();
    let to_distribute = if fill || !total.is_finite() {
        pool
    } else {
        token.from_f64(total).map_err(|e| MechanismError::Invalid(e.to_string()))?.min(pool)
    };
    allocate(ids, scores, token, pool, to_distribute, cap.map(|c| c.amount(pool)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["p1".into(), "p2".into(), "p3".into()]
    }
    fn fmt(t: &Token, a: &Allocation) -> Vec<String> {
        a.payouts.iter().map(|p| t.format(p.amount)).collect()
    }

    #[test]
    fn pluralistic_pool_vectors() {
        let t = Token::new("USD", 6);
        let q = [34.0, 54.0, 162.0];
        let a = match_pool(&ids(), &q, &t, t.parse("100").unwrap(), None, false).unwrap();
        assert_eq!(fmt(&t, &a), ["13.6", "21.6", "64.8"]);
        let a = match_pool(&ids(), &q, &t, t.parse("1000").unwrap(), None, false).unwrap();
        assert_eq!(fmt(&t, &a), ["34", "54", "162"]);
        assert_eq!(t.format(a.unallocated), "750");
        let a = match_pool(&ids(), &q, &t, t.parse("1000").unwrap(), None, true).unwrap();
        assert_eq!(fmt(&t, &a), ["136", "216", "648"]);
        let cap = Cap::parse("50", &t).unwrap();
        let a = match_pool(&ids(), &q, &t, t.parse("100").unwrap(), Some(cap), false).unwrap();
        assert_eq!(fmt(&t, &a), ["19.318182", "30.681818", "50"]);
        assert!(a.payouts[2].capped && !a.payouts[0].capped);
        let a =
            match_pool(&ids(), &q, &t, t.parse("100").unwrap(), Some(Cap::parse("50%", &t).unwrap()), false).unwrap();
        assert_eq!(fmt(&t, &a), ["19.318182", "30.681818", "50"]);
    }

    #[test]
    fn cap_parsing() {
        let t = Token::new("OP", 18);
        assert_eq!(Cap::parse("5%", &t).unwrap(), Cap::Ppm(50_000));
        assert_eq!(Cap::parse("0.25%", &t).unwrap(), Cap::Ppm(2_500));
        assert!(Cap::parse("101%", &t).is_err());
        assert!(Cap::parse("-3", &t).is_err());
    }
}
