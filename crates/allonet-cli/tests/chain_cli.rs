//! `allonet chain` and `allonet payout` end to end: the embedded EVM, and real anvil nodes installed from npm
//! (killed mid-payout, re-run; two chains with different ids for one plan).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use allonet_chain::anvil::{anvil_binary, Anvil, DEV_KEYS};
use allonet_chain::contracts::{AIAllocator, PayToken};
use allonet_chain::{read, Chain, LogFilter, Rpc};
use alloy_primitives::{keccak256, Address, U256};
use alloy_sol_types::SolEvent;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_allonet")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allonet-chain-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin()).args(args).current_dir(dir).env("ALLONET_KEY", DEV_KEYS[0]).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "allonet {args:?} failed:\n{text}");
    text
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "allonet {args:?} should have failed:\n{text}");
    text
}

fn recipient(i: u64) -> Address {
    Address::from_word(keccak256((i + 1_000_000).to_be_bytes()))
}

/// `recipient,amount[,chain]` with amounts `1.000001 × (i+1)` USDC.
fn write_payments(path: &Path, n: u64, chains: Option<&[&str]>) {
    let mut s = String::from(if chains.is_some() { "recipient,amount,chain\n" } else { "recipient,amount\n" });
    for i in 0..n {
        let amount = format!("{}.{:06}", i + 1, i + 1);
        match chains {
            Some(c) => s.push_str(&format!("{},{amount},{}\n", recipient(i), c[(i as usize) % c.len()])),
            None => s.push_str(&format!("{},{amount}\n", recipient(i))),
        }
    }
    std::fs::write(path, s).unwrap();
}

fn units(i: u64) -> U256 {
    U256::from((i + 1) * 1_000_000 + (i + 1))
}

fn deployment(dir: &Path, file: &str) -> (Address, Address, Address, u64) {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
    let a = |k: &str| v[k].as_str().unwrap().parse::<Address>().unwrap();
    (a("allocator"), a("asset"), a("agent"), v["from_block"].as_u64().unwrap())
}

/// Every recipient holds exactly its amount, and each was paid by exactly one FundsAllocated event.
fn assert_paid_once(chain: &mut Rpc, allocator: Address, asset: Address, from_block: u64, ids: &[u64]) {
    let logs = chain
        .logs(&LogFilter {
            address: allocator,
            topic0: vec![AIAllocator::FundsAllocated::SIGNATURE_HASH],
            topic1: None,
            topic2: None,
            from_block,
            ..Default::default()
        })
        .unwrap();
    let mut count = std::collections::BTreeMap::new();
    for l in &logs {
        let ev = l.decode::<AIAllocator::FundsAllocated>().unwrap();
        *count.entry(ev.recipient).or_insert(0) += 1;
    }
    assert_eq!(logs.len(), ids.len(), "one payment event per recipient");
    for &i in ids {
        assert_eq!(count.get(&recipient(i)), Some(&1), "recipient {i} paid once");
        let bal = read(chain, asset, &PayToken::balanceOfCall { account: recipient(i) }).unwrap();
        assert_eq!(bal, units(i), "recipient {i} holds its amount");
    }
}

/// Write anvil's dev keys 0..6 as key files (`k0.json` …) in `dir`: deployer, agent, guardian, three holders.
fn key_files(dir: &Path) {
    for (i, k) in DEV_KEYS.iter().enumerate() {
        let s = allonet_chain::rpc::signer_from_hex(k).unwrap();
        let body =
            serde_json::json!({"address": s.address().to_checksum(None), "private_key": k.trim_start_matches("0x")});
        std::fs::write(dir.join(format!("k{i}.json")), body.to_string()).unwrap();
    }
}

fn dev(i: usize) -> Address {
    allonet_chain::rpc::signer_from_hex(DEV_KEYS[i]).unwrap().address()
}

/// `chain deploy` on an anvil node: dev accounts 1 and 2 as agent and guardian, `holders.csv` as holders, a short
/// vote and timelock for the tests.
fn rpc_deploy(dir: &Path, url: &str, chain_id: &str, out: &str) {
    let (agent, guardian) = (dev(1).to_string(), dev(2).to_string());
    let args = ["chain", "deploy", "--rpc", url, "--chain-id", chain_id, "--agent", &agent, "--guardian", &guardian];
    let rest = ["--holders", "holders.csv", "--voting-period", "5", "--timelock-delay", "60", "-o", out];
    ok(dir, &[&args[..], &rest[..]].concat());
}

