//! Every rule of the contracts, on the embedded EVM (revm): the real bytecode compiled by solc-js.

use allonet_chain::contracts::{
    deploy_code, revert_name, AIAllocator, AlloGovernor, AlloToken, PayToken, ReentrantReceiver, ReentrantToken,
};
use allonet_chain::deploy::{deploy, Asset, DeployConfig, Deployment};
use allonet_chain::payout::{check, execute, paid_from_events, PayoutError, PayoutOptions, Target};
use allonet_chain::plan::Pay;
use allonet_chain::{read, transact, Chain, ChainError, Embedded, Tx};
use alloy_primitives::{keccak256, Address, Bytes, U256};
use alloy_sol_types::{SolCall, SolEvent};

const OWNER: Address = Address::repeat_byte(0x0a);
const AGENT: Address = Address::repeat_byte(0x0b);
const GUARDIAN: Address = Address::repeat_byte(0x0c);
const STRANGER: Address = Address::repeat_byte(0x0d);
const VOTER: Address = Address::repeat_byte(0x0e);
const DAY: u64 = 86_400;

fn recipient(i: u64) -> Address {
    Address::from_word(keccak256(i.to_be_bytes()))
}

fn chain() -> Embedded {
    let mut c = Embedded::new();
    for a in [OWNER, AGENT, GUARDIAN, STRANGER, VOTER] {
        c.fund(a, U256::from(10u64).pow(U256::from(24)));
    }
    c
}

fn config(asset: Asset, epoch_cap: u64, recipient_cap: u64, fund: u64) -> DeployConfig {
    DeployConfig {
        deployer: OWNER,
        agent: AGENT,
        guardian: GUARDIAN,
        asset,
        epoch_length: DAY,
        epoch_cap: U256::from(epoch_cap),
        recipient_cap: U256::from(recipient_cap),
        holders: vec![(VOTER, U256::from(1_000_000u64)), (OWNER, U256::from(10u64))],
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

fn setup(epoch_cap: u64, recipient_cap: u64) -> (Embedded, Deployment) {
    let mut c = chain();
    let (d, _) = deploy(&mut c, &config(usdc(), epoch_cap, recipient_cap, 1_000_000_000)).unwrap();
    (c, d)
}

fn reason(r: Result<allonet_chain::Receipt, ChainError>) -> String {
    match r {
        Ok(_) => panic!("expected a revert"),
        Err(e) => e.revert_reason().unwrap_or_else(|| panic!("not a revert: {e}")).to_string(),
    }
}

fn balance(c: &mut Embedded, d: &Deployment, who: Address) -> U256 {
    allonet_chain::payout::asset_balance(c, d.asset, who).unwrap()
}

fn pay(
    c: &mut Embedded,
    d: &Deployment,
    from: Address,
    to: Address,
    amount: u64,
) -> Result<allonet_chain::Receipt, ChainError> {
    transact(c, from, d.allocator, &AIAllocator::allocateFundsCall { recipient: to, amount: U256::from(amount) })
}

/// `allocateBatch` of one batch (index 0) of the plan whose digest is `digest` repeated.
fn batch_call(digest: u8, pays: &[(Address, u64)]) -> AIAllocator::allocateBatchCall {
    AIAllocator::allocateBatchCall {
        planDigest: alloy_primitives::B256::repeat_byte(digest),
        batchIndex: U256::ZERO,
        recipients: pays.iter().map(|p| p.0).collect(),
        amounts: pays.iter().map(|p| U256::from(p.1)).collect(),
    }
}

fn batch(
    c: &mut Embedded,
    d: &Deployment,
    from: Address,
    digest: u8,
    pays: &[(Address, u64)],
) -> Result<allonet_chain::Receipt, ChainError> {
    transact(c, from, d.allocator, &batch_call(digest, pays))
}

#[test]
fn reference_scenario_owner_allocates_1000() {
    let mut c = chain();
    let (d, _) = deploy(&mut c, &config(Asset::Native, 0, 0, 1000)).unwrap();
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::ownerCall {}).unwrap(), OWNER);
    let r = recipient(1);
    let receipt = pay(&mut c, &d, OWNER, r, 1000).unwrap();
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::allocatedFundsCall(r)).unwrap(), U256::from(1000));
    let events = receipt.events::<AIAllocator::FundsAllocated>();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].recipient, events[0].amount), (r, U256::from(1000)));
    assert_eq!(c.balance(r).unwrap(), U256::from(1000), "native payout arrived");
    assert_eq!(c.balance(d.allocator).unwrap(), U256::ZERO);
}

