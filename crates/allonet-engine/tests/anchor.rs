//! The governance log anchored on chain (a real anvil node, and the embedded EVM): a hostile operator who rewrites
//! its own act and re-signs every later hash and head, or deletes the log's tail, passes every check inside the
//! database and is caught by the anchors.

use std::path::{Path, PathBuf};

use allonet_chain::anvil::{anvil_binary, Anvil, DEV_KEYS};
use allonet_chain::deploy::Asset;
use allonet_chain::rpc::signer_from_hex;
use allonet_engine::audit::{anchor, check_anchored, record};
use allonet_engine::connect::{connect, ConnectSpec};
use allonet_engine::deploy::{deploy, embedded_defaults, DeploySpec};
use allonet_engine::offchain::{create, member_key, pass, NewDao};
use allonet_governance::acts::{head_hash, sign, sign_hash};
use allonet_governance::governor::{Act, Action, Event, GovParams};
use allonet_governance::power::{PowerConfig, Strategy};
use allonet_store::{chain_hash, Store};
use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allonet-engine-anchor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn spec() -> DeploySpec {
    let (agent, guardian, holders) = embedded_defaults();
    DeploySpec {
        asset: Asset::NewToken { symbol: "USDC".into(), decimals: 6, supply: U256::from(10u64).pow(U256::from(12)) },
        agent: Some(agent),
        guardian: Some(guardian),
        holders: Some(holders),
        epoch_length: 86_400,
        fund: U256::from(1_000u64),
        voting_delay: 1,
        voting_period: 10,
        quorum_percent: 4,
        timelock_delay: 60,
        keep_owner: false,
    }
}

/// A rehearsal DAO whose operator is `operator`; members propose, vote and pass a proposal, and the operator
/// records one piece of evidence (its own act, which it can re-sign when it rewrites the log).
fn dao(db: &Path, operator: &PrivateKeySigner) -> Store {
    let members: Vec<_> = (0..4).map(|i| member_key(9, i)).collect();
    let new = NewDao {
        params: GovParams {
            voting_delay: 1,
            voting_period: 10,
            proposal_threshold: 0,
            quorum_percent: 10,
            timelock_delay: 5,
            grace_period: 50,
        },
        power: PowerConfig { strategy: Strategy::Token, sybil: None },
        guardian: members[3].address(),
        holders: members.iter().map(|k| (k.address(), 100)).collect(),
        chain_id: 1,
        rehearsal: true,
        salt: None,
    };
    let mut s = create(db, new, operator, Some(1_000)).unwrap();
    record(&mut s, "payout", &serde_json::json!({"paid": "100"}), 1_001).unwrap();
    let actions = vec![Action::Pause];
    pass(&mut s, None, &members[0], &members[..3], actions, "stop").unwrap();
    s
}

/// The hostile operator rewrites entry `seq` (an act of its own) with `edit`, re-signs it, recomputes every later
/// hash and re-signs every head: the database verifies on its own.
fn rewrite(db: &Path, operator: &PrivateKeySigner, seq: u64, edit: impl Fn(&mut Act)) {
    let s = Store::open(db).unwrap();
    let (dao, chain_id) = (s.governor().dao, s.governor().chain_id);
    let entries = s.entries().unwrap();
    let conn = s.connection();
    let mut prev = entries[(seq - 2) as usize].hash;
    for en in &entries[(seq - 1) as usize..] {
        let mut payload = en.payload.clone();
        if en.seq == seq {
            let e: Event = serde_json::from_str(&en.payload).unwrap();
            assert_eq!(e.signer, operator.address(), "the operator can re-sign only its own acts");
            let mut act = e.act.clone();
            edit(&mut act);
            let mut forged = sign(operator, act, dao, chain_id, e.nonce, e.signed_at).unwrap();
            forged.at = e.at;
            payload = allonet_core::canonical_json(&forged);
        }
        let hash = chain_hash(prev, en.seq, &payload);
        conn.execute(
            "UPDATE events SET payload = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![payload, prev.to_string(), hash.to_string(), en.seq as i64],
        )
        .unwrap();
        if en.head_signature.is_some() {
            let sig = sign_hash(operator, head_hash(dao, chain_id, en.seq, hash, en.at)).unwrap();
            conn.execute("UPDATE heads SET signature = ?1 WHERE seq = ?2", rusqlite::params![sig, en.seq as i64])
                .unwrap();
        }
        prev = hash;
    }
}

/// Deletes the last `k` entries (and their heads and projections), then re-signs the new last entry as a head.
fn delete_tail(db: &Path, operator: &PrivateKeySigner, k: u64) {
    let s = Store::open(db).unwrap();
    let (dao, chain_id) = (s.governor().dao, s.governor().chain_id);
    let n = s.len();
    let keep = &s.entries().unwrap()[(n - k - 1) as usize];
    let conn = s.connection();
    for t in ["votes", "proposals", "heads", "events"] {
        conn.execute(&format!("DELETE FROM {t} WHERE seq > ?1"), [keep.seq as i64]).unwrap();
    }
    let sig = sign_hash(operator, head_hash(dao, chain_id, keep.seq, keep.hash, keep.at)).unwrap();
    conn.execute(
        "INSERT OR REPLACE INTO heads (seq, signature) VALUES (?1, ?2)",
        rusqlite::params![keep.seq as i64, sig],
    )
    .unwrap();
}

