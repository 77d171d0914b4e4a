//! Quadratic funding scores: classic, pairwise-bounded, cluster match and COCM.
//!
//! Each function maps a [`Donations`] matrix to one score per project (in the same order as
//! `Donations::projects`): the *subsidy* the mechanism would pay before it is scaled to a pool. Turning
//! scores into money is [`crate::matching`]'s job.

use crate::donations::Donations;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Classic quadratic funding subsidy per project: q_p = (Σᵢ √cᵢₚ)² − Σᵢ cᵢₚ, after summing each donor's
/// gifts to p. A project with a single donor gets exactly 0.
///
/// Source: Buterin, Hitzig, Weyl, "A Flexible Design for Funding Public Goods", Management Science 65(11),
/// 2019; as computed by Gitcoin's pluralistic.js (`linear.ts`).
pub fn classic_qf_scores(d: &Donations) -> Vec<f64> {
    d.by_project
        .iter()
        .map(|gifts| {
            if gifts.len() < 2 {
                return 0.0;
            }
            let sqrt_sum: f64 = gifts.iter().map(|g| g.1.sqrt()).sum();
            let sum: f64 = gifts.iter().map(|g| g.1).sum();
            (sqrt_sum * sqrt_sum - sum).max(0.0)
        })
        .collect()
}

/// Pairwise-bounded QF: funding_p = Σ_{i<j} tᵢtⱼ · √(cᵢₚcⱼₚ) · M / (M + Σ_q √(cᵢ_q cⱼ_q)).
///
/// A pair of donors who co-fund many projects gets a shrinking subsidy, bounding what any colluding pair
/// can extract. `trust` optionally scales each donor (1.0 when absent or `None`).
///
/// Source: Vitalik Buterin, "Pairwise coordination subsidies: a new quadratic funding design", ethresear.ch,
/// 2019. Cost is Σ_p n_p² pairs; meant for rounds up to tens of thousands of gifts per project.
pub fn pairwise_qf_scores(d: &Donations, m: f64, trust: Option<&[f64]>) -> Vec<f64> {
    let t = |i: u32| trust.map(|t| t[i as usize]).unwrap_or(1.0);
    // Σ_q √(c_iq c_jq) per donor pair, accumulated in project order (deterministic).
    let mut pair: HashMap<(u32, u32), f64> = HashMap::new();
    for gifts in &d.by_project {
        for (a, &(i, ci)) in gifts.iter().enumerate() {
            for &(j, cj) in &gifts[a + 1..] {
                *pair.entry((i, j)).or_insert(0.0) += (ci * cj).sqrt();
            }
        }
    }
    d.by_project
        .iter()
        .map(|gifts| {
            let mut s = 0.0;
            for (a, &(i, ci)) in gifts.iter().enumerate() {
                for &(j, cj) in &gifts[a + 1..] {
                    let bound = m / (m + pair[&(i, j)]);
                    s += t(i) * t(j) * (ci * cj).sqrt() * bound;
                }
            }
            s
        })
        .collect()
}

/// Donor groups for cluster match and COCM: a weighted donor × group membership matrix G.
#[derive(Clone, Debug)]
pub struct Groups {
    /// Group names, sorted.
    pub names: Vec<String>,
    /// For each donor (indexed like `Donations::donors`): (group index, weight > 0), sorted by group.
    pub members: Vec<Vec<(u32, f64)>>,
}

impl Groups {
    /// The default of Gitcoin's calculator: groups are the projects, each donor a member of the projects
    /// it gave to, weighted by the amount (G = C).
    pub fn projects(d: &Donations) -> Groups {
        Groups { names: d.projects.clone(), members: d.by_donor.clone() }
    }

