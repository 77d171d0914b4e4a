//! The audit-log anchor (`AlloAnchor`) on the embedded EVM and on an anvil node (installed from npm by
//! `contracts/`'s lockfile): heads anchored and read back through the views, the contract's refusals, anchors
//! kept apart per sender and per DAO, and a reader that refuses a wrong address or a lying node instead of
//! reporting "no anchors".

use allonet_chain::anchor::{anchor, anchors, deploy_anchor, Anchored, MAX_ANCHORS};
use allonet_chain::anvil::{anvil_binary, Anvil, DEV_KEYS};
use allonet_chain::contracts::{revert_name, AlloAnchor};
use allonet_chain::deploy::{deploy, verify_deployment, Asset, DeployConfig, Deployment};
use allonet_chain::rpc::signer_from_hex;
use allonet_chain::{read, Chain, ChainError, Embedded, LogFilter, LogRecord, Receipt, Rpc, Tx};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_sol_types::SolCall;

const OPERATOR: Address = Address::repeat_byte(0x0a);
const OTHER: Address = Address::repeat_byte(0x0b);

fn dao(name: &str) -> B256 {
    keccak256(name.as_bytes())
}

fn head(seq: u64) -> B256 {
    keccak256([b"entry".as_slice(), &seq.to_be_bytes()].concat())
}

fn reason(r: Result<Receipt, ChainError>) -> String {
    let e = r.expect_err("expected a revert");
    e.revert_reason().unwrap_or_else(|| panic!("not a revert: {e}")).to_string()
}

/// Gas of an `anchor` call: the sender's first for a DAO, and a later one.
#[derive(Debug)]
struct Gas {
    first: u64,
    later: u64,
}

/// The whole behaviour on any backend; `operator` and `other` are funded senders.
fn scenario(c: &mut dyn Chain, operator: Address, other: Address) -> Gas {
    let a = deploy_anchor(c, operator).unwrap();
    let d = dao("allonet/demo");
    assert_eq!(anchors(c, a, d, operator).unwrap(), vec![], "a fresh anchor holds nothing");

    // Three heads, read back in order with the block each landed in and its time.
    let mut want = Vec::new();
    let mut gas = Vec::new();
    for seq in [3u64, 10, 11] {
        let r = anchor(c, a, operator, d, seq, head(seq)).unwrap();
        let ev = r.events::<AlloAnchor::Anchored>();
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].dao, ev[0].by, ev[0].seq, ev[0].head), (d, operator, seq, head(seq)));
        gas.push(r.gas_used);
        want.push(Anchored { by: operator, seq, head: head(seq), timestamp: c.timestamp().unwrap(), block: r.block });
    }
    let got = anchors(c, a, d, operator).unwrap();
    assert_eq!(got, want);
    assert!(got.windows(2).all(|w| w[0].block < w[1].block && w[0].timestamp <= w[1].timestamp));

    // A seq not above the last is refused by the contract, named, and nothing is sent.
    let block = c.block_number().unwrap();
    for seq in [11u64, 5] {
        let why = reason(anchor(c, a, operator, d, seq, head(seq)));
        assert_eq!(revert_name(&why), "SeqNotIncreasing", "{why}");
        assert!(why.contains("last: 11") && why.contains(&format!("seq: {seq}")), "{why}");
    }
    assert_eq!(revert_name(&reason(anchor(c, a, operator, d, 0, head(0)))), "ZeroSeq");
    assert_eq!(revert_name(&reason(anchor(c, a, operator, d, 12, B256::ZERO))), "ZeroHead");
    assert_eq!(c.block_number().unwrap(), block, "no refused anchor was sent");
    assert_eq!(anchors(c, a, d, operator).unwrap(), want, "refusals change nothing");
    let past = AlloAnchor::anchorAtCall { dao: d, by: operator, i: U256::from(3) };
    let err = read(c, a, &past).unwrap_err();
    assert_eq!(revert_name(err.revert_reason().unwrap()), "NoSuchAnchor", "{err}");

    // Another sender's anchors of the same DAO, and the operator's of another DAO, are separate: each starts
    // over at any seq, and neither shows in the other's list.
    assert_eq!(anchors(c, a, d, other).unwrap(), vec![]);
    let r = anchor(c, a, other, d, 1, head(100)).unwrap();
    let theirs = anchors(c, a, d, other).unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!((theirs[0].by, theirs[0].seq, theirs[0].head, theirs[0].block), (other, 1, head(100), r.block));
    let d2 = dao("another dao");
    assert_eq!(anchors(c, a, d2, operator).unwrap(), vec![]);
    anchor(c, a, operator, d2, 2, head(2)).unwrap();
    assert_eq!(anchors(c, a, d2, operator).unwrap().iter().map(|x| x.seq).collect::<Vec<_>>(), vec![2]);
    assert_eq!(anchors(c, a, d, operator).unwrap(), want, "the operator's first DAO is unchanged");
    gas.push(anchor(c, a, operator, d, 12, head(12)).unwrap().gas_used);

    // An address without code (a key, an unused address) is an error, not "no anchors".
    for nowhere in [operator, Address::repeat_byte(0x77)] {
        let err = anchors(c, nowhere, d, operator).unwrap_err().to_string();
        assert!(err.contains(&format!("{nowhere} has no contract")) && err.contains("not an AlloAnchor"), "{err}");
    }
    Gas { first: gas[0], later: gas[1].max(gas[2]).max(gas[3]) }
}

