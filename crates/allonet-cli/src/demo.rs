//! `allonet demo`: the main job on data bundled into the binary.

use crate::output::{group_thousands, right, show_amount, table, Progress};
use crate::retro::RetroArgs;
use crate::round::{show_step, truncate, RoundArgs};
use crate::tally::TallyArgs;
use allonet_core::Table;
use allonet_engine::results::{self, compare, official_from_table, Comparison, RetroTables, RoundTables};
use anyhow::Result;
use clap::Parser;

const CONTRIBUTIONS: &[u8] = include_bytes!("../../../examples/round/contributions.csv");
const PASSPORT: &[u8] = include_bytes!("../../../examples/round/passport.csv");
const RF4_BALLOTS: &[u8] = include_bytes!("../../../examples/op-rf4/rf4_ballots_export.csv");
const RF4_METRICS: &[u8] = include_bytes!("../../../examples/op-rf4/rf4_impact_metrics_by_project.csv");
const RF4_RESULTS: &[u8] = include_bytes!("../../../examples/op-rf4/rf4_results.csv");
const SNAPSHOT_VOTES: &[u8] = include_bytes!("../../../examples/snapshot-quadratic/votes.json");
const REGRANTS: &str = include_str!("../../../examples/flow/regrants.toml");
const TREASURY_POLICY: &str = include_str!("../../../examples/treasury/policy.toml");
const TREASURY_HOLDINGS: &[u8] = include_bytes!("../../../examples/treasury/holdings.csv");

#[derive(Parser)]
struct Wrap<T: clap::Args> {
    #[command(flatten)]
    inner: T,
}

fn args<T: clap::Args>(argv: &[&str]) -> T {
    Wrap::<T>::parse_from(std::iter::once("allonet").chain(argv.iter().copied())).inner
}

#[derive(clap::Args, Clone, Debug)]
pub struct DemoArgs {}

