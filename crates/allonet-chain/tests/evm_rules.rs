//! Every rule of the contracts, on the embedded EVM (revm): the real bytecode compiled by solc-js. The attacks
//! are sent straight to the contract, past every Rust check, so what they prove is the contract's own.

use allonet_chain::contracts::{
    deploy_code, revert_name, AIAllocator, AlloTimelock, AlloToken, PayToken, ReentrantReceiver, ReentrantToken,
};
use allonet_chain::deploy::{deploy, deploy_resumable, verify_roles, Asset, DeployConfig, Deployment, Journal};
use allonet_chain::governor::{self, Action, Proposal};
use allonet_chain::payout::{
    approve_call, check, execute, pay_batch_call, queue_call, read_plan, reconcile, PayoutError, PayoutOptions, Target,
};
use allonet_chain::plan::{Commitment, Pay};
use allonet_chain::{read, transact, Chain, ChainError, Embedded, Receipt, Tx};
use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolEvent};

const OWNER: Address = Address::repeat_byte(0x0a);
const AGENT: Address = Address::repeat_byte(0x0b);
const GUARDIAN: Address = Address::repeat_byte(0x0c);
const STRANGER: Address = Address::repeat_byte(0x0d);
const DAY: u64 = 86_400;

fn recipient(i: u64) -> Address {
    Address::from_word(keccak256(i.to_be_bytes()))
}

/// Three governance token holders with keys (one votes by signature).
fn voters() -> Vec<PrivateKeySigner> {
    (1u8..=3).map(|i| PrivateKeySigner::from_bytes(&B256::repeat_byte(0x40 + i)).unwrap()).collect()
}

fn fund_all(c: &mut Embedded) {
    for a in [OWNER, AGENT, GUARDIAN, STRANGER].into_iter().chain(voters().iter().map(|v| v.address())) {
        c.fund(a, U256::from(10u64).pow(U256::from(24)));
    }
}

fn chain() -> Embedded {
    let mut c = Embedded::new();
    fund_all(&mut c);
    c
}

fn config(asset: Asset, fund: u64) -> DeployConfig {
    DeployConfig {
        deployer: OWNER,
        agent: AGENT,
        guardian: GUARDIAN,
        asset,
        epoch_length: DAY,
        holders: voters()
            .iter()
            .zip([400_000u64, 350_000, 250_000])
            .map(|(v, n)| (v.address(), U256::from(n)))
            .collect(),
        voting_delay: 1,
        voting_period: 20,
        quorum_percent: 4,
        timelock_delay: 3_600,
        fund: U256::from(fund),
        hand_to_timelock: false,
    }
}

fn usdc() -> Asset {
    Asset::NewToken { symbol: "USDC".into(), decimals: 6, supply: U256::from(10u64).pow(U256::from(15)) }
}

/// A deployment whose allocator the test's OWNER account owns directly (the rules, without a vote each time).
fn setup() -> (Embedded, Deployment) {
    let mut c = chain();
    let (d, _) = deploy(&mut c, &config(usdc(), 1_000_000_000)).unwrap();
    (c, d)
}

fn reason(r: Result<Receipt, ChainError>) -> String {
    match r {
        Ok(_) => panic!("expected a revert"),
        Err(e) => e.revert_reason().unwrap_or_else(|| panic!("not a revert: {e}")).to_string(),
    }
}

fn balance(c: &mut Embedded, d: &Deployment, who: Address) -> U256 {
    allonet_chain::payout::asset_balance(c, d.asset, who).unwrap()
}

fn pays(first: u64, n: u64) -> Vec<Pay> {
    (0..n).map(|i| Pay { recipient: recipient(first + i), amount: U256::from(100 + i) }).collect()
}

fn approve(c: &mut Embedded, d: &Deployment, plan: &Commitment) -> Receipt {
    transact(c, OWNER, d.allocator, &approve_call(plan)).unwrap()
}

fn pay_batch(
    c: &mut Embedded,
    d: &Deployment,
    from: Address,
    plan: &Commitment,
    i: usize,
) -> Result<Receipt, ChainError> {
    transact(c, from, d.allocator, &pay_batch_call(plan, i))
}

fn target(d: &Deployment, payer: Address) -> Target {
    Target { allocator: d.allocator, payer }
}

fn plan_id(c: &mut Embedded, d: &Deployment, plan: &Commitment) -> B256 {
    plan.plan_id(c.chain_id(), d.allocator, d.asset)
}

/// Governance (here the OWNER account) grants the agent standing authority.
fn standing(c: &mut Embedded, d: &Deployment, epoch_cap: u64, recipient_cap: u64, delay: u64, registry: &[Address]) {
    let a = d.allocator;
    transact(
        c,
        OWNER,
        a,
        &AIAllocator::setCapsCall { epochCap_: U256::from(epoch_cap), recipientCap_: U256::from(recipient_cap) },
    )
    .unwrap();
    transact(c, OWNER, a, &AIAllocator::setVetoDelayCall { vetoDelay_: delay }).unwrap();
    transact(c, OWNER, a, &AIAllocator::setRecipientsCall { recipients: registry.to_vec(), allowed: true }).unwrap();
}

#[test]
fn reference_scenario_owner_allocates_1000() {
    let mut c = chain();
    let (d, _) = deploy(&mut c, &config(Asset::Native, 1000)).unwrap();
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::ownerCall {}).unwrap(), OWNER);
    let r = recipient(1);
    let receipt = transact(
        &mut c,
        OWNER,
        d.allocator,
        &AIAllocator::allocateFundsCall { recipient: r, amount: U256::from(1000) },
    )
    .unwrap();
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::allocatedFundsCall(r)).unwrap(), U256::from(1000));
    let events = receipt.events::<AIAllocator::FundsAllocated>();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].recipient, events[0].amount), (r, U256::from(1000)));
    assert_eq!(c.balance(r).unwrap(), U256::from(1000), "native payout arrived");
    assert_eq!(c.balance(d.allocator).unwrap(), U256::ZERO);
    assert_eq!(AIAllocator::FundsAllocated::SIGNATURE, "FundsAllocated(address,uint256)");
}

