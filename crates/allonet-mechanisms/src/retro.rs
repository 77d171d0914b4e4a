//! Retro funding: Optimism's RetroPGF 3 median ballots, Retro Funding 4 metric ballots, and the capped
//! proportional allocator.

use crate::matching::{allocate, Allocation};
use crate::MechanismError;
use allonet_core::{apportion_capped, water_fill, InputError, Table, Token, TokenAmount};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Median of a slice (mean of the two middle values for an even count). Empty → 0.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Parameters of RetroPGF 3 style median aggregation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct R3Params {
    /// Ballots a project needs to be eligible (RetroPGF 3: 17).
    pub quorum: usize,
    /// Smallest median (whole tokens) that stays eligible (RetroPGF 3: 1,500 OP).
    pub min_median: f64,
}

/// A project's line in an R3 outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct R3Line {
    /// Project id.
    pub project: String,
    /// Ballots that included it.
    pub ballots: usize,
    /// Median of those ballots' amounts.
    pub median: f64,
    /// Whether it met quorum and minimum.
    pub eligible: bool,
}

/// RetroPGF 3: for each project, the median of the amounts on the ballots that include it; projects below
/// the quorum of ballots or the minimum median get nothing; the eligible medians are scaled to the budget.
///
/// Source: Optimism, "RetroPGF Round 3: results calculation" (Optimism governance forum and
/// ethereum-optimism/op-analytics, 2024): median with quorum 17 and minimum 1,500 OP, scaled to 30M OP.
pub fn r3_median(
    votes: &[(String, String, f64)],
    params: &R3Params,
    token: &Token,
    budget: TokenAmount,
) -> Result<(Vec<R3Line>, Allocation), MechanismError> {
    let mut per: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (voter, project, amount) in votes {
        if !(amount.is_finite() && *amount >= 0.0) {
            return Err(MechanismError::Invalid(format!(
                "{voter} gives {project} {amount}; amounts must be non-negative"
            )));
        }
        if !seen.insert((voter.as_str(), project.as_str())) {
            return Err(MechanismError::Invalid(format!("{voter} votes for {project} more than once")));
        }
        per.entry(project).or_default().push(*amount);
    }
    let mut lines = Vec::new();
    for (project, mut amounts) in per {
        let ballots = amounts.len();
        let m = median(&mut amounts);
        let eligible = ballots >= params.quorum && m >= params.min_median;
        lines.push(R3Line { project: project.to_string(), ballots, median: m, eligible });
    }
    let ids: Vec<String> = lines.iter().map(|l| l.project.clone()).collect();
    let scores: Vec<f64> = lines.iter().map(|l| if l.eligible { l.median } else { 0.0 }).collect();
    let alloc = allocate(&ids, &scores, token, budget, budget, None)?;
    Ok((lines, alloc))
}

/// One RF4 ballot: a badgeholder's weight per impact metric (percent), and the open-source settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricBallot {
    /// Badgeholder address.
    pub voter: String,
    /// Metric → weight in percent (summing to about 100).
    pub weights: BTreeMap<String, f64>,
    /// Only open-source projects count.
    pub os_only: bool,
    /// Open-source projects' metric values are multiplied by this (≥ 1).
    pub os_multiplier: f64,
}

/// A project's impact metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectMetrics {
    /// Application id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Open source?
    pub is_oss: bool,
    /// Metric → value (non-negative).
    pub metrics: BTreeMap<String, f64>,
}

/// Parameters of RF4 scoring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct R4Params {
    /// Largest share of the budget any project (and any project on one ballot) may take (RF4: 0.05).
    pub cap_share: f64,
    /// Smallest award in whole tokens; projects below it are dropped (RF4: 1,000 OP).
    pub min_amount: f64,
}

impl Default for R4Params {
    fn default() -> Self {
        R4Params { cap_share: 0.05, min_amount: 1000.0 }
    }
}

/// A project's line in an RF4 outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct R4Line {
    /// Application id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Median over ballots of the per-ballot capped amount (whole tokens).
    pub median: f64,
    /// After the second cap-and-normalise (whole tokens).
    pub scaled: f64,
    /// Above the minimum?
    pub kept: bool,
}

