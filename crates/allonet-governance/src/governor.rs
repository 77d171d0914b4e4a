//! The proposal lifecycle with OpenZeppelin Governor's states and rules, a timelock with grace period,
//! a guardian, and typed actions; event-sourced: every change is an [`Event`] applied by
//! [`Governor::apply`], so replaying the stored events rebuilds the state exactly.
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

/// A proposal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Id: keccak-256 of the canonical (actions, description, options).
    pub id: B256,
    /// Proposer.
    pub proposer: Address,
    /// Actions.
    pub actions: Vec<Action>,
    /// Description.
    pub description: String,
    /// Options of a multi-choice proposal (empty: for/against/abstain).
    pub options: Vec<String>,
    /// Voting power is measured at this time; voting starts after it.
    pub snapshot: u64,
    /// Voting ends at this time (inclusive).
    pub deadline: u64,
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

/// OpenZeppelin Governor's proposal states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalState {
    /// Before the snapshot.
    Pending,
    /// Voting.
    Active,
    /// Canceled by proposer or guardian.
    Canceled,
    /// Quorum not reached, or for ≤ against.
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

/// A governance event: the unit of change, of storage and of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Creates the DAO.
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
        /// EIP-712 domain chain id for signed ballots
        chain_id: u64,
        /// time
        at: u64,
    },
    /// Token transfer.
    Transfer {
        /// from
        from: Address,
        /// to
        to: Address,
        /// amount
        amount: u128,
        /// time
        at: u64,
    },
    /// Delegation (signed when `signature` is set).
    Delegate {
        /// holder
        holder: Address,
        /// delegatee
        to: Address,
        /// nonce used
        nonce: u64,
        /// EIP-712 signature bytes (hex), when submitted signed
        signature: Option<String>,
        /// time
        at: u64,
    },
    /// A proposal.
    Propose {
        /// proposer
        proposer: Address,
        /// actions
        actions: Vec<Action>,
        /// description
        description: String,
        /// options (multi-choice)
        #[serde(default)]
        options: Vec<String>,
        /// time
        at: u64,
    },
    /// A vote.
    Vote {
        /// proposal
        proposal: B256,
        /// voter
        voter: Address,
        /// support
        support: Support,
        /// for quadratic credits: votes cast (cost n²); otherwise 0 = full power
        #[serde(default)]
        votes: u128,
        /// nonce used (signed ballots)
        nonce: u64,
        /// signature (hex), when submitted signed
        signature: Option<String>,
        /// time
        at: u64,
    },
    /// Queue in the timelock.
    Queue {
        /// proposal
        proposal: B256,
        /// time
        at: u64,
    },
    /// Execute.
    Execute {
        /// proposal
        proposal: B256,
        /// time
        at: u64,
    },
    /// Cancel.
    Cancel {
        /// proposal
        proposal: B256,
        /// who
        by: Address,
        /// time
        at: u64,
    },
    /// The guardian's kill switch: pauses (or resumes) the agent at once, without a vote.
    GuardianPause {
        /// who (must be the guardian)
        by: Address,
        /// paused after this event?
        paused: bool,
        /// time
        at: u64,
    },
    /// A step of the money path recorded in the audit log: a plan approved or queued on chain, a payout, a
    /// reconciliation. It changes no governance state; it is evidence anyone can check against the chain (it
    /// names the chain, allocator, plan and transactions).
    ChainRecord {
        /// What happened (`onchain_proposal`, `plan_queued`, `payout`, `reconciled`, ...).
        kind: String,
        /// The details, as canonical JSON.
        detail: String,
        /// time
        at: u64,
    },
}

impl Event {
    /// The event's time.
    pub fn at(&self) -> u64 {
        match self {
            Event::Init { at, .. }
            | Event::Transfer { at, .. }
            | Event::Delegate { at, .. }
            | Event::Propose { at, .. }
            | Event::Vote { at, .. }
            | Event::Queue { at, .. }
            | Event::Execute { at, .. }
            | Event::Cancel { at, .. }
            | Event::GuardianPause { at, .. }
            | Event::ChainRecord { at, .. } => *at,
        }
    }
}

