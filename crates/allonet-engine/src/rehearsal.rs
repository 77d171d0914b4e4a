//! The money path rehearsed end to end on the embedded EVM, as `allonet demo` shows it: deploy with safe
//! defaults, a round result as a plan, an on-chain proposal approving it (and granting standing caps) that three
//! holders vote on (one by EIP-712 signature), queue, timelock, execute, the agent pays through [`crate::pay`],
//! reconcile; then the same plan again and an unapproved one, both refused; the guardian's pause; every step
//! appended to an audit log. Each step returns what happened (gas, states, refusals) for the front end to show.

use std::path::Path;

use allonet_chain::anvil::DEV_KEYS;
use allonet_chain::contracts::{revert_name, AIAllocator};
use allonet_chain::deploy::{Asset, Deployment};
use allonet_chain::governor::{self, Action, Proposal, ProposalStatus};
use allonet_chain::payout::pay_batch_call;
use allonet_chain::plan::PayoutPlan;
use allonet_chain::rpc::signer_from_hex;
use allonet_chain::{transact, ChainError, Receipt};
use allonet_core::{Address, TokenAmount};
use allonet_governance::governor::ProposalState;
use allonet_mechanisms::round::RoundResult;
use allonet_store::Store;
use alloy_primitives::{keccak256, U256};

use crate::audit::record;
use crate::connect::{connect, resolve_chains, ConnectSpec};
use crate::deploy::{deploy, DeploySpec};
use crate::pay::{pay_plan, ChainPayout, PayOptions, Quiet};
use crate::EngineError;

/// One governance transaction of the rehearsal.
#[derive(Debug, Clone)]
pub struct GovStep {
    /// What was done.
    pub step: &'static str,
    /// Who sent it.
    pub who: &'static str,
    /// Gas used.
    pub gas: u64,
    /// The proposal's state after it.
    pub state: &'static str,
}

/// What the rehearsal did.
#[derive(Debug, Clone)]
pub struct MoneyPath {
    /// The contracts deployed.
    pub deployment: Deployment,
    /// Deployment transactions.
    pub deploy_transactions: usize,
    /// Their gas.
    pub deploy_gas: u64,
    /// The round's payout plan.
    pub plan: PayoutPlan,
    /// Its batches' Merkle root.
    pub root: alloy_primitives::B256,
    /// Its batches.
    pub batches: usize,
    /// The on-chain proposal id.
    pub proposal: U256,
    /// Each governance transaction.
    pub governance: Vec<GovStep>,
    /// The proposal's final status.
    pub status: ProposalStatus,
    /// Why executing before the timelock ended was refused.
    pub early_execute: String,
    /// The agent's payout, reconciled.
    pub payout: ChainPayout,
    /// The same plan again: batches already paid (nothing sent), and the revert of a batch resent by hand.
    pub again_already_paid: usize,
    /// The contract's revert of a batch resent by hand.
    pub resent_revert: String,
    /// An unapproved plan (every amount doubled): the engine's refusal and the contract's revert.
    pub unapproved_refused: String,
    /// The contract's revert of the unapproved plan's batch sent by hand.
    pub unapproved_revert: String,
    /// Gas of the guardian's pause.
    pub pause_gas: u64,
    /// The check's refusal after the guardian paused.
    pub paused_refusal: String,
    /// Audit entries after the two records this rehearsal appends.
    pub audit_entries: u64,
    /// The log's head written to the deployment's AlloAnchor by the operator.
    pub anchored: crate::audit::Anchoring,
}

fn reason(r: Result<Receipt, ChainError>) -> String {
    match r {
        Ok(_) => "not refused".into(),
        Err(e) => e.revert_reason().map(|r| revert_name(r).to_string()).unwrap_or_else(|| e.to_string()),
    }
}

