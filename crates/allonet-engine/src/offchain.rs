//! Off-chain governance (signed acts in SQLite, as Snapshot): the events people cause, built and signed here so
//! that every front end makes them the same way. The rules that judge them are `allonet-governance`'s; the store
//! that keeps them is `allonet-store`'s.
//!
//! Every act is signed by its actor; the log is written under the operator's key (the genesis's signer), which
//! signs each new head. By default that key lives beside the database ([`operator_key_path`]). Times come from
//! the store's clock; only a rehearsal database (`gov init --rehearsal`) takes the caller's (`--now`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use allonet_core::{InputError, Table};
use allonet_governance::governor::{Act, Action, Choice, Event, GovParams, Governor, Support};
use allonet_governance::power::{PowerConfig, Strategy};
use allonet_store::Store;
use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;

use crate::EngineError;

fn gov_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Config(e.to_string())
}

/// Open an existing governance store, verifying its whole log (a missing file is an error, not a new DAO).
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

/// Where a DAO's operator key lives unless told otherwise: `<db>.operator.key`.
pub fn operator_key_path(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.operator.key", db.display()))
}

/// Open an existing store to write to it, with the operator's key (from `key`, or [`operator_key_path`]).
pub fn open_writable(db: &Path, key: Option<&Path>) -> Result<Store, EngineError> {
    let mut s = open(db)?;
    let path = key.map(Path::to_path_buf).unwrap_or_else(|| operator_key_path(db));
    if !path.exists() {
        return Err(EngineError::Config(format!(
            "writing to {} needs its operator's key ({} is missing; give --operator-key)",
            db.display(),
            path.display()
        )));
    }
    let k = crate::keys::load_key_file(&path)?;
    s.set_operator(k).map_err(gov_err)?;
    Ok(s)
}

/// The time an act is signed and received at: the store's clock; in a rehearsal, the caller's `now` if given.
/// A `now` for a database that is not a rehearsal is refused: its clock is the system's.
pub fn act_time(store: &Store, now: Option<u64>) -> Result<u64, EngineError> {
    let g = store.governor();
    match (g.rehearsal, now) {
        (true, Some(t)) => Ok(t),
        (true, None) => Ok(store.now().max(g.last_at)),
        (false, Some(_)) => Err(EngineError::Config(
            "--now is accepted only by a rehearsal database (created with `allonet gov init --rehearsal`); this one \
             keeps the system clock"
                .into(),
        )),
        (false, None) => Ok(store.now()),
    }
}

/// Sign `act` as `key` for `store`'s DAO: its next nonce, at [`act_time`]. Needs no operator key: a member signs
/// against a copy of the database, and the operator appends the act ([`submit_signed`]).
pub fn sign_act(store: &Store, key: &PrivateKeySigner, act: Act, now: Option<u64>) -> Result<Event, EngineError> {
    let at = act_time(store, now)?;
    store.governor().sign(key, act, at).map_err(gov_err)
}

/// Sign `act` as `key` (its next nonce, at [`act_time`]) and append it; returns its audit entry.
pub fn submit_act(store: &mut Store, key: &PrivateKeySigner, act: Act, now: Option<u64>) -> Result<u64, EngineError> {
    let e = sign_act(store, key, act, now)?;
    store.submit(&e).map_err(gov_err)
}

/// What appending a signed act gives its signer: the entry and the operator's signature on the head there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Receipt {
    /// The entry.
    pub seq: u64,
    /// Its hash (the log's head after it).
    pub head: B256,
    /// The operator.
    pub operator: Address,
    /// The operator's EIP-712 signature on the head (`Head(seq, hash, at)` in the DAO's domain).
    pub signature: String,
}

/// The receipt for entry `seq`, which must have ended a write.
pub fn receipt(store: &Store, seq: u64) -> Result<Receipt, EngineError> {
    let head = store.hash_at(seq).map_err(gov_err)?.ok_or_else(|| gov_err(format!("no entry #{seq}")))?;
    let signature =
        store.head_signature(seq).map_err(gov_err)?.ok_or_else(|| gov_err(format!("entry #{seq} ended no write")))?;
    Ok(Receipt { seq, head, operator: store.governor().operator, signature })
}

/// Append an act a member signed elsewhere (`gov … --sign-only`), read from `path`; returns its receipt.
pub fn submit_signed(store: &mut Store, path: &Path) -> Result<(Event, Receipt), EngineError> {
    let e: Event = allonet_core::input::read_json(path)?;
    let seq = store.submit(&e).map_err(|err| gov_err(format!("{}: {err}", path.display())))?;
    Ok((e, receipt(store, seq)?))
}

/// What a new DAO is made of.
#[derive(Clone, Debug)]
pub struct NewDao {
    /// Parameters.
    pub params: GovParams,
    /// Voting power.
    pub power: PowerConfig,
    /// Guardian.
    pub guardian: Address,
    /// Holders (base units), each self-delegated and allowlisted.
    pub holders: Vec<(Address, u128)>,
    /// EIP-712 chain id.
    pub chain_id: u64,
    /// A rehearsal: the caller's clock (`--now`), marked everywhere, never a source of payout decisions.
    pub rehearsal: bool,
    /// Unique bytes of the DAO id (random unless given, e.g. for a reproducible demo).
    pub salt: Option<B256>,
}

