//! The store: durable, replayable, tamper-evident, on its own clock, written only with the operator's key.

use allonet_core::canonical_json;
use allonet_governance::acts::{self, head_hash, sign_hash};
use allonet_governance::governor::{
    proposal_id, Act, Action, Event, GovError, GovParams, Support, MAX_FUTURE_DRIFT, MAX_SIGNATURE_AGE,
};
use allonet_governance::power::{PowerConfig, Strategy};
use allonet_governance::{Clock, ManualClock};
use allonet_store::{chain_hash, check_anchors, verify_log, AnchorPoint, AuditBreak, LogEntry, Store, StoreError};
use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The stores' clocks start here (a realistic unix time, far from 0 so "6 days before" exists).
const T0: u64 = 1_700_000_000;
const CHAIN: u64 = 31_337;

fn key(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::with_last_byte(i)).unwrap()
}

/// Signs the genesis and every head.
fn operator() -> PrivateKeySigner {
    key(200)
}

fn guardian() -> PrivateKeySigner {
    key(199)
}

fn addr(i: u8) -> Address {
    key(i).address()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allonet-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.join("gov.db")
}

fn clock(t: u64) -> Arc<ManualClock> {
    Arc::new(ManualClock::at(t))
}

fn params() -> GovParams {
    GovParams {
        voting_delay: 1,
        voting_period: 10,
        proposal_threshold: 0,
        quorum_percent: 10,
        timelock_delay: 5,
        grace_period: 50,
    }
}

/// The genesis, signed by the operator at `at`: holders 1..=20 with 100 tokens each.
fn genesis(rehearsal: bool, at: u64) -> Event {
    acts::sign(
        &operator(),
        Act::Init {
            params: params(),
            power: PowerConfig { strategy: Strategy::Token, sybil: None },
            guardian: guardian().address(),
            holders: (1..=20).map(|i| (addr(i), 100)).collect(),
            allowlist: vec![],
            chain_id: CHAIN,
            rehearsal,
            salt: B256::repeat_byte(0x5a),
        },
        B256::ZERO,
        CHAIN,
        0,
        at,
    )
    .unwrap()
}

fn actions() -> Vec<Action> {
    vec![Action::ApprovePayoutPlan { digest: B256::repeat_byte(1) }]
}

fn propose_act() -> Act {
    Act::Propose { actions: actions(), description: "plan".into(), options: vec![] }
}

fn vote_act(id: B256, support: Support) -> Act {
    Act::Vote { proposal: id, support, votes: 0 }
}

/// Opens on `clock` with the operator's key.
fn open(path: &Path, clock: &Arc<ManualClock>) -> Store {
    let mut s = Store::open_with_clock(path, clock.clone()).unwrap_or_else(|e| panic!("open: {e}"));
    s.set_operator(operator()).unwrap();
    s
}

/// Opening must fail (`Store` is not `Debug`, so no `unwrap_err`).
fn open_err(path: &Path, clock: &Arc<ManualClock>) -> StoreError {
    match Store::open_with_clock(path, clock.clone()) {
        Ok(s) => panic!("a broken log opened ({} entries)", s.len()),
        Err(e) => e,
    }
}

fn broken(e: StoreError) -> AuditBreak {
    match e {
        StoreError::Broken(b) => b,
        other => panic!("expected a broken log, got: {other}"),
    }
}

/// Genesis at the clock's time, a proposal by holder 1 a second later; leaves the clock where the proposal
/// is active (T0 + 3; voting ends at T0 + 12). Returns the proposal id.
fn seed(s: &mut Store, clock: &ManualClock) -> B256 {
    s.submit(&genesis(false, clock.now())).unwrap();
    clock.advance(1);
    let e = s.governor().sign(&key(1), propose_act(), clock.now()).unwrap();
    s.submit(&e).unwrap();
    clock.advance(2);
    proposal_id(s.governor().dao, addr(1), &actions(), "plan", &[])
}

/// Holder `i`'s vote, signed now with its next nonce.
fn vote_event(s: &Store, i: u8, id: B256, support: Support) -> Event {
    s.governor().sign(&key(i), vote_act(id, support), s.now()).unwrap()
}

fn vote(s: &mut Store, i: u8, id: B256, support: Support) -> Result<u64, StoreError> {
    let e = vote_event(s, i, id, support);
    s.submit(&e)
}

/// A closed store: genesis (#1), proposal (#2), then holders 1..=votes vote for, one a second (#3…), each its own
/// write (so every entry is a signed head). Returns the path, the clock and the proposal.
fn build(name: &str, votes: u8) -> (PathBuf, Arc<ManualClock>, B256) {
    let path = tmp(name);
    let clock = clock(T0);
    let mut s = open(&path, &clock);
    let id = seed(&mut s, &clock);
    for i in 1..=votes {
        vote(&mut s, i, id, Support::For).unwrap();
        clock.advance(1);
    }
    (path, clock, id)
}

