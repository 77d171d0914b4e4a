//! # allonet-mechanisms
//!
//! Funding and voting mechanisms as pure functions: plain data in, scores and exact payouts out. No I/O,
//! no printing, no clock, no randomness; the same inputs give byte-identical outputs on any machine and
//! with any number of threads.
//!
//! - [`qf`]: classic QF, pairwise-bounded QF, cluster match, COCM, blends.
//! - [`matching`]: pools, saturation and caps, turning scores into exact token units.
//! - [`round`]: a whole QF round with sybil weighting and digests.
//! - [`sybil`]: passport-style donor weighting and minimum gifts.
//! - [`qv`]: Snapshot quadratic voting and QV with credits.
//! - [`retro`]: RetroPGF 3 medians, Retro Funding 4 metric ballots, capped proportional allocation.
//!
//! ```
//! use allonet_core::Token;
//! use allonet_mechanisms::{donations::{Contribution, Donations}, matching::match_pool, qf::classic_qf_scores};
//! let gift = |d: &str, p: &str, a: f64| Contribution { donor: d.into(), project: p.into(), amount: a };
//! let d = Donations::from_contributions(&[gift("a", "x", 1.0), gift("b", "x", 4.0), gift("c", "y", 9.0)]);
//! let scores = classic_qf_scores(&d); // x: (1 + 2)² − 5 = 4; y has one donor: 0
//! assert_eq!(scores, vec![4.0, 0.0]);
//! let dai = Token::new("DAI", 18);
//! let a = match_pool(&d.projects, &scores, &dai, dai.parse("100").unwrap(), None, true).unwrap();
//! assert_eq!(dai.format(a.payouts[0].amount), "100");
//! ```

pub mod donations;
pub mod matching;
pub mod qf;
pub mod qv;
pub mod retro;
pub mod round;
pub mod sybil;

/// Why a mechanism could not run.
#[derive(Debug, thiserror::Error)]
pub enum MechanismError {
    /// Parameters or data that break the mechanism's rules.
    #[error("{0}")]
    Invalid(String),
    /// Apportionment failed.
    #[error(transparent)]
    Apportion(#[from] allonet_core::ApportionError),
}
