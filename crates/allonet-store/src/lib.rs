//! # allonet-store
//!
//! SQLite persistence for governance: every accepted [`Event`] is one row of an append-only, hash-chained
//! log, written in one transaction together with the query projections and the operator's signature on the
//! new head; the governance state is rebuilt by replaying the log. WAL journal with `synchronous = FULL`, so
//! an acknowledged event survives a crash (SIGKILL or power loss) and a half-written one never appears.
//!
//! Audit chain: `hash_n = keccak256(hash_{n−1} ‖ n (8 bytes, big-endian) ‖ payload_n)`, with
//! `hash_0 = 0x00…00`. Opening a store re-verifies everything ([`verify_log`]): the chain, every actor's
//! signature, nonce, clock window and rights (by replaying the rules), and the operator's signature on each
//! head; a broken log is refused with its first broken entry named. What the chain cannot show (a rewrite
//! with every later hash recomputed, a deleted tail) the on-chain anchors show: [`check_anchors`].
//!
//! Time: a store stamps each event with its own clock (the system clock; a test may give another). Only a
//! rehearsal DAO (created with `rehearsal: true`) takes the caller's times.

use allonet_governance::acts::{head_hash, recover, sign_hash, verify, Verified};
use allonet_governance::governor::{Act, Event, GovError, Governor};
use allonet_governance::{Clock, SystemClock};
use alloy_primitives::{keccak256, Address, B256};
use alloy_signer_local::PrivateKeySigner;
use rayon::prelude::*;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the event log and the votes projection
    "CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
     );
     CREATE TABLE votes (
        proposal TEXT NOT NULL,
        voter TEXT NOT NULL,
        seq INTEGER NOT NULL REFERENCES events(seq),
        PRIMARY KEY (proposal, voter)
     );",
    // 2: proposals projection for listing
    "CREATE TABLE proposals (
        id TEXT PRIMARY KEY,
        proposer TEXT NOT NULL,
        description TEXT NOT NULL,
        seq INTEGER NOT NULL REFERENCES events(seq)
     );",
    // 3: every act signed; the operator's signature on the head after each write
    "CREATE TABLE heads (
        seq INTEGER PRIMARY KEY REFERENCES events(seq),
        signature TEXT NOT NULL
     );",
];

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// Governance refused the event.
    #[error(transparent)]
    Gov(#[from] GovError),
    /// The log does not verify.
    #[error("{0}")]
    Broken(AuditBreak),
    /// Writing needs the operator's key (or the key given is not the operator's).
    #[error("{0}")]
    Operator(String),
}

/// A broken audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    /// The first entry that does not verify (0: the log as a whole).
    pub seq: u64,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the audit log is broken at entry #{}: {}", self.seq, self.reason)
    }
}

/// The chain hash of an entry.
pub fn chain_hash(prev: B256, seq: u64, payload: &str) -> B256 {
    let mut buf = Vec::with_capacity(32 + 8 + payload.len());
    buf.extend_from_slice(prev.as_slice());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(payload.as_bytes());
    keccak256(&buf)
}

/// One entry of the log, as stored and as exported (one JSON line each by `gov audit export`): the payload is
/// the exact bytes hashed, so anyone can re-verify an export without allonet's database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position, from 1.
    pub seq: u64,
    /// Received at (unix seconds).
    pub at: u64,
    /// The act's kind.
    pub kind: String,
    /// The event as canonical JSON (the hashed bytes).
    pub payload: String,
    /// The previous entry's hash.
    pub prev_hash: B256,
    /// This entry's hash.
    pub hash: B256,
    /// The operator's signature on this entry as the head after a write (EIP-712 `Head`), when it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_signature: Option<String>,
    /// A rehearsal DAO's log (times chosen by the caller).
    #[serde(default)]
    pub rehearsal: bool,
}

/// What verifying a log establishes.
#[derive(Clone, Debug)]
pub struct VerifiedLog {
    /// The state the log replays to.
    pub governor: Governor,
    /// Each entry's hash and time, by position (index 0 is entry #1).
    pub hashes: Vec<(B256, u64)>,
    /// Entries the operator signed as heads.
    pub signed_heads: u64,
}

