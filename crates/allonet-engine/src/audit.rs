//! Money-path steps appended to the governance audit log (the SQLite store's hash chain), so that `allonet gov
//! audit verify` covers decisions and executions alike.

use allonet_governance::governor::Act;
use allonet_store::Store;
use serde::Serialize;

use crate::EngineError;

/// Append an [`Act::Record`] with `detail` as canonical JSON, signed by the store's operator, at the store's clock
/// (in a rehearsal: `now`, or the log's last time if that is later). Returns the entry's sequence number.
pub fn record<T: Serialize>(store: &mut Store, kind: &str, detail: &T, now: u64) -> Result<u64, EngineError> {
    let key = store.operator().cloned().ok_or_else(|| {
        EngineError::Config("recording in the audit log needs the governance database's operator key".into())
    })?;
    let at = store.governor().rehearsal.then(|| now.max(store.governor().last_at));
    let act = Act::Record { kind: kind.to_string(), detail: allonet_core::canonical_json(detail) };
    crate::offchain::submit_act(store, &key, act, at)
        .map_err(|e| EngineError::Config(format!("cannot append to the audit log: {e}")))
}

/// Write the store's log as JSON Lines to `out` (atomically): one [`allonet_store::LogEntry`] a line, the exact
/// bytes hashed, so anyone can re-verify it ([`read_export`], [`allonet_store::verify_log`]) without the database.
/// The log must verify first. Returns the number of entries.
pub fn export(store: &Store, out: &std::path::Path) -> Result<u64, EngineError> {
    store.verify_audit().map_err(|b| EngineError::Config(b.to_string()))?;
    let entries = store.entries().map_err(|e| EngineError::Config(e.to_string()))?;
    let mut text = String::new();
    for e in &entries {
        text.push_str(&serde_json::to_string(e).map_err(|e| EngineError::Config(e.to_string()))?);
        text.push('\n');
    }
    crate::write_atomic(out, text.as_bytes())?;
    Ok(entries.len() as u64)
}

/// Read an exported log; a line that is not an entry is named by its line number.
pub fn read_export(path: &std::path::Path) -> Result<Vec<allonet_store::LogEntry>, EngineError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| EngineError::Io { path: path.display().to_string(), cause: e })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                EngineError::Input(allonet_core::InputError::file(
                    format!("{}:{}", path.display(), i + 1),
                    format!("not a log entry: {e}"),
                ))
            })
        })
        .collect()
}

/// What anchoring wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Anchoring {
    /// The DAO id.
    pub dao: alloy_primitives::B256,
    /// The entry anchored.
    pub seq: u64,
    /// Its hash.
    pub head: alloy_primitives::B256,
    /// The anchor contract.
    pub anchor: alloy_primitives::Address,
    /// The chain.
    pub chain_id: u64,
    /// Transaction.
    pub tx_hash: alloy_primitives::B256,
    /// Gas.
    pub gas_used: u64,
}

fn anchor_contract(dep: &crate::connect::DeploymentFile) -> Result<alloy_primitives::Address, EngineError> {
    let a = dep.deployment.anchor;
    if a.is_zero() {
        return Err(EngineError::Config(
            "the deployment has no anchor contract (deployed by `allonet chain deploy` from this version on)".into(),
        ));
    }
    Ok(a)
}

/// Write the store's head (DAO id, entry, hash) to the deployment's anchor contract, sent by the operator's key.
/// The head is the one the store verified (on opening, and each act since); an empty log is refused, and a head
/// already anchored by the contract's rule that anchored entries only grow.
pub fn anchor(store: &Store, deployment: &std::path::Path, rpc: Option<String>) -> Result<Anchoring, EngineError> {
    // the store verified its log when it opened and every act since: its head is what it verified
    let (seq, head) = store.head();
    if seq == 0 {
        return Err(EngineError::Config("the log is empty: nothing to anchor".into()));
    }
    let key =
        store.operator().cloned().ok_or_else(|| EngineError::Config("anchoring needs the operator's key".into()))?;
    let (mut conn, dep) = crate::govern::open_deployment(deployment, rpc, Some(&key))?;
    let contract = anchor_contract(&dep)?;
    let dao = store.governor().dao;
    let c = conn.chain();
    let r = allonet_chain::anchor::anchor(c, contract, key.address(), dao, seq, head)?;
    let chain_id = c.chain_id();
    conn.save()?;
    Ok(Anchoring { dao, seq, head, anchor: contract, chain_id, tx_hash: r.tx_hash, gas_used: r.gas_used })
}

/// What checking a log against its anchors found.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorCheck {
    /// Entries verified.
    pub entries: u64,
    /// Anchors by the operator, all checked.
    pub anchors: Vec<allonet_chain::anchor::Anchored>,
    /// Why these anchors are no evidence against whoever runs the chain, when they are not: the embedded EVM (its
    /// state file is its holder's to edit) or a development chain (anvil and Hardhat's 31337 and 1337, whose
    /// runner can rewrite storage and time). `None` on any other chain.
    pub caveat: Option<String>,
}

/// Check a verified log against every head its operator anchored on the deployment's chain: an anchored entry the
/// log lacks (a deleted tail) or holds with another hash (a rewrite, hashes recomputed or not) is named. A log its
/// operator never anchored is refused too: there is nothing outside it to check it against.
pub fn check_anchored(
    log: &allonet_store::VerifiedLog,
    deployment: &std::path::Path,
    rpc: Option<String>,
) -> Result<AnchorCheck, EngineError> {
    let (mut conn, dep) = crate::govern::open_deployment(deployment, rpc, None)?;
    let contract = anchor_contract(&dep)?;
    let g = &log.governor;
    let anchors = allonet_chain::anchor::anchors(conn.chain(), contract, g.dao, g.operator)?;
    if anchors.is_empty() {
        // a failed check, not a refusal to send: `Refused` would print "refused, nothing sent"
        return Err(EngineError::Config(format!(
            "the operator {} has anchored no head of DAO {} on {}: run `allonet gov audit anchor`",
            g.operator, g.dao, contract
        )));
    }
    let points: Vec<_> = anchors
        .iter()
        .map(|a| allonet_store::AnchorPoint { seq: a.seq, head: a.head, timestamp: a.timestamp })
        .collect();
    allonet_store::check_anchors(log, &points, !conn.is_embedded()).map_err(|b| EngineError::Config(b.to_string()))?;
    let chain_id = conn.chain().chain_id();
    let caveat = if conn.is_embedded() {
        Some(
            "these anchors are on the embedded EVM, whose state file its holder can edit: they show the method, not \
              evidence; anchor on a public chain"
                .to_string(),
        )
    } else if matches!(chain_id, 31_337 | 1_337) {
        Some(format!(
            "chain {chain_id} is a development chain whose runner can rewrite storage and time: anchor on a public chain"
        ))
    } else {
        None
    };
    Ok(AnchorCheck { entries: log.len(), anchors, caveat })
}
