//! Voting power: token balances with delegation and checkpoints (ERC20Votes semantics), an allowlist
//! (one person, one vote), quadratic power (√balance, or credits where n votes cost n²), each optionally
//! scaled by a sybil score.
//!
//! Source: OpenZeppelin Contracts `ERC20Votes` / `Votes` (checkpointed delegated balances; power at a past
//! timepoint is the last checkpoint at or before it); Lalley & Weyl 2018 for quadratic voting.

use allonet_mechanisms::sybil::SybilPolicy;
use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How voting power is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Delegated token balance at the snapshot.
    Token,
    /// One vote per allowlisted address (listed at or before the snapshot).
    OnePersonOneVote,
    /// ⌊√(delegated balance)⌋ at the snapshot.
    QuadraticSqrt,
    /// The delegated balance at the snapshot is a credit budget; casting n votes costs n².
    QuadraticCredits,
}

/// The power configuration of a DAO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerConfig {
    /// Strategy.
    pub strategy: Strategy,
    /// Optional sybil scaling: address → score, with thresholds.
    pub sybil: Option<(BTreeMap<Address, f64>, SybilPolicy)>,
}

/// Checkpointed history of one quantity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History(pub Vec<(u64, u128)>);

impl History {
    /// The value at the end of `t` (last checkpoint with time ≤ t), 0 before the first.
    pub fn at(&self, t: u64) -> u128 {
        match self.0.partition_point(|c| c.0 <= t) {
            0 => 0,
            i => self.0[i - 1].1,
        }
    }
    /// The latest value.
    pub fn latest(&self) -> u128 {
        self.0.last().map(|c| c.1).unwrap_or(0)
    }
    fn push(&mut self, t: u64, v: u128) {
        match self.0.last_mut() {
            Some(last) if last.0 == t => last.1 = v,
            _ => self.0.push((t, v)),
        }
    }
}

/// Balances, delegations and their checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Current balances.
    pub balances: BTreeMap<Address, u128>,
    /// Who each holder delegates to (unset: nobody, so the balance carries no votes, as ERC20Votes).
    pub delegates: BTreeMap<Address, Address>,
    /// Votes per delegate over time.
    pub votes: BTreeMap<Address, History>,
    /// Total supply over time.
    pub supply: History,
    /// Allowlisted addresses and when they were listed.
    pub allowlist: BTreeMap<Address, u64>,
}

/// Why a ledger operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LedgerError {
    /// Not enough balance.
    #[error("{from} holds {balance}, cannot transfer {amount}")]
    Insufficient {
        /// sender
        from: Address,
        /// balance
        balance: u128,
        /// amount asked
        amount: u128,
    },
}

impl Ledger {
    fn move_votes(&mut self, from: Option<Address>, to: Option<Address>, amount: u128, t: u64) {
        if amount == 0 || from == to {
            return;
        }
        if let Some(f) = from {
            let h = self.votes.entry(f).or_default();
            let v = h.latest() - amount;
            h.push(t, v);
        }
        if let Some(d) = to {
            let h = self.votes.entry(d).or_default();
            let v = h.latest() + amount;
            h.push(t, v);
        }
    }

    /// Mints to an address (initial distribution).
    pub fn mint(&mut self, to: Address, amount: u128, t: u64) {
        *self.balances.entry(to).or_insert(0) += amount;
        let s = self.supply.latest() + amount;
        self.supply.push(t, s);
        let d = self.delegates.get(&to).copied();
        self.move_votes(None, d, amount, t);
    }

    /// Transfers tokens; the delegates' votes follow.
    pub fn transfer(&mut self, from: Address, to: Address, amount: u128, t: u64) -> Result<(), LedgerError> {
        let balance = self.balances.get(&from).copied().unwrap_or(0);
        if balance < amount {
            return Err(LedgerError::Insufficient { from, balance, amount });
        }
        *self.balances.entry(from).or_insert(0) -= amount;
        *self.balances.entry(to).or_insert(0) += amount;
        let (df, dt) = (self.delegates.get(&from).copied(), self.delegates.get(&to).copied());
        self.move_votes(df, dt, amount, t);
        Ok(())
    }