impl VerifiedLog {
    /// Entries.
    pub fn len(&self) -> u64 {
        self.hashes.len() as u64
    }
    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
    /// The head: last seq and hash.
    pub fn head(&self) -> (u64, B256) {
        (self.len(), self.hashes.last().map(|h| h.0).unwrap_or(B256::ZERO))
    }

    /// Refuses a log (not a rehearsal) whose entries claim times ahead of `now` by more than the clock drift a
    /// signature is allowed: receipt times are the store's clock, so a later one was written by someone
    /// pretending the voting period or the timelock had passed.
    pub fn check_not_ahead(&self, now: u64) -> Result<(), AuditBreak> {
        if self.governor.rehearsal {
            return Ok(());
        }
        let limit = now.saturating_add(allonet_governance::governor::MAX_FUTURE_DRIFT);
        match self.hashes.iter().position(|&(_, at)| at > limit) {
            None => Ok(()),
            Some(i) => Err(AuditBreak {
                seq: i as u64 + 1,
                reason: format!(
                    "it claims time {}, ahead of the clock ({now}): a log cannot hold acts received in the future",
                    self.hashes[i].1
                ),
            }),
        }
    }
}

/// Verifies a whole log: positions from 1 without gaps, each hash from its predecessor and payload, each
/// payload an event of its kind, every signature (in parallel), then every nonce, time and rule by replaying,
/// and each head signature against the operator the genesis names. The last entry must be a signed head
/// (every write ends with one). Names the first broken entry.
pub fn verify_log(entries: &[LogEntry]) -> Result<VerifiedLog, AuditBreak> {
    let brk = |seq: u64, reason: String| AuditBreak { seq, reason };
    let mut prev = B256::ZERO;
    let mut events = Vec::with_capacity(entries.len());
    for (i, en) in entries.iter().enumerate() {
        let expected = i as u64 + 1;
        if en.seq != expected {
            return Err(brk(expected, format!("entry missing (next stored entry is #{})", en.seq)));
        }
        if en.prev_hash != prev {
            return Err(brk(en.seq, "its previous-hash field does not match the entry before it".into()));
        }
        let recomputed = chain_hash(prev, en.seq, &en.payload);
        if en.hash != recomputed {
            return Err(brk(
                en.seq,
                format!("its hash does not match its contents (stored {}, recomputed {recomputed})", en.hash),
            ));
        }
        let e: Event =
            serde_json::from_str(&en.payload).map_err(|e| brk(en.seq, format!("payload is not an event: {e}")))?;
        if allonet_core::canonical_json(&e) != en.payload {
            return Err(brk(
                en.seq,
                "its payload is not the canonical JSON of its event (one act, one encoding)".into(),
            ));
        }
        if e.act.kind() != en.kind || e.at != en.at {
            return Err(brk(
                en.seq,
                format!("its kind or time columns (`{}`, {}) do not match the payload", en.kind, en.at),
            ));
        }
        events.push(e);
        prev = recomputed;
    }
    let Some(first) = events.first() else {
        return Ok(VerifiedLog { governor: Governor::default(), hashes: vec![], signed_heads: 0 });
    };
    let (dao, chain_id) = match &first.act {
        Act::Init { chain_id, .. } => {
            (allonet_governance::acts::dao_id(first).map_err(|e| brk(1, e.to_string()))?, *chain_id)
        }
        _ => return Err(brk(1, "the first entry is not the DAO's genesis".into())),
    };
    // collected in full, then searched in order: collecting the parallel iterator straight into a `Result`
    // would return whichever failure a thread met first, not the first broken entry
    let checked: Vec<Result<Verified<'_>, AuditBreak>> = events
        .par_iter()
        .enumerate()
        .map(|(i, e)| verify(e, dao, chain_id).map_err(|err| brk(i as u64 + 1, err.to_string())))
        .collect();
    let verified: Vec<Verified<'_>> = checked.into_iter().collect::<Result<_, _>>()?;
    let mut g = Governor::default();
    for (i, v) in verified.into_iter().enumerate() {
        g.apply_verified(v).map_err(|err| brk(i as u64 + 1, format!("refused on replay: {err}")))?;
    }
    // head signatures in parallel too; the first failure by position is named
    let operator = g.operator;
    let heads: Vec<Result<bool, AuditBreak>> = entries
        .par_iter()
        .map(|en| {
            let Some(sig) = &en.head_signature else { return Ok(false) };
            let who = recover(head_hash(dao, chain_id, en.seq, en.hash, en.at), sig)
                .map_err(|e| brk(en.seq, format!("head signature: {e}")))?;
            if who != operator {
                return Err(brk(en.seq, format!("its head was signed by {who}, not by the operator {operator}")));
            }
            Ok(true)
        })
        .collect();
    let mut signed_heads = 0;
    for h in heads {
        signed_heads += h? as u64;
    }
    if entries.last().is_some_and(|l| l.head_signature.is_none()) {
        return Err(brk(
            entries.len() as u64,
            "the last entry carries no operator signature (entries were added outside the store)".into(),
        ));
    }
    if entries.iter().any(|en| en.rehearsal != g.rehearsal) {
        return Err(brk(0, "entries disagree with the genesis on whether this is a rehearsal".into()));
    }
    let hashes = entries.iter().map(|e| (e.hash, e.at)).collect();
    Ok(VerifiedLog { governor: g, hashes, signed_heads })
}