/// Retro Funding 4 metric-ballot scoring.
///
/// For each ballot: each metric's values (multiplied by the ballot's `os_multiplier` for open-source
/// projects, zeroed for others when `os_only`) become shares of that metric's total over all projects; a
/// project's ballot score is Σ weight/100 · share; the scores are capped-and-normalised to the budget
/// ([`water_fill`], cap = `cap_share`·budget). Then per project the median over all ballots (a project a
/// ballot gives nothing counts as 0), cap-and-normalise again, drop projects at or below `min_amount`,
/// and cap-and-normalise the survivors' amounts to the budget, done here in exact integers.
///
/// Source: Optimism Retro Funding 4 scoring as reproduced by GovXS, "Evaluating Voting Design Tradeoffs
/// for Retro Funding", `voting-rules-comparison-r4-data/rpgf4_voting_calculator.ipynb`, with cap 5% and
/// minimum 1,000 OP; reproduces the official `Retro_Funding_4_results.csv` to within 0.05 OP.
pub fn r4_metric_ballots(
    projects: &[ProjectMetrics],
    ballots: &[MetricBallot],
    params: &R4Params,
    token: &Token,
    budget: TokenAmount,
) -> Result<(Vec<R4Line>, Allocation), MechanismError> {
    if projects.is_empty() || ballots.is_empty() {
        return Err(MechanismError::Invalid("RF4 scoring needs at least one project and one ballot".into()));
    }
    if !(params.cap_share > 0.0 && params.cap_share <= 1.0) {
        return Err(MechanismError::Invalid(format!("cap share {} must be within (0, 1]", params.cap_share)));
    }
    let b = budget.to_f64_lossy() / 10f64.powi(token.decimals as i32);
    let cap = params.cap_share * b;
    let n = projects.len();
    let mut per_ballot: Vec<Vec<f64>> = Vec::with_capacity(ballots.len());
    for ballot in ballots {
        if !(ballot.os_multiplier.is_finite() && ballot.os_multiplier > 0.0) {
            return Err(MechanismError::Invalid(format!(
                "ballot {}: os_multiplier {} must be positive",
                ballot.voter, ballot.os_multiplier
            )));
        }
        let mut score = vec![0.0; n];
        for (metric, &w) in &ballot.weights {
            if !(w.is_finite() && w >= 0.0) {
                return Err(MechanismError::Invalid(format!(
                    "ballot {}: weight {w} for {metric} must be non-negative",
                    ballot.voter
                )));
            }
            if w == 0.0 {
                continue;
            }
            let mut vals = Vec::with_capacity(n);
            for p in projects {
                let v = *p.metrics.get(metric).ok_or_else(|| {
                    MechanismError::Invalid(format!(
                        "ballot {} weighs metric `{metric}`, which the metrics file lacks",
                        ballot.voter
                    ))
                })?;
                let v = if p.is_oss {
                    v * ballot.os_multiplier
                } else if ballot.os_only {
                    0.0
                } else {
                    v
                };
                vals.push(v);
            }
            let total: f64 = vals.iter().sum();
            if total > 0.0 {
                for (s, v) in score.iter_mut().zip(&vals) {
                    *s += w / 100.0 * v / total;
                }
            }
        }
        per_ballot.push(water_fill(b, &score, cap));
    }
    let medians: Vec<f64> = (0..n)
        .map(|p| {
            let mut v: Vec<f64> = per_ballot.iter().map(|s| s[p]).collect();
            median(&mut v)
        })
        .collect();
    let scaled = water_fill(b, &medians, cap);
    let kept: Vec<bool> = scaled.iter().map(|&a| a > params.min_amount).collect();
    let final_scores: Vec<f64> = scaled.iter().zip(&kept).map(|(&a, &k)| if k { a } else { 0.0 }).collect();
    let ids: Vec<String> = projects.iter().map(|p| p.id.clone()).collect();
    let cap_units = TokenAmount(
        budget.units() * alloy_primitives::U256::from((params.cap_share * 1e9).round() as u64)
            / alloy_primitives::U256::from(1_000_000_000u64),
    );
    let alloc = allocate(&ids, &final_scores, token, budget, budget, Some(cap_units))?;
    let lines = projects
        .iter()
        .enumerate()
        .map(|(i, p)| R4Line {
            id: p.id.clone(),
            name: p.name.clone(),
            median: medians[i],
            scaled: scaled[i],
            kept: kept[i],
        })
        .collect();
    Ok((lines, alloc))
}