/// The database as it lies on disk with no connection open: the main file and the write-ahead log, if any.
fn disk(path: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    (std::fs::read(path).unwrap(), std::fs::read(wal).ok())
}

/// A stored entry as the forger sees it (positions and hashes are recomputed by [`rewrite`]).
#[derive(Clone)]
struct Row {
    at: u64,
    kind: String,
    payload: String,
}

impl Row {
    fn of(e: &Event) -> Row {
        Row { at: e.at, kind: e.act.kind().into(), payload: canonical_json(e) }
    }
    fn event(&self) -> Event {
        serde_json::from_str(&self.payload).unwrap()
    }
}

/// Rewrites the log as someone with write access to the file would: `edit` changes the rows (payloads, times,
/// insertions, removals); the rows are renumbered from 1 and every hash recomputed with [`chain_hash`]; the votes
/// and proposals projections are rebuilt to match; heads past the new end are removed. With `resign`, every
/// remaining head is signed again with that key (the hostile operator has its own key); otherwise the heads keep
/// their old signatures.
fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<Row>), resign: Option<&PrivateKeySigner>) {
    let conn = Connection::open(path).unwrap();
    // the forger is not bound by the schema's foreign keys (rows are replaced wholesale below)
    conn.pragma_update(None, "foreign_keys", false).unwrap();
    let mut rows: Vec<Row> = conn
        .prepare("SELECT at, kind, payload FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok(Row { at: r.get::<_, i64>(0)? as u64, kind: r.get(1)?, payload: r.get(2)? }))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    edit(&mut rows);
    let dao = acts::dao_id(&rows[0].event()).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    tx.execute_batch("DELETE FROM events; DELETE FROM votes; DELETE FROM proposals;").unwrap();
    let mut prev = B256::ZERO;
    let mut hashes = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let seq = i as u64 + 1;
        let hash = chain_hash(prev, seq, &r.payload);
        tx.execute(
            "INSERT INTO events (seq, at, kind, payload, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![seq as i64, r.at as i64, r.kind, r.payload, prev.to_string(), hash.to_string()],
        )
        .unwrap();
        match r.event() {
            Event { act: Act::Vote { proposal, .. }, signer, .. } => {
                tx.execute(
                    "INSERT OR IGNORE INTO votes (proposal, voter, seq) VALUES (?1, ?2, ?3)",
                    params![proposal.to_string(), signer.to_checksum(None), seq as i64],
                )
                .unwrap();
            }
            Event { act: Act::Propose { actions, description, options }, signer, .. } => {
                tx.execute(
                    "INSERT INTO proposals (id, proposer, description, seq) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        proposal_id(dao, signer, &actions, &description, &options).to_string(),
                        signer.to_checksum(None),
                        description,
                        seq as i64
                    ],
                )
                .unwrap();
            }
            _ => {}
        }
        hashes.push((hash, r.at));
        prev = hash;
    }
    tx.execute("DELETE FROM heads WHERE seq > ?1", params![rows.len() as i64]).unwrap();
    if let Some(k) = resign {
        let heads: Vec<i64> = tx
            .prepare("SELECT seq FROM heads")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for seq in heads {
            let (hash, at) = hashes[seq as usize - 1];
            let sig = sign_hash(k, head_hash(dao, CHAIN, seq as u64, hash, at)).unwrap();
            tx.execute("UPDATE heads SET signature = ?1 WHERE seq = ?2", params![sig, seq]).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// The first vote's payload flipped from for to against (a change to what its voter signed).
fn flip_vote(payload: &str) -> String {
    let forged = payload.replace("\"for\"", "\"against\"");
    assert_ne!(forged, payload, "the payload has no `for` to flip");
    forged
}

// ---------------------------------------------------------------------------------------------------------
// 1. durability, and refusals that store nothing

#[test]
fn state_survives_reopening_and_refused_writes_leave_the_file_unchanged() {
    let path = tmp("reopen");
    let clock = clock(T0);
    let (id, before) = {
        let mut s = open(&path, &clock);
        let id = seed(&mut s, &clock);
        for i in 1..=5 {
            vote(&mut s, i, id, Support::For).unwrap();
        }
        // a duplicate vote is refused by the open store, which stays as it was
        let g = s.governor().clone();
        let err = vote(&mut s, 1, id, Support::Against).unwrap_err();
        assert!(matches!(err, StoreError::Gov(GovError::AlreadyCastVote(a)) if a == addr(1)), "{err}");
        assert_eq!((s.len(), s.governor()), (7, &g));
        (id, g)
    };
    let bytes = disk(&path);
    // opening and closing without a write leaves the file as it was, so comparing bytes below is meaningful
    drop(open(&path, &clock));
    assert!(disk(&path) == bytes, "opening and closing alone changed the database file");

    let mut s = open(&path, &clock);
    assert_eq!(s.governor(), &before, "the state replayed from the log is the state that was written");
    assert_eq!(s.len(), 7);
    assert_eq!(s.governor().proposals[&id].for_votes, 500);
    assert!(s.has_vote(id, addr(5)).unwrap() && !s.has_vote(id, addr(6)).unwrap());

    let dao = s.governor().dao;
    let now = s.now();
    let accepted: Event = serde_json::from_str(&s.entries().unwrap()[6].payload).unwrap();
    assert_eq!(accepted.signer, addr(5));
    let good6 = vote_event(&s, 6, id, Support::For);
    let good7 = vote_event(&s, 7, id, Support::For);
    let with_signature = |sig: &str| {
        let mut e = vote_event(&s, 6, id, Support::For);
        e.signature = sig.into();
        e
    };
    // signed by holder 7 in holder 6's name
    let mut forged = vote_event(&s, 7, id, Support::For);
    forged.signer = addr(6);
    let other_dao = acts::sign(&key(6), vote_act(id, Support::For), B256::repeat_byte(9), CHAIN, 0, now).unwrap();
    let skipped_nonce = acts::sign(&key(6), vote_act(id, Support::For), dao, CHAIN, 1, now).unwrap();
    let second_vote_of_6 = acts::sign(&key(6), vote_act(id, Support::Against), dao, CHAIN, 1, now).unwrap();

    let mut zero_sig7 = good7.clone();
    zero_sig7.signature = "00".repeat(65);
    type Expect = fn(&GovError) -> bool;
    let bad_sig: Expect = |e| matches!(e, GovError::BadSignature(_));
    let bad_nonce: Expect = |e| matches!(e, GovError::BadNonce { .. });
    let dup: Expect = |e| matches!(e, GovError::AlreadyCastVote(_));
    let cases: Vec<(&str, Vec<Event>, Expect)> = vec![
        ("duplicate vote", vec![vote_event(&s, 1, id, Support::Against)], dup),
        ("replayed accepted event", vec![accepted.clone()], bad_nonce),
        ("skipped nonce", vec![skipped_nonce], bad_nonce),
        ("forged signature (signed by another key)", vec![forged], bad_sig),
        ("signature for another DAO", vec![other_dao], bad_sig),
        ("unsigned", vec![with_signature("")], bad_sig),
        ("garbage signature", vec![with_signature("zz-not-hex")], bad_sig),
        ("65 bytes that are no signature", vec![with_signature(&"11".repeat(65))], bad_sig),
        ("truncated signature", vec![with_signature(&good6.signature[..64])], bad_sig),
        ("batch: good vote, then a zero signature", vec![good6.clone(), zero_sig7], bad_sig),
        ("batch: good vote, then the same voter again", vec![good6.clone(), second_vote_of_6], dup),
        ("batch: two good votes, then a replay", vec![good6.clone(), good7.clone(), good6.clone()], bad_nonce),
    ];
    for (what, events, expected) in cases {
        let err = s.submit_batch(&events).expect_err(what);
        match &err {
            StoreError::Gov(g) if expected(g) => {}
            other => panic!("{what}: refused for the wrong reason: {other}"),
        }
        assert_eq!(s.len(), 7, "{what}");
        assert_eq!(s.governor(), &before, "{what}: the state changed");
        assert!(!s.has_vote(id, addr(6)).unwrap(), "{what}");
    }
    assert_eq!(s.verify_audit(), Ok(7));
    drop(s);
    assert!(disk(&path) == bytes, "a refused write changed the database file");

    // the comparison can see a write: the good vote alone is accepted and changes the file
    let mut s = open(&path, &clock);
    assert_eq!(s.submit(&good6).unwrap(), 8);
    drop(s);
    assert!(disk(&path) != bytes);
    let s = open(&path, &clock);
    assert_eq!(s.len(), 8);
    assert_eq!(s.governor().proposals[&id].for_votes, 600);
    assert!(s.has_vote(id, addr(6)).unwrap());
    assert_eq!(s.verify_audit(), Ok(8));
}

#[test]
fn an_empty_batch_writes_nothing() {
    let path = tmp("empty-batch");
    let clock = clock(T0);
    let mut s = open(&path, &clock);
    assert_eq!(s.submit_batch(&[]).unwrap(), Vec::<u64>::new());
    let heads: i64 = s.connection().query_row("SELECT COUNT(*) FROM heads", [], |r| r.get(0)).unwrap();
    assert_eq!((s.len(), heads), (0, 0));
    seed(&mut s, &clock);
    drop(s);
    let bytes = disk(&path);
    let mut s = open(&path, &clock);
    assert_eq!(s.submit_batch(&[]).unwrap(), Vec::<u64>::new());
    assert_eq!(s.len(), 2);
    drop(s);
    assert!(disk(&path) == bytes);
    assert_eq!(open(&path, &clock).verify_audit(), Ok(2));
}

// ---------------------------------------------------------------------------------------------------------
// 2. time

#[test]
fn a_store_stamps_events_with_its_own_clock() {
    let path = tmp("clock");
    let clock = clock(T0);
    let mut s = open(&path, &clock);
    let id = seed(&mut s, &clock);
    let now = clock.now();
    assert_eq!(s.entries().unwrap().iter().map(|e| e.at).collect::<Vec<_>>(), vec![T0, T0 + 1]);

    // signed a while ago, and the caller claims it arrived at 5: the store's clock decides
    let mut e = s.governor().sign(&key(1), vote_act(id, Support::For), now - 1000).unwrap();
    e.at = 5;
    let seq = s.submit(&e).unwrap();
    let last = s.entries().unwrap().pop().unwrap();
    assert_eq!((last.seq, last.at), (seq, now));
    let stored: Event = serde_json::from_str(&last.payload).unwrap();
    assert_eq!((stored.at, stored.signed_at), (now, now - 1000));
    assert_eq!(s.governor().last_at, now);
    assert!(!last.rehearsal && !s.governor().rehearsal);

    // the signature window is measured against the store's clock, whatever `at` the caller sends
    let signed = |s: &Store, i: u8, signed_at: u64| {
        let mut e = s.governor().sign(&key(i), vote_act(id, Support::For), signed_at).unwrap();
        e.at = signed_at;
        e
    };
    let n = s.len();
    for (i, signed_at) in [(2, now + MAX_FUTURE_DRIFT + 1), (3, now - MAX_SIGNATURE_AGE - 1)] {
        let err = s.submit(&signed(&s, i, signed_at)).unwrap_err();
        assert!(
            matches!(err, StoreError::Gov(GovError::Clock { signed_at: sa, at }) if sa == signed_at && at == now),
            "{err}"
        );
        assert_eq!(s.len(), n);
    }
    // the edges of the window are inside it
    s.submit(&signed(&s, 2, now + MAX_FUTURE_DRIFT)).unwrap();
    s.submit(&signed(&s, 3, now - MAX_SIGNATURE_AGE)).unwrap();
    assert!(s.entries().unwrap().iter().skip(2).all(|e| e.at == now));

    // time never goes backwards: a clock set back is refused until it catches up
    clock.advance(2);
    vote(&mut s, 4, id, Support::For).unwrap();
    let later = clock.now();
    clock.set(later - 1);
    let n = s.len();
    let err = vote(&mut s, 5, id, Support::For).unwrap_err();
    assert!(
        matches!(err, StoreError::Gov(GovError::TimeTravel { at, last }) if at == later - 1 && last == later),
        "{err}"
    );
    assert_eq!(s.len(), n);
    clock.set(later);
    vote(&mut s, 5, id, Support::For).unwrap();
    drop(s);

    // as stamped, after reopening
    let s = open(&path, &clock);
    let ats: Vec<u64> = s.entries().unwrap().iter().map(|e| e.at).collect();
    assert_eq!(ats, vec![T0, T0 + 1, now, now, now, later, later]);
    assert_eq!(s.governor().proposals[&id].for_votes, 500);
    assert_eq!(s.verify_audit(), Ok(7));
}

#[test]
fn a_rehearsal_keeps_the_callers_times() {
    let path = tmp("rehearsal");
    let clock = clock(T0);
    let mut s = open(&path, &clock);
    s.submit(&genesis(true, 1_000)).unwrap();
    let e = s.governor().sign(&key(1), propose_act(), 1_001).unwrap();
    s.submit(&e).unwrap();
    let id = proposal_id(s.governor().dao, addr(1), &actions(), "plan", &[]);
    for (i, at) in [(1, 1_003), (2, 1_005)] {
        let e = s.governor().sign(&key(i), vote_act(id, Support::For), at).unwrap();
        s.submit(&e).unwrap();
    }
    assert!(s.governor().rehearsal);
    let entries = s.entries().unwrap();
    assert_eq!(entries.iter().map(|e| e.at).collect::<Vec<_>>(), vec![1_000, 1_001, 1_003, 1_005]);
    assert!(entries.iter().all(|e| e.rehearsal));
    assert!(serde_json::to_string(&entries[0]).unwrap().contains("\"rehearsal\":true"));

    // the caller's times must still run forward, and a signature stays inside its window of them
    let e = s.governor().sign(&key(3), vote_act(id, Support::For), 1_004).unwrap();
    assert!(matches!(s.submit(&e), Err(StoreError::Gov(GovError::TimeTravel { at: 1_004, last: 1_005 }))));
    let mut e = s.governor().sign(&key(3), vote_act(id, Support::For), 1_005).unwrap();
    e.at = 1_005 + MAX_SIGNATURE_AGE + 1;
    assert!(matches!(s.submit(&e), Err(StoreError::Gov(GovError::Clock { .. }))));
    assert_eq!(s.len(), 4);
    drop(s);

    let s = open(&path, &clock);
    assert!(s.governor().rehearsal);
    assert_eq!(s.entries().unwrap().iter().map(|e| e.at).collect::<Vec<_>>(), vec![1_000, 1_001, 1_003, 1_005]);
    let log = verify_log(&s.entries().unwrap()).unwrap();
    assert!(log.governor.rehearsal);
    assert_eq!(s.verify_audit(), Ok(4));
}

// ---------------------------------------------------------------------------------------------------------
// 3. a broken log is refused on open, its first broken entry named; what the chain cannot see, anchors do

#[test]
fn open_names_an_entry_whose_payload_was_edited() {
    let (path, clock, _) = build("edited", 6);
    let conn = Connection::open(&path).unwrap();
    let payload: String = conn.query_row("SELECT payload FROM events WHERE seq = 4", [], |r| r.get(0)).unwrap();
    conn.execute("UPDATE events SET payload = ?1 WHERE seq = 4", [flip_vote(&payload)]).unwrap();
    drop(conn);
    let b = broken(open_err(&path, &clock));
    assert_eq!(b.seq, 4, "{}", b.reason);
    assert!(b.reason.contains("does not match its contents"), "{}", b.reason);
}

#[test]
fn open_names_an_edit_even_when_every_later_hash_was_recomputed() {
    // what the voter signed was changed: the chain is intact, the voter's signature is not
    let (path, clock, _) = build("recomputed", 6);
    rewrite(&path, |rows| rows[3].payload = flip_vote(&rows[3].payload), None);
    let b = broken(open_err(&path, &clock));
    assert_eq!(b.seq, 4, "{}", b.reason);
    assert!(b.reason.contains("bad signature"), "{}", b.reason);

    // two entries edited: the first is named (signatures are checked in parallel)
    let (path, clock, _) = build("recomputed-twice", 6);
    rewrite(
        &path,
        |rows| {
            rows[3].payload = flip_vote(&rows[3].payload);
            rows[7].payload = flip_vote(&rows[7].payload);
        },
        None,
    );
    let b = broken(open_err(&path, &clock));
    assert_eq!(b.seq, 4, "{}", b.reason);

    // the time it was received is not the voter's to sign but the operator's head signature covers it
    let (path, clock, _) = build("recomputed-at", 6);
    rewrite(
        &path,
        |rows| {
            let mut e = rows[4].event();
            e.at -= 1; // still after #4 and inside the voting period: the rules accept it
            rows[4] = Row::of(&e);
        },
        None,
    );
    let b = broken(open_err(&path, &clock));
    assert_eq!(b.seq, 5, "{}", b.reason);
    assert!(b.reason.contains("not by the operator"), "{}", b.reason);
}

#[test]
fn open_refuses_votes_inserted_with_recomputed_hashes() {
    let unsigned = |id: B256, at: u64| Event {
        act: vote_act(id, Support::For),
        signer: addr(9),
        nonce: 0,
        signed_at: at,
        signature: String::new(),
        at,
    };
    // an unsigned vote slipped in after #4 (later entries renumbered, projections rebuilt)
    let (path, clock, id) = build("inserted", 6);
    rewrite(&path, |rows| rows.insert(4, Row::of(&unsigned(id, rows[3].at))), None);
    let b = broken(open_err(&path, &clock));
    assert_eq!(b.seq, 5, "{}", b.reason);
    assert!(b.reason.contains("signature"), "{}", b.reason);

    // appended at the end
    let (path, clock, id) = build("appended", 6);
    rewrite(&path, |rows| rows.push(Row::of(&unsigned(id, rows[7].at))), None);
    let b = broken(open_err(&path, &clock));
    assert_eq!(b.seq, 9, "{}", b.reason);
    assert!(b.reason.contains("signature"), "{}", b.reason);

    // even a vote its voter really signed is refused when it did not come through the store: no operator head
    let (path, clock, id) = build("appended-signed", 6);
    let dao = open(&path, &clock).governor().dao;
    rewrite(
        &path,
        |rows| {
            let at = rows[7].at;
            rows.push(Row::of(&acts::sign(&key(9), vote_act(id, Support::For), dao, CHAIN, 0, at).unwrap()))
        },
        None,
    );
    let b = broken(open_err(&path, &clock));
    assert_eq!(b.seq, 9, "{}", b.reason);
    assert!(b.reason.contains("no operator signature"), "{}", b.reason);
}

#[test]
fn a_deleted_tail_opens_but_the_anchor_at_the_old_head_shows_it() {
    let (path, clock, id) = build("deleted", 6);
    let anchors = {
        let s = open(&path, &clock);
        assert_eq!(s.len(), 8);
        let anchors = [
            AnchorPoint { seq: 5, head: s.hash_at(5).unwrap().unwrap(), timestamp: clock.now() },
            AnchorPoint { seq: 8, head: s.head().1, timestamp: clock.now() },
        ];
        assert_eq!(check_anchors(&s.verified_log().unwrap(), &anchors, true), Ok(2));
        anchors
    };
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "DELETE FROM votes WHERE seq > 5; DELETE FROM heads WHERE seq > 5; DELETE FROM events WHERE seq > 5;",
    )
    .unwrap();
    drop(conn);

    // the chain alone cannot tell: #5 is a signed head, so the shorter log is a valid log
    let s = open(&path, &clock);
    assert_eq!(s.len(), 5);
    assert_eq!(s.verify_audit(), Ok(5));
    assert!(s.has_vote(id, addr(3)).unwrap() && !s.has_vote(id, addr(4)).unwrap());
    let log = s.verified_log().unwrap();
    assert_eq!(check_anchors(&log, &anchors[..1], true), Ok(1));
    let b = check_anchors(&log, &anchors, true).unwrap_err();
    assert_eq!(b.seq, 8, "{}", b.reason);
    assert!(b.reason.contains("deleted"), "{}", b.reason);
}

#[test]
fn a_hostile_operators_rewrite_opens_but_an_earlier_anchor_shows_it() {
    let (path, clock, id) = build("hostile", 6);
    let anchors = {
        let s = open(&path, &clock);
        [3, 6].map(|seq| AnchorPoint { seq, head: s.hash_at(seq).unwrap().unwrap(), timestamp: clock.now() })
    };
    // the operator drops holder 2's vote (#4), renumbers, recomputes every hash, rebuilds the projections and
    // signs every head again with its own key
    rewrite(
        &path,
        |rows| {
            assert_eq!(rows.remove(3).event().signer, addr(2));
        },
        Some(&operator()),
    );
    let s = open(&path, &clock);
    assert_eq!(s.len(), 7);
    assert_eq!(s.verify_audit(), Ok(7));
    assert!(!s.has_vote(id, addr(2)).unwrap());
    assert_eq!(s.governor().proposals[&id].for_votes, 500);
    let log = s.verified_log().unwrap();
    assert_eq!(check_anchors(&log, &anchors[..1], true), Ok(1), "entries before the rewrite still match");
    let b = check_anchors(&log, &anchors, true).unwrap_err();
    assert_eq!(b.seq, 6, "{}", b.reason);
    assert!(b.reason.contains("rewritten"), "{}", b.reason);

    // the same rewrite re-signed by a key that is not the operator's does not even open
    let (path, clock, _) = build("hostile-other-key", 6);
    rewrite(
        &path,
        |rows| {
            rows.remove(3);
        },
        Some(&key(1)),
    );
    let b = broken(open_err(&path, &clock));
    assert_eq!(b.seq, 1, "{}", b.reason);
    assert!(b.reason.contains("not by the operator"), "{}", b.reason);
}

#[test]
fn an_entry_received_after_its_anchor_is_named() {
    let (path, clock, _) = build("late", 3);
    let s = open(&path, &clock);
    let at = s.entries().unwrap()[3].at;
    let anchor = |timestamp| [AnchorPoint { seq: 4, head: s.hash_at(4).unwrap().unwrap(), timestamp }];
    let log = s.verified_log().unwrap();
    assert_eq!(check_anchors(&log, &anchor(at - MAX_FUTURE_DRIFT), true), Ok(1));
    let b = check_anchors(&log, &anchor(at - MAX_FUTURE_DRIFT - 1), true).unwrap_err();
    assert_eq!(b.seq, 4, "{}", b.reason);
}

// ---------------------------------------------------------------------------------------------------------
// 4. export

#[test]
fn an_export_round_trips_and_a_tampered_line_is_named() {
    let path = tmp("export");
    let clock = clock(T0);
    let mut s = open(&path, &clock);
    let id = seed(&mut s, &clock);
    for i in 1..=3 {
        vote(&mut s, i, id, Support::For).unwrap();
        clock.advance(1);
    }
    // a batch: only its last entry is a signed head
    let batch = [vote_event(&s, 4, id, Support::Against), vote_event(&s, 5, id, Support::Abstain)];
    assert_eq!(s.submit_batch(&batch).unwrap(), vec![6, 7]);

    let entries = s.entries().unwrap();
    assert_eq!(entries.iter().filter(|e| e.head_signature.is_none()).map(|e| e.seq).collect::<Vec<_>>(), vec![6]);
    let jsonl: String = entries.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
    let parse = |text: &str| -> Vec<LogEntry> { text.lines().map(|l| serde_json::from_str(l).unwrap()).collect() };
    let parsed = parse(&jsonl);
    assert_eq!(parsed, entries);
    let log = verify_log(&parsed).unwrap();
    assert_eq!(log.head(), s.head());
    assert_eq!(&log.governor, s.governor());
    assert_eq!(log.signed_heads, 6);
    let anchor = AnchorPoint { seq: 7, head: s.head().1, timestamp: clock.now() };
    assert_eq!(check_anchors(&log, &[anchor], true), Ok(1));

    // a tampered line is named
    let mut lines: Vec<String> = jsonl.lines().map(String::from).collect();
    let forged = lines[4].replace(r#"\"for\""#, r#"\"against\""#);
    assert_ne!(forged, lines[4]);
    lines[4] = forged;
    let b = verify_log(&parse(&lines.join("\n"))).unwrap_err();
    assert_eq!(b.seq, 5, "{}", b.reason);
    assert!(b.reason.contains("does not match its contents"), "{}", b.reason);

    // a line left out is named
    let mut short = parsed.clone();
    short.remove(3);
    let b = verify_log(&short).unwrap_err();
    assert_eq!(b.seq, 4, "{}", b.reason);
    assert!(b.reason.contains("missing"), "{}", b.reason);

    // cut inside a batch: the last line carries no operator signature
    let b = verify_log(&parsed[..6]).unwrap_err();
    assert_eq!(b.seq, 6, "{}", b.reason);
    assert!(b.reason.contains("no operator signature"), "{}", b.reason);

    // a rehearsal mark added to a real DAO's export is refused
    let mut marked = parsed.clone();
    marked.iter_mut().for_each(|e| e.rehearsal = true);
    assert_eq!(verify_log(&marked).unwrap_err().seq, 0);
}

// ---------------------------------------------------------------------------------------------------------
// 5. the operator's key

#[test]
fn writing_needs_the_operators_key() {
    let path = tmp("operator");
    let clock = clock(T0);
    let mut s = Store::open_with_clock(&path, clock.clone()).unwrap();
    let err = s.submit(&genesis(false, T0)).unwrap_err();
    assert!(matches!(&err, StoreError::Operator(m) if m.contains("needs the operator's key")), "{err}");
    assert!(s.is_empty());
    // before the genesis any key may be given, but it must be the one that signed the genesis
    s.set_operator(key(1)).unwrap();
    let err = s.submit(&genesis(false, T0)).unwrap_err();
    assert!(matches!(&err, StoreError::Operator(m) if m.contains("genesis is signed by")), "{err}");
    assert!(s.is_empty() && s.entries().unwrap().is_empty());
    s.set_operator(operator()).unwrap();
    let id = seed(&mut s, &clock);
    drop(s);

    let bytes = disk(&path);
    let mut s = Store::open_with_clock(&path, clock.clone()).unwrap();
    let err = vote(&mut s, 1, id, Support::For).unwrap_err();
    assert!(matches!(&err, StoreError::Operator(m) if m.contains("needs the operator's key")), "{err}");
    for k in [key(1), guardian()] {
        let err = s.set_operator(k).unwrap_err();
        assert!(matches!(&err, StoreError::Operator(m) if m.contains("is not this DAO's operator")), "{err}");
    }
    // the refused keys were not taken
    assert!(matches!(vote(&mut s, 1, id, Support::For), Err(StoreError::Operator(_))));
    assert!(matches!(s.submit_batch(&[]), Err(StoreError::Operator(_))));
    assert_eq!(s.len(), 2);
    drop(s);
    assert!(disk(&path) == bytes, "a refused write changed the database file");

    let mut s = open(&path, &clock);
    assert_eq!(vote(&mut s, 1, id, Support::For).unwrap(), 3);
    assert_eq!(s.verify_audit(), Ok(3));
}

// ---------------------------------------------------------------------------------------------------------
// 6. verify_audit on an open store

#[test]
fn verify_audit_names_the_tampered_entry() {
    let path = tmp("tamper");
    let clock = clock(T0);
    let mut s = open(&path, &clock);
    let id = seed(&mut s, &clock);
    for i in 1..=4 {
        vote(&mut s, i, id, Support::For).unwrap();
        clock.advance(1);
    }
    assert_eq!(s.verify_audit(), Ok(6));
    let c = s.connection();

    // flip the vote in entry #4 from for to against
    let payload: String = c.query_row("SELECT payload FROM events WHERE seq = 4", [], |r| r.get(0)).unwrap();
    c.execute("UPDATE events SET payload = ?1 WHERE seq = 4", [flip_vote(&payload)]).unwrap();
    let b = s.verify_audit().unwrap_err();
    assert_eq!(b.seq, 4, "{}", b.reason);
    assert!(b.reason.contains("does not match its contents"), "{}", b.reason);
    c.execute("UPDATE events SET payload = ?1 WHERE seq = 4", [payload]).unwrap();
    assert_eq!(s.verify_audit(), Ok(6));

    // a kind column that disagrees with its payload
    c.execute("UPDATE events SET kind = 'propose' WHERE seq = 3", []).unwrap();
    let b = s.verify_audit().unwrap_err();
    assert_eq!(b.seq, 3, "{}", b.reason);
    assert!(b.reason.contains("kind or time columns"), "{}", b.reason);
    c.execute("UPDATE events SET kind = 'vote' WHERE seq = 3", []).unwrap();
    // a time column that disagrees with its payload
    c.execute("UPDATE events SET at = at + 1 WHERE seq = 5", []).unwrap();
    let b = s.verify_audit().unwrap_err();
    assert_eq!(b.seq, 5, "{}", b.reason);
    assert!(b.reason.contains("kind or time columns"), "{}", b.reason);
    c.execute("UPDATE events SET at = at - 1 WHERE seq = 5", []).unwrap();
    assert_eq!(s.verify_audit(), Ok(6));

    // a vote missing from the projection
    let (proposal, voter): (String, String) =
        c.query_row("SELECT proposal, voter FROM votes WHERE seq = 6", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    c.execute("DELETE FROM votes WHERE seq = 6", []).unwrap();
    let b = s.verify_audit().unwrap_err();
    assert!(b.reason.contains("votes table"), "{}", b.reason);
    c.execute("INSERT INTO votes (proposal, voter, seq) VALUES (?1, ?2, 6)", params![proposal, voter]).unwrap();
    assert_eq!(s.verify_audit(), Ok(6));

    // an entry deleted from the middle
    c.execute("DELETE FROM votes WHERE seq = 5", []).unwrap();
    c.execute("DELETE FROM heads WHERE seq = 5", []).unwrap();
    c.execute("DELETE FROM events WHERE seq = 5", []).unwrap();
    let b = s.verify_audit().unwrap_err();
    assert_eq!(b.seq, 5, "{}", b.reason);
    assert!(b.reason.contains("missing"), "{}", b.reason);
    drop(s);
    assert_eq!(broken(open_err(&path, &clock)).seq, 5);
}

#[test]
fn a_kind_column_edit_is_refused_on_open() {
    let (path, clock, _) = build("kind", 2);
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE events SET kind = 'execute' WHERE seq = 2", []).unwrap();
    drop(conn);
    let b = broken(open_err(&path, &clock));
    assert_eq!(b.seq, 2, "{}", b.reason);
    assert!(b.reason.contains("kind or time columns"), "{}", b.reason);
}

#[test]
fn a_database_of_unsigned_events_is_refused() {
    let path = tmp("unsigned-v2");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL,
            payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
         INSERT INTO events VALUES (1, 0, 'init', '{}', '', '');
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);
    let b = broken(open_err(&path, &clock(T0)));
    assert_eq!(b.seq, 0);
    assert!(b.reason.contains("unsigned"), "{}", b.reason);
}

#[test]
fn a_log_with_entries_from_the_future_does_not_open() {
    // written by a store whose clock ran a day ahead (a log pretending its voting period and timelock had passed)
    let (path, ahead, _) = build("future", 3);
    let last = ahead.now() - 1;
    let behind = clock(last - 86_400);
    let b = broken(open_err(&path, &behind));
    assert_eq!(b.seq, 1, "every entry is a day ahead: the first is named");
    assert!(b.reason.contains("ahead of the clock"), "{}", b.reason);
    // within the drift a signature is allowed, it opens
    let near = clock(last - MAX_FUTURE_DRIFT);
    assert_eq!(open(&path, &near).len(), 5);
    // an export is held to the same clock
    let s = open(&path, &near);
    let log = verify_log(&s.entries().unwrap()).unwrap();
    assert!(log.check_not_ahead(last - 86_400).is_err() && log.check_not_ahead(last).is_ok());
}

#[test]
fn an_entry_appended_after_an_anchor_cannot_claim_an_earlier_time() {
    // #1 genesis, #2 proposal, #3 a vote; the operator anchors #3 in a block 1,000 s after the genesis
    let (path, clock, id) = build("backdated", 1);
    let s = open(&path, &clock);
    let (seq, head) = s.head();
    let block = T0 + 1_000;
    let anchor = [AnchorPoint { seq, head, timestamp: block }];
    assert_eq!(check_anchors(&s.verified_log().unwrap(), &anchor, true), Ok(1));
    drop(s);
    // later the operator turns its clock back to before the anchoring block and appends an act
    clock.set(block - MAX_FUTURE_DRIFT - 1);
    let mut s = open(&path, &clock);
    let e = s.governor().sign(&key(2), Act::Delegate { to: addr(3) }, s.now()).unwrap();
    s.submit(&e).unwrap();
    assert!(s.governor().proposals.contains_key(&id));
    let log = s.verified_log().unwrap();
    let b = check_anchors(&log, &anchor, true).unwrap_err();
    assert_eq!(b.seq, seq + 1);
    assert!(b.reason.contains("backdated behind an anchor"), "{}", b.reason);
    // within the drift it passes; on a chain whose clock is not real the check does not apply
    let near = [AnchorPoint { seq, head, timestamp: block - 1 }];
    assert_eq!(check_anchors(&log, &near, true), Ok(1));
    assert_eq!(check_anchors(&log, &anchor, false), Ok(1));
}
