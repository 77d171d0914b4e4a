//! On-chain anchors of the off-chain governance audit log (`AlloAnchor`).
//!
//! The off-chain governor keeps a hash-chained audit log: entry n carries hash_n, which covers hash_{n−1}. The
//! chain of hashes shows an entry edited in place, but not a database rewritten from some entry on with every
//! later hash recomputed, nor a log whose tail was deleted: whoever can write the database can do both. So the
//! operator now and then writes the log's head, `(DAO id, seq, hash_seq)`, on chain with [`anchor`]; a
//! verifier later reads every anchor back with [`anchors`] and checks that the database still holds, at each
//! anchored seq, the anchored hash. A rewritten entry at or before an anchor changes that hash, and a deleted
//! tail loses an anchored seq; what happened after the last anchor is covered by the next one.
//!
//! The contract has no owner: anchors are kept per (DAO id, sender), each sender's seqs strictly increase, and
//! the block's time and number are recorded with each. A verifier reads the anchors of the key it trusts.
//! Anchors are read through the contract's views, not from logs, so a node that drops logs cannot hide one; the
//! node is still trusted to answer calls truthfully, but an address without code, an absurd count or answers
//! that break the contract's rules are refused rather than read as "no anchors".
//!
//! ```
//! use allonet_chain::anchor::{anchor, anchors, deploy_anchor};
//! use allonet_chain::Embedded;
//! use alloy_primitives::{keccak256, Address, U256};
//!
//! let operator = Address::repeat_byte(0x0a);
//! let mut chain = Embedded::new();
//! chain.fund(operator, U256::from(10u64).pow(U256::from(18)));
//! let at = deploy_anchor(&mut chain, operator).unwrap();
//! let dao = keccak256("my dao");
//! anchor(&mut chain, at, operator, dao, 42, keccak256("hash of entry 42")).unwrap();
//! let read = anchors(&mut chain, at, dao, operator).unwrap();
//! assert_eq!((read[0].seq, read[0].head), (42, keccak256("hash of entry 42")));
//! // Seq 42 again: the contract refuses it, and says why.
//! let err = anchor(&mut chain, at, operator, dao, 42, keccak256("rewritten")).unwrap_err();
//! assert!(err.to_string().contains("SeqNotIncreasing"));
//! ```

use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

use crate::chain::{read, transact, Chain, ChainError, Receipt, Tx};
use crate::contracts::AlloAnchor;

/// The most anchors [`anchors`] reads for one (DAO, sender): a node answering with a larger count is refused
/// rather than followed into a loop of calls (a million hourly anchors is over a century).
pub const MAX_ANCHORS: u64 = 1_000_000;

/// One anchor as the contract holds it: `by` anchored the log at entry `seq`, whose hash is `head`, in block
/// `block` at `timestamp` (Unix seconds, the block's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchored {
    pub by: Address,
    pub seq: u64,
    pub head: B256,
    pub timestamp: u64,
    pub block: u64,
}

/// Deploy an `AlloAnchor` from `from`: no constructor arguments, no owner, no roles. Returns its address.
pub fn deploy_anchor(chain: &mut dyn Chain, from: Address) -> Result<Address, ChainError> {
    let r = chain.send(Tx { from, to: None, data: AlloAnchor::BYTECODE.clone(), ..Default::default() })?;
    r.contract_address.ok_or_else(|| ChainError::Rpc("AlloAnchor: the receipt has no contract address".into()))
}

/// Anchor DAO `dao`'s audit log at entry `seq`, whose hash is `head`, as `from`. The contract refuses seq 0
/// (`ZeroSeq`), a zero head (`ZeroHead`) and a seq not above `from`'s last anchor for this DAO
/// (`SeqNotIncreasing { last, seq }`); the refusal comes back as [`ChainError::Reverted`] naming the error, and
/// nothing is sent.
pub fn anchor(
    chain: &mut dyn Chain,
    anchor: Address,
    from: Address,
    dao: B256,
    seq: u64,
    head: B256,
) -> Result<Receipt, ChainError> {
    transact(chain, from, anchor, &AlloAnchor::anchorCall { dao, seq, head })
}

