//! The proposal lifecycle with OpenZeppelin Governor's states and rules, a timelock with grace period,
//! a guardian, and typed actions; event-sourced: every change is a signed [`Event`] applied by
//! [`Governor::apply`], so replaying the stored events rebuilds the state exactly.
//!
//! Nothing is taken on the caller's word: each event is an act ([`Act`]) signed by its actor (EIP-712, see
//! [`crate::acts`]), with the actor's next nonce and the time it was signed; the actor is the signer (a vote's
//! voter, a transfer's sender, a cancel's canceller), checked against the actor's rights. Time is the
//! receiving clock's (`Event::at`, non-decreasing); a signature is accepted from 6 days before to 300 s after
//! it (Snapshot's window). Quorum, voting period, timelock delay and grace period are fixed in each proposal
//! when it is created. All time and amount arithmetic is checked.
//!
//! Source: OpenZeppelin Contracts 5.x `Governor`, `GovernorSettings`, `GovernorCountingSimple`,
//! `GovernorVotesQuorumFraction`, `GovernorTimelockControl`; the grace period and `Expired` follow
//! `GovernorTimelockCompound` (Compound's `GRACE_PERIOD`).

use crate::power::{Ledger, PowerConfig, Strategy};
use allonet_core::{digest, TokenAmount};
use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Governance parameters (seconds and fractions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GovParams {
    /// Delay between proposing and the snapshot / start of voting.
    pub voting_delay: u64,
    /// Length of voting.
    pub voting_period: u64,
    /// Power a proposer needs (at the moment before proposing).
    pub proposal_threshold: u128,
    /// Quorum as a fraction of total power at the snapshot: numerator / 100.
    pub quorum_percent: u32,
    /// Timelock minimum delay between queueing and execution.
    pub timelock_delay: u64,
    /// After the timelock, how long execution stays possible before the proposal expires.
    pub grace_period: u64,
}

impl Default for GovParams {
    fn default() -> Self {
        GovParams {
            voting_delay: 3600,
            voting_period: 3 * 86400,
            proposal_threshold: 0,
            quorum_percent: 4,
            timelock_delay: 2 * 86400,
            grace_period: 14 * 86400,
        }
    }
}

/// What a proposal does when executed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Approve a payout plan, named by its digest.
    ApprovePayoutPlan {
        /// plan digest
        digest: B256,
    },
    /// Set the AI agent's caps and policy (base units).
    SetAgentCaps {
        /// Most the agent may queue per epoch, in the payout token's base units.
        per_epoch: TokenAmount,
        /// Most one recipient may receive per epoch, in base units.
        per_recipient: TokenAmount,
    },
    /// Activate a model version (the registry serves only activated models).
    ActivateModel {
        /// model id (digest of the model file)
        model_id: B256,
    },
    /// Roll back to the previously active model.
    RollbackModel,
    /// Change governance parameters.
    SetParams {
        /// the new parameters
        params: GovParams,
    },
    /// Kill switch on.
    Pause,
    /// Kill switch off.
    Unpause,
    /// Set the funding agent's autonomy mode and the mix of signals its allocation uses.
    SetAgentPolicy {
        /// the new policy
        policy: AgentPolicy,
    },
    /// Veto a payout plan the agent queued under its standing caps: it must not pay it.
    VetoPlan {
        /// plan digest
        digest: B256,
    },
    /// Approve treasury operations (a rebalance's swaps, each with its exact amount in and least amount out),
    /// named by the digest of their list: the agent executes exactly these, once.
    ApproveTreasuryOps {
        /// digest of the operations
        digest: B256,
    },
}

/// How far the funding agent may act on its own. Only a passing proposal sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentMode {
    /// Report and draft; nothing is filed or paid.
    Advise,
    /// File each plan as a proposal; pay only what passes.
    Propose,
    /// Pay within the standing caps after a veto window; anything above them goes to a proposal.
    Autonomous,
}

/// The funding agent's policy: its mode and the mix of its allocation's signals, in basis points of the whole
/// (they sum to 10,000), e.g. `ai` 6,000 and `qv` 4,000.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPolicy {
    /// The mode.
    pub mode: AgentMode,
    /// Signal name → basis points.
    pub weights: BTreeMap<String, u32>,
}

