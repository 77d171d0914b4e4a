//! OpenZeppelin Governor's acceptance cases, ported to signed acts; voting strategies; and one test per
//! attack on the off-chain governor (unsigned or forged acts, replays, options unbound from their actions,
//! parameters changed under a live proposal, signatures moved between DAOs, overflows).
//!
//! Every event goes through [`Dao::submit`], which asserts that a refused event changes nothing (the
//! Governor is `==` its clone from before).

use allonet_governance::acts;
use allonet_governance::governor::{
    proposal_id, quorum_of, Act, Action, Choice, Event, GovError, GovParams, Governor, ProposalState, Support,
    MAX_DURATION, MAX_FUTURE_DRIFT, MAX_SIGNATURE_AGE,
};
use allonet_governance::power::{PowerConfig, Strategy};
use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use std::collections::BTreeMap;

const E18: u128 = 1_000_000_000_000_000_000;
const CHAIN: u64 = 31337;
/// The guardian's key index.
const GUARDIAN: u8 = 99;
/// The operator's key index (signs the genesis).
const OPERATOR: u8 = 0;

/// The deterministic key of address index `i`.
fn k(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256([b"allonet governance test key ".as_slice(), &[i]].concat())).unwrap()
}

/// The address of key `i`.
fn a(i: u8) -> Address {
    k(i).address()
}

fn salt(i: u8) -> B256 {
    B256::repeat_byte(i)
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

/// OpenZeppelin's Governor test set-up: 100 tokens; voters get 10 / 7 / 5 / 2 and delegate to themselves
/// (the rest, 76, is a(1)'s).
fn oz_holders() -> Vec<(Address, u128)> {
    vec![(a(1), 76 * E18), (a(2), 10 * E18), (a(3), 7 * E18), (a(4), 5 * E18), (a(5), 2 * E18)]
}

fn init_act(p: GovParams, power: PowerConfig, holders: Vec<(Address, u128)>, salt: B256) -> Act {
    Act::Init {
        params: p,
        power,
        guardian: a(GUARDIAN),
        holders,
        allowlist: vec![a(1), a(2), a(3), a(4), a(5)],
        chain_id: CHAIN,
        rehearsal: false,
        salt,
    }
}

fn strategy(s: Strategy) -> PowerConfig {
    PowerConfig { strategy: s, sybil: None }
}

/// The genesis event of `init`, signed by the operator at `at`.
fn genesis(init: Act, at: u64) -> Event {
    acts::sign(&k(OPERATOR), init, B256::ZERO, CHAIN, 0, at).unwrap()
}

fn model7() -> Action {
    Action::ActivateModel { model_id: B256::repeat_byte(7) }
}

/// A governor and the log of the events it accepted.
#[derive(Clone)]
struct Dao {
    g: Governor,
    log: Vec<Event>,
}

impl Dao {
    fn from_init(init: Act, at: u64) -> Dao {
        let e = genesis(init, at);
        let g = Governor::replay([&e]).unwrap();
        assert_eq!(g.operator, a(OPERATOR));
        assert_eq!(g.next_nonce(a(OPERATOR)), 1, "the genesis uses the operator's nonce 0");
        Dao { g, log: vec![e] }
    }

    fn oz(p: GovParams, s: Strategy) -> Dao {
        Dao::from_init(init_act(p, strategy(s), oz_holders(), salt(1)), 0)
    }

    /// Applies an event; a refused event must leave the governor exactly as it was.
    fn submit(&mut self, e: &Event) -> Result<(), GovError> {
        let before = self.g.clone();
        match self.g.apply(e) {
            Ok(()) => {
                self.log.push(e.clone());
                Ok(())
            }
            Err(err) => {
                assert_eq!(self.g, before, "the refused {} event ({err}) changed the governor", e.act.kind());
                Err(err)
            }
        }
    }

    /// `act` signed by key `i` with its next nonce, at `at`.
    fn signed(&self, i: u8, act: Act, at: u64) -> Event {
        self.g.sign(&k(i), act, at).unwrap()
    }

    fn act(&mut self, i: u8, act: Act, at: u64) -> Result<(), GovError> {
        let e = self.signed(i, act, at);
        self.submit(&e)
    }

    fn propose_with(
        &mut self,
        i: u8,
        actions: Vec<Action>,
        desc: &str,
        options: Vec<Choice>,
        at: u64,
    ) -> Result<B256, GovError> {
        let id = proposal_id(self.g.dao, a(i), &actions, desc, &options);
        self.act(i, Act::Propose { actions, description: desc.into(), options }, at)?;
        Ok(id)
    }

    fn propose(&mut self, i: u8, desc: &str, at: u64) -> Result<B256, GovError> {
        self.propose_with(i, vec![model7()], desc, vec![], at)
    }

    fn vote(&mut self, i: u8, id: B256, support: Support, at: u64) -> Result<(), GovError> {
        self.act(i, Act::Vote { proposal: id, support, votes: 0 }, at)
    }

    fn queue(&mut self, i: u8, id: B256, at: u64) -> Result<(), GovError> {
        self.act(i, Act::Queue { proposal: id }, at)
    }

    fn execute(&mut self, i: u8, id: B256, at: u64) -> Result<(), GovError> {
        self.act(i, Act::Execute { proposal: id }, at)
    }

    fn cancel(&mut self, i: u8, id: B256, at: u64) -> Result<(), GovError> {
        self.act(i, Act::Cancel { proposal: id }, at)
    }

    fn state(&self, id: B256, at: u64) -> ProposalState {
        self.g.state(id, at).unwrap()
    }

    /// Replaying the accepted events rebuilds the same governor.
    fn check_replay(&self) {
        assert_eq!(Governor::replay(&self.log).unwrap(), self.g, "replay differs");
    }
}

fn weights(w: &[(u32, u64)]) -> Support {
    Support::Weighted(w.iter().copied().collect())
}

/// `act` claiming `claimed` as signer (with its next nonce), but signed by key `by`.
fn forge(g: &Governor, claimed: u8, by: u8, act: Act, at: u64) -> Event {
    let signer = a(claimed);
    let nonce = g.next_nonce(signer);
    let h = acts::signing_hash(&act, signer, nonce, at, g.dao, g.chain_id).unwrap();
    Event { act, signer, nonce, signed_at: at, signature: acts::sign_hash(&k(by), h).unwrap(), at }
}

/// A genuine act of key `by` (with the claimed signer's nonce) whose `signer` field is rewritten to `claimed`.
fn impersonate(g: &Governor, claimed: u8, by: u8, act: Act, at: u64) -> Event {
    let mut e = acts::sign(&k(by), act, g.dao, g.chain_id, g.next_nonce(a(claimed)), at).unwrap();
    e.signer = a(claimed);
    e
}

// ---------------------------------------------------------------------------------------------------------
// OpenZeppelin Governor's acceptance cases
// ---------------------------------------------------------------------------------------------------------

#[test]
fn nominal_workflow_10_7_5_2_is_executed() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(1, "<proposal description>", 10).unwrap();
    assert_eq!(d.state(id, 10), ProposalState::Pending);
    assert_eq!(d.state(id, 14), ProposalState::Pending, "the snapshot instant is still pending");
    assert_eq!(d.state(id, 15), ProposalState::Active);
    d.vote(2, id, Support::For, 15).unwrap();
    d.vote(3, id, Support::For, 16).unwrap();
    d.vote(4, id, Support::Against, 17).unwrap();
    d.vote(5, id, Support::Abstain, 18).unwrap();
    let p = &d.g.proposals[&id];
    assert_eq!((p.for_votes, p.against, p.abstain), (17 * E18, 5 * E18, 2 * E18));
    assert_eq!(p.voters.len(), 4);
    assert_eq!(d.state(id, 30), ProposalState::Active, "deadline is inclusive");
    assert_eq!(d.state(id, 31), ProposalState::Succeeded);
    d.queue(1, id, 31).unwrap();
    assert_eq!(d.state(id, 31), ProposalState::Queued);
    assert_eq!(d.g.proposals[&id].eta, Some(41));
    d.execute(1, id, 41).unwrap();
    assert_eq!(d.state(id, 41), ProposalState::Executed);
    assert_eq!(d.g.registry.active_model(), Some(B256::repeat_byte(7)));
    // one nonce per signer across all kinds of act
    assert_eq!(d.g.next_nonce(a(1)), 3, "propose, queue, execute");
    assert_eq!(d.g.next_nonce(a(2)), 1);
    d.check_replay();
}