#[test]
fn only_owner_and_agent_pay_and_only_owner_administers() {
    let (mut c, d) = setup(1_000, 1_000);
    let r = recipient(1);
    assert_eq!(reason(pay(&mut c, &d, STRANGER, r, 1)), format!("NotAuthorized {{ caller: {STRANGER:?} }}"));
    assert_eq!(revert_name(&reason(batch(&mut c, &d, GUARDIAN, 1, &[(r, 1)]))), "NotAuthorized");
    for from in [AGENT, STRANGER, GUARDIAN] {
        let set = transact(
            &mut c,
            from,
            d.allocator,
            &AIAllocator::setCapsCall { epochCap_: U256::MAX, recipientCap_: U256::MAX },
        );
        assert_eq!(reason(set), format!("OwnableUnauthorizedAccount {{ account: {from:?} }}"));
        let agent = transact(&mut c, from, d.allocator, &AIAllocator::setAgentCall { agent_: from });
        assert_eq!(revert_name(&reason(agent)), "OwnableUnauthorizedAccount");
    }
    assert_eq!(
        revert_name(&reason(transact(&mut c, STRANGER, d.allocator, &AIAllocator::pauseCall {}))),
        "NotGuardian"
    );
    assert_eq!(balance(&mut c, &d, r), U256::ZERO, "no failed call moved funds");
    pay(&mut c, &d, AGENT, r, 10).unwrap();
    pay(&mut c, &d, OWNER, r, 10).unwrap();
    assert_eq!(balance(&mut c, &d, r), U256::from(20));
}

#[test]
fn agent_caps_per_epoch_and_per_recipient() {
    let (mut c, d) = setup(1_000, 400);
    let (r1, r2, r3, r4) = (recipient(1), recipient(2), recipient(3), recipient(4));
    pay(&mut c, &d, AGENT, r1, 400).unwrap();
    let e = read(&mut c, d.allocator, &AIAllocator::currentEpochCall {}).unwrap();
    assert_eq!(
        reason(pay(&mut c, &d, AGENT, r1, 1)),
        format!("RecipientCapExceeded {{ recipient: {r1:?}, requested: 1, remaining: 0 }}")
    );
    batch(&mut c, &d, AGENT, 7, &[(r2, 400), (r3, 200)]).unwrap();
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::remainingEpochAllowanceCall {}).unwrap(), U256::ZERO);
    assert_eq!(
        reason(pay(&mut c, &d, AGENT, r4, 1)),
        format!("EpochCapExceeded {{ epoch: {e}, requested: 1, remaining: 0 }}")
    );
    // The owner (governance) is not capped and does not use the agent's allowance.
    pay(&mut c, &d, OWNER, r4, 5_000).unwrap();
    // A new epoch resets the allowances.
    c.warp(DAY);
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::remainingEpochAllowanceCall {}).unwrap(), U256::from(1_000));
    // A batch that crosses a cap reverts whole: its first payment does not land either.
    let r5 = recipient(5);
    assert_eq!(revert_name(&reason(batch(&mut c, &d, AGENT, 8, &[(r5, 300), (r1, 401)]))), "RecipientCapExceeded");
    assert_eq!(balance(&mut c, &d, r5), U256::ZERO);
    pay(&mut c, &d, AGENT, r1, 400).unwrap();
    assert_eq!(balance(&mut c, &d, r1), U256::from(800));
}

#[test]
fn caps_start_at_zero_so_a_fresh_agent_pays_nothing() {
    let (mut c, d) = setup(0, 0);
    assert_eq!(revert_name(&reason(pay(&mut c, &d, AGENT, recipient(1), 1))), "EpochCapExceeded");
}

#[test]
fn paused_means_nothing_moves() {
    let (mut c, d) = setup(1_000_000, 1_000_000);
    transact(&mut c, GUARDIAN, d.allocator, &AIAllocator::pauseCall {}).unwrap();
    let before = balance(&mut c, &d, d.allocator);
    for from in [AGENT, OWNER] {
        assert_eq!(reason(pay(&mut c, &d, from, recipient(1), 1)), "EnforcedPause");
        assert_eq!(reason(batch(&mut c, &d, from, 1, &[(recipient(2), 5)])), "EnforcedPause");
    }
    assert_eq!(balance(&mut c, &d, d.allocator), before);
    // The guardian cannot lift it; governance (the owner) can.
    let unpause = transact(&mut c, GUARDIAN, d.allocator, &AIAllocator::unpauseCall {});
    assert_eq!(revert_name(&reason(unpause)), "OwnableUnauthorizedAccount");
    transact(&mut c, OWNER, d.allocator, &AIAllocator::unpauseCall {}).unwrap();
    pay(&mut c, &d, AGENT, recipient(1), 1).unwrap();
}

