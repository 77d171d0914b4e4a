//! `allonet demo`: each step's results ([`allonet_engine::rehearsal`]) as the text the demo prints, one function
//! per step, every line ending in a newline.

use std::fmt::Write;

use allonet_core::{Token, TokenAmount};
use allonet_engine::rehearsal::{DemoFlow, DemoGovernance, DemoModel, DemoRetro, DemoTreasury, MoneyPath};
use allonet_engine::results::{ResultFile, TallyResult};
use allonet_mechanisms::round::RoundResult;

use crate::{group_thousands, right, show_amount, table, truncate};

/// What the demo will show.
pub fn intro() -> String {
    "allonet demo: a QF round three ways, Optimism's Retro Funding 4 from its real ballots, a quadratic vote, an explained AI recommendation,\n\
     funds flowing through a network, governance approving the payout by signed quadratic vote, a treasury check,\n\
     the money path on the embedded EVM: an on-chain vote approves the plan, and AIAllocator pays only what it approved,\n\
     and one epoch of the funding agent: the AI recommendation and the vote feed one plan across three DAOs' pools, paid on two chains.\n\n"
        .to_string()
}

/// Step 1: the round's matching under each variant (the first is the reference for the order and the totals),
/// largest first, then each variant's digests.
pub fn rounds(variants: &[(&str, RoundResult)]) -> String {
    let Some((_, r0)) = variants.first() else { return String::new() };
    let token = &r0.config.token;
    let mut s = format!(
        "1. Quadratic funding round (examples/round: {} gifts from {} donors to {} projects), pool {} {}, cap 25%\n",
        r0.gifts,
        r0.donors,
        r0.projects,
        show_amount(token, r0.config.pool, 0),
        token.symbol
    );
    let mut header = vec!["project", "donors", "given"];
    header.extend(variants.iter().map(|v| v.0));
    let mut t = table(&header);
    let mut order: Vec<_> = r0.lines.iter().collect();
    order.sort_by_key(|l| std::cmp::Reverse(l.matched));
    for l in order {
        let mut row = vec![l.project.clone(), l.donors.to_string(), group_thousands(&format!("{:.2}", l.contributed))];
        for (_, r) in variants {
            let m = r.lines.iter().find(|x| x.project == l.project).map(|x| show_amount(token, x.matched, 2));
            row.push(m.unwrap_or_else(|| "0".into()));
        }
        t.add_row(row);
    }
    right(&mut t, &(1..header.len()).collect::<Vec<_>>());
    let _ = writeln!(s, "{t}");
    for (name, r) in variants {
        let _ = writeln!(s, "   {name:<16} input {}  output {}", r.input_digest, r.output_digest);
    }
    s + "   Passport weighting zeroes the airdrop farm's 30 fresh addresses; COCM sees that the farm's donors and the ring\n\
         \x20  funding ring-a and ring-b only ever fund each other, and pays their coordination nothing.\n\n"
}

/// Step 2: the top ten of RF4 recomputed, beside the official amounts.
pub fn retro(d: &DemoRetro) -> String {
    let c = &d.comparison;
    format!(
        "2. Optimism Retro Funding 4 recomputed from 108 real badgeholder ballots and the impact metrics (10M OP, cap 5%, min 1,000 OP)\n\
         {}\n   every project within 1 OP of the official results: {} (max |diff| {:.3} OP, {}/{})\n\n",
        crate::results::retro_table(&d.result, &d.file, Some(10), Some(&d.official)),
        c.within_one == d.result.lines.len(),
        c.max_diff,
        c.within_one,
        d.result.lines.len()
    )
}

/// Step 3: each choice's quadratic score and share.
pub fn vote(r: &TallyResult, file: &ResultFile) -> String {
    let mut t = table(&["choice", "score", "share"]);
    let total: f64 = r.lines.iter().map(|l| l.score).sum();
    for l in &r.lines {
        t.add_row(vec![truncate(&l.choice, 30), format!("{:.4}", l.score), format!("{:.2}%", l.score / total * 100.0)]);
    }
    right(&mut t, &[1, 2]);
    format!(
        "3. Quadratic vote (Snapshot's example proposal, {} votes)\n{t}\n   input {}  output {}\n",
        r.voters, file.input_digest, file.output_digest
    )
}

