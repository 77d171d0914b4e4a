//! A quadratic-funding round end to end: gifts → (sybil weighting) → scores → exact matching → digests.
//!
//! [`run_round`] is a pure function of [`RoundInputs`] and [`RoundConfig`]; the result carries the
//! keccak-256 digest of its canonical inputs and of its outputs so anyone can recompute and compare.

use crate::donations::{Contribution, Donations};
use crate::matching::{match_pool, Cap, Payout};
use crate::qf::{
    blend_shares, classic_qf_scores, cluster_match_scores, cocm_scores, pairwise_qf_scores, CocmStyle, Groups,
};
use crate::sybil::{apply_sybil_weights, SybilPolicy};
use crate::MechanismError;
use allonet_core::{digest, Digest, Token, TokenAmount};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which matching mechanism a round uses.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mechanism {
    /// Classic QF ([`classic_qf_scores`]).
    Qf,
    /// Pairwise-bounded QF with parameter M ([`pairwise_qf_scores`]).
    Pairwise {
        /// The bound M: a pair's subsidy halves once it has co-funded √-mass M.
        m: f64,
    },
    /// Cluster match over donation profiles, or the operator's clusters ([`cluster_match_scores`]).
    ClusterMatch,
    /// COCM ([`cocm_scores`]) over projects as groups, or the operator's clusters.
    Cocm {
        /// harsh or soft discount
        style: CocmStyle,
    },
    /// `pct·COCM + (1 − pct)·QF` of normalised shares; always fills the pool.
    Blend {
        /// weight of COCM in [0, 1]
        pct_cocm: f64,
        /// COCM style
        style: CocmStyle,
    },
}

impl Mechanism {
    /// Short name for tables.
    pub fn name(&self) -> String {
        match self {
            Mechanism::Qf => "qf".into(),
            Mechanism::Pairwise { m } => format!("pairwise (M = {m})"),
            Mechanism::ClusterMatch => "cluster match".into(),
            Mechanism::Cocm { style } => {
                format!("cocm ({})", if *style == CocmStyle::Harsh { "harsh" } else { "soft" })
            }
            Mechanism::Blend { pct_cocm, .. } => format!("blend ({:.0}% cocm)", pct_cocm * 100.0),
        }
    }
}

/// Everything about a round that is a choice rather than data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundConfig {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The token of gifts and pool.
    pub token: Token,
    /// The matching pool in base units.
    pub pool: TokenAmount,
    /// Optional per-project cap.
    pub cap: Option<Cap>,
    /// Distribute the whole pool even when scores sum to less (pluralistic.js `ignoreSaturation`).
    pub fill: bool,
    /// Sybil thresholds (used when scores are given).
    pub sybil: Option<SybilPolicy>,
    /// Gifts below this amount (whole tokens) are ignored.
    pub min_gift: f64,
}

/// The round's data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundInputs {
    /// The gifts.
    pub contributions: Vec<Contribution>,
    /// Donor → sybil score (e.g. Gitcoin Passport), when weighting.
    pub sybil_scores: Option<BTreeMap<String, f64>>,
    /// (donor, cluster, weight) rows given by the operator.
    pub clusters: Option<Vec<(String, String, f64)>>,
    /// Donor → trust in [0, 1], for pairwise QF.
    pub trust: Option<BTreeMap<String, f64>>,
}

/// One project's line in a round result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundLine {
    /// Project id.
    pub project: String,
    /// Distinct donors after weighting.
    pub donors: usize,
    /// Total given (after weighting), whole tokens.
    pub contributed: f64,
    /// Mechanism score.
    pub score: f64,
    /// Matching paid, base units.
    pub matched: TokenAmount,
    /// Whether the cap bound.
    pub capped: bool,
}

/// The outcome of a round with its digests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundResult {
    /// The configuration used.
    pub config: RoundConfig,
    /// Donors, projects and gifts counted.
    pub donors: usize,
    /// Projects in the input (including any whose gifts were all weighted to zero).
    pub projects: usize,
    /// Donor-project cells.
    pub gifts: usize,
    /// Pool paid out.
    pub distributed: TokenAmount,
    /// Pool left.
    pub unallocated: TokenAmount,
    /// One line per project, sorted by id.
    pub lines: Vec<RoundLine>,
    /// keccak-256 of the canonical inputs (config and data, gifts sorted).
    pub input_digest: Digest,
    /// keccak-256 of the canonical outputs (lines and totals).
    pub output_digest: Digest,
}

#[derive(Serialize)]
struct CanonicalInputs<'a> {
    config: &'a RoundConfig,
    contributions: Vec<&'a Contribution>,
    sybil_scores: &'a Option<BTreeMap<String, f64>>,
    clusters: Option<Vec<&'a (String, String, f64)>>,
    trust: &'a Option<BTreeMap<String, f64>>,
}