impl AgentPolicy {
    /// Refuses an empty mix, one that does not sum to 10,000, and signal names outside `[A-Za-z0-9._-]{1,64}`.
    pub fn check(&self) -> Result<(), GovError> {
        let bad = |m: String| Err(GovError::InvalidProposal(format!("agent policy: {m}")));
        if self.weights.is_empty() {
            return bad("no signal weights".into());
        }
        for k in self.weights.keys() {
            if k.is_empty() || k.len() > 64 || !k.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return bad(format!("signal name `{k}` is not 1 to 64 of [A-Za-z0-9._-]"));
            }
        }
        let sum: u64 = self.weights.values().map(|&w| w as u64).sum();
        if sum != 10_000 {
            return bad(format!("the weights sum to {sum} basis points, not 10,000"));
        }
        Ok(())
    }
}

/// How a voter votes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// 0 in OpenZeppelin's counting.
    Against,
    /// 1.
    For,
    /// 2.
    Abstain,
    /// Weights across a multi-choice proposal's options (Snapshot "weighted" semantics).
    Weighted(BTreeMap<u32, u64>),
}

impl Support {
    /// From OpenZeppelin's support byte (0 against, 1 for, 2 abstain).
    pub fn from_u8(v: u8) -> Option<Support> {
        match v {
            0 => Some(Support::Against),
            1 => Some(Support::For),
            2 => Some(Support::Abstain),
            _ => None,
        }
    }
}

/// Longest duration a parameter may have (10 years): keeps every time sum far from overflow.
pub const MAX_DURATION: u64 = 10 * 365 * 86_400;
/// How far a signed timestamp may run ahead of the receiving clock (Snapshot: 300 s).
pub const MAX_FUTURE_DRIFT: u64 = 300;
/// How old a signature may be when it is received (Snapshot: 6 days).
pub const MAX_SIGNATURE_AGE: u64 = 6 * 86_400;

impl GovParams {
    /// Refuses parameters that no DAO should run with: quorum over 100 %, no voting period, durations
    /// beyond [`MAX_DURATION`].
    pub fn check(&self) -> Result<(), GovError> {
        let bad = |m: String| Err(GovError::Setup(m));
        if self.quorum_percent > 100 {
            return bad(format!("quorum {}% is over 100%", self.quorum_percent));
        }
        if self.voting_period == 0 {
            return bad("the voting period must be at least 1 second".into());
        }
        if self.grace_period == 0 {
            return bad("the grace period must be at least 1 second (a queued proposal expires when it ends)".into());
        }
        for (name, v) in [
            ("voting delay", self.voting_delay),
            ("voting period", self.voting_period),
            ("timelock delay", self.timelock_delay),
            ("grace period", self.grace_period),
        ] {
            if v > MAX_DURATION {
                return bad(format!("the {name} of {v} s is beyond {MAX_DURATION} s (10 years)"));
            }
        }
        Ok(())
    }
}

/// One option of a multi-choice proposal, with the actions that run if it wins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// What voters see.
    pub label: String,
    /// What executing the proposal does when this option wins (may be empty: "do nothing").
    #[serde(default)]
    pub actions: Vec<Action>,
}

impl Choice {
    /// An option without actions.
    pub fn label(label: &str) -> Choice {
        Choice { label: label.into(), actions: vec![] }
    }
}

/// A proposal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Id: keccak-256 of the canonical (DAO id, actions, description, options).
    pub id: B256,
    /// Proposer.
    pub proposer: Address,
    /// Actions of a for/against/abstain proposal.
    pub actions: Vec<Action>,
    /// Description.
    pub description: String,
    /// Options of a multi-choice proposal, each with its own actions (empty: for/against/abstain).
    pub options: Vec<Choice>,
    /// Voting power is measured at this time; voting starts after it.
    pub snapshot: u64,
    /// Voting ends at this time (inclusive).
    pub deadline: u64,
    /// Quorum (percent of total power at the snapshot), fixed at creation.
    pub quorum_percent: u32,
    /// Timelock delay, fixed at creation.
    pub timelock_delay: u64,
    /// Grace period after the timelock, fixed at creation.
    pub grace_period: u64,
    /// Earliest execution, once queued.
    pub eta: Option<u64>,
    /// Canceled?
    pub canceled: bool,
    /// Executed?
    pub executed: bool,
    /// Votes against, for, abstain.
    pub against: u128,
    /// for
    pub for_votes: u128,
    /// abstain
    pub abstain: u128,
    /// Per-option totals (multi-choice).
    pub option_votes: Vec<u128>,
    /// Who has voted.
    pub voters: BTreeSet<Address>,
}

impl Proposal {
    /// The winning option of a multi-choice proposal: the unique option with the most votes (none on a tie
    /// or without votes).
    pub fn winner(&self) -> Option<usize> {
        let max = *self.option_votes.iter().max()?;
        if max == 0 || self.option_votes.iter().filter(|&&v| v == max).count() > 1 {
            return None;
        }
        self.option_votes.iter().position(|&v| v == max)
    }