#[test]
fn batch_equals_the_sum_of_singles_and_never_pays_a_plan_twice() {
    let pays: Vec<(Address, u64)> = (0..40).map(|i| (recipient(i), 1_000 + 37 * i)).collect();
    let (mut a, da) = setup(10_000_000, 10_000);
    let (mut b, db) = setup(10_000_000, 10_000);
    assert_eq!(da.allocator, db.allocator, "same deployment addresses");
    let rb = batch(&mut b, &db, AGENT, 9, &pays).unwrap();
    let mut single_gas = 0;
    for &(r, x) in &pays {
        single_gas += pay(&mut a, &da, AGENT, r, x).unwrap().gas_used;
    }
    for &(r, x) in &pays {
        assert_eq!(balance(&mut a, &da, r), U256::from(x));
        assert_eq!(balance(&mut b, &db, r), U256::from(x));
        let fa = read(&mut a, da.allocator, &AIAllocator::allocatedFundsCall(r)).unwrap();
        let fb = read(&mut b, db.allocator, &AIAllocator::allocatedFundsCall(r)).unwrap();
        assert_eq!(fa, fb);
    }
    assert_eq!(balance(&mut a, &da, da.allocator), balance(&mut b, &db, db.allocator));
    let ev = rb.events::<AIAllocator::BatchPaid>();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].planDigest, alloy_primitives::B256::repeat_byte(9));
    assert_eq!(ev[0].count, U256::from(40));
    assert_eq!(ev[0].total, U256::from(pays.iter().map(|p| p.1).sum::<u64>()));
    assert_eq!(rb.events::<AIAllocator::FundsAllocated>().len(), 40);
    println!("gas: batch {} vs singles {single_gas}", rb.gas_used);
    assert!(rb.gas_used < single_gas);
    // The same plan digest cannot pay a recipient twice, even in a new batch; other digests can.
    let again = batch(&mut b, &db, AGENT, 9, &pays[5..6]);
    assert_eq!(
        reason(again),
        format!("AlreadyPaid {{ planDigest: {}, recipient: {:?} }}", alloy_primitives::B256::repeat_byte(9), pays[5].0)
    );
    batch(&mut b, &db, AGENT, 10, &pays[5..6]).unwrap();
    // Malformed batches.
    let mismatch = transact(
        &mut b,
        AGENT,
        db.allocator,
        &AIAllocator::allocateBatchCall {
            planDigest: alloy_primitives::B256::repeat_byte(1),
            batchIndex: U256::ZERO,
            recipients: vec![recipient(100)],
            amounts: vec![],
        },
    );
    assert_eq!(reason(mismatch), "LengthMismatch");
    assert_eq!(reason(batch(&mut b, &db, AGENT, 0, &[(recipient(100), 1)])), "ZeroPlanDigest");
    assert_eq!(reason(batch(&mut b, &db, AGENT, 3, &[(recipient(100), 0)])), "ZeroAmount");
    assert_eq!(reason(batch(&mut b, &db, AGENT, 3, &[(Address::ZERO, 1)])), "ZeroAddress");
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
    let (d, _) = deploy(&mut c, &config(Asset::Erc20(token), 1_000_000, 1_000_000, 100_000)).unwrap();
    let attacker = recipient(666);
    // Make the token itself the agent, so only the reentrancy guard stands in its way.
    transact(&mut c, OWNER, d.allocator, &AIAllocator::setAgentCall { agent_: token }).unwrap();
    let again = AIAllocator::allocateFundsCall { recipient: attacker, amount: U256::from(500) }.abi_encode();
    transact(&mut c, OWNER, token, &ReentrantToken::armCall { target_: d.allocator, data_: again.into() }).unwrap();
    let before = balance(&mut c, &d, d.allocator);
    assert_eq!(reason(pay(&mut c, &d, OWNER, attacker, 500)), "ReentrancyGuardReentrantCall");
    assert_eq!(reason(batch(&mut c, &d, OWNER, 4, &[(attacker, 500)])), "ReentrancyGuardReentrantCall");
    assert_eq!(balance(&mut c, &d, attacker), U256::ZERO);
    assert_eq!(balance(&mut c, &d, d.allocator), before);
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::allocatedFundsCall(attacker)).unwrap(), U256::ZERO);
}

