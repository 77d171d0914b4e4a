//! Signed acts: every event a person causes is an EIP-712 message signed by its actor with a secp256k1 key.
//!
//! The domain is `{name: "allonet", version: "2", chainId, salt: DAO id}`: a signature made for one DAO
//! verifies in no other, even where proposal ids and nonces match. The DAO id is the EIP-712 hash of the
//! DAO's signed genesis (whose own domain has a zero salt, and which carries 32 random bytes), so two DAOs
//! never share one. Every message names its signer, the signer's next nonce (one counter per signer across
//! all kinds of act, as an Ethereum account's) and the time it was signed.
//!
//! Source: EIP-712 "Typed structured data hashing and signing" (the `salt` domain field); OpenZeppelin
//! Governor's `castVoteBySig` ballot and ERC20Votes' `delegateBySig`; Snapshot's signed messages (a
//! timestamp in every message, checked against the receiving clock).

use crate::governor::{Act, Event, GovError, Support};
use allonet_core::canonical_json;
use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{sol, Eip712Domain, SolStruct};
use std::borrow::Cow;

sol! {
    /// The genesis of a DAO, signed by its operator. Its EIP-712 hash is the DAO id.
    struct Genesis {
        bytes32 config;
        bytes32 salt;
        bool rehearsal;
        address operator;
        uint256 nonce;
        uint64 signedAt;
    }

    /// A vote. `support` is 0 against, 1 for, 2 abstain, 3 weighted across `options` (by `weights`).
    struct Ballot {
        bytes32 proposalId;
        uint8 support;
        uint32[] options;
        uint64[] weights;
        uint256 votes;
        address voter;
        uint256 nonce;
        uint64 signedAt;
    }

    /// A delegation of the signer's votes.
    struct Delegation {
        address holder;
        address delegatee;
        uint256 nonce;
        uint64 signedAt;
    }

    /// A transfer of the signer's governance tokens.
    struct Transfer {
        address from;
        address to;
        uint256 amount;
        uint256 nonce;
        uint64 signedAt;
    }

    /// A proposal: its id commits to the DAO, the actions, the description and the options.
    struct Proposal {
        bytes32 proposalId;
        string description;
        address proposer;
        uint256 nonce;
        uint64 signedAt;
    }

    /// A step of a proposal's life: `queue`, `execute` or `cancel`.
    struct ProposalStep {
        string step;
        bytes32 proposalId;
        address signer;
        uint256 nonce;
        uint64 signedAt;
    }

    /// The guardian's kill switch.
    struct Pause {
        bool paused;
        address guardian;
        uint256 nonce;
        uint64 signedAt;
    }

    /// Evidence recorded in the log (a step of the money path): its kind and the hash of its details.
    struct Record {
        string kind;
        bytes32 detail;
        address signer;
        uint256 nonce;
        uint64 signedAt;
    }

    /// The operator's signature on the audit log's head after a write.
    struct Head {
        uint64 seq;
        bytes32 hash;
        uint64 at;
    }
}

/// The EIP-712 domain of the DAO `dao` (zero for the genesis itself) on `chain_id`.
pub fn domain(chain_id: u64, dao: B256) -> Eip712Domain {
    Eip712Domain {
        name: Some(Cow::Borrowed("allonet")),
        version: Some(Cow::Borrowed("2")),
        chain_id: Some(U256::from(chain_id)),
        verifying_contract: None,
        salt: Some(dao),
    }
}

/// The digest the actor of `act` signs, in the DAO `dao` on `chain_id`.
pub fn signing_hash(
    act: &Act,
    signer: Address,
    nonce: u64,
    signed_at: u64,
    dao: B256,
    chain_id: u64,
) -> Result<B256, GovError> {
    let n = U256::from(nonce);
    let d = domain(chain_id, dao);
    Ok(match act {
        Act::Init { rehearsal, salt, .. } => Genesis {
            config: genesis_config(act),
            salt: *salt,
            rehearsal: *rehearsal,
            operator: signer,
            nonce: n,
            signedAt: signed_at,
        }
        .eip712_signing_hash(&domain(chain_id, B256::ZERO)),
        Act::Vote { proposal, support, votes } => {
            let (s, options, weights) = match support {
                Support::Against => (0, vec![], vec![]),
                Support::For => (1, vec![], vec![]),
                Support::Abstain => (2, vec![], vec![]),
                Support::Weighted(w) => (3, w.keys().copied().collect(), w.values().copied().collect()),
            };
            Ballot {
                proposalId: *proposal,
                support: s,
                options,
                weights,
                votes: U256::from(*votes),
                voter: signer,
                nonce: n,
                signedAt: signed_at,
            }
            .eip712_signing_hash(&d)
        }
        Act::Delegate { to } => {
            Delegation { holder: signer, delegatee: *to, nonce: n, signedAt: signed_at }.eip712_signing_hash(&d)
        }
        Act::Transfer { to, amount } => {
            Transfer { from: signer, to: *to, amount: U256::from(*amount), nonce: n, signedAt: signed_at }
                .eip712_signing_hash(&d)
        }
        Act::Propose { actions, description, options } => Proposal {
            proposalId: crate::governor::proposal_id(dao, signer, actions, description, options),
            description: description.clone(),
            proposer: signer,
            nonce: n,
            signedAt: signed_at,
        }
        .eip712_signing_hash(&d),
        Act::Queue { proposal } | Act::Execute { proposal } | Act::Cancel { proposal } => {
            ProposalStep { step: act.kind().into(), proposalId: *proposal, signer, nonce: n, signedAt: signed_at }
                .eip712_signing_hash(&d)
        }
        Act::Pause { paused } => {
            Pause { paused: *paused, guardian: signer, nonce: n, signedAt: signed_at }.eip712_signing_hash(&d)
        }
        Act::Record { kind, detail } => {
            Record { kind: kind.clone(), detail: keccak256(detail.as_bytes()), signer, nonce: n, signedAt: signed_at }
                .eip712_signing_hash(&d)
        }
    })
}