/// Why an event is refused (the names follow OpenZeppelin's custom errors).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GovError {
    /// Not initialised, or initialised twice.
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
    /// GovernorOnlyProposer / unauthorised cancel.
    #[error("{0} may not cancel this proposal")]
    Unauthorized(Address),
    /// Signature problems.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// Ledger problems.
    #[error(transparent)]
    Ledger(#[from] crate::power::LedgerError),
    /// Time going backwards.
    #[error("event time {at} is before the last event ({last})")]
    TimeTravel {
        /// event time
        at: u64,
        /// last time
        last: u64,
    },
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
    /// Parameters.
    pub params: GovParams,
    /// Voting power configuration.
    pub power: Option<PowerConfig>,
    /// Guardian.
    pub guardian: Address,
    /// Ledger.
    pub ledger: Ledger,
    /// Proposals.
    pub proposals: BTreeMap<B256, Proposal>,
    /// Next nonce per signer (signed ballots and delegations).
    pub nonces: BTreeMap<Address, u64>,
    /// What executed proposals enacted.
    pub registry: Registry,
    /// Chain id of the EIP-712 domain.
    pub chain_id: u64,
    /// Time of the last event.
    pub last_at: u64,
}

/// The id of a proposal: keccak-256 of its canonical actions, description and options (as OpenZeppelin's
/// `hashProposal` hashes targets, values, calldatas and the description hash).
pub fn proposal_id(actions: &[Action], description: &str, options: &[String]) -> B256 {
    digest(&(actions, alloy_primitives::keccak256(description.as_bytes()), options)).0
}