fn check_gas(g: &Gas, on: &str) {
    eprintln!("AlloAnchor.anchor gas on {on}: first {} / later {}", g.first, g.later);
    // Two fresh slots (the packed seq/time/block and the head) plus the array length: first ~ 90k, then ~ 70k.
    assert!(g.first < 100_000 && g.later < 80_000 && g.later < g.first, "{g:?}");
}

#[test]
fn anchors_are_appended_refused_and_read_back_on_the_embedded_evm() {
    let mut c = Embedded::new();
    for who in [OPERATOR, OTHER] {
        c.fund(who, U256::from(10u64).pow(U256::from(20)));
    }
    let g = scenario(&mut c, OPERATOR, OTHER);
    check_gas(&g, "the embedded EVM");
}

#[test]
fn anchors_are_appended_refused_and_read_back_on_anvil() {
    let Some(bin) = anvil_binary().unwrap() else {
        eprintln!("SKIP: npm is not installed, cannot install anvil");
        return;
    };
    let node = Anvil::start(&bin, 31_337).unwrap();
    let keys: Vec<_> = DEV_KEYS[..2].iter().map(|k| signer_from_hex(k).unwrap()).collect();
    let (op, other) = (keys[0].address(), keys[1].address());
    let mut c = Rpc::connect(&node.url(), Some(31_337), keys).unwrap();
    let g = scenario(&mut c, op, other);
    check_gas(&g, "anvil");
}

/// A node that lies about `AlloAnchor`'s views: every other request goes to the embedded chain.
struct Lying {
    inner: Embedded,
    count: Option<U256>,
    seq_of_second: Option<u64>,
}

impl Chain for Lying {
    fn chain_id(&self) -> u64 {
        self.inner.chain_id()
    }
    fn describe(&self) -> String {
        "a lying node".into()
    }
    fn block_number(&mut self) -> Result<u64, ChainError> {
        self.inner.block_number()
    }
    fn timestamp(&mut self) -> Result<u64, ChainError> {
        self.inner.timestamp()
    }
    fn balance(&mut self, who: Address) -> Result<U256, ChainError> {
        self.inner.balance(who)
    }
    fn code(&mut self, who: Address) -> Result<Bytes, ChainError> {
        self.inner.code(who)
    }
    fn call(&mut self, from: Address, to: Address, data: Bytes) -> Result<Bytes, ChainError> {
        let out = self.inner.call(from, to, data.clone())?;
        if let (Some(n), Ok(_)) = (self.count, AlloAnchor::anchorCountCall::abi_decode(&data)) {
            return Ok(AlloAnchor::anchorCountCall::abi_encode_returns(&n).into());
        }
        if let (Some(seq), Ok(c)) = (self.seq_of_second, AlloAnchor::anchorAtCall::abi_decode(&data)) {
            if c.i == U256::from(1) {
                let mut a = AlloAnchor::anchorAtCall::abi_decode_returns(&out).unwrap();
                a.seq = seq;
                return Ok(AlloAnchor::anchorAtCall::abi_encode_returns(&a).into());
            }
        }
        Ok(out)
    }
    fn estimate_gas(&mut self, tx: &Tx) -> Result<u64, ChainError> {
        self.inner.estimate_gas(tx)
    }
    fn send(&mut self, tx: Tx) -> Result<Receipt, ChainError> {
        self.inner.send(tx)
    }
    fn nonce(&mut self, who: Address) -> Result<u64, ChainError> {
        self.inner.nonce(who)
    }
    fn gas_used(&mut self, tx_hash: alloy_primitives::B256) -> Result<Option<u64>, ChainError> {
        self.inner.gas_used(tx_hash)
    }
    fn logs(&mut self, filter: &LogFilter) -> Result<Vec<LogRecord>, ChainError> {
        self.inner.logs(filter)
    }
    fn signers(&self) -> Vec<Address> {
        self.inner.signers()
    }
}