    /// What executing runs: the actions, or the winning option's.
    pub fn enacted(&self) -> &[Action] {
        if self.options.is_empty() {
            &self.actions
        } else {
            self.winner().map(|w| self.options[w].actions.as_slice()).unwrap_or(&[])
        }
    }
}

/// OpenZeppelin Governor's proposal states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalState {
    /// Before the snapshot.
    Pending,
    /// Voting.
    Active,
    /// Canceled by proposer or guardian.
    Canceled,
    /// Quorum not reached, or for ≤ against (or no single winning option).
    Defeated,
    /// Passed, not yet queued.
    Succeeded,
    /// In the timelock.
    Queued,
    /// The grace period after the timelock passed without execution.
    Expired,
    /// Done.
    Executed,
}

/// What a person (or the operator, or the agent) does: the signed part of an [`Event`]. The actor is always
/// the event's signer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    /// Creates the DAO; the signer is its operator (who signs the log's heads).
    Init {
        /// parameters
        params: GovParams,
        /// voting power
        power: PowerConfig,
        /// guardian (may cancel until execution, and pause)
        guardian: Address,
        /// initial holders (balance, self-delegated)
        holders: Vec<(Address, u128)>,
        /// allowlist for one-person-one-vote
        allowlist: Vec<Address>,
        /// EIP-712 domain chain id
        chain_id: u64,
        /// A rehearsal: times are the caller's, not the clock's; marked in every status and export, and no
        /// payout takes decisions from it.
        #[serde(default)]
        rehearsal: bool,
        /// Random bytes that make the DAO id unique.
        salt: B256,
    },
    /// The signer transfers governance tokens.
    Transfer {
        /// to
        to: Address,
        /// amount
        amount: u128,
    },
    /// The signer delegates its votes.
    Delegate {
        /// delegatee
        to: Address,
    },
    /// The signer proposes.
    Propose {
        /// actions (for/against/abstain proposals)
        actions: Vec<Action>,
        /// description
        description: String,
        /// options of a multi-choice proposal, each with its own actions
        #[serde(default)]
        options: Vec<Choice>,
    },
    /// The signer votes.
    Vote {
        /// proposal
        proposal: B256,
        /// support
        support: Support,
        /// for quadratic credits: votes cast (cost n²); otherwise 0 = full power
        #[serde(default)]
        votes: u128,
    },
    /// The signer queues a succeeded proposal (anyone may).
    Queue {
        /// proposal
        proposal: B256,
    },
    /// The signer executes a queued proposal after its timelock (anyone may).
    Execute {
        /// proposal
        proposal: B256,
    },
    /// The signer cancels (the proposer while pending; the guardian until execution).
    Cancel {
        /// proposal
        proposal: B256,
    },
    /// The guardian's kill switch: pauses (or resumes) the agent at once, without a vote.
    Pause {
        /// paused after this event?
        paused: bool,
    },
    /// A step of the money path recorded in the audit log by its operator: a plan approved or queued on chain, a
    /// payout, a reconciliation. It changes no governance state; it is evidence anyone can check against the chain
    /// (it names the chain, allocator, plan and transactions).
    Record {
        /// What happened (`onchain_proposal`, `plan_queued`, `payout`, `reconciled`, ...).
        kind: String,
        /// The details, as canonical JSON.
        detail: String,
    },
}

impl Act {
    /// The act's name (as the log's `kind` column and the signed proposal steps).
    pub fn kind(&self) -> &'static str {
        match self {
            Act::Init { .. } => "init",
            Act::Transfer { .. } => "transfer",
            Act::Delegate { .. } => "delegate",
            Act::Propose { .. } => "propose",
            Act::Vote { .. } => "vote",
            Act::Queue { .. } => "queue",
            Act::Execute { .. } => "execute",
            Act::Cancel { .. } => "cancel",
            Act::Pause { .. } => "pause",
            Act::Record { .. } => "record",
        }
    }
}

/// A governance event: a signed act and the time it was received. The unit of change, of storage and of the
/// audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// What was done.
    pub act: Act,
    /// Who did it (must be who signed it).
    pub signer: Address,
    /// The signer's nonce: its count of earlier acts in this DAO.
    pub nonce: u64,
    /// When the signer signed (unix seconds, part of the signed message).
    pub signed_at: u64,
    /// EIP-712 signature (65 bytes, hex).
    pub signature: String,
    /// When the DAO received it (unix seconds): the system clock's, or the caller's in a rehearsal.
    pub at: u64,
}

