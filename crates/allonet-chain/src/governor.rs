//! On-chain governance of an allocator: typed actions turned into `AlloGovernor` proposals, votes (direct and
//! by EIP-712 signature), queue and execute through the timelock, and state read back from the chain.
//!
//! Follows OpenZeppelin Governor 5 (`Governor`, `GovernorCountingSimple`, `GovernorTimelockControl`): proposal
//! id = `keccak256(abi.encode(targets, values, calldatas, keccak256(description)))`; a signed ballot is the
//! EIP-712 struct `Ballot(uint256 proposalId,uint8 support,address voter,uint256 nonce)` in the domain
//! (name "AlloGovernor", version "1", chain id, the governor's address); the timelock operation of a queued
//! proposal is `hashOperationBatch(targets, values, calldatas, 0, bytes20(governor) ^ descriptionHash)`.
//! This module carries calls; what to propose is decided by the caller.

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{eip712_domain, sol, SolCall, SolEvent, SolStruct, SolValue};
use serde::{Deserialize, Serialize};

use crate::chain::{read, transact, Chain, ChainError, LogFilter, Receipt};
use crate::contracts::{AIAllocator, AlloGovernor, AlloTimelock};
use crate::plan::Commitment;

sol! {
    /// OpenZeppelin Governor's signed ballot.
    struct Ballot {
        uint256 proposalId;
        uint8 support;
        address voter;
        uint256 nonce;
    }
}

/// What a governance proposal can do to an allocator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Approve a plan's exact pairs (its commitment on this allocator).
    ApprovePlan {
        root: B256,
        total: U256,
        batches: u64,
    },
    /// Cancel an approved or queued plan.
    CancelPlan {
        plan_id: B256,
    },
    /// The agent's standing caps (asset base units).
    SetCaps {
        epoch_cap: U256,
        recipient_cap: U256,
    },
    /// Add recipients to (or remove them from) the registry queued plans may pay.
    SetRecipients {
        recipients: Vec<Address>,
        allowed: bool,
    },
    /// Seconds a queued plan waits before it may pay.
    SetVetoDelay {
        seconds: u64,
    },
    SetAgent {
        agent: Address,
    },
    SetGuardian {
        guardian: Address,
    },
    /// Lift the guardian's pause.
    Unpause,
}

impl Action {
    /// Approve this commitment.
    pub fn approve(plan: &Commitment) -> Self {
        Action::ApprovePlan { root: plan.root(), total: plan.total, batches: plan.batches.len() as u64 }
    }

    /// The calldata of the allocator call.
    pub fn calldata(&self) -> Bytes {
        match self {
            Action::ApprovePlan { root, total, batches } => {
                AIAllocator::approvePlanCall { root: *root, total: *total, batches: U256::from(*batches) }.abi_encode()
            }
            Action::CancelPlan { plan_id } => AIAllocator::cancelPlanCall { id: *plan_id }.abi_encode(),
            Action::SetCaps { epoch_cap, recipient_cap } => {
                AIAllocator::setCapsCall { epochCap_: *epoch_cap, recipientCap_: *recipient_cap }.abi_encode()
            }
            Action::SetRecipients { recipients, allowed } => {
                AIAllocator::setRecipientsCall { recipients: recipients.clone(), allowed: *allowed }.abi_encode()
            }
            Action::SetVetoDelay { seconds } => AIAllocator::setVetoDelayCall { vetoDelay_: *seconds }.abi_encode(),
            Action::SetAgent { agent } => AIAllocator::setAgentCall { agent_: *agent }.abi_encode(),
            Action::SetGuardian { guardian } => AIAllocator::setGuardianCall { guardian_: *guardian }.abi_encode(),
            Action::Unpause => AIAllocator::unpauseCall {}.abi_encode(),
        }
        .into()
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Action::ApprovePlan { root, total, batches } => {
                format!("approve plan root {root}: {total} units in {batches} batches")
            }
            Action::CancelPlan { plan_id } => format!("cancel plan {plan_id}"),
            Action::SetCaps { epoch_cap, recipient_cap } => {
                format!("set the agent's caps: {epoch_cap} units per epoch, {recipient_cap} per recipient")
            }
            Action::SetRecipients { recipients, allowed } => format!(
                "{} {} recipients {} the registry",
                if *allowed { "add" } else { "remove" },
                recipients.len(),
                if *allowed { "to" } else { "from" }
            ),
            Action::SetVetoDelay { seconds } => format!("set the veto delay to {seconds} s"),
            Action::SetAgent { agent } => format!("set the agent to {agent}"),
            Action::SetGuardian { guardian } => format!("set the guardian to {guardian}"),
            Action::Unpause => "unpause the allocator".into(),
        }
    }
}