    /// Groups from an operator's (donor, group, weight) list. Donors of the round missing from the list
    /// belong to no group (COCM then ignores them, as Gitcoin's `align` does); listed donors who did not
    /// give are ignored.
    pub fn from_assignments(d: &Donations, rows: &[(String, String, f64)]) -> Groups {
        let names: Vec<String> = {
            let mut v: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
            v.sort();
            v.dedup();
            v
        };
        let gix: BTreeMap<&str, u32> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
        let dix: HashMap<&str, usize> = d.donors.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let mut acc: Vec<BTreeMap<u32, f64>> = vec![BTreeMap::new(); d.donors.len()];
        for (donor, group, w) in rows {
            if let Some(&i) = dix.get(donor.as_str()) {
                *acc[i].entry(gix[group.as_str()]).or_insert(0.0) += w;
            }
        }
        let members = acc.into_iter().map(|m| m.into_iter().filter(|x| x.1 > 0.0).collect()).collect();
        Groups { names, members }
    }

    /// Groups of identical donation profiles: donors who gave to exactly the same set of projects form
    /// one group (Gitcoin's `donation_profile_clustermatch`).
    pub fn donation_profiles(d: &Donations) -> Groups {
        let mut profiles: BTreeMap<Vec<u32>, Vec<usize>> = BTreeMap::new();
        for (i, gifts) in d.by_donor.iter().enumerate() {
            profiles.entry(gifts.iter().map(|g| g.0).collect()).or_default().push(i);
        }
        let mut members = vec![Vec::new(); d.donors.len()];
        let mut names = Vec::with_capacity(profiles.len());
        for (g, (profile, donors)) in profiles.into_iter().enumerate() {
            names.push(format!("profile:{}", profile.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("+")));
            for i in donors {
                members[i].push((g as u32, 1.0));
            }
        }
        Groups { names, members }
    }
}

/// Cluster match: each group's gifts to p are pooled before the square root, so coordinated donors count
/// as one: funding_p = (Σ_g √(Σ_{i∈g} wᵢ_g cᵢₚ))², minus the direct gifts Σᵢ cᵢₚ (the subsidy). With
/// fractional memberships each donor's gift is split across its groups by its normalised weights.
///
/// Source: Miller, Weyl, Erichsen, "Beyond Collusion Resistance: Leveraging Social Information for Plural
/// Funding and Voting", 2022, §4 (cluster match).
pub fn cluster_match_scores(d: &Donations, groups: &Groups) -> Vec<f64> {
    let w = row_normalised(&groups.members);
    d.by_project
        .iter()
        .map(|gifts| {
            let mut per_group: BTreeMap<u32, f64> = BTreeMap::new();
            let mut direct = 0.0;
            for &(i, c) in gifts {
                direct += c;
                for &(g, wig) in &w[i as usize] {
                    *per_group.entry(g).or_insert(0.0) += wig * c;
                }
            }
            if per_group.len() < 2 {
                return 0.0; // one cluster: no subsidy (avoids (√a)² − a rounding noise)
            }
            let s: f64 = per_group.values().map(|v| v.sqrt()).sum();
            (s * s - direct).max(0.0)
        })
        .collect()
}

/// How COCM discounts a donor's gift by its connection to other groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CocmStyle {
    /// K = (1 − k)·c: connected gifts are removed entirely (Gitcoin's default).
    #[default]
    Harsh,
    /// K = k·√c + (1 − k)·c: connected gifts count as their square root.
    Soft,
}

fn row_normalised(m: &[Vec<(u32, f64)>]) -> Vec<Vec<(u32, f64)>> {
    m.iter()
        .map(|row| {
            let s: f64 = row.iter().map(|x| x.1).sum();
            if s > 0.0 {
                row.iter().map(|&(g, v)| (g, v / s)).collect()
            } else {
                Vec::new()
            }
        })
        .collect()
}