/// Why an event is refused (the names follow OpenZeppelin's custom errors).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GovError {
    /// Not initialised, or initialised twice, or bad parameters.
    #[error("{0}")]
    Setup(String),
    /// GovernorInsufficientProposerVotes.
    #[error("proposer {proposer} has {votes} votes; the proposal threshold is {threshold}")]
    InsufficientProposerVotes {
        /// proposer
        proposer: Address,
        /// votes
        votes: u128,
        /// threshold
        threshold: u128,
    },
    /// GovernorInvalidProposalLength.
    #[error("a proposal needs at least one action")]
    EmptyProposal,
    /// A proposal whose options and actions do not fit together.
    #[error("invalid proposal: {0}")]
    InvalidProposal(String),
    /// GovernorNonexistentProposal.
    #[error("no proposal {0}")]
    NonexistentProposal(B256),
    /// GovernorUnexpectedProposalState.
    #[error("proposal {id} is {state:?}; this needs it to be {expected}")]
    UnexpectedState {
        /// id
        id: B256,
        /// state
        state: ProposalState,
        /// what was needed
        expected: String,
    },
    /// GovernorAlreadyCastVote.
    #[error("{0} has already voted on this proposal")]
    AlreadyCastVote(Address),
    /// GovernorInvalidVoteType.
    #[error("invalid vote: {0}")]
    InvalidVoteType(String),
    /// TimelockUnexpectedOperationState: not ready.
    #[error("the timelock is not over: executable at {eta}, now {now}")]
    TimelockNotReady {
        /// eta
        eta: u64,
        /// now
        now: u64,
    },
    /// GovernorOnlyProposer / unauthorised cancel or pause.
    #[error("{who} may not {what}")]
    Unauthorized {
        /// who tried
        who: Address,
        /// what
        what: String,
    },
    /// Signature problems.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// A nonce that is not the signer's next one (a replay, or an act signed out of turn).
    #[error("nonce {nonce} for {signer}; its next nonce is {expected} (a replayed or out-of-turn act)")]
    BadNonce {
        /// signer
        signer: Address,
        /// nonce given
        nonce: u64,
        /// nonce expected
        expected: u64,
    },
    /// Ledger problems.
    #[error(transparent)]
    Ledger(#[from] crate::power::LedgerError),
    /// Events out of order.
    #[error("event time {at} is before the last event ({last}); events out of order are refused")]
    TimeTravel {
        /// event time
        at: u64,
        /// last time
        last: u64,
    },
    /// A signed timestamp too far from the receiving clock.
    #[error("signed at {signed_at} but received at {at}: a signature is accepted from {MAX_SIGNATURE_AGE} s before to {MAX_FUTURE_DRIFT} s after it is received")]
    Clock {
        /// signed time
        signed_at: u64,
        /// received time
        at: u64,
    },
    /// An overflow in time or amount arithmetic.
    #[error("arithmetic overflow: {0}")]
    Overflow(String),
}

/// The effects of executing a proposal: what governance now allows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    /// Payout plans approved (digest → proposal).
    pub approved_plans: BTreeMap<B256, B256>,
    /// Agent caps (per epoch, per recipient), base units.
    pub agent_caps: Option<(TokenAmount, TokenAmount)>,
    /// Model versions activated, in order; the last is active.
    pub model_history: Vec<B256>,
    /// Kill switch.
    pub paused: bool,
    /// The funding agent's mode and signal mix (none set: the agent only advises).
    #[serde(default)]
    pub agent_policy: Option<AgentPolicy>,
    /// Plans the members vetoed (digest → proposal): the agent pays none of them.
    #[serde(default)]
    pub vetoed_plans: BTreeMap<B256, B256>,
    /// Treasury operations approved (digest → proposal).
    #[serde(default)]
    pub approved_treasury_ops: BTreeMap<B256, B256>,
}

impl Registry {
    /// The model version the registry serves (only one activated by a passing vote).
    pub fn active_model(&self) -> Option<B256> {
        self.model_history.last().copied()
    }
}