impl Governor {
    /// Replays events into a fresh state.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Governor, GovError> {
        let mut g = Governor::default();
        for e in events {
            g.apply(e)?;
        }
        Ok(g)
    }

    /// The state of a proposal at `now`.
    pub fn state(&self, id: B256, now: u64) -> Result<ProposalState, GovError> {
        let p = self.proposals.get(&id).ok_or(GovError::NonexistentProposal(id))?;
        Ok(self.state_of(p, now))
    }

    fn quorum(&self, snapshot: u64) -> u128 {
        let total = self.power.as_ref().map(|p| p.total(&self.ledger, snapshot)).unwrap_or(0);
        total * self.params.quorum_percent as u128 / 100
    }

    /// Whether a proposal reached quorum (for + abstain, or all option votes).
    pub fn quorum_reached(&self, p: &Proposal) -> bool {
        let counted = if p.options.is_empty() { p.for_votes + p.abstain } else { p.option_votes.iter().sum() };
        counted >= self.quorum(p.snapshot)
    }

    fn vote_succeeded(p: &Proposal) -> bool {
        if p.options.is_empty() {
            p.for_votes > p.against
        } else {
            p.option_votes.iter().any(|&v| v > 0)
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
            Some(eta) if now >= eta + self.params.grace_period => ProposalState::Expired,
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

    /// Validates and applies an event. On error nothing changes.
    pub fn apply(&mut self, e: &Event) -> Result<(), GovError> {
        let at = e.at();
        if !matches!(e, Event::Init { .. }) && self.power.is_none() {
            return Err(GovError::Setup("the DAO is not initialised".into()));
        }
        if at < self.last_at {
            return Err(GovError::TimeTravel { at, last: self.last_at });
        }
        match e {
            Event::Init { params, power, guardian, holders, allowlist, chain_id, at } => {
                if self.power.is_some() {
                    return Err(GovError::Setup("the DAO is already initialised".into()));
                }
                if params.quorum_percent > 100 {
                    return Err(GovError::Setup(format!("quorum {}% is over 100%", params.quorum_percent)));
                }
                let mut g = Governor {
                    params: params.clone(),
                    power: Some(power.clone()),
                    guardian: *guardian,
                    chain_id: *chain_id,
                    ..Default::default()
                };
                for &(a, b) in holders {
                    g.ledger.delegate(a, a, *at);
                    g.ledger.mint(a, b, *at);
                }
                for &a in allowlist {
                    g.ledger.allowlist.insert(a, *at);
                }
                g.last_at = *at;
                *self = g;
                return Ok(());
            }
            Event::Transfer { from, to, amount, at } => {
                self.ledger.transfer(*from, *to, *amount, *at)?;
            }
            Event::Delegate { holder, to, nonce, signature, at } => {
                if signature.is_some() {
                    let expected = self.nonces.get(holder).copied().unwrap_or(0);
                    if *nonce != expected {
                        return Err(GovError::BadSignature(format!(
                            "nonce {nonce} for {holder}; expected {expected} (replay?)"
                        )));
                    }
                    self.nonces.insert(*holder, expected + 1);
                }
                self.ledger.delegate(*holder, *to, *at);
            }
            Event::Propose { proposer, actions, description, options, at } => {
                if actions.is_empty() {
                    return Err(GovError::EmptyProposal);
                }
                let votes = self.power_of(*proposer, at.saturating_sub(1));
                if votes < self.params.proposal_threshold {
                    return Err(GovError::InsufficientProposerVotes {
                        proposer: *proposer,
                        votes,
                        threshold: self.params.proposal_threshold,
                    });
                }
                let id = proposal_id(actions, description, options);
                if let Some(p) = self.proposals.get(&id) {
                    return Err(GovError::UnexpectedState {
                        id,
                        state: self.state_of(p, *at),
                        expected: "nonexistent".into(),
                    });
                }
                let snapshot = at + self.params.voting_delay;
                self.proposals.insert(
                    id,
                    Proposal {
                        id,
                        proposer: *proposer,
                        actions: actions.clone(),
                        description: description.clone(),
                        options: options.clone(),
                        snapshot,
                        deadline: snapshot + self.params.voting_period,
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
            Event::Vote { proposal, voter, support, votes, nonce, signature, at } => {
                self.expect(*proposal, *at, &[ProposalState::Active], "Active")?;
                let p = &self.proposals[proposal];
                if p.voters.contains(voter) {
                    return Err(GovError::AlreadyCastVote(*voter));
                }
                let power = self.power_of(*voter, p.snapshot);
                let strategy = self.power.as_ref().map(|c| c.strategy);
                let weight = if strategy == Some(Strategy::QuadraticCredits) {
                    // power is ⌊√credits⌋: n votes cost n² credits, so at most that many votes
                    if *votes == 0 || *votes > power {
                        return Err(GovError::InvalidVoteType(format!(
                            "{voter} may cast 1..={power} votes (n votes cost n² credits), not {votes}"
                        )));
                    }
                    *votes
                } else {
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
                        // running totals: the parts add up to the weight exactly
                        let mut out = vec![0u128; n_options];
                        let (mut cum, mut given) = (0u128, 0u128);
                        for (&o, &x) in w {
                            cum += x as u128;
                            let target = weight * cum / total;
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
                if signature.is_some() {
                    let expected = self.nonces.get(voter).copied().unwrap_or(0);
                    if *nonce != expected {
                        return Err(GovError::BadSignature(format!(
                            "nonce {nonce} for {voter}; expected {expected} (replay?)"
                        )));
                    }
                    self.nonces.insert(*voter, expected + 1);
                }
                let p = self.proposals.get_mut(proposal).expect("checked");
                p.voters.insert(*voter);
                match (support, split) {
                    (_, Some(parts)) => p.option_votes.iter_mut().zip(parts).for_each(|(a, b)| *a += b),
                    (Support::Against, None) => p.against += weight,
                    (Support::For, None) => p.for_votes += weight,
                    (Support::Abstain, None) => p.abstain += weight,
                    (Support::Weighted(_), None) => unreachable!("weighted votes always split"),
                }
            }
            Event::Queue { proposal, at } => {
                self.expect(*proposal, *at, &[ProposalState::Succeeded], "Succeeded")?;
                let eta = at + self.params.timelock_delay;
                self.proposals.get_mut(proposal).expect("checked").eta = Some(eta);
            }
            Event::Execute { proposal, at } => {
                self.expect(*proposal, *at, &[ProposalState::Queued], "Queued")?;
                let p = &self.proposals[proposal];
                let eta = p.eta.expect("queued");
                if *at < eta {
                    return Err(GovError::TimelockNotReady { eta, now: *at });
                }
                let actions = p.actions.clone();
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
                    }
                }
                self.proposals.get_mut(proposal).expect("checked").executed = true;
            }
            Event::Cancel { proposal, by, at } => {
                let s = self.state(*proposal, *at)?;
                let p = &self.proposals[proposal];
                if *by == self.guardian {
                    if matches!(s, ProposalState::Executed | ProposalState::Canceled | ProposalState::Expired) {
                        return Err(GovError::UnexpectedState {
                            id: *proposal,
                            state: s,
                            expected: "not yet executed".into(),
                        });
                    }
                } else if *by == p.proposer {
                    if s != ProposalState::Pending {
                        return Err(GovError::UnexpectedState { id: *proposal, state: s, expected: "Pending".into() });
                    }
                } else {
                    return Err(GovError::Unauthorized(*by));
                }
                self.proposals.get_mut(proposal).expect("checked").canceled = true;
            }
            Event::GuardianPause { by, paused, .. } => {
                if *by != self.guardian {
                    return Err(GovError::Unauthorized(*by));
                }
                self.registry.paused = *paused;
            }
            Event::ChainRecord { kind, detail, .. } => {
                if kind.is_empty() || serde_json::from_str::<serde_json::Value>(detail).is_err() {
                    return Err(GovError::Setup("a chain record needs a kind and JSON details".into()));
                }
            }
        }
        self.last_at = at;
        Ok(())
    }
}