/// `allonet` with ALLONET_KEY set to dev key `key`.
fn ok_as(dir: &Path, key: usize, args: &[&str]) -> String {
    let o = Command::new(bin()).args(args).current_dir(dir).env("ALLONET_KEY", DEV_KEYS[key]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "allonet {args:?} failed:\n{text}");
    text
}

/// Pass an on-chain proposal through the CLI: holders k3, k4 (by signature, relayed by k0) and k5 (against)
/// vote, then queue, the timelock, execute. `extra` are the proposal's action flags. Returns the proposal id.
fn approve_onchain(dir: &Path, dep: &str, extra: &[&str], blocks: &str, delay: &str) -> String {
    let mut args = vec!["gov", "propose", "--onchain", "--deployment", dep, "--key", "k3.json", "--description"];
    let desc = format!("approve via {dep} {extra:?}");
    args.push(&desc);
    args.extend_from_slice(extra);
    let out = ok(dir, &args);
    let id = out.lines().next().unwrap().trim_start_matches("proposal ").to_string();
    ok(dir, &["chain", "advance", "--deployment", dep, "--blocks", "2"]);
    ok(
        dir,
        &["gov", "vote", "--onchain", "--deployment", dep, "--key", "k3.json", "--proposal", &id, "--support", "for"],
    );
    let v = ok(
        dir,
        &[
            "gov",
            "vote",
            "--onchain",
            "--deployment",
            dep,
            "--key",
            "k4.json",
            "--by-sig",
            "--relayer-key",
            "k0.json",
            "--proposal",
            &id,
            "--support",
            "for",
        ],
    );
    assert!(v.contains("EIP-712 signature relayed by"), "{v}");
    ok(
        dir,
        &[
            "gov",
            "vote",
            "--onchain",
            "--deployment",
            dep,
            "--key",
            "k5.json",
            "--proposal",
            &id,
            "--support",
            "against",
        ],
    );
    ok(dir, &["chain", "advance", "--deployment", dep, "--blocks", blocks]);
    ok(dir, &["gov", "queue", "--onchain", "--deployment", dep, "--key", "k0.json", "--proposal", &id]);
    let early =
        fails(dir, &["gov", "execute", "--onchain", "--deployment", dep, "--key", "k0.json", "--proposal", &id]);
    assert!(early.contains("TimelockUnexpectedOperationState"), "{early}");
    ok(dir, &["chain", "advance", "--deployment", dep, "--seconds", delay]);
    let out = ok(dir, &["gov", "execute", "--onchain", "--deployment", dep, "--key", "k0.json", "--proposal", &id]);
    assert!(out.contains("now Executed"), "{out}");
    id
}