/// Digest of a round's inputs; independent of row order.
pub fn round_input_digest(inputs: &RoundInputs, config: &RoundConfig) -> Digest {
    let mut contributions: Vec<&Contribution> = inputs.contributions.iter().collect();
    contributions
        .sort_by(|a, b| a.project.cmp(&b.project).then(a.donor.cmp(&b.donor)).then(a.amount.total_cmp(&b.amount)));
    let clusters = inputs.clusters.as_ref().map(|c| {
        let mut v: Vec<&(String, String, f64)> = c.iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.total_cmp(&b.2)));
        v
    });
    digest(&CanonicalInputs {
        config,
        contributions,
        sybil_scores: &inputs.sybil_scores,
        clusters,
        trust: &inputs.trust,
    })
}

/// Digest of a round's outputs.
pub fn round_output_digest(r: &RoundResult) -> Digest {
    digest(&(&r.lines, &r.distributed, &r.unallocated))
}

/// Scores per project for the configured mechanism (projects in `d.projects` order).
pub fn mechanism_scores(d: &Donations, inputs: &RoundInputs, mechanism: Mechanism) -> Result<Vec<f64>, MechanismError> {
    let groups = |default: fn(&Donations) -> Groups| match &inputs.clusters {
        Some(rows) => Groups::from_assignments(d, rows),
        None => default(d),
    };
    Ok(match mechanism {
        Mechanism::Qf => classic_qf_scores(d),
        Mechanism::Pairwise { m } => {
            if !(m.is_finite() && m > 0.0) {
                return Err(MechanismError::Invalid(format!("pairwise M must be positive (got {m})")));
            }
            let trust: Option<Vec<f64>> = inputs
                .trust
                .as_ref()
                .map(|t| d.donors.iter().map(|x| t.get(x).copied().unwrap_or(1.0).clamp(0.0, 1.0)).collect());
            pairwise_qf_scores(d, m, trust.as_deref())
        }
        Mechanism::ClusterMatch => cluster_match_scores(d, &groups(Groups::donation_profiles)),
        Mechanism::Cocm { style } => cocm_scores(d, &groups(Groups::projects), style),
        Mechanism::Blend { pct_cocm, style } => {
            if !(0.0..=1.0).contains(&pct_cocm) {
                return Err(MechanismError::Invalid(format!(
                    "blend share of COCM must be within 0..1 (got {pct_cocm})"
                )));
            }
            let c = cocm_scores(d, &groups(Groups::projects), style);
            blend_shares(&c, &classic_qf_scores(d), pct_cocm)
        }
    })
}

