//! # allonet-store
//!
//! SQLite persistence for governance: every accepted [`Event`] is one row of an append-only, hash-chained
//! log, written in one transaction together with the query projections; the governance state is rebuilt by
//! replaying the log. WAL journal with `synchronous = FULL`, so an acknowledged event survives a crash
//! (SIGKILL or power loss) and a half-written one never appears.
//!
//! Audit chain: `hash_n = keccak256(hash_{n−1} ‖ n (8 bytes, big-endian) ‖ payload_n)`, with
//! `hash_0 = 0x00…00`. [`Store::verify_audit`] recomputes it and names the first entry that does not match.

use allonet_governance::ballot::check_signature;
use allonet_governance::governor::{Event, GovError, Governor};
use alloy_primitives::{keccak256, B256};
use rayon::prelude::*;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

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
    /// A stored row could not be read back.
    #[error("event #{seq}: {message}")]
    Corrupt {
        /// entry
        seq: u64,
        /// what is wrong
        message: String,
    },
}

/// A broken audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    /// The first entry that does not verify.
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

fn kind(e: &Event) -> &'static str {
    match e {
        Event::Init { .. } => "init",
        Event::Transfer { .. } => "transfer",
        Event::Delegate { .. } => "delegate",
        Event::Propose { .. } => "propose",
        Event::Vote { .. } => "vote",
        Event::Queue { .. } => "queue",
        Event::Execute { .. } => "execute",
        Event::Cancel { .. } => "cancel",
        Event::GuardianPause { .. } => "guardian_pause",
        Event::ChainRecord { .. } => "chain_record",
    }
}

/// A governance database.
pub struct Store {
    conn: Connection,
    gov: Governor,
    head_seq: u64,
    head_hash: B256,
}

