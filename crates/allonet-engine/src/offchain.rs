//! Off-chain governance (signed votes in SQLite, as Snapshot): the events people cause, built and signed here so
//! that every front end makes them the same way. The rules that judge them are `allonet-governance`'s; the store
//! that keeps them is `allonet-store`'s.

use std::collections::BTreeMap;
use std::path::Path;

use allonet_core::{InputError, Table};
use allonet_governance::ballot::{ballot_hash, delegation_hash};
use allonet_governance::governor::{Action, Event, GovParams, Governor, Support};
use allonet_governance::power::{PowerConfig, Strategy};
use allonet_store::Store;
use alloy_primitives::{Address, B256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;

use crate::EngineError;

/// Open an existing governance store (a missing file is an error, not a new DAO).
pub fn open(db: &Path) -> Result<Store, EngineError> {
    if !db.exists() {
        return Err(EngineError::Config(format!(
            "{} does not exist (create it with `allonet gov init --db {}`)",
            db.display(),
            db.display()
        )));
    }
    Store::open(db).map_err(|e| EngineError::Config(format!("{}: {e}", db.display())))
}

/// Holders in the one holders format ([`crate::keys::holders_from_table`]: `address,amount`, each address once),
/// amounts in whole tokens of `decimals` decimals, as the governor's integer voting power (base units).
pub fn holders(t: &Table, decimals: u8) -> Result<Vec<(Address, u128)>, EngineError> {
    let token = allonet_core::Token::new("votes", decimals);
    crate::keys::holders_from_table(t, &token)?
        .into_iter()
        .map(|(a, n)| {
            u128::try_from(n.units()).map(|n| (a.0, n)).map_err(|_| {
                EngineError::Input(InputError::file(t.file.clone(), format!("{a}: balance beyond 2^128 base units")))
            })
        })
        .collect()
}

/// Sybil scores `address,score` for scaling voting power.
pub fn sybil_scores(t: &Table) -> Result<BTreeMap<Address, f64>, EngineError> {
    let ac = t.require_one_of(&["address", "donor", "member"], "address")?;
    let sc = t.require_one_of(&["score", "aggregate_score"], "score")?;
    let mut m = BTreeMap::new();
    for row in t.rows() {
        let addr = allonet_core::Address::parse(row.get(ac)).map_err(|e| t.error(row, ac, e.to_string()))?;
        m.insert(addr.0, t.parse_f64(row, sc)?);
    }
    Ok(m)
}

/// A DAO's first event, checked by replaying it before anything is written.
pub fn init_event(
    params: GovParams,
    power: PowerConfig,
    guardian: Address,
    holders: Vec<(Address, u128)>,
    chain_id: u64,
    at: u64,
) -> Result<Event, EngineError> {
    let allowlist = holders.iter().map(|h| h.0).collect();
    let e = Event::Init { params, power, guardian, holders, allowlist, chain_id, at };
    Governor::replay([&e]).map_err(|e| EngineError::Config(e.to_string()))?;
    Ok(e)
}

/// A typed action of the SQLite governor from its command-line form: `approve-plan:0xDIGEST`,
/// `activate-model:0xID`, `rollback-model`, `caps:EPOCH:RECIPIENT` (base units), `pause`, `unpause`.
pub fn parse_action(s: &str) -> Result<Action, EngineError> {
    let bad = |m: String| EngineError::Input(InputError::file("--action", m));
    let parts: Vec<&str> = s.split(':').collect();
    let b = |x: &str| x.parse::<B256>().map_err(|_| bad(format!("`{x}` is not a 32-byte hex digest")));
    let units = |x: &str| {
        x.parse::<allonet_core::TokenAmount>()
            .map_err(|_| bad(format!("caps: `{x}` is not a whole number of base units")))
    };
    Ok(match parts.as_slice() {
        ["approve-plan", d] => Action::ApprovePayoutPlan { digest: b(d)? },
        ["activate-model", d] => Action::ActivateModel { model_id: b(d)? },
        ["rollback-model"] => Action::RollbackModel,
        ["caps", e, r] => Action::SetAgentCaps { per_epoch: units(e)?, per_recipient: units(r)? },
        ["pause"] => Action::Pause,
        ["unpause"] => Action::Unpause,
        _ => {
            return Err(bad(format!(
                "unknown action `{s}` (approve-plan:0x…, activate-model:0x…, rollback-model, caps:EPOCH:RECIPIENT, pause, unpause)"
            )))
        }
    })
}

fn sign(signer: &PrivateKeySigner, h: B256) -> Result<String, EngineError> {
    let sig = signer.sign_hash_sync(&h).map_err(|e| EngineError::Config(format!("cannot sign: {e}")))?;
    Ok(alloy_primitives::hex::encode(sig.as_bytes()))
}

/// A vote signed (EIP-712) for the signer's next nonce.
pub fn signed_vote(
    g: &Governor,
    signer: &PrivateKeySigner,
    proposal: B256,
    support: u8,
    votes: u128,
    at: u64,
) -> Result<Event, EngineError> {
    let voter = signer.address();
    let nonce = g.nonces.get(&voter).copied().unwrap_or(0);
    let signature = Some(sign(signer, ballot_hash(g.chain_id, proposal, support, votes, voter, nonce))?);
    let support =
        Support::from_u8(support).ok_or_else(|| EngineError::Config(format!("support {support} is not 0, 1 or 2")))?;
    Ok(Event::Vote { proposal, voter, support, votes, nonce, signature, at })
}

/// A delegation signed (EIP-712) for the signer's next nonce.
pub fn signed_delegation(g: &Governor, signer: &PrivateKeySigner, to: Address, at: u64) -> Result<Event, EngineError> {
    let holder = signer.address();
    let nonce = g.nonces.get(&holder).copied().unwrap_or(0);
    let signature = Some(sign(signer, delegation_hash(g.chain_id, holder, to, nonce))?);
    Ok(Event::Delegate { holder, to, nonce, signature, at })
}

/// Deterministic member keys for rehearsals, demos and tests: keccak(seed ‖ i).
pub fn member_key(seed: u64, i: u64) -> PrivateKeySigner {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&seed.to_be_bytes());
    b[8..].copy_from_slice(&i.to_be_bytes());
    PrivateKeySigner::from_bytes(&alloy_primitives::keccak256(b))
        .expect("a keccak digest is a valid key with overwhelming probability")
}

