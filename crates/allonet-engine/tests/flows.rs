//! The engine's flows on real parts: the embedded EVM (revm, the committed contract bytecode) and SQLite.

use std::path::{Path, PathBuf};

use allonet_chain::contracts::AIAllocator;
use allonet_chain::deploy::Asset;
use allonet_chain::plan::{Payment, PayoutPlan, PlanToken};
use allonet_chain::{transact, Embedded};
use allonet_core::{Address, Token, TokenAmount};
use allonet_engine::connect::{connect, resolve_chains, ConnectSpec, Endpoint};
use allonet_engine::deploy::{deploy, journal_path, DeploySpec};
use allonet_engine::govern::{check_decision, commitment, decision_record, queue_under_caps};
use allonet_engine::pay::{check_all, pay_plan, PayOptions, Quiet};
use allonet_engine::plans::{plan_from_result, ResultFile};
use allonet_engine::EngineError;
use allonet_governance::governor::{Action, GovParams};
use allonet_governance::power::{PowerConfig, Strategy};
use allonet_mechanisms::donations::Contribution;
use allonet_mechanisms::round::{run_round, Mechanism, RoundConfig, RoundInputs};
use alloy_primitives::{keccak256, U256};
use alloy_signer_local::PrivateKeySigner;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allonet-engine-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn who(i: u64) -> Address {
    Address(alloy_primitives::Address::from_word(keccak256(i.to_be_bytes())))
}

fn spec(state: &Path) -> ConnectSpec {
    ConnectSpec { embedded: true, state: state.to_path_buf(), ..Default::default() }
}

/// Deploy on an embedded chain whose allocator the sender (dev account 0) owns, so a test can approve directly.
fn deployed(dir: &Path, name: &str, chain_id: u64) -> (PathBuf, PathBuf) {
    let state = dir.join(format!("{name}.chain.json"));
    Embedded::open_with_chain_id(&state, chain_id).unwrap().save().unwrap();
    let (mut conn, endpoint) = connect(&spec(&state), None).unwrap();
    let out = dir.join(format!("{name}.json"));
    let s = DeploySpec {
        asset: Asset::NewToken { symbol: "USDC".into(), decimals: 6, supply: U256::from(10u64).pow(U256::from(15)) },
        agent: None,
        guardian: None,
        holders: None,
        epoch_length: 86_400,
        fund: U256::from(10u64).pow(U256::from(12)),
        voting_delay: 1,
        voting_period: 10,
        quorum_percent: 4,
        timelock_delay: 60,
        keep_owner: true,
    };
    deploy(&mut conn, endpoint, &s, &out).unwrap();
    (state, out)
}

fn plan(chains: &[Option<&str>], n: u64) -> PayoutPlan {
    let payments = (0..n)
        .map(|i| Payment {
            recipient: who(i),
            amount: TokenAmount(U256::from(1_000_000 + i)),
            chain: chains[i as usize % chains.len()].map(String::from),
            label: None,
        })
        .collect();
    PayoutPlan::new(PlanToken { symbol: "USDC".into(), decimals: 6 }, None, 4, payments).unwrap()
}

fn approve(state: &Path, dep: &Path, plan: &PayoutPlan, chain: Option<&str>) {
    let d = allonet_engine::connect::DeploymentFile::load(dep).unwrap().deployment;
    let (mut conn, _) = connect(&spec(state), Some(&Endpoint::Embedded { state: state.into() })).unwrap();
    let c = commitment(plan, chain).unwrap();
    transact(conn.chain(), d.deployer, d.allocator, &allonet_chain::payout::approve_call(&c)).unwrap();
    conn.save().unwrap();
}