#[test]
fn propose_below_threshold_and_duplicates_are_refused() {
    let mut d = Dao::oz(GovParams { proposal_threshold: 8 * E18, ..params() }, Strategy::Token);
    assert!(
        matches!(d.propose(3, "x", 10), Err(GovError::InsufficientProposerVotes { votes, .. }) if votes == 7 * E18)
    );
    d.propose(2, "x", 10).unwrap();
    assert!(matches!(d.propose(2, "x", 11), Err(GovError::UnexpectedState { .. })));
    assert_eq!(d.propose_with(2, vec![], "e", vec![], 12), Err(GovError::EmptyProposal));
    // options: at least two, distinct non-empty labels
    assert!(matches!(
        d.propose_with(2, vec![], "one", vec![Choice::label("only")], 12),
        Err(GovError::InvalidProposal(_))
    ));
    assert!(matches!(
        d.propose_with(2, vec![], "dup", vec![Choice::label("a"), Choice::label("a")], 12),
        Err(GovError::InvalidProposal(_))
    ));
    assert!(matches!(
        d.propose_with(2, vec![], "blank", vec![Choice::label(""), Choice::label("a")], 12),
        Err(GovError::InvalidProposal(_))
    ));
    // a proposal id commits to the DAO, the proposer, actions, description and options
    let g = &d.g;
    let base = proposal_id(g.dao, a(1), &[model7()], "d", &[]);
    assert_ne!(base, proposal_id(B256::repeat_byte(1), a(1), &[model7()], "d", &[]));
    assert_ne!(base, proposal_id(g.dao, a(2), &[model7()], "d", &[]));
    assert_ne!(base, proposal_id(g.dao, a(1), &[Action::Pause], "d", &[]));
    assert_ne!(base, proposal_id(g.dao, a(1), &[model7()], "e", &[]));
    d.check_replay();
}

#[test]
fn votes_before_start_twice_after_end_or_invalid_are_refused() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(1, "d", 10).unwrap();
    assert!(matches!(
        d.vote(2, id, Support::For, 14),
        Err(GovError::UnexpectedState { state: ProposalState::Pending, .. })
    ));
    d.vote(2, id, Support::For, 15).unwrap();
    assert_eq!(d.vote(2, id, Support::Against, 16), Err(GovError::AlreadyCastVote(a(2))));
    assert!(matches!(d.vote(3, id, weights(&[(0, 1)]), 16), Err(GovError::InvalidVoteType(_))));
    assert_eq!(Support::from_u8(3), None, "support byte 3 is not a vote type");
    assert_eq!(Support::from_u8(1), Some(Support::For));
    assert!(matches!(
        d.vote(3, id, Support::For, 31),
        Err(GovError::UnexpectedState { state: ProposalState::Succeeded, .. })
    ));
    assert!(matches!(d.vote(3, B256::ZERO, Support::For, 31), Err(GovError::NonexistentProposal(_))));
    d.check_replay();
}

#[test]
fn execution_needs_quorum_a_majority_the_end_of_voting_and_happens_once() {
    // no quorum: 2 of 100 tokens vote (quorum 4%)
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(1, "no quorum", 10).unwrap();
    d.vote(5, id, Support::For, 15).unwrap();
    assert!(!d.g.quorum_reached(&d.g.proposals[&id]));
    assert_eq!(d.g.quorum(&d.g.proposals[&id]), 4 * E18);
    assert_eq!(d.state(id, 31), ProposalState::Defeated);
    assert!(matches!(d.queue(1, id, 31), Err(GovError::UnexpectedState { state: ProposalState::Defeated, .. })));
    assert!(matches!(d.execute(1, id, 31), Err(GovError::UnexpectedState { state: ProposalState::Defeated, .. })));
    // for <= against
    let id = d.propose(1, "against wins", 40).unwrap();
    d.vote(4, id, Support::For, 45).unwrap();
    d.vote(5, id, Support::Against, 45).unwrap();
    d.vote(3, id, Support::Against, 46).unwrap();
    assert_eq!(d.state(id, 61), ProposalState::Defeated);
    // an exact tie is a defeat too (a(1) gives a(5) 3 tokens before the snapshot: 5 for, 5 against)
    let id = d.propose(1, "tie", 62).unwrap();
    d.act(1, Act::Transfer { to: a(5), amount: 3 * E18 }, 62).unwrap();
    d.vote(4, id, Support::For, 67).unwrap();
    d.vote(5, id, Support::Against, 67).unwrap();
    let p = &d.g.proposals[&id];
    assert_eq!((p.for_votes, p.against), (5 * E18, 5 * E18));
    assert!(d.g.quorum_reached(p));
    assert_eq!(d.state(id, 83), ProposalState::Defeated);
    // before the vote ends
    let id = d.propose(1, "early", 90).unwrap();
    d.vote(2, id, Support::For, 95).unwrap();
    assert!(matches!(d.queue(1, id, 100), Err(GovError::UnexpectedState { state: ProposalState::Active, .. })));
    d.queue(1, id, 111).unwrap();
    assert!(matches!(d.queue(1, id, 112), Err(GovError::UnexpectedState { state: ProposalState::Queued, .. })));
    d.execute(1, id, 121).unwrap();
    assert!(matches!(d.execute(1, id, 122), Err(GovError::UnexpectedState { state: ProposalState::Executed, .. })));
    d.check_replay();
}