#[test]
fn embedded_governed_payouts_from_the_cli() {
    let dir = tmp("embedded");
    key_files(&dir);
    let out = ok(&dir, &["chain", "deploy", "--embedded", "--state", "chain.json", "-o", "dep.json"]);
    assert!(out.contains("roles read back and checked") && dir.join("keys/holder1.json").exists(), "{out}");
    // The scenario: 2 × 40,000 USDC to addresses nobody approved is refused, and nothing changes.
    std::fs::write(dir.join("two.csv"), format!("recipient,amount\n{},40000\n{},40000\n", recipient(1), recipient(2)))
        .unwrap();
    ok(&dir, &["chain", "plan", "--payments", "two.csv", "-o", "two.json"]);
    let before = std::fs::read(dir.join("chain.json")).unwrap();
    let err = fails(&dir, &["payout", "two.json", "--deployment", "dep.json"]);
    assert!(err.contains("refused, nothing sent") && err.contains("is not approved on chain 31337"), "{err}");
    assert_eq!(std::fs::read(dir.join("chain.json")).unwrap(), before, "state file unchanged");

    write_payments(&dir.join("pays.csv"), 25, None);
    ok(&dir, &["chain", "plan", "--payments", "pays.csv", "--batch-size", "10", "-o", "plan.json"]);
    // An edited plan is refused before anything else.
    let text = std::fs::read_to_string(dir.join("plan.json")).unwrap().replacen("\"1000001\"", "\"9000001\"", 1);
    std::fs::write(dir.join("edited.json"), text).unwrap();
    let err = fails(&dir, &["payout", "edited.json", "--deployment", "dep.json"]);
    assert!(err.contains("the file was edited after it was made") || err.contains("payments sum to"), "{err}");
    approve_onchain(
        &dir,
        "dep.json",
        &["--approve-plan", "plan.json", "--caps", "100,30", "--registry", "pays.csv", "--veto-delay", "3600"],
        "50",
        "172800",
    );
    let st = ok(&dir, &["gov", "status", "--onchain", "--deployment", "dep.json", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(v[0]["status"]["state"], "Executed");
    assert_eq!(v[0]["status"]["votes_for"], "750000000000000000000000");
    // Approved: the agent pays it, once.
    let out = ok(&dir, &["payout", "plan.json", "--deployment", "dep.json", "--html", "pay.html"]);
    assert!(out.contains("paid now 325.000325 USDC to 25 recipients"), "{out}");
    assert!(
        out.contains("reconciled from events: paid 325.000325 of 325.000325 approved to 25 recipients, remainder 0"),
        "{out}"
    );
    let html = std::fs::read_to_string(dir.join("pay.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("batch 2 · 5 recipients"), "report");
    let out = ok(&dir, &["payout", "plan.json", "--deployment", "dep.json"]);
    assert!(out.contains("nothing to send"), "{out}");
    let out = ok(&dir, &["chain", "status", "--deployment", "dep.json", "--plan", "plan.json", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["plan"]["paid_batches"].as_u64(), v["plan"]["batches"].as_u64()), (Some(3), Some(3)));
    assert_eq!(v["plan"]["onchain"]["status"], "approved");
    // The unapproved plan is still refused.
    fails(&dir, &["payout", "two.json", "--deployment", "dep.json"]);

    // Off-chain governance (signed votes in SQLite) approves a small plan; the agent queues it under the caps the
    // proposal above set, it waits out the veto window, and pays only with its decision checked.
    std::fs::write(
        dir.join("holders.csv"),
        format!("address,balance\n{},400\n{},350\n{},250\n", dev(3), dev(4), dev(5)),
    )
    .unwrap();
    ok(
        &dir,
        &[
            "gov",
            "init",
            "--db",
            "dao.db",
            "--holders",
            "holders.csv",
            "--guardian",
            &dev(2).to_string(),
            "--voting-delay",
            "0",
            "--voting-period",
            "3",
            "--timelock",
            "0",
        ],
    );
    std::fs::write(dir.join("small.csv"), format!("recipient,amount\n{},20\n{},30\n", recipient(3), recipient(4)))
        .unwrap();
    ok(&dir, &["chain", "plan", "--payments", "small.csv", "-o", "small.json"]);
    let digest = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(dir.join("small.json")).unwrap())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = ok(
        &dir,
        &[
            "gov",
            "propose",
            "--db",
            "dao.db",
            "--key",
            "k3.json",
            "--action",
            &format!("approve-plan:{digest}"),
            "--description",
            "small plan",
        ],
    );
    // A real DAO keeps the system clock (payouts take no decision from a rehearsal): voting opens the second after
    // the proposal and lasts 3 s, and the timelock is 0.
    let pid = out.lines().next().unwrap().trim_start_matches("proposal ").to_string();
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    for k in ["k3.json", "k4.json"] {
        ok(&dir, &["gov", "vote", "--db", "dao.db", "--key", k, "--proposal", &pid, "--support", "for"]);
    }
    std::thread::sleep(std::time::Duration::from_millis(3_100));
    ok(&dir, &["gov", "queue", "--db", "dao.db", "--key", "k5.json", "--proposal", &pid]);
    ok(&dir, &["gov", "execute", "--db", "dao.db", "--key", "k5.json", "--proposal", &pid]);
    ok(&dir, &["gov", "decision", "--db", "dao.db", "--plan", "small.json", "-o", "decision.json"]);
    // A decision pays only once its log is anchored on chain up to its head.
    let err = fails(
        &dir,
        &[
            "payout",
            "small.json",
            "--deployment",
            "dep.json",
            "--queue",
            "--decision",
            "decision.json",
            "--db",
            "dao.db",
        ],
    );
    assert!(err.contains("anchored no head"), "{err}");
    ok(&dir, &["gov", "audit", "anchor", "--db", "dao.db", "--deployment", "dep.json"]);
    // A decision for another plan does not queue this one.
    let err = fails(
        &dir,
        &["payout", "two.json", "--deployment", "dep.json", "--queue", "--decision", "decision.json", "--db", "dao.db"],
    );
    assert!(err.contains("approves plan") && err.contains("not this plan"), "{err}");
    let out = ok(
        &dir,
        &[
            "payout",
            "small.json",
            "--deployment",
            "dep.json",
            "--queue",
            "--decision",
            "decision.json",
            "--db",
            "dao.db",
        ],
    );
    assert!(out.contains("queued plan") && out.contains("payable from"), "{out}");
    let err = fails(
        &dir,
        &[
            "payout",
            "small.json",
            "--deployment",
            "dep.json",
            "--queue",
            "--decision",
            "decision.json",
            "--db",
            "dao.db",
        ],
    );
    assert!(err.contains("a decision queues its plan once"), "{err}");
    let err = fails(
        &dir,
        &["payout", "small.json", "--deployment", "dep.json", "--decision", "decision.json", "--db", "dao.db"],
    );
    assert!(err.contains("veto window"), "{err}");
    ok(&dir, &["chain", "advance", "--deployment", "dep.json", "--seconds", "3600"]);
    let err = fails(&dir, &["payout", "small.json", "--deployment", "dep.json"]);
    assert!(err.contains("queued by the agent, not approved on chain"), "{err}");
    let forged = std::fs::read_to_string(dir.join("decision.json"))
        .unwrap()
        .replace("\"votes_against\": \"0\"", "\"votes_against\": \"1\"");
    std::fs::write(dir.join("forged.json"), forged).unwrap();
    let err = fails(
        &dir,
        &["payout", "small.json", "--deployment", "dep.json", "--decision", "forged.json", "--db", "dao.db"],
    );
    assert!(err.contains("the decision record was edited"), "{err}");
    let out = ok(
        &dir,
        &["payout", "small.json", "--deployment", "dep.json", "--decision", "decision.json", "--db", "dao.db"],
    );
    assert!(out.contains("paid now 50 USDC to 2 recipients") && out.contains("appended to the audit log"), "{out}");
    let out = ok(&dir, &["gov", "audit", "verify", "--db", "dao.db"]);
    assert!(out.contains("8 entries verified"), "{out}");
    // The log's head goes on chain; the log checks against it.
    let out = ok(&dir, &["gov", "audit", "anchor", "--db", "dao.db", "--deployment", "dep.json"]);
    assert!(out.contains("anchored DAO") && out.contains("head #8"), "{out}");
    let out = ok(&dir, &["gov", "audit", "verify", "--db", "dao.db", "--anchor", "--deployment", "dep.json"]);
    assert!(out.contains("all 2 heads the operator wrote on chain match"), "{out}");
    assert!(out.contains("note: these anchors are on the embedded EVM"), "{out}");

    // The guardian vetoes a passed proposal in its timelock window; a stranger cannot.
    let out = ok(
        &dir,
        &[
            "gov",
            "propose",
            "--onchain",
            "--deployment",
            "dep.json",
            "--key",
            "k3.json",
            "--description",
            "veto me",
            "--approve-plan",
            "two.json",
        ],
    );
    let id = out.lines().next().unwrap().trim_start_matches("proposal ").to_string();
    ok(&dir, &["chain", "advance", "--deployment", "dep.json", "--blocks", "2"]);
    for k in ["k3.json", "k4.json"] {
        ok(
            &dir,
            &[
                "gov",
                "vote",
                "--onchain",
                "--deployment",
                "dep.json",
                "--key",
                k,
                "--proposal",
                &id,
                "--support",
                "for",
            ],
        );
    }
    ok(&dir, &["chain", "advance", "--deployment", "dep.json", "--blocks", "50"]);
    ok(&dir, &["gov", "queue", "--onchain", "--deployment", "dep.json", "--key", "k0.json", "--proposal", &id]);
    let err =
        fails(&dir, &["gov", "cancel", "--onchain", "--deployment", "dep.json", "--key", "k5.json", "--proposal", &id]);
    assert!(err.contains("AccessControlUnauthorizedAccount"), "{err}");
    let out = ok(
        &dir,
        &["gov", "cancel", "--onchain", "--deployment", "dep.json", "--key", "keys/guardian.json", "--proposal", &id],
    );
    assert!(out.contains("now Canceled"), "{out}");
    fails(&dir, &["payout", "two.json", "--deployment", "dep.json"]);

    // Safe exports: transfers from the Safe, or the Safe approving the plan on its allocator.
    let safe = "0x000000000000000000000000000000000000dEaD";
    ok(&dir, &["chain", "export-safe", "plan.json", "--safe", safe, "--deployment", "dep.json", "-o", "batch.json"]);
    let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("batch.json")).unwrap()).unwrap();
    assert_eq!((b["version"].as_str(), b["chainId"].as_str()), (Some("1.0"), Some("31337")));
    assert_eq!(b["transactions"].as_array().unwrap().len(), 25);
    assert_eq!(b["transactions"][0]["contractInputsValues"]["value"], "1000001");
    ok(
        &dir,
        &[
            "chain",
            "export-safe",
            "plan.json",
            "--safe",
            safe,
            "--deployment",
            "dep.json",
            "--via-allocator",
            "-o",
            "approve.json",
        ],
    );
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("approve.json")).unwrap()).unwrap();
    assert_eq!(b["transactions"][0]["contractMethod"]["name"], "approvePlan");
    assert_eq!(b["transactions"][0]["contractInputsValues"]["batches"], "3");

    // Governance tokens to the DAO's holders, not the deployer; a holders file with an address twice is refused.
    let (h1, h2) = (recipient(7001), recipient(7002));
    std::fs::write(dir.join("gh.csv"), format!("address,amount\n{h1},600000\n{h2},400000.5\n")).unwrap();
    ok(
        &dir,
        &[
            "chain",
            "deploy",
            "--embedded",
            "--state",
            "gov.json",
            "--agent",
            &dev(1).to_string(),
            "--guardian",
            &dev(2).to_string(),
            "--holders",
            "gh.csv",
            "-o",
            "gov-dep.json",
        ],
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("gov-dep.json")).unwrap()).unwrap();
    let gov: Address = v["gov_token"].as_str().unwrap().parse().unwrap();
    let mut c = allonet_chain::Embedded::open(&dir.join("gov.json")).unwrap();
    let e18 = U256::from(10u64).pow(U256::from(18));
    let bal = |c: &mut allonet_chain::Embedded, a| {
        read(c, gov, &allonet_chain::contracts::AlloToken::getVotesCall { account: a }).unwrap()
    };
    assert_eq!(bal(&mut c, h1), U256::from(600_000u64) * e18, "holders vote from the start (self-delegated)");
    assert_eq!(bal(&mut c, h2), U256::from(400_000u64) * e18 + e18 / U256::from(2));
    std::fs::write(dir.join("dup.csv"), format!("address,amount\n{h1},1\n{h1},2\n")).unwrap();
    let err = fails(
        &dir,
        &["chain", "deploy", "--embedded", "--state", "dup.json", "--holders", "dup.csv", "-o", "dup-dep.json"],
    );
    assert!(err.contains("dup.csv:3") && err.contains("listed twice"), "{err}");
    assert!(!dir.join("dup-dep.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn anvil_payout_killed_midway_then_rerun_pays_everyone_once() {
    let Some(anvil) = anvil_binary().unwrap() else {
        eprintln!("SKIP: npm is not installed, cannot install anvil");
        return;
    };
    let node = Anvil::start(&anvil, 31_337).unwrap();
    let dir = tmp("anvil");
    key_files(&dir);
    let url = node.url();
    std::fs::write(
        dir.join("holders.csv"),
        format!("address,amount\n{},400\n{},350\n{},250\n", dev(3), dev(4), dev(5)),
    )
    .unwrap();
    // On RPC the agent, the guardian and the holders must be named: defaults would hand them to the deployer.
    let err = fails(&dir, &["chain", "deploy", "--rpc", &url, "--chain-id", "31337", "-o", "dep.json"]);
    assert!(err.contains("--agent"), "{err}");
    rpc_deploy(&dir, &url, "31337", "dep.json");
    write_payments(&dir.join("pays.csv"), 500, None);
    ok(&dir, &["chain", "plan", "--payments", "pays.csv", "--batch-size", "20", "-o", "plan.json"]);
    approve_onchain(&dir, "dep.json", &["--approve-plan", "plan.json"], "6", "60");
    let (allocator, asset, _, from_block) = deployment(&dir, "dep.json");
    let signer = allonet_chain::rpc::signer_from_hex(DEV_KEYS[0]).unwrap();
    let mut chain = Rpc::connect(&url, Some(31_337), vec![signer]).unwrap();
    let batches = |chain: &mut Rpc| {
        chain
            .logs(&LogFilter {
                address: allocator,
                topic0: vec![AIAllocator::BatchPaid::SIGNATURE_HASH],
                topic1: None,
                topic2: None,
                from_block,
                ..Default::default()
            })
            .unwrap()
            .len()
    };
    // The deployer's key is not the agent's: refused before sending.
    let err = fails(&dir, &["payout", "plan.json", "--deployment", "dep.json"]);
    assert!(err.contains("neither the allocator's agent"), "{err}");
    // 25 batches of 20, 200 ms apart, sent by the agent: kill the process after the third has landed.
    let mut child = Command::new(bin())
        .args(["payout", "plan.json", "--deployment", "dep.json", "--interval-ms", "200"])
        .current_dir(&dir)
        .env("ALLONET_KEY", DEV_KEYS[1])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while batches(&mut chain) < 3 {
        assert!(Instant::now() < deadline, "no batches landed");
        assert!(child.try_wait().unwrap().is_none(), "payout ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let landed = batches(&mut chain);
    assert!((3..25).contains(&landed), "killed midway: {landed} batches");
    let out = ok_as(&dir, 1, &["payout", "plan.json", "--deployment", "dep.json"]);
    assert!(out.contains(&format!("({landed} batches paid before this run)")), "{out}");
    assert!(out.contains("remainder 0"), "{out}");
    assert_paid_once(&mut chain, allocator, asset, from_block, &(0..500).collect::<Vec<_>>());
    let out = ok_as(&dir, 1, &["payout", "plan.json", "--deployment", "dep.json"]);
    assert!(out.contains("nothing to send"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_plan_across_two_anvil_chains() {
    let Some(anvil) = anvil_binary().unwrap() else {
        eprintln!("SKIP: npm is not installed, cannot install anvil");
        return;
    };
    let (a, b) = (Anvil::start(&anvil, 31_337).unwrap(), Anvil::start(&anvil, 31_338).unwrap());
    let dir = tmp("multi");
    key_files(&dir);
    std::fs::write(
        dir.join("holders.csv"),
        format!("address,amount\n{},400\n{},350\n{},250\n", dev(3), dev(4), dev(5)),
    )
    .unwrap();
    for (node, id, out) in [(&a, "31337", "alpha.json"), (&b, "31338", "beta.json")] {
        rpc_deploy(&dir, &node.url(), id, out);
    }
    let config = format!(
        "[chains.alpha]\nrpc = \"{}\"\nchain_id = 31337\ndeployment = \"alpha.json\"\nkey_env = \"ALPHA_KEY\"\n\n[chains.beta]\nrpc = \"{}\"\nchain_id = 31338\ndeployment = \"beta.json\"\n",
        a.url(),
        b.url()
    );
    std::fs::write(dir.join("chains.toml"), &config).unwrap();
    write_payments(&dir.join("pays.csv"), 120, Some(&["alpha", "beta"]));
    ok(&dir, &["chain", "plan", "--payments", "pays.csv", "--batch-size", "10", "-o", "plan.json"]);
    let payout = |args: &[&str]| {
        let mut c = Command::new(bin());
        c.args(["payout", "plan.json"])
            .args(args)
            .current_dir(&dir)
            .env("ALLONET_KEY", DEV_KEYS[1])
            .env("ALPHA_KEY", DEV_KEYS[1]);
        c
    };
    // Approved on alpha only: the whole plan is refused before anything is sent on alpha.
    approve_onchain(&dir, "alpha.json", &["--approve-plan", "plan.json", "--chain", "alpha"], "6", "60");
    let o = payout(&["--chains", "chains.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success() && err.contains("chain \"beta\"") && err.contains("is not approved on chain 31338"),
        "{err}"
    );
    // beta's approval of alpha's part would not help either: each chain approves its own part.
    approve_onchain(&dir, "beta.json", &["--approve-plan", "plan.json", "--chain", "beta"], "6", "60");
    // A config whose chain id disagrees with the node is refused before anything is sent.
    std::fs::write(dir.join("wrong.toml"), config.replace("chain_id = 31338", "chain_id = 10")).unwrap();
    let o = payout(&["--chains", "wrong.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("but chain 10 was expected"), "{err}");
    let (alpha_allocator, _, _, alpha_from) = deployment(&dir, "alpha.json");
    let signer = allonet_chain::rpc::signer_from_hex(DEV_KEYS[0]).unwrap();
    let mut alpha = Rpc::connect(&a.url(), Some(31_337), vec![signer]).unwrap();
    let paid_batches = |alpha: &mut Rpc| {
        alpha
            .logs(&LogFilter {
                address: alpha_allocator,
                topic0: vec![AIAllocator::BatchPaid::SIGNATURE_HASH],
                from_block: alpha_from,
                ..Default::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(paid_batches(&mut alpha), 0, "nothing was paid on alpha while beta was refused");
    // Kill the multi-chain payout while it is still on the first chain, then re-run it.
    let mut child = payout(&["--chains", "chains.toml", "--interval-ms", "200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while paid_batches(&mut alpha) < 2 {
        assert!(Instant::now() < deadline, "no batches landed on alpha");
        assert!(child.try_wait().unwrap().is_none(), "payout ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let o = payout(&["--chains", "chains.toml", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<_> =
        v["chains"].as_array().unwrap().iter().map(|c| c["chain"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    let resumed = v["chains"][0]["report"]["already_paid"].as_u64().unwrap();
    assert!((2..6).contains(&resumed), "alpha resumed after {resumed} batches");
    assert_eq!(v["chains"][1]["report"]["already_paid"], 0);
    for c in v["chains"].as_array().unwrap() {
        assert_eq!(c["reconciliation"]["remainder"], "0");
    }
    for (node, file, chain_id, parity) in [(&a, "alpha.json", 31_337, 0), (&b, "beta.json", 31_338, 1)] {
        let (allocator, asset, _, from_block) = deployment(&dir, file);
        let signer = allonet_chain::rpc::signer_from_hex(DEV_KEYS[0]).unwrap();
        let mut chain = Rpc::connect(&node.url(), Some(chain_id), vec![signer]).unwrap();
        let ids: Vec<u64> = (0..120).filter(|i| i % 2 == parity).collect();
        assert_paid_once(&mut chain, allocator, asset, from_block, &ids);
        let other = if parity == 0 { 1 } else { 0 };
        let bal = read(&mut chain, asset, &PayToken::balanceOfCall { account: recipient(other) }).unwrap();
        assert_eq!(bal, U256::ZERO, "the other chain's recipients are not paid here");
    }
    let o = payout(&["--chains", "chains.toml"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("nothing to send").count(), 2, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_dao_configuration_is_checked_whole_with_located_errors() {
    let dir = tmp("config");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dao/allonet.toml");
    let out = ok(&dir, &["config", "check", example.to_str().unwrap()]);
    assert!(out.contains("10,000 USDC") && out.contains("is valid"), "{out}");
    let text = std::fs::read_to_string(&example).unwrap();
    std::fs::write(dir.join("bad.toml"), text.replace("\"2500\"", "\"2500.0000001\"")).unwrap();
    let err = fails(&dir, &["config", "check", "bad.toml"]);
    assert!(err.contains("bad.toml:16") && err.contains("agent.recipient_cap"), "{err}");
    std::fs::write(dir.join("bad.toml"), text.replace("governance = \"onchain\"", "governance = \"dictator\""))
        .unwrap();
    let err = fails(&dir, &["config", "check", "bad.toml"]);
    assert!(err.contains("bad.toml:5") && err.contains("dao.governance"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