#[test]
fn the_agent_key_and_strangers_change_nothing() {
    let (mut c, d) = setup();
    let a = d.allocator;
    let plan = Commitment::new(&pays(0, 3), 2);
    for from in [AGENT, STRANGER, GUARDIAN] {
        let calls: Vec<(&str, Vec<u8>)> = vec![
            ("setCaps", AIAllocator::setCapsCall { epochCap_: U256::MAX, recipientCap_: U256::MAX }.abi_encode()),
            ("setRecipients", AIAllocator::setRecipientsCall { recipients: vec![from], allowed: true }.abi_encode()),
            ("setVetoDelay", AIAllocator::setVetoDelayCall { vetoDelay_: 0 }.abi_encode()),
            ("setAgent", AIAllocator::setAgentCall { agent_: from }.abi_encode()),
            ("setGuardian", AIAllocator::setGuardianCall { guardian_: from }.abi_encode()),
            ("approvePlan", approve_call(&plan).abi_encode()),
            ("unpause", AIAllocator::unpauseCall {}.abi_encode()),
            ("allocateFunds", AIAllocator::allocateFundsCall { recipient: from, amount: U256::from(1) }.abi_encode()),
        ];
        for (name, data) in calls {
            let r = c.send(Tx { from, to: Some(a), data: data.into(), ..Default::default() });
            assert_eq!(
                reason(r),
                format!("OwnableUnauthorizedAccount {{ account: {from:?} }}"),
                "{from} calling {name}"
            );
        }
    }
    assert_eq!(revert_name(&reason(transact(&mut c, STRANGER, a, &AIAllocator::pauseCall {}))), "NotGuardian");
    assert_eq!(revert_name(&reason(transact(&mut c, STRANGER, a, &queue_call(&plan)))), "NotAgent");
    assert_eq!(revert_name(&reason(transact(&mut c, GUARDIAN, a, &queue_call(&plan)))), "NotAgent");
    approve(&mut c, &d, &plan);
    assert_eq!(revert_name(&reason(pay_batch(&mut c, &d, STRANGER, &plan, 0))), "NotPayer");
    assert_eq!(revert_name(&reason(pay_batch(&mut c, &d, GUARDIAN, &plan, 0))), "NotPayer");
    let id = plan_id(&mut c, &d, &plan);
    assert_eq!(revert_name(&reason(transact(&mut c, AGENT, a, &AIAllocator::cancelPlanCall { id }))), "NotGuardian");
    // Nothing changed: caps at 0, the registry empty, the agent and guardian as deployed.
    assert_eq!(read(&mut c, a, &AIAllocator::epochCapCall {}).unwrap(), U256::ZERO);
    assert_eq!(read(&mut c, a, &AIAllocator::recipientCapCall {}).unwrap(), U256::ZERO);
    assert!(!read(&mut c, a, &AIAllocator::isRecipientCall { r: AGENT }).unwrap());
    assert_eq!(read(&mut c, a, &AIAllocator::agentCall {}).unwrap(), AGENT);
    assert_eq!(read(&mut c, a, &AIAllocator::guardianCall {}).unwrap(), GUARDIAN);
}

#[test]
fn an_unapproved_plan_pays_nothing_and_is_refused_before_sending() {
    let (mut c, d) = setup();
    let plan = Commitment::new(&pays(0, 2), 200);
    let id = plan_id(&mut c, &d, &plan);
    assert_eq!(reason(pay_batch(&mut c, &d, AGENT, &plan, 0)), format!("PlanNotPayable {{ planId: {id}, status: 0 }}"));
    let block = c.block_number().unwrap();
    let before = balance(&mut c, &d, d.allocator);
    let err = execute(&mut c, &target(&d, AGENT), &plan, &PayoutOptions::default(), &mut |_, _| {}).unwrap_err();
    match err {
        PayoutError::Refused(p) => assert!(p.iter().any(|m| m.contains("is not approved on chain 31337")), "{p:?}"),
        e => panic!("{e}"),
    }
    assert_eq!(c.block_number().unwrap(), block, "nothing was sent");
    assert_eq!(balance(&mut c, &d, d.allocator), before);
    // The contract computes the same plan id as Rust.
    let onchain = read(
        &mut c,
        d.allocator,
        &AIAllocator::planIdCall { root: plan.root(), total: plan.total, batches: U256::from(plan.batches.len()) },
    )
    .unwrap();
    assert_eq!(onchain, id);
}

