//! Liveness of sends on a real node: anvil without automatic mining holds transactions in its pool, as a congested
//! chain does. A transaction not mined in time is replaced at the same nonce with higher fees, and a sender that
//! restarts while its earlier transaction is pending takes that nonce over: one payment never has two
//! transactions that could both be mined.

use std::time::Duration;

use allonet_chain::anvil::{anvil_binary, Anvil, DEV_KEYS};
use allonet_chain::rpc::{signer_from_hex, SendPolicy};
use allonet_chain::{Chain, Rpc, Tx};
use alloy_primitives::{Address, U256};

fn node() -> Anvil {
    let bin = anvil_binary().unwrap().expect("anvil is installed from contracts/ by npm");
    Anvil::start_without_mining(&bin, 31_337).unwrap()
}

fn sender(url: &str, stuck_after: Duration) -> Rpc {
    let key = signer_from_hex(DEV_KEYS[0]).unwrap();
    let policy = SendPolicy { stuck_after, max_replacements: 50, ..Default::default() };
    Rpc::connect(url, Some(31_337), vec![key]).unwrap().with_policy(policy)
}

fn addr(i: usize) -> Address {
    signer_from_hex(DEV_KEYS[i]).unwrap().address()
}

fn transfer(wei: u64) -> Tx {
    Tx { from: addr(0), to: Some(addr(1)), value: U256::from(wei), ..Default::default() }
}

/// Mines one block after `after`, from another connection.
fn mine_after(url: String, after: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        Rpc::connect(&url, None, vec![]).unwrap().advance(1, 0).unwrap();
    })
}

#[test]
fn a_stuck_transaction_is_replaced_at_the_same_nonce_and_lands_once() {
    let node = node();
    let mut reader = Rpc::connect(&node.url(), None, vec![]).unwrap();
    let before = reader.balance(addr(1)).unwrap();
    let miner = mine_after(node.url(), Duration::from_millis(1_500));
    let mut s = sender(&node.url(), Duration::from_millis(250));
    let r = s.send(transfer(7)).expect("mined once the block comes");
    miner.join().unwrap();
    let log = s.last_send().clone();
    assert_eq!(log.nonce, 0);
    assert!(!log.took_over_pending);
    assert!(log.versions.len() >= 3, "replaced while it waited: {log:?}");
    for w in log.versions.windows(2) {
        assert!(w[1].1 > w[0].1 && w[1].2 > w[0].2, "each version pays more: {log:?}");
        assert!(w[1].1 * 100 >= w[0].1 * 110, "by at least the 10 % nodes require: {log:?}");
    }
    assert_eq!(Some(r.tx_hash), log.mined);
    assert_eq!(log.mined, Some(log.versions.last().unwrap().0), "the node keeps the last, highest version");
    assert_eq!(reader.nonce(addr(0)).unwrap(), 1, "one transaction mined");
    assert_eq!(reader.pending_nonce(addr(0)).unwrap(), 1, "none left pending");
    assert_eq!(reader.balance(addr(1)).unwrap(), before + U256::from(7), "paid once");
    for (h, _, _) in &log.versions[..log.versions.len() - 1] {
        assert_eq!(reader.gas_used(*h).unwrap(), None, "a replaced version is never mined");
    }
}

#[test]
fn a_restarted_sender_takes_over_its_pending_nonce_instead_of_adding_a_transaction() {
    let node = node();
    let mut reader = Rpc::connect(&node.url(), None, vec![]).unwrap();
    let before = reader.balance(addr(1)).unwrap();
    // A first run sends and then waits (as a process that will crash before its transaction is mined).
    let url = node.url();
    let _crashed = std::thread::spawn(move || sender(&url, Duration::from_secs(3_600)).send(transfer(1)));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while reader.pending_nonce(addr(0)).unwrap() == 0 {
        assert!(std::time::Instant::now() < deadline, "the first run's transaction reached the pool");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The restarted run sends the payment again: it replaces the pending one rather than queueing a second.
    let miner = mine_after(node.url(), Duration::from_millis(1_000));
    let mut s = sender(&node.url(), Duration::from_millis(250));
    s.send(transfer(2)).expect("the restarted run's version is mined");
    miner.join().unwrap();
    let log = s.last_send().clone();
    assert!(log.took_over_pending, "{log:?}");
    assert_eq!(log.nonce, 0, "the pending nonce, not the next one");
    assert_eq!(reader.nonce(addr(0)).unwrap(), 1, "one transaction mined");
    assert_eq!(reader.pending_nonce(addr(0)).unwrap(), 1, "and nothing else pending");
    assert_eq!(reader.balance(addr(1)).unwrap(), before + U256::from(2), "only the replacement paid");
}

#[test]
fn a_fee_ceiling_below_the_chain_s_base_fee_sends_nothing_and_says_why() {
    let node = node();
    let key = signer_from_hex(DEV_KEYS[0]).unwrap();
    let policy = SendPolicy { max_fee_per_gas: 1, stuck_after: Duration::from_millis(200), ..Default::default() };
    let mut s = Rpc::connect(&node.url(), Some(31_337), vec![key]).unwrap().with_policy(policy);
    let e = s.send(transfer(1)).unwrap_err().to_string();
    assert!(e.contains("fee") || e.contains("base"), "{e}");
    let mut reader = Rpc::connect(&node.url(), None, vec![]).unwrap();
    assert_eq!((reader.nonce(addr(0)).unwrap(), reader.pending_nonce(addr(0)).unwrap()), (0, 0), "nothing sent");
}