/// Step 4: the forest's accuracy, then the recommendations with their reasons.
pub fn model(m: &DemoModel) -> String {
    let r = &m.report;
    format!(
        "\n4. AI recommendation: a random forest (100 trees, seed 42) trained on {} past proposals (impact_score, votes → amount)\n\
         \x20  held-out R² {:.3} (linear {:.3}, mean {:.3}) · OOB R² {:.3} · 10–90% interval covers {:.0}% of held-out rows\n\
         {}   model id {}\n",
        m.rows,
        r.held_out.forest.r2,
        r.held_out.linear.r2,
        r.held_out.mean.r2,
        r.oob_r2.unwrap_or(f64::NAN),
        r.interval_coverage.unwrap_or(f64::NAN) * 100.0,
        crate::model::recommendations(&m.recommendations, m.interval),
        m.model_id
    )
}

/// Step 5: what each project was paid and kept after re-granting, most kept first, then the totals.
pub fn flow(f: &DemoFlow) -> String {
    let amt = |x: u128| show_amount(&f.token, TokenAmount::from_base_units(x), 2);
    let mut t = table(&["project", "paid by the round", "after re-granting", "change"]);
    let mut lines: Vec<_> = f.lines.iter().collect();
    lines.sort_by_key(|l| std::cmp::Reverse(l.kept));
    for l in lines {
        let change = l.kept as i128 - l.paid as i128;
        let sign = if change >= 0 { "+" } else { "−" };
        t.add_row(vec![l.node.clone(), amt(l.paid), amt(l.kept), format!("{sign}{}", amt(change.unsigned_abs()))]);
    }
    right(&mut t, &[1, 2, 3]);
    format!(
        "\n6. The QF round's payouts flow on (examples/flow/regrants.toml): projects re-grant to what they build on,\n\
         \x20  ring-a and ring-b pass half to each other, and every re-granting node sends 2% upstream to protocol-guild\n\
         {t}\n   {} {} in, {} kept + {} in flight after {} hops: every base unit accounted for\n",
        amt(f.injected),
        f.token.symbol,
        amt(f.kept),
        amt(f.in_flight),
        f.hops
    )
}

/// Step 6: the off-chain vote approving the plan, the timelock, the audit chain.
pub fn governance(g: &DemoGovernance) -> String {
    format!(
        "\n7. Governance: the plan (output digest {}) is proposed, voted on quadratically by 32 of 40 members\n\
         \x20  with EIP-712 signed ballots, queued, and executed after the 2-day timelock\n\
         \x20  for {} · against {} · abstain {} (√-weighted) · state while voting: {:?}\n\
         \x20  after voting: {:?} → queued → execute a day early refused ({}) → {:?}\n\
         \x20  approved plans: {} · audit chain verified: {} entries (SQLite, WAL, hash-chained)\n",
        g.plan,
        g.for_votes,
        g.against,
        g.abstain,
        g.while_voting,
        g.after_voting,
        g.early_refusal,
        g.finally,
        g.approved_plans,
        g.audit_entries
    )
}

/// Step 7: the treasury after the payout: breaches and runway.
pub fn treasury(t: &DemoTreasury) -> String {
    let c = &t.check;
    let mut s = format!(
        "\n8. Treasury check after paying 10,000 USDC (examples/treasury): {} in holdings, spending {} a month (endowment rule)\n",
        group_thousands(&format!("{:.0}", c.total)),
        group_thousands(&format!("{:.0}", c.monthly_spending))
    );
    for x in &c.violations {
        let _ = writeln!(s, "   breach: {} — {}", x.rule, x.detail);
    }
    let _ = writeln!(
        s,
        "   100,000 seeded paths over 5 years (drift 0, monthly σ 16%): P(value below the {}-month floor) {:.2}%, P(depleted) {:.2}%",
        t.runway_floor_months,
        c.runway.p_below_floor * 100.0,
        c.runway.p_depleted * 100.0
    );
    s + "   `allonet treasury rebalance` gives the trades that bring ETH back inside its band.\n"
}

