//! Governance for people: on-chain proposals, votes and steps, the off-chain governor's status, decisions.

use allonet_chain::governor::{Action, ProposalStatus};
use allonet_core::{Token, TokenAmount};
use allonet_engine::govern::{Decision, GovTx};
use allonet_governance::governor::{Governor, ProposalState};
use alloy_primitives::{Address, U256};

use crate::{group_thousands, right, short, table, truncate};

/// Voting power (ALLO base units, 18 decimals) in whole ALLO.
pub fn allo(v: &str) -> String {
    let units = v.parse::<U256>().unwrap_or_default();
    group_thousands(&Token::new("ALLO", 18).format(TokenAmount(units)))
}

/// An action for people, amounts in whole tokens of the allocator's asset.
pub fn action(a: &Action, token: &Token) -> String {
    let amt = |u: &U256| format!("{} {}", group_thousands(&token.format(TokenAmount(*u))), token.symbol);
    match a {
        Action::ApprovePlan { root, total, batches } => {
            format!("approve plan {}: {} in {batches} batches", short(&root.to_string()), amt(total))
        }
        Action::SetCaps { epoch_cap, recipient_cap } => {
            format!("agent caps: {} per epoch, {} per recipient", amt(epoch_cap), amt(recipient_cap))
        }
        other => other.describe(),
    }
}

/// A new on-chain proposal: who, gas, its actions with their calldata, and when voting runs.
pub fn proposal(tx: &GovTx, proposer: Address, chain_id: u64, actions: &[Action], token: &Token) -> String {
    let (id, s) = (tx.proposal, &tx.status);
    let mut t = table(&["#", "action on the allocator", "calldata"]);
    for (i, x) in actions.iter().enumerate() {
        t.add_row(vec![i.to_string(), action(x, token), short(&x.calldata().to_string())]);
    }
    format!(
        "proposal {id}\n  by {proposer} on chain {chain_id} · gas {} · {}\n{t}\n  voting opens after block {} and closes at block {}; then `allonet gov queue --onchain --proposal {id}`",
        tx.gas_used, s.state, s.snapshot, s.deadline
    )
}

/// A vote cast (directly, or by a relayed signature) and the tally after it.
pub fn vote(tx: &GovTx, voter: Address, relayer: Option<Address>) -> String {
    let s = &tx.status;
    format!(
        "vote by {voter}{} · gas {} · for {} · against {} · abstain {} ALLO · {}",
        relayer.map(|r| format!(" (EIP-712 signature relayed by {r})")).unwrap_or_default(),
        tx.gas_used,
        allo(&s.votes_for),
        allo(&s.votes_against),
        allo(&s.votes_abstain),
        s.state
    )
}

/// A queue, execute or cancel step.
pub fn step(what: &str, tx: &GovTx) -> String {
    let s = &tx.status;
    let eta = if s.eta > 0 && s.state == "Queued" { format!(" (executable from {})", s.eta) } else { String::new() };
    format!("{what}: proposal {} · gas {} · now {}{eta}", tx.proposal, tx.gas_used, s.state)
}

/// Every proposal of a governor with its state, votes and quorum.
pub fn onchain_status(rows: &[(String, ProposalStatus)], governor: Address, chain_id: u64, block: u64) -> String {
    let mut t = table(&["proposal", "description", "state", "for (ALLO)", "against", "abstain", "quorum"]);
    for (desc, s) in rows {
        t.add_row(vec![
            short(&s.id),
            truncate(desc, 40),
            s.state.to_string(),
            allo(&s.votes_for),
            allo(&s.votes_against),
            allo(&s.votes_abstain),
            s.quorum.as_deref().map(allo).unwrap_or_else(|| "-".into()),
        ]);
    }
    right(&mut t, &[3, 4, 5, 6]);
    format!("{} proposals on governor {governor} (chain {chain_id}, block {block})\n{t}", rows.len())
}

/// The off-chain governor's proposals with live tallies, and what it has enacted.
pub fn offchain_status(g: &Governor, now: u64) -> String {
    let mut t = table(&["proposal", "description", "state", "for", "against", "abstain", "quorum reached"]);
    for p in g.proposals.values() {
        let st = g.state(p.id, now).map(|s| format!("{s:?}")).unwrap_or_default();
        let id = p.id.to_string();
        t.add_row(vec![
            format!("{}…{}", &id[..10], &id[id.len() - 4..]),
            truncate(&p.description, 40),
            st,
            p.for_votes.to_string(),
            p.against.to_string(),
            p.abstain.to_string(),
            if g.quorum_reached(p) { "yes".into() } else { "no".into() },
        ]);
    }
    right(&mut t, &[3, 4, 5]);
    let r = &g.registry;
    let caps = r.agent_caps.as_ref().map(|(e, p)| format!("{e} per epoch, {p} per recipient"));
    let header = format!(
        "{}DAO {} (chain {}, operator {})\n",
        if g.rehearsal { "REHEARSAL (caller-chosen clock; no payout takes decisions from it) · " } else { "" },
        g.dao,
        g.chain_id,
        g.operator
    );
    format!(
        "{header}{t}\nenacted: {} payout plan(s) approved · active model {} · agent caps {} · {}",
        r.approved_plans.len(),
        r.active_model().map(|m| m.to_string()).unwrap_or_else(|| "none".into()),
        caps.unwrap_or_else(|| "unset".into()),
        if r.paused { "PAUSED" } else { "running" }
    )
}

/// The off-chain governor's status as JSON.
pub fn offchain_status_json(g: &Governor, now: u64, events: u64) -> serde_json::Value {
    let list: Vec<serde_json::Value> = g
        .proposals
        .values()
        .map(|p| {
            let state = format!("{:?}", g.state(p.id, now).unwrap_or(ProposalState::Pending));
            let options: Vec<_> = p
                .options
                .iter()
                .zip(&p.option_votes)
                .map(|(o, v)| serde_json::json!({"label": o.label, "votes": v.to_string(), "actions": o.actions}))
                .collect();
            serde_json::json!({"id": p.id.to_string(), "description": p.description, "state": state,
                "for": p.for_votes.to_string(), "against": p.against.to_string(), "abstain": p.abstain.to_string(),
                "options": options, "winner": p.winner(),
                "quorum_percent": p.quorum_percent, "quorum": g.quorum(p).to_string(),
                "timelock_delay": p.timelock_delay, "grace_period": p.grace_period,
                "voters": p.voters.len(), "quorum_reached": g.quorum_reached(p)})
        })
        .collect();
    serde_json::json!({"dao": g.dao, "chain_id": g.chain_id, "operator": g.operator.to_checksum(None), "rehearsal": g.rehearsal,
        "proposals": list, "registry": g.registry, "events": events})
}

/// A decision record written.
pub fn decision(d: &Decision, out: &std::path::Path) -> String {
    format!(
        "decision {} : proposal {} approved plan {} (for {} · against {} · abstain {}), audit head #{} {} -> {}",
        d.digest,
        d.proposal,
        d.plan_digest,
        d.votes_for,
        d.votes_against,
        d.votes_abstain,
        d.audit_seq,
        d.audit_hash,
        out.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_show_in_whole_allo_and_caps_in_whole_tokens() {
        assert_eq!(allo("750000000000000000000000"), "750,000");
        let usdc = Token::new("USDC", 6);
        let caps =
            Action::SetCaps { epoch_cap: U256::from(10_000_000_000u64), recipient_cap: U256::from(2_500_000_000u64) };
        assert_eq!(action(&caps, &usdc), "agent caps: 10,000 USDC per epoch, 2,500 USDC per recipient");
    }
}