#[test]
fn an_approved_plan_pays_only_its_exact_pairs_each_batch_once() {
    let (mut c, d) = setup();
    let list = pays(0, 10);
    let plan = Commitment::new(&list, 4);
    assert_eq!(plan.batches.len(), 3);
    let r = approve(&mut c, &d, &plan);
    let id = plan_id(&mut c, &d, &plan);
    assert_eq!(r.events::<AIAllocator::PlanApproved>()[0].planId, id);
    let before = balance(&mut c, &d, d.allocator);
    let tamper = |f: &dyn Fn(&mut AIAllocator::payBatchCall)| {
        let mut call = pay_batch_call(&plan, 1);
        f(&mut call);
        call
    };
    let attacks: Vec<(&str, AIAllocator::payBatchCall)> = vec![
        ("an amount raised by one unit", tamper(&|x| x.amounts[0] += U256::from(1))),
        ("a recipient replaced", tamper(&|x| x.recipients[2] = STRANGER)),
        (
            "an extra line",
            tamper(&|x| {
                x.recipients.push(STRANGER);
                x.amounts.push(U256::from(1));
            }),
        ),
        (
            "a line dropped",
            tamper(&|x| {
                x.recipients.pop();
                x.amounts.pop();
            }),
        ),
        ("two amounts swapped", tamper(&|x| x.amounts.swap(0, 1))),
        ("batch 1 sent as batch 0", tamper(&|x| x.batchIndex = U256::ZERO)),
        ("a forged proof", tamper(&|x| x.proof[0] = B256::repeat_byte(7))),
    ];
    for (what, call) in attacks {
        let r = transact(&mut c, AGENT, d.allocator, &call);
        assert_eq!(revert_name(&reason(r)), "InvalidProof", "{what}");
    }
    let beyond = tamper(&|x| x.batchIndex = U256::from(3));
    assert_eq!(revert_name(&reason(transact(&mut c, AGENT, d.allocator, &beyond))), "BatchOutOfRange");
    let other_total = tamper(&|x| x.total += U256::from(1));
    assert_eq!(revert_name(&reason(transact(&mut c, AGENT, d.allocator, &other_total))), "PlanNotPayable");
    assert_eq!(balance(&mut c, &d, d.allocator), before, "no attack moved a unit");

    let r = pay_batch(&mut c, &d, AGENT, &plan, 1).unwrap();
    let ev = r.events::<AIAllocator::BatchPaid>();
    assert_eq!((ev[0].planId, ev[0].batchIndex, ev[0].count), (id, U256::from(1), U256::from(4)));
    assert_eq!(r.events::<AIAllocator::FundsAllocated>().len(), 4);
    assert_eq!(
        reason(pay_batch(&mut c, &d, AGENT, &plan, 1)),
        format!("BatchAlreadyPaid {{ planId: {id}, batchIndex: 1 }}")
    );
    pay_batch(&mut c, &d, AGENT, &plan, 0).unwrap();
    pay_batch(&mut c, &d, AGENT, &plan, 2).unwrap();
    for p in &list {
        assert_eq!(balance(&mut c, &d, p.recipient), p.amount, "paid exactly once");
        assert_eq!(read(&mut c, d.allocator, &AIAllocator::allocatedFundsCall(p.recipient)).unwrap(), p.amount);
    }
    let onchain = read_plan(&mut c, d.allocator, id).unwrap();
    assert_eq!((onchain.status, onchain.paid, onchain.total), ("approved", plan.total, plan.total));
    assert_eq!(balance(&mut c, &d, d.allocator), before - plan.total);
}

#[test]
fn an_approval_whose_total_is_short_never_pays_beyond_it() {
    let (mut c, d) = setup();
    let plan = Commitment::new(&pays(0, 6), 3);
    // Governance approves the same tree with a total one unit short of its pairs' sum.
    let short = U256::from(1);
    let call = AIAllocator::approvePlanCall { root: plan.root(), total: plan.total - short, batches: U256::from(2) };
    transact(&mut c, OWNER, d.allocator, &call).unwrap();
    let with_total = |i: usize| {
        let mut x = pay_batch_call(&plan, i);
        x.total = plan.total - short;
        x
    };
    transact(&mut c, AGENT, d.allocator, &with_total(0)).unwrap();
    let r = transact(&mut c, AGENT, d.allocator, &with_total(1));
    assert_eq!(revert_name(&reason(r)), "PlanTotalExceeded");
    for p in &plan.batches[1] {
        assert_eq!(balance(&mut c, &d, p.recipient), U256::ZERO);
    }
}

#[test]
fn an_approval_binds_the_chain_and_the_allocator() {
    let list = pays(0, 4);
    let plan = Commitment::new(&list, 2);
    // Chain A (31337) and chain B (10) with identical deployments: same deployer, same nonces, same addresses.
    let (mut a, da) = setup();
    let mut b = Embedded::with_chain_id(10);
    fund_all(&mut b);
    let (db, _) = deploy(&mut b, &config(usdc(), 1_000_000_000)).unwrap();
    assert_eq!(da.allocator, db.allocator, "same addresses on both chains");
    approve(&mut a, &da, &plan);
    let on_b = pay_batch(&mut b, &db, AGENT, &plan, 0);
    assert_eq!(revert_name(&reason(on_b)), "PlanNotPayable", "approved on chain A, refused on chain B");
    assert_ne!(plan_id(&mut a, &da, &plan), plan.plan_id(10, db.allocator, db.asset));
    // A second allocator on chain A does not honour the first one's approval either.
    let (d2, _) = deploy(&mut a, &config(usdc(), 1_000_000_000)).unwrap();
    assert_ne!(d2.allocator, da.allocator);
    assert_eq!(revert_name(&reason(pay_batch(&mut a, &d2, AGENT, &plan, 0))), "PlanNotPayable");
    let err = check(&mut a, &target(&d2, AGENT), &plan).unwrap_err().to_string();
    assert!(err.contains("is not approved"), "{err}");
    // Where it was approved, it pays.
    pay_batch(&mut a, &da, AGENT, &plan, 0).unwrap();
    assert_eq!(balance(&mut a, &da, list[0].recipient), list[0].amount);
    assert_eq!(balance(&mut b, &db, list[0].recipient), U256::ZERO);
}