/// A Governor proposal: the exact arrays the governor hashes, plus the description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub targets: Vec<Address>,
    pub values: Vec<U256>,
    pub calldatas: Vec<Bytes>,
    pub description: String,
}

impl Proposal {
    /// Actions on one allocator, with a description (which makes the id unique: say what and when).
    pub fn new(allocator: Address, actions: &[Action], description: &str) -> Self {
        Proposal {
            targets: vec![allocator; actions.len()],
            values: vec![U256::ZERO; actions.len()],
            calldatas: actions.iter().map(Action::calldata).collect(),
            description: description.to_string(),
        }
    }

    /// `keccak256(description)`.
    pub fn description_hash(&self) -> B256 {
        keccak256(self.description.as_bytes())
    }

    /// The proposal id, as `Governor.hashProposal` computes it.
    pub fn id(&self) -> U256 {
        let h = keccak256(
            (self.targets.clone(), self.values.clone(), self.calldatas.clone(), self.description_hash())
                .abi_encode_params(),
        );
        U256::from_be_bytes(h.0)
    }
}

/// OpenZeppelin's `IGovernor.ProposalState`, by index.
pub const STATES: [&str; 8] =
    ["Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed"];

/// Submit a proposal. Returns its id.
pub fn propose(
    chain: &mut dyn Chain,
    governor: Address,
    proposer: Address,
    p: &Proposal,
) -> Result<(U256, Receipt), ChainError> {
    let r = transact(
        chain,
        proposer,
        governor,
        &AlloGovernor::proposeCall {
            targets: p.targets.clone(),
            values: p.values.clone(),
            calldatas: p.calldatas.clone(),
            description: p.description.clone(),
        },
    )?;
    let id = r.events::<AlloGovernor::ProposalCreated>().first().map(|e| e.proposalId).unwrap_or_else(|| p.id());
    Ok((id, r))
}

/// Vote directly.
pub fn cast_vote(
    chain: &mut dyn Chain,
    governor: Address,
    voter: Address,
    id: U256,
    support: u8,
) -> Result<Receipt, ChainError> {
    transact(chain, voter, governor, &AlloGovernor::castVoteCall { proposalId: id, support })
}

/// Sign a ballot for `castVoteBySig` with the voter's current nonce on the governor.
pub fn sign_ballot(
    chain: &mut dyn Chain,
    governor: Address,
    voter: &PrivateKeySigner,
    id: U256,
    support: u8,
) -> Result<Bytes, ChainError> {
    let nonce = read(chain, governor, &AlloGovernor::noncesCall { owner: voter.address() })?;
    let ballot = Ballot { proposalId: id, support, voter: voter.address(), nonce };
    let domain = eip712_domain! {
        name: "AlloGovernor",
        version: "1",
        chain_id: chain.chain_id(),
        verifying_contract: governor,
    };
    let sig = voter
        .sign_hash_sync(&ballot.eip712_signing_hash(&domain))
        .map_err(|e| ChainError::Config(format!("cannot sign the ballot: {e}")))?;
    Ok(Bytes::from(sig.as_bytes().to_vec()))
}

/// Submit a signed ballot; anyone (`relayer`) may send it, the vote counts for `voter`.
pub fn cast_vote_by_sig(
    chain: &mut dyn Chain,
    governor: Address,
    relayer: Address,
    id: U256,
    support: u8,
    voter: Address,
    signature: Bytes,
) -> Result<Receipt, ChainError> {
    transact(chain, relayer, governor, &AlloGovernor::castVoteBySigCall { proposalId: id, support, voter, signature })
}

/// Queue a succeeded proposal in the timelock (anyone may).
pub fn queue(chain: &mut dyn Chain, governor: Address, sender: Address, p: &Proposal) -> Result<Receipt, ChainError> {
    transact(
        chain,
        sender,
        governor,
        &AlloGovernor::queueCall {
            targets: p.targets.clone(),
            values: p.values.clone(),
            calldatas: p.calldatas.clone(),
            descriptionHash: p.description_hash(),
        },
    )
}

/// Execute a queued proposal whose timelock delay has passed (anyone may).
pub fn execute(chain: &mut dyn Chain, governor: Address, sender: Address, p: &Proposal) -> Result<Receipt, ChainError> {
    transact(
        chain,
        sender,
        governor,
        &AlloGovernor::executeCall {
            targets: p.targets.clone(),
            values: p.values.clone(),
            calldatas: p.calldatas.clone(),
            descriptionHash: p.description_hash(),
        },
    )
}