/// A head written on chain: entry `seq` had hash `head`, no later than `timestamp` (the block's time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorPoint {
    /// Entry.
    pub seq: u64,
    /// Its hash.
    pub head: B256,
    /// Block time of the anchoring transaction.
    pub timestamp: u64,
}

/// Checks a verified log against every anchor its operator wrote: each anchored entry must exist (a shorter
/// log lost its tail), have the anchored hash (a different one was rewritten, hashes recomputed or not), and
/// have been received no later than the anchoring block (plus the clock drift a signature is allowed), when
/// `chain_clock` says the chain's time is real (not on the embedded EVM, whose clock moves only when told) and the
/// log is not a rehearsal (whose clock is the caller's); then, too, no later entry may claim a time before the
/// anchoring block (less that drift).
/// Returns how many anchors were checked.
pub fn check_anchors(log: &VerifiedLog, anchors: &[AnchorPoint], chain_clock: bool) -> Result<usize, AuditBreak> {
    let n = log.len();
    for a in anchors {
        if a.seq == 0 || a.seq > n {
            return Err(AuditBreak {
                seq: a.seq,
                reason: format!(
                    "the operator anchored entry #{} on chain but the log ends at #{n}: entries were deleted",
                    a.seq
                ),
            });
        }
        let (hash, at) = log.hashes[(a.seq - 1) as usize];
        if hash != a.head {
            return Err(AuditBreak {
                seq: a.seq,
                reason: format!(
                    "the log's entry has hash {hash} but the chain anchored {} at block time {}: the log was rewritten",
                    a.head, a.timestamp
                ),
            });
        }
        // a rehearsal's clock is the caller's: only a real log's times are held to the chain's
        if chain_clock && !log.governor.rehearsal {
            let drift = allonet_governance::governor::MAX_FUTURE_DRIFT;
            if at > a.timestamp.saturating_add(drift) {
                return Err(AuditBreak {
                    seq: a.seq,
                    reason: format!("the entry claims time {at}, after the block that anchored it ({})", a.timestamp),
                });
            }
            // and nothing appended after the anchor may claim to have been received before it: otherwise an
            // expired proposal could be executed, or a late vote revive a defeated one, "back in time"
            let floor = a.timestamp.saturating_sub(drift);
            if let Some(i) = log.hashes[a.seq as usize..].iter().position(|&(_, t)| t < floor) {
                let seq = a.seq + 1 + i as u64;
                return Err(AuditBreak {
                    seq,
                    reason: format!(
                        "it comes after entry #{} anchored at block time {} but claims time {}: an entry backdated \
                         behind an anchor",
                        a.seq,
                        a.timestamp,
                        log.hashes[(seq - 1) as usize].1
                    ),
                });
            }
        }
    }
    Ok(anchors.len())
}