/// The whole governance state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Governor {
    /// The DAO id (EIP-712 hash of the signed genesis): the `salt` of every signature's domain.
    pub dao: B256,
    /// Chain id of the EIP-712 domain.
    pub chain_id: u64,
    /// The operator: signed the genesis, signs the log's heads.
    pub operator: Address,
    /// A rehearsal DAO (caller-chosen clock)?
    pub rehearsal: bool,
    /// Parameters (for proposals created from now on).
    pub params: GovParams,
    /// Voting power configuration.
    pub power: Option<PowerConfig>,
    /// Guardian.
    pub guardian: Address,
    /// Ledger.
    pub ledger: Ledger,
    /// Proposals.
    pub proposals: BTreeMap<B256, Proposal>,
    /// Next nonce per signer.
    pub nonces: BTreeMap<Address, u64>,
    /// What executed proposals enacted.
    pub registry: Registry,
    /// Time of the last event.
    pub last_at: u64,
}

/// The id of a proposal by `proposer` in the DAO `dao`: keccak-256 of the canonical (DAO id, proposer, actions,
/// description hash, options), as OpenZeppelin's `hashProposal` hashes targets, values, calldatas and the
/// description hash. The proposer is in it (as OpenZeppelin's `#proposer=` description suffix) so that nobody can
/// take another's proposal by submitting the same content first and then cancel it.
pub fn proposal_id(dao: B256, proposer: Address, actions: &[Action], description: &str, options: &[Choice]) -> B256 {
    digest(&(dao, proposer, actions, alloy_primitives::keccak256(description.as_bytes()), options)).0
}

fn add(a: u64, b: u64, what: &str) -> Result<u64, GovError> {
    a.checked_add(b).ok_or_else(|| GovError::Overflow(format!("{what}: {a} + {b}")))
}

fn add128(a: u128, b: u128, what: &str) -> Result<u128, GovError> {
    a.checked_add(b).ok_or_else(|| GovError::Overflow(format!("{what}: {a} + {b}")))
}

/// ⌊total · percent / 100⌋ without overflow for any u128 total (percent ≤ 100).
pub fn quorum_of(total: u128, percent: u32) -> u128 {
    let p = percent.min(100) as u128;
    (total / 100) * p + (total % 100) * p / 100
}

fn valid_action(a: &Action) -> Result<(), GovError> {
    match a {
        Action::SetParams { params } => params.check(),
        Action::SetAgentPolicy { policy } => policy.check(),
        _ => Ok(()),
    }
}