/// Reads RF4 ballots from the Agora export: a voter column (`Address`) and a `Payload` column holding
/// `{"allocations": [{metric: percent}], "os_only": bool, "os_multiplier": number}`.
pub fn metric_ballots_from_table(t: &Table) -> Result<Vec<MetricBallot>, InputError> {
    let vc = t.require_one_of(&["Address", "voter", "badgeholder_address"], "voter")?;
    let pc = t.column("Payload")?;
    #[derive(Deserialize)]
    struct Payload {
        allocations: Vec<BTreeMap<String, serde_json::Value>>,
        #[serde(default)]
        os_only: bool,
        #[serde(default = "one")]
        os_multiplier: f64,
    }
    fn one() -> f64 {
        1.0
    }
    let mut out = Vec::with_capacity(t.len());
    let mut seen = std::collections::BTreeSet::new();
    for row in t.rows() {
        let voter = row.get(vc).to_string();
        if voter.is_empty() {
            return Err(t.error(row, vc, "empty voter"));
        }
        if !seen.insert(voter.to_lowercase()) {
            return Err(t.error(row, vc, format!("{voter} has more than one ballot")));
        }
        let p: Payload =
            serde_json::from_str(row.get(pc)).map_err(|e| t.error(row, pc, format!("not a ballot payload: {e}")))?;
        let mut weights = BTreeMap::new();
        for a in p.allocations {
            for (metric, v) in a {
                let w = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| t.error(row, pc, format!("weight for `{metric}` is not a number")))?;
                *weights.entry(metric).or_insert(0.0) += w;
            }
        }
        out.push(MetricBallot { voter, weights, os_only: p.os_only, os_multiplier: p.os_multiplier });
    }
    Ok(out)
}

/// Reads RF4 impact metrics: `application_id`, `project_name`, `is_oss`, and every other column as a
/// numeric metric (empty cells count as 0, as in the reference notebook).
pub fn project_metrics_from_table(t: &Table) -> Result<Vec<ProjectMetrics>, InputError> {
    let ic = t.find_column(&["application_id", "project_id", "id"]).ok_or_else(|| {
        InputError::file(
            &t.file,
            format!("missing id column `application_id` (the header has: {})", t.headers.join(", ")),
        )
    })?;
    let nc = t.find_column(&["project_name", "name"]);
    let oc = t.find_column(&["is_oss"]);
    let metric_cols: Vec<usize> = (0..t.headers.len()).filter(|&c| c != ic && Some(c) != nc && Some(c) != oc).collect();
    let mut out = Vec::with_capacity(t.len());
    let mut seen = std::collections::BTreeSet::new();
    for row in t.rows() {
        let id = row.get(ic).to_string();
        if id.is_empty() || !seen.insert(id.clone()) {
            return Err(t.error(row, ic, format!("empty or duplicate project id `{id}`")));
        }
        let is_oss = match oc.map(|c| row.get(c).to_ascii_lowercase()) {
            None => false,
            Some(s) if s == "true" || s == "1" => true,
            Some(s) if s == "false" || s == "0" || s.is_empty() => false,
            Some(s) => return Err(t.error(row, oc.unwrap_or(0), format!("`{s}` is not true or false"))),
        };
        let mut metrics = BTreeMap::new();
        for &c in &metric_cols {
            let v = if row.get(c).is_empty() { 0.0 } else { t.parse_non_negative(row, c)? };
            metrics.insert(t.headers[c].clone(), v);
        }
        out.push(ProjectMetrics { id, name: nc.map(|c| row.get(c).to_string()).unwrap_or_default(), is_oss, metrics });
    }
    Ok(out)
}