#[test]
fn cancel_rules() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(2, "cancel me", 10).unwrap();
    assert!(matches!(d.cancel(3, id, 11), Err(GovError::Unauthorized { who, .. }) if who == a(3)));
    d.cancel(2, id, 11).unwrap();
    assert_eq!(d.state(id, 11), ProposalState::Canceled);
    assert!(matches!(
        d.vote(2, id, Support::For, 15),
        Err(GovError::UnexpectedState { state: ProposalState::Canceled, .. })
    ));
    assert!(matches!(d.cancel(2, id, 15), Err(GovError::UnexpectedState { state: ProposalState::Canceled, .. })));

    let id = d.propose(2, "proposer too late", 20).unwrap();
    assert!(matches!(d.cancel(2, id, 25), Err(GovError::UnexpectedState { state: ProposalState::Active, .. })));
    d.vote(2, id, Support::For, 25).unwrap();
    d.queue(2, id, 41).unwrap();
    assert!(matches!(d.cancel(2, id, 42), Err(GovError::UnexpectedState { state: ProposalState::Queued, .. })));
    // the guardian may cancel until execution, even while queued
    d.cancel(GUARDIAN, id, 45).unwrap();
    assert!(matches!(d.execute(2, id, 51), Err(GovError::UnexpectedState { state: ProposalState::Canceled, .. })));

    let id = d.propose(2, "executed", 60).unwrap();
    d.vote(2, id, Support::For, 65).unwrap();
    d.queue(2, id, 81).unwrap();
    d.execute(2, id, 91).unwrap();
    assert!(matches!(
        d.cancel(GUARDIAN, id, 92),
        Err(GovError::UnexpectedState { state: ProposalState::Executed, .. })
    ));
    assert!(matches!(d.cancel(GUARDIAN, B256::ZERO, 92), Err(GovError::NonexistentProposal(_))));
    d.check_replay();
}

#[test]
fn timelock_too_early_and_expired() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(1, "timelock", 10).unwrap();
    d.vote(2, id, Support::For, 15).unwrap();
    d.queue(1, id, 31).unwrap();
    assert_eq!(d.execute(1, id, 40), Err(GovError::TimelockNotReady { eta: 41, now: 40 }));
    assert_eq!(d.state(id, 140), ProposalState::Queued);
    assert_eq!(d.state(id, 141), ProposalState::Expired);
    assert!(matches!(d.execute(1, id, 141), Err(GovError::UnexpectedState { state: ProposalState::Expired, .. })));
    assert!(matches!(
        d.cancel(GUARDIAN, id, 141),
        Err(GovError::UnexpectedState { state: ProposalState::Expired, .. })
    ));
    // the last second of the grace period still executes
    let id = d.propose(1, "last second", 150).unwrap();
    d.vote(2, id, Support::For, 155).unwrap();
    d.queue(1, id, 171).unwrap();
    d.execute(1, id, 280).unwrap();
    d.check_replay();
}

#[test]
fn quorum_and_weights_are_measured_at_the_snapshot_not_after_later_transfers() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(1, "snapshot", 10).unwrap();
    // after the snapshot (t = 14) a(1) moves 70 tokens to a(5)
    d.act(1, Act::Transfer { to: a(5), amount: 70 * E18 }, 15).unwrap();
    d.vote(5, id, Support::For, 16).unwrap();
    assert_eq!(d.g.proposals[&id].for_votes, 2 * E18, "a(5) votes with its 2 tokens at the snapshot, not 72");
    d.vote(1, id, Support::Against, 16).unwrap();
    assert_eq!(d.g.proposals[&id].against, 76 * E18);
    assert_eq!(d.state(id, 31), ProposalState::Defeated);
    // before the snapshot the transfer counts
    let id = d.propose(5, "after transfer", 20).unwrap();
    d.vote(5, id, Support::For, 25).unwrap();
    assert_eq!(d.g.proposals[&id].for_votes, 72 * E18);
    // a transfer at the snapshot instant itself still counts (votes are measured at the end of it)
    let id = d.propose(5, "at the snapshot", 30).unwrap();
    d.act(5, Act::Transfer { to: a(4), amount: 72 * E18 }, 34).unwrap();
    d.vote(4, id, Support::For, 35).unwrap();
    assert_eq!(d.g.proposals[&id].for_votes, 77 * E18);
    // delegated votes move with the delegation; undelegated balances carry none
    d.act(4, Act::Delegate { to: a(2) }, 36).unwrap();
    d.act(1, Act::Transfer { to: a(6), amount: 6 * E18 }, 36).unwrap();
    assert_eq!(d.g.ledger.votes_at(a(2), 36), 87 * E18);
    assert_eq!(d.g.ledger.votes_at(a(6), 36), 0, "a(6) never delegated");
    // failed transfer: refused, changes nothing
    assert!(matches!(d.act(6, Act::Transfer { to: a(1), amount: 7 * E18 }, 37), Err(GovError::Ledger(_))));
    d.check_replay();
}

#[test]
fn signed_ballots_are_verified_and_cannot_be_replayed() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(1, "signed", 10).unwrap();
    let other = d.propose(1, "other", 10).unwrap();
    let ballot =
        |d: &Dao, p: B256, support: Support, votes: u128| d.signed(2, Act::Vote { proposal: p, support, votes }, 15);
    // a signature over another proposal is refused
    let mut e = ballot(&d, other, Support::For, 0);
    e.act = Act::Vote { proposal: id, support: Support::For, votes: 0 };
    assert!(matches!(d.submit(&e), Err(GovError::BadSignature(_))));
    // a different support than signed is refused
    let mut e = ballot(&d, id, Support::For, 0);
    e.act = Act::Vote { proposal: id, support: Support::Against, votes: 0 };
    assert!(matches!(d.submit(&e), Err(GovError::BadSignature(_))));
    // a different vote count than signed is refused
    let mut e = ballot(&d, id, Support::For, 0);
    e.act = Act::Vote { proposal: id, support: Support::For, votes: 1 };
    assert!(matches!(d.submit(&e), Err(GovError::BadSignature(_))));
    // another nonce or signing time than signed is refused
    let mut e = ballot(&d, id, Support::For, 0);
    e.signed_at = 14;
    assert!(matches!(d.submit(&e), Err(GovError::BadSignature(_))));
    // garbage is refused
    let mut e = ballot(&d, id, Support::For, 0);
    e.signature = "0xdeadbeef".into();
    assert!(matches!(d.submit(&e), Err(GovError::BadSignature(_))));
    // the real one is accepted
    let real = ballot(&d, id, Support::For, 0);
    d.submit(&real).unwrap();
    assert_eq!(d.g.proposals[&id].for_votes, 10 * E18);
    // the same signed ballot again: its nonce is used
    assert!(matches!(d.submit(&real), Err(GovError::BadNonce { nonce: 0, expected: 1, .. })));
    // a new ballot on the other proposal with the used nonce 0 is a replay too
    let stale =
        acts::sign(&k(2), Act::Vote { proposal: other, support: Support::For, votes: 0 }, d.g.dao, CHAIN, 0, 15)
            .unwrap();
    let err = d.submit(&stale).unwrap_err();
    assert!(err.to_string().contains("replay"), "{err}");
    // with its next nonce it is accepted
    d.vote(2, other, Support::For, 15).unwrap();
    d.check_replay();
}

