//! Contributions and the donor × project matrix every QF-family mechanism reads.

use allonet_core::{Address, InputError, Table};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One gift from a donor to a project, in whole units of the round's token (a decimal, e.g. 2.5 DAI).
///
/// Gifts are scores' raw material, not money that moves: what moves is the matching pool, apportioned in
/// integers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Donor id: an address (checked, then checksummed) or an opaque label.
    pub donor: String,
    /// Project id.
    pub project: String,
    /// Amount given; finite and non-negative.
    pub amount: f64,
}

/// Column names for reading contributions from a CSV.
#[derive(Clone, Debug, Default)]
pub struct ContributionColumns {
    /// Donor column (default: first of `donor`, `contributor`, `voter`, `address`, `from`).
    pub donor: Option<String>,
    /// Project column (default: first of `project`, `grant`, `recipient`, `project_id`, `to`).
    pub project: Option<String>,
    /// Amount column (default: first of `amount`, `amountUSD`, `value`).
    pub amount: Option<String>,
    /// Skip rows with a negative amount (refunds in some exports) instead of refusing the file.
    pub skip_negative: bool,
}

/// What reading a contributions table kept and skipped.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReadStats {
    /// Rows in the file.
    pub rows: usize,
    /// Rows kept.
    pub kept: usize,
    /// Rows skipped because a `success` column said `False` (failed transactions).
    pub skipped_failed: usize,
    /// Rows skipped for a zero amount.
    pub skipped_zero: usize,
    /// Rows skipped for a negative amount (only with `skip_negative`).
    pub skipped_negative: usize,
}

fn pick(t: &Table, given: &Option<String>, defaults: &[&str], what: &str) -> Result<usize, InputError> {
    match given {
        Some(name) => t.column(name),
        None => t.require_one_of(defaults, what),
    }
}

/// Normalises an id: addresses are validated and checksummed, other labels are kept as given.
pub fn normalise_id(t: &Table, row: allonet_core::input::Row<'_>, col: usize) -> Result<String, InputError> {
    let s = row.get(col);
    if s.is_empty() {
        return Err(t.error(row, col, "empty; expected an id or address"));
    }
    if Address::looks_like(s) {
        return Address::parse(s).map(|a| a.to_checksum()).map_err(|e| t.error(row, col, e.to_string()));
    }
    Ok(s.to_string())
}

/// Reads contributions from a table. A `success` column, when present, keeps only `True` rows; zero
/// amounts are skipped; a negative (unless `skip_negative`) or non-numeric amount, an empty id or a malformed address is an error.
pub fn contributions_from_table(
    t: &Table,
    cols: &ContributionColumns,
) -> Result<(Vec<Contribution>, ReadStats), InputError> {
    let dc = pick(t, &cols.donor, &["donor", "contributor", "voter", "address", "from"], "donor")?;
    let pc = pick(t, &cols.project, &["project", "grant", "recipient", "project_id", "to"], "project")?;
    let ac = pick(t, &cols.amount, &["amount", "amountUSD", "value"], "amount")?;
    let success = t.find_column(&["success"]);
    let mut stats = ReadStats { rows: t.len(), ..Default::default() };
    let mut out = Vec::with_capacity(t.len());
    for row in t.rows() {
        if let Some(sc) = success {
            match row.get(sc).to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => {}
                "false" | "0" | "no" => {
                    stats.skipped_failed += 1;
                    continue;
                }
                other => return Err(t.error(row, sc, format!("`{other}` is not True or False"))),
            }
        }
        let amount = t.parse_f64(row, ac)?;
        if amount < 0.0 {
            if cols.skip_negative {
                stats.skipped_negative += 1;
                continue;
            }
            return Err(t.error(
                row,
                ac,
                format!(
                    "`{}` is negative; amounts must be zero or more (pass --skip-negative to drop refund rows)",
                    row.get(ac)
                ),
            ));
        }
        let donor = normalise_id(t, row, dc)?;
        let project = normalise_id(t, row, pc)?;
        if amount == 0.0 {
            stats.skipped_zero += 1;
            continue;
        }
        out.push(Contribution { donor, project, amount });
    }
    stats.kept = out.len();
    Ok((out, stats))
}

/// The donor × project matrix of summed gifts, sparse both ways, with donors and projects sorted by id.
///
/// Gifts from one donor to one project are summed in a canonical order (sorted by amount), so the matrix
/// and everything computed from it do not depend on input row order.
#[derive(Clone, Debug)]
pub struct Donations {
    /// Donor ids, sorted.
    pub donors: Vec<String>,
    /// Project ids, sorted.
    pub projects: Vec<String>,
    /// For each project: (donor index, summed amount), sorted by donor.
    pub by_project: Vec<Vec<(u32, f64)>>,
    /// For each donor: (project index, summed amount), sorted by project.
    pub by_donor: Vec<Vec<(u32, f64)>>,
}

impl Donations {
    /// Builds the matrix from gifts; zero amounts are dropped.
    pub fn from_contributions(gifts: &[Contribution]) -> Donations {
        let mut donor_ix: BTreeMap<&str, u32> = BTreeMap::new();
        let mut project_ix: BTreeMap<&str, u32> = BTreeMap::new();
        for g in gifts.iter().filter(|g| g.amount > 0.0) {
            donor_ix.insert(&g.donor, 0);
            project_ix.insert(&g.project, 0);
        }
        for (i, v) in donor_ix.values_mut().enumerate() {
            *v = i as u32;
        }
        for (i, v) in project_ix.values_mut().enumerate() {
            *v = i as u32;
        }
        let mut cells: Vec<(u32, u32, f64)> = gifts
            .iter()
            .filter(|g| g.amount > 0.0)
            .map(|g| (project_ix[g.project.as_str()], donor_ix[g.donor.as_str()], g.amount))
            .collect();
        cells.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.total_cmp(&b.2)));
        let mut by_project = vec![Vec::new(); project_ix.len()];
        let mut by_donor = vec![Vec::new(); donor_ix.len()];
        let mut k = 0;
        while k < cells.len() {
            let (p, d, _) = cells[k];
            let mut sum = 0.0;
            while k < cells.len() && cells[k].0 == p && cells[k].1 == d {
                sum += cells[k].2;
                k += 1;
            }
            by_project[p as usize].push((d, sum));
            by_donor[d as usize].push((p, sum));
        }
        Donations {
            donors: donor_ix.keys().map(|s| s.to_string()).collect(),
            projects: project_ix.keys().map(|s| s.to_string()).collect(),
            by_project,
            by_donor,
        }
    }

    /// Total given to each project.
    pub fn project_totals(&self) -> Vec<f64> {
        self.by_project.iter().map(|v| v.iter().map(|x| x.1).sum()).collect()
    }

    /// Number of gifts (non-zero donor-project cells).
    pub fn cells(&self) -> usize {
        self.by_project.iter().map(|v| v.len()).sum()
    }
}