/// Run the money path for a round result in `dir` (state and deployment files), appending to `audit` at `now`.
/// Recipient addresses are derived from the project ids (the example round has none).
pub fn money_path(qf: &RoundResult, dir: &Path, audit: &mut Store, now: u64) -> Result<MoneyPath, EngineError> {
    let token = &qf.config.token;
    let units = |whole: u64| U256::from(whole) * U256::from(10u64).pow(U256::from(token.decimals));
    let spec = ConnectSpec { embedded: true, state: dir.join("chain.json"), ..Default::default() };
    let dep_path = dir.join("deployment.json");
    let (mut conn, endpoint) = connect(&spec, None)?;
    let deploy_spec = DeploySpec {
        asset: Asset::NewToken { symbol: token.symbol.clone(), decimals: token.decimals, supply: units(1_000_000) },
        agent: None,
        guardian: None,
        holders: None,
        epoch_length: 86_400,
        fund: units(20_000),
        voting_delay: 1,
        voting_period: 50,
        quorum_percent: 4,
        timelock_delay: 2 * 86_400,
        keep_owner: false,
    };
    let (file, steps) = deploy(&mut conn, endpoint, &deploy_spec, &dep_path)?;
    let d = file.deployment.clone();
    let address_of =
        |p: &str| Some(Address(alloy_primitives::Address::from_word(keccak256(format!("allonet demo recipient {p}")))));
    let plan = crate::plans::plan_from_round(qf, &address_of, 4)?;
    let commitment = crate::govern::commitment(&plan, None)?;
    let holders: Vec<_> = (3..6).map(|i| signer_from_hex(DEV_KEYS[i]).expect("dev key")).collect();
    let actions = vec![
        Action::approve(&commitment),
        Action::SetCaps { epoch_cap: units(10_000), recipient_cap: units(2_500) },
        Action::SetRecipients { recipients: plan.payments.iter().map(|p| p.recipient.0).collect(), allowed: true },
        Action::SetVetoDelay { seconds: 86_400 },
    ];
    let proposal = Proposal::new(
        d.allocator,
        &actions,
        "Demo round 1: pay the QF matching; standing caps 10,000/2,500 a day, 1-day veto",
    );
    let mut gov = Vec::new();
    let c = conn.chain();
    let (id, r) = governor::propose(c, d.governor, holders[0].address(), &proposal)?;
    let state = |c: &mut dyn allonet_chain::Chain| governor::status(c, d.governor, id).map(|s| s.state);
    let step = "propose: approve the plan + caps + registry + veto delay";
    gov.push(GovStep { step, who: "holder 1", gas: r.gas_used, state: state(c)? });
    conn.advance(2, 0)?;
    let c = conn.chain();
    let r = governor::cast_vote(c, d.governor, holders[0].address(), id, 1)?;
    gov.push(GovStep { step: "vote for (400,000 ALLO)", who: "holder 1", gas: r.gas_used, state: state(c)? });
    let sig = governor::sign_ballot(c, d.governor, &holders[1], id, 1)?;
    let r = governor::cast_vote_by_sig(c, d.governor, holders[0].address(), id, 1, holders[1].address(), sig)?;
    let step = "vote for by EIP-712 signature (350,000), relayed";
    gov.push(GovStep { step, who: "holder 2", gas: r.gas_used, state: state(c)? });
    let r = governor::cast_vote(c, d.governor, holders[2].address(), id, 0)?;
    gov.push(GovStep { step: "vote against (250,000)", who: "holder 3", gas: r.gas_used, state: state(c)? });
    conn.advance(50, 0)?;
    let c = conn.chain();
    let r = governor::queue(c, d.governor, holders[0].address(), &proposal)?;
    gov.push(GovStep { step: "queue in the timelock", who: "anyone", gas: r.gas_used, state: state(c)? });
    let early_execute = reason(governor::execute(c, d.governor, holders[0].address(), &proposal));
    conn.advance(1, 2 * 86_400)?;
    let c = conn.chain();
    let r = governor::execute(c, d.governor, holders[0].address(), &proposal)?;
    gov.push(GovStep { step: "execute after the 2-day timelock", who: "anyone", gas: r.gas_used, state: state(c)? });
    let status = governor::status(c, d.governor, id)?;
    let detail = serde_json::json!({"chain_id": d.chain_id, "governor": d.governor, "proposal": id.to_string(),
        "state": status.state, "for": status.votes_for, "against": status.votes_against, "plan": plan.digest});
    record(audit, "onchain_proposal", &detail, now)?;
    conn.save()?;
    drop(conn);

    // The agent pays through the engine: every check first, then the batches, then reconcile.
    let targets = || resolve_chains(&[None], &dep_path, &spec, None);
    let payout = pay_plan(&plan, targets()?, &PayOptions::default(), &mut Quiet)?.remove(0);
    let detail = serde_json::json!({"chain_id": d.chain_id, "allocator": d.allocator, "plan_id": payout.report.plan_id,
        "plan": plan.digest, "batches": payout.report.batches, "reconciliation": payout.reconciliation});
    record(audit, "payout", &detail, now)?;

    // The same plan again: the engine sends nothing, and a batch sent by hand reverts on chain.
    let again = pay_plan(&plan, targets()?, &PayOptions::default(), &mut Quiet)?.remove(0);
    let (mut conn, _) = connect(&spec, Some(&file.endpoint))?;
    let resent_revert = reason(transact(conn.chain(), d.agent, d.allocator, &pay_batch_call(&commitment, 0)));
    // An unapproved plan (the same recipients, each paid twice as much).
    let mut doubled = plan.payments.clone();
    for x in &mut doubled {
        x.amount = TokenAmount(x.amount.units() * U256::from(2));
    }
    let unapproved = PayoutPlan::new(plan.token.clone(), plan.source, plan.batch_size, doubled)?;
    let unapproved_refused = match pay_plan(&unapproved, targets()?, &PayOptions::default(), &mut Quiet) {
        Ok(_) => "PAID".into(),
        Err(e) if e.to_string().contains("is not approved") => "not approved on this chain and allocator".into(),
        Err(e) => e.to_string(),
    };
    let uc = crate::govern::commitment(&unapproved, None)?;
    let unapproved_revert = reason(transact(conn.chain(), d.agent, d.allocator, &pay_batch_call(&uc, 0)));
    let paused = transact(conn.chain(), d.guardian, d.allocator, &AIAllocator::pauseCall {})?;
    let paused_refusal = match allonet_chain::payout::check(conn.chain(), &crate::pay::reader(&d), &commitment) {
        Err(e) if e.to_string().contains("paused") => "the allocator is paused".into(),
        Err(e) => e.to_string(),
        Ok(_) => "not refused".into(),
    };
    let audit_entries = audit.verify_audit().map_err(|b| EngineError::Config(b.to_string()))?;
    conn.save()?;
    drop(conn);
    // The operator anchors the log's head on chain; the log is then checked against every anchor.
    let anchored = crate::audit::anchor(audit, &dep_path, None)?;
    let log = audit.verified_log().map_err(|b| EngineError::Config(b.to_string()))?;
    crate::audit::check_anchored(&log, &dep_path, None)?;
    Ok(MoneyPath {
        deploy_transactions: steps.len(),
        deploy_gas: steps.iter().map(|s| s.gas_used).sum(),
        deployment: d,
        root: commitment.root(),
        batches: commitment.batches.len(),
        plan,
        proposal: id,
        governance: gov,
        status,
        early_execute,
        payout,
        again_already_paid: again.report.already_paid,
        resent_revert,
        unapproved_refused,
        unapproved_revert,
        pause_gas: paused.gas_used,
        paused_refusal,
        audit_entries,
        anchored,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// The demo's steps, on data compiled into the binary

const CONTRIBUTIONS: &[u8] = include_bytes!("../../../examples/round/contributions.csv");
const PASSPORT: &[u8] = include_bytes!("../../../examples/round/passport.csv");
const RF4_BALLOTS: &[u8] = include_bytes!("../../../examples/op-rf4/rf4_ballots_export.csv");
const RF4_METRICS: &[u8] = include_bytes!("../../../examples/op-rf4/rf4_impact_metrics_by_project.csv");
const RF4_RESULTS: &[u8] = include_bytes!("../../../examples/op-rf4/rf4_results.csv");
const SNAPSHOT_VOTES: &[u8] = include_bytes!("../../../examples/snapshot-quadratic/votes.json");
const REGRANTS: &str = include_str!("../../../examples/flow/regrants.toml");
const TREASURY_POLICY: &str = include_str!("../../../examples/treasury/policy.toml");
const TREASURY_HOLDINGS: &[u8] = include_bytes!("../../../examples/treasury/holdings.csv");

fn cfg(e: impl std::fmt::Display) -> EngineError {
    EngineError::Config(e.to_string())
}

/// Step 1: the example round (10,000 USDC, cap 25%, pool filled) as classic QF, QF with Gitcoin Passport
/// weighting, and COCM; named, in that order.
pub fn demo_rounds() -> Result<Vec<(&'static str, RoundResult)>, EngineError> {
    use crate::results::{round_from_tables, MechanismChoice, RoundOptions, RoundTables};
    let contributions = "examples/round/contributions.csv";
    let passport = "examples/round/passport.csv";
    let base =
        RoundOptions { cap: Some("25%".into()), fill: true, ..RoundOptions::new(contributions, "10000", "USDC", 6) };
    let variants = [
        ("QF", RoundOptions { ..base.clone() }),
        ("QF + passport", RoundOptions { sybil_scores: Some(passport.into()), ..base.clone() }),
        ("COCM", RoundOptions { mechanism: MechanismChoice::Cocm, ..base }),
    ];
    variants
        .into_iter()
        .map(|(name, o)| {
            let tables = RoundTables {
                contributions: allonet_core::Table::from_bytes(contributions, CONTRIBUTIONS)?,
                sybil_scores: match o.sybil_scores {
                    Some(_) => Some(allonet_core::Table::from_bytes(passport, PASSPORT)?),
                    None => None,
                },
                clusters: None,
                trust: None,
            };
            Ok((name, round_from_tables(&o, &tables, &mut |_| {})?.0))
        })
        .collect()
}

/// Step 2: Optimism's Retro Funding 4 recomputed from its real ballots, and the official results.
#[derive(Debug, Clone)]
pub struct DemoRetro {
    /// The recomputed allocation (10M OP, cap 5%, min 1,000 OP).
    pub result: crate::results::RetroResult,
    /// Its result file (digests).
    pub file: crate::results::ResultFile,
    /// Official amounts (whole OP) by project id.
    pub official: std::collections::BTreeMap<String, f64>,
    /// How the two compare.
    pub comparison: crate::results::Comparison,
}

/// Step 2: RF4 metric ballots (108 badgeholders) over the impact metrics, compared with `rf4_results.csv`.
pub fn demo_retro() -> Result<DemoRetro, EngineError> {
    use crate::results::{compare, official_from_table, retro_from_tables, RetroOptions, RetroTables};
    use allonet_core::Table;
    let (ballots, metrics) =
        ("examples/op-rf4/rf4_ballots_export.csv", "examples/op-rf4/rf4_impact_metrics_by_project.csv");
    let opts = RetroOptions {
        ballots: Some(ballots.into()),
        metrics: Some(metrics.into()),
        votes: None,
        scores: None,
        budget: "10000000".into(),
        token: "OP".into(),
        decimals: 18,
        cap: "5%".into(),
        min: "1000".into(),
        quorum: 17,
        min_median: 1500.0,
        compare: None,
    };
    let tables = RetroTables::Metrics {
        ballots: Table::from_bytes(ballots, RF4_BALLOTS)?,
        metrics: Table::from_bytes(metrics, RF4_METRICS)?,
    };
    let (result, file) = retro_from_tables(&opts, tables)?;
    let official = official_from_table(&Table::from_bytes("examples/op-rf4/rf4_results.csv", RF4_RESULTS)?)?;
    let comparison = compare(&result, &official);
    Ok(DemoRetro { result, file, official, comparison })
}

/// Step 3: Snapshot's example quadratic proposal, tallied (no budget); the result and its file.
pub fn demo_vote() -> Result<(crate::results::TallyResult, crate::results::ResultFile), EngineError> {
    let name = "examples/snapshot-quadratic/votes.json";
    let opts = crate::results::TallyOptions { votes: name.into(), budget: None, token: "USD".into(), decimals: 6 };
    crate::results::tally_from_bytes(&opts, name, SNAPSHOT_VOTES)
}

/// Step 4: a funding recommendation explained.
#[derive(Debug, Clone)]
pub struct DemoModel {
    /// Past proposals the forest was trained on.
    pub rows: usize,
    /// The training report (held-out R², OOB R², interval coverage).
    pub report: allonet_ml::model::TrainReport,
    /// The interval's quantiles.
    pub interval: (f64, f64),
    /// One recommendation per new proposal, with its two largest Shapley contributions.
    pub recommendations: Vec<crate::models::Recommendation>,
    /// The model's id (digest).
    pub model_id: allonet_core::Digest,
}

/// Step 4: a random forest (default options: 100 trees, seed 42) trained on synthetic history (20 rounds of
/// 40 proposals, seed 7: impact_score, votes → amount) recommends amounts for 5 new proposals.
pub fn demo_model() -> Result<DemoModel, EngineError> {
    use allonet_core::Table;
    use allonet_ml::synth;
    let history = synth::to_csv(&synth::history(20, 40, 7));
    let proposals = synth::to_csv(&synth::proposals(5, 7));
    let spec = allonet_ml::data::ReadSpec { target: Some("amount".into()), features: None };
    let d = allonet_ml::data::dataset_from_table(&Table::from_bytes("history.csv", history.as_bytes())?, &spec)
        .map_err(cfg)?;
    let mf = crate::models::train(&d, &allonet_ml::model::TrainOptions::default(), None)?;
    let p = mf.dataset(&Table::from_bytes("proposals.csv", proposals.as_bytes())?, false).map_err(cfg)?;
    let recommendations = crate::models::recommend(&mf, &p, mf.options.interval, 2)?;
    Ok(DemoModel {
        rows: d.rows(),
        report: mf.report.clone(),
        interval: mf.options.interval,
        recommendations,
        model_id: mf.id(),
    })
}

/// One node of step 5: what the round paid it and what it kept after re-granting (base units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLine {
    /// The node.
    pub node: String,
    /// Paid to it by the round.
    pub paid: u128,
    /// Kept after propagation.
    pub kept: u128,
}

/// Step 5: the QF round's payouts propagated through `examples/flow/regrants.toml`.
#[derive(Debug, Clone)]
pub struct DemoFlow {
    /// The round's token.
    pub token: allonet_core::Token,
    /// Every node that received something, in the network's order.
    pub lines: Vec<FlowLine>,
    /// Σ injected.
    pub injected: u128,
    /// Σ kept.
    pub kept: u128,
    /// Σ still in flight.
    pub in_flight: u128,
    /// Hops run.
    pub hops: usize,
}

/// Step 5: each project's QF match injected at its node, propagated exactly to a fixed point (at most 10,000
/// hops).
pub fn demo_flow(qf: &RoundResult) -> Result<DemoFlow, EngineError> {
    let read = |p: &str| -> Result<allonet_core::Table, allonet_core::InputError> {
        if p.ends_with("contributions.csv") {
            allonet_core::Table::from_bytes("examples/round/contributions.csv", CONTRIBUTIONS)
        } else {
            Err(allonet_core::InputError::file(p, "not bundled with the demo"))
        }
    };
    let model = allonet_flow::model::parse_model("examples/flow/regrants.toml", REGRANTS, &read).map_err(cfg)?;
    let net = &model.network;
    let idx = net.index();
    let inj: Vec<(u32, u128)> = qf
        .lines
        .iter()
        .filter(|l| !l.matched.is_zero())
        .filter_map(|l| idx.get(l.project.as_str()).map(|&v| (v, l.matched.units().to::<u128>())))
        .collect();
    let p = crate::flows::propagate_network(net, &inj, 10_000, false);
    let lines = (0..net.nodes.len())
        .filter(|&v| p.received[v] > 0)
        .map(|v| FlowLine {
            node: net.nodes[v].id.clone(),
            paid: inj.iter().filter(|i| i.0 as usize == v).map(|i| i.1).sum(),
            kept: p.kept[v],
        })
        .collect();
    let t = crate::flows::totals(&p);
    Ok(DemoFlow {
        token: qf.config.token.clone(),
        lines,
        injected: t.injected,
        kept: t.kept,
        in_flight: t.in_flight,
        hops: p.hops,
    })
}

/// Step 6: off-chain governance approving the QF plan.
#[derive(Debug, Clone)]
pub struct DemoGovernance {
    /// The plan approved: the QF result's output digest.
    pub plan: alloy_primitives::B256,
    /// Votes for, against and abstaining (√-weighted).
    pub for_votes: u128,
    /// Against.
    pub against: u128,
    /// Abstaining.
    pub abstain: u128,
    /// The proposal's state while voting.
    pub while_voting: ProposalState,
    /// Its state when voting closed.
    pub after_voting: ProposalState,
    /// Why executing a day early was refused.
    pub early_refusal: String,
    /// Its final state (executed).
    pub finally: ProposalState,
    /// Plans the registry holds as approved.
    pub approved_plans: usize,
    /// Entries of the audit chain, verified.
    pub audit_entries: u64,
    /// The governance clock at the end (the money path's records are stamped with it).
    pub now: u64,
}

/// Step 6: a DAO of 40 generated members (balances 1–200 tokens, quadratic power, quorum 20%, 1-day delay,
/// 3-day vote, 2-day timelock) in a new SQLite store in `dir` (emptied first); one proposal approves the QF
/// plan, 32 members vote by EIP-712 signature, it is queued, executing a day early is refused, then it executes.
/// Returns the figures and the store, whose audit log the money path goes on appending to.
pub fn demo_governance(qf: &RoundResult, dir: &Path) -> Result<(DemoGovernance, Store), EngineError> {
    use crate::offchain::{member_key, signed_vote, submit_act, NewDao};
    use allonet_governance::governor::{proposal_id, Act, Action as GovAction, GovParams};
    use allonet_governance::power::{PowerConfig, Strategy};
    use allonet_governance::{Clock, ManualClock};
    let io = |e| EngineError::Io { path: dir.display().to_string(), cause: e };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(io)?;
    let clock = ManualClock::at(1_767_225_600); // 2026-01-01
    let members: Vec<_> = (0..40).map(|i| member_key(2026, i)).collect();
    let operator = member_key(2026, u64::MAX);
    let e18 = 1_000_000_000_000_000_000u128;
    let holders = members.iter().enumerate().map(|(i, k)| (k.address(), (1 + (i as u128 * 37) % 200) * e18)).collect();
    let day = 86_400;
    let params = GovParams {
        voting_delay: day,
        voting_period: 3 * day,
        proposal_threshold: 0,
        quorum_percent: 20,
        timelock_delay: 2 * day,
        grace_period: 14 * day,
    };
    let power = PowerConfig { strategy: Strategy::QuadraticSqrt, sybil: None };
    let guardian = members[39].address();
    // a rehearsal: its clock is the demo's, five simulated days in a moment
    let dao = NewDao {
        params,
        power,
        guardian,
        holders,
        chain_id: 1,
        rehearsal: true,
        salt: Some(alloy_primitives::B256::with_last_byte(26)),
    };
    let mut store = crate::offchain::create(&dir.join("gov.db"), dao, &operator, Some(clock.now()))?;
    let plan = qf.output_digest.0;
    let actions = vec![GovAction::ApprovePayoutPlan { digest: plan }];
    let description = "Pay the demo round's QF matching (10,000 USDC) as computed";
    clock.advance(60);
    let propose = Act::Propose { actions: actions.clone(), description: description.into(), options: vec![] };
    submit_act(&mut store, &members[0], propose, Some(clock.now()))?;
    let id = proposal_id(store.governor().dao, members[0].address(), &actions, description, &[]);
    clock.advance(day + 60);
    // 32 of 40 vote: every fifth against, every eleventh (not fifth) abstains, the rest for
    let support = |i: usize| {
        if i % 5 == 4 {
            0
        } else if i % 11 == 10 {
            2
        } else {
            1
        }
    };
    let signed = members
        .iter()
        .enumerate()
        .take(32)
        .map(|(i, k)| signed_vote(store.governor(), k, id, support(i), 0, clock.now()))
        .collect::<Result<Vec<_>, _>>()?;
    store.submit_batch(&signed).map_err(cfg)?;
    let state = |s: &Store, now: u64| s.governor().state(id, now).map_err(cfg);
    let p = &store.governor().proposals[&id];
    let (for_votes, against, abstain) = (p.for_votes, p.against, p.abstain);
    let while_voting = state(&store, clock.now())?;
    clock.advance(3 * day);
    let after_voting = state(&store, clock.now())?;
    // anyone may queue and execute; the acts are still signed (here by the proposer)
    submit_act(&mut store, &members[0], Act::Queue { proposal: id }, Some(clock.now()))?;
    let early = submit_act(&mut store, &members[0], Act::Execute { proposal: id }, Some(clock.now() + day));
    clock.advance(2 * day);
    submit_act(&mut store, &members[0], Act::Execute { proposal: id }, Some(clock.now()))?;
    let finally = state(&store, clock.now())?;
    if finally != ProposalState::Executed {
        return Err(cfg(format!("the demo proposal ended {finally:?}, not executed")));
    }
    let audit_entries = store.verify_audit().map_err(|b| cfg(b.to_string()))?;
    let g = DemoGovernance {
        plan,
        for_votes,
        against,
        abstain,
        while_voting,
        after_voting,
        early_refusal: early.err().map(|e| e.to_string()).unwrap_or_default(),
        finally,
        approved_plans: store.governor().registry.approved_plans.len(),
        audit_entries,
        now: clock.now(),
    };
    Ok((g, store))
}

/// Step 7: the treasury after the payout.
#[derive(Debug, Clone)]
pub struct DemoTreasury {
    /// The check: holdings, spending, breaches, runway.
    pub check: crate::treasury::PayoutCheck,
    /// The policy's runway floor, months.
    pub runway_floor_months: f64,
}

/// Step 7: `examples/treasury` checked after paying the round's 10,000 USDC: policy breaches and the runway by
/// 100,000 seeded paths over 60 months (drift 0, monthly σ 16%).
pub fn demo_treasury() -> Result<DemoTreasury, EngineError> {
    use crate::treasury::{check_payout, holdings_from_table, policy_from_toml, RunwayOptions};
    let policy = policy_from_toml("examples/treasury/policy.toml", TREASURY_POLICY)?;
    let h =
        holdings_from_table(&allonet_core::Table::from_bytes("examples/treasury/holdings.csv", TREASURY_HOLDINGS)?)?;
    let o = RunwayOptions { months: 60, paths: 100_000, seed: 42, mu: Some(0.0), sigma: Some(0.16) };
    let check = check_payout(&policy, &h, "USDC", 10_000.0, None, &o)?;
    Ok(DemoTreasury { check, runway_floor_months: policy.runway_floor_months })
}

#[cfg(test)]
mod tests {
    use allonet_governance::governor::ProposalState;

    #[test]
    fn demo_steps_reproduce_rf4_conserve_the_round_and_approve_its_plan() {
        let rounds = super::demo_rounds().unwrap();
        assert_eq!(rounds.iter().map(|r| r.0).collect::<Vec<_>>(), ["QF", "QF + passport", "COCM"]);
        let qf = &rounds[0].1;
        let f = super::demo_flow(qf).unwrap();
        assert_eq!((f.injected, f.kept + f.in_flight), (10_000_000_000, 10_000_000_000));
        let r = super::demo_retro().unwrap();
        assert_eq!(r.comparison.within_one, r.result.lines.len());
        let dir = std::env::temp_dir().join(format!("allonet-rehearsal-test-{}", std::process::id()));
        let (g, store) = super::demo_governance(qf, &dir).unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((g.after_voting, g.finally), (ProposalState::Succeeded, ProposalState::Executed));
        assert_eq!((g.plan, g.approved_plans, g.audit_entries), (qf.output_digest.0, 1, 36));
        assert!(g.early_refusal.contains("timelock"), "{}", g.early_refusal);
    }
}
