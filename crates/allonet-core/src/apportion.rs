//! Turning scores into payouts that sum to the budget exactly.
//!
//! [`apportion_exact`] is the largest-remainder method (Hamilton's method; see Balinski & Young, *Fair
//! Representation*, 2nd ed. 2001, ch. 2): every project first gets the floor of its exact quota
//! `budget · wᵢ / Σw`, then the units left over go one each to the largest remainders.
//!
//! **Exactness.** Scores are `f64`, but the quotas are computed in integers: each score is converted
//! *exactly* (its binary mantissa and exponent) into an integer weight on a common scale of 2¹⁰⁰, and the
//! quotas are `U256` divisions. No float rounding touches money, and the result is identical on every
//! machine.
//!
//! **Tie-break (stable, documented).** Leftover units go to larger remainders first; equal remainders go
//! to the larger weight; equal weights go to the earlier position in the slice. Callers in allonet always
//! pass projects sorted by id, so the outcome does not depend on input row order.

use crate::amount::TokenAmount;
use alloy_primitives::U256;

/// Why scores cannot be apportioned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApportionError {
    /// A score is NaN, infinite or negative.
    #[error("score #{index} is {value}; scores must be finite and non-negative")]
    BadScore {
        /// position in the slice
        index: usize,
        /// the offending value
        value: f64,
    },
    /// Every score is zero, so there is nothing to apportion by.
    #[error("every score is zero; there is nothing to apportion the budget by")]
    ZeroTotal,
    /// The budget is so large that budget × weight overflows 256 bits.
    #[error("budget too large to apportion exactly")]
    Overflow,
}

const SCALE_BITS: i32 = 100;

/// Exact integer weights for non-negative finite scores, on a common scale where the largest score
/// lies in [2⁹⁹, 2¹⁰⁰). Exact: no float arithmetic is performed.
fn exact_weights(scores: &[f64]) -> Result<Vec<u128>, ApportionError> {
    let mut parts = Vec::with_capacity(scores.len());
    let mut top = i32::MIN;
    for (index, &s) in scores.iter().enumerate() {
        if !s.is_finite() || s < 0.0 {
            return Err(ApportionError::BadScore { index, value: s });
        }
        if s == 0.0 {
            parts.push((0u64, 0i32));
            continue;
        }
        let bits = s.to_bits();
        let exp_field = ((bits >> 52) & 0x7ff) as i32;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, e) = if exp_field == 0 { (frac, -1074) } else { (frac | (1u64 << 52), exp_field - 1075) };
        let t = e + 63 - m.leading_zeros() as i32; // floor(log2 s)
        top = top.max(t);
        parts.push((m, e));
    }
    if top == i32::MIN {
        return Err(ApportionError::ZeroTotal);
    }
    let shift0 = SCALE_BITS - 1 - top;
    Ok(parts
        .into_iter()
        .map(|(m, e)| {
            if m == 0 {
                return 0;
            }
            let sh = e + shift0;
            if sh >= 0 {
                (m as u128) << sh
            } else if sh > -64 {
                (m >> (-sh)) as u128
            } else {
                0
            }
        })
        .collect())
}

/// Splits `budget` in proportion to `scores` so that the parts sum to `budget` exactly.
///
/// A zero score gets zero. Errors on a negative or non-finite score and when all scores are zero.
pub fn apportion_exact(budget: TokenAmount, scores: &[f64]) -> Result<Vec<TokenAmount>, ApportionError> {
    let w = exact_weights(scores)?;
    let total: U256 = w.iter().fold(U256::ZERO, |a, &x| a + U256::from(x));
    if total.is_zero() {
        return Err(ApportionError::ZeroTotal);
    }
    let b = budget.units();
    let mut out = Vec::with_capacity(w.len());
    let mut rems = Vec::with_capacity(w.len());
    let mut given = U256::ZERO;
    for (i, &wi) in w.iter().enumerate() {
        let num = b.checked_mul(U256::from(wi)).ok_or(ApportionError::Overflow)?;
        let q = num / total;
        let r = num % total;
        given += q;
        out.push(q);
        if !r.is_zero() {
            rems.push((r, wi, i));
        }
    }
    let left = b - given; // < rems.len()
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let left = left.to::<u128>() as usize;
    for &(_, _, i) in rems.iter().take(left) {
        out[i] += U256::from(1u8);
    }
    Ok(out.into_iter().map(TokenAmount).collect())
}

/// Splits `budget` in proportion to `scores` with no part above `cap`: the overflow of capped parts is
/// redistributed to the uncapped ones in proportion to their scores, repeatedly, until none overflows
/// (the matching-cap rule of Gitcoin's pluralistic.js, done in exact integers).
///
/// Returns the parts and what could not be placed (non-zero only when every scored part hit the cap).
/// Parts sum with the remainder to `budget` exactly.
pub fn apportion_capped(
    budget: TokenAmount,
    scores: &[f64],
    cap: Option<TokenAmount>,
) -> Result<(Vec<TokenAmount>, TokenAmount), ApportionError> {
    let Some(cap) = cap else {
        return Ok((apportion_exact(budget, scores)?, TokenAmount::ZERO));
    };
    // validate up front so the error names the original index
    exact_weights(scores)?;
    let n = scores.len();
    let mut out = vec![TokenAmount::ZERO; n];
    let mut fixed = vec![false; n];
    let mut remaining = budget;
    loop {
        let active: Vec<usize> = (0..n).filter(|&i| !fixed[i] && scores[i] > 0.0).collect();
        if active.is_empty() || remaining.is_zero() {
            break;
        }
        let sub: Vec<f64> = active.iter().map(|&i| scores[i]).collect();
        let parts = apportion_exact(remaining, &sub)?;
        let over: Vec<usize> = (0..active.len()).filter(|&k| parts[k] > cap).collect();
        if over.is_empty() {
            for (k, &i) in active.iter().enumerate() {
                out[i] = parts[k];
            }
            remaining = TokenAmount::ZERO;
            break;
        }
        for &k in &over {
            let i = active[k];
            fixed[i] = true;
            out[i] = cap;
            remaining = remaining.saturating_sub(cap);
        }
    }
    Ok((out, remaining))
}