/// Connection-oriented cluster match (COCM), "markov" connectedness, as Gitcoin's QF calculator runs it.
///
/// With G the donor × group matrix: W = G with rows scaled to 1; U = Gᵀ with rows scaled to 1;
/// k = W·(U·W) (how strongly donor i reaches group g through others), and k_ig = 1 where i is in g. For
/// each project p, over p's donors: K_ig = (1 − k_ig)·c_ip (harsh) or k_ig·√c_ip + (1 − k_ig)·c_ip
/// (soft); P'_gh = Σᵢ K_ig·W_ih; P_gh = √(P'_gh·P'_hg) for g ≠ h; score_p = Σ_{g≠h} P_gh, the subsidy alone.
///
/// Only groups of p's own donors can have P'_gh·P'_hg > 0, so each project is a dense block of that size;
/// projects run in parallel, each summed in a fixed order, so the result is identical for any thread count.
///
/// Source: Miller, Weyl, Erichsen, "Beyond Collusion Resistance", 2022, §5; gitcoinco/qf-calculator
/// `fundingutils.py` (`COCM`, calcstyle "markov").
pub fn cocm_scores(d: &Donations, groups: &Groups, style: CocmStyle) -> Vec<f64> {
    let ng = groups.names.len();
    let w = row_normalised(&groups.members);
    // column sums of G, for U = Gᵀ row-normalised
    let mut colsum = vec![0.0; ng];
    for row in &groups.members {
        for &(g, v) in row {
            colsum[g as usize] += v;
        }
    }
    // UW (ng × ng, dense): UW[g][h] = Σ_i (G_ig / colsum_g) · W_ih
    let mut uw = vec![0.0; ng * ng];
    for (i, row) in groups.members.iter().enumerate() {
        for &(g, gv) in row {
            let u = gv / colsum[g as usize];
            let base = g as usize * ng;
            for &(h, wv) in &w[i] {
                uw[base + h as usize] += u * wv;
            }
        }
    }
    // k (donors × ng, dense rows computed on demand per donor in parallel)
    let k: Vec<Vec<f64>> = w
        .par_iter()
        .zip(groups.members.par_iter())
        .map(|(wrow, grow)| {
            if wrow.is_empty() {
                return Vec::new();
            }
            let mut kr = vec![0.0; ng];
            for &(h, wv) in wrow {
                let src = &uw[h as usize * ng..(h as usize + 1) * ng];
                for (a, b) in kr.iter_mut().zip(src) {
                    *a += wv * b;
                }
            }
            for &(g, _) in grow {
                kr[g as usize] = 1.0;
            }
            for v in kr.iter_mut() {
                *v = v.min(1.0);
            }
            kr
        })
        .collect();

    d.by_project
        .par_iter()
        .map_init(
            || vec![u32::MAX; ng],
            |local, gifts| {
                // H_p: groups of p's donors
                let mut hp: Vec<u32> = Vec::new();
                for &(i, _) in gifts {
                    for &(g, _) in &w[i as usize] {
                        if local[g as usize] == u32::MAX {
                            local[g as usize] = 0;
                            hp.push(g);
                        }
                    }
                }
                hp.sort_unstable();
                for (li, &g) in hp.iter().enumerate() {
                    local[g as usize] = li as u32;
                }
                let nh = hp.len();
                let mut pm = vec![0.0; nh * nh]; // pm[h*nh + g] = P'_gh
                let mut a = vec![0.0; nh];
                for &(i, c) in gifts {
                    let wi = &w[i as usize];
                    if wi.is_empty() {
                        continue;
                    }
                    let ki = &k[i as usize];
                    let sc = c.sqrt();
                    for (ag, &g) in a.iter_mut().zip(&hp) {
                        let kk = ki[g as usize];
                        *ag = match style {
                            CocmStyle::Harsh => (1.0 - kk) * c,
                            CocmStyle::Soft => kk * sc + (1.0 - kk) * c,
                        };
                    }
                    for &(h, wv) in wi {
                        let col = &mut pm[local[h as usize] as usize * nh..][..nh];
                        for (x, ag) in col.iter_mut().zip(&a) {
                            *x += ag * wv;
                        }
                    }
                }
                let mut score = 0.0;
                for h in 0..nh {
                    for g in 0..h {
                        let prod = pm[h * nh + g] * pm[g * nh + h];
                        if prod > 0.0 {
                            score += 2.0 * prod.sqrt();
                        }
                    }
                }
                for &g in &hp {
                    local[g as usize] = u32::MAX;
                }
                score
            },
        )
        .collect()
}

