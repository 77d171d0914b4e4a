//! Uniswap v2 from its npm artifacts on the embedded EVM and on anvil: the router's quote is the whitepaper's
//! pricing rule to the base unit, a swap pays at least its bound, and one whose bound the pool cannot meet reverts
//! and moves nothing.

use allonet_chain::amm::{self, amount_out, Amm};
use allonet_chain::anvil::{anvil_binary, Anvil, DEV_KEYS};
use allonet_chain::contracts::PayToken;
use allonet_chain::rpc::signer_from_hex;
use allonet_chain::{read, Chain, Embedded, Rpc, Tx};
use alloy_primitives::{Address, U256};

fn e(n: u64, d: u32) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(d))
}

fn bal(c: &mut dyn Chain, t: Address, who: Address) -> U256 {
    read(c, t, &PayToken::balanceOfCall { account: who }).unwrap()
}

/// A USDC/ETH pool at $3,000 with 30 M USDC of depth; `trader` holds 1,000 ETH.
fn market(c: &mut dyn Chain, lp: Address, trader: Address) -> (Amm, Address, Address) {
    let amm = amm::deploy(c, lp).unwrap();
    let usdc = amm::new_token(c, lp, "USDC", 6, lp, e(100_000_000, 6)).unwrap();
    let eth = amm::new_token(c, lp, "ETH", 18, lp, e(100_000, 18)).unwrap();
    amm::add_liquidity(c, &amm, lp, (usdc, e(30_000_000, 6)), (eth, e(10_000, 18))).unwrap();
    c.send(Tx::call(lp, eth, &PayToken::transferCall { to: trader, value: e(1_000, 18) })).unwrap();
    (amm, usdc, eth)
}

fn swaps(c: &mut dyn Chain, lp: Address, trader: Address) {
    let (amm, usdc, eth) = market(c, lp, trader);
    let (r_eth, r_usdc) = amm::reserves(c, &amm, eth, usdc).unwrap();
    assert_eq!((r_eth, r_usdc), (e(10_000, 18), e(30_000_000, 6)));
    let sell = e(100, 18);
    let want = amount_out(sell, r_eth, r_usdc);
    assert_eq!(amm::quote(c, &amm, sell, eth, usdc).unwrap(), want, "the router prices as the whitepaper says");
    // Asking for one unit more than the pool pays reverts, and moves nothing.
    let deadline = c.timestamp().unwrap() + 600;
    c.send(Tx { from: trader, to: Some(eth), data: amm::approve_calldata(amm.router, sell), ..Default::default() })
        .unwrap();
    let too_much = amm::swap_calldata(sell, want + U256::from(1), eth, usdc, trader, deadline);
    let err = c.send(Tx { from: trader, to: Some(amm.router), data: too_much, ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("INSUFFICIENT_OUTPUT_AMOUNT"), "{err}");
    assert_eq!(bal(c, eth, trader), e(1_000, 18));
    let ok = amm::swap_calldata(sell, want, eth, usdc, trader, deadline);
    c.send(Tx { from: trader, to: Some(amm.router), data: ok, ..Default::default() }).unwrap();
    assert_eq!(bal(c, usdc, trader), want);
    assert_eq!(bal(c, eth, trader), e(900, 18));
    assert_eq!(amm::reserves(c, &amm, eth, usdc).unwrap(), (r_eth + sell, r_usdc - want));
}

#[test]
fn uniswap_v2_swaps_at_its_quote_on_the_embedded_evm() {
    let mut c = Embedded::new();
    let keys: Vec<Address> = DEV_KEYS.iter().map(|k| signer_from_hex(k).unwrap().address()).collect();
    for k in &keys {
        c.fund(*k, e(1_000, 18));
    }
    swaps(&mut c, keys[0], keys[1]);
}

#[test]
fn uniswap_v2_swaps_at_its_quote_on_anvil() {
    let bin = anvil_binary().unwrap().expect("anvil is installed from contracts/ by npm");
    let node = Anvil::start(&bin, 31_337).unwrap();
    let signers: Vec<_> = DEV_KEYS[..2].iter().map(|k| signer_from_hex(k).unwrap()).collect();
    let (lp, trader) = (signers[0].address(), signers[1].address());
    let mut c = Rpc::connect(&node.url(), Some(31_337), signers).unwrap();
    swaps(&mut c, lp, trader);
}