#[test]
fn queued_plans_keep_to_the_caps_the_registry_and_the_veto_window() {
    let (mut c, d) = setup();
    let a = d.allocator;
    let reg: Vec<Address> = (0..4).map(recipient).collect();
    let plan = Commitment::new(&pays(0, 3), 2); // 100 + 101 + 102 = 303
                                                // Caps and veto delay start at 0: the agent cannot queue anything.
    assert_eq!(revert_name(&reason(transact(&mut c, AGENT, a, &queue_call(&plan)))), "VetoDelayTooShort");
    transact(&mut c, OWNER, a, &AIAllocator::setVetoDelayCall { vetoDelay_: 3_600 }).unwrap();
    assert_eq!(revert_name(&reason(transact(&mut c, AGENT, a, &queue_call(&plan)))), "EpochCapExceeded");
    standing(&mut c, &d, 1_000, 150, 3_600, &reg);
    let r = transact(&mut c, AGENT, a, &queue_call(&plan)).unwrap();
    let id = plan_id(&mut c, &d, &plan);
    let q = &r.events::<AIAllocator::PlanQueued>()[0];
    assert_eq!(q.planId, id);
    assert_eq!(read(&mut c, a, &AIAllocator::remainingEpochAllowanceCall {}).unwrap(), U256::from(1_000 - 303));
    // In the veto window it cannot pay, and the Rust check says when it can.
    assert_eq!(revert_name(&reason(pay_batch(&mut c, &d, AGENT, &plan, 0))), "PlanNotMature");
    let err = check(&mut c, &target(&d, AGENT), &plan).unwrap_err().to_string();
    assert!(err.contains("veto window"), "{err}");
    c.warp(3_600);
    pay_batch(&mut c, &d, AGENT, &plan, 0).unwrap();
    pay_batch(&mut c, &d, AGENT, &plan, 1).unwrap();
    assert_eq!(balance(&mut c, &d, recipient(2)), U256::from(102));

    // A recipient outside the registry reverts even after the delay.
    let outsider = Commitment::new(&[Pay { recipient: STRANGER, amount: U256::from(5) }], 1);
    transact(&mut c, AGENT, a, &queue_call(&outsider)).unwrap();
    c.warp(3_600);
    assert_eq!(
        reason(pay_batch(&mut c, &d, AGENT, &outsider, 0)),
        format!("NotInRegistry {{ recipient: {STRANGER:?} }}")
    );
    assert!(check(&mut c, &target(&d, AGENT), &outsider)
        .unwrap_err()
        .to_string()
        .contains("not in the recipient registry"));
    // The per-recipient cap (150 an epoch) binds across plans: recipient 0 got 100 already this epoch.
    let again = Commitment::new(&[Pay { recipient: recipient(0), amount: U256::from(51) }], 1);
    transact(&mut c, AGENT, a, &queue_call(&again)).unwrap();
    c.warp(3_600);
    assert_eq!(revert_name(&reason(pay_batch(&mut c, &d, AGENT, &again, 0))), "RecipientCapExceeded");
    // The epoch cap counts what was queued: 303 + 5 + 51 of 1,000; 642 more does not fit.
    let big = Commitment::new(&[Pay { recipient: recipient(3), amount: U256::from(642) }], 1);
    assert_eq!(revert_name(&reason(transact(&mut c, AGENT, a, &queue_call(&big)))), "EpochCapExceeded");

    // The guardian cancels a queued plan in its window; it can then never pay.
    let vetoed = Commitment::new(&[Pay { recipient: recipient(3), amount: U256::from(10) }], 1);
    transact(&mut c, AGENT, a, &queue_call(&vetoed)).unwrap();
    let vid = plan_id(&mut c, &d, &vetoed);
    let r = transact(&mut c, GUARDIAN, a, &AIAllocator::cancelPlanCall { id: vid }).unwrap();
    assert_eq!(r.events::<AIAllocator::PlanCancelled>()[0].by, GUARDIAN);
    c.warp(3_600);
    assert_eq!(
        reason(pay_batch(&mut c, &d, AGENT, &vetoed, 0)),
        format!("PlanNotPayable {{ planId: {vid}, status: 3 }}")
    );
    assert!(check(&mut c, &target(&d, AGENT), &vetoed).unwrap_err().to_string().contains("cancelled"));
    assert_eq!(revert_name(&reason(transact(&mut c, AGENT, a, &queue_call(&vetoed)))), "PlanExists");
    // The guardian cannot cancel what governance approved; governance can.
    let gov_plan = Commitment::new(&pays(10, 2), 2);
    approve(&mut c, &d, &gov_plan);
    let gid = plan_id(&mut c, &d, &gov_plan);
    assert_eq!(
        revert_name(&reason(transact(&mut c, GUARDIAN, a, &AIAllocator::cancelPlanCall { id: gid }))),
        "NotCancellable"
    );
    transact(&mut c, OWNER, a, &AIAllocator::cancelPlanCall { id: gid }).unwrap();
    assert_eq!(revert_name(&reason(pay_batch(&mut c, &d, AGENT, &gov_plan, 0))), "PlanNotPayable");
    // A new epoch gives the agent its allowance again.
    c.warp(DAY);
    assert_eq!(read(&mut c, a, &AIAllocator::remainingEpochAllowanceCall {}).unwrap(), U256::from(1_000));
}

#[test]
fn paused_means_nothing_moves() {
    let (mut c, d) = setup();
    let a = d.allocator;
    let plan = Commitment::new(&pays(0, 2), 2);
    approve(&mut c, &d, &plan);
    standing(&mut c, &d, 1_000, 1_000, 3_600, &[recipient(50)]);
    transact(&mut c, GUARDIAN, a, &AIAllocator::pauseCall {}).unwrap();
    let before = balance(&mut c, &d, a);
    assert_eq!(reason(pay_batch(&mut c, &d, AGENT, &plan, 0)), "EnforcedPause");
    assert_eq!(reason(pay_batch(&mut c, &d, OWNER, &plan, 0)), "EnforcedPause");
    let q = Commitment::new(&[Pay { recipient: recipient(50), amount: U256::from(1) }], 1);
    assert_eq!(reason(transact(&mut c, AGENT, a, &queue_call(&q))), "EnforcedPause");
    let direct = AIAllocator::allocateFundsCall { recipient: recipient(1), amount: U256::from(1) };
    assert_eq!(reason(transact(&mut c, OWNER, a, &direct)), "EnforcedPause");
    assert!(check(&mut c, &target(&d, AGENT), &plan).unwrap_err().to_string().contains("paused"));
    assert_eq!(balance(&mut c, &d, a), before);
    // The guardian cannot lift it; governance (the owner) can.
    let unpause = transact(&mut c, GUARDIAN, a, &AIAllocator::unpauseCall {});
    assert_eq!(revert_name(&reason(unpause)), "OwnableUnauthorizedAccount");
    transact(&mut c, OWNER, a, &AIAllocator::unpauseCall {}).unwrap();
    pay_batch(&mut c, &d, AGENT, &plan, 0).unwrap();
}

