//! OpenZeppelin Governor's acceptance cases, ported; signed ballots; voting strategies.

use allonet_governance::ballot::{apply_verified, ballot_hash};
use allonet_governance::governor::{proposal_id, Action, Event, GovError, GovParams, Governor, ProposalState, Support};
use allonet_governance::power::{PowerConfig, Strategy};
use alloy_primitives::{Address, B256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use std::collections::BTreeMap;

const E18: u128 = 1_000_000_000_000_000_000;

fn a(i: u8) -> Address {
    Address::with_last_byte(i)
}

fn params() -> GovParams {
    GovParams {
        voting_delay: 4,
        voting_period: 16,
        proposal_threshold: 0,
        quorum_percent: 4,
        timelock_delay: 10,
        grace_period: 100,
    }
}

/// OpenZeppelin's Governor test set-up: the owner holds 100 tokens; voters get 10 / 7 / 5 / 2 and delegate to themselves.
fn dao(p: GovParams, strategy: Strategy) -> Governor {
    let init = Event::Init {
        params: p,
        power: PowerConfig { strategy, sybil: None },
        guardian: a(99),
        holders: vec![(a(1), 76 * E18), (a(2), 10 * E18), (a(3), 7 * E18), (a(4), 5 * E18), (a(5), 2 * E18)],
        allowlist: vec![a(1), a(2), a(3), a(4), a(5)],
        chain_id: 31337,
        at: 0,
    };
    Governor::replay([&init]).unwrap()
}

fn propose(g: &mut Governor, who: Address, desc: &str, at: u64) -> Result<B256, GovError> {
    let actions = vec![Action::ActivateModel { model_id: B256::repeat_byte(7) }];
    g.apply(&Event::Propose {
        proposer: who,
        actions: actions.clone(),
        description: desc.into(),
        options: vec![],
        at,
    })?;
    Ok(proposal_id(&actions, desc, &[]))
}

fn vote(g: &mut Governor, id: B256, who: Address, support: Support, at: u64) -> Result<(), GovError> {
    g.apply(&Event::Vote { proposal: id, voter: who, support, votes: 0, nonce: 0, signature: None, at })
}

#[test]
fn nominal_workflow_10_7_5_2_is_executed() {
    let mut g = dao(params(), Strategy::Token);
    let id = propose(&mut g, a(1), "<proposal description>", 10).unwrap();
    assert_eq!(g.state(id, 10).unwrap(), ProposalState::Pending);
    assert_eq!(g.state(id, 15).unwrap(), ProposalState::Active);
    vote(&mut g, id, a(2), Support::For, 15).unwrap();
    vote(&mut g, id, a(3), Support::For, 16).unwrap();
    vote(&mut g, id, a(4), Support::Against, 17).unwrap();
    vote(&mut g, id, a(5), Support::Abstain, 18).unwrap();
    let p = &g.proposals[&id];
    assert_eq!((p.for_votes, p.against, p.abstain), (17 * E18, 5 * E18, 2 * E18));
    assert_eq!(g.state(id, 30).unwrap(), ProposalState::Active, "deadline is inclusive");
    assert_eq!(g.state(id, 31).unwrap(), ProposalState::Succeeded);
    g.apply(&Event::Queue { proposal: id, at: 31 }).unwrap();
    assert_eq!(g.state(id, 31).unwrap(), ProposalState::Queued);
    g.apply(&Event::Execute { proposal: id, at: 41 }).unwrap();
    assert_eq!(g.state(id, 41).unwrap(), ProposalState::Executed);
    assert_eq!(g.registry.active_model(), Some(B256::repeat_byte(7)));
}

#[test]
fn propose_below_threshold_and_duplicates_are_refused() {
    let mut g = dao(GovParams { proposal_threshold: 8 * E18, ..params() }, Strategy::Token);
    assert!(matches!(propose(&mut g, a(3), "x", 10), Err(GovError::InsufficientProposerVotes { .. })));
    propose(&mut g, a(2), "x", 10).unwrap();
    assert!(matches!(propose(&mut g, a(2), "x", 11), Err(GovError::UnexpectedState { .. })));
    assert!(matches!(
        g.apply(&Event::Propose { proposer: a(2), actions: vec![], description: "e".into(), options: vec![], at: 12 }),
        Err(GovError::EmptyProposal)
    ));
}

#[test]
fn votes_before_start_twice_after_end_or_invalid_are_refused() {
    let mut g = dao(params(), Strategy::Token);
    let id = propose(&mut g, a(1), "d", 10).unwrap();
    assert!(matches!(
        vote(&mut g, id, a(2), Support::For, 14),
        Err(GovError::UnexpectedState { state: ProposalState::Pending, .. })
    ));
    vote(&mut g, id, a(2), Support::For, 15).unwrap();
    assert_eq!(vote(&mut g, id, a(2), Support::Against, 16), Err(GovError::AlreadyCastVote(a(2))));
    let mut w = BTreeMap::new();
    w.insert(0u32, 1u64);
    assert!(matches!(vote(&mut g, id, a(3), Support::Weighted(w), 16), Err(GovError::InvalidVoteType(_))));
    assert_eq!(Support::from_u8(3), None, "support byte 3 is not a vote type");
    assert!(matches!(
        vote(&mut g, id, a(3), Support::For, 31),
        Err(GovError::UnexpectedState { state: ProposalState::Succeeded, .. })
    ));
    assert!(matches!(vote(&mut g, B256::ZERO, a(3), Support::For, 20), Err(GovError::NonexistentProposal(_))));
}

#[test]
fn execution_needs_quorum_a_majority_the_end_of_voting_and_happens_once() {
    // no quorum: 2 of 100 tokens vote (quorum 4%)
    let mut g = dao(params(), Strategy::Token);
    let id = propose(&mut g, a(1), "no quorum", 10).unwrap();
    vote(&mut g, id, a(5), Support::For, 15).unwrap();
    assert_eq!(g.state(id, 31).unwrap(), ProposalState::Defeated);
    assert!(matches!(g.apply(&Event::Queue { proposal: id, at: 31 }), Err(GovError::UnexpectedState { .. })));
    assert!(matches!(g.apply(&Event::Execute { proposal: id, at: 31 }), Err(GovError::UnexpectedState { .. })));
    // for <= against
    let id = propose(&mut g, a(1), "tie", 40).unwrap();
    vote(&mut g, id, a(4), Support::For, 45).unwrap();
    vote(&mut g, id, a(4 + 1), Support::Against, 45).unwrap();
    vote(&mut g, id, a(3), Support::Against, 46).unwrap();
    assert_eq!(g.state(id, 61).unwrap(), ProposalState::Defeated);
    // before the vote ends
    let id = propose(&mut g, a(1), "early", 70).unwrap();
    vote(&mut g, id, a(2), Support::For, 75).unwrap();
    assert!(matches!(
        g.apply(&Event::Queue { proposal: id, at: 80 }),
        Err(GovError::UnexpectedState { state: ProposalState::Active, .. })
    ));
    g.apply(&Event::Queue { proposal: id, at: 91 }).unwrap();
    g.apply(&Event::Execute { proposal: id, at: 101 }).unwrap();
    assert!(matches!(
        g.apply(&Event::Execute { proposal: id, at: 102 }),
        Err(GovError::UnexpectedState { state: ProposalState::Executed, .. })
    ));
}

#[test]
fn cancel_rules() {
    let mut g = dao(params(), Strategy::Token);
    let id = propose(&mut g, a(2), "cancel me", 10).unwrap();
    assert_eq!(g.apply(&Event::Cancel { proposal: id, by: a(3), at: 11 }), Err(GovError::Unauthorized(a(3))));
    g.apply(&Event::Cancel { proposal: id, by: a(2), at: 11 }).unwrap();
    assert_eq!(g.state(id, 11).unwrap(), ProposalState::Canceled);
    assert!(matches!(
        vote(&mut g, id, a(2), Support::For, 15),
        Err(GovError::UnexpectedState { state: ProposalState::Canceled, .. })
    ));

    let id = propose(&mut g, a(2), "proposer too late", 20).unwrap();
    assert!(matches!(
        g.apply(&Event::Cancel { proposal: id, by: a(2), at: 25 }),
        Err(GovError::UnexpectedState { state: ProposalState::Active, .. })
    ));
    vote(&mut g, id, a(2), Support::For, 25).unwrap();
    g.apply(&Event::Queue { proposal: id, at: 41 }).unwrap();
    // the guardian may cancel until execution, even while queued
    g.apply(&Event::Cancel { proposal: id, by: a(99), at: 45 }).unwrap();
    assert!(matches!(
        g.apply(&Event::Execute { proposal: id, at: 51 }),
        Err(GovError::UnexpectedState { state: ProposalState::Canceled, .. })
    ));

    let id = propose(&mut g, a(2), "executed", 60).unwrap();
    vote(&mut g, id, a(2), Support::For, 65).unwrap();
    g.apply(&Event::Queue { proposal: id, at: 81 }).unwrap();
    g.apply(&Event::Execute { proposal: id, at: 91 }).unwrap();
    assert!(matches!(
        g.apply(&Event::Cancel { proposal: id, by: a(99), at: 92 }),
        Err(GovError::UnexpectedState { .. })
    ));
}

#[test]
fn timelock_too_early_and_expired() {
    let mut g = dao(params(), Strategy::Token);
    let id = propose(&mut g, a(1), "timelock", 10).unwrap();
    vote(&mut g, id, a(2), Support::For, 15).unwrap();
    g.apply(&Event::Queue { proposal: id, at: 31 }).unwrap();
    assert_eq!(g.apply(&Event::Execute { proposal: id, at: 40 }), Err(GovError::TimelockNotReady { eta: 41, now: 40 }));
    assert_eq!(g.state(id, 140).unwrap(), ProposalState::Queued);
    assert_eq!(g.state(id, 141).unwrap(), ProposalState::Expired);
    assert!(matches!(
        g.apply(&Event::Execute { proposal: id, at: 141 }),
        Err(GovError::UnexpectedState { state: ProposalState::Expired, .. })
    ));
}

#[test]
fn quorum_and_weights_are_measured_at_the_snapshot_not_after_later_transfers() {
    let mut g = dao(params(), Strategy::Token);
    let id = propose(&mut g, a(1), "snapshot", 10).unwrap();
    // after the snapshot (t = 14) a(1) moves 70 tokens to a(5)
    g.apply(&Event::Transfer { from: a(1), to: a(5), amount: 70 * E18, at: 15 }).unwrap();
    vote(&mut g, id, a(5), Support::For, 16).unwrap();
    assert_eq!(g.proposals[&id].for_votes, 2 * E18, "a(5) votes with its 2 tokens at the snapshot, not 72");
    vote(&mut g, id, a(1), Support::Against, 16).unwrap();
    assert_eq!(g.proposals[&id].against, 76 * E18);
    assert_eq!(g.state(id, 31).unwrap(), ProposalState::Defeated);
    // before the snapshot the transfer counts
    let id = propose(&mut g, a(5), "after transfer", 20).unwrap();
    vote(&mut g, id, a(5), Support::For, 25).unwrap();
    assert_eq!(g.proposals[&id].for_votes, 72 * E18);
}

#[test]
fn signed_ballots_are_verified_and_cannot_be_replayed() {
    let signer = PrivateKeySigner::random();
    let voter = signer.address();
    let init = Event::Init {
        params: params(),
        power: PowerConfig { strategy: Strategy::Token, sybil: None },
        guardian: a(99),
        holders: vec![(voter, 50 * E18), (a(1), 50 * E18)],
        allowlist: vec![],
        chain_id: 31337,
        at: 0,
    };
    let mut g = Governor::replay([&init]).unwrap();
    let id = propose(&mut g, a(1), "signed", 10).unwrap();
    let other = propose(&mut g, a(1), "other", 10).unwrap();
    let sign = |p: B256, support: u8, nonce: u64| {
        let h = ballot_hash(31337, p, support, 0, voter, nonce);
        alloy_primitives::hex::encode(signer.sign_hash_sync(&h).unwrap().as_bytes())
    };
    let ballot = |p: B256, sig: String, nonce: u64| Event::Vote {
        proposal: p,
        voter,
        support: Support::For,
        votes: 0,
        nonce,
        signature: Some(sig),
        at: 15,
    };
    // a signature over another proposal is refused
    let e = apply_verified(&mut g, &ballot(id, sign(other, 1, 0), 0)).unwrap_err();
    assert!(matches!(e, GovError::BadSignature(_)), "{e}");
    // a different support byte than signed is refused
    let mut wrong = ballot(id, sign(id, 1, 0), 0);
    if let Event::Vote { support, .. } = &mut wrong {
        *support = Support::Against;
    }
    let e = apply_verified(&mut g, &wrong).unwrap_err();
    assert!(matches!(e, GovError::BadSignature(_)));
    // garbage is refused
    assert!(apply_verified(&mut g, &ballot(id, "0xdeadbeef".into(), 0)).is_err());
    // the real one is accepted
    apply_verified(&mut g, &ballot(id, sign(id, 1, 0), 0)).unwrap();
    assert_eq!(g.proposals[&id].for_votes, 50 * E18);
    // replaying the same signed ballot on the other proposal: nonce used
    let e = apply_verified(&mut g, &ballot(other, sign(other, 1, 0), 0)).unwrap_err();
    assert!(e.to_string().contains("replay"), "{e}");
    apply_verified(&mut g, &ballot(other, sign(other, 1, 1), 1)).unwrap();
}

#[test]
fn one_person_one_vote_quadratic_and_credits() {
    let mut g = dao(params(), Strategy::OnePersonOneVote);
    let id = propose(&mut g, a(1), "opov", 10).unwrap();
    vote(&mut g, id, a(1), Support::For, 15).unwrap();
    vote(&mut g, id, a(2), Support::Against, 15).unwrap();
    assert_eq!((g.proposals[&id].for_votes, g.proposals[&id].against), (1, 1));
    assert_eq!(g.power_of(a(42), 14), 0, "not on the allowlist");

    let mut g = dao(params(), Strategy::QuadraticSqrt);
    let id = propose(&mut g, a(1), "sqrt", 10).unwrap();
    vote(&mut g, id, a(2), Support::For, 15).unwrap();
    assert_eq!(g.proposals[&id].for_votes, 3_162_277_660, "√(10e18)");

    let mut g = dao(params(), Strategy::QuadraticCredits);
    let id = propose(&mut g, a(1), "credits", 10).unwrap();
    let max = g.power_of(a(5), 14); // √(2e18) votes at most
    let e = g.apply(&Event::Vote {
        proposal: id,
        voter: a(5),
        support: Support::For,
        votes: max + 1,
        nonce: 0,
        signature: None,
        at: 15,
    });
    assert!(matches!(e, Err(GovError::InvalidVoteType(_))));
    g.apply(&Event::Vote {
        proposal: id,
        voter: a(5),
        support: Support::For,
        votes: 1000,
        nonce: 0,
        signature: None,
        at: 15,
    })
    .unwrap();
    assert_eq!(g.proposals[&id].for_votes, 1000);
}

#[test]
fn sybil_scores_scale_power() {
    use allonet_mechanisms::sybil::SybilPolicy;
    let scores: BTreeMap<Address, f64> = [(a(2), 20.0), (a(3), 5.0)].into_iter().collect();
    let init = Event::Init {
        params: params(),
        power: PowerConfig { strategy: Strategy::Token, sybil: Some((scores, SybilPolicy::new(15.0, 25.0).unwrap())) },
        guardian: a(99),
        holders: vec![(a(2), 100), (a(3), 100)],
        allowlist: vec![],
        chain_id: 1,
        at: 0,
    };
    let g = Governor::replay([&init]).unwrap();
    assert_eq!(g.power_of(a(2), 1), 75);
    assert_eq!(g.power_of(a(3), 1), 0);
}

#[test]
fn weighted_multi_choice_follows_snapshot_semantics() {
    let mut g = dao(params(), Strategy::Token);
    let actions = vec![Action::Pause];
    let options = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    g.apply(&Event::Propose {
        proposer: a(1),
        actions: actions.clone(),
        description: "pick".into(),
        options: options.clone(),
        at: 10,
    })
    .unwrap();
    let id = proposal_id(&actions, "pick", &options);
    let w: BTreeMap<u32, u64> = [(0, 1), (2, 2)].into_iter().collect();
    vote(&mut g, id, a(3), Support::Weighted(w), 15).unwrap();
    let ov = &g.proposals[&id].option_votes;
    assert_eq!(ov.iter().sum::<u128>(), 7 * E18, "the whole weight is split, no unit lost");
    assert_eq!(ov[1], 0);
    assert!(matches!(vote(&mut g, id, a(2), Support::For, 15), Err(GovError::InvalidVoteType(_))));
}

#[test]
fn replaying_events_rebuilds_the_same_state() {
    let init = Event::Init {
        params: params(),
        power: PowerConfig { strategy: Strategy::Token, sybil: None },
        guardian: a(99),
        holders: vec![(a(1), 10), (a(2), 5)],
        allowlist: vec![],
        chain_id: 1,
        at: 0,
    };
    let actions = vec![Action::Pause];
    let id = proposal_id(&actions, "p", &[]);
    let events = vec![
        init,
        Event::Propose { proposer: a(1), actions, description: "p".into(), options: vec![], at: 1 },
        Event::Vote { proposal: id, voter: a(1), support: Support::For, votes: 0, nonce: 0, signature: None, at: 6 },
        Event::Queue { proposal: id, at: 22 },
        Event::Execute { proposal: id, at: 32 },
    ];
    let g = Governor::replay(&events).unwrap();
    assert!(g.registry.paused);
    let json = serde_json::to_string(&events).unwrap();
    let back: Vec<Event> = serde_json::from_str(&json).unwrap();
    assert_eq!(Governor::replay(&back).unwrap(), g);
    // time cannot go backwards
    let mut g2 = g.clone();
    assert!(matches!(g2.apply(&Event::Queue { proposal: id, at: 5 }), Err(GovError::TimeTravel { .. })));
}

#[test]
fn only_the_guardian_pulls_the_kill_switch() {
    let mut g = dao(params(), Strategy::Token);
    assert_eq!(g.apply(&Event::GuardianPause { by: a(1), paused: true, at: 1 }), Err(GovError::Unauthorized(a(1))));
    g.apply(&Event::GuardianPause { by: a(99), paused: true, at: 1 }).unwrap();
    assert!(g.registry.paused);
    g.apply(&Event::GuardianPause { by: a(99), paused: false, at: 2 }).unwrap();
    assert!(!g.registry.paused);
}