/// Scales `scores` to sum to `total` with no entry above `cap`, redistributing overflow in proportion
/// (water-filling), in floating point. One pass over the scores sorted from largest to smallest: each
/// takes `min(sᵢ · R / T, cap)` of what remains `R` against the scores still to place `T`. This is the
/// "cap and normalise" step of Optimism's Retro Funding 4 scoring (GovXS,
/// `voting-rules-comparison-r4-data/rpgf4_voting_calculator.ipynb`). If every entry is capped, the sum
/// is less than `total`.
pub fn water_fill(total: f64, scores: &[f64], cap: f64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut t: f64 = scores.iter().sum();
    let mut r = total;
    let mut out = vec![0.0; scores.len()];
    for i in order {
        let s = scores[i];
        let a = if t > 0.0 { (s * r / t).min(cap) } else { 0.0 };
        out[i] = a;
        t -= s;
        r -= a;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn units(v: &[TokenAmount]) -> Vec<u128> {
        v.iter().map(|a| a.units().to::<u128>()).collect()
    }

    #[test]
    fn sums_to_budget_with_documented_tie_break() {
        let p = apportion_exact(TokenAmount::from_base_units(10), &[1.0, 1.0, 1.0]).unwrap();
        assert_eq!(units(&p), vec![4, 3, 3]); // equal remainders and weights: earliest first
        let p = apportion_exact(TokenAmount::from_base_units(10), &[1.0, 2.0, 1.0]).unwrap();
        assert_eq!(units(&p), vec![3, 5, 2]); // 2.5, 5, 2.5: the earlier of the equal .5 remainders
    }

    #[test]
    fn zero_scores_get_nothing_and_bad_scores_refused() {
        let p = apportion_exact(TokenAmount::from_base_units(7), &[0.0, 3.0, 0.0]).unwrap();
        assert_eq!(units(&p), vec![0, 7, 0]);
        assert_eq!(apportion_exact(TokenAmount::from_base_units(7), &[0.0, 0.0]), Err(ApportionError::ZeroTotal));
        assert!(matches!(
            apportion_exact(TokenAmount::from_base_units(7), &[1.0, -1.0]),
            Err(ApportionError::BadScore { index: 1, .. })
        ));
        assert!(apportion_exact(TokenAmount::from_base_units(7), &[f64::NAN]).is_err());
    }

    #[test]
    fn tiny_and_huge_scores_mix_exactly() {
        let p = apportion_exact(TokenAmount::from_base_units(1_000_000), &[1e-300, 1e300, 5e-324]).unwrap();
        assert_eq!(units(&p), vec![0, 1_000_000, 0]);
    }

    #[test]
    fn cap_overflow_goes_to_uncapped_projects() {
        // pluralistic.js vector: q = 34, 54, 162, pool 100, cap 50 -> 19.318181 / 30.681818 / 50
        let (p, left) = apportion_capped(
            TokenAmount::from_base_units(100_000_000),
            &[34.0, 54.0, 162.0],
            Some(TokenAmount::from_base_units(50_000_000)),
        )
        .unwrap();
        assert_eq!(units(&p), vec![19_318_182, 30_681_818, 50_000_000]);
        assert!(left.is_zero());
    }

    #[test]
    fn all_capped_leaves_remainder() {
        let (p, left) =
            apportion_capped(TokenAmount::from_base_units(100), &[1.0, 1.0], Some(TokenAmount::from_base_units(30)))
                .unwrap();
        assert_eq!(units(&p), vec![30, 30]);
        assert_eq!(left, TokenAmount::from_base_units(40));
    }

    #[test]
    fn water_fill_caps_and_normalises() {
        let w = water_fill(1.0, &[34.0, 54.0, 162.0], 0.5);
        assert!((w[0] - 0.19318181818).abs() < 1e-9 && (w[2] - 0.5).abs() < 1e-15);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }

    proptest! {
        #[test]
        fn payouts_sum_to_budget_and_never_negative(
            budget in 0u128..u128::MAX / 4,
            scores in proptest::collection::vec(0.0f64..1e12, 1..40),
        ) {
            prop_assume!(scores.iter().any(|&s| s > 0.0));
            let p = apportion_exact(TokenAmount::from_base_units(budget), &scores).unwrap();
            let total: TokenAmount = p.iter().copied().sum();
            prop_assert_eq!(total, TokenAmount::from_base_units(budget));
            for (a, s) in p.iter().zip(&scores) {
                if *s == 0.0 { prop_assert!(a.is_zero()); }
            }
        }

        #[test]
        fn capped_payouts_respect_cap_and_conserve(
            budget in 1u128..1_000_000_000_000,
            scores in proptest::collection::vec(0.0f64..1e6, 1..30),
            cap_frac in 0.01f64..1.0,
        ) {
            prop_assume!(scores.iter().any(|&s| s > 0.0));
            let cap = TokenAmount::from_base_units(((budget as f64) * cap_frac) as u128);
            let (p, left) = apportion_capped(TokenAmount::from_base_units(budget), &scores, Some(cap)).unwrap();
            let total: TokenAmount = p.iter().copied().sum::<TokenAmount>().checked_add(left).unwrap();
            prop_assert_eq!(total, TokenAmount::from_base_units(budget));
            for a in &p { prop_assert!(*a <= cap); }
        }
    }
}