#[test]
fn a_result_edited_after_it_was_computed_makes_no_plan() {
    let contributions = (0..30)
        .map(|i| Contribution { donor: format!("d{i}"), project: format!("p{}", i % 3), amount: 1.0 + (i % 7) as f64 })
        .collect();
    let inputs = RoundInputs { contributions, sybil_scores: None, clusters: None, trust: None };
    let config = RoundConfig {
        mechanism: Mechanism::Qf,
        token: Token::new("USDC", 6),
        pool: TokenAmount(U256::from(1_000_000_000u64)),
        cap: None,
        fill: true,
        sybil: None,
        min_gift: 0.0,
    };
    let r = run_round(&inputs, &config).unwrap();
    let file = ResultFile::new("round", &serde_json::json!({}), r.input_digest, r.output_digest, &r).unwrap();
    let book = (0..3).map(|i| (format!("p{i}"), (who(i), None))).collect();
    let p = plan_from_result(&file, "r.json", &book, 200).unwrap();
    assert_eq!(p.total.units(), U256::from(1_000_000_000u64), "the pool, exactly");
    assert_eq!(p.source, Some(r.output_digest));
    // One project's amount raised by a unit: the digest no longer recomputes.
    let mut edited = file.clone();
    let m = edited.result["lines"][0]["matched"].as_str().unwrap().parse::<u64>().unwrap();
    edited.result["lines"][0]["matched"] = serde_json::json!((m + 1).to_string());
    let e = plan_from_result(&edited, "r.json", &book, 200).unwrap_err().to_string();
    assert!(e.contains("r.json") && e.contains("edited after it was computed"), "{e}");
    // A project without an address is refused, not dropped.
    let short: std::collections::BTreeMap<_, _> = (0..2).map(|i| (format!("p{i}"), (who(i), None))).collect();
    let e = plan_from_result(&file, "r.json", &short, 200).unwrap_err().to_string();
    assert!(e.contains("no address") && e.contains("p2"), "{e}");
}