#[test]
fn a_reentrant_token_cannot_double_pay() {
    let mut c = chain();
    let token = c
        .send(Tx {
            from: OWNER,
            data: deploy_code(
                &ReentrantToken::BYTECODE,
                &ReentrantToken::constructorCall { holder: OWNER, supply: U256::from(1_000_000) },
            ),
            ..Default::default()
        })
        .unwrap()
        .contract_address
        .unwrap();
    let (d, _) = deploy(&mut c, &config(Asset::Erc20(token), 100_000)).unwrap();
    let attacker = recipient(666);
    let plan = Commitment::new(
        &[
            Pay { recipient: attacker, amount: U256::from(500) },
            Pay { recipient: recipient(667), amount: U256::from(500) },
        ],
        1,
    );
    approve(&mut c, &d, &plan);
    // Make the token itself the agent, so only the reentrancy lock stands in its way: paying batch 0 calls the
    // token, whose hook pays batch 1 from inside.
    transact(&mut c, OWNER, d.allocator, &AIAllocator::setAgentCall { agent_: token }).unwrap();
    let inner = pay_batch_call(&plan, 1).abi_encode();
    transact(&mut c, OWNER, token, &ReentrantToken::armCall { target_: d.allocator, data_: inner.into() }).unwrap();
    let before = balance(&mut c, &d, d.allocator);
    assert_eq!(reason(pay_batch(&mut c, &d, OWNER, &plan, 0)), "ReentrancyGuardReentrantCall");
    assert_eq!(balance(&mut c, &d, attacker), U256::ZERO);
    assert_eq!(balance(&mut c, &d, d.allocator), before);
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::allocatedFundsCall(attacker)).unwrap(), U256::ZERO);
}

#[test]
fn a_reentrant_native_receiver_cannot_double_pay() {
    let mut c = chain();
    let (d, _) = deploy(&mut c, &config(Asset::Native, 100_000)).unwrap();
    let attacker = c
        .send(Tx { from: OWNER, data: ReentrantReceiver::BYTECODE.clone(), ..Default::default() })
        .unwrap()
        .contract_address
        .unwrap();
    // A compromised agent contract is a recipient of an approved plan and re-enters from its receive hook.
    transact(&mut c, OWNER, d.allocator, &AIAllocator::setAgentCall { agent_: attacker }).unwrap();
    let plan = Commitment::new(
        &[Pay { recipient: attacker, amount: U256::from(300) }, Pay { recipient: attacker, amount: U256::from(700) }],
        1,
    );
    approve(&mut c, &d, &plan);
    // Control: armed with a harmless call, the same payment to the same contract goes through.
    let harmless = AIAllocator::pausedCall {}.abi_encode();
    transact(&mut c, OWNER, attacker, &ReentrantReceiver::armCall { target_: d.allocator, data_: harmless.into() })
        .unwrap();
    let first = pay_batch_call(&plan, 0).abi_encode();
    transact(&mut c, OWNER, attacker, &ReentrantReceiver::callCall { target_: d.allocator, data_: first.into() })
        .unwrap();
    assert_eq!(c.balance(attacker).unwrap(), U256::from(300));
    // Armed to re-enter with the second batch while receiving it: the lock reverts the inner call, the receive
    // hook fails, the whole payment reverts.
    let again = pay_batch_call(&plan, 1).abi_encode();
    transact(
        &mut c,
        OWNER,
        attacker,
        &ReentrantReceiver::armCall { target_: d.allocator, data_: again.clone().into() },
    )
    .unwrap();
    let go =
        transact(&mut c, OWNER, attacker, &ReentrantReceiver::callCall { target_: d.allocator, data_: again.into() });
    assert_eq!(reason(go), format!("NativeTransferFailed {{ recipient: {attacker:?} }}"));
    assert_eq!(c.balance(attacker).unwrap(), U256::from(300), "paid once, by the control payment");
    assert_eq!(c.balance(d.allocator).unwrap(), U256::from(100_000 - 300));
}

/// Deploy with the timelock owning the allocator, and let the three holders delegate to themselves.
fn governed() -> (Embedded, Deployment) {
    let mut c = chain();
    let mut cfg = config(usdc(), 1_000_000_000);
    cfg.hand_to_timelock = true;
    let (d, _) = deploy(&mut c, &cfg).unwrap();
    for v in voters() {
        transact(&mut c, v.address(), d.gov_token, &AlloToken::delegateCall { delegatee: v.address() }).unwrap();
    }
    c.mine(1);
    (c, d)
}

fn state(c: &mut Embedded, d: &Deployment, id: U256) -> &'static str {
    governor::status(c, d.governor, id).unwrap().state
}