/// Runs a round: applies sybil weighting and the minimum gift, scores every project, and apportions the
/// pool exactly.
pub fn run_round(inputs: &RoundInputs, config: &RoundConfig) -> Result<RoundResult, MechanismError> {
    let policy = match (&inputs.sybil_scores, config.sybil) {
        (Some(s), Some(p)) => Some((s, p)),
        (Some(_), None) => return Err(MechanismError::Invalid("sybil scores given without thresholds".into())),
        _ => None,
    };
    let weighted = apply_sybil_weights(&inputs.contributions, policy, config.min_gift);
    let d = Donations::from_contributions(&weighted);
    let scores = mechanism_scores(&d, inputs, config.mechanism)?;
    let fill = config.fill || matches!(config.mechanism, Mechanism::Blend { .. });
    let alloc = match_pool(&d.projects, &scores, &config.token, config.pool, config.cap, fill)?;
    let totals = d.project_totals();
    let mut lines: Vec<RoundLine> = alloc
        .payouts
        .into_iter()
        .enumerate()
        .map(|(p, Payout { id, score, amount, capped })| RoundLine {
            project: id,
            donors: d.by_project[p].len(),
            contributed: totals[p],
            score,
            matched: amount,
            capped,
        })
        .collect();
    // Projects whose every gift was weighted to zero or dropped still get a line (with nothing), so a
    // round manager sees them.
    let known: std::collections::BTreeSet<&str> = d.projects.iter().map(|p| p.as_str()).collect();
    let dropped: std::collections::BTreeSet<&str> =
        inputs.contributions.iter().map(|c| c.project.as_str()).filter(|p| !known.contains(p)).collect();
    if !dropped.is_empty() {
        lines.extend(dropped.into_iter().map(|p| RoundLine {
            project: p.to_string(),
            donors: 0,
            contributed: 0.0,
            score: 0.0,
            matched: TokenAmount::ZERO,
            capped: false,
        }));
        lines.sort_by(|a, b| a.project.cmp(&b.project));
    }
    let projects = lines.len();
    let mut r = RoundResult {
        config: config.clone(),
        donors: d.donors.len(),
        projects,
        gifts: d.cells(),
        distributed: alloc.distributed,
        unallocated: alloc.unallocated,
        lines,
        input_digest: round_input_digest(inputs, config),
        output_digest: Digest(Default::default()),
    };
    r.output_digest = round_output_digest(&r);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(mechanism: Mechanism) -> RoundConfig {
        let token = Token::new("DAI", 18);
        RoundConfig {
            mechanism,
            pool: token.parse("1000").unwrap(),
            token,
            cap: None,
            fill: true,
            sybil: None,
            min_gift: 0.0,
        }
    }

    fn arb_gifts() -> impl Strategy<Value = Vec<Contribution>> {
        proptest::collection::vec((0u8..12, 0u8..5, 1u32..10_000), 1..60).prop_map(|v| {
            v.into_iter()
                .map(|(d, p, a)| Contribution {
                    donor: format!("d{d}"),
                    project: format!("p{p}"),
                    amount: a as f64 / 100.0,
                })
                .collect()
        })
    }

    fn mechanisms() -> Vec<Mechanism> {
        vec![
            Mechanism::Qf,
            Mechanism::Pairwise { m: 5.0 },
            Mechanism::ClusterMatch,
            Mechanism::Cocm { style: CocmStyle::Harsh },
            Mechanism::Cocm { style: CocmStyle::Soft },
            Mechanism::Blend { pct_cocm: 0.5, style: CocmStyle::Harsh },
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn payouts_conserve_the_pool_and_ignore_row_order(gifts in arb_gifts(), seed in any::<u64>(), fill in any::<bool>(), capped in any::<bool>()) {
            for m in mechanisms() {
                let mut cfg = config(m);
                cfg.fill = fill;
                if capped { cfg.cap = Some(Cap::Ppm(300_000)); }
                let inputs = RoundInputs { contributions: gifts.clone(), ..Default::default() };
                let r = run_round(&inputs, &cfg).unwrap();
                let paid: TokenAmount = r.lines.iter().map(|l| l.matched).sum();
                prop_assert_eq!(paid.checked_add(r.unallocated).unwrap(), cfg.pool);
                prop_assert_eq!(paid, r.distributed);
                if let Some(c) = cfg.cap { for l in &r.lines { prop_assert!(l.matched <= c.amount(cfg.pool)); } }
                // shuffle rows deterministically
                let mut shuffled = gifts.clone();
                let n = shuffled.len();
                let mut x = seed;
                for i in (1..n).rev() {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    shuffled.swap(i, (x >> 33) as usize % (i + 1));
                }
                let r2 = run_round(&RoundInputs { contributions: shuffled, ..Default::default() }, &cfg).unwrap();
                prop_assert_eq!(&r.lines, &r2.lines);
                prop_assert_eq!(r.input_digest, r2.input_digest);
                prop_assert_eq!(r.output_digest, r2.output_digest);
            }
        }
    }

    #[test]
    fn sybil_weighting_changes_the_match() {
        let g = |d: &str, p: &str, a: f64| Contribution { donor: d.into(), project: p.into(), amount: a };
        let gifts = vec![g("a", "x", 4.0), g("b", "x", 4.0), g("c", "y", 4.0), g("d", "y", 4.0)];
        let scores: BTreeMap<String, f64> =
            [("a", 30.0), ("b", 30.0), ("c", 30.0), ("d", 5.0)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut cfg = config(Mechanism::Qf);
        cfg.sybil = Some(SybilPolicy::new(15.0, 25.0).unwrap());
        let r =
            run_round(&RoundInputs { contributions: gifts, sybil_scores: Some(scores), ..Default::default() }, &cfg)
                .unwrap();
        // y keeps one donor after d is zeroed: no match; x takes the whole pool
        assert_eq!(r.lines[0].matched, cfg.pool);
        assert!(r.lines.len() == 2 && r.lines[1].matched.is_zero());
        assert_eq!(r.lines[1].donors, 1);
    }

    #[test]
    fn projects_weighted_to_nothing_stay_listed() {
        let g = |d: &str, p: &str, a: f64| Contribution { donor: d.into(), project: p.into(), amount: a };
        let gifts = vec![g("a", "x", 4.0), g("b", "x", 4.0), g("s1", "farm", 1.0), g("s2", "farm", 1.0)];
        let scores: BTreeMap<String, f64> =
            [("a", 30.0), ("b", 30.0), ("s1", 1.0), ("s2", 2.0)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut cfg = config(Mechanism::Qf);
        cfg.sybil = Some(SybilPolicy::new(15.0, 25.0).unwrap());
        let r =
            run_round(&RoundInputs { contributions: gifts, sybil_scores: Some(scores), ..Default::default() }, &cfg)
                .unwrap();
        let names: Vec<&str> = r.lines.iter().map(|l| l.project.as_str()).collect();
        assert_eq!(names, ["farm", "x"]);
        assert!(r.lines[0].matched.is_zero() && r.lines[0].donors == 0);
        assert_eq!(r.projects, 2);
    }
}