#[test]
fn a_reentrant_native_receiver_cannot_double_pay() {
    let mut c = chain();
    let (d, _) = deploy(&mut c, &config(Asset::Native, 1_000_000, 1_000_000, 100_000)).unwrap();
    let attacker = c
        .send(Tx { from: OWNER, data: ReentrantReceiver::BYTECODE.clone(), ..Default::default() })
        .unwrap()
        .contract_address
        .unwrap();
    // A compromised agent contract pays itself and re-enters from its receive hook.
    transact(&mut c, OWNER, d.allocator, &AIAllocator::setAgentCall { agent_: attacker }).unwrap();
    let again = batch_call(2, &[(attacker, 700)]).abi_encode();
    // Control: armed with a harmless call, the same kind of payment to the same contract goes through.
    let harmless = AIAllocator::pausedCall {}.abi_encode();
    transact(&mut c, OWNER, attacker, &ReentrantReceiver::armCall { target_: d.allocator, data_: harmless.into() })
        .unwrap();
    let first = batch_call(1, &[(attacker, 300)]).abi_encode();
    transact(&mut c, OWNER, attacker, &ReentrantReceiver::callCall { target_: d.allocator, data_: first.into() })
        .unwrap();
    assert_eq!(c.balance(attacker).unwrap(), U256::from(300));
    // Armed to re-enter: the guard reverts the inner call, the receive hook fails, the whole payment reverts.
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

#[test]
fn caps_change_only_by_a_governance_vote() {
    let mut c = chain();
    let mut cfg = config(usdc(), 100, 100, 1_000_000);
    cfg.hand_to_timelock = true;
    let (d, _) = deploy(&mut c, &cfg).unwrap();
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::ownerCall {}).unwrap(), d.timelock);
    let direct = transact(
        &mut c,
        OWNER,
        d.allocator,
        &AIAllocator::setCapsCall { epochCap_: U256::MAX, recipientCap_: U256::MAX },
    );
    assert_eq!(reason(direct), format!("OwnableUnauthorizedAccount {{ account: {OWNER:?} }}"));
    // The voter delegates to itself, proposes, votes, queues and executes through the timelock.
    transact(&mut c, VOTER, d.gov_token, &AlloToken::delegateCall { delegatee: VOTER }).unwrap();
    c.mine(1);
    let targets = vec![d.allocator];
    let values = vec![U256::ZERO];
    let calldatas: Vec<Bytes> =
        vec![AIAllocator::setCapsCall { epochCap_: U256::from(5_000), recipientCap_: U256::from(2_000) }
            .abi_encode()
            .into()];
    let description = "Raise the agent's caps to 5000/2000".to_string();
    let r = transact(
        &mut c,
        VOTER,
        d.governor,
        &AlloGovernor::proposeCall {
            targets: targets.clone(),
            values: values.clone(),
            calldatas: calldatas.clone(),
            description: description.clone(),
        },
    )
    .unwrap();
    let id = r.events::<AlloGovernor::ProposalCreated>()[0].proposalId;
    c.mine(2);
    transact(&mut c, VOTER, d.governor, &AlloGovernor::castVoteCall { proposalId: id, support: 1 }).unwrap();
    c.mine(21);
    let dh = keccak256(description.as_bytes());
    transact(
        &mut c,
        VOTER,
        d.governor,
        &AlloGovernor::queueCall {
            targets: targets.clone(),
            values: values.clone(),
            calldatas: calldatas.clone(),
            descriptionHash: dh,
        },
    )
    .unwrap();
    let early = transact(
        &mut c,
        VOTER,
        d.governor,
        &AlloGovernor::executeCall {
            targets: targets.clone(),
            values: values.clone(),
            calldatas: calldatas.clone(),
            descriptionHash: dh,
        },
    );
    assert_eq!(revert_name(&reason(early)), "TimelockUnexpectedOperationState");
    c.warp(3_600);
    let r = transact(
        &mut c,
        VOTER,
        d.governor,
        &AlloGovernor::executeCall { targets, values, calldatas, descriptionHash: dh },
    )
    .unwrap();
    assert_eq!(r.events::<AIAllocator::CapsSet>().len(), 1);
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::epochCapCall {}).unwrap(), U256::from(5_000));
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::recipientCapCall {}).unwrap(), U256::from(2_000));
    pay(&mut c, &d, AGENT, recipient(1), 2_000).unwrap();
}