/// A governance database.
pub struct Store {
    conn: Connection,
    gov: Governor,
    head_seq: u64,
    head_hash: B256,
    clock: Arc<dyn Clock>,
    operator: Option<PrivateKeySigner>,
}

impl Store {
    /// Opens (creating and migrating when needed) with the system clock, verifying the whole log.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with_clock(path, Arc::new(SystemClock))
    }

    /// Opens with another clock (tests and simulations), verifying the whole log.
    pub fn open_with_clock(path: &Path, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if (1..3).contains(&version) {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
            if n > 0 {
                return Err(StoreError::Broken(AuditBreak {
                    seq: 0,
                    reason: format!(
                        "{} was written by an allonet whose acts were unsigned; this version opens only signed logs",
                        path.display()
                    ),
                }));
            }
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        let mut s = Store { conn, gov: Governor::default(), head_seq: 0, head_hash: B256::ZERO, clock, operator: None };
        s.reload()?;
        Ok(s)
    }

    /// Gives the store the operator's key, which signs the head after each write. Refused when the key is not
    /// the operator the genesis names.
    pub fn set_operator(&mut self, key: PrivateKeySigner) -> Result<(), StoreError> {
        if !self.is_empty() && key.address() != self.gov.operator {
            return Err(StoreError::Operator(format!(
                "{} is not this DAO's operator ({}); only the operator's key writes to its log",
                key.address(),
                self.gov.operator
            )));
        }
        self.operator = Some(key);
        Ok(())
    }

    /// The operator's key, when the store was given it.
    pub fn operator(&self) -> Option<&PrivateKeySigner> {
        self.operator.as_ref()
    }

    /// Every entry, in order.
    pub fn entries(&self) -> Result<Vec<LogEntry>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT e.seq, e.at, e.kind, e.payload, e.prev_hash, e.hash, h.signature
             FROM events e LEFT JOIN heads h ON h.seq = e.seq ORDER BY e.seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let rehearsal = self.gov.rehearsal;
        let mut out = Vec::new();
        for r in rows {
            let (seq, at, kind, payload, prev, hash, head_signature) = r?;
            let seq = seq as u64;
            let h = |s: &str| {
                s.parse::<B256>()
                    .map_err(|_| StoreError::Broken(AuditBreak { seq, reason: format!("`{s}` is not a 32-byte hash") }))
            };
            out.push(LogEntry {
                seq,
                at: at as u64,
                kind,
                payload,
                prev_hash: h(&prev)?,
                hash: h(&hash)?,
                head_signature,
                rehearsal,
            });
        }
        Ok(out)
    }

    /// Rebuilds the in-memory state from the log, verifying it.
    fn reload(&mut self) -> Result<(), StoreError> {
        let mut entries = self.entries()?;
        // the rehearsal mark is the genesis's; `entries` stamps it from the state being rebuilt
        let rehearsal = entries
            .first()
            .and_then(|e| serde_json::from_str::<Event>(&e.payload).ok())
            .is_some_and(|e| matches!(e.act, Act::Init { rehearsal: true, .. }));
        entries.iter_mut().for_each(|e| e.rehearsal = rehearsal);
        let log = verify_log(&entries).map_err(StoreError::Broken)?;
        self.check_projections(&log).map_err(StoreError::Broken)?;
        log.check_not_ahead(self.clock.now()).map_err(StoreError::Broken)?;
        (self.head_seq, self.head_hash) = log.head();
        self.gov = log.governor;
        Ok(())
    }

    fn check_projections(&self, log: &VerifiedLog) -> Result<(), AuditBreak> {
        let brk = |e: rusqlite::Error| AuditBreak { seq: 0, reason: e.to_string() };
        let votes: i64 = self.conn.query_row("SELECT COUNT(*) FROM votes", [], |r| r.get(0)).map_err(brk)?;
        let logged: usize = log.governor.proposals.values().map(|p| p.voters.len()).sum();
        let last_head: Option<i64> =
            self.conn.query_row("SELECT MAX(seq) FROM heads", [], |r| r.get(0)).map_err(brk)?;
        if let Some(h) = last_head.filter(|&h| h as u64 > log.len()) {
            return Err(AuditBreak {
                seq: h as u64,
                reason: format!("the operator signed a head at entry #{h}, beyond the log's end (#{})", log.len()),
            });
        }
        if votes as usize != logged {
            return Err(AuditBreak {
                seq: 0,
                reason: format!("the votes table has {votes} rows but the log has {logged} votes"),
            });
        }
        Ok(())
    }

    /// The governance state.
    pub fn governor(&self) -> &Governor {
        &self.gov
    }

    /// The store's clock.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The log's head: the last entry's sequence number and hash (0 and zero when empty).
    pub fn head(&self) -> (u64, B256) {
        (self.head_seq, self.head_hash)
    }

    /// The stored hash of entry `seq`, if there is one.
    pub fn hash_at(&self, seq: u64) -> Result<Option<B256>, StoreError> {
        let h: Option<String> = self
            .conn
            .query_row("SELECT hash FROM events WHERE seq = ?1", params![seq as i64], |r| r.get(0))
            .optional()?;
        h.map(|h| h.parse().map_err(|_| StoreError::Broken(AuditBreak { seq, reason: "bad hash".into() }))).transpose()
    }

    /// The operator's signature on the head at entry `seq` (a receipt: the operator accepted everything up to it
    /// with this hash), if that entry ended a write.
    pub fn head_signature(&self, seq: u64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT signature FROM heads WHERE seq = ?1", params![seq as i64], |r| r.get(0))
            .optional()?)
    }

    /// Number of events.
    pub fn len(&self) -> u64 {
        self.head_seq
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.head_seq == 0
    }

    fn insert(tx: &rusqlite::Transaction<'_>, dao: B256, seq: u64, prev: B256, e: &Event) -> Result<B256, StoreError> {
        let payload = allonet_core::canonical_json(e);
        let hash = chain_hash(prev, seq, &payload);
        tx.execute(
            "INSERT INTO events (seq, at, kind, payload, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![seq as i64, e.at as i64, e.act.kind(), payload, prev.to_string(), hash.to_string()],
        )?;
        match &e.act {
            Act::Vote { proposal, .. } => {
                tx.execute(
                    "INSERT INTO votes (proposal, voter, seq) VALUES (?1, ?2, ?3)",
                    params![proposal.to_string(), e.signer.to_checksum(None), seq as i64],
                )?;
            }
            Act::Propose { actions, description, options } => {
                let id = allonet_governance::governor::proposal_id(dao, e.signer, actions, description, options);
                tx.execute(
                    "INSERT INTO proposals (id, proposer, description, seq) VALUES (?1, ?2, ?3, ?4)",
                    params![id.to_string(), e.signer.to_checksum(None), description, seq as i64],
                )?;
            }
            _ => {}
        }
        Ok(hash)
    }

    /// Verifies, validates and durably appends one event; returns its sequence number. On any error nothing
    /// is stored and the state is unchanged.
    pub fn submit(&mut self, e: &Event) -> Result<u64, StoreError> {
        Ok(self.submit_batch(std::slice::from_ref(e))?[0])
    }

    /// Appends several events in one transaction (all or nothing). Each is stamped with the store's clock
    /// (a rehearsal keeps the caller's times); signatures are checked in parallel, then nonces, times and
    /// rules in order; the operator signs the new head in the same transaction.
    pub fn submit_batch(&mut self, events: &[Event]) -> Result<Vec<u64>, StoreError> {
        let Some(operator) = self.operator.clone() else {
            return Err(StoreError::Operator(
                "writing to the log needs the operator's key (it signs each new head)".into(),
            ));
        };
        // nothing to append: no transaction, and no second signature on the current head (whose `heads` row exists)
        if events.is_empty() {
            return Ok(vec![]);
        }
        let rehearsal = match events.first().map(|e| &e.act) {
            Some(Act::Init { rehearsal, .. }) if self.is_empty() => *rehearsal,
            _ => self.gov.rehearsal,
        };
        let now = self.clock.now();
        let stamped: Vec<Event> = events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if !rehearsal {
                    e.at = now;
                }
                e
            })
            .collect();
        if let Some(Act::Init { .. }) = stamped.first().map(|e| &e.act) {
            if self.is_empty() && stamped[0].signer != operator.address() {
                return Err(StoreError::Operator(format!(
                    "the genesis is signed by {}, but the store's operator key is {}",
                    stamped[0].signer,
                    operator.address()
                )));
            }
        }
        // signatures first, in parallel (the costly part); the DAO id comes from the genesis when it is here
        let (dao, chain_id) = match stamped.first() {
            Some(e @ Event { act: Act::Init { chain_id, .. }, .. }) if self.is_empty() => {
                (allonet_governance::acts::dao_id(e)?, *chain_id)
            }
            _ => (self.gov.dao, self.gov.chain_id),
        };
        let verified: Vec<Verified<'_>> =
            stamped.par_iter().map(|e| verify(e, dao, chain_id)).collect::<Result<_, _>>()?;
        let before = (self.head_seq, self.head_hash);
        // one event changes nothing when refused, so it applies in place; a batch applies to a copy
        let single = verified.len() == 1;
        let mut copy = if single { None } else { Some(self.gov.clone()) };
        let g = copy.as_mut().unwrap_or(&mut self.gov);
        for v in verified {
            g.apply_verified(v)?;
        }
        let (dao, chain_id) = (g.dao, g.chain_id);
        let written = (|| -> Result<(u64, B256), StoreError> {
            let tx = self.conn.transaction()?;
            let (mut seq, mut prev) = before;
            for e in &stamped {
                seq += 1;
                prev = Self::insert(&tx, dao, seq, prev, e)?;
            }
            let last_at = stamped.last().map(|e| e.at).unwrap_or(0);
            let sig = sign_hash(&operator, head_hash(dao, chain_id, seq, prev, last_at))?;
            tx.execute("INSERT INTO heads (seq, signature) VALUES (?1, ?2)", params![seq as i64, sig])?;
            tx.commit()?;
            Ok((seq, prev))
        })();
        match written {
            Ok((seq, prev)) => {
                if let Some(g) = copy {
                    self.gov = g;
                }
                self.head_seq = seq;
                self.head_hash = prev;
                Ok(((before.0 + 1)..=seq).collect())
            }
            Err(e) => {
                if single {
                    // applied in memory but not stored: rebuild from what is durable
                    self.reload()?;
                }
                Err(e)
            }
        }
    }

    /// Re-verifies the whole log as stored (chain, signatures, rules, head signatures, projections); names the
    /// first broken entry. Returns the number of entries.
    pub fn verify_audit(&self) -> Result<u64, AuditBreak> {
        Ok(self.verified_log()?.len())
    }

    /// Re-reads and re-verifies the log as stored (as [`Store::verify_audit`]) and returns what it establishes,
    /// for anchor checks and exports.
    pub fn verified_log(&self) -> Result<VerifiedLog, AuditBreak> {
        let entries = self.entries().map_err(|e| AuditBreak { seq: 0, reason: e.to_string() })?;
        let log = verify_log(&entries)?;
        self.check_projections(&log)?;
        log.check_not_ahead(self.clock.now())?;
        Ok(log)
    }

    /// Whether `voter` has a stored vote on `proposal`.
    pub fn has_vote(&self, proposal: B256, voter: Address) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM votes WHERE proposal = ?1 AND voter = ?2",
                params![proposal.to_string(), voter.to_checksum(None)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Direct access for tests and tools (e.g. to tamper with a row in a tampering test).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