/// The timelock operation id of a queued proposal (`GovernorTimelockControl`'s salt rule), computed here as
/// `TimelockController.hashOperationBatch` does: `keccak256(abi.encode(targets, values, payloads, 0, salt))`
/// with `salt = bytes20(governor) ^ descriptionHash`. Nothing is taken from the node.
pub fn timelock_operation(governor: Address, p: &Proposal) -> B256 {
    let mut salt = p.description_hash();
    for (s, g) in salt.0.iter_mut().zip(governor.0 .0.iter()) {
        *s ^= g;
    }
    keccak256((p.targets.clone(), p.values.clone(), p.calldatas.clone(), B256::ZERO, salt).abi_encode_params())
}

/// The guardian (a canceller on the timelock) cancels a queued proposal's operation before it executes.
pub fn cancel_queued(
    chain: &mut dyn Chain,
    governor: Address,
    timelock: Address,
    guardian: Address,
    p: &Proposal,
) -> Result<Receipt, ChainError> {
    let op = timelock_operation(governor, p);
    transact(chain, guardian, timelock, &AlloTimelock::cancelCall { id: op })
}

/// A proposal's state and tally, read from the chain.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalStatus {
    pub id: String,
    pub state: &'static str,
    pub votes_for: String,
    pub votes_against: String,
    pub votes_abstain: String,
    /// Quorum at the proposal's snapshot (for + abstain must reach it); unknown until the snapshot is past.
    pub quorum: Option<String>,
    pub snapshot: u64,
    pub deadline: u64,
    /// When a queued proposal may execute (0 when not queued).
    pub eta: u64,
}

/// Read a proposal's state, votes and quorum.
pub fn status(chain: &mut dyn Chain, governor: Address, id: U256) -> Result<ProposalStatus, ChainError> {
    let state = read(chain, governor, &AlloGovernor::stateCall { proposalId: id })?;
    let votes = read(chain, governor, &AlloGovernor::proposalVotesCall { proposalId: id })?;
    let snapshot = read(chain, governor, &AlloGovernor::proposalSnapshotCall { proposalId: id })?;
    let deadline = read(chain, governor, &AlloGovernor::proposalDeadlineCall { proposalId: id })?;
    let eta = read(chain, governor, &AlloGovernor::proposalEtaCall { proposalId: id })?;
    // The governor counts in blocks (ERC-6372 clock); quorum at a future snapshot reverts (ERC5805FutureLookup).
    let now = read(chain, governor, &AlloGovernor::clockCall {})?;
    let quorum = if U256::from(now) > snapshot {
        Some(read(chain, governor, &AlloGovernor::quorumCall { timepoint: snapshot })?.to_string())
    } else {
        None
    };
    Ok(ProposalStatus {
        id: id.to_string(),
        state: STATES.get(state as usize).copied().unwrap_or("Unknown"),
        votes_for: votes.forVotes.to_string(),
        votes_against: votes.againstVotes.to_string(),
        votes_abstain: votes.abstainVotes.to_string(),
        quorum,
        snapshot: snapshot.saturating_to(),
        deadline: deadline.saturating_to(),
        eta: eta.saturating_to(),
    })
}

/// The governor's `ProposalCreated` events since `from_block`.
fn created(
    chain: &mut dyn Chain,
    governor: Address,
    from_block: u64,
) -> Result<Vec<AlloGovernor::ProposalCreated>, ChainError> {
    let filter = LogFilter {
        address: governor,
        topic0: vec![AlloGovernor::ProposalCreated::SIGNATURE_HASH],
        topic1: None,
        topic2: None,
        from_block,
        to_block: None,
    };
    Ok(chain.logs(&filter)?.iter().filter_map(|l| l.decode::<AlloGovernor::ProposalCreated>()).collect())
}

/// Find a proposal's arrays and description from its `ProposalCreated` event; the node's event is trusted only
/// when it hashes to the id asked for.
pub fn find_proposal(
    chain: &mut dyn Chain,
    governor: Address,
    id: U256,
    from_block: u64,
) -> Result<Proposal, ChainError> {
    created(chain, governor, from_block)?
        .into_iter()
        .filter(|e| e.proposalId == id)
        .map(|e| Proposal { targets: e.targets, values: e.values, calldatas: e.calldatas, description: e.description })
        .find(|p| p.id() == id)
        .ok_or_else(|| ChainError::Config(format!("no proposal {id} on governor {governor} since block {from_block}")))
}

/// Every proposal of a governor since `from_block`, with its description and current status.
pub fn list(
    chain: &mut dyn Chain,
    governor: Address,
    from_block: u64,
) -> Result<Vec<(String, ProposalStatus)>, ChainError> {
    created(chain, governor, from_block)?
        .into_iter()
        .map(|e| Ok((e.description.clone(), status(chain, governor, e.proposalId)?)))
        .collect()
}
