//! Liveness of sends on a real node: anvil without automatic mining holds transactions in its pool, as a congested
//! chain does. A transaction not mined in time is replaced at the same nonce with higher fees, and a sender that
//! restarts while its earlier transaction is pending takes that nonce over: one payment never has two
//! transactions that could both be mined. A send whose answer is lost on the way back is found by the hash the
//! sender computed before sending, not sent as a second transaction.

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

/// A proxy in front of `upstream` that forwards every JSON-RPC request but swallows the answer to the first
/// `eth_sendRawTransaction`: the node took the transaction, the sender saw the connection break. Returns its URL and
/// the number of raw sends that went through it.
fn lossy_proxy(upstream: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sends = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = sends.clone();
    let up = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let (up, counter) = (up.clone(), counter.clone());
            std::thread::spawn(move || {
                // One request per connection: read the head and the body, forward it with `connection: close`.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match client.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match client.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = &buf[head_end..head_end + len];
                let raw_send = String::from_utf8_lossy(body).contains("eth_sendRawTransaction");
                let mut request: Vec<u8> = Vec::new();
                for l in head.split("\r\n").filter(|l| !l.is_empty() && !l.to_lowercase().starts_with("connection:")) {
                    request.extend_from_slice(l.as_bytes());
                    request.extend_from_slice(b"\r\n");
                }
                request.extend_from_slice(b"connection: close\r\n\r\n");
                request.extend_from_slice(body);
                let mut node = std::net::TcpStream::connect(&up).unwrap();
                node.write_all(&request).unwrap();
                let mut answer = Vec::new();
                let _ = node.read_to_end(&mut answer);
                if raw_send && counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    return; // the node has it; the sender never hears so
                }
                let _ = client.write_all(&answer);
            });
        }
    });
    (url, sends)
}

/// The answer to a send is lost after the node took it: the sender sends the same signed bytes again, the node says
/// it has them (or, once mined, that the nonce is used), and the sender still finds its transaction by the hash it
/// computed before sending. One transaction, paid once, no error.
fn a_lost_answer(node: Anvil, mine: bool) {
    let mut reader = Rpc::connect(&node.url(), None, vec![]).unwrap();
    let before = reader.balance(addr(1)).unwrap();
    let (url, sends) = lossy_proxy(node.url());
    let miner = mine.then(|| mine_after(node.url(), Duration::from_millis(1_000)));
    let mut s = sender(&url, Duration::from_secs(30));
    let r = s.send(transfer(5)).expect("the transaction whose answer was lost is found and reported");
    if let Some(m) = miner {
        m.join().unwrap();
    }
    let log = s.last_send().clone();
    assert!(sends.load(std::sync::atomic::Ordering::SeqCst) >= 2, "the first answer was swallowed, so it was resent");
    assert_eq!(log.mined, Some(r.tx_hash), "{log:?}");
    assert_eq!(reader.nonce(addr(0)).unwrap(), 1, "one transaction mined");
    assert_eq!(reader.pending_nonce(addr(0)).unwrap(), 1, "none left pending");
    assert_eq!(reader.balance(addr(1)).unwrap(), before + U256::from(5), "paid once");
}

#[test]
fn a_send_whose_answer_was_lost_is_found_by_its_hash_while_pending() {
    a_lost_answer(node(), true);
}

#[test]
fn a_send_whose_answer_was_lost_is_found_by_its_hash_once_mined() {
    let bin = anvil_binary().unwrap().expect("anvil is installed from contracts/ by npm");
    a_lost_answer(Anvil::start(&bin, 31_337).unwrap(), false);
}