#[test]
fn one_person_one_vote_quadratic_and_credits() {
    let mut d = Dao::oz(params(), Strategy::OnePersonOneVote);
    let id = d.propose(1, "opov", 10).unwrap();
    d.vote(1, id, Support::For, 15).unwrap();
    d.vote(2, id, Support::Against, 15).unwrap();
    assert_eq!((d.g.proposals[&id].for_votes, d.g.proposals[&id].against), (1, 1));
    assert_eq!(d.g.power_of(a(42), 14), 0, "not on the allowlist");
    assert_eq!(d.g.quorum(&d.g.proposals[&id]), 0, "4% of 5 people");
    d.check_replay();

    let mut d = Dao::oz(params(), Strategy::QuadraticSqrt);
    let id = d.propose(1, "sqrt", 10).unwrap();
    d.vote(2, id, Support::For, 15).unwrap();
    assert_eq!(d.g.proposals[&id].for_votes, 3_162_277_660, "√(10e18)");
    d.check_replay();

    let mut d = Dao::oz(params(), Strategy::QuadraticCredits);
    let id = d.propose(1, "credits", 10).unwrap();
    let max = d.g.power_of(a(5), 14); // √(2e18) votes at most
    assert_eq!(max, 1_414_213_562);
    let credits = |votes| Act::Vote { proposal: id, support: Support::For, votes };
    assert!(matches!(d.act(5, credits(max + 1), 15), Err(GovError::InvalidVoteType(_))));
    assert!(matches!(d.act(5, credits(0), 15), Err(GovError::InvalidVoteType(_))));
    d.act(5, credits(1000), 15).unwrap();
    assert_eq!(d.g.proposals[&id].for_votes, 1000);
    d.act(4, credits(d.g.power_of(a(4), 14)), 15).unwrap();
    d.check_replay();
}

#[test]
fn sybil_scores_scale_power() {
    use allonet_mechanisms::sybil::SybilPolicy;
    let scores: BTreeMap<Address, f64> = [(a(2), 20.0), (a(3), 5.0), (a(4), 30.0)].into_iter().collect();
    let power = PowerConfig { strategy: Strategy::Token, sybil: Some((scores, SybilPolicy::new(15.0, 25.0).unwrap())) };
    let d = Dao::from_init(init_act(params(), power, vec![(a(2), 100), (a(3), 100), (a(4), 100)], salt(1)), 0);
    assert_eq!(d.g.power_of(a(2), 1), 75);
    assert_eq!(d.g.power_of(a(3), 1), 0);
    assert_eq!(d.g.power_of(a(4), 1), 100);
    assert_eq!(d.g.power.as_ref().unwrap().total(&d.g.ledger, 1), 175);
}

#[test]
fn sybil_scaling_never_exceeds_the_raw_power_nor_overflows() {
    use allonet_mechanisms::sybil::SybilPolicy;
    // 2^127 − 1 and 2^127: the whole u128 range; in f64 both round to 2^127
    let (x, y) = ((1u128 << 127) - 1, 1u128 << 127);
    let scores: BTreeMap<Address, f64> = [(a(2), 30.0), (a(3), 30.0)].into_iter().collect();
    let power = PowerConfig { strategy: Strategy::Token, sybil: Some((scores, SybilPolicy::new(15.0, 25.0).unwrap())) };
    let mut d = Dao::from_init(init_act(params(), power, vec![(a(2), x), (a(3), y)], salt(1)), 0);
    assert_eq!(d.g.power_of(a(2), 1), x, "full weight is the exact balance, not its f64 rounding");
    let id = d.propose(2, "huge", 10).unwrap();
    d.vote(2, id, Support::For, 15).unwrap();
    assert_eq!(d.g.proposals[&id].for_votes, x);
    assert_eq!(d.g.power.as_ref().unwrap().total(&d.g.ledger, 14), u128::MAX);
    assert_eq!(d.state(id, 31), ProposalState::Succeeded);
    d.queue(3, id, 31).unwrap();
    d.check_replay();
}

#[test]
fn weighted_multi_choice_follows_snapshot_semantics() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let options =
        vec![Choice { label: "a".into(), actions: vec![Action::Pause] }, Choice::label("b"), Choice::label("c")];
    let id = d.propose_with(1, vec![], "pick", options, 10).unwrap();
    d.vote(3, id, weights(&[(0, 1), (2, 2)]), 15).unwrap();
    let ov = &d.g.proposals[&id].option_votes;
    assert_eq!(ov.iter().sum::<u128>(), 7 * E18, "the whole weight is split, no unit lost");
    assert_eq!(ov, &vec![2_333_333_333_333_333_333, 0, 4_666_666_666_666_666_667]);
    assert!(matches!(d.vote(2, id, Support::For, 15), Err(GovError::InvalidVoteType(_))));
    assert!(matches!(d.vote(2, id, weights(&[(3, 1)]), 15), Err(GovError::InvalidVoteType(_))));
    assert!(matches!(d.vote(2, id, weights(&[(0, 0), (1, 0)]), 15), Err(GovError::InvalidVoteType(_))));
    assert!(matches!(d.vote(2, id, weights(&[]), 15), Err(GovError::InvalidVoteType(_))));
    // option c (no actions) wins: executing changes nothing, and the losing option's Pause does not run
    assert_eq!(d.g.proposals[&id].winner(), Some(2));
    assert_eq!(d.state(id, 31), ProposalState::Succeeded);
    d.queue(1, id, 31).unwrap();
    d.execute(1, id, 41).unwrap();
    assert!(!d.g.registry.paused);
    d.check_replay();
}