pub fn run(_: &DemoArgs) -> Result<()> {
    let progress = Progress::new(false);
    println!("allonet demo: a QF round three ways, Optimism's Retro Funding 4 from its real ballots, a quadratic vote, an explained AI recommendation,\nfunds flowing through a network, governance approving the payout by signed quadratic vote, a treasury check,\nand the payout itself executed through AIAllocator on the embedded EVM.\n");

    // 1. A round: classic QF, COCM, COCM with passport weighting.
    let base = [
        "examples/round/contributions.csv",
        "--pool",
        "10000",
        "--token",
        "USDC",
        "--decimals",
        "6",
        "--cap",
        "25%",
        "--fill",
    ];
    let variants: [(&str, Vec<&str>); 3] = [
        ("QF", vec!["--mechanism", "qf"]),
        ("QF + passport", vec!["--mechanism", "qf", "--sybil-scores", "examples/round/passport.csv"]),
        ("COCM", vec!["--mechanism", "cocm"]),
    ];
    let mut results = Vec::new();
    for (name, extra) in &variants {
        let argv: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let a: RoundArgs = args(&argv);
        let tables = RoundTables {
            contributions: Table::from_bytes("examples/round/contributions.csv", CONTRIBUTIONS)?,
            sybil_scores: if a.sybil_scores.is_some() {
                Some(Table::from_bytes("examples/round/passport.csv", PASSPORT)?)
            } else {
                None
            },
            clusters: None,
            trust: None,
        };
        let (r, _) = results::round_from_tables(&a.options(), &tables, &mut show_step(&progress))?;
        results.push((*name, r));
    }
    let r0 = &results[0].1;
    let token = &r0.config.token;
    println!(
        "1. Quadratic funding round (examples/round: {} gifts from {} donors to {} projects), pool {} {}, cap 25%",
        r0.gifts,
        r0.donors,
        r0.projects,
        show_amount(token, r0.config.pool, 0),
        token.symbol
    );
    let mut t = table(&["project", "donors", "given", "QF", "QF + passport", "COCM"]);
    let mut order: Vec<usize> = (0..r0.lines.len()).collect();
    order.sort_by(|&a, &b| r0.lines[b].matched.cmp(&r0.lines[a].matched));
    for i in order {
        let l = &r0.lines[i];
        let mut row = vec![l.project.clone(), l.donors.to_string(), group_thousands(&format!("{:.2}", l.contributed))];
        for (_, r) in &results {
            let m = r
                .lines
                .iter()
                .find(|x| x.project == l.project)
                .map(|x| show_amount(token, x.matched, 2))
                .unwrap_or_else(|| "0".into());
            row.push(m);
        }
        t.add_row(row);
    }
    right(&mut t, &[1, 2, 3, 4, 5]);
    println!("{t}");
    for (name, r) in &results {
        println!("   {name:<16} input {}  output {}", r.input_digest, r.output_digest);
    }
    println!("   Passport weighting zeroes the airdrop farm's 30 fresh addresses; COCM sees that the farm's donors and the ring");
    println!("   funding ring-a and ring-b only ever fund each other, and pays their coordination nothing.\n");

    // 2. Retro Funding 4 from the real ballots.
    let a: RetroArgs = args(&[
        "--ballots",
        "examples/op-rf4/rf4_ballots_export.csv",
        "--metrics",
        "examples/op-rf4/rf4_impact_metrics_by_project.csv",
    ]);
    let tables = RetroTables::Metrics {
        ballots: Table::from_bytes("examples/op-rf4/rf4_ballots_export.csv", RF4_BALLOTS)?,
        metrics: Table::from_bytes("examples/op-rf4/rf4_impact_metrics_by_project.csv", RF4_METRICS)?,
    };
    let (r, file) = results::retro_from_tables(&a.options(), tables)?;
    let official = official_from_table(&Table::from_bytes("examples/op-rf4/rf4_results.csv", RF4_RESULTS)?)?;
    println!("2. Optimism Retro Funding 4 recomputed from 108 real badgeholder ballots and the impact metrics (10M OP, cap 5%, min 1,000 OP)");
    crate::retro::print_table(&r, &file, Some(10), Some(&official));
    let Comparison { max_diff: max, within_one: within, .. } = compare(&r, &official);
    println!(
        "   every project within 1 OP of the official results: {} (max |diff| {max:.3} OP, {within}/{})\n",
        within == r.lines.len(),
        r.lines.len()
    );

    // 3. A quadratic vote.
    let a: TallyArgs = args(&["examples/snapshot-quadratic/votes.json"]);
    let (r, file) = results::tally_from_bytes(&a.options(), "examples/snapshot-quadratic/votes.json", SNAPSHOT_VOTES)?;
    println!("3. Quadratic vote (Snapshot's example proposal, {} votes)", r.voters);
    let mut t = table(&["choice", "score", "share"]);
    let total: f64 = r.lines.iter().map(|l| l.score).sum();
    for l in &r.lines {
        t.add_row(vec![truncate(&l.choice, 30), format!("{:.4}", l.score), format!("{:.2}%", l.score / total * 100.0)]);
    }
    right(&mut t, &[1, 2]);
    println!("{t}");
    println!("   input {}  output {}", file.input_digest, file.output_digest);
    // 4. An AI recommendation, explained.
    let history = allonet_ml::synth::to_csv(&allonet_ml::synth::history(20, 40, 7));
    let proposals = allonet_ml::synth::to_csv(&allonet_ml::synth::proposals(5, 7));
    let d = allonet_ml::data::dataset_from_table(
        &Table::from_bytes("history.csv", history.as_bytes())?,
        &allonet_ml::data::ReadSpec { target: Some("amount".into()), features: None },
    )?;
    let mf = allonet_ml::model::train(&d, &allonet_ml::model::TrainOptions::default(), None)?;
    let p = mf.dataset(&Table::from_bytes("proposals.csv", proposals.as_bytes())?, false)?;
    let recs = allonet_engine::models::recommend(&mf, &p, mf.options.interval, 2)?;
    let r = &mf.report;
    println!(
        "\n4. AI recommendation: a random forest (100 trees, seed 42) trained on {} past proposals (impact_score, votes → amount)",
        d.rows()
    );
    println!(
        "   held-out R² {:.3} (linear {:.3}, mean {:.3}) · OOB R² {:.3} · 10–90% interval covers {:.0}% of held-out rows",
        r.held_out.forest.r2,
        r.held_out.linear.r2,
        r.held_out.mean.r2,
        r.oob_r2.unwrap_or(f64::NAN),
        r.interval_coverage.unwrap_or(f64::NAN) * 100.0
    );
    crate::model::print_recommendations(&recs, mf.options.interval);
    println!("   model id {}", mf.id());

    // 5. The round's payouts flow on through re-granting nodes.
    let read = |p: &str| -> Result<Table, allonet_core::InputError> {
        if p.ends_with("contributions.csv") {
            Table::from_bytes("examples/round/contributions.csv", CONTRIBUTIONS)
        } else {
            Err(allonet_core::InputError::file(p, "not bundled with the demo"))
        }
    };
    let model = allonet_flow::model::parse_model("examples/flow/regrants.toml", REGRANTS, &read)?;
    let net = &model.network;
    let idx = net.index();
    let qf = &results[0].1;
    let inj: Vec<(u32, u128)> = qf
        .lines
        .iter()
        .filter(|l| !l.matched.is_zero())
        .filter_map(|l| idx.get(l.project.as_str()).map(|&v| (v, l.matched.units().to::<u128>())))
        .collect();
    let p = allonet_engine::flows::propagate_network(net, &inj, 10_000, false);
    println!(
        "\n5. The QF round's payouts flow on (examples/flow/regrants.toml): projects re-grant to what they build on,"
    );
    println!(
        "   ring-a and ring-b pass half to each other, and every re-granting node sends 2% upstream to protocol-guild"
    );
    let mut t = table(&["project", "paid by the round", "after re-granting", "change"]);
    let mut order: Vec<usize> = (0..net.nodes.len()).filter(|&v| p.received[v] > 0).collect();
    order.sort_by(|&a, &b| p.kept[b].cmp(&p.kept[a]));
    let usdc = &qf.config.token;
    let amt = |x: u128| show_amount(usdc, allonet_core::TokenAmount::from_base_units(x), 2);
    for v in order {
        let paid = inj.iter().filter(|i| i.0 as usize == v).map(|i| i.1).sum::<u128>();
        let change = p.kept[v] as i128 - paid as i128;
        let sign = if change >= 0 { "+" } else { "−" };
        t.add_row(vec![
            net.nodes[v].id.clone(),
            amt(paid),
            amt(p.kept[v]),
            format!("{sign}{}", amt(change.unsigned_abs())),
        ]);
    }
    right(&mut t, &[1, 2, 3]);
    println!("{t}");
    println!(
        "   {} USDC in, {} kept + {} in flight after {} hops: every base unit accounted for",
        amt(p.injected),
        amt(p.kept.iter().sum()),
        amt(p.in_flight.iter().sum()),
        p.hops
    );

    // 6. Governance approves the payout plan: quadratic vote by generated members, timelock, execution.
    let (mut audit_log, demo_dir, demo_now) = {
        use allonet_governance::governor::{proposal_id, Action, Event, GovParams, ProposalState};
        use allonet_governance::power::{PowerConfig, Strategy};
        use allonet_governance::{Clock, ManualClock};
        let dir = std::env::temp_dir().join(format!("allonet-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut store = allonet_store::Store::open(&dir.join("gov.db"))?;
        let clock = ManualClock::at(1_767_225_600); // 2026-01-01
        let members: Vec<_> = (0..40).map(|i| crate::gov::member_key(2026, i)).collect();
        let e18 = 1_000_000_000_000_000_000u128;
        let holders: Vec<_> =
            members.iter().enumerate().map(|(i, k)| (k.address(), (1 + (i as u128 * 37) % 200) * e18)).collect();
        let day = 86_400;
        store.submit(&Event::Init {
            params: GovParams {
                voting_delay: day,
                voting_period: 3 * day,
                proposal_threshold: 0,
                quorum_percent: 20,
                timelock_delay: 2 * day,
                grace_period: 14 * day,
            },
            power: PowerConfig { strategy: Strategy::QuadraticSqrt, sybil: None },
            guardian: members[39].address(),
            holders,
            allowlist: vec![],
            chain_id: 1,
            at: clock.now(),
        })?;
        let plan = qf.output_digest.0;
        let actions = vec![Action::ApprovePayoutPlan { digest: plan }];
        let description = "Pay the demo round's QF matching (10,000 USDC) as computed";
        clock.advance(60);
        store.submit(&Event::Propose {
            proposer: members[0].address(),
            actions: actions.clone(),
            description: description.into(),
            options: vec![],
            at: clock.now(),
        })?;
        let id = proposal_id(&actions, description, &[]);
        clock.advance(day + 60);
        let mut signed = Vec::new();
        for (i, k) in members.iter().enumerate().take(32) {
            let support = if i % 5 == 4 {
                0
            } else if i % 11 == 10 {
                2
            } else {
                1
            };
            signed.push(crate::gov::signed_vote(store.governor(), k, id, support, 0, clock.now())?);
        }
        store.submit_batch(&signed)?;
        let g = store.governor();
        let p = &g.proposals[&id];
        println!(
            "\n6. Governance: the plan (output digest {}) is proposed, voted on quadratically by 32 of 40 members",
            plan
        );
        println!("   with EIP-712 signed ballots, queued, and executed after the 2-day timelock");
        println!(
            "   for {} · against {} · abstain {} (√-weighted) · state while voting: {:?}",
            p.for_votes,
            p.against,
            p.abstain,
            g.state(id, clock.now())?
        );
        clock.advance(3 * day);
        let s1 = store.governor().state(id, clock.now())?;
        store.submit(&Event::Queue { proposal: id, at: clock.now() })?;
        let early = store.submit(&Event::Execute { proposal: id, at: clock.now() + day });
        clock.advance(2 * day);
        store.submit(&Event::Execute { proposal: id, at: clock.now() })?;
        let g = store.governor();
        println!(
            "   after voting: {:?} → queued → execute a day early refused ({}) → {:?}",
            s1,
            early.err().map(|e| e.to_string()).unwrap_or_default(),
            g.state(id, clock.now())?
        );
        assert_eq!(g.state(id, clock.now())?, ProposalState::Executed);
        println!(
            "   approved plans: {} · audit chain verified: {} entries (SQLite, WAL, hash-chained)",
            g.registry.approved_plans.len(),
            store.verify_audit().map_err(|b| anyhow::anyhow!("audit broken at #{}", b.seq))?
        );
        (store, dir, clock.now())
    };

    // 7. The treasury is checked against its policy before the payout leaves it.
    {
        use allonet_engine::treasury::{check_payout, holdings_from_table, policy_from_toml, RunwayOptions};
        let policy = policy_from_toml("examples/treasury/policy.toml", TREASURY_POLICY)?;
        let h = holdings_from_table(&Table::from_bytes("examples/treasury/holdings.csv", TREASURY_HOLDINGS)?)?;
        let payout = 10_000.0; // the round's matching, in USD
        let o = RunwayOptions { months: 60, paths: 100_000, seed: 42, mu: Some(0.0), sigma: Some(0.16) };
        let c = check_payout(&policy, &h, "USDC", payout, None, &o)?;
        println!("\n7. Treasury check after paying 10,000 USDC (examples/treasury): {} in holdings, spending {} a month (endowment rule)", group_thousands(&format!("{:.0}", c.total)), group_thousands(&format!("{:.0}", c.monthly_spending)));
        for x in &c.violations {
            println!("   breach: {} — {}", x.rule, x.detail);
        }
        println!(
            "   100,000 seeded paths over 5 years (drift 0, monthly σ 16%): P(value below the {}-month floor) {:.2}%, P(depleted) {:.2}%",
            policy.runway_floor_months,
            c.runway.p_below_floor * 100.0,
            c.runway.p_depleted * 100.0
        );
        println!("   `allonet treasury rebalance` gives the trades that bring ETH back inside its band.");
    }

    // 8. The plan goes through on-chain governance and is paid on the embedded EVM through AIAllocator.
    let paid = pay_on_embedded_evm(qf, &demo_dir, &mut audit_log, demo_now);
    drop(audit_log);
    let _ = std::fs::remove_dir_all(&demo_dir);
    paid?;

    println!("\nRun any step yourself: `allonet round --help`, `allonet retro --help`, `allonet tally --help`, `allonet verify --help`, `allonet recommend --help`, `allonet flow --help`, `allonet gov --help`, `allonet treasury --help`, `allonet chain --help`, `allonet payout --help`.");
    Ok(())
}

/// Demo step 8, the money path on the embedded EVM (`allonet_engine::rehearsal::money_path`), printed.
fn pay_on_embedded_evm(
    qf: &allonet_mechanisms::round::RoundResult,
    dir: &std::path::Path,
    audit: &mut allonet_store::Store,
    now: u64,
) -> Result<()> {
    let m = allonet_engine::rehearsal::money_path(qf, dir, audit, now)?;
    let (token, d) = (&qf.config.token, &m.deployment);
    let g = |n: u64| group_thousands(&n.to_string());
    let usd = |u: alloy_primitives::U256| group_thousands(&token.format(allonet_core::TokenAmount(u)));
    let allo = |v: &str| {
        let units = v.parse::<alloy_primitives::U256>().unwrap_or_default();
        format!("{} ALLO", group_thousands(&allonet_core::Token::new("ALLO", 18).format(allonet_core::TokenAmount(units))))
    };
    println!(
        "\n8. The money path on chain (embedded EVM: revm, contracts compiled by solc {}, OpenZeppelin 5.7.0)",
        d.compiler.split('+').next().unwrap_or(&d.compiler)
    );
    println!(
        "   deploy: AlloToken, AlloTimelock, AlloGovernor, USDC and AIAllocator in {} transactions ({} gas); the timelock",
        m.deploy_transactions,
        g(m.deploy_gas)
    );
    println!("   owns the allocator from its constructor and has no admin, the deployer holds no role, caps start at 0");
    println!(
        "   plan {}: {} {} to {} projects in {} batches of ≤ 4, Merkle root {}",
        m.plan.digest,
        show_amount(token, m.plan.total, 2),
        token.symbol,
        m.plan.payments.len(),
        m.batches,
        m.root
    );
    let mut t = table(&["step", "who", "gas", "state after"]);
    for s in &m.governance {
        t.add_row(vec![s.step.to_string(), s.who.to_string(), g(s.gas), s.state.to_string()]);
    }
    right(&mut t, &[2]);
    println!("{t}");
    println!(
        "   proposal {}…: for {} · against {} · quorum {} · executing early was refused ({})",
        &m.proposal.to_string()[..12],
        allo(&m.status.votes_for),
        allo(&m.status.votes_against),
        allo(m.status.quorum.as_deref().unwrap_or("0")),
        m.early_execute
    );
    let p = &m.payout;
    let mut t = table(&["batch", "recipients", token.symbol.as_str(), "gas", "gas/recipient"]);
    for b in &p.report.batches {
        t.add_row(vec![b.index.to_string(), b.count.to_string(), usd(b.total), g(b.gas_used), g(b.gas_used / b.count as u64)]);
    }
    right(&mut t, &[0, 1, 2, 3, 4]);
    println!("   the agent pays plan id {} (chain id, allocator and asset bound in):\n{t}", p.report.plan_id);
    let rec = p.reconciliation.as_ref().expect("a real run reconciles");
    println!(
        "   reconciled from the chain's events: paid {} of {} approved to {} recipients, remainder {}, mismatches {}",
        usd(rec.paid),
        usd(rec.approved),
        rec.recipients_paid,
        usd(rec.remainder),
        rec.mismatches.len()
    );
    println!(
        "   the same plan again: nothing to send ({} of {} batches paid); batch 0 sent by hand reverts: {}",
        m.again_already_paid, m.batches, m.resent_revert
    );
    println!(
        "   an unapproved plan (every amount doubled): refused before sending ({}); sent by hand it reverts: {}",
        m.unapproved_refused, m.unapproved_revert
    );
    println!("   guardian kill switch: paused ({} gas); the check now refuses: {}", g(m.pause_gas), m.paused_refusal);
    println!(
        "   audit log (step 6's SQLite store) verified: {} entries, the on-chain proposal and the payout included",
        m.audit_entries
    );
    Ok(())
}