impl Governor {
    /// Replays events into a fresh state, checking every signature, nonce, time and rule.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Governor, GovError> {
        let mut g = Governor::default();
        for e in events {
            g.apply(e)?;
        }
        Ok(g)
    }

    /// Signs `act` as `key` for this DAO with the key's next nonce, signed and received at `at`.
    pub fn sign(&self, key: &alloy_signer_local::PrivateKeySigner, act: Act, at: u64) -> Result<Event, GovError> {
        crate::acts::sign(key, act, self.dao, self.chain_id, self.next_nonce(key.address()), at)
    }

    /// The nonce `who` signs its next act with.
    pub fn next_nonce(&self, who: Address) -> u64 {
        self.nonces.get(&who).copied().unwrap_or(0)
    }

    /// The state of a proposal at `now`.
    pub fn state(&self, id: B256, now: u64) -> Result<ProposalState, GovError> {
        let p = self.proposals.get(&id).ok_or(GovError::NonexistentProposal(id))?;
        Ok(self.state_of(p, now))
    }

    /// The quorum of a proposal: its own quorum percent of the total power at its snapshot.
    pub fn quorum(&self, p: &Proposal) -> u128 {
        let total = self.power.as_ref().map(|c| c.total(&self.ledger, p.snapshot)).unwrap_or(0);
        quorum_of(total, p.quorum_percent)
    }

    /// The votes that count toward quorum (for + abstain, or all option votes).
    pub fn counted(p: &Proposal) -> u128 {
        if p.options.is_empty() {
            p.for_votes.saturating_add(p.abstain)
        } else {
            p.option_votes.iter().fold(0u128, |a, &v| a.saturating_add(v))
        }
    }

    /// Whether a proposal reached quorum.
    pub fn quorum_reached(&self, p: &Proposal) -> bool {
        Self::counted(p) >= self.quorum(p)
    }

    /// For beats against, or one option wins outright.
    pub fn vote_succeeded(p: &Proposal) -> bool {
        if p.options.is_empty() {
            p.for_votes > p.against
        } else {
            p.winner().is_some()
        }
    }

    fn state_of(&self, p: &Proposal, now: u64) -> ProposalState {
        if p.executed {
            return ProposalState::Executed;
        }
        if p.canceled {
            return ProposalState::Canceled;
        }
        if p.snapshot >= now {
            return ProposalState::Pending;
        }
        if p.deadline >= now {
            return ProposalState::Active;
        }
        if !self.quorum_reached(p) || !Self::vote_succeeded(p) {
            return ProposalState::Defeated;
        }
        match p.eta {
            None => ProposalState::Succeeded,
            // eta + grace was checked when queued
            Some(eta) if now >= eta.saturating_add(p.grace_period) => ProposalState::Expired,
            Some(_) => ProposalState::Queued,
        }
    }

    fn expect(&self, id: B256, now: u64, ok: &[ProposalState], expected: &str) -> Result<(), GovError> {
        let s = self.state(id, now)?;
        if ok.contains(&s) {
            Ok(())
        } else {
            Err(GovError::UnexpectedState { id, state: s, expected: expected.into() })
        }
    }

    /// Power a voter would have on a proposal.
    pub fn power_of(&self, voter: Address, snapshot: u64) -> u128 {
        self.power.as_ref().map(|p| p.power(&self.ledger, voter, snapshot)).unwrap_or(0)
    }

    /// Verifies the signature, then validates and applies. On error nothing changes.
    pub fn apply(&mut self, e: &Event) -> Result<(), GovError> {
        let v = crate::acts::verify(e, self.dao, self.chain_id)?;
        self.apply_verified(v)
    }

    /// Validates and applies an event whose signature was checked (in parallel, by a store). Checks the
    /// clock (non-decreasing, signed within the window), the signer's nonce and rights, and the rules. On
    /// error nothing changes.
    pub fn apply_verified(&mut self, v: crate::acts::Verified<'_>) -> Result<(), GovError> {
        let e = v.0;
        let at = e.at;
        let is_init = matches!(e.act, Act::Init { .. });
        if !is_init && self.power.is_none() {
            return Err(GovError::Setup("the DAO is not initialised".into()));
        }
        if at < self.last_at {
            return Err(GovError::TimeTravel { at, last: self.last_at });
        }
        if e.signed_at > at.saturating_add(MAX_FUTURE_DRIFT) || e.signed_at.saturating_add(MAX_SIGNATURE_AGE) < at {
            return Err(GovError::Clock { signed_at: e.signed_at, at });
        }
        let expected = self.next_nonce(e.signer);
        if e.nonce != expected {
            return Err(GovError::BadNonce { signer: e.signer, nonce: e.nonce, expected });
        }
        let who = e.signer;
        match &e.act {
            Act::Init { params, power, guardian, holders, allowlist, chain_id, rehearsal, .. } => {
                if self.power.is_some() {
                    return Err(GovError::Setup("the DAO is already initialised".into()));
                }
                params.check()?;
                if *chain_id == 0 {
                    return Err(GovError::Setup("the EIP-712 chain id must not be 0".into()));
                }
                holders.iter().try_fold(0u128, |s, h| add128(s, h.1, "total supply"))?;
                let mut g = Governor {
                    dao: crate::acts::dao_id(e)?,
                    chain_id: *chain_id,
                    operator: who,
                    rehearsal: *rehearsal,
                    params: params.clone(),
                    power: Some(power.clone()),
                    guardian: *guardian,
                    ..Default::default()
                };
                for &(a, b) in holders {
                    g.ledger.delegate(a, a, at);
                    g.ledger.mint(a, b, at);
                }
                for &a in allowlist {
                    g.ledger.allowlist.insert(a, at);
                }
                g.nonces.insert(who, 1);
                g.last_at = at;
                *self = g;
                return Ok(());
            }
            Act::Transfer { to, amount } => {
                self.ledger.transfer(who, *to, *amount, at)?;
            }
            Act::Delegate { to } => {
                self.ledger.delegate(who, *to, at);
            }
            Act::Propose { actions, description, options } => {
                if options.is_empty() && actions.is_empty() {
                    return Err(GovError::EmptyProposal);
                }
                if !options.is_empty() && !actions.is_empty() {
                    return Err(GovError::InvalidProposal(
                        "a proposal with actions is for/against/abstain, or each option carries its own actions \
                         (only the winner's run); it cannot have both top-level actions and options"
                            .into(),
                    ));
                }
                if options.len() == 1 {
                    return Err(GovError::InvalidProposal("a multi-choice proposal needs at least two options".into()));
                }
                let labels: BTreeSet<&str> = options.iter().map(|o| o.label.as_str()).collect();
                if labels.len() != options.len() || labels.contains("") {
                    return Err(GovError::InvalidProposal("options need distinct, non-empty labels".into()));
                }
                actions.iter().chain(options.iter().flat_map(|o| &o.actions)).try_for_each(valid_action)?;
                let votes = self.power_of(who, at.saturating_sub(1));
                if votes < self.params.proposal_threshold {
                    return Err(GovError::InsufficientProposerVotes {
                        proposer: who,
                        votes,
                        threshold: self.params.proposal_threshold,
                    });
                }
                let id = proposal_id(self.dao, who, actions, description, options);
                if let Some(p) = self.proposals.get(&id) {
                    return Err(GovError::UnexpectedState {
                        id,
                        state: self.state_of(p, at),
                        expected: "nonexistent".into(),
                    });
                }
                let prm = &self.params;
                let snapshot = add(at, prm.voting_delay, "snapshot")?;
                let deadline = add(snapshot, prm.voting_period, "deadline")?;
                // the earliest expiry (queued the first second after the deadline) must be representable
                add(add(add(deadline, 1, "first queue")?, prm.timelock_delay, "eta")?, prm.grace_period, "expiry")?;
                self.proposals.insert(
                    id,
                    Proposal {
                        id,
                        proposer: who,
                        actions: actions.clone(),
                        description: description.clone(),
                        options: options.clone(),
                        snapshot,
                        deadline,
                        quorum_percent: prm.quorum_percent,
                        timelock_delay: prm.timelock_delay,
                        grace_period: prm.grace_period,
                        eta: None,
                        canceled: false,
                        executed: false,
                        against: 0,
                        for_votes: 0,
                        abstain: 0,
                        option_votes: vec![0; options.len()],
                        voters: BTreeSet::new(),
                    },
                );
            }
            Act::Vote { proposal, support, votes } => {
                self.expect(*proposal, at, &[ProposalState::Active], "Active")?;
                let p = &self.proposals[proposal];
                if p.voters.contains(&who) {
                    return Err(GovError::AlreadyCastVote(who));
                }
                let power = self.power_of(who, p.snapshot);
                let strategy = self.power.as_ref().map(|c| c.strategy);
                let weight = if strategy == Some(Strategy::QuadraticCredits) {
                    // power is ⌊√credits⌋: n votes cost n² credits, so at most that many votes
                    if *votes == 0 || *votes > power {
                        return Err(GovError::InvalidVoteType(format!(
                            "{who} may cast 1..={power} votes (n votes cost n² credits), not {votes}"
                        )));
                    }
                    *votes
                } else {
                    if *votes != 0 {
                        return Err(GovError::InvalidVoteType(format!(
                            "only credits voting takes a number of votes; {who} votes with its full power (votes 0), \
                             not {votes}"
                        )));
                    }
                    power
                };
                let n_options = p.options.len();
                let split: Option<Vec<u128>> = match support {
                    Support::Weighted(w) => {
                        if n_options == 0 {
                            return Err(GovError::InvalidVoteType(
                                "weighted votes need a multi-choice proposal".into(),
                            ));
                        }
                        if w.is_empty() || w.keys().any(|&o| o as usize >= n_options) || w.values().all(|&x| x == 0) {
                            return Err(GovError::InvalidVoteType(format!(
                                "weights must name options 0..{n_options} and not all be zero"
                            )));
                        }
                        let total: u128 = w.values().map(|&x| x as u128).sum();
                        // running totals: the parts add up to the weight exactly (weight·cum fits: cum < 2^72)
                        let mut out = vec![0u128; n_options];
                        let (mut cum, mut given) = (0u128, 0u128);
                        for (&o, &x) in w {
                            cum += x as u128;
                            let target = mul_div(weight, cum, total);
                            out[o as usize] += target - given;
                            given = target;
                        }
                        Some(out)
                    }
                    _ if n_options > 0 => {
                        return Err(GovError::InvalidVoteType(
                            "this proposal takes weighted votes across its options".into(),
                        ))
                    }
                    _ => None,
                };
                // check every sum before changing anything
                let mut parts_new = Vec::new();
                let (mut against, mut for_votes, mut abstain) = (p.against, p.for_votes, p.abstain);
                match (support, split) {
                    (_, Some(parts)) => {
                        for (a, b) in p.option_votes.iter().zip(parts) {
                            parts_new.push(add128(*a, b, "option votes")?);
                        }
                    }
                    (Support::Against, None) => against = add128(against, weight, "votes against")?,
                    (Support::For, None) => for_votes = add128(for_votes, weight, "votes for")?,
                    (Support::Abstain, None) => abstain = add128(abstain, weight, "abstentions")?,
                    (Support::Weighted(_), None) => unreachable!("weighted votes always split"),
                }
                let p = self.proposals.get_mut(proposal).expect("checked");
                (p.against, p.for_votes, p.abstain) = (against, for_votes, abstain);
                if !parts_new.is_empty() {
                    p.option_votes = parts_new;
                }
                p.voters.insert(who);
            }
            Act::Queue { proposal } => {
                self.expect(*proposal, at, &[ProposalState::Succeeded], "Succeeded")?;
                let p = &self.proposals[proposal];
                let eta = add(at, p.timelock_delay, "eta")?;
                add(eta, p.grace_period, "expiry")?;
                self.proposals.get_mut(proposal).expect("checked").eta = Some(eta);
            }
            Act::Execute { proposal } => {
                self.expect(*proposal, at, &[ProposalState::Queued], "Queued")?;
                let p = &self.proposals[proposal];
                let eta = p.eta.expect("queued");
                if at < eta {
                    return Err(GovError::TimelockNotReady { eta, now: at });
                }
                let actions = p.enacted().to_vec();
                for a in &actions {
                    match a {
                        Action::ApprovePayoutPlan { digest } => {
                            self.registry.approved_plans.insert(*digest, *proposal);
                        }
                        Action::SetAgentCaps { per_epoch, per_recipient } => {
                            self.registry.agent_caps = Some((*per_epoch, *per_recipient))
                        }
                        Action::ActivateModel { model_id } => self.registry.model_history.push(*model_id),
                        Action::RollbackModel => {
                            self.registry.model_history.pop();
                        }
                        Action::SetParams { params } => self.params = params.clone(),
                        Action::Pause => self.registry.paused = true,
                        Action::Unpause => self.registry.paused = false,
                        Action::SetAgentPolicy { policy } => self.registry.agent_policy = Some(policy.clone()),
                        Action::VetoPlan { digest } => {
                            self.registry.vetoed_plans.insert(*digest, *proposal);
                        }
                        Action::ApproveTreasuryOps { digest } => {
                            self.registry.approved_treasury_ops.insert(*digest, *proposal);
                        }
                    }
                }
                self.proposals.get_mut(proposal).expect("checked").executed = true;
            }
            Act::Cancel { proposal } => {
                let s = self.state(*proposal, at)?;
                let p = &self.proposals[proposal];
                if who == self.guardian {
                    if matches!(s, ProposalState::Executed | ProposalState::Canceled | ProposalState::Expired) {
                        return Err(GovError::UnexpectedState {
                            id: *proposal,
                            state: s,
                            expected: "not yet executed".into(),
                        });
                    }
                } else if who == p.proposer {
                    if s != ProposalState::Pending {
                        return Err(GovError::UnexpectedState { id: *proposal, state: s, expected: "Pending".into() });
                    }
                } else {
                    return Err(GovError::Unauthorized {
                        who,
                        what: "cancel this proposal (only its proposer while pending, or the guardian)".into(),
                    });
                }
                self.proposals.get_mut(proposal).expect("checked").canceled = true;
            }
            Act::Pause { paused } => {
                if who != self.guardian {
                    return Err(GovError::Unauthorized {
                        who,
                        what: "pull the kill switch (only the guardian)".into(),
                    });
                }
                // The guardian stops; only the members restart (a passing proposal with `Unpause`), as the
                // allocator's guardian may pause but only its owner, governance, unpauses.
                if !*paused {
                    return Err(GovError::Unauthorized {
                        who,
                        what: "lift the kill switch (only a passing proposal with the unpause action)".into(),
                    });
                }
                self.registry.paused = true;
            }
            Act::Record { kind, detail } => {
                if who != self.operator {
                    return Err(GovError::Unauthorized {
                        who,
                        what: "record evidence in the log (only its operator, who writes the money path's steps)"
                            .into(),
                    });
                }
                if kind.is_empty() || serde_json::from_str::<serde_json::Value>(detail).is_err() {
                    return Err(GovError::Setup("a chain record needs a kind and JSON details".into()));
                }
            }
        }
        self.nonces.insert(who, expected + 1);
        self.last_at = at;
        Ok(())
    }
}

/// ⌊a · b / c⌋ for b ≤ c, exact without overflow (a split of `a` in the proportion b : c).
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    debug_assert!(b <= c && c > 0);
    let (q, r) = (a / c, a % c);
    // q·b ≤ a; r·b < c·b ≤ c² — split r·b to keep it in range
    q * b
        + ((alloy_primitives::U256::from(r) * alloy_primitives::U256::from(b)) / alloy_primitives::U256::from(c))
            .to::<u128>()
}