#[test]
fn replaying_events_rebuilds_the_same_state() {
    let mut d = Dao::from_init(init_act(params(), strategy(Strategy::Token), vec![(a(1), 10), (a(2), 5)], salt(3)), 0);
    let id = d.propose_with(1, vec![Action::Pause], "p", vec![], 1).unwrap();
    d.vote(1, id, Support::For, 6).unwrap();
    d.act(2, Act::Delegate { to: a(1) }, 7).unwrap();
    d.act(OPERATOR, Act::Record { kind: "payout".into(), detail: r#"{"tx":"0x01"}"#.into() }, 8).unwrap();
    d.queue(2, id, 22).unwrap();
    d.execute(2, id, 32).unwrap();
    assert!(d.g.registry.paused);
    let g = Governor::replay(&d.log).unwrap();
    assert_eq!(g, d.g);
    let json = serde_json::to_string(&d.log).unwrap();
    let back: Vec<Event> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d.log);
    assert_eq!(Governor::replay(&back).unwrap(), d.g);
    // a replay missing the genesis, or with events reordered, is refused
    assert!(Governor::replay(&d.log[1..]).is_err());
    let mut swapped = d.log.clone();
    swapped.swap(2, 3);
    assert!(Governor::replay(&swapped).is_err());
    // time cannot go backwards
    assert!(matches!(d.queue(1, id, 5), Err(GovError::TimeTravel { at: 5, last: 32 })));
    // a second genesis is refused, whoever signs it
    let again = genesis(init_act(params(), strategy(Strategy::Token), vec![], salt(4)), 40);
    assert!(d.submit(&again).is_err());
    let other_op =
        acts::sign(&k(7), init_act(params(), strategy(Strategy::Token), vec![], salt(4)), B256::ZERO, CHAIN, 0, 40)
            .unwrap();
    assert!(matches!(d.submit(&other_op), Err(GovError::Setup(_))));
    // only the operator records evidence (a member's record could, say, mark a plan as queued)
    assert!(matches!(
        d.act(1, Act::Record { kind: "plan_queued".into(), detail: "{}".into() }, 40),
        Err(GovError::Unauthorized { .. })
    ));
    // a record needs a kind and JSON details
    assert!(matches!(
        d.act(OPERATOR, Act::Record { kind: "".into(), detail: "{}".into() }, 40),
        Err(GovError::Setup(_))
    ));
    assert!(matches!(
        d.act(OPERATOR, Act::Record { kind: "payout".into(), detail: "not json".into() }, 40),
        Err(GovError::Setup(_))
    ));
    // nothing but a genesis starts a DAO
    let mut fresh = Governor::default();
    assert!(fresh.apply(&d.log[1]).is_err());
    assert_eq!(fresh, Governor::default());
}

#[test]
fn only_the_guardian_pulls_the_kill_switch() {
    let mut d = Dao::oz(params(), Strategy::Token);
    assert!(matches!(
        d.act(1, Act::Pause { paused: true }, 1),
        Err(GovError::Unauthorized { who, .. }) if who == a(1)
    ));
    d.act(GUARDIAN, Act::Pause { paused: true }, 1).unwrap();
    assert!(d.g.registry.paused);
    // Lifting it is the members' decision, not the guardian's.
    assert!(matches!(
        d.act(GUARDIAN, Act::Pause { paused: false }, 2),
        Err(GovError::Unauthorized { what, .. }) if what.contains("passing proposal")
    ));
    assert!(d.g.registry.paused);
    d.check_replay();
}

// ---------------------------------------------------------------------------------------------------------
// Attack 1: every act is signed by its actor
// ---------------------------------------------------------------------------------------------------------

#[test]
fn attack_forged_acts_of_every_kind_are_refused() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let exec = d.propose(1, "to execute", 10).unwrap();
    let queue = d.propose(2, "to queue", 10).unwrap();
    d.vote(2, exec, Support::For, 15).unwrap();
    d.vote(2, queue, Support::For, 15).unwrap();
    d.queue(3, exec, 31).unwrap();
    let active = d.propose(1, "active", 31).unwrap();
    let t = 41; // exec is executable, queue succeeded, active is active
    assert_eq!(d.state(exec, t), ProposalState::Queued);
    assert_eq!(d.state(queue, t), ProposalState::Succeeded);
    assert_eq!(d.state(active, t), ProposalState::Active);

    // (claimed signer, attacker, act): each would be accepted if the claimed signer had signed it
    let cases: Vec<(u8, u8, Act)> = vec![
        (1, 2, Act::Propose { actions: vec![Action::Pause], description: "forged".into(), options: vec![] }),
        (1, 6, Act::Vote { proposal: active, support: Support::Against, votes: 0 }),
        (1, 6, Act::Delegate { to: a(6) }),
        (1, 6, Act::Transfer { to: a(6), amount: 76 * E18 }),
        (3, 4, Act::Queue { proposal: queue }),
        (GUARDIAN, 3, Act::Cancel { proposal: queue }),
        (3, 4, Act::Execute { proposal: exec }),
        (GUARDIAN, 1, Act::Pause { paused: true }),
        (OPERATOR, 1, Act::Record { kind: "payout".into(), detail: "{}".into() }),
    ];
    for (claimed, by, act) in &cases {
        for e in [forge(&d.g, *claimed, *by, act.clone(), t), impersonate(&d.g, *claimed, *by, act.clone(), t)] {
            let err = d.submit(&e).unwrap_err();
            assert!(matches!(err, GovError::BadSignature(_)), "forged {}: {err}", act.kind());
        }
    }
    // a forged genesis is refused too
    let mut fake = genesis(init_act(params(), strategy(Strategy::Token), oz_holders(), salt(9)), 0);
    fake.signer = a(1);
    let mut fresh = Governor::default();
    assert!(matches!(fresh.apply(&fake), Err(GovError::BadSignature(_))));
    assert_eq!(fresh, Governor::default());

    // the same acts, signed by their actors, are accepted
    for (claimed, _, act) in cases {
        let kind = act.kind();
        d.act(claimed, act, t).unwrap_or_else(|e| panic!("genuine {kind}: {e}"));
    }
    assert!(d.g.registry.paused);
    assert_eq!(d.state(queue, t), ProposalState::Canceled);
    assert_eq!(d.state(exec, t), ProposalState::Executed);
    assert_eq!(d.g.ledger.balances[&a(6)], 76 * E18);
    d.check_replay();
}

