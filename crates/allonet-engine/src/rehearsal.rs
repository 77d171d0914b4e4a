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
    pub step: &'static str,
    pub who: &'static str,
    pub gas: u64,
    /// The proposal's state after it.
    pub state: &'static str,
}

/// What the rehearsal did.
#[derive(Debug, Clone)]
pub struct MoneyPath {
    pub deployment: Deployment,
    pub deploy_transactions: usize,
    pub deploy_gas: u64,
    pub plan: PayoutPlan,
    pub root: alloy_primitives::B256,
    pub batches: usize,
    pub proposal: U256,
    pub governance: Vec<GovStep>,
    pub status: ProposalStatus,
    /// Why executing before the timelock ended was refused.
    pub early_execute: String,
    pub payout: ChainPayout,
    /// The same plan again: batches already paid (nothing sent), and the revert of a batch resent by hand.
    pub again_already_paid: usize,
    pub resent_revert: String,
    /// An unapproved plan (every amount doubled): the engine's refusal and the contract's revert.
    pub unapproved_refused: String,
    pub unapproved_revert: String,
    pub pause_gas: u64,
    /// The check's refusal after the guardian paused.
    pub paused_refusal: String,
    /// Audit entries after the two records this rehearsal appends.
    pub audit_entries: u64,
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
    let address_of = |p: &str| {
        Some(Address(alloy_primitives::Address::from_word(keccak256(format!("allonet demo recipient {p}")))))
    };
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
    let audit_entries = audit
        .verify_audit()
        .map_err(|b| EngineError::Config(format!("the audit log is broken at entry #{}: {}", b.seq, b.reason)))?;
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
    })
}