#[test]
fn a_node_that_lies_about_the_anchors_is_refused_not_followed() {
    let mut inner = Embedded::new();
    inner.fund(OPERATOR, U256::from(10u64).pow(U256::from(20)));
    let mut c = Lying { inner, count: None, seq_of_second: None };
    let a = deploy_anchor(&mut c, OPERATOR).unwrap();
    let d = dao("allonet/demo");
    for seq in [1u64, 2] {
        anchor(&mut c, a, OPERATOR, d, seq, head(seq)).unwrap();
    }
    assert_eq!(anchors(&mut c, a, d, OPERATOR).unwrap().len(), 2);
    // An endless count is refused before the first anchorAt call.
    c.count = Some(U256::MAX);
    let err = anchors(&mut c, a, d, OPERATOR).unwrap_err().to_string();
    assert!(err.contains("more than the 1000000 read, refused"), "{err}");
    c.count = Some(U256::from(MAX_ANCHORS + 1));
    assert!(anchors(&mut c, a, d, OPERATOR).is_err());
    // A second anchor whose seq does not increase is something the contract never stores.
    c.count = None;
    c.seq_of_second = Some(1);
    let err = anchors(&mut c, a, d, OPERATOR).unwrap_err().to_string();
    assert!(err.contains("seq 1 after seq 1") && err.contains("cannot be trusted"), "{err}");
}

fn config() -> DeployConfig {
    let holder = Address::repeat_byte(0x41);
    DeployConfig {
        deployer: OPERATOR,
        agent: OTHER,
        guardian: Address::repeat_byte(0x0c),
        asset: Asset::NewToken { symbol: "USDC".into(), decimals: 6, supply: U256::from(10u64).pow(U256::from(15)) },
        epoch_length: 86_400,
        holders: vec![(holder, U256::from(1_000u64))],
        voting_delay: 1,
        voting_period: 20,
        quorum_percent: 4,
        timelock_delay: 3_600,
        fund: U256::from(1_000u64),
        hand_to_timelock: true,
    }
}

#[test]
fn a_deployment_includes_an_anchor_the_deployer_holds_no_power_over() {
    let mut c = Embedded::new();
    for who in [OPERATOR, OTHER] {
        c.fund(who, U256::from(10u64).pow(U256::from(20)));
    }
    let cfg = config();
    let (d, steps) = deploy(&mut c, &cfg).unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(steps.len(), 8, "token, timelock, governor, bind, pay token, allocator, anchor, funding: {names:?}");
    assert_eq!(names[6], "AlloAnchor");
    eprintln!("AlloAnchor deployment gas: {}", steps[6].gas_used);
    assert!(!c.code(d.anchor).unwrap().is_empty());
    assert!(verify_deployment(&mut c, &d, &cfg).unwrap().is_empty());
    // Anyone anchors in it, the deployer included, each in its own list.
    anchor(&mut c, d.anchor, OTHER, dao("x"), 7, head(7)).unwrap();
    assert_eq!(anchors(&mut c, d.anchor, dao("x"), OTHER).unwrap()[0].seq, 7);
    assert_eq!(anchors(&mut c, d.anchor, dao("x"), OPERATOR).unwrap(), vec![]);

    // A deployment naming no anchor, or an address without code, is named by the verification.
    for (anchor, want) in [(Address::ZERO, "names no anchor"), (Address::repeat_byte(0x77), "has no contract")] {
        let bad = Deployment { anchor, ..d.clone() };
        let problems = verify_deployment(&mut c, &bad, &cfg).unwrap();
        assert!(problems.len() == 1 && problems[0].contains(want), "{problems:?}");
    }
    // Another contract (the allocator) does not answer as an anchor.
    let bad = Deployment { anchor: d.allocator, ..d.clone() };
    let problems = verify_deployment(&mut c, &bad, &cfg).unwrap();
    assert!(problems.len() == 1 && problems[0].contains("does not answer as an AlloAnchor"), "{problems:?}");

    // A deployment file written before the anchor existed still loads (anchor zero).
    let mut v = serde_json::to_value(&d).unwrap();
    v.as_object_mut().unwrap().remove("anchor");
    let old: Deployment = serde_json::from_value(v).unwrap();
    assert_eq!(old, Deployment { anchor: Address::ZERO, ..d });
}