/// The same signature with `s` replaced by `n − s` and the recovery bit flipped: it recovers the same signer, so only
/// the low-s rule (EIP-2) refuses it.
fn malleate(sig: &str) -> String {
    use alloy_primitives::U256;
    let b = alloy_primitives::hex::decode(sig).unwrap();
    let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
    let s = U256::from_be_slice(&b[32..64]);
    let mut out = b.clone();
    out[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    out[64] = if b[64] == 27 { 28 } else { 27 };
    alloy_primitives::hex::encode(out)
}

fn with_v(sig: &str, f: impl Fn(u8) -> u8) -> String {
    let mut b = alloy_primitives::hex::decode(sig).unwrap();
    b[64] = f(b[64]);
    alloy_primitives::hex::encode(b)
}

#[test]
fn attack_empty_or_garbage_signatures_are_refused() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(1, "p", 10).unwrap();
    let good = d.signed(2, Act::Vote { proposal: id, support: Support::For, votes: 0 }, 15);
    let mut flipped = good.signature.clone();
    flipped.replace_range(10..12, if &flipped[10..12] == "00" { "01" } else { "00" });
    for sig in [
        String::new(),
        "0x".into(),
        "zz".into(),
        "0xdeadbeef".into(),
        "00".repeat(65),
        "ff".repeat(65),
        "11".repeat(64),
        flipped,
        format!("{}00", good.signature),
        // the same signature in other encodings: one act has one encoding (and one log hash)
        format!("0x{}", good.signature),
        good.signature.to_uppercase(),
        format!(" {}", good.signature),
        malleate(&good.signature),
        with_v(&good.signature, |v| v - 27),
    ] {
        let e = Event { signature: sig.clone(), ..good.clone() };
        let err = d.submit(&e).unwrap_err();
        assert!(matches!(err, GovError::BadSignature(_)), "signature {sig:?}: {err}");
    }
    d.submit(&good).unwrap();
}

#[test]
fn attack_cancel_and_pause_need_rights_but_anyone_may_queue_and_execute() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(2, "p", 10).unwrap();
    // a non-proposer, non-guardian canceller, validly signed, is unauthorised
    for i in [1, 3, 42] {
        assert!(matches!(d.cancel(i, id, 11), Err(GovError::Unauthorized { who, .. }) if who == a(i)));
    }
    for i in [1, 2, OPERATOR, 42] {
        assert!(matches!(
            d.act(i, Act::Pause { paused: true }, 11),
            Err(GovError::Unauthorized { who, .. }) if who == a(i)
        ));
    }
    d.vote(1, id, Support::For, 15).unwrap();
    // a(42) and a(43) hold nothing, yet may queue and execute; their acts are signed and counted
    assert_eq!(d.g.next_nonce(a(42)), 0);
    d.queue(42, id, 31).unwrap();
    d.execute(43, id, 41).unwrap();
    assert_eq!(d.g.nonces[&a(42)], 1);
    assert_eq!(d.g.nonces[&a(43)], 1);
    let last = d.log.last().unwrap();
    assert_eq!((last.act.kind(), last.signer), ("execute", a(43)));
    assert_eq!(d.g.registry.active_model(), Some(B256::repeat_byte(7)));
    d.check_replay();
}

// ---------------------------------------------------------------------------------------------------------
// Attack 2: replays, nonces, clock
// ---------------------------------------------------------------------------------------------------------

#[test]
fn attack_replayed_future_nonce_out_of_order_and_stale_acts_are_refused() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let id = d.propose(1, "p", 10).unwrap();
    let vote = d.signed(2, Act::Vote { proposal: id, support: Support::For, votes: 0 }, 15);
    d.submit(&vote).unwrap();
    // the same signed vote again, now or later
    assert_eq!(d.submit(&vote), Err(GovError::BadNonce { signer: a(2), nonce: 0, expected: 1 }));
    assert!(matches!(d.submit(&Event { at: 16, ..vote.clone() }), Err(GovError::BadNonce { .. })));
    // re-signed with the next nonce: the vote itself is a duplicate
    assert_eq!(d.vote(2, id, Support::For, 16), Err(GovError::AlreadyCastVote(a(2))));
    // a vote signed with a future nonce
    for nonce in [1, 2, u64::MAX] {
        let e =
            acts::sign(&k(3), Act::Vote { proposal: id, support: Support::For, votes: 0 }, d.g.dao, CHAIN, nonce, 16)
                .unwrap();
        assert_eq!(d.submit(&e), Err(GovError::BadNonce { signer: a(3), nonce, expected: 0 }));
    }
    d.vote(3, id, Support::For, 20).unwrap();
    // out of order: before the last event
    assert_eq!(d.vote(4, id, Support::Against, 19), Err(GovError::TimeTravel { at: 19, last: 20 }));
    d.vote(4, id, Support::Against, 20).unwrap();
    assert_eq!(d.g.proposals[&id].for_votes, 17 * E18);
    d.check_replay();
}

#[test]
fn attack_signatures_too_far_from_the_receiving_clock_are_refused() {
    let day = 86_400;
    let p = GovParams { voting_period: 30 * day, ..params() };
    let mut d = Dao::oz(p, Strategy::Token);
    let id = d.propose(1, "p", 10).unwrap();
    let now = 10 * day;
    let signed = |d: &Dao, i: u8, act: Act, signed_at: u64| {
        let mut e = acts::sign(&k(i), act, d.g.dao, CHAIN, d.g.next_nonce(a(i)), signed_at).unwrap();
        e.at = now;
        e
    };
    let vote = |support| Act::Vote { proposal: id, support, votes: 0 };
    // signed more than 300 s after it is received
    let e = signed(&d, 2, vote(Support::For), now + MAX_FUTURE_DRIFT + 1);
    assert_eq!(d.submit(&e), Err(GovError::Clock { signed_at: now + 301, at: now }));
    // signed more than 6 days before it is received
    let e = signed(&d, 2, vote(Support::For), now - MAX_SIGNATURE_AGE - 1);
    assert_eq!(d.submit(&e), Err(GovError::Clock { signed_at: now - MAX_SIGNATURE_AGE - 1, at: now }));
    let e = signed(&d, 2, Act::Delegate { to: a(6) }, 0);
    assert!(matches!(d.submit(&e), Err(GovError::Clock { .. })));
    let e = signed(&d, OPERATOR, Act::Record { kind: "k".into(), detail: "1".into() }, u64::MAX);
    assert!(matches!(d.submit(&e), Err(GovError::Clock { .. })));
    // the window's edges are accepted
    let e = signed(&d, 2, vote(Support::For), now + MAX_FUTURE_DRIFT);
    d.submit(&e).unwrap();
    let e = signed(&d, 3, vote(Support::Against), now - MAX_SIGNATURE_AGE);
    d.submit(&e).unwrap();
    d.check_replay();
}

// ---------------------------------------------------------------------------------------------------------
// Attack 3: a multi-choice proposal runs only its winner's actions
// ---------------------------------------------------------------------------------------------------------