#[test]
fn state_persists_between_runs() {
    let dir = std::env::temp_dir().join(format!("allonet-evm-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chain.json");
    let _ = std::fs::remove_file(&path);
    let d = {
        let mut c = Embedded::open(&path).unwrap();
        for a in [OWNER, AGENT, GUARDIAN] {
            c.fund(a, U256::from(10u64).pow(U256::from(24)));
        }
        let (d, _) = deploy(&mut c, &config(usdc(), 1_000, 1_000, 10_000)).unwrap();
        batch(&mut c, &d, AGENT, 5, &[(recipient(1), 300), (recipient(2), 200)]).unwrap();
        c.save().unwrap();
        d
    };
    let mut c = Embedded::open(&path).unwrap();
    assert_eq!(balance(&mut c, &d, recipient(1)), U256::from(300));
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::remainingEpochAllowanceCall {}).unwrap(), U256::from(500));
    let (paid, next, n) = paid_from_events(&mut c, d.allocator, alloy_primitives::B256::repeat_byte(5), 0).unwrap();
    assert_eq!((paid.len(), next, n), (2, 1, 1));
    // A second run continues the chain: the same recipient cannot be paid twice under the same plan.
    assert_eq!(revert_name(&reason(batch(&mut c, &d, AGENT, 5, &[(recipient(2), 200)]))), "AlreadyPaid");
    std::fs::write(&path, "{\"schema\":\"other\"}").unwrap();
    let err = Embedded::open(&path).unwrap_err().to_string();
    assert!(err.contains("not an embedded chain state file") || err.contains("schema"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn target(d: &Deployment, payer: Address) -> Target {
    Target { allocator: d.allocator, payer, from_block: d.from_block }
}

fn plan(n: u64) -> Vec<Pay> {
    plan_from(10_000, n)
}

fn plan_from(first: u64, n: u64) -> Vec<Pay> {
    (0..n).map(|i| Pay { recipient: recipient(first + i), amount: U256::from(100 + i) }).collect()
}

#[test]
fn payout_is_batched_by_gas_idempotent_and_refuses_cap_breaches_before_sending() {
    let (mut c, d) = setup(1_000_000, 1_000);
    let digest = keccak256(b"plan one");
    let pays = plan(60);
    // A killed run paid the first 25 in one batch.
    transact(
        &mut c,
        AGENT,
        d.allocator,
        &AIAllocator::allocateBatchCall {
            planDigest: digest,
            batchIndex: U256::ZERO,
            recipients: pays[..25].iter().map(|p| p.recipient).collect(),
            amounts: pays[..25].iter().map(|p| p.amount).collect(),
        },
    )
    .unwrap();
    let opts = PayoutOptions { batch_gas: 1_500_000, ..Default::default() };
    let mut seen = Vec::new();
    let report = execute(&mut c, &target(&d, AGENT), digest, &pays, &opts, &mut |b, _| seen.push(b.count)).unwrap();
    assert_eq!(report.already_paid, 25);
    assert_eq!(report.recipients_now, 35);
    assert!(seen.len() >= 2, "several batches under a 1.5M gas target: {seen:?}");
    assert!(report.batches.iter().all(|b| b.gas_used <= 1_500_000));
    assert_eq!(report.batches[0].index, 1, "batch numbering continues after the killed run");
    assert_eq!(report.onchain_digest, Some(digest));
    for p in &pays {
        assert_eq!(balance(&mut c, &d, p.recipient), p.amount, "paid exactly once");
    }
    // Re-running a finished plan sends nothing.
    let block = c.block_number().unwrap();
    let again = execute(&mut c, &target(&d, AGENT), digest, &pays, &opts, &mut |_, _| {}).unwrap();
    assert_eq!((again.recipients_now, again.already_paid, again.complete), (0, 60, true));
    assert_eq!(c.block_number().unwrap(), block);

    // A plan breaking the per-recipient cap (1,000) is refused whole, before anything is sent.
    let mut big = plan_from(20_000, 5);
    big[3].amount = U256::from(1_001);
    let err = execute(&mut c, &target(&d, AGENT), keccak256(b"plan two"), &big, &opts, &mut |_, _| {}).unwrap_err();
    match &err {
        PayoutError::Refused(p) => assert!(p[0].contains("per-recipient cap leaves 1000"), "{p:?}"),
        e => panic!("{e}"),
    }
    assert_eq!(c.block_number().unwrap(), block, "nothing was sent");
    // ... and one breaking the epoch cap, and one from a stranger, and one while paused.
    let (mut c2, d2) = setup(500, 1_000);
    let err = check(&mut c2, &target(&d2, AGENT), digest, &plan(6)).unwrap_err().to_string();
    assert!(err.contains("epoch cap: 615 units still to pay but the agent may spend only 500"), "{err}");
    let err = check(&mut c2, &target(&d2, STRANGER), digest, &plan(1)).unwrap_err().to_string();
    assert!(err.contains("neither the allocator's owner"), "{err}");
    transact(&mut c2, GUARDIAN, d2.allocator, &AIAllocator::pauseCall {}).unwrap();
    let err = check(&mut c2, &target(&d2, OWNER), digest, &plan(1)).unwrap_err().to_string();
    assert!(err.contains("paused"), "{err}");
    // The owner is not capped but still cannot pay more than the allocator holds.
    let (mut c3, d3) = setup(0, 0);
    let huge = vec![Pay { recipient: recipient(1), amount: U256::from(2_000_000_000u64) }];
    let err = check(&mut c3, &target(&d3, OWNER), digest, &huge).unwrap_err().to_string();
    assert!(err.contains("holds 1000000000 units but 2000000000 are still to pay"), "{err}");
}

#[test]
fn pay_token_reports_its_decimals() {
    let (mut c, d) = setup(0, 0);
    assert_eq!(read(&mut c, d.asset, &PayToken::decimalsCall {}).unwrap(), 6);
    assert_eq!(d.asset_decimals, 6);
    assert_eq!(AIAllocator::FundsAllocated::SIGNATURE, "FundsAllocated(address,uint256)");
}

#[test]
fn gas_is_estimated_in_the_block_the_transaction_lands_in() {
    // The first payment of a new epoch writes fresh cap slots (20,000 gas each more than the epoch before):
    // an estimate made against the previous block would run out of gas.
    let (mut c, d) = setup(1_000_000, 1_000_000);
    pay(&mut c, &d, AGENT, recipient(1), 10).unwrap();
    let now = c.timestamp().unwrap();
    let boundary = (now / DAY + 1) * DAY;
    c.warp(boundary - now - 6);
    let e0 = read(&mut c, d.allocator, &AIAllocator::currentEpochCall {}).unwrap();
    pay(&mut c, &d, AGENT, recipient(1), 10).unwrap();
    let e1 = read(&mut c, d.allocator, &AIAllocator::currentEpochCall {}).unwrap();
    assert_eq!(e1, e0 + U256::from(1), "the payment landed in the next epoch");
    assert_eq!(read(&mut c, d.allocator, &AIAllocator::epochSpentCall(e1)).unwrap(), U256::from(10));
}

#[test]
fn a_recipient_that_cannot_be_paid_is_named_and_can_be_skipped_under_the_same_plan() {
    let mut c = chain();
    let (d, _) = deploy(&mut c, &config(Asset::Native, 1_000_000, 1_000_000, 1_000_000)).unwrap();
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
    let mut pays = plan_from(30_000, 20);
    pays[17].recipient = refuser;
    let digest = keccak256(b"plan with a refuser");
    let opts = PayoutOptions { max_batch: 5, ..Default::default() };
    let err = execute(&mut c, &target(&d, AGENT), digest, &pays, &opts, &mut |_, _| {}).unwrap_err().to_string();
    assert!(
        err.contains(&format!("recipient {refuser}")) && err.contains("NativeTransferFailed") && err.contains("--skip"),
        "{err}"
    );
    let (paid, _, _) = paid_from_events(&mut c, d.allocator, digest, 0).unwrap();
    assert_eq!(paid.len(), 15, "the three batches before the refuser landed");
    let others: Vec<Pay> = pays.iter().copied().filter(|p| p.recipient != refuser).collect();
    let r = execute(&mut c, &target(&d, AGENT), digest, &others, &opts, &mut |_, _| {}).unwrap();
    assert_eq!((r.already_paid, r.recipients_now), (15, 4));
    // A refuser inside the sizing probe is named before anything is sent.
    let mut early = plan_from(40_000, 20);
    early[3].recipient = refuser;
    let block = c.block_number().unwrap();
    let err = execute(&mut c, &target(&d, AGENT), keccak256(b"early"), &early, &opts, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains(&format!("recipient {refuser}")), "{err}");
    assert_eq!(c.block_number().unwrap(), block);
    for p in &others {
        assert_eq!(c.balance(p.recipient).unwrap(), p.amount);
    }
}