/// The hash of a genesis's configuration (parameters, power, guardian, holders, allowlist, chain id), as
/// canonical JSON.
fn genesis_config(act: &Act) -> B256 {
    keccak256(canonical_json(act).as_bytes())
}

/// The id of the DAO a genesis event creates: the EIP-712 hash its operator signed.
pub fn dao_id(genesis: &Event) -> Result<B256, GovError> {
    match &genesis.act {
        Act::Init { chain_id, .. } => {
            signing_hash(&genesis.act, genesis.signer, genesis.nonce, genesis.signed_at, B256::ZERO, *chain_id)
        }
        _ => Err(GovError::Setup("the first event of a DAO must be its genesis (init)".into())),
    }
}

/// The order of secp256k1's group, halved: a canonical signature's `s` is at most this (EIP-2).
const HALF_N: [u8; 32] = alloy_primitives::hex!("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");

/// Recovers who signed `hash`, with libsecp256k1: the address is the last 20 bytes of keccak-256 of the uncompressed
/// public key, as Ethereum's `ecrecover`. Only the one canonical form is accepted, so that an act has one encoding
/// (and one log hash): 130 lowercase hex characters `r ‖ s ‖ v`, `s` in the lower half of the group order (EIP-2),
/// `v` 27 or 28.
pub fn recover(hash: B256, sig_hex: &str) -> Result<Address, GovError> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    let bad = |m: String| GovError::BadSignature(m);
    if sig_hex.len() != 130 || !sig_hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(bad("a signature is 65 bytes as 130 lowercase hex characters (r ‖ s ‖ v)".into()));
    }
    let bytes = alloy_primitives::hex::decode(sig_hex).map_err(|e| bad(format!("not hex: {e}")))?;
    if bytes[32..64] > HALF_N[..] {
        return Err(bad("s is in the upper half of the group order (a malleated signature; EIP-2)".into()));
    }
    let v = match bytes[64] {
        v @ (27 | 28) => v - 27,
        v => return Err(bad(format!("v is {v}, not 27 or 28"))),
    };
    let id = RecoveryId::try_from(v as i32).map_err(|e| bad(e.to_string()))?;
    let sig = RecoverableSignature::from_compact(&bytes[..64], id).map_err(|e| bad(e.to_string()))?;
    let key = secp256k1::SECP256K1
        .recover_ecdsa(secp256k1::Message::from_digest(hash.0), &sig)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Address::from_slice(&keccak256(&key.serialize_uncompressed()[1..])[12..]))
}

/// Signs a digest; the signature as 65 bytes of hex.
pub fn sign_hash(key: &PrivateKeySigner, h: B256) -> Result<String, GovError> {
    let sig = key.sign_hash_sync(&h).map_err(|e| GovError::BadSignature(format!("cannot sign: {e}")))?;
    Ok(alloy_primitives::hex::encode(sig.as_bytes()))
}

/// An event whose signature has been checked: the only input [`crate::governor::Governor::apply_verified`]
/// takes, so no unverified act reaches the rules.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a>(pub(crate) &'a Event);

impl<'a> Verified<'a> {
    /// The event.
    pub fn event(&self) -> &'a Event {
        self.0
    }
}

/// Checks that `e` was signed by the signer it names, for the DAO `dao` on `chain_id` (a genesis is checked
/// against its own id). Needs no state, so events can be checked in parallel; nonces, clock and rights are
/// the governor's to check when the event is applied.
pub fn verify(e: &Event, dao: B256, chain_id: u64) -> Result<Verified<'_>, GovError> {
    let (dao, chain_id) = match &e.act {
        Act::Init { chain_id, .. } => (B256::ZERO, *chain_id),
        _ => (dao, chain_id),
    };
    let h = signing_hash(&e.act, e.signer, e.nonce, e.signed_at, dao, chain_id)?;
    let who = recover(h, &e.signature)?;
    if who != e.signer {
        return Err(GovError::BadSignature(format!(
            "the {} act names {} but was signed by {who} (or for another DAO, chain or nonce)",
            e.act.kind(),
            e.signer
        )));
    }
    Ok(Verified(e))
}

/// Signs `act` as `key` for the DAO `dao` on `chain_id` with `nonce`, signed at `signed_at`; `at` is the
/// receiving clock's time (a store stamps its own).
pub fn sign(
    key: &PrivateKeySigner,
    act: Act,
    dao: B256,
    chain_id: u64,
    nonce: u64,
    signed_at: u64,
) -> Result<Event, GovError> {
    let signer = key.address();
    let h = signing_hash(&act, signer, nonce, signed_at, dao, chain_id)?;
    Ok(Event { act, signer, nonce, signed_at, signature: sign_hash(key, h)?, at: signed_at })
}

/// The digest the operator signs for the log's head.
pub fn head_hash(dao: B256, chain_id: u64, seq: u64, hash: B256, at: u64) -> B256 {
    Head { seq, hash, at }.eip712_signing_hash(&domain(chain_id, dao))
}