#[test]
fn attack_multi_choice_actions_are_bound_to_the_winner() {
    let plan = B256::repeat_byte(0xAA);
    let approve = Action::ApprovePayoutPlan { digest: plan };
    let yes_no = || vec![Choice { label: "yes".into(), actions: vec![approve.clone()] }, Choice::label("no")];
    let mut d = Dao::oz(params(), Strategy::Token);
    // top-level actions with options: refused at creation
    let mixed = d.propose_with(1, vec![approve.clone()], "mixed", vec![Choice::label("yes"), Choice::label("no")], 10);
    assert!(matches!(mixed, Err(GovError::InvalidProposal(_))), "{mixed:?}");

    // all "no", above quorum: executing does not approve the plan
    let no = d.propose_with(1, vec![], "plan: no", yes_no(), 10).unwrap();
    let yes = d.propose_with(1, vec![], "plan: yes", yes_no(), 10).unwrap();
    let tie = d.propose_with(1, vec![], "plan: tie", yes_no(), 10).unwrap();
    d.vote(2, no, weights(&[(1, 1)]), 15).unwrap();
    d.vote(3, yes, weights(&[(0, 3), (1, 1)]), 15).unwrap();
    d.vote(2, tie, weights(&[(0, 1), (1, 1)]), 15).unwrap();
    assert!(d.g.quorum_reached(&d.g.proposals[&no]));
    assert_eq!(d.g.proposals[&no].option_votes, vec![0, 10 * E18]);
    assert_eq!(d.state(no, 31), ProposalState::Succeeded);
    assert_eq!(d.g.proposals[&no].enacted(), &[] as &[Action]);
    d.queue(1, no, 31).unwrap();
    d.execute(1, no, 41).unwrap();
    assert_eq!(d.state(no, 41), ProposalState::Executed);
    assert!(!d.g.registry.approved_plans.contains_key(&plan), "the losing option's action ran");

    // a tie: no winner, defeated, nothing runs
    assert_eq!(d.g.proposals[&tie].option_votes, vec![5 * E18, 5 * E18]);
    assert_eq!(d.g.proposals[&tie].winner(), None);
    assert_eq!(d.state(tie, 41), ProposalState::Defeated);
    assert!(matches!(d.queue(1, tie, 41), Err(GovError::UnexpectedState { state: ProposalState::Defeated, .. })));

    // "yes" wins: the plan is approved, by that proposal
    assert_eq!(d.g.proposals[&yes].option_votes, vec![5_250_000_000_000_000_000, 1_750_000_000_000_000_000]);
    d.queue(1, yes, 41).unwrap();
    d.execute(1, yes, 51).unwrap();
    assert_eq!(d.g.registry.approved_plans.get(&plan), Some(&yes));
    d.check_replay();
}

// ---------------------------------------------------------------------------------------------------------
// Attack 4: parameters are fixed per proposal
// ---------------------------------------------------------------------------------------------------------

#[test]
fn attack_parameter_changes_do_not_reach_existing_proposals() {
    let mut d = Dao::oz(params(), Strategy::Token);
    let new = GovParams { quorum_percent: 0, grace_period: 10_000, ..params() };
    let low = d.propose(1, "low turnout", 10).unwrap();
    let change = d.propose_with(1, vec![Action::SetParams { params: new.clone() }], "change", vec![], 10).unwrap();
    let late = d.propose(1, "will expire", 10).unwrap();
    d.vote(5, low, Support::For, 15).unwrap(); // 2% < 4%
    d.vote(2, change, Support::For, 15).unwrap();
    d.vote(2, late, Support::For, 15).unwrap();
    assert_eq!(d.state(low, 31), ProposalState::Defeated);
    d.queue(1, change, 31).unwrap();
    d.queue(1, late, 31).unwrap(); // eta 41, expires at 141 under its own grace
    d.execute(1, change, 41).unwrap();
    assert_eq!(d.g.params, new);

    // the defeated proposal stays defeated under quorum 0
    assert_eq!(d.state(low, 141), ProposalState::Defeated);
    assert!(matches!(d.queue(1, low, 141), Err(GovError::UnexpectedState { state: ProposalState::Defeated, .. })));
    // the queued proposal expires with its own grace period, not the new one
    assert_eq!(d.state(late, 140), ProposalState::Queued);
    assert_eq!(d.state(late, 141), ProposalState::Expired);
    assert!(matches!(d.execute(1, late, 141), Err(GovError::UnexpectedState { state: ProposalState::Expired, .. })));

    // a proposal created after the change uses the new parameters
    let after = d.propose(1, "after the change", 150).unwrap();
    let p = &d.g.proposals[&after];
    assert_eq!((p.quorum_percent, p.grace_period), (0, 10_000));
    d.vote(5, after, Support::For, 155).unwrap(); // 2% is enough under quorum 0
    assert_eq!(d.state(after, 171), ProposalState::Succeeded);
    d.queue(1, after, 171).unwrap();
    d.execute(1, after, 5_000).unwrap(); // beyond the old 100 s grace, within the new one
                                         // invalid parameters are refused when proposed
    let bad = GovParams { quorum_percent: 101, ..params() };
    assert!(matches!(
        d.propose_with(1, vec![Action::SetParams { params: bad }], "bad", vec![], 5_000),
        Err(GovError::Setup(_))
    ));
    d.check_replay();
}

// ---------------------------------------------------------------------------------------------------------
// Attack 5: DAO identity
// ---------------------------------------------------------------------------------------------------------

