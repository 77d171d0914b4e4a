//! The JSON-RPC backend against a real anvil node (installed from npm by `contracts/`'s lockfile).

use allonet_chain::anvil::{anvil_binary, Anvil, DEV_KEYS};
use allonet_chain::contracts::{revert_name, AIAllocator};
use allonet_chain::deploy::{deploy, Asset, DeployConfig};
use allonet_chain::payout::{asset_balance, execute, PayoutOptions, Target};
use allonet_chain::plan::Pay;
use allonet_chain::rpc::signer_from_hex;
use allonet_chain::{read, transact, Chain, Rpc};
use alloy_primitives::{keccak256, Address, U256};

#[test]
fn deploy_pay_and_enforce_rules_on_anvil() {
    let Some(bin) = anvil_binary().unwrap() else {
        eprintln!("SKIP: npm is not installed, cannot install anvil");
        return;
    };
    let node = Anvil::start(&bin, 31_337).unwrap();
    let keys: Vec<_> = DEV_KEYS.iter().map(|k| signer_from_hex(k).unwrap()).collect();
    let (owner, agent) = (keys[0].address(), keys[1].address());
    assert_eq!(owner, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse::<Address>().unwrap());
    let err = Rpc::connect(&node.url(), Some(1), vec![]).unwrap_err().to_string();
    assert!(err.contains("is chain 31337, but chain 1 was expected"), "{err}");
    let mut chain = Rpc::connect(&node.url(), Some(31_337), keys).unwrap();
    let cfg = DeployConfig {
        deployer: owner,
        agent,
        guardian: owner,
        asset: Asset::NewToken { symbol: "USDC".into(), decimals: 6, supply: U256::from(10u64).pow(U256::from(15)) },
        epoch_length: 86_400,
        epoch_cap: U256::from(10u64).pow(U256::from(12)),
        recipient_cap: U256::from(10_000_000u64),
        holders: vec![(owner, U256::from(1_000u64))],
        voting_delay: 1,
        voting_period: 10,
        quorum_percent: 4,
        timelock_delay: 60,
        fund: U256::from(10u64).pow(U256::from(13)),
        hand_to_timelock: true,
    };
    let (d, steps) = deploy(&mut chain, &cfg).unwrap();
    assert!(steps.len() >= 10);
    assert_eq!(read(&mut chain, d.allocator, &AIAllocator::ownerCall {}).unwrap(), d.timelock);
    // Reverts come back through the node with their decoded reason, and nothing is sent.
    let stranger_pays = transact(
        &mut chain,
        owner,
        d.allocator,
        &AIAllocator::setCapsCall { epochCap_: U256::MAX, recipientCap_: U256::MAX },
    );
    assert_eq!(revert_name(stranger_pays.unwrap_err().revert_reason().unwrap()), "OwnableUnauthorizedAccount");
    // 500 recipients in gas-sized batches.
    let pays: Vec<Pay> = (0..500u64)
        .map(|i| Pay { recipient: Address::from_word(keccak256(i.to_be_bytes())), amount: U256::from(1_000 + i) })
        .collect();
    let digest = keccak256(b"anvil plan");
    let target = Target { allocator: d.allocator, payer: agent, from_block: d.from_block };
    let opts = PayoutOptions { batch_gas: 5_000_000, ..Default::default() };
    let report = execute(&mut chain, &target, digest, &pays, &opts, &mut |_, _| {}).unwrap();
    assert_eq!(report.recipients_now, 500);
    assert!(report.batches.len() > 1, "{} batches", report.batches.len());
    assert_eq!(report.onchain_digest, Some(digest));
    for p in pays.iter().step_by(37) {
        assert_eq!(asset_balance(&mut chain, d.asset, p.recipient).unwrap(), p.amount);
    }
    let again = execute(&mut chain, &target, digest, &pays, &opts, &mut |_, _| {}).unwrap();
    assert_eq!((again.recipients_now, again.already_paid), (0, 500));
    // Kill switch on a real node.
    transact(&mut chain, owner, d.allocator, &AIAllocator::pauseCall {}).unwrap();
    let paused = transact(
        &mut chain,
        agent,
        d.allocator,
        &AIAllocator::allocateFundsCall { recipient: owner, amount: U256::from(1) },
    );
    assert_eq!(paused.unwrap_err().revert_reason().unwrap(), "EnforcedPause");
    assert!(chain.block_number().unwrap() > 10);
}