impl Store {
    /// Opens (creating and migrating when needed) and replays the log.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        let mut s = Store { conn, gov: Governor::default(), head_seq: 0, head_hash: B256::ZERO };
        s.reload()?;
        Ok(s)
    }

    /// Rebuilds the in-memory state from the log.
    fn reload(&mut self) -> Result<(), StoreError> {
        let mut gov = Governor::default();
        let (mut seq, mut hash) = (0u64, B256::ZERO);
        {
            let mut stmt = self.conn.prepare("SELECT seq, payload, hash FROM events ORDER BY seq")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let n: i64 = r.get(0)?;
                let payload: String = r.get(1)?;
                let h: String = r.get(2)?;
                let e: Event = serde_json::from_str(&payload)
                    .map_err(|err| StoreError::Corrupt { seq: n as u64, message: err.to_string() })?;
                gov.apply(&e).map_err(|err| StoreError::Corrupt { seq: n as u64, message: err.to_string() })?;
                seq = n as u64;
                hash = h.parse().map_err(|_| StoreError::Corrupt { seq, message: "bad hash".into() })?;
            }
        }
        self.gov = gov;
        self.head_seq = seq;
        self.head_hash = hash;
        Ok(())
    }

    /// The governance state.
    pub fn governor(&self) -> &Governor {
        &self.gov
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
        h.map(|h| h.parse().map_err(|_| StoreError::Corrupt { seq, message: "bad hash".into() })).transpose()
    }

    /// Number of events.
    pub fn len(&self) -> u64 {
        self.head_seq
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.head_seq == 0
    }

    fn insert(tx: &rusqlite::Transaction<'_>, seq: u64, prev: B256, e: &Event) -> Result<B256, StoreError> {
        let payload = allonet_core::canonical_json(e);
        let hash = chain_hash(prev, seq, &payload);
        tx.execute(
            "INSERT INTO events (seq, at, kind, payload, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![seq as i64, e.at() as i64, kind(e), payload, prev.to_string(), hash.to_string()],
        )?;
        match e {
            Event::Vote { proposal, voter, .. } => {
                tx.execute(
                    "INSERT INTO votes (proposal, voter, seq) VALUES (?1, ?2, ?3)",
                    params![proposal.to_string(), voter.to_checksum(None), seq as i64],
                )?;
            }
            Event::Propose { proposer, actions, description, options, .. } => {
                let id = allonet_governance::governor::proposal_id(actions, description, options);
                tx.execute(
                    "INSERT INTO proposals (id, proposer, description, seq) VALUES (?1, ?2, ?3, ?4)",
                    params![id.to_string(), proposer.to_checksum(None), description, seq as i64],
                )?;
            }
            _ => {}
        }
        Ok(hash)
    }

    /// Verifies (signature), validates and durably appends one event; returns its sequence number. On any
    /// error nothing is stored and the state is unchanged.
    pub fn submit(&mut self, e: &Event) -> Result<u64, StoreError> {
        Ok(self.submit_batch(std::slice::from_ref(e))?[0])
    }

    /// Appends several events in one transaction (all or nothing).
    pub fn submit_batch(&mut self, events: &[Event]) -> Result<Vec<u64>, StoreError> {
        let before = (self.head_seq, self.head_hash);
        // signatures first, in parallel (the costly part); nonces and rules are checked in order below
        let chain_id = self.gov.chain_id;
        if let Some(err) = events.par_iter().map(|e| check_signature(chain_id, e)).find_first(|r| r.is_err()) {
            err?;
        }
        let mut applied = Vec::with_capacity(events.len());
        let result = (|| -> Result<Vec<u64>, StoreError> {
            let tx = self.conn.transaction()?;
            let (mut seq, mut prev) = before;
            for e in events {
                self.gov.apply(e)?;
                applied.push(());
                seq += 1;
                prev = Self::insert(&tx, seq, prev, e)?;
            }
            tx.commit()?;
            self.head_seq = seq;
            self.head_hash = prev;
            Ok(((before.0 + 1)..=seq).collect())
        })();
        if result.is_err() && !applied.is_empty() {
            // some events were applied in memory before the failure: rebuild from what is durable
            self.reload()?;
        }
        result
    }

    /// Recomputes the hash chain and checks every payload; names the first broken entry.
    pub fn verify_audit(&self) -> Result<u64, AuditBreak> {
        let brk = |seq: u64, reason: String| AuditBreak { seq, reason };
        let mut stmt = self
            .conn
            .prepare("SELECT seq, kind, payload, prev_hash, hash FROM events ORDER BY seq")
            .map_err(|e| brk(0, e.to_string()))?;
        let mut rows = stmt.query([]).map_err(|e| brk(0, e.to_string()))?;
        let (mut expected_seq, mut prev) = (1u64, B256::ZERO);
        while let Some(r) = rows.next().map_err(|e| brk(expected_seq, e.to_string()))? {
            let seq = r.get::<_, i64>(0).map_err(|e| brk(expected_seq, e.to_string()))? as u64;
            let k: String = r.get(1).map_err(|e| brk(seq, e.to_string()))?;
            let payload: String = r.get(2).map_err(|e| brk(seq, e.to_string()))?;
            let prev_hash: String = r.get(3).map_err(|e| brk(seq, e.to_string()))?;
            let hash: String = r.get(4).map_err(|e| brk(seq, e.to_string()))?;
            if seq != expected_seq {
                return Err(brk(expected_seq, format!("entry missing (next stored entry is #{seq})")));
            }
            if prev_hash != prev.to_string() {
                return Err(brk(seq, "its previous-hash field does not match the entry before it".into()));
            }
            let recomputed = chain_hash(prev, seq, &payload);
            if hash != recomputed.to_string() {
                return Err(brk(
                    seq,
                    format!("its hash does not match its contents (stored {hash}, recomputed {recomputed})"),
                ));
            }
            match serde_json::from_str::<Event>(&payload) {
                Ok(e) if kind(&e) == k => {}
                Ok(_) => return Err(brk(seq, format!("kind column `{k}` does not match the payload"))),
                Err(e) => return Err(brk(seq, format!("payload is not an event: {e}"))),
            }
            prev = recomputed;
            expected_seq += 1;
        }
        // projections must agree with the log
        let votes: i64 =
            self.conn.query_row("SELECT COUNT(*) FROM votes", [], |r| r.get(0)).map_err(|e| brk(0, e.to_string()))?;
        let logged: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM events WHERE kind = 'vote'", [], |r| r.get(0))
            .map_err(|e| brk(0, e.to_string()))?;
        if votes != logged {
            return Err(brk(0, format!("the votes table has {votes} rows but the log has {logged} votes")));
        }
        Ok(expected_seq - 1)
    }

    /// Whether `voter` has a stored vote on `proposal`.
    pub fn has_vote(&self, proposal: B256, voter: alloy_primitives::Address) -> Result<bool, StoreError> {
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