/// Normalises scores to shares summing to 1 (all zero stays all zero).
pub fn shares(scores: &[f64]) -> Vec<f64> {
    let s: f64 = scores.iter().sum();
    if s > 0.0 {
        scores.iter().map(|x| x / s).collect()
    } else {
        vec![0.0; scores.len()]
    }
}

/// The blend Gitcoin's calculator offers: each mechanism's scores are normalised to shares, then mixed
/// `pct·COCM + (1 − pct)·QF`.
pub fn blend_shares(cocm: &[f64], qf: &[f64], pct_cocm: f64) -> Vec<f64> {
    let a = shares(cocm);
    let b = shares(qf);
    a.iter().zip(&b).map(|(x, y)| pct_cocm * x + (1.0 - pct_cocm) * y).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::donations::Contribution;

    pub(crate) fn gifts(projects: &[(&str, &[f64])]) -> Vec<Contribution> {
        let mut out = Vec::new();
        for (p, amounts) in projects {
            for (i, a) in amounts.iter().enumerate() {
                out.push(Contribution { donor: format!("{p}-d{i}"), project: p.to_string(), amount: *a });
            }
        }
        out
    }

    #[test]
    fn pluralistic_vectors_give_34_54_162() {
        let d = Donations::from_contributions(&gifts(&[
            ("p1", &[1.0, 4.0, 1.0, 9.0]),
            ("p2", &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 4.0]),
            ("p3", &[1.0, 9.0, 1.0, 9.0, 1.0, 9.0, 4.0]),
        ]));
        assert_eq!(classic_qf_scores(&d), vec![34.0, 54.0, 162.0]);
    }

    #[test]
    fn single_donor_project_gets_no_match() {
        let mut g = gifts(&[("solo", &[100.0]), ("pair", &[1.0, 1.0])]);
        g.push(Contribution { donor: "solo-d0".into(), project: "solo".into(), amount: 50.0 });
        let d = Donations::from_contributions(&g);
        assert_eq!(classic_qf_scores(&d), vec![2.0, 0.0]);
        assert_eq!(cocm_scores(&d, &Groups::projects(&d), CocmStyle::Harsh), vec![0.0, 0.0]);
        assert_eq!(pairwise_qf_scores(&d, 10.0, None), vec![1.0 * 10.0 / 11.0, 0.0]);
    }

    /// Literal dense transcription of the COCM formula, for small cases.
    fn cocm_dense(d: &Donations, groups: &Groups, style: CocmStyle) -> Vec<f64> {
        let (nd, ng) = (d.donors.len(), groups.names.len());
        let mut gm = vec![vec![0.0; ng]; nd];
        for (i, row) in groups.members.iter().enumerate() {
            for &(g, v) in row {
                gm[i][g as usize] = v;
            }
        }
        let wm: Vec<Vec<f64>> = gm
            .iter()
            .map(|r| {
                let s: f64 = r.iter().sum();
                r.iter().map(|v| if s > 0.0 { v / s } else { 0.0 }).collect()
            })
            .collect();
        let um: Vec<Vec<f64>> = (0..ng)
            .map(|g| {
                let s: f64 = (0..nd).map(|i| gm[i][g]).sum();
                (0..nd).map(|i| gm[i][g] / s).collect()
            })
            .collect();
        let uw: Vec<Vec<f64>> =
            (0..ng).map(|g| (0..ng).map(|h| (0..nd).map(|i| um[g][i] * wm[i][h]).sum()).collect()).collect();
        let k: Vec<Vec<f64>> = (0..nd)
            .map(|i| {
                (0..ng).map(|g| if gm[i][g] > 0.0 { 1.0 } else { (0..ng).map(|h| wm[i][h] * uw[h][g]).sum() }).collect()
            })
            .collect();
        d.by_project
            .iter()
            .map(|gifts| {
                let mut c = vec![0.0; nd];
                for &(i, v) in gifts {
                    c[i as usize] = v;
                }
                let kk = |i: usize, g: usize| match style {
                    CocmStyle::Harsh => (1.0 - k[i][g]) * c[i],
                    CocmStyle::Soft => k[i][g] * c[i].sqrt() + (1.0 - k[i][g]) * c[i],
                };
                let pp = |g: usize, h: usize| -> f64 { (0..nd).map(|i| kk(i, g) * wm[i][h]).sum() };
                let mut s = 0.0;
                for g in 0..ng {
                    for h in 0..ng {
                        if g != h {
                            s += (pp(g, h) * pp(h, g)).max(0.0).sqrt();
                        }
                    }
                }
                s
            })
            .collect()
    }

    fn lcg_round(seed: u64, donors: usize, projects: usize, gifts: usize) -> Vec<Contribution> {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as usize
        };
        (0..gifts)
            .map(|_| Contribution {
                donor: format!("d{}", next() % donors),
                project: format!("p{}", next() % projects),
                amount: 1.0 + (next() % 100) as f64,
            })
            .collect()
    }

    #[test]
    fn cocm_fast_path_equals_dense_formula() {
        for seed in 0..12 {
            let d = Donations::from_contributions(&lcg_round(seed, 15, 6, 40));
            for style in [CocmStyle::Harsh, CocmStyle::Soft] {
                for groups in [Groups::projects(&d), Groups::donation_profiles(&d)] {
                    let fast = cocm_scores(&d, &groups, style);
                    let slow = cocm_dense(&d, &groups, style);
                    for (a, b) in fast.iter().zip(&slow) {
                        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "seed {seed}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn cocm_same_seven_donors_soft_vector() {
        // Seven donors each giving to all three projects (the pluralistic amounts by position):
        // harsh gives nothing (everyone is connected to every group), soft keeps √c for connected gifts.
        let amounts: [&[f64]; 3] =
            [&[1.0, 4.0, 1.0, 9.0], &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 4.0], &[1.0, 9.0, 1.0, 9.0, 1.0, 9.0, 4.0]];
        let mut g = Vec::new();
        for (p, am) in amounts.iter().enumerate() {
            for (i, a) in am.iter().enumerate() {
                g.push(Contribution { donor: format!("d{i}"), project: format!("p{}", p + 1), amount: *a });
            }
        }
        let d = Donations::from_contributions(&g);
        let harsh = cocm_scores(&d, &Groups::projects(&d), CocmStyle::Harsh);
        assert!(harsh.iter().all(|&x| x == 0.0));
        let soft = cocm_scores(&d, &Groups::projects(&d), CocmStyle::Soft);
        let expect = [12.811, 15.945, 29.143];
        for (a, b) in soft.iter().zip(expect) {
            assert!((a - b).abs() < 5e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn cluster_match_pools_a_cluster() {
        // two donors in one profile cluster behave as one donor: no subsidy between them
        let g = vec![
            Contribution { donor: "a".into(), project: "p".into(), amount: 4.0 },
            Contribution { donor: "b".into(), project: "p".into(), amount: 4.0 },
        ];
        let d = Donations::from_contributions(&g);
        assert_eq!(cluster_match_scores(&d, &Groups::donation_profiles(&d)), vec![0.0]);
        // with groups = projects-as-given (one group per donor) it is classic QF
        let rows = vec![("a".to_string(), "ga".to_string(), 1.0), ("b".to_string(), "gb".to_string(), 1.0)];
        assert_eq!(cluster_match_scores(&d, &Groups::from_assignments(&d, &rows)), classic_qf_scores(&d));
    }
}