#[test]
fn the_governor_lifecycle_approves_a_plan_with_three_voters_one_by_signature() {
    let (mut c, d) = governed();
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::ownerCall {}).unwrap(), d.timelock);
    assert!(verify_roles(&mut c, &d, true).unwrap().is_empty());
    let v = voters();
    let list = pays(0, 5);
    let plan = Commitment::new(&list, 2);
    let mut actions = vec![Action::approve(&plan)];
    actions.push(Action::SetCaps { epoch_cap: U256::from(10_000), recipient_cap: U256::from(2_000) });
    actions.push(Action::SetRecipients { recipients: list.iter().map(|p| p.recipient).collect(), allowed: true });
    actions.push(Action::SetVetoDelay { seconds: DAY });
    let p = Proposal::new(d.allocator, &actions, "Approve round 1 and set the agent's standing caps");
    let (id, _) = governor::propose(&mut c, d.governor, v[0].address(), &p).unwrap();
    assert_eq!(id, p.id(), "the id Rust computes is the governor's");
    assert_eq!(state(&mut c, &d, id), "Pending");
    c.mine(2);
    assert_eq!(state(&mut c, &d, id), "Active");
    governor::cast_vote(&mut c, d.governor, v[0].address(), id, 1).unwrap();
    // The second holder signs offline; anyone (here a stranger) relays the ballot.
    let sig = governor::sign_ballot(&mut c, d.governor, &v[1], id, 1).unwrap();
    let relayed = governor::cast_vote_by_sig(&mut c, d.governor, STRANGER, id, 1, v[1].address(), sig.clone()).unwrap();
    assert_eq!(relayed.events::<allonet_chain::contracts::AlloGovernor::VoteCast>()[0].voter, v[1].address());
    // The same signature cannot be replayed (the nonce moved) and a forged voter is refused.
    assert!(governor::cast_vote_by_sig(&mut c, d.governor, STRANGER, id, 1, v[1].address(), sig.clone()).is_err());
    assert!(governor::cast_vote_by_sig(&mut c, d.governor, STRANGER, id, 1, v[2].address(), sig).is_err());
    governor::cast_vote(&mut c, d.governor, v[2].address(), id, 0).unwrap();
    let s = governor::status(&mut c, d.governor, id).unwrap();
    assert_eq!((s.votes_for.as_str(), s.votes_against.as_str()), ("750000", "250000"));
    assert_eq!(s.quorum.as_deref(), Some("40000"), "4% of 1,000,000");
    // Paying before the vote ends is refused.
    assert_eq!(revert_name(&reason(pay_batch(&mut c, &d, AGENT, &plan, 0))), "PlanNotPayable");
    c.mine(21);
    assert_eq!(state(&mut c, &d, id), "Succeeded");
    governor::queue(&mut c, d.governor, STRANGER, &p).unwrap();
    assert_eq!(state(&mut c, &d, id), "Queued");
    let early = governor::execute(&mut c, d.governor, STRANGER, &p);
    assert_eq!(revert_name(&reason(early)), "TimelockUnexpectedOperationState");
    c.warp(3_600);
    let r = governor::execute(&mut c, d.governor, STRANGER, &p).unwrap();
    assert_eq!(state(&mut c, &d, id), "Executed");
    assert_eq!(r.events::<AIAllocator::PlanApproved>().len(), 1);
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::recipientCapCall {}).unwrap(), U256::from(2_000));
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::vetoDelayCall {}).unwrap(), DAY);
    let found = governor::find_proposal(&mut c, d.governor, id, d.from_block).unwrap();
    assert_eq!(found, p, "the proposal is read back from the chain's events");
    // The agent pays exactly the approved pairs; reconcile says paid = approved.
    let report = execute(&mut c, &target(&d, AGENT), &plan, &PayoutOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!((report.batches.len(), report.paid_now), (3, plan.total));
    let rec = reconcile(&mut c, d.allocator, report.plan_id, d.from_block, &plan).unwrap();
    assert_eq!((rec.paid, rec.remainder, rec.recipients_paid), (plan.total, U256::ZERO, 5));
    assert!(rec.mismatches.is_empty());
}

#[test]
fn the_guardian_cancels_a_passed_proposal_queued_in_the_timelock() {
    let (mut c, d) = governed();
    let v = voters();
    let plan = Commitment::new(&pays(0, 3), 3);
    let p = Proposal::new(d.allocator, &[Action::approve(&plan)], "Approve a plan the guardian will stop");
    let (id, _) = governor::propose(&mut c, d.governor, v[0].address(), &p).unwrap();
    c.mine(2);
    for x in &v {
        governor::cast_vote(&mut c, d.governor, x.address(), id, 1).unwrap();
    }
    c.mine(21);
    governor::queue(&mut c, d.governor, STRANGER, &p).unwrap();
    // A stranger cannot cancel the timelock operation; the guardian (canceller) can.
    let op = governor::timelock_operation(d.governor, &p);
    let r = transact(&mut c, STRANGER, d.timelock, &AlloTimelock::cancelCall { id: op });
    assert_eq!(revert_name(&reason(r)), "AccessControlUnauthorizedAccount");
    governor::cancel_queued(&mut c, d.governor, d.timelock, GUARDIAN, &p).unwrap();
    c.warp(3_600);
    assert!(governor::execute(&mut c, d.governor, STRANGER, &p).is_err());
    assert_eq!(state(&mut c, &d, id), "Canceled");
    let pid = plan_id(&mut c, &d, &plan);
    assert_eq!(read_plan(&mut c, d.allocator, pid).unwrap().status, "none");
}

#[test]
fn deployment_leaves_the_deployer_no_power_and_resumes_from_its_journal() {
    let (mut c, d) = governed();
    assert!(verify_roles(&mut c, &d, true).unwrap().is_empty());
    let set = transact(
        &mut c,
        OWNER,
        d.allocator,
        &AIAllocator::setCapsCall { epochCap_: U256::MAX, recipientCap_: U256::MAX },
    );
    assert_eq!(revert_name(&reason(set)), "OwnableUnauthorizedAccount");
    let schedule = AlloTimelock::scheduleCall {
        target: d.allocator,
        value: U256::ZERO,
        data: AIAllocator::setCapsCall { epochCap_: U256::MAX, recipientCap_: U256::MAX }.abi_encode().into(),
        predecessor: B256::ZERO,
        salt: B256::ZERO,
        delay: U256::from(3_600),
    };
    assert_eq!(
        revert_name(&reason(transact(&mut c, OWNER, d.timelock, &schedule))),
        "AccessControlUnauthorizedAccount"
    );
    for (what, v) in [
        ("epochCap", AIAllocator::epochCapCall {}.abi_encode()),
        ("vetoDelay", AIAllocator::vetoDelayCall {}.abi_encode()),
    ] {
        let out = c.call(OWNER, d.allocator, v.into()).unwrap();
        assert!(out.iter().all(|b| *b == 0), "{what} starts at 0");
    }
    // The agent must be a key of its own.
    let mut bad = config(usdc(), 0);
    bad.agent = OWNER;
    assert!(deploy(&mut c, &bad).unwrap_err().to_string().contains("key of its own"));

    // A deployment that fails midway (funding beyond the deployer's supply) leaves a journal; fixed and re-run,
    // it creates nothing twice.
    let mut c = chain();
    let mut cfg = config(usdc(), 0);
    cfg.hand_to_timelock = true;
    cfg.fund = U256::from(10u64).pow(U256::from(16));
    let mut journal = Journal::default();
    let mut saves = 0;
    let err = deploy_resumable(&mut c, &cfg, &mut journal, &mut |_| saves += 1).unwrap_err();
    assert!(err.to_string().contains("fund the allocator"), "{err}");
    assert_eq!(saves, journal.steps.len());
    let allocator = journal.created["AIAllocator"];
    assert_eq!(read(&mut c, allocator, &AIAllocator::ownerCall {}).unwrap(), journal.created["AlloTimelock"]);
    let sent = journal.steps.len();
    // A journal edited to name someone else's address as the allocator is refused before any funds move.
    let mut forged = journal.clone();
    forged.created.insert("AIAllocator".into(), STRANGER);
    cfg.fund = U256::from(1_000_000);
    let err = deploy_resumable(&mut c, &cfg, &mut forged, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("roles are wrong"), "{err}");
    let token = journal.created["PayToken"];
    let stranger = read(&mut c, token, &PayToken::balanceOfCall { account: STRANGER }).unwrap();
    assert_eq!(stranger, U256::ZERO, "nothing was sent to the forged address");
    let block = c.block_number().unwrap();
    let d = deploy_resumable(&mut c, &cfg, &mut journal, &mut |_| {}).unwrap();
    assert_eq!(d.allocator, allocator, "the same allocator");
    assert_eq!(journal.steps.len(), sent + 1, "only the funding was sent");
    assert_eq!(c.block_number().unwrap(), block + 1);
    assert_eq!(balance(&mut c, &d, d.allocator), U256::from(1_000_000));
    // Re-run once more: nothing to do.
    deploy_resumable(&mut c, &cfg, &mut journal, &mut |_| {}).unwrap();
    assert_eq!(c.block_number().unwrap(), block + 1);
}