/// Fail unless the code at `anchor` is AlloAnchor's, byte for byte (its runtime code has no immutables, so every
/// deployment's is the same): a wrong address (or chain) must not read as "no anchors", and a look-alike contract
/// whose anchors its owner could rewrite must not pass for one.
fn require_code(chain: &mut dyn Chain, anchor: Address) -> Result<(), ChainError> {
    let code = chain.code(anchor)?;
    if code.is_empty() {
        return Err(ChainError::Config(format!(
            "{anchor} has no contract on {}: not an AlloAnchor (wrong address or wrong chain?)",
            chain.describe()
        )));
    }
    if code != AlloAnchor::DEPLOYED_BYTECODE {
        return Err(ChainError::Config(format!(
            "{anchor} on {} does not answer as an AlloAnchor: its code is not AlloAnchor's ({} bytes; a look-alike \
             could rewrite its anchors)",
            chain.describe(),
            code.len()
        )));
    }
    Ok(())
}

/// Every anchor `by` wrote for `dao`, oldest first, read through the contract's views (`anchorCount`, then
/// `anchorAt` for each). Refuses an address without code, a count above [`MAX_ANCHORS`], and answers that break
/// the contract's rules (seq 0, a zero head, seqs not strictly increasing).
pub fn anchors(chain: &mut dyn Chain, anchor: Address, dao: B256, by: Address) -> Result<Vec<Anchored>, ChainError> {
    require_code(chain, anchor)?;
    let count = read(chain, anchor, &AlloAnchor::anchorCountCall { dao, by }).map_err(|e| match e {
        // Code that reverts or answers something else: another contract. Transport errors stay what they are.
        ChainError::Reverted { .. } => ChainError::Config(format!("{anchor} does not answer as an AlloAnchor: {e}")),
        ChainError::Rpc(m) if m.starts_with("cannot decode") => {
            ChainError::Config(format!("{anchor} does not answer as an AlloAnchor: {m}"))
        }
        e => e,
    })?;
    if count > U256::from(MAX_ANCHORS) {
        return Err(ChainError::Rpc(format!(
            "{} claims {count} anchors by {by} for DAO {dao} at {anchor}: more than the {MAX_ANCHORS} read, refused",
            chain.describe()
        )));
    }
    let n = count.to::<u64>();
    let mut out: Vec<Anchored> = Vec::with_capacity(n.min(1024) as usize);
    for i in 0..n {
        let a = read(chain, anchor, &AlloAnchor::anchorAtCall { dao, by, i: U256::from(i) })?;
        let broken = if a.seq == 0 || a.head == B256::ZERO {
            Some("a zero seq or head".to_string())
        } else {
            out.last().filter(|p| a.seq <= p.seq).map(|p| format!("seq {} after seq {}", a.seq, p.seq))
        };
        if let Some(what) = broken {
            return Err(ChainError::Rpc(format!(
                "anchor {i} by {by} for DAO {dao} at {anchor} has {what}, which the contract never stores: the \
                 node's answers cannot be trusted"
            )));
        }
        out.push(Anchored { by, seq: a.seq, head: a.head, timestamp: a.timestamp, block: a.blockNumber });
    }
    Ok(out)
}

/// Check that `anchor` holds a contract that answers `AlloAnchor`'s views; the problems found (none when it
/// does). Transport errors are errors, not problems.
pub fn verify_anchor(chain: &mut dyn Chain, anchor: Address) -> Result<Vec<String>, ChainError> {
    if anchor == Address::ZERO {
        return Ok(vec!["the deployment names no anchor contract".into()]);
    }
    if chain.code(anchor)?.is_empty() {
        return Ok(vec![format!("the anchor {anchor} has no contract")]);
    }
    if let Err(e) = read(chain, anchor, &AlloAnchor::anchorCountCall { dao: B256::ZERO, by: Address::ZERO }) {
        return Ok(vec![format!("the anchor {anchor} does not answer as an AlloAnchor: {e}")]);
    }
    Ok(Vec::new())
}
