//! The contract's rules on real anvil nodes (installed from npm by `contracts/`'s lockfile), through the JSON-RPC
//! backend: the full Governor lifecycle with three voters (one by signature), and every attack on the money path
//! sent straight to the contract.

use allonet_chain::anvil::{anvil_binary, Anvil, DEV_KEYS};
use allonet_chain::contracts::{revert_name, AIAllocator, AlloToken};
use allonet_chain::deploy::{deploy, verify_roles, Asset, DeployConfig, Deployment};
use allonet_chain::governor::{self, Action, Proposal};
use allonet_chain::payout::{
    approve_call, asset_balance, check, execute, pay_batch_call, queue_call, reconcile, PayoutOptions, Target,
};
use allonet_chain::plan::{Commitment, Pay};
use allonet_chain::rpc::signer_from_hex;
use allonet_chain::{read, transact, Chain, ChainError, Receipt, Rpc};
use alloy_primitives::{keccak256, Address, U256};
use alloy_sol_types::SolCall;

fn reason(r: Result<Receipt, ChainError>) -> String {
    let e = r.expect_err("expected a revert");
    revert_name(e.revert_reason().unwrap_or_else(|| panic!("not a revert: {e}"))).to_string()
}

fn cfg(keys: &[Address]) -> DeployConfig {
    DeployConfig {
        deployer: keys[0],
        agent: keys[1],
        guardian: keys[2],
        asset: Asset::NewToken { symbol: "USDC".into(), decimals: 6, supply: U256::from(10u64).pow(U256::from(15)) },
        epoch_length: 86_400,
        holders: vec![(keys[3], U256::from(400u64)), (keys[4], U256::from(350u64)), (keys[5], U256::from(250u64))],
        voting_delay: 1,
        voting_period: 10,
        quorum_percent: 4,
        timelock_delay: 600,
        fund: U256::from(10u64).pow(U256::from(13)),
        hand_to_timelock: true,
    }
}

/// Propose, vote (the second holder by signature), queue, wait out the timelock, execute.
fn pass(c: &mut Rpc, d: &Deployment, holders: &[alloy_signer_local::PrivateKeySigner], p: &Proposal) -> U256 {
    let (id, _) = governor::propose(c, d.governor, holders[0].address(), p).unwrap();
    assert_eq!(governor::status(c, d.governor, id).unwrap().state, "Pending");
    c.advance(2, 0).unwrap();
    assert_eq!(governor::status(c, d.governor, id).unwrap().state, "Active");
    governor::cast_vote(c, d.governor, holders[0].address(), id, 1).unwrap();
    let sig = governor::sign_ballot(c, d.governor, &holders[1], id, 1).unwrap();
    governor::cast_vote_by_sig(c, d.governor, holders[0].address(), id, 1, holders[1].address(), sig).unwrap();
    governor::cast_vote(c, d.governor, holders[2].address(), id, 0).unwrap();
    let s = governor::status(c, d.governor, id).unwrap();
    assert_eq!((s.votes_for.as_str(), s.votes_against.as_str()), ("750", "250"));
    c.advance(11, 0).unwrap();
    assert_eq!(governor::status(c, d.governor, id).unwrap().state, "Succeeded");
    governor::queue(c, d.governor, holders[0].address(), p).unwrap();
    assert_eq!(governor::status(c, d.governor, id).unwrap().state, "Queued");
    c.advance(1, 600).unwrap();
    governor::execute(c, d.governor, holders[0].address(), p).unwrap();
    assert_eq!(governor::status(c, d.governor, id).unwrap().state, "Executed");
    id
}

