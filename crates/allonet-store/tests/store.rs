//! The store: durable, replayable, tamper-evident.

use allonet_governance::governor::{proposal_id, Action, Event, GovParams, Support};
use allonet_governance::power::{PowerConfig, Strategy};
use allonet_store::Store;
use alloy_primitives::{Address, B256};

fn a(i: u8) -> Address {
    Address::with_last_byte(i)
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("allonet-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.join("gov.db")
}

fn seed(s: &mut Store) -> B256 {
    s.submit(&Event::Init {
        params: GovParams {
            voting_delay: 1,
            voting_period: 10,
            proposal_threshold: 0,
            quorum_percent: 10,
            timelock_delay: 5,
            grace_period: 50,
        },
        power: PowerConfig { strategy: Strategy::Token, sybil: None },
        guardian: a(99),
        holders: (1..=20).map(|i| (a(i), 100)).collect(),
        allowlist: vec![],
        chain_id: 1,
        at: 0,
    })
    .unwrap();
    let actions = vec![Action::ApprovePayoutPlan { digest: B256::repeat_byte(1) }];
    s.submit(&Event::Propose {
        proposer: a(1),
        actions: actions.clone(),
        description: "plan".into(),
        options: vec![],
        at: 1,
    })
    .unwrap();
    proposal_id(&actions, "plan", &[])
}

#[test]
fn state_survives_reopening_and_bad_events_change_nothing() {
    let path = tmp("reopen");
    let id;
    {
        let mut s = Store::open(&path).unwrap();
        id = seed(&mut s);
        for i in 1..=5 {
            s.submit(&Event::Vote {
                proposal: id,
                voter: a(i),
                support: Support::For,
                votes: 0,
                nonce: 0,
                signature: None,
                at: 3,
            })
            .unwrap();
        }
        // a duplicate vote is refused and leaves no trace
        let n = s.len();
        assert!(s
            .submit(&Event::Vote {
                proposal: id,
                voter: a(1),
                support: Support::Against,
                votes: 0,
                nonce: 0,
                signature: None,
                at: 3
            })
            .is_err());
        // a batch with one bad event stores none of it
        let batch = vec![
            Event::Vote {
                proposal: id,
                voter: a(6),
                support: Support::For,
                votes: 0,
                nonce: 0,
                signature: None,
                at: 3,
            },
            Event::Vote {
                proposal: id,
                voter: a(6),
                support: Support::For,
                votes: 0,
                nonce: 0,
                signature: None,
                at: 3,
            },
        ];
        assert!(s.submit_batch(&batch).is_err());
        assert_eq!(s.len(), n);
        assert!(!s.governor().proposals[&id].voters.contains(&a(6)));
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.governor().proposals[&id].for_votes, 500);
    assert!(s.has_vote(id, a(5)).unwrap() && !s.has_vote(id, a(6)).unwrap());
    assert_eq!(s.verify_audit(), Ok(7));
}

#[test]
fn tampering_with_a_row_is_detected_and_named() {
    let path = tmp("tamper");
    let mut s = Store::open(&path).unwrap();
    let id = seed(&mut s);
    for i in 1..=4 {
        s.submit(&Event::Vote {
            proposal: id,
            voter: a(i),
            support: Support::For,
            votes: 0,
            nonce: 0,
            signature: None,
            at: 3,
        })
        .unwrap();
    }
    assert_eq!(s.verify_audit(), Ok(6));
    // flip a vote in entry #4 from for to against
    let payload: String =
        s.connection().query_row("SELECT payload FROM events WHERE seq = 4", [], |r| r.get(0)).unwrap();
    let forged = payload.replace("\"for\"", "\"against\"");
    assert_ne!(forged, payload);
    s.connection().execute("UPDATE events SET payload = ?1 WHERE seq = 4", [forged]).unwrap();
    let b = s.verify_audit().unwrap_err();
    assert_eq!(b.seq, 4, "{}", b.reason);
    assert!(b.reason.contains("does not match its contents"));
    // deleting an entry is named too
    s.connection().execute("UPDATE events SET payload = ?1 WHERE seq = 4", [payload]).unwrap();
    assert_eq!(s.verify_audit(), Ok(6));
    s.connection().execute("DELETE FROM votes WHERE seq = 5", []).unwrap();
    s.connection().execute("DELETE FROM events WHERE seq = 5", []).unwrap();
    assert_eq!(s.verify_audit().unwrap_err().seq, 5);
}