/// The capped proportional allocator of Optimism's metrics-based rounds: scale scores to the budget with
/// no project above `max_share` of it, drop projects that would get less than `min_amount`, and repeat
/// until no project is dropped; the final split is exact in token units.
///
/// Source: ethereum-optimism/Retro-Funding `eval-algos` allocator (`allocator.py`: max share, minimum
/// amount, redistribution), Season 7 and 8.
pub fn capped_proportional(
    ids: &[String],
    scores: &[f64],
    token: &Token,
    budget: TokenAmount,
    max_share: f64,
    min_amount: TokenAmount,
) -> Result<Allocation, MechanismError> {
    if !(max_share > 0.0 && max_share <= 1.0) {
        return Err(MechanismError::Invalid(format!("max share {max_share} must be within (0, 1]")));
    }
    let cap = TokenAmount(
        budget.units() * alloy_primitives::U256::from((max_share * 1e9).round() as u64)
            / alloy_primitives::U256::from(1_000_000_000u64),
    );
    let mut active: Vec<f64> = scores.to_vec();
    loop {
        let (parts, _) = apportion_capped(budget, &active, Some(cap))?;
        let mut dropped = false;
        for (s, a) in active.iter_mut().zip(&parts) {
            if *s > 0.0 && *a < min_amount {
                *s = 0.0;
                dropped = true;
            }
        }
        if !dropped || active.iter().all(|&s| s == 0.0) {
            break;
        }
    }
    allocate(ids, &active, token, budget, budget, Some(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(voter: &str, project: &str, a: f64) -> (String, String, f64) {
        (voter.into(), project.into(), a)
    }

    #[test]
    fn r3_median_of_two_ballots_is_their_mean() {
        let op = Token::new("OP", 18);
        let votes = vec![v("a", "p", 2000.0), v("b", "p", 3000.0)];
        let (lines, alloc) =
            r3_median(&votes, &R3Params { quorum: 2, min_median: 1500.0 }, &op, op.parse("30000000").unwrap()).unwrap();
        assert_eq!(lines[0].median, 2500.0);
        assert_eq!(alloc.payouts[0].amount, op.parse("30000000").unwrap());
    }

    #[test]
    fn r3_quorum_and_minimum_drop_projects() {
        let op = Token::new("OP", 18);
        let votes = vec![
            v("a", "p", 2000.0),
            v("b", "p", 3000.0),
            v("c", "p", 1000.0),
            v("a", "q", 9000.0),
            v("b", "q", 9000.0), // quorum 3 not met
            v("a", "r", 100.0),
            v("b", "r", 200.0),
            v("c", "r", 300.0), // median 200 < 1500
            v("a", "s", 6000.0),
            v("b", "s", 6000.0),
            v("c", "s", 6000.0),
        ];
        let (lines, alloc) =
            r3_median(&votes, &R3Params { quorum: 3, min_median: 1500.0 }, &op, op.parse("8000").unwrap()).unwrap();
        let elig: Vec<bool> = lines.iter().map(|l| l.eligible).collect();
        assert_eq!(elig, vec![true, false, false, true]);
        let amounts: Vec<String> = alloc.payouts.iter().map(|p| op.format(p.amount)).collect();
        assert_eq!(amounts, ["2000", "0", "0", "6000"]);
        assert!(r3_median(
            &[v("a", "p", 1.0), v("a", "p", 2.0)],
            &R3Params { quorum: 1, min_median: 0.0 },
            &op,
            op.parse("1").unwrap()
        )
        .is_err());
    }

    #[test]
    fn capped_proportional_drops_small_and_caps_large() {
        let t = Token::new("OP", 0);
        let ids: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let a = capped_proportional(
            &ids,
            &[100.0, 10.0, 10.0, 0.5],
            &t,
            TokenAmount::from_base_units(1000),
            0.5,
            TokenAmount::from_base_units(20),
        )
        .unwrap();
        let got: Vec<u128> = a.payouts.iter().map(|p| p.amount.units().to::<u128>()).collect();
        // round 1: a capped at 500, d would get 12 < 20 and is dropped; round 2 splits the rest evenly
        assert_eq!(got, vec![500, 250, 250, 0]);
        assert_eq!(a.distributed, TokenAmount::from_base_units(1000));
    }
}