#[test]
fn every_chain_is_checked_before_any_is_paid_then_all_are_reconciled() {
    let dir = tmp("two-chains");
    let (sa, da) = deployed(&dir, "alpha", 31_337);
    let (sb, db) = deployed(&dir, "beta", 10);
    std::fs::write(
        dir.join("chains.toml"),
        "[chains.alpha]\nstate = \"alpha.chain.json\"\ndeployment = \"alpha.json\"\n\n[chains.beta]\nstate = \"beta.chain.json\"\ndeployment = \"beta.json\"\n",
    )
    .unwrap();
    let p = plan(&[Some("alpha"), Some("beta")], 10);
    let names: Vec<Option<String>> = p.commitments().into_keys().collect();
    let resolve = || resolve_chains(&names, &da, &spec(&sa), Some(&dir.join("chains.toml"))).unwrap();
    approve(&sa, &da, &p, Some("alpha"));
    let before = (std::fs::read(&sa).unwrap(), std::fs::read(&sb).unwrap());
    let e = pay_plan(&p, resolve(), &PayOptions::default(), &mut Quiet).unwrap_err();
    let reasons = e.reasons();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with("chain \"beta\"") && reasons[0].contains("is not approved on chain 10"),
        "{reasons:?}"
    );
    assert_eq!(before, (std::fs::read(&sa).unwrap(), std::fs::read(&sb).unwrap()), "nothing sent on either chain");
    // A chain name no chains file defines is refused before any chain is contacted.
    let e = resolve_chains(&[Some("gamma".into())], &da, &spec(&sa), Some(&dir.join("chains.toml"))).unwrap_err();
    assert!(e.to_string().contains("\"gamma\""), "{e}");
    approve(&sb, &db, &p, Some("beta"));
    let paid = pay_plan(&p, resolve(), &PayOptions::default(), &mut Quiet).unwrap();
    assert_eq!(paid.len(), 2);
    let total: U256 = paid.iter().map(|c| c.reconciliation.as_ref().unwrap().paid).sum();
    assert_eq!(total, p.total.units(), "paid = approved across the chains");
    assert!(paid.iter().all(|c| c.reconciliation.as_ref().unwrap().remainder.is_zero()));
    let again = pay_plan(&p, resolve(), &PayOptions::default(), &mut Quiet).unwrap();
    assert!(again.iter().all(|c| c.report.batches.is_empty()), "a second run sends nothing");
    // A dry run of an unpaid approved plan estimates and sends nothing.
    let q = plan(&[Some("alpha")], 3);
    approve(&sa, &da, &q, Some("alpha"));
    let names_q = vec![Some("alpha".to_string())];
    let t = resolve_chains(&names_q, &da, &spec(&sa), Some(&dir.join("chains.toml"))).unwrap();
    let before = std::fs::read(&sa).unwrap();
    let dry = pay_plan(&q, t, &PayOptions { dry_run: true, ..Default::default() }, &mut Quiet).unwrap();
    assert_eq!(dry[0].report.batches.len(), 1);
    assert!(dry[0].report.batches[0].tx_hash.is_none() && dry[0].report.batches[0].gas_used > 0);
    assert_eq!(std::fs::read(&sa).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A SQLite governance store (system-clock kind, on a manual clock from t = 1,000) in which two of three holders
/// approve `digest` by signed votes.
fn store_approving(path: &Path, digest: alloy_primitives::B256) -> allonet_store::Store {
    store_with(path, digest, false)
}

/// [`store_approving`], as a rehearsal database (caller-chosen times) when `rehearsal` is set.
fn store_with(path: &Path, digest: alloy_primitives::B256, rehearsal: bool) -> allonet_store::Store {
    use allonet_engine::offchain::{init_event, pass, NewDao};
    let keys: Vec<PrivateKeySigner> =
        (1u8..=4).map(|i| PrivateKeySigner::from_bytes(&alloy_primitives::B256::repeat_byte(i)).unwrap()).collect();
    let clock = std::sync::Arc::new(allonet_governance::ManualClock::at(1_000));
    let mut s = allonet_store::Store::open_with_clock(path, clock.clone()).unwrap();
    let operator = keys[3].clone();
    s.set_operator(operator.clone()).unwrap();
    let dao = NewDao {
        params: GovParams {
            voting_delay: 0,
            voting_period: 100,
            proposal_threshold: 0,
            quorum_percent: 4,
            timelock_delay: 10,
            grace_period: 1_000,
        },
        power: PowerConfig { strategy: Strategy::Token, sybil: None },
        guardian: keys[0].address(),
        holders: keys[..3].iter().map(|k| (k.address(), 100)).collect(),
        chain_id: 1,
        rehearsal,
        salt: None,
    };
    s.submit(&init_event(dao, &operator, 1_000).unwrap()).unwrap();
    let actions = vec![Action::ApprovePayoutPlan { digest }];
    let clock = (!rehearsal).then_some(&*clock);
    pass(&mut s, clock, &keys[0], &keys[..2], actions, "pay").unwrap();
    s
}

#[test]
fn decision_records_are_checked_against_the_store_and_the_plan() {
    let dir = tmp("decision");
    let p = plan(&[None], 5);
    let store = store_approving(&dir.join("dao.db"), p.digest.0);
    let d = decision_record(&store, p.digest).unwrap();
    assert_eq!((d.votes_for.as_str(), d.audit_seq), ("200", 6));
    check_decision(&store, &d, &p, store.now()).unwrap();
    let refused = |d: &allonet_engine::govern::Decision, p: &PayoutPlan, s: &allonet_store::Store| {
        check_decision(s, d, p, 2_000).unwrap_err().reasons().join(" | ")
    };
    // Another plan.
    let other = plan(&[None], 6);
    assert!(refused(&d, &other, &store).contains("not this plan"));
    assert!(decision_record(&store, other.digest).unwrap_err().to_string().contains("no executed proposal"));
    // An edited tally, re-hashed: the record's own digest passes, the store disagrees.
    let mut forged = d.clone();
    forged.votes_for = "300".into();
    assert!(refused(&forged, &p, &store).contains("edited"));
    forged.digest = allonet_core::digest(&serde_json::json!({}));
    assert!(refused(&forged, &p, &store).contains("tally differs"));
    // A store where the same plan was never approved.
    let unrelated = store_approving(&dir.join("other.db"), other.digest.0);
    let r = refused(&d, &p, &unrelated);
    assert!(r.contains("does not record proposal") || r.contains("not in this governance store"), "{r}");
    // A rehearsal database (its clock is the caller's) is no source of decisions.
    let rehearsal = store_with(&dir.join("rehearsal.db"), p.digest.0, true);
    let d2 = decision_record(&rehearsal, p.digest).unwrap();
    assert!(refused(&d2, &p, &rehearsal).contains("rehearsal"));
    // A rewritten audit entry breaks the check.
    store
        .connection()
        .execute("UPDATE events SET payload = replace(payload, '\"pay\"', '\"PAY\"') WHERE seq = 2", [])
        .unwrap();
    assert!(refused(&d, &p, &store).contains("audit log is broken at entry #2"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_agent_queues_only_within_the_standing_caps() {
    let dir = tmp("queue");
    let (state, dep) = deployed(&dir, "a", 31_337);
    let d = allonet_engine::connect::DeploymentFile::load(&dep).unwrap().deployment;
    let (mut conn, _) = connect(&spec(&state), None).unwrap();
    let c = conn.chain();
    let p = plan(&[None], 6); // 6,000,015 units
    let cm = commitment(&p, None).unwrap();
    // Caps at 0: refused, and the message says where such a plan must go.
    let e = queue_under_caps(c, &d, d.agent, &cm).unwrap_err().reasons().join(" | ");
    assert!(e.contains("exceed what the agent may still queue") && e.contains("on-chain proposal"), "{e}");
    let owner = d.deployer;
    transact(
        c,
        owner,
        d.allocator,
        &AIAllocator::setCapsCall { epochCap_: U256::from(7_000_000u64), recipientCap_: U256::from(1_000_002u64) },
    )
    .unwrap();
    transact(c, owner, d.allocator, &AIAllocator::setVetoDelayCall { vetoDelay_: 3_600 }).unwrap();
    let e = queue_under_caps(c, &d, d.agent, &cm).unwrap_err().reasons().join(" | ");
    assert!(e.contains("not in the recipient registry"), "{e}");
    let rs: Vec<_> = p.payments.iter().map(|x| x.recipient.0).collect();
    transact(c, owner, d.allocator, &AIAllocator::setRecipientsCall { recipients: rs, allowed: true }).unwrap();
    let e = queue_under_caps(c, &d, d.agent, &cm).unwrap_err().reasons().join(" | ");
    assert!(e.contains("per-recipient cap leaves 1000002"), "{e}");
    transact(
        c,
        owner,
        d.allocator,
        &AIAllocator::setCapsCall { epochCap_: U256::from(7_000_000u64), recipientCap_: U256::from(2_000_000u64) },
    )
    .unwrap();
    let e = queue_under_caps(c, &d, owner, &cm).unwrap_err().reasons().join(" | ");
    assert!(e.contains("is not the allocator's agent"), "{e}");
    let q = queue_under_caps(c, &d, d.agent, &cm).unwrap();
    let now = c.timestamp().unwrap();
    assert_eq!((q.onchain.status, q.onchain.payable_at), ("queued", now + 3_600));
    assert!(queue_under_caps(c, &d, d.agent, &cm).unwrap_err().to_string().contains("already queued"));
    conn.save().unwrap();
    // Queued, not approved: paying needs the decision it was queued under, and the veto window to pass.
    let t = resolve_chains(&[None], &dep, &spec(&state), None).unwrap();
    let e = check_all(&p, t, &PayOptions::default()).err().unwrap().reasons().join(" | ");
    assert!(e.contains("veto window"), "{e}");
    let mut e2 = Embedded::open(&state).unwrap();
    e2.warp(3_600);
    e2.save().unwrap();
    let t = resolve_chains(&[None], &dep, &spec(&state), None).unwrap();
    let e = check_all(&p, t, &PayOptions::default()).err().unwrap().reasons().join(" | ");
    assert!(e.contains("queued by the agent, not approved on chain"), "{e}");
    let t = resolve_chains(&[None], &dep, &spec(&state), None).unwrap();
    let paid =
        pay_plan(&p, t, &PayOptions { require_decision_for_queued: false, ..Default::default() }, &mut Quiet).unwrap();
    assert_eq!(paid[0].reconciliation.as_ref().unwrap().paid, p.total.units());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_deployment_resumes_from_its_journal_file() {
    let dir = tmp("journal");
    let state = dir.join("chain.json");
    let out = dir.join("dep.json");
    let mut s = DeploySpec {
        asset: Asset::NewToken { symbol: "USDC".into(), decimals: 6, supply: U256::from(1_000u64) },
        agent: None,
        guardian: None,
        holders: None,
        epoch_length: 86_400,
        fund: U256::from(5_000u64),
        voting_delay: 1,
        voting_period: 10,
        quorum_percent: 4,
        timelock_delay: 60,
        keep_owner: false,
    };
    let (mut conn, endpoint) = connect(&spec(&state), None).unwrap();
    let e = deploy(&mut conn, endpoint.clone(), &s, &out).unwrap_err();
    assert!(e.to_string().contains("fund the allocator"), "{e}");
    assert!(journal_path(&out).exists() && !out.exists());
    drop(conn);
    let journal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(journal_path(&out)).unwrap()).unwrap();
    let allocator = journal["journal"]["created"]["AIAllocator"].as_str().unwrap().to_string();
    s.fund = U256::from(500u64);
    let (mut conn, endpoint) = connect(&spec(&state), None).unwrap();
    let block = conn.chain().block_number().unwrap();
    let (file, steps) = deploy(&mut conn, endpoint, &s, &out).unwrap();
    assert_eq!(
        file.deployment.allocator,
        allocator.parse::<alloy_primitives::Address>().unwrap(),
        "the same allocator, not a second one"
    );
    assert_eq!(conn.chain().block_number().unwrap(), block + 1, "only the funding was sent");
    assert_eq!(steps.last().unwrap().what, "fund the allocator");
    assert!(out.exists() && !journal_path(&out).exists());
    // A journal of another chain is refused.
    std::fs::write(
        journal_path(&out),
        r#"{"schema":"allonet.deploy-journal/1","chain_id":5,"journal":{"steps":[],"created":{},"from_block":0}}"#,
    )
    .unwrap();
    let (mut conn, endpoint) = connect(&spec(&state), None).unwrap();
    assert!(deploy(&mut conn, endpoint, &s, &out).unwrap_err().to_string().contains("not this chain"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_key_and_plan_files_are_refused_clearly() {
    let dir = tmp("bad");
    std::fs::write(dir.join("k.json"), "{\"address\": \"0x12\"}").unwrap();
    let e = allonet_engine::keys::load_key_file(&dir.join("k.json")).unwrap_err().to_string();
    assert!(e.contains("k.json"), "{e}");
    let e = EngineError::Refused(vec!["a".into(), "b".into()]).to_string();
    assert_eq!(e, "refused, nothing sent:\n  - a\n  - b");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_rehearsed_money_path_pays_exactly_what_governance_approved() {
    let dir = tmp("rehearsal");
    let contributions = (0..40)
        .map(|i| Contribution { donor: format!("d{i}"), project: format!("p{}", i % 5), amount: 1.0 + (i % 7) as f64 })
        .collect();
    let inputs = RoundInputs { contributions, sybil_scores: None, clusters: None, trust: None };
    let config = RoundConfig {
        mechanism: Mechanism::Qf,
        token: Token::new("USDC", 6),
        pool: TokenAmount(U256::from(10_000_000_000u64)),
        cap: None,
        fill: true,
        sybil: None,
        min_gift: 0.0,
    };
    let r = run_round(&inputs, &config).unwrap();
    let p = plan(&[None], 1);
    let mut store = store_approving(&dir.join("dao.db"), p.digest.0);
    let before = store.len();
    let m = allonet_engine::rehearsal::money_path(&r, &dir, &mut store, 2_000).unwrap();
    assert_eq!(m.status.state, "Executed");
    assert_eq!(m.governance.len(), 6);
    assert_eq!(m.early_execute, "TimelockUnexpectedOperationState");
    let rec = m.payout.reconciliation.as_ref().unwrap();
    assert_eq!((rec.paid, rec.remainder), (m.plan.total.units(), U256::ZERO));
    assert_eq!(m.plan.total.units(), U256::from(10_000_000_000u64), "the whole pool, exactly");
    assert_eq!((m.again_already_paid, m.resent_revert.as_str()), (m.batches, "BatchAlreadyPaid"));
    assert_eq!(m.unapproved_revert, "PlanNotPayable");
    assert!(m.unapproved_refused.contains("not approved"));
    assert_eq!(m.paused_refusal, "the allocator is paused");
    assert_eq!(m.audit_entries, before + 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lines_outside_a_rounds_digest_never_reach_a_plan() {
    let contributions =
        (0..12).map(|i| Contribution { donor: format!("d{i}"), project: format!("p{}", i % 2), amount: 2.0 }).collect();
    let inputs = RoundInputs { contributions, sybil_scores: None, clusters: None, trust: None };
    let config = RoundConfig {
        mechanism: Mechanism::Qf,
        token: Token::new("USDC", 6),
        pool: TokenAmount(U256::from(1_000_000u64)),
        cap: None,
        fill: true,
        sybil: None,
        min_gift: 0.0,
    };
    let r = run_round(&inputs, &config).unwrap();
    let mut file = ResultFile::new("round", &serde_json::json!({}), r.input_digest, r.output_digest, &r).unwrap();
    // An extra field the round's digest does not cover, which sorts before `lines`.
    file.result["a_lines"] = serde_json::json!([{"project": "attacker", "amount": "999999999"}]);
    let book =
        [("p0", 0u64), ("p1", 1), ("attacker", 9)].iter().map(|(p, i)| (p.to_string(), (who(*i), None))).collect();
    let p = plan_from_result(&file, "r.json", &book, 200).unwrap();
    assert!(p.payments.iter().all(|x| x.label.as_deref() != Some("attacker")));
    assert_eq!(p.total.units(), U256::from(1_000_000u64));
}