#[test]
fn state_persists_between_runs() {
    let dir = std::env::temp_dir().join(format!("allonet-evm-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chain.json");
    let _ = std::fs::remove_file(&path);
    let plan = Commitment::new(&pays(0, 2), 1);
    let d = {
        let mut c = Embedded::open(&path).unwrap();
        fund_all(&mut c);
        let (d, _) = deploy(&mut c, &config(usdc(), 10_000)).unwrap();
        approve(&mut c, &d, &plan);
        pay_batch(&mut c, &d, AGENT, &plan, 0).unwrap();
        c.save().unwrap();
        d
    };
    let mut c = Embedded::open(&path).unwrap();
    assert_eq!(balance(&mut c, &d, recipient(0)), U256::from(100));
    let status = check(&mut c, &target(&d, AGENT), &plan).unwrap();
    assert_eq!((status.paid_batches, status.remaining.clone()), (1, vec![1]));
    // A second run continues the chain: the paid batch cannot pay twice.
    assert_eq!(revert_name(&reason(pay_batch(&mut c, &d, AGENT, &plan, 0))), "BatchAlreadyPaid");
    std::fs::write(&path, "{\"schema\":\"other\"}").unwrap();
    let err = Embedded::open(&path).unwrap_err().to_string();
    assert!(err.contains("not an embedded chain state file") || err.contains("schema"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn payout_resumes_after_a_killed_run_and_refuses_before_sending() {
    let (mut c, d) = setup();
    let list = pays(10_000, 60);
    let plan = Commitment::new(&list, 16);
    approve(&mut c, &d, &plan);
    // A killed run paid batch 0.
    pay_batch(&mut c, &d, AGENT, &plan, 0).unwrap();
    let mut seen = Vec::new();
    let report =
        execute(&mut c, &target(&d, AGENT), &plan, &PayoutOptions::default(), &mut |b, _| seen.push(b.index)).unwrap();
    assert_eq!((report.already_paid, report.recipients_now), (1, 44));
    assert_eq!(seen, vec![1, 2, 3]);
    for p in &list {
        assert_eq!(balance(&mut c, &d, p.recipient), p.amount, "paid exactly once");
    }
    // Re-running a finished plan sends nothing.
    let block = c.block_number().unwrap();
    let again = execute(&mut c, &target(&d, AGENT), &plan, &PayoutOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!((again.recipients_now, again.already_paid, again.complete), (0, 4, true));
    assert_eq!(c.block_number().unwrap(), block);
    // A stranger as payer, and an allocator that holds too little, are refused before sending.
    let err = check(&mut c, &target(&d, STRANGER), &plan).unwrap_err().to_string();
    assert!(err.contains("neither the allocator's agent"), "{err}");
    let huge = Commitment::new(&[Pay { recipient: recipient(1), amount: U256::from(2_000_000_000u64) }], 1);
    approve(&mut c, &d, &huge);
    let err = check(&mut c, &target(&d, AGENT), &huge).unwrap_err().to_string();
    assert!(err.contains("still to pay"), "{err}");
    assert_eq!(c.block_number().unwrap(), block + 1, "only the approval was sent");
}

#[test]
fn a_recipient_that_cannot_be_paid_stops_its_batch_and_is_named() {
    let mut c = chain();
    let (d, _) = deploy(&mut c, &config(Asset::Native, 1_000_000)).unwrap();
    // A contract without a receive function refuses native coin.
    let refuser = c
        .send(Tx {
            from: OWNER,
            data: deploy_code(
                &PayToken::BYTECODE,
                &PayToken::constructorCall {
                    name_: "X".into(),
                    symbol_: "X".into(),
                    decimals_: 0,
                    holder: OWNER,
                    supply: U256::from(1),
                },
            ),
            ..Default::default()
        })
        .unwrap()
        .contract_address
        .unwrap();
    let mut list = pays(30_000, 20);
    list[17].recipient = refuser;
    let plan = Commitment::new(&list, 5);
    approve(&mut c, &d, &plan);
    let err =
        execute(&mut c, &target(&d, AGENT), &plan, &PayoutOptions::default(), &mut |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("batch 3") && err.contains("NativeTransferFailed"), "{err}");
    let status = check(&mut c, &target(&d, AGENT), &plan).unwrap();
    assert_eq!((status.paid_batches, status.remaining.clone()), (3, vec![3]), "the batches before it landed");
}

#[test]
fn pay_token_reports_its_decimals() {
    let (mut c, d) = setup();
    assert_eq!(read(&mut c, d.asset, &PayToken::decimalsCall {}).unwrap(), 6);
    assert_eq!(d.asset_decimals, 6);
}

#[test]
fn governance_approves_a_plan_the_agent_queued_first_in_place() {
    // The agent sees the proposal's (root, total, batches) and queues the same plan before the vote ends: the
    // approval still lands (the plan becomes approved in place), so queuing cannot block governance.
    let (mut c, d) = setup();
    let a = d.allocator;
    let list = pays(0, 4);
    standing(&mut c, &d, 1_000, 1_000, 3_600, &list.iter().map(|p| p.recipient).collect::<Vec<_>>());
    let plan = Commitment::new(&list, 2);
    transact(&mut c, AGENT, a, &queue_call(&plan)).unwrap();
    c.warp(3_600);
    pay_batch(&mut c, &d, AGENT, &plan, 0).unwrap();
    let id = plan_id(&mut c, &d, &plan);
    // The guardian cancels it; governance approves it anyway: the paid batch stays paid, the other pays once.
    transact(&mut c, GUARDIAN, a, &AIAllocator::cancelPlanCall { id }).unwrap();
    approve(&mut c, &d, &plan);
    let p = read_plan(&mut c, a, id).unwrap();
    assert_eq!((p.status, p.paid), ("approved", U256::from(201)));
    assert_eq!(revert_name(&reason(pay_batch(&mut c, &d, AGENT, &plan, 0))), "BatchAlreadyPaid");
    pay_batch(&mut c, &d, AGENT, &plan, 1).unwrap();
    assert_eq!(revert_name(&reason(transact(&mut c, OWNER, a, &approve_call(&plan)))), "PlanExists");
    for x in &list {
        assert_eq!(balance(&mut c, &d, x.recipient), x.amount, "each paid once");
    }
}

#[test]
fn queued_plans_expire_and_need_a_veto_window() {
    let (mut c, d) = setup();
    let a = d.allocator;
    let r = [recipient(1)];
    standing(&mut c, &d, 1_000, 1_000, 0, &r);
    let plan = Commitment::new(&[Pay { recipient: r[0], amount: U256::from(10) }], 1);
    // Caps without a veto window would leave the guardian no time: the agent cannot queue.
    assert_eq!(
        reason(transact(&mut c, AGENT, a, &queue_call(&plan))),
        "VetoDelayTooShort { vetoDelay: 0, minimum: 3600 }"
    );
    transact(&mut c, OWNER, a, &AIAllocator::setVetoDelayCall { vetoDelay_: 3_600 }).unwrap();
    transact(&mut c, AGENT, a, &queue_call(&plan)).unwrap();
    // Payable for one epoch after its window, then never: queued plans cannot be stockpiled.
    c.warp(3_600 + DAY + 12);
    assert_eq!(revert_name(&reason(pay_batch(&mut c, &d, AGENT, &plan, 0))), "PlanExpired");
    assert!(check(&mut c, &target(&d, AGENT), &plan).is_err());
    // The owner cannot renounce ownership (an ownerless allocator could never be unpaused).
    assert_eq!(reason(transact(&mut c, OWNER, a, &AIAllocator::renounceOwnershipCall {})), "RenounceDisabled");
    assert_eq!(
        revert_name(&reason(transact(&mut c, AGENT, a, &AIAllocator::renounceOwnershipCall {}))),
        "OwnableUnauthorizedAccount"
    );
}

#[test]
fn the_guardian_cannot_cancel_its_own_replacement_and_stray_roles_are_named() {
    let (mut c, d) = governed();
    let v = voters();
    let pass_until_queued = |c: &mut Embedded, p: &Proposal| {
        let (id, _) = governor::propose(c, d.governor, v[0].address(), p).unwrap();
        c.mine(2);
        for x in &v {
            governor::cast_vote(c, d.governor, x.address(), id, 1).unwrap();
        }
        c.mine(21);
        governor::queue(c, d.governor, STRANGER, p).unwrap();
        id
    };
    let new_guardian = Address::repeat_byte(0x77);
    let revoke = AlloTimelock::revokeRoleCall {
        role: read(&mut c, d.timelock, &AlloTimelock::CANCELLER_ROLECall {}).unwrap(),
        account: GUARDIAN,
    };
    let p = Proposal {
        targets: vec![d.allocator, d.timelock],
        values: vec![U256::ZERO; 2],
        calldatas: vec![Action::SetGuardian { guardian: new_guardian }.calldata(), revoke.abi_encode().into()],
        description: "Replace the guardian".into(),
    };
    pass_until_queued(&mut c, &p);
    let op = governor::timelock_operation(d.governor, &p);
    assert!(read(&mut c, d.timelock, &AlloTimelock::guardedCall(op)).unwrap());
    assert_eq!(
        revert_name(&reason(governor::cancel_queued(&mut c, d.governor, d.timelock, GUARDIAN, &p))),
        "GuardedOperation"
    );
    c.warp(3_600);
    governor::execute(&mut c, d.governor, STRANGER, &p).unwrap();
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::guardianCall {}).unwrap(), new_guardian);
    // The deployer named the governor once and can do nothing more.
    let again = transact(&mut c, OWNER, d.timelock, &AlloTimelock::bindGovernorCall { governor: OWNER });
    assert_eq!(revert_name(&reason(again)), "GovernorAlreadyBound");
    let stranger = transact(&mut c, STRANGER, d.timelock, &AlloTimelock::bindGovernorCall { governor: STRANGER });
    assert_eq!(revert_name(&reason(stranger)), "NotCreator");
    // A role granted to anyone the deployment does not provide for is named by the role check.
    let mut d2 = d.clone();
    d2.guardian = new_guardian;
    let grant = AlloTimelock::grantRoleCall {
        role: read(&mut c, d.timelock, &AlloTimelock::PROPOSER_ROLECall {}).unwrap(),
        account: STRANGER,
    };
    let p2 = Proposal {
        targets: vec![d.timelock],
        values: vec![U256::ZERO],
        calldatas: vec![grant.abi_encode().into()],
        description: "Give a stranger the proposer role".into(),
    };
    pass_until_queued(&mut c, &p2);
    c.warp(3_600);
    governor::execute(&mut c, d.governor, STRANGER, &p2).unwrap();
    let problems = verify_roles(&mut c, &d2, true).unwrap();
    assert!(problems.iter().any(|m| m.contains(&format!("{STRANGER}"))), "{problems:?}");
}
