//! `allonet agent` as a user runs it: the example from `init` to a report, and SIGKILL at many points of an epoch
//! followed by a resume that ends in the same report bytes with one audit record.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn allonet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_allonet")).args(args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn fresh(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allonet-agent-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    ok(&allonet(&["agent", "init", d.to_str().unwrap(), "--example"]));
    d
}

/// `agent run DIR`, SIGKILLed after `at` (`Child::kill` sends SIGKILL).
fn run_killed_at(dir: &str, at: Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allonet"))
        .args(["agent", "run", dir])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(at);
    let _ = child.kill();
    child.wait().unwrap();
}

/// Audit records of epoch 1's report.
fn agent_records(dir: &Path) -> usize {
    let store = allonet_engine::models::open_governance(&dir.join("dao.db")).unwrap();
    store
        .entries()
        .unwrap()
        .iter()
        .filter(|e| e.payload.contains("agent_report") && e.payload.contains(r#"\"epoch\":1,"#))
        .count()
}

fn epoch_one_finished(dir: &str) -> bool {
    let st: serde_json::Value = serde_json::from_str(&ok(&allonet(&["agent", "status", dir, "--json"]))).unwrap();
    st.get(0).is_some_and(|e| e["next"].is_null())
}

#[test]
fn the_example_runs_an_epoch_and_reports_it() {
    let d = fresh("example");
    let dir = d.to_str().unwrap();
    let out = ok(&allonet(&["agent", "run", dir]));
    assert!(out.contains("epoch 1 · observe") && out.contains("epoch 1 · report"), "{out}");
    assert!(out.contains("3 plans"), "{out}");
    let st: serde_json::Value = serde_json::from_str(&ok(&allonet(&["agent", "status", dir, "--json"]))).unwrap();
    assert_eq!(st[0]["done"].as_array().unwrap().len(), 10);
    assert!(st[0]["next"].is_null());
    let r: serde_json::Value = serde_json::from_str(&ok(&allonet(&["agent", "report", dir, "--json"]))).unwrap();
    assert_eq!(r["schema"], "allonet.agent-report/1");
    assert_eq!(r["plans"].as_array().unwrap().len(), 3);
    let md = ok(&allonet(&["agent", "report", dir, "1"]));
    assert!(md.contains("## Plan per pool") && md.contains("| optimism |"), "{md}");
    let page = d.join("epoch1.html");
    ok(&allonet(&["agent", "report", dir, "1", "--html", page.to_str().unwrap()]));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg") && html.contains("Inputs") && html.contains("optimism"));
    assert!(!html.contains("<script src") && !html.contains("https://"), "no external resources");
    // A second init in the same folder is refused and changes nothing.
    let again = allonet(&["agent", "init", dir, "--example"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    // One step after a finished epoch opens the next.
    assert!(ok(&allonet(&["agent", "step", dir])).starts_with("epoch 2 · observe"));
    // A report of an epoch that has none is a clear error.
    let e = allonet(&["agent", "report", dir, "2"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("epoch 2 has no report yet"));
    // The kill switch: the guardian pauses; a stranger's key cannot; resume files a proposal and changes nothing.
    let guardian = d.join("guardian.json");
    allonet_engine::keys::write_key_file(&guardian, &allonet_engine::offchain::member_key(2026, 11)).unwrap();
    let stranger = d.join("stranger.json");
    allonet_engine::keys::write_key_file(&stranger, &allonet_engine::offchain::member_key(7, 7)).unwrap();
    let e = allonet(&["agent", "pause", dir, "--key", stranger.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("only the guardian"), "{e:?}");
    // The guardian's watch: an advise epoch queued nothing; a stranger may not watch.
    let w = ok(&allonet(&["agent", "guard", dir, "--key", guardian.to_str().unwrap(), "--json"]));
    assert_eq!(w.trim(), r#"{"plans":[],"failed":[]}"#, "{w}");
    assert!(ok(&allonet(&["agent", "guard", dir, "--key", guardian.to_str().unwrap()])).contains("no plan is queued"));
    let e = allonet(&["agent", "guard", dir, "--key", stranger.to_str().unwrap()]);
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("not the DAO's guardian"), "{e:?}");
    assert!(ok(&allonet(&["agent", "pause", dir, "--key", guardian.to_str().unwrap()])).contains("PAUSED"));
    let e = allonet(&["agent", "step", dir]);
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("paused"));
    assert!(ok(&allonet(&["agent", "resume", dir])).contains("resumes once the members pass it"));
    assert!(!allonet(&["agent", "step", dir]).status.success(), "still paused until the members decide");
}

/// SIGKILL at 24 points spread over an epoch (inside stages, between them, while the report is written), then a
/// resume: always the reference's report bytes, and the report's digest recorded once.
#[test]
fn sigkill_anywhere_in_an_epoch_then_resume_gives_the_same_report() {
    let reference = fresh("kill-ref");
    let t0 = Instant::now();
    ok(&allonet(&["agent", "run", reference.to_str().unwrap()]));
    let whole = t0.elapsed();
    let want = std::fs::read(reference.join("reports/epoch-000001.json")).unwrap();
    let mut partial = 0;
    for k in 0..24u32 {
        let d = fresh(&format!("kill-{k}"));
        let dir = d.to_str().unwrap();
        // Spread the kills over the run, with a small seeded jitter so they fall at different instructions.
        let jitter = (k as u64 * 7919) % 37;
        let at = whole.mul_f64(0.6 * (k as f64 + 0.5) / 24.0) + Duration::from_millis(jitter);
        run_killed_at(dir, at);
        // Resume, unless the killed run had finished the epoch (then `run` would start epoch 2).
        if !epoch_one_finished(dir) {
            partial += 1;
            ok(&allonet(&["agent", "run", dir]));
        }
        assert!(epoch_one_finished(dir));
        assert_eq!(std::fs::read(d.join("reports/epoch-000001.json")).unwrap(), want, "killed at {at:?}");
        assert_eq!(agent_records(&d), 1, "killed at {at:?}: the report is recorded once");
        let _ = std::fs::remove_dir_all(&d);
    }
    assert!(partial >= 20, "only {partial} of 24 runs were killed before the epoch finished");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// SIGKILL at 20 points while the agent pays (batches of 4 payments, one transaction each, on two chains), then a
/// resume: every copy ends with the uninterrupted run's report bytes, each plan paid exactly (paid = plan, no
/// remainder, no recipient paid differently from the plan).
#[test]
fn sigkill_while_paying_then_resume_pays_each_recipient_once() {
    use allonet_agent::example::{advance_chains, init_with, members_pass, ExampleOptions};
    use allonet_governance::governor::{Action, AgentMode, AgentPolicy};
    let root = std::env::temp_dir().join(format!("allonet-agent-cli-{}-paykill", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let base = root.join("base");
    init_with(&base, true, ExampleOptions { voting_period: 2, timelock_delay: 1, copies: 1, ..Default::default() })
        .unwrap();
    let setup = std::fs::read_to_string(base.join("agent.toml")).unwrap();
    let setup = setup.replace("key_file = \"keys/agent.json\"", "key_file = \"keys/agent.json\"\nbatch_size = 4");
    std::fs::write(base.join("agent.toml"), setup).unwrap();
    let weights = [("ai".to_string(), 6_000), ("qv".to_string(), 4_000)].into_iter().collect();
    let policy = Action::SetAgentPolicy { policy: AgentPolicy { mode: AgentMode::Autonomous, weights } };
    members_pass(&base, vec![policy], "The agent pays within its caps").unwrap();
    // Up to the queued plans and past their veto window: what is left is paying, reconciling, reporting.
    let out = ok(&allonet(&["agent", "run", base.to_str().unwrap()]));
    assert!(out.contains("veto window"), "{out}");
    advance_chains(&base, 3_601).unwrap();
    let reference = root.join("reference");
    copy_dir(&base, &reference);
    let t0 = Instant::now();
    ok(&allonet(&["agent", "run", reference.to_str().unwrap()]));
    let whole = t0.elapsed();
    let want = std::fs::read(reference.join("reports/epoch-000001.json")).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&want).unwrap();
    let batches: u64 =
        report["plans"].as_array().unwrap().iter().map(|p| p["payments"].as_u64().unwrap().div_ceil(4)).sum();
    assert!(batches >= 15, "{batches} batches");
    let mut partial = 0;
    for k in 0..20u32 {
        let d = root.join(format!("kill-{k}"));
        copy_dir(&base, &d);
        let dir = d.to_str().unwrap();
        let jitter = (k as u64 * 7919) % 23;
        let at = whole.mul_f64(0.9 * (k as f64 + 0.5) / 20.0) + Duration::from_millis(jitter);
        run_killed_at(dir, at);
        if !epoch_one_finished(dir) {
            partial += 1;
            ok(&allonet(&["agent", "run", dir]));
        }
        let got = std::fs::read(d.join("reports/epoch-000001.json")).unwrap();
        if got != want {
            std::fs::write("/tmp/paykill-got.json", &got).unwrap();
            std::fs::write("/tmp/paykill-want.json", &want).unwrap();
        }
        assert!(got == want, "killed at {at:?}: the report differs from the uninterrupted run's");
        let r: serde_json::Value = serde_json::from_slice(&got).unwrap();
        for (plan, line) in r["plans"].as_array().unwrap().iter().zip(r["reconciliation"]["plans"].as_array().unwrap())
        {
            assert_eq!(line["paid"], plan["total"], "killed at {at:?}: {} paid its plan exactly", plan["pool"]);
            assert_eq!(line["remainder"], "0");
            assert!(line["mismatches"].as_array().unwrap().is_empty(), "killed at {at:?}: {line}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
    eprintln!("{partial} of 20 kills landed before the epoch finished ({batches} batches, run {whole:?})");
    assert!(partial >= 10, "only {partial} of 20 kills landed before the epoch finished");
    let _ = std::fs::remove_dir_all(&root);
}

/// `agent run --every`: epochs on a schedule; the guardian's kill switch stops the loop within a tick.
#[test]
fn the_kill_switch_stops_the_running_loop_within_a_tick() {
    let d = fresh("every");
    let dir = d.to_str().unwrap();
    let err_file = d.join("loop.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_allonet"))
        .args(["agent", "run", dir, "--every", "1s"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !epoch_one_finished(dir) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the loop exited ({status}): {}", std::fs::read_to_string(&err_file).unwrap_or_default());
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "the loop ran no epoch");
        std::thread::sleep(Duration::from_millis(100));
    }
    let guardian = d.join("guardian.json");
    allonet_engine::keys::write_key_file(&guardian, &allonet_engine::offchain::member_key(2026, 11)).unwrap();
    ok(&allonet(&["agent", "pause", dir, "--key", guardian.to_str().unwrap()]));
    let paused = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(paused.elapsed() < Duration::from_secs(10), "the loop did not stop after the pause");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains("PAUSED: the loop stops"), "{out}");
    eprintln!("the loop stopped {:?} after the pause", paused.elapsed());
}

/// Someone queues, with the agent's key, a plan no epoch made: the guardian's watch cancels it and, with
/// `--pause-on-foreign`, pulls the kill switch, so the agent runs no further stage and the allocators are paused.
#[test]
fn a_forged_plan_makes_the_watch_cancel_it_and_pull_the_kill_switch() {
    let d = fresh("forged");
    let dir = d.to_str().unwrap();
    ok(&allonet(&["agent", "run", dir]));
    // The forgery: the first payment of the OP pool's recorded plan, alone, queued under the standing caps.
    let agent = allonet_agent::Agent::open(&d).unwrap();
    let out = agent.checkpoints().output(1, allonet_agent::Stage::Allocate).unwrap().unwrap();
    let p = out["plans"].as_array().unwrap().iter().find(|p| p["pool"] == "optimism").unwrap().clone();
    let plan: allonet_chain::plan::PayoutPlan = serde_json::from_value(p["plan"].clone()).unwrap();
    let forged =
        allonet_chain::plan::PayoutPlan::new(plan.token, None, plan.batch_size, plan.payments[..1].to_vec()).unwrap();
    let t = allonet_agent::Setup::load(&d).unwrap().payouts["optimism"].clone();
    let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment).unwrap();
    let (mut conn, _) = allonet_engine::connect::connect(&t.connect_spec(), Some(&dep.endpoint)).unwrap();
    let c = allonet_engine::govern::commitment(&forged, forged.payments[0].chain.as_deref()).unwrap();
    let d0 = &dep.deployment;
    let q = allonet_engine::govern::queue_under_caps(conn.chain(), d0, d0.agent, &c).unwrap();
    conn.save().unwrap();
    drop((conn, agent));
    let guardian = d.join("guardian.json");
    allonet_engine::keys::write_key_file(&guardian, &allonet_engine::offchain::member_key(2026, 11)).unwrap();
    let o = allonet(&["agent", "guard", dir, "--key", guardian.to_str().unwrap(), "--pause-on-foreign", "--json"]);
    let w: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let seen = w["plans"].as_array().unwrap();
    assert_eq!(seen.len(), 1, "{w}");
    assert_eq!(seen[0]["plan_id"], q.plan_id.to_string());
    assert_eq!(seen[0]["action"], "cancelled");
    assert!(String::from_utf8_lossy(&o.stderr).contains("PAUSED"), "{o:?}");
    let (mut conn, _) = allonet_engine::connect::connect(&t.connect_spec(), Some(&dep.endpoint)).unwrap();
    let paused = allonet_chain::read(conn.chain(), d0.allocator, &allonet_chain::contracts::AIAllocator::pausedCall {});
    assert!(paused.unwrap(), "the allocator is paused on chain");
    let e = allonet(&["agent", "step", dir]);
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("paused"), "{e:?}");
}
