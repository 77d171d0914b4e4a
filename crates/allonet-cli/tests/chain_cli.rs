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

/// `allonet payout plan.json --chains FILE ARGS…` in `dir`, with the dev key for the default and the
/// alpha chain's `key_env`.
fn multi_chain_payout(dir: &Path, chains: &str, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["payout", "plan.json", "--chains", chains])
        .args(args)
        .current_dir(dir)
        .env("ALLONET_KEY", DEV_KEYS[0])
        .env("ALPHA_KEY", DEV_KEYS[0]);
    c
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

#[test]
fn embedded_deploy_plan_pay_status_export() {
    let dir = tmp("embedded");
    ok(&dir, &["chain", "deploy", "--embedded", "--state", "chain.json", "--recipient-cap", "30", "-o", "dep.json"]);
    write_payments(&dir.join("pays.csv"), 25, None);
    ok(&dir, &["chain", "plan", "--payments", "pays.csv", "--token", "USDC", "--decimals", "6", "-o", "plan.json"]);
    // Recipient 24 wants 25.000025 USDC; a cap of 20 refuses the whole plan and sends nothing.
    write_payments(&dir.join("big.csv"), 31, None);
    ok(&dir, &["chain", "plan", "--payments", "big.csv", "-o", "big.json"]);
    let before = std::fs::read(dir.join("chain.json")).unwrap();
    let err = fails(&dir, &["payout", "big.json", "--deployment", "dep.json"]);
    assert!(err.contains("payout refused, nothing sent") && err.contains("per-recipient cap leaves 30000000"), "{err}");
    assert_eq!(std::fs::read(dir.join("chain.json")).unwrap(), before, "state unchanged");
    // An edited plan is refused.
    let text = std::fs::read_to_string(dir.join("plan.json")).unwrap().replacen("\"1000001\"", "\"9000001\"", 1);
    std::fs::write(dir.join("edited.json"), text).unwrap();
    let err = fails(&dir, &["payout", "edited.json", "--deployment", "dep.json"]);
    assert!(err.contains("the file was edited after it was made") || err.contains("payments sum to"), "{err}");
    let skip = recipient(0).to_string();
    let out = ok(
        &dir,
        &[
            "payout",
            "plan.json",
            "--deployment",
            "dep.json",
            "--max-batch",
            "10",
            "--skip",
            &skip,
            "--html",
            "pay.html",
        ],
    );
    let html = std::fs::read_to_string(dir.join("pay.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("batch 2 · 4 recipients") && html.contains(&format!("skipped: {skip}"))
    );
    assert!(out.contains("paid now 324.000324 USDC to 24 recipients"), "{out}");
    assert!(out.contains("matches the plan: true"), "{out}");
    let out = ok(&dir, &["payout", "plan.json", "--deployment", "dep.json"]);
    assert!(out.contains("paid now 1.000001 USDC to 1 recipients (24 already paid before this run)"), "{out}");
    let out = ok(&dir, &["payout", "plan.json", "--deployment", "dep.json"]);
    assert!(out.contains("nothing to send"), "{out}");
    let out = ok(&dir, &["chain", "status", "--deployment", "dep.json", "--plan", "plan.json", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["plan_status"]["paid_recipients"], 25);
    assert_eq!(v["plan_status"]["batches"], 4);
    ok(
        &dir,
        &[
            "chain",
            "export-safe",
            "plan.json",
            "--safe",
            "0x000000000000000000000000000000000000dEaD",
            "--deployment",
            "dep.json",
            "-o",
            "batch.json",
        ],
    );
    let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("batch.json")).unwrap()).unwrap();
    assert_eq!(b["version"], "1.0");
    assert_eq!(b["chainId"], "31337");
    assert_eq!(b["transactions"].as_array().unwrap().len(), 25);
    assert_eq!(b["transactions"][0]["contractMethod"]["name"], "transfer");
    assert_eq!(b["transactions"][0]["contractInputsValues"]["value"], "1000001");
    // Governance tokens to the DAO's holders, not the deployer.
    let (h1, h2) = (recipient(7001), recipient(7002));
    std::fs::write(dir.join("holders.csv"), format!("address,amount\n{h1},600000\n{h2},400000.5\n")).unwrap();
    ok(
        &dir,
        &["chain", "deploy", "--embedded", "--state", "gov.json", "--holders", "holders.csv", "-o", "gov-dep.json"],
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("gov-dep.json")).unwrap()).unwrap();
    let gov: Address = v["gov_token"].as_str().unwrap().parse().unwrap();
    let mut c = allonet_chain::Embedded::open(&dir.join("gov.json")).unwrap();
    let e18 = U256::from(10u64).pow(U256::from(18));
    let bal = |c: &mut allonet_chain::Embedded, a| {
        read(c, gov, &allonet_chain::contracts::AlloToken::balanceOfCall { account: a }).unwrap()
    };
    assert_eq!(bal(&mut c, h1), U256::from(600_000u64) * e18);
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
    let url = node.url();
    ok(&dir, &["chain", "deploy", "--rpc", &url, "--chain-id", "31337", "--recipient-cap", "1000", "-o", "dep.json"]);
    write_payments(&dir.join("pays.csv"), 500, None);
    ok(&dir, &["chain", "plan", "--payments", "pays.csv", "-o", "plan.json"]);
    let (allocator, asset, _, from_block) = deployment(&dir, "dep.json");
    let signer = allonet_chain::rpc::signer_from_hex(DEV_KEYS[0]).unwrap();
    let mut chain = Rpc::connect(&url, Some(31_337), vec![signer]).unwrap();
    let batches = |chain: &mut Rpc| {
        chain
            .logs(&LogFilter {
                address: allocator,
                topic0: vec![AIAllocator::BatchPaid::SIGNATURE_HASH],
                topic1: None,
                from_block,
                ..Default::default()
            })
            .unwrap()
            .len()
    };
    // 25 batches of 20, 200 ms apart: kill the process after the third has landed.
    let mut child = Command::new(bin())
        .args(["payout", "plan.json", "--deployment", "dep.json", "--max-batch", "20", "--interval-ms", "200"])
        .current_dir(&dir)
        .env("ALLONET_KEY", DEV_KEYS[0])
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
    let out = ok(&dir, &["payout", "plan.json", "--deployment", "dep.json", "--max-batch", "20"]);
    assert!(out.contains(&format!("({} already paid before this run)", landed * 20)), "{out}");
    assert!(out.contains("matches the plan: true"), "{out}");
    assert_paid_once(&mut chain, allocator, asset, from_block, &(0..500).collect::<Vec<_>>());
    let out = ok(&dir, &["payout", "plan.json", "--deployment", "dep.json"]);
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
    ok(&dir, &["chain", "deploy", "--rpc", &a.url(), "--chain-id", "31337", "-o", "alpha.json"]);
    ok(&dir, &["chain", "deploy", "--rpc", &b.url(), "--chain-id", "31338", "-o", "beta.json"]);
    let config = format!(
        "[chains.alpha]\nrpc = \"{}\"\nchain_id = 31337\ndeployment = \"alpha.json\"\nkey_env = \"ALPHA_KEY\"\n\n[chains.beta]\nrpc = \"{}\"\nchain_id = 31338\ndeployment = \"beta.json\"\n",
        a.url(),
        b.url()
    );
    std::fs::write(dir.join("chains.toml"), &config).unwrap();
    write_payments(&dir.join("pays.csv"), 120, Some(&["alpha", "beta"]));
    ok(&dir, &["chain", "plan", "--payments", "pays.csv", "-o", "plan.json"]);
    // A config whose chain id disagrees with the node is refused before anything is sent.
    std::fs::write(dir.join("wrong.toml"), config.replace("chain_id = 31338", "chain_id = 10")).unwrap();
    let o = multi_chain_payout(&dir, "wrong.toml", &[]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("but chain 10 was expected"), "{err}");
    let (alpha_allocator, _, _, alpha_from) = deployment(&dir, "alpha.json");
    let signer = allonet_chain::rpc::signer_from_hex(DEV_KEYS[0]).unwrap();
    let mut alpha = Rpc::connect(&a.url(), Some(31_337), vec![signer]).unwrap();
    let sent = alpha
        .logs(&LogFilter {
            address: alpha_allocator,
            topic0: vec![AIAllocator::BatchPaid::SIGNATURE_HASH],
            topic1: None,
            from_block: alpha_from,
            ..Default::default()
        })
        .unwrap();
    assert!(sent.is_empty(), "nothing was paid on alpha when beta was misconfigured");
    // Kill the multi-chain payout while it is still on the first chain, then re-run it.
    let mut child = multi_chain_payout(&dir, "chains.toml", &["--max-batch", "10", "--interval-ms", "200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = alpha
            .logs(&LogFilter {
                address: alpha_allocator,
                topic0: vec![AIAllocator::BatchPaid::SIGNATURE_HASH],
                from_block: alpha_from,
                ..Default::default()
            })
            .unwrap()
            .len();
        if n >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no batches landed on alpha");
        assert!(child.try_wait().unwrap().is_none(), "payout ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let o = multi_chain_payout(&dir, "chains.toml", &["--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<_> =
        v["chains"].as_array().unwrap().iter().map(|c| c["chain"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    let resumed = v["chains"][0]["report"]["already_paid"].as_u64().unwrap();
    assert!((20..60).contains(&resumed), "alpha resumed after {resumed} payments");
    assert_eq!(v["chains"][1]["report"]["already_paid"], 0);
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
    let o = multi_chain_payout(&dir, "chains.toml", &[]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("nothing to send").count(), 2, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