/// A DAO's genesis, signed by its operator and checked by replaying it before anything is written.
pub fn init_event(d: NewDao, operator: &PrivateKeySigner, at: u64) -> Result<Event, EngineError> {
    let allowlist = d.holders.iter().map(|h| h.0).collect();
    let salt = d.salt.unwrap_or_else(|| alloy_primitives::keccak256(PrivateKeySigner::random().to_bytes()));
    let act = Act::Init {
        params: d.params,
        power: d.power,
        guardian: d.guardian,
        holders: d.holders,
        allowlist,
        chain_id: d.chain_id,
        rehearsal: d.rehearsal,
        salt,
    };
    let e = allonet_governance::acts::sign(operator, act, B256::ZERO, d.chain_id, 0, at).map_err(gov_err)?;
    Governor::replay([&e]).map_err(gov_err)?;
    Ok(e)
}

/// Create a DAO's database at `db` (which must not exist), written under `operator`'s key; `now` only for a
/// rehearsal.
pub fn create(db: &Path, d: NewDao, operator: &PrivateKeySigner, now: Option<u64>) -> Result<Store, EngineError> {
    if db.exists() {
        return Err(EngineError::Config(format!("{} already exists; refusing to overwrite a DAO", db.display())));
    }
    let at = match (d.rehearsal, now) {
        (false, Some(_)) => {
            return Err(EngineError::Config("--now needs --rehearsal: a real DAO keeps the system clock".into()))
        }
        (_, Some(t)) => t,
        (_, None) => allonet_governance::Clock::now(&allonet_governance::SystemClock),
    };
    let e = init_event(d, operator, at)?;
    let mut s = Store::open(db).map_err(gov_err)?;
    s.set_operator(operator.clone()).map_err(gov_err)?;
    s.submit(&e).map_err(gov_err)?;
    Ok(s)
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

/// A typed action of the SQLite governor from its command-line form: `approve-plan:0xDIGEST`,
/// `activate-model:0xID`, `rollback-model`, `caps:EPOCH:RECIPIENT` (base units), `pause`, `unpause`,
/// `agent-policy:MODE:NAME=BP,…` (MODE `advise`, `propose` or `autonomous`; weights in basis points summing to
/// 10,000, e.g. `agent-policy:propose:ai=6000,qv=4000`), `veto-plan:0xDIGEST` (a plan the agent queued under its
/// caps: it must not pay it), `approve-treasury-ops:0xDIGEST` (a rebalance's swaps, as the agent's report lists
/// them).
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
        ["veto-plan", d] => Action::VetoPlan { digest: b(d)? },
        ["approve-treasury-ops", d] => Action::ApproveTreasuryOps { digest: b(d)? },
        ["activate-model", d] => Action::ActivateModel { model_id: b(d)? },
        ["rollback-model"] => Action::RollbackModel,
        ["caps", e, r] => Action::SetAgentCaps { per_epoch: units(e)?, per_recipient: units(r)? },
        ["pause"] => Action::Pause,
        ["unpause"] => Action::Unpause,
        ["agent-policy", mode, weights] => {
            use allonet_governance::governor::{AgentMode, AgentPolicy};
            let mode = match *mode {
                "advise" => AgentMode::Advise,
                "propose" => AgentMode::Propose,
                "autonomous" => AgentMode::Autonomous,
                m => return Err(bad(format!("agent-policy: mode `{m}` is not advise, propose or autonomous"))),
            };
            let mut w = BTreeMap::new();
            for pair in weights.split(',') {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| bad(format!("agent-policy: `{pair}` is not NAME=BASIS_POINTS")))?;
                let v: u32 =
                    v.parse().map_err(|_| bad(format!("agent-policy: `{v}` is not a whole number of basis points")))?;
                if w.insert(k.to_string(), v).is_some() {
                    return Err(bad(format!("agent-policy: signal `{k}` is given twice")));
                }
            }
            let policy = AgentPolicy { mode, weights: w };
            policy.check().map_err(|e| bad(e.to_string()))?;
            Action::SetAgentPolicy { policy }
        }
        _ => {
            return Err(bad(format!(
                "unknown action `{s}` (approve-plan:0x…, veto-plan:0x…, activate-model:0x…, rollback-model, caps:EPOCH:RECIPIENT, pause, unpause, agent-policy:MODE:NAME=BP,…)"
            )))
        }
    })
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
    let support =
        Support::from_u8(support).ok_or_else(|| EngineError::Config(format!("support {support} is not 0, 1 or 2")))?;
    g.sign(signer, Act::Vote { proposal, support, votes }, at).map_err(gov_err)
}

/// Options of a multi-choice proposal from their command-line form `LABEL` or `LABEL=ACTION[+ACTION…]`
/// (actions as [`parse_action`]); only the winning option's actions run.
pub fn parse_options(options: &[String]) -> Result<Vec<Choice>, EngineError> {
    options
        .iter()
        .map(|o| match o.split_once('=') {
            None => Ok(Choice::label(o.trim())),
            Some((label, acts)) => Ok(Choice {
                label: label.trim().into(),
                actions: acts.split('+').map(|a| parse_action(a.trim())).collect::<Result<_, _>>()?,
            }),
        })
        .collect()
}