    /// Delegates a holder's votes (to itself to vote directly).
    pub fn delegate(&mut self, holder: Address, to: Address, t: u64) {
        let old = self.delegates.insert(holder, to);
        let bal = self.balances.get(&holder).copied().unwrap_or(0);
        self.move_votes(old, Some(to), bal, t);
    }

    /// Delegated votes of `a` at the end of `t`.
    pub fn votes_at(&self, a: Address, t: u64) -> u128 {
        self.votes.get(&a).map(|h| h.at(t)).unwrap_or(0)
    }
}

/// Integer square root (⌊√n⌋).
pub fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = ((n as f64).sqrt() as u128).min(u64::MAX as u128);
    while x.checked_mul(x).is_none_or(|v| v > n) {
        x -= 1;
    }
    while (x + 1).checked_mul(x + 1).is_some_and(|v| v <= n) {
        x += 1;
    }
    x
}

impl PowerConfig {
    fn scale(&self, a: Address, p: u128) -> u128 {
        match &self.sybil {
            None => p,
            Some((scores, policy)) => {
                let w = policy.weight(scores.get(&a).copied().unwrap_or(0.0));
                // full weight is the power itself (p as f64 may round up); a partial weight never exceeds it,
                // so the sum over all voters stays within the supply
                if w >= 1.0 {
                    p
                } else if w > 0.0 {
                    ((p as f64 * w).floor() as u128).min(p)
                } else {
                    0
                }
            }
        }
    }

    /// Voting power of `a` at the snapshot (for credits: the maximum number of votes, ⌊√credits⌋).
    pub fn power(&self, l: &Ledger, a: Address, snapshot: u64) -> u128 {
        let raw = match self.strategy {
            Strategy::Token => l.votes_at(a, snapshot),
            Strategy::OnePersonOneVote => l.allowlist.get(&a).is_some_and(|&t| t <= snapshot) as u128,
            Strategy::QuadraticSqrt | Strategy::QuadraticCredits => isqrt(l.votes_at(a, snapshot)),
        };
        self.scale(a, raw)
    }

    /// Total power at the snapshot, the base of the quorum.
    pub fn total(&self, l: &Ledger, snapshot: u64) -> u128 {
        match self.strategy {
            Strategy::Token if self.sybil.is_none() => l.supply.at(snapshot),
            Strategy::OnePersonOneVote if self.sybil.is_none() => {
                l.allowlist.values().filter(|&&t| t <= snapshot).count() as u128
            }
            _ => {
                let mut who: BTreeSet<Address> = l.votes.keys().copied().collect();
                who.extend(l.allowlist.keys().copied());
                who.into_iter().fold(0u128, |s, a| s.saturating_add(self.power(l, a, snapshot)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> Address {
        Address::with_last_byte(i)
    }

    #[test]
    fn votes_follow_delegation_and_checkpoints() {
        let mut l = Ledger::default();
        l.mint(addr(1), 100, 1);
        assert_eq!(l.votes_at(addr(1), 1), 0, "undelegated balance carries no votes");
        l.delegate(addr(1), addr(1), 2);
        l.transfer(addr(1), addr(2), 30, 5).unwrap();
        assert_eq!(l.votes_at(addr(1), 4), 100);
        assert_eq!(l.votes_at(addr(1), 5), 70);
        l.delegate(addr(2), addr(1), 6);
        assert_eq!(l.votes_at(addr(1), 6), 100);
        assert!(l.transfer(addr(2), addr(3), 31, 7).is_err());
        assert_eq!(isqrt(99), 9);
        assert_eq!(isqrt(100), 10);
        assert_eq!(isqrt(u128::MAX), 18446744073709551615);
    }
}
