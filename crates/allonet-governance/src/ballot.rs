//! Signed ballots and delegations: EIP-712 typed data signed with secp256k1 keys, verified on receipt.
//!
//! The domain binds signatures to this DAO (name "allonet", version "1", chain id); a ballot binds the
//! proposal id and the voter's next nonce, so it cannot be replayed on another proposal or twice.
//!
//! Source: EIP-712 "Typed structured data hashing and signing"; OpenZeppelin Governor's `castVoteBySig`
//! (`Ballot(uint256 proposalId,uint8 support,address voter,uint256 nonce)`) and ERC20Votes' `delegateBySig`.

use crate::governor::{Event, GovError, Governor, Support};
use alloy_primitives::{Address, Signature, B256, U256};
use alloy_sol_types::{eip712_domain, sol, Eip712Domain, SolStruct};

sol! {
    /// A vote, as signed.
    struct Ballot {
        bytes32 proposalId;
        uint8 support;
        uint256 votes;
        address voter;
        uint256 nonce;
    }

    /// A delegation, as signed.
    struct Delegation {
        address holder;
        address delegatee;
        uint256 nonce;
    }
}

/// The EIP-712 domain of a DAO on `chain_id`.
pub fn domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! { name: "allonet", version: "1", chain_id: chain_id, }
}

/// The digest a voter signs for a ballot.
pub fn ballot_hash(chain_id: u64, proposal: B256, support: u8, votes: u128, voter: Address, nonce: u64) -> B256 {
    let b = Ballot { proposalId: proposal, support, votes: U256::from(votes), voter, nonce: U256::from(nonce) };
    b.eip712_signing_hash(&domain(chain_id))
}

/// The digest a holder signs for a delegation.
pub fn delegation_hash(chain_id: u64, holder: Address, delegatee: Address, nonce: u64) -> B256 {
    let d = Delegation { holder, delegatee, nonce: U256::from(nonce) };
    d.eip712_signing_hash(&domain(chain_id))
}

fn recover(hash: B256, sig_hex: &str) -> Result<Address, GovError> {
    let bytes =
        alloy_primitives::hex::decode(sig_hex.trim()).map_err(|e| GovError::BadSignature(format!("not hex: {e}")))?;
    let sig = Signature::from_raw(&bytes).map_err(|e| GovError::BadSignature(e.to_string()))?;
    sig.recover_address_from_prehash(&hash).map_err(|e| GovError::BadSignature(e.to_string()))
}

/// Checks a signed event's signature against the governor's domain and the signer's next nonce; unsigned
/// events pass unchanged (they come from a trusted operator).
pub fn verify(g: &Governor, e: &Event) -> Result<(), GovError> {
    if let Event::Vote { voter, nonce, signature: Some(_), .. } = e {
        let expected = g.nonces.get(voter).copied().unwrap_or(0);
        if *nonce != expected {
            return Err(GovError::BadSignature(format!("nonce {nonce} for {voter}; expected {expected} (replay?)")));
        }
    }
    check_signature(g.chain_id, e)
}

/// The signature check alone (no state needed, so it can run in parallel): the recovered signer must be
/// the voter or holder the event names. Nonces are checked when the event is applied.
pub fn check_signature(chain_id: u64, e: &Event) -> Result<(), GovError> {
    match e {
        Event::Vote { proposal, voter, support, votes, nonce, signature: Some(sig), .. } => {
            let s = match support {
                Support::Against => 0,
                Support::For => 1,
                Support::Abstain => 2,
                Support::Weighted(_) => {
                    return Err(GovError::BadSignature("signed ballots carry for/against/abstain".into()))
                }
            };
            let who = recover(ballot_hash(chain_id, *proposal, s, *votes, *voter, *nonce), sig)?;
            if who != *voter {
                return Err(GovError::BadSignature(format!("signed by {who}, not by the voter {voter}")));
            }
            Ok(())
        }
        Event::Delegate { holder, to, nonce, signature: Some(sig), .. } => {
            let who = recover(delegation_hash(chain_id, *holder, *to, *nonce), sig)?;
            if who != *holder {
                return Err(GovError::BadSignature(format!("signed by {who}, not by the holder {holder}")));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Verifies (when signed) and applies.
pub fn apply_verified(g: &mut Governor, e: &Event) -> Result<(), GovError> {
    verify(g, e)?;
    g.apply(e)
}