/// Deterministic member keys for rehearsals, demos and tests: keccak(seed ‖ i).
pub fn member_key(seed: u64, i: u64) -> PrivateKeySigner {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&seed.to_be_bytes());
    b[8..].copy_from_slice(&i.to_be_bytes());
    PrivateKeySigner::from_bytes(&alloy_primitives::keccak256(b))
        .expect("a keccak digest is a valid key with overwhelming probability")
}

/// The crash-test DAO, a rehearsal (fixed times): `voters` members with keys from `seed`, one open proposal;
/// created when the store is new. The operator's key is [`member_key`]`(seed, u64::MAX)`; the store is given it.
/// Returns the members' keys and the proposal id.
pub fn stress_dao(s: &mut Store, voters: u64, seed: u64) -> Result<(Vec<PrivateKeySigner>, B256), EngineError> {
    let keys: Vec<PrivateKeySigner> = (0..voters).map(|i| member_key(seed, i)).collect();
    let operator = member_key(seed, u64::MAX);
    s.set_operator(operator.clone()).map_err(gov_err)?;
    let actions = vec![Action::Pause];
    if s.is_empty() {
        let dao = NewDao {
            params: GovParams { voting_delay: 1, voting_period: 1_000_000, ..GovParams::default() },
            power: PowerConfig { strategy: Strategy::Token, sybil: None },
            guardian: Address::ZERO,
            holders: keys.iter().enumerate().map(|(i, k)| (k.address(), 1 + i as u128)).collect(),
            chain_id: 1,
            rehearsal: true,
            salt: Some(B256::with_last_byte(seed as u8)),
        };
        s.submit(&init_event(dao, &operator, 0)?).map_err(gov_err)?;
        let act = Act::Propose { actions: actions.clone(), description: "stress".into(), options: vec![] };
        submit_act(s, &keys[0], act, Some(1))?;
    }
    let id = allonet_governance::governor::proposal_id(s.governor().dao, keys[0].address(), &actions, "stress", &[]);
    Ok((keys, id))
}

/// Pass a for/against proposal of `actions` in `store`: `proposer` proposes, every voter votes for, the proposer
/// queues once voting ends and executes once the timelock ends. Time moves as needed: on `clock` (the store's, for a
/// store opened with a manual clock) or, in a rehearsal, as the acts' own times. For tests, demos and simulations.
/// Returns the proposal id.
pub fn pass(
    store: &mut Store,
    clock: Option<&allonet_governance::ManualClock>,
    proposer: &PrivateKeySigner,
    voters: &[PrivateKeySigner],
    actions: Vec<Action>,
    description: &str,
) -> Result<B256, EngineError> {
    let step = |store: &mut Store, key: &PrivateKeySigner, act: Act, t: u64| -> Result<u64, EngineError> {
        match clock {
            Some(c) => {
                c.set(t.max(c.0.load(std::sync::atomic::Ordering::SeqCst)));
                submit_act(store, key, act, None)
            }
            None => submit_act(store, key, act, Some(t)),
        }
    };
    let t0 = store.governor().last_at.max(clock.map(allonet_governance::Clock::now).unwrap_or(0)) + 1;
    let id =
        allonet_governance::governor::proposal_id(store.governor().dao, proposer.address(), &actions, description, &[]);
    step(store, proposer, Act::Propose { actions, description: description.into(), options: vec![] }, t0)?;
    let p = store.governor().proposals[&id].clone();
    for v in voters {
        step(store, v, Act::Vote { proposal: id, support: Support::For, votes: 0 }, p.snapshot + 1)?;
    }
    step(store, proposer, Act::Queue { proposal: id }, p.deadline + 1)?;
    let eta = store.governor().proposals[&id].eta.unwrap_or(0);
    step(store, proposer, Act::Execute { proposal: id }, eta)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_to_typed_amounts_and_bad_ones_are_named() {
        assert!(matches!(parse_action("caps:1000:250").unwrap(), Action::SetAgentCaps { .. }));
        let p = parse_action("agent-policy:propose:ai=6000,qv=4000").unwrap();
        assert!(matches!(p, Action::SetAgentPolicy { ref policy } if policy.weights["ai"] == 6000));
        for bad in [
            "caps:1e3:5",
            "caps:-1:5",
            "approve-plan:0x12",
            "launch",
            "agent-policy:yolo:ai=10000",
            "agent-policy:propose:ai=6000,qv=3000",
            "agent-policy:propose:ai=6000,ai=4000",
            "agent-policy:propose:ai",
        ] {
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
        let e = signed_vote(&g, &k, B256::ZERO, 1, 0, 5).unwrap();
        assert!(matches!(e.act, Act::Vote { support: Support::For, .. }));
        assert_eq!((e.nonce, e.signer, e.signature.len()), (0, k.address(), 130));
        assert_eq!(member_key(1, 0).address(), k.address(), "deterministic");
    }
}