#[test]
fn attack_signatures_do_not_move_between_daos() {
    let dao_a = Dao::from_init(init_act(params(), strategy(Strategy::Token), oz_holders(), salt(1)), 0);
    let dao_b = Dao::from_init(init_act(params(), strategy(Strategy::Token), oz_holders(), salt(2)), 0);
    assert_ne!(dao_a.g.dao, dao_b.g.dao, "salts make DAO ids unique");
    let same = Dao::from_init(init_act(params(), strategy(Strategy::Token), oz_holders(), salt(1)), 0);
    assert_eq!(same.g.dao, dao_a.g.dao, "the id is the hash of the signed genesis");
    let mut rehearsal = init_act(params(), strategy(Strategy::Token), oz_holders(), salt(1));
    if let Act::Init { rehearsal, .. } = &mut rehearsal {
        *rehearsal = true;
    }
    assert_ne!(Dao::from_init(rehearsal, 0).g.dao, dao_a.g.dao);
    assert_ne!(
        acts::dao_id(&genesis(init_act(params(), strategy(Strategy::Token), oz_holders(), salt(1)), 1)).unwrap(),
        dao_a.g.dao
    );

    let (mut da, mut db) = (dao_a, dao_b);
    let ia = da.propose(1, "same content", 10).unwrap();
    let ib = db.propose(1, "same content", 10).unwrap();
    assert_ne!(ia, ib, "proposal ids commit to the DAO");
    let nonce = da.g.next_nonce(a(2));
    assert_eq!(nonce, db.g.next_nonce(a(2)));
    // a ballot signed for A, applied to B
    let ballot_a = da.signed(2, Act::Vote { proposal: ia, support: Support::For, votes: 0 }, 15);
    assert!(matches!(db.submit(&ballot_a), Err(GovError::BadSignature(_))));
    // a ballot naming B's proposal but signed in A's domain
    let cross =
        acts::sign(&k(2), Act::Vote { proposal: ib, support: Support::For, votes: 0 }, da.g.dao, CHAIN, nonce, 15)
            .unwrap();
    assert!(matches!(db.submit(&cross), Err(GovError::BadSignature(_))));
    // a ballot for the right DAO but another chain
    let other_chain =
        acts::sign(&k(2), Act::Vote { proposal: ib, support: Support::For, votes: 0 }, db.g.dao, CHAIN + 1, nonce, 15)
            .unwrap();
    assert!(matches!(db.submit(&other_chain), Err(GovError::BadSignature(_))));
    // a delegation signed for A, applied to B
    let deleg_a = da.signed(2, Act::Delegate { to: a(6) }, 15);
    assert!(matches!(db.submit(&deleg_a), Err(GovError::BadSignature(_))));
    // each is accepted where it was signed for
    da.submit(&ballot_a).unwrap();
    let deleg_a = da.signed(2, Act::Delegate { to: a(6) }, 15);
    da.submit(&deleg_a).unwrap();
    db.vote(2, ib, Support::For, 15).unwrap();
    da.check_replay();
    db.check_replay();
}

// ---------------------------------------------------------------------------------------------------------
// Attack 6: overflow
// ---------------------------------------------------------------------------------------------------------

#[test]
fn attack_overflowing_genesis_and_parameters_are_refused() {
    let mut fresh = Governor::default();
    let e = genesis(init_act(params(), strategy(Strategy::Token), vec![(a(1), u128::MAX), (a(2), 1)], salt(1)), 0);
    assert!(matches!(fresh.apply(&e), Err(GovError::Overflow(_))));
    assert_eq!(fresh, Governor::default());
    // the whole u128 range is fine
    let e = genesis(init_act(params(), strategy(Strategy::Token), vec![(a(1), u128::MAX - 1), (a(2), 1)], salt(1)), 0);
    Governor::replay([&e]).unwrap();

    for p in [
        GovParams { voting_delay: MAX_DURATION + 1, ..params() },
        GovParams { voting_period: MAX_DURATION + 1, ..params() },
        GovParams { timelock_delay: MAX_DURATION + 1, ..params() },
        GovParams { grace_period: u64::MAX, ..params() },
        GovParams { voting_period: 0, ..params() },
        GovParams { quorum_percent: 101, ..params() },
    ] {
        assert!(p.check().is_err(), "{p:?}");
        let e = genesis(init_act(p.clone(), strategy(Strategy::Token), oz_holders(), salt(1)), 0);
        assert!(matches!(Governor::default().apply(&e), Err(GovError::Setup(_))), "{p:?}");
        let mut d = Dao::oz(params(), Strategy::Token);
        let r = d.propose_with(1, vec![Action::SetParams { params: p.clone() }], "bad params", vec![], 10);
        assert!(matches!(r, Err(GovError::Setup(_))), "{p:?}: {r:?}");
    }
    let max = GovParams {
        voting_delay: MAX_DURATION,
        voting_period: MAX_DURATION,
        proposal_threshold: u128::MAX,
        quorum_percent: 100,
        timelock_delay: MAX_DURATION,
        grace_period: MAX_DURATION,
    };
    max.check().unwrap();
    // chain id 0 is refused
    let mut zero = init_act(params(), strategy(Strategy::Token), oz_holders(), salt(1));
    if let Act::Init { chain_id, .. } = &mut zero {
        *chain_id = 0;
    }
    let e = acts::sign(&k(OPERATOR), zero, B256::ZERO, 0, 0, 0).unwrap();
    assert!(matches!(Governor::default().apply(&e), Err(GovError::Setup(_))));
}

#[test]
fn attack_quorum_of_extreme_totals_is_exact() {
    let exact =
        |total: u128, pct: u32| -> u128 { (U256::from(total) * U256::from(pct) / U256::from(100u32)).to::<u128>() };
    assert_eq!(quorum_of(u128::MAX, 100), u128::MAX);
    assert_eq!(quorum_of(u128::MAX, 4), exact(u128::MAX, 4));
    for total in [0, 1, 99, 100, 101, 12_345, u64::MAX as u128, u128::MAX / 3, u128::MAX - 1, u128::MAX] {
        for pct in [0, 1, 4, 33, 50, 99, 100] {
            assert_eq!(quorum_of(total, pct), exact(total, pct), "{total} × {pct}%");
        }
    }
    assert_eq!(quorum_of(1000, 250), 1000, "over 100% is clamped");
}

#[test]
fn attack_times_near_the_end_of_u64_overflow_cleanly() {
    // propose: the snapshot, deadline or expiry would not fit in u64
    let mut d = Dao::oz(params(), Strategy::Token);
    for at in [u64::MAX - 10, u64::MAX - 100, u64::MAX] {
        let r = d.propose(1, "late", at);
        assert!(matches!(r, Err(GovError::Overflow(_))), "at {at}: {r:?}");
    }
    // the latest time a proposal fits: queued at the first second after its deadline, it expires at u64::MAX
    let p = params();
    let latest = u64::MAX - (p.voting_delay + p.voting_period + 1 + p.timelock_delay + p.grace_period);
    assert!(matches!(d.propose(1, "late", latest + 1), Err(GovError::Overflow(_))));
    let id = d.propose(1, "late", latest).unwrap();
    d.vote(2, id, Support::For, latest + 5).unwrap();
    d.queue(2, id, latest + 21).unwrap();
    d.execute(2, id, latest + 31).unwrap();
    assert_eq!(d.state(id, u64::MAX), ProposalState::Executed);

    // queue: a proposal queued so late that eta + grace would not fit
    let long = GovParams { timelock_delay: MAX_DURATION, grace_period: MAX_DURATION, ..params() };
    let mut d = Dao::oz(long, Strategy::Token);
    let id = d.propose(1, "queued late", 10).unwrap();
    d.vote(2, id, Support::For, 15).unwrap();
    for at in [u64::MAX - 100, u64::MAX - MAX_DURATION] {
        let r = d.queue(1, id, at);
        assert!(matches!(r, Err(GovError::Overflow(_))), "at {at}: {r:?}");
    }
    assert_eq!(d.state(id, u64::MAX), ProposalState::Succeeded);
    d.check_replay();
}