/// Step 8: the money path on the embedded EVM: deployment, on-chain governance, batches paid, every refusal.
pub fn money_path(m: &MoneyPath, token: &Token) -> String {
    let d = &m.deployment;
    let g = |n: u64| group_thousands(&n.to_string());
    let usd = |u: alloy_primitives::U256| group_thousands(&token.format(TokenAmount(u)));
    let allo = |v: &str| format!("{} ALLO", crate::gov::allo(v));
    let mut s = format!(
        "\n9. The money path on chain (embedded EVM: revm, contracts compiled by solc {}, OpenZeppelin 5.7.0)\n\
         \x20  deploy: AlloToken, AlloTimelock, AlloGovernor, USDC, AIAllocator and AlloAnchor in {} transactions ({} gas);\n\
         \x20  the timelock owns the allocator from its constructor and has no admin, the deployer holds no role, caps\n\
         \x20  start at 0\n\
         \x20  plan {}: {} {} to {} projects in {} batches of ≤ 4, Merkle root {}\n",
        d.compiler.split('+').next().unwrap_or(&d.compiler),
        m.deploy_transactions,
        g(m.deploy_gas),
        m.plan.digest,
        show_amount(token, m.plan.total, 2),
        token.symbol,
        m.plan.payments.len(),
        m.batches,
        m.root
    );
    let mut t = table(&["step", "who", "gas", "state after"]);
    for st in &m.governance {
        t.add_row(vec![st.step.to_string(), st.who.to_string(), g(st.gas), st.state.to_string()]);
    }
    right(&mut t, &[2]);
    let _ = writeln!(
        s,
        "{t}\n   proposal {}…: for {} · against {} · quorum {} · executing early was refused ({})",
        &m.proposal.to_string()[..12],
        allo(&m.status.votes_for),
        allo(&m.status.votes_against),
        allo(m.status.quorum.as_deref().unwrap_or("0")),
        m.early_execute
    );
    let p = &m.payout;
    let mut t = table(&["batch", "recipients", token.symbol.as_str(), "gas", "gas/recipient"]);
    for b in &p.report.batches {
        let per = g(b.gas_used / b.count.max(1) as u64);
        t.add_row(vec![b.index.to_string(), b.count.to_string(), usd(b.total), g(b.gas_used), per]);
    }
    right(&mut t, &[0, 1, 2, 3, 4]);
    let _ =
        writeln!(s, "   the agent pays plan id {} (chain id, allocator and asset bound in):\n{t}", p.report.plan_id);
    if let Some(rec) = &p.reconciliation {
        let _ = writeln!(
            s,
            "   reconciled from the chain's events: paid {} of {} approved to {} recipients, remainder {}, mismatches {}",
            usd(rec.paid),
            usd(rec.approved),
            rec.recipients_paid,
            usd(rec.remainder),
            rec.mismatches.len()
        );
    }
    let _ = write!(
        s,
        "   the same plan again: nothing to send ({} of {} batches paid); batch 0 sent by hand reverts: {}\n\
         \x20  an unapproved plan (every amount doubled): refused before sending ({}); sent by hand it reverts: {}\n\
         \x20  guardian kill switch: paused ({} gas); the check now refuses: {}\n\
         \x20  audit log (step 6's SQLite store) verified: {} entries, every act signed, the on-chain proposal and the payout included;\n\
         \x20  its head #{} anchored on chain by the operator (AlloAnchor, {} gas) and the log checked against it\n",
        m.again_already_paid,
        m.batches,
        m.resent_revert,
        m.unapproved_refused,
        m.unapproved_revert,
        g(m.pause_gas),
        m.paused_refusal,
        m.audit_entries,
        m.anchored.seq,
        g(m.anchored.gas_used)
    );
    s
}

/// Where to go next.
pub fn outro() -> String {
    "\nRun any step yourself: `allonet round --help`, `allonet retro --help`, `allonet tally --help`, `allonet verify --help`, \
     `allonet recommend --help`, `allonet flow --help`, `allonet gov --help`, `allonet treasury --help`, `allonet chain --help`, \
     `allonet payout --help`, `allonet agent --help`.\n"
        .to_string()
}

#[cfg(test)]
mod tests {
    use allonet_engine::rehearsal::{DemoFlow, FlowLine};

    #[test]
    fn flow_lists_most_kept_first_with_signed_changes() {
        let f = DemoFlow {
            token: allonet_core::Token::new("USDC", 6),
            lines: vec![
                FlowLine { node: "a".into(), paid: 3_000_000, kept: 1_000_000 },
                FlowLine { node: "b".into(), paid: 0, kept: 2_000_000 },
            ],
            injected: 3_000_000,
            kept: 3_000_000,
            in_flight: 0,
            hops: 2,
        };
        let s = super::flow(&f);
        let (b, a) = (s.find("│ b ").unwrap(), s.find("│ a ").unwrap());
        assert!(b < a, "{s}");
        assert!(s.lines().any(|l| l.starts_with("│ a ") && l.contains("−2 │")), "{s}");
        assert!(s.contains("   3 USDC in, 3 kept + 0 in flight after 2 hops"), "{s}");
    }
}