/// The crash-test DAO: `voters` members with keys from `seed`, one open proposal; created when the store is new.
/// Returns the members' keys and the proposal id.
pub fn stress_dao(s: &mut Store, voters: u64, seed: u64) -> Result<(Vec<PrivateKeySigner>, B256), EngineError> {
    let keys: Vec<PrivateKeySigner> = (0..voters).map(|i| member_key(seed, i)).collect();
    let actions = vec![Action::Pause];
    let id = allonet_governance::governor::proposal_id(&actions, "stress", &[]);
    if s.is_empty() {
        let e = EngineError::Config;
        s.submit(&Event::Init {
            params: GovParams { voting_delay: 1, voting_period: 1_000_000, ..GovParams::default() },
            power: PowerConfig { strategy: Strategy::Token, sybil: None },
            guardian: Address::ZERO,
            holders: keys.iter().enumerate().map(|(i, k)| (k.address(), 1 + i as u128)).collect(),
            allowlist: vec![],
            chain_id: 1,
            at: 0,
        })
        .map_err(|x| e(x.to_string()))?;
        s.submit(&Event::Propose {
            proposer: keys[0].address(),
            actions,
            description: "stress".into(),
            options: vec![],
            at: 1,
        })
        .map_err(|x| e(x.to_string()))?;
    }
    Ok((keys, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_to_typed_amounts_and_bad_ones_are_named() {
        assert!(matches!(parse_action("caps:1000:250").unwrap(), Action::SetAgentCaps { .. }));
        for bad in ["caps:1e3:5", "caps:-1:5", "approve-plan:0x12", "launch"] {
            let e = parse_action(bad).unwrap_err().to_string();
            assert!(e.contains("--action"), "{bad}: {e}");
        }
    }

    #[test]
    fn votes_are_signed_for_the_next_nonce_and_holders_are_checked() {
        let t = Table::from_bytes("h.csv", b"address,balance\n0x00000000000000000000000000000000000000a1,5\n0x00000000000000000000000000000000000000A1,6\n").unwrap();
        assert!(holders(&t, 0).unwrap_err().to_string().contains("h.csv:3"));
        let t =
            Table::from_bytes("h.csv", b"member,balance\n0x00000000000000000000000000000000000000a1,1.5\n").unwrap();
        assert_eq!(holders(&t, 2).unwrap()[0].1, 150, "whole tokens of the given decimals");
        assert!(holders(&t, 0).unwrap_err().to_string().contains("h.csv:2"), "1.5 has more decimals than 0");
        let k = member_key(1, 0);
        let g = Governor::default();
        match signed_vote(&g, &k, B256::ZERO, 1, 0, 5).unwrap() {
            Event::Vote { nonce, signature, voter, .. } => {
                assert_eq!((nonce, voter), (0, k.address()));
                assert_eq!(signature.unwrap().len(), 130);
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(member_key(1, 0).address(), k.address(), "deterministic");
    }
}
