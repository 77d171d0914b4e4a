//! The money path for people: deployments, plans, payouts (lines as batches land, summaries, an HTML page),
//! queued plans and an allocator's status.

use std::path::Path;

use allonet_chain::deploy::Step;
use allonet_chain::payout::{BatchReport, PlanStatus};
use allonet_chain::plan::PayoutPlan;
use allonet_core::{Token, TokenAmount};
use allonet_engine::connect::DeploymentFile;
use allonet_engine::govern::Queued;
use allonet_engine::pay::{AllocatorStatus, ChainPayout};

use crate::{exact, group_thousands, right, short, show_amount, table};

fn gas(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// What `chain deploy` did: every transaction with its gas, every role's address, and what comes next.
pub fn deployment(
    f: &DeploymentFile,
    steps: &[Step],
    describe: &str,
    resumed: bool,
    keys_dir: Option<&Path>,
    out: &Path,
) -> String {
    let d = &f.deployment;
    let mut t = table(&["step", "tx", "gas"]);
    for s in steps {
        t.add_row(vec![s.what.clone(), short(&s.tx_hash), gas(s.gas_used)]);
    }
    right(&mut t, &[2]);
    let mut r = table(&["role", "address"]);
    for (n, addr) in [
        ("AIAllocator (owned by the timelock)", d.allocator),
        (&format!("payout asset ({})", d.asset_symbol), d.asset),
        ("AlloToken (votes)", d.gov_token),
        ("AlloTimelock (no admin)", d.timelock),
        ("AlloGovernor", d.governor),
        ("AlloAnchor (audit log anchors)", d.anchor),
        ("agent", d.agent),
        ("guardian", d.guardian),
    ] {
        r.add_row(vec![n.to_string(), addr.to_string()]);
    }
    let mut s = format!(
        "Deployed on {describe} (chain {}), compiler {}{}\n{t}\n{r}\n",
        d.chain_id,
        d.compiler,
        if resumed { " (resumed from the journal)" } else { "" }
    );
    if let Some(k) = keys_dir {
        s += &format!(
            "key files of this cast (anvil's public dev keys, for rehearsals only) in {}: deployer, agent, guardian, holder1-3\n",
            k.display()
        );
    }
    s + &format!(
        "roles read back and checked: the deployer holds no role; the agent's caps and veto delay are 0 until a proposal sets them.\n\
         deployment written to {}; next: `allonet gov propose --onchain --approve-plan plan.json --deployment {}`",
        out.display(),
        out.display()
    )
}

/// A new plan: its digest, total, and each chain's batches and Merkle root (what governance approves).
pub fn plan(plan: &PayoutPlan, out: &Path) -> String {
    let token = Token::new(plan.token.symbol.clone(), plan.token.decimals);
    let mut t = table(&["chain", "payments", "batches", "total", "Merkle root (what governance approves)"]);
    for (chain, c) in plan.commitments() {
        t.add_row(vec![
            chain.unwrap_or_else(|| "default".into()),
            c.batches.iter().map(Vec::len).sum::<usize>().to_string(),
            c.batches.len().to_string(),
            exact(&token, c.total),
            c.root().to_string(),
        ]);
    }
    right(&mut t, &[1, 2, 3]);
    format!(
        "plan {} : {} payments, {} {} -> {}\n{t}\nnothing is payable until governance approves it: `allonet gov propose --onchain --approve-plan {}`",
        plan.digest,
        plan.payments.len(),
        show_amount(&token, plan.total, 2),
        plan.token.symbol,
        out.display(),
        out.display()
    )
}

/// The line announcing a chain's payout.
pub fn chain_started(label: &str, describe: &str, s: &PlanStatus) -> String {
    format!(
        "chain {label}: {describe} · allocator {} · plan {} ({}) · paying as {} ({})",
        s.allocator, s.plan_id, s.onchain.status, s.payer, s.payer_role
    )
}

/// The line of a batch as it lands.
pub fn batch(b: &BatchReport, token: &Token) -> String {
    format!(
        "  batch {:>3}: {:>5} recipients, {} {}, gas {}, tx {}",
        b.index,
        b.count,
        exact(token, b.total),
        token.symbol,
        gas(b.gas_used),
        b.tx_hash.map(|h| short(&h.to_string())).unwrap_or_else(|| "(dry run)".into())
    )
}

/// What each chain's payout did, and its reconciliation.
pub fn payouts(reports: &[ChainPayout], token: &Token, dry_run: bool) -> String {
    let mut out = Vec::new();
    for r in reports {
        out.push(if r.report.batches.is_empty() {
            format!(
                "  nothing to send: all {} batches were already paid under plan {}",
                r.report.already_paid, r.report.plan_id
            )
        } else if dry_run {
            format!("  dry run: {} batches estimated, nothing sent", r.report.batches.len())
        } else {
            format!(
                "  paid now {} {} to {} recipients ({} batches paid before this run), gas {}",
                exact(token, r.report.paid_now),
                token.symbol,
                r.report.recipients_now,
                r.report.already_paid,
                gas(r.report.gas_used)
            )
        });
        if let Some(rec) = &r.reconciliation {
            let bad = if rec.mismatches.is_empty() {
                String::new()
            } else {
                format!(" · MISMATCHES: {}", rec.mismatches.join("; "))
            };
            out.push(format!(
                "  reconciled from events: paid {} of {} approved to {} recipients, remainder {}{bad}",
                exact(token, rec.paid),
                exact(token, rec.approved),
                rec.recipients_paid,
                exact(token, rec.remainder),
            ));
        }
    }
    out.join("\n")
}

/// The payout as a self-contained page: a bar per batch (gas), and every batch with its transaction.
pub fn payout_html(plan: &PayoutPlan, token: &Token, reports: &[ChainPayout]) -> String {
    use crate::html::{report, Bar};
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for r in reports {
        for b in &r.report.batches {
            bars.push(Bar {
                label: format!("{} · batch {} · {} recipients", r.chain, b.index, b.count),
                value: b.gas_used as f64,
                text: format!("{} gas ({}/recipient)", b.gas_used, b.gas_used / b.count.max(1) as u64),
            });
            rows.push(vec![
                r.chain.clone(),
                b.index.to_string(),
                b.count.to_string(),
                exact(token, b.total),
                b.gas_used.to_string(),
                b.tx_hash.map(|h| h.to_string()).unwrap_or_else(|| "(dry run)".into()),
            ]);
        }
    }
    let mut summary = vec![format!(
        "plan {} · {} payments · {} {}",
        plan.digest,
        plan.payments.len(),
        exact(token, plan.total.units()),
        token.symbol
    )];
    for r in reports {
        let rec = r.reconciliation.as_ref();
        summary.push(format!(
            "chain {} (id {}): plan id {} ({}) · paid now {} {} in {} batches ({} paid before) · gas {} · reconciled: paid {} of {} approved, remainder {}",
            r.chain,
            r.report.chain_id,
            r.report.plan_id,
            r.status.onchain.status,
            exact(token, r.report.paid_now),
            token.symbol,
            r.report.batches.len(),
            r.report.already_paid,
            r.report.gas_used,
            rec.map(|x| exact(token, x.paid)).unwrap_or_else(|| "-".into()),
            exact(token, r.status.onchain.total),
            rec.map(|x| exact(token, x.remainder)).unwrap_or_else(|| "-".into()),
        ));
    }
    let header = ["chain", "batch", "recipients", "amount", "gas", "transaction"];
    report("allonet payout", &summary, "Gas per batch", &bars, &header, &rows)
}

/// Plans the agent queued under the standing caps.
pub fn queued(queued: &[(String, Queued)], token: &Token) -> String {
    let lines: Vec<String> = queued
        .iter()
        .map(|(label, q)| {
            format!(
                "chain {label}: queued plan {} ({} {}), payable from {} (unix time) unless the guardian or governance cancels it; gas {}",
                q.plan_id,
                exact(token, q.onchain.total),
                token.symbol,
                q.onchain.payable_at,
                q.gas_used
            )
        })
        .collect();
    lines.join("\n")
}

/// An allocator's status as a two-column table.
pub fn status(s: &AllocatorStatus, token: &Token) -> String {
    let amt = |u: alloy_primitives::U256| format!("{} {}", show_amount(token, TokenAmount(u), 2), token.symbol);
    let owner = format!("{}{}", s.owner, if s.owned_by_timelock { " (timelock: governance)" } else { "" });
    let mut rows = vec![
        ("chain".to_string(), format!("{} · block {}", s.chain, s.block)),
        ("allocator".into(), s.allocator.to_string()),
        ("owner".into(), owner),
        ("agent".into(), s.agent.to_string()),
        ("guardian".into(), s.guardian.to_string()),
        ("paused".into(), s.paused.to_string()),
        ("balance".into(), amt(s.balance)),
        ("agent may queue per epoch".into(), amt(s.epoch_cap)),
        ("per recipient per epoch".into(), amt(s.recipient_cap)),
        ("veto delay".into(), format!("{} s", s.veto_delay)),
        (format!("left this epoch ({})", s.epoch), amt(s.left_this_epoch)),
    ];
    if let Some(p) = &s.plan {
        rows.push(("plan".into(), format!("{} (id here {})", p.digest, p.plan_id)));
        rows.push(("plan state".into(), p.onchain.status.to_string()));
        let progress = format!("{}/{} batches, {} of {}", p.paid_batches, p.batches, amt(p.onchain.paid), amt(p.total));
        rows.push(("plan progress".into(), progress));
    }
    let mut t = table(&["field", "value"]);
    for (k, v) in rows {
        t.add_row(vec![k, v]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use allonet_chain::plan::{Payment, PlanToken};

    #[test]
    fn a_plan_shows_its_root_per_chain_and_exact_totals() {
        let pay = |i: u8, chain: Option<&str>| Payment {
            recipient: allonet_core::Address(alloy_primitives::Address::repeat_byte(i)),
            amount: TokenAmount::from_base_units(1_234_567),
            chain: chain.map(String::from),
            label: None,
        };
        let p = PayoutPlan::new(
            PlanToken { symbol: "USDC".into(), decimals: 6 },
            None,
            1,
            vec![pay(1, None), pay(2, Some("op"))],
        )
        .unwrap();
        let s = plan(&p, Path::new("plan.json"));
        assert!(s.contains("2 payments, 2.46 USDC -> plan.json"), "{s}");
        assert!(s.contains("1.234567") && s.contains("op") && s.contains("default"), "{s}");
        assert!(s.contains(&p.commitments()[&None].root().to_string()));
    }
}