#[test]
fn governance_binds_every_payout_on_anvil() {
    let Some(bin) = anvil_binary().unwrap() else {
        eprintln!("SKIP: npm is not installed, cannot install anvil");
        return;
    };
    let node_a = Anvil::start(&bin, 31_337).unwrap();
    let node_b = Anvil::start(&bin, 10).unwrap();
    let keys: Vec<_> = DEV_KEYS.iter().map(|k| signer_from_hex(k).unwrap()).collect();
    let addr: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    assert_eq!(addr[0], "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse::<Address>().unwrap());
    assert_eq!(addr[5], "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc".parse::<Address>().unwrap());
    let (agent, guardian) = (addr[1], addr[2]);
    let err = Rpc::connect(&node_a.url(), Some(1), vec![]).unwrap_err().to_string();
    assert!(err.contains("is chain 31337, but chain 1 was expected"), "{err}");
    let mut a = Rpc::connect(&node_a.url(), Some(31_337), keys.clone()).unwrap();
    let mut b = Rpc::connect(&node_b.url(), Some(10), keys.clone()).unwrap();
    let (d, steps) = deploy(&mut a, &cfg(&addr)).unwrap();
    let (db, _) = deploy(&mut b, &cfg(&addr)).unwrap();
    assert_eq!(steps.len(), 8, "token, timelock, governor, bind, pay token, allocator, anchor, funding");
    assert!(verify_roles(&mut a, &d, true).unwrap().is_empty());
    assert_eq!(db.allocator, d.allocator, "same addresses on both chains");
    let holders = &keys[3..6];
    for h in holders {
        transact(&mut a, h.address(), d.gov_token, &AlloToken::delegateCall { delegatee: h.address() }).unwrap();
    }

    // 300 recipients in batches of 120; and a registry-and-caps grant in the same proposal.
    let list: Vec<Pay> = (0..300u64)
        .map(|i| Pay { recipient: Address::from_word(keccak256(i.to_be_bytes())), amount: U256::from(1_000 + i) })
        .collect();
    let plan = Commitment::new(&list, 120);
    let target = Target { allocator: d.allocator, payer: agent };

    // Unapproved: refused by the check, nothing sent (the agent's nonce and every balance unchanged); and the
    // contract reverts it when the check is bypassed.
    // anvil mines a block for every transaction: an unchanged block number means nothing was sent.
    let block = |c: &mut Rpc| c.block_number().unwrap();
    let before = (block(&mut a), asset_balance(&mut a, d.asset, d.allocator).unwrap());
    let err = execute(&mut a, &target, &plan, &PayoutOptions::default(), &mut |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("is not approved"), "{err}");
    assert_eq!(before, (block(&mut a), asset_balance(&mut a, d.asset, d.allocator).unwrap()));
    assert_eq!(reason(transact(&mut a, agent, d.allocator, &pay_batch_call(&plan, 0))), "PlanNotPayable");

    let reg: Vec<Address> = (0..5u64).map(|i| Address::from_word(keccak256((9_000 + i).to_be_bytes()))).collect();
    let actions = vec![
        Action::approve(&plan),
        Action::SetCaps { epoch_cap: U256::from(100_000u64), recipient_cap: U256::from(5_000u64) },
        Action::SetRecipients { recipients: reg.clone(), allowed: true },
        Action::SetVetoDelay { seconds: 3_600 },
    ];
    let p = Proposal::new(d.allocator, &actions, "Approve the anvil plan and grant standing caps");
    pass(&mut a, &d, holders, &p);

    // The agent key calling each governance setter reverts.
    for call in [
        AIAllocator::setCapsCall { epochCap_: U256::MAX, recipientCap_: U256::MAX }.abi_encode(),
        AIAllocator::setRecipientsCall { recipients: vec![agent], allowed: true }.abi_encode(),
        AIAllocator::setVetoDelayCall { vetoDelay_: 0 }.abi_encode(),
        AIAllocator::setAgentCall { agent_: agent }.abi_encode(),
        AIAllocator::setGuardianCall { guardian_: agent }.abi_encode(),
        approve_call(&Commitment::new(&list[..1], 1)).abi_encode(),
        AIAllocator::unpauseCall {}.abi_encode(),
    ] {
        let r =
            a.send(allonet_chain::Tx { from: agent, to: Some(d.allocator), data: call.into(), ..Default::default() });
        assert_eq!(reason(r), "OwnableUnauthorizedAccount");
    }
    // A hand-edited batch reverts on chain.
    let mut edited = pay_batch_call(&plan, 1);
    edited.amounts[5] += U256::from(1);
    assert_eq!(reason(transact(&mut a, agent, d.allocator, &edited)), "InvalidProof");
    let mut extra = pay_batch_call(&plan, 2);
    extra.recipients.push(agent);
    extra.amounts.push(U256::from(1));
    assert_eq!(reason(transact(&mut a, agent, d.allocator, &extra)), "InvalidProof");
    // Approved on chain A: reverts on chain B, and on a second allocator on chain A.
    assert_eq!(reason(transact(&mut b, agent, db.allocator, &pay_batch_call(&plan, 0))), "PlanNotPayable");
    let (d2, _) = deploy(&mut a, &cfg(&addr)).unwrap();
    assert_eq!(reason(transact(&mut a, agent, d2.allocator, &pay_batch_call(&plan, 0))), "PlanNotPayable");

    // The approved plan pays, exactly; a second run sends nothing; reconcile says paid = approved.
    let report = execute(&mut a, &target, &plan, &PayoutOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!((report.batches.len(), report.recipients_now), (3, 300));
    for x in list.iter().step_by(37) {
        assert_eq!(asset_balance(&mut a, d.asset, x.recipient).unwrap(), x.amount);
    }
    let again = execute(&mut a, &target, &plan, &PayoutOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!((again.recipients_now, again.already_paid), (0, 3));
    let rec = reconcile(&mut a, d.allocator, report.plan_id, d.from_block, &plan).unwrap();
    assert_eq!((rec.paid, rec.remainder), (plan.total, U256::ZERO));

    // Standing authority: a queued plan waits out the veto delay; outside the registry it reverts; the guardian
    // cancels one in its window.
    let queued = Commitment::new(&[Pay { recipient: reg[0], amount: U256::from(4_000u64) }], 1);
    transact(&mut a, agent, d.allocator, &queue_call(&queued)).unwrap();
    assert_eq!(reason(transact(&mut a, agent, d.allocator, &pay_batch_call(&queued, 0))), "PlanNotMature");
    let outsider = Commitment::new(&[Pay { recipient: addr[4], amount: U256::from(10u64) }], 1);
    transact(&mut a, agent, d.allocator, &queue_call(&outsider)).unwrap();
    let vetoed = Commitment::new(&[Pay { recipient: reg[1], amount: U256::from(10u64) }], 1);
    transact(&mut a, agent, d.allocator, &queue_call(&vetoed)).unwrap();
    let vid = vetoed.plan_id(31_337, d.allocator, d.asset);
    transact(&mut a, guardian, d.allocator, &AIAllocator::cancelPlanCall { id: vid }).unwrap();
    a.advance(1, 3_600).unwrap();
    check(&mut a, &target, &queued).unwrap();
    transact(&mut a, agent, d.allocator, &pay_batch_call(&queued, 0)).unwrap();
    assert_eq!(reason(transact(&mut a, agent, d.allocator, &pay_batch_call(&outsider, 0))), "NotInRegistry");
    assert_eq!(reason(transact(&mut a, agent, d.allocator, &pay_batch_call(&vetoed, 0))), "PlanNotPayable");

    // A passed proposal queued in the timelock is cancelled by the guardian.
    let stopped = Commitment::new(&list[..3], 3);
    let p2 = Proposal::new(d.allocator, &[Action::approve(&stopped)], "A plan the guardian stops");
    let (id2, _) = governor::propose(&mut a, d.governor, holders[0].address(), &p2).unwrap();
    a.advance(2, 0).unwrap();
    for h in holders {
        governor::cast_vote(&mut a, d.governor, h.address(), id2, 1).unwrap();
    }
    a.advance(11, 0).unwrap();
    governor::queue(&mut a, d.governor, holders[0].address(), &p2).unwrap();
    governor::cancel_queued(&mut a, d.governor, d.timelock, guardian, &p2).unwrap();
    a.advance(1, 600).unwrap();
    assert!(governor::execute(&mut a, d.governor, holders[0].address(), &p2).is_err());
    assert_eq!(governor::status(&mut a, d.governor, id2).unwrap().state, "Canceled");

    // Kill switch on a real node.
    transact(&mut a, guardian, d.allocator, &AIAllocator::pauseCall {}).unwrap();
    assert!(check(&mut a, &target, &plan).unwrap_err().to_string().contains("paused"));
    assert_eq!(
        reason(transact(&mut a, guardian, d.allocator, &AIAllocator::unpauseCall {})),
        "OwnableUnauthorizedAccount"
    );
    assert!(read(&mut a, d.allocator, &AIAllocator::pausedCall {}).unwrap());
}