/// Anchors twice, checks, then catches a rewrite and a deleted tail, on the deployment `dep`.
fn anchors_catch_a_hostile_operator(dir: &Path, dep: &Path, operator: &PrivateKeySigner) {
    let db = dir.join("dao.db");
    let mut s = dao(&db, operator);
    s.set_operator(operator.clone()).unwrap();
    let first = anchor(&s, dep, None).unwrap();
    assert_eq!(first.seq, s.len());
    record(&mut s, "reconciled", &serde_json::json!({"remainder": "0"}), 2_000).unwrap();
    record(&mut s, "reconciled", &serde_json::json!({"remainder": "1"}), 2_001).unwrap();
    record(&mut s, "reconciled", &serde_json::json!({"remainder": "2"}), 2_002).unwrap();
    let second = anchor(&s, dep, None).unwrap();
    assert_eq!(second.seq, first.seq + 3);
    // the same head again is refused by the contract (anchored entries only grow)
    assert!(anchor(&s, dep, None).unwrap_err().to_string().contains("SeqNotIncreasing"));
    let log = s.verified_log().unwrap();
    assert_eq!(check_anchored(&log, dep, None).unwrap().anchors.len(), 2);
    drop(s);

    // a rewrite of the operator's own record, every later hash and head re-signed: the database verifies alone
    let rewritten = dir.join("rewritten.db");
    std::fs::copy(&db, &rewritten).unwrap();
    rewrite(&rewritten, operator, 2, |act| {
        if let Act::Record { detail, .. } = act {
            *detail = r#"{"paid":"1"}"#.into();
        }
    });
    let s = Store::open(&rewritten).unwrap();
    assert_eq!(s.verify_audit(), Ok(second.seq), "consistent inside the database");
    let e = check_anchored(&s.verified_log().unwrap(), dep, None).unwrap_err().to_string();
    assert!(e.contains("rewritten") && e.contains(&format!("#{}", first.seq)), "{e}");

    // the last three entries deleted, the new head re-signed
    let cut = dir.join("cut.db");
    std::fs::copy(&db, &cut).unwrap();
    delete_tail(&cut, operator, 3);
    let s = Store::open(&cut).unwrap();
    assert_eq!(s.len(), first.seq);
    let e = check_anchored(&s.verified_log().unwrap(), dep, None).unwrap_err().to_string();
    assert!(e.contains("deleted") && e.contains(&format!("#{}", second.seq)), "{e}");

    // an export verifies to the same log without the database, and is held to the same anchors
    let out = dir.join("dao.jsonl");
    allonet_engine::audit::export(&Store::open(&db).unwrap(), &out).unwrap();
    let log = allonet_store::verify_log(&allonet_engine::audit::read_export(&out).unwrap()).unwrap();
    assert_eq!(check_anchored(&log, dep, None).unwrap().entries, second.seq);
}

#[test]
fn anchors_on_anvil_catch_a_rewritten_log_and_a_deleted_tail() {
    // fails (does not skip) when ALLONET_REQUIRE_NPM is set and anvil cannot be installed
    let Some(bin) = anvil_binary().unwrap() else {
        eprintln!("SKIP: npm is not installed, cannot install anvil");
        return;
    };
    let node = Anvil::start(&bin, 31_337).unwrap();
    let dir = tmp("anvil");
    let dep = dir.join("dep.json");
    let deployer = signer_from_hex(DEV_KEYS[0]).unwrap();
    let cs = ConnectSpec { rpc: Some(node.url()), key: Some(deployer), ..Default::default() };
    let (mut conn, endpoint) = connect(&cs, None).unwrap();
    deploy(&mut conn, endpoint, &spec(), &dep).unwrap();
    // the operator pays its own gas: anvil's dev account 3
    let operator = signer_from_hex(DEV_KEYS[3]).unwrap();
    anchors_catch_a_hostile_operator(&dir, &dep, &operator);
    drop(node);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn anchors_on_the_embedded_evm_catch_a_rewritten_log_and_a_deleted_tail() {
    let dir = tmp("embedded");
    let state = dir.join("chain.json");
    let dep = dir.join("dep.json");
    let cs = ConnectSpec { embedded: true, state: state.clone(), ..Default::default() };
    let (mut conn, endpoint) = connect(&cs, None).unwrap();
    deploy(&mut conn, endpoint, &spec(), &dep).unwrap();
    anchors_catch_a_hostile_operator(&dir, &dep, &member_key(9, 1_000));
    std::fs::remove_dir_all(&dir).unwrap();
}
