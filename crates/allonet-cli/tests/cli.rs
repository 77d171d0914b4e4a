//! End-to-end tests of the `allonet` binary, run as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn allonet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_allonet"))
        .args(args)
        .current_dir(root())
        .env_remove("ALLONET_KEY")
        .output()
        .unwrap()
}

/// Runs `allonet args`, which must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    ok_in(&root(), args)
}

/// Runs `allonet args`, which must fail; its stderr.
fn fails(args: &[&str]) -> String {
    fails_in(&root(), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allonet-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn demo_runs_on_bundled_data() {
    let o = allonet(&["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("every project within 1 OP of the official results: true"), "{out}");
    assert!(out.contains("input 0x") && out.contains("output 0x"));
    // The last step: the funding agent pays all three pool plans in full, on two chains.
    let agent = &out[out.find("10. The funding agent").expect("the agent step")..];
    assert_eq!(agent.matches("┆ yes ").count(), 3, "{agent}");
    assert!(agent.contains("optimism") && agent.contains("base"));
    assert!(agent.contains("the guardian's watch (`allonet agent guard`) kept all 3"), "{agent}");
    // The treasury's rebalance ran as approved swaps (at least the ETH sales and two buys).
    let swaps: usize =
        agent.split("above its band: ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    assert!(swaps >= 3, "{agent}");
}

#[test]
fn round_result_verifies_and_tampering_is_caught() {
    let d = tmpdir("verify");
    let res = d.join("result.json");
    let o = allonet(&[
        "round",
        "examples/round/contributions.csv",
        "--mechanism",
        "cocm",
        "--pool",
        "5000",
        "--cap",
        "30%",
        "-o",
        res.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = allonet(&["verify", res.to_str().unwrap()]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
    assert!(stdout(&v).contains("verified"));

    // change one payout in the file: recomputation disagrees
    let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(&res).unwrap()).unwrap();
    file["result"]["lines"][0]["matched"] = serde_json::Value::String("1".into());
    std::fs::write(&res, serde_json::to_vec(&file).unwrap()).unwrap();
    let v = allonet(&["verify", res.to_str().unwrap()]);
    assert!(!v.status.success());
    assert!(stdout(&v).contains("MISMATCH result body"), "{}", stdout(&v));
}

#[test]
fn verify_notices_changed_inputs() {
    let d = tmpdir("inputs");
    let input = d.join("gifts.csv");
    std::fs::write(&input, "donor,project,amount\na,x,1\nb,x,4\nc,y,9\nd,y,1\n").unwrap();
    let res = d.join("r.json");
    let o = allonet(&["round", input.to_str().unwrap(), "--pool", "100", "-o", res.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&input, "donor,project,amount\na,x,1\nb,x,4\nc,y,9\nd,y,2\n").unwrap();
    let v = allonet(&["verify", res.to_str().unwrap()]);
    assert!(!v.status.success());
    assert!(stderr(&v).contains("inputs differ"), "{}", stderr(&v));
}

#[test]
fn round_json_conserves_the_pool_and_single_donor_projects_get_nothing() {
    let d = tmpdir("json");
    let input = d.join("gifts.csv");
    std::fs::write(&input, "donor,project,amount\na,x,1\nb,x,4\nc,y,9\nc,y,1\n").unwrap();
    let o = allonet(&["round", input.to_str().unwrap(), "--pool", "100", "--decimals", "6", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines = v["result"]["lines"].as_array().unwrap();
    // x: (1 + 2)^2 - 5 = 4 < pool 100, so x is paid its score and the rest stays unallocated
    assert_eq!(lines[0]["project"], "x");
    assert_eq!(lines[0]["matched"], "4000000");
    assert_eq!(lines[1]["matched"], "0", "y has a single donor");
    assert_eq!(v["result"]["unallocated"], "96000000");
}

fn assert_refused(args: &[&str], file: &Path, expect: &[&str], outs: &[&Path]) {
    let o = allonet(args);
    assert!(!o.status.success(), "should fail: {args:?}");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of error, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains(file.file_name().unwrap().to_str().unwrap()), "names the file: {err}");
    for e in expect {
        assert!(lines[0].contains(e), "expected `{e}` in: {err}");
    }
    for p in outs {
        assert!(!p.exists(), "no output file may be written on error: {}", p.display());
    }
}

#[test]
fn bad_inputs_give_one_line_errors_and_write_nothing() {
    let d = tmpdir("bad");
    let cases: [(&str, &str, &[&str]); 7] = [
        ("missing_col.csv", "donor,project\na,x\n", &["missing amount column"]),
        ("negative.csv", "donor,project,amount\na,x,1\nb,x,-3\n", &[":3:", "column `amount`", "negative"]),
        (
            "text.csv",
            "donor,project,amount\na,x,1\nb,x,lots\n",
            &[":3:", "column `amount`", "`lots` is not a finite number"],
        ),
        ("address.csv", "donor,project,amount\n0x12345,x,1\n", &[":2:", "column `donor`", "not an address"]),
        (
            "checksum.csv",
            "donor,project,amount\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD,x,1\n",
            &[":2:", "checksum"],
        ),
        ("empty.csv", "", &["empty"]),
        ("dup.csv", "donor,project,amount,amount\na,x,1,2\n", &[":1:", "duplicate header"]),
    ];
    for (name, body, expect) in cases {
        let f = d.join(name);
        std::fs::write(&f, body).unwrap();
        let out = d.join(format!("{name}.result.json"));
        let csv = d.join(format!("{name}.out.csv"));
        assert_refused(
            &["round", f.to_str().unwrap(), "-o", out.to_str().unwrap(), "--csv", csv.to_str().unwrap()],
            &f,
            expect,
            &[&out, &csv],
        );
    }
}

#[test]
fn retro_reproduces_rf4_from_the_cli() {
    let d = tmpdir("rf4");
    let csv = d.join("rf4.csv");
    let o = allonet(&[
        "retro",
        "--ballots",
        "examples/op-rf4/rf4_ballots_export.csv",
        "--metrics",
        "examples/op-rf4/rf4_impact_metrics_by_project.csv",
        "--compare",
        "examples/op-rf4/rf4_results.csv",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("230/230 within 1 OP"), "{}", stdout(&o));
    let mut rdr = csv::Reader::from_path(&csv).unwrap();
    let mut total: u128 = 0;
    for r in rdr.records() {
        total += r.unwrap()[3].parse::<u128>().unwrap();
    }
    assert_eq!(total, 10_000_000u128 * 10u128.pow(18));
}

#[test]
fn retro_r3_medians_with_quorum_and_minimum() {
    let d = tmpdir("r3");
    let votes = d.join("votes.csv");
    // p: {2000, 3000} -> median 2500; q: one ballot (below quorum 2); r: median 1000 (below minimum 1500)
    std::fs::write(
        &votes,
        "voter,project,amount\na,p,2000\nb,p,3000\na,q,50000\na,r,900\nb,r,1100\nc,s,4000\nd,s,6000\n",
    )
    .unwrap();
    let o = allonet(&[
        "retro",
        "--votes",
        votes.to_str().unwrap(),
        "--quorum",
        "2",
        "--min-median",
        "1500",
        "--budget",
        "30000000",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["result"];
    let medians: Vec<f64> = r["details"].as_array().unwrap().iter().map(|l| l["median"].as_f64().unwrap()).collect();
    assert_eq!(medians, vec![2500.0, 50000.0, 1000.0, 5000.0]);
    let amounts: Vec<&str> = r["lines"].as_array().unwrap().iter().map(|l| l["amount"].as_str().unwrap()).collect();
    // p and s share 30M OP in proportion 2500 : 5000
    assert_eq!(amounts, vec!["10000000000000000000000000", "0", "0", "20000000000000000000000000"]);
}

#[test]
fn tally_snapshot_scores_sum_to_the_balance_voted() {
    let o = allonet(&["tally", "examples/snapshot-quadratic/votes.json", "--budget", "1000", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines = v["result"]["lines"].as_array().unwrap();
    let total: f64 = lines.iter().map(|l| l["score"].as_f64().unwrap()).sum();
    assert!((total - 394.0).abs() < 1e-9, "{total}");
    let paid: u128 = lines.iter().map(|l| l["payout"].as_str().unwrap().parse::<u128>().unwrap()).sum();
    assert_eq!(paid, 1_000_000_000);
}

#[test]
fn help_teaches_with_examples() {
    for cmd in ["round", "retro", "tally", "verify"] {
        let o = allonet(&[cmd, "--help"]);
        assert!(o.status.success());
        assert!(stdout(&o).contains("Example"), "{cmd} --help has examples");
    }
}

#[test]
fn model_train_recommend_explain_from_the_cli() {
    let d = tmpdir("model");
    let (h, p, m) = (d.join("history.csv"), d.join("proposals.csv"), d.join("model.json"));
    let o = allonet(&[
        "model",
        "synth",
        "--rounds",
        "6",
        "--per-round",
        "30",
        "-o",
        h.to_str().unwrap(),
        "--new",
        "4",
        "--proposals",
        p.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = allonet(&[
        "model",
        "train",
        "--data",
        h.to_str().unwrap(),
        "--target",
        "amount",
        "--trees",
        "30",
        "-o",
        m.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v["model_id"].as_str().unwrap().to_string();
    assert!(v["report"]["held_out"]["forest"]["r2"].as_f64().unwrap() > 0.5);
    // the model id is the keccak-256 of the file
    let bytes = std::fs::read(&m).unwrap();
    assert_eq!(id, format!("{:#x}", alloy_primitives::keccak256(&bytes)));
    let o = allonet(&["recommend", "--model", m.to_str().unwrap(), "--proposals", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recs = v["recommendations"].as_array().unwrap();
    assert_eq!(recs.len(), 4);
    for r in recs {
        let (a, lo, hi) =
            (r["amount"].as_f64().unwrap(), r["interval"][0].as_f64().unwrap(), r["interval"][1].as_f64().unwrap());
        assert!(lo <= hi && a > 0.0);
        let sum: f64 = r["reasons"].as_array().unwrap().iter().map(|x| x["contribution"].as_f64().unwrap()).sum();
        assert!((r["base"].as_f64().unwrap() + sum - a).abs() < 1e-6, "reasons add up to the amount");
    }
    let o = allonet(&["model", "explain", "--model", m.to_str().unwrap(), "--data", p.to_str().unwrap(), "--row", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("= prediction"));
    let o = allonet(&["model", "explain", "--model", m.to_str().unwrap(), "--data", p.to_str().unwrap(), "--row", "9"]);
    assert!(!o.status.success() && stderr(&o).contains("outside 1..4"));
}

#[test]
fn model_bad_inputs_are_refused_clearly() {
    let d = tmpdir("modelbad");
    let h = d.join("h.csv");
    std::fs::write(&h, "impact_score,votes,amount\n1,2,3\n4,5,6\n7,8,9\n").unwrap();
    let o = allonet(&["model", "train", "--data", h.to_str().unwrap(), "--target", "funding"]);
    assert!(!o.status.success() && stderr(&o).contains("missing column `funding`"), "{}", stderr(&o));
    let o = allonet(&["model", "train", "--data", h.to_str().unwrap(), "--target", "amount"]);
    assert!(!o.status.success() && stderr(&o).contains("fewer than the 5 cross-validation folds"), "{}", stderr(&o));
    let t = d.join("t.csv");
    std::fs::write(&t, "impact_score,votes,amount\n1,2,3\n4,lots,6\n").unwrap();
    let o = allonet(&["model", "train", "--data", t.to_str().unwrap(), "--features", "impact_score,votes"]);
    assert!(
        !o.status.success() && stderr(&o).contains("t.csv:3: column `votes`: `lots` is not a finite number"),
        "{}",
        stderr(&o)
    );
    let n = d.join("n.csv");
    std::fs::write(&n, "impact_score,votes,amount\n1,2,3\n4,NaN,6\n").unwrap();
    let o = allonet(&["model", "train", "--data", n.to_str().unwrap(), "--features", "impact_score,votes"]);
    assert!(
        !o.status.success() && stderr(&o).contains("n.csv:3: column `votes`: `NaN` is not a finite number"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn flow_run_conserves_every_unit_on_the_deep_funding_graph() {
    let d = tmpdir("flowrun");
    let html = d.join("flow.html");
    let o = allonet(&[
        "flow",
        "run",
        "examples/deepfunding/repo_parent_weight_graph.csv",
        "--inject",
        "ethereum=1000000",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("injected 1,000,000 = kept 1,000,000 + in flight 0 (every unit accounted for)"),
        "{}",
        stdout(&o)
    );
    assert!(std::fs::read_to_string(&html).unwrap().contains("<path"));
    let o = allonet(&[
        "flow",
        "run",
        "examples/flow/regrants.toml",
        "--inject",
        "dao=1000",
        "--decimals",
        "6",
        "--attribution",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kept: u128 =
        v["nodes"].as_array().unwrap().iter().map(|n| n["kept"].as_str().unwrap().parse::<u128>().unwrap()).sum();
    assert_eq!(kept, 1_000_000_000);
    let o = allonet(&["flow", "run", "examples/flow/regrants.toml", "--inject", "nobody=5"]);
    assert!(!o.status.success() && stderr(&o).contains("`nobody` is not a node"), "{}", stderr(&o));
}

#[test]
fn flow_simulate_fit_and_score_from_the_cli() {
    let o = allonet(&["flow", "simulate", "examples/flow/regrants.toml", "--runs", "50", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 3, "three pinch settings swept");
    let again = allonet(&["flow", "simulate", "examples/flow/regrants.toml", "--runs", "50", "--json"]);
    assert_eq!(o.stdout, again.stdout, "seeded: identical output");
    // per-run rows agree with the means
    let rows_path = tmpdir("simrows").join("rows.csv");
    let o2 = allonet(&[
        "flow",
        "simulate",
        "examples/flow/regrants.toml",
        "--runs",
        "4",
        "--steps",
        "3",
        "--rows",
        rows_path.to_str().unwrap(),
        "--json",
    ]);
    assert!(o2.status.success(), "{}", stderr(&o2));
    let v2: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    let mut rdr = csv::Reader::from_path(&rows_path).unwrap();
    let mut sum = 0u128;
    let mut n = 0;
    for r in rdr.records() {
        let r = r.unwrap();
        n += 1;
        if &r[0] == "0" && &r[3] == "3" && &r[4] == "libp2p-gossip" {
            sum += r[5].parse::<u128>().unwrap();
        }
    }
    assert_eq!(n, 3 * 4 * 3 * 15, "3 pinch settings × 4 runs × 3 steps × 15 nodes");
    let nodes = v2["nodes"].as_array().unwrap();
    let k = nodes.iter().position(|x| x == "libp2p-gossip").unwrap();
    let mean = v2["results"][0]["mean_kept"][2][k].as_f64().unwrap();
    assert!((mean - sum as f64 / 4.0).abs() < 1e-6, "{mean} vs {}", sum as f64 / 4.0);

    let d = tmpdir("flowfit");
    let pairs = d.join("pairs.csv");
    let truth = [("a", 0.5f64), ("b", 0.3), ("c", 0.2)];
    let mut body = String::from("a,b,c\n");
    for (x, wx) in truth {
        for (y, wy) in truth {
            if x != y {
                body.push_str(&format!("{x},{y},{}\n", (wy / wx).ln()));
            }
        }
    }
    std::fs::write(&pairs, body).unwrap();
    let w = d.join("w.csv");
    let o = allonet(&["flow", "fit", "--pairs", pairs.to_str().unwrap(), "-o", w.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!((v["weights"]["a"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    let flat = d.join("flat.csv");
    std::fs::write(&flat, "node,weight\na,1\nb,1\nc,1\n").unwrap();
    let o = allonet(&[
        "flow",
        "score",
        "--pairs",
        pairs.to_str().unwrap(),
        "--weights",
        flat.to_str().unwrap(),
        "--weights",
        w.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["costs"][0].as_f64().unwrap() > 0.01 && v["costs"][1].as_f64().unwrap() < 1e-12);
    assert!((v["blend"]["lambda"][1].as_f64().unwrap() - 1.0).abs() < 1e-9);
}

fn member_address(seed: u64, i: u64) -> alloy_primitives::Address {
    allonet_engine::offchain::member_key(seed, i).address()
}

/// `allonet args` run in `dir` (relative paths, as a user in that folder).
fn allonet_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_allonet")).args(args).current_dir(dir).env_remove("ALLONET_KEY").output().unwrap()
}

/// Runs `allonet args` in `dir`, which must succeed; its stdout.
fn ok_in(dir: &Path, args: &[&str]) -> String {
    let o = allonet_in(dir, args);
    assert!(o.status.success(), "allonet {args:?} failed:\n{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Runs `allonet args` in `dir`, which must fail; its stderr.
fn fails_in(dir: &Path, args: &[&str]) -> String {
    let o = allonet_in(dir, args);
    assert!(!o.status.success(), "allonet {args:?} should have failed:\n{}{}", stdout(&o), stderr(&o));
    stderr(&o)
}

/// `n` key files `k0.json` … in `dir` (from `gov keys new`) and their addresses.
fn gov_keys(dir: &Path, n: usize) -> (Vec<PathBuf>, Vec<String>) {
    let mut keys = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..n {
        let k = dir.join(format!("k{i}.json"));
        ok_in(dir, &["gov", "keys", "new", "-o", k.to_str().unwrap()]);
        addrs.push(key_address(&k));
        keys.push(k);
    }
    (keys, addrs)
}

fn key_address(key: &Path) -> String {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(key).unwrap()).unwrap();
    v["address"].as_str().unwrap().to_string()
}

/// The proposal id from `gov propose`'s first line, `proposal 0x… by 0x…`.
fn proposal_of(out: &str) -> String {
    let first = out.lines().next().unwrap_or_default();
    let id = first.split_whitespace().nth(1).unwrap_or_default();
    assert!(first.starts_with("proposal 0x") && id.len() == 66, "{out}");
    id.to_string()
}

/// The word after `label ` in `text`.
fn word_after<'a>(text: &'a str, label: &str) -> &'a str {
    let i = text.find(label).unwrap_or_else(|| panic!("no `{label}` in: {text}")) + label.len();
    text[i..].split_whitespace().next().unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A copy of a closed SQLite database (with its write-ahead log, if one is left).
fn copy_db(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    let wal = PathBuf::from(format!("{}-wal", from.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", to.display())).unwrap();
    }
}

#[test]
fn sigkill_mid_voting_loses_no_acknowledged_vote() {
    use std::io::BufRead;
    let d = tmpdir("crash");
    let db = d.join("gov.db");
    let (state, dep) = (d.join("chain.json"), d.join("dep.json"));
    // an absolute state path: the deployment file records it as given, and this process reads it too
    ok(&["chain", "deploy", "--embedded", "--state", state.to_str().unwrap(), "-o", dep.to_str().unwrap()]);
    let voters = 1200u64;
    let (rounds, anchor_every) = (24, 100u64);
    // `gov stress` makes a rehearsal DAO whose operator key is member_key(seed, u64::MAX) (seed 7 by default)
    let operator = member_address(7, u64::MAX);
    let mut acked = std::collections::BTreeSet::new();
    let mut anchored = std::collections::BTreeSet::new();
    let mut kills = 0;
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for round in 0..rounds {
        let last = round == rounds - 1;
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // small runs between kills: many kill points while the log (re-verified at every open) is still short
        let kill_after = 5 + (x >> 33) % 30;
        let mut child = Command::new(env!("CARGO_BIN_EXE_allonet"))
            .args(["gov", "stress", "--db", db.to_str().unwrap(), "--voters", &voters.to_string()])
            .args(["--anchor-every", &anchor_every.to_string(), "--deployment", dep.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut n = 0;
        for line in std::io::BufReader::new(out).lines() {
            let line = line.unwrap();
            if let Some(seq) = line.strip_prefix("anchored ") {
                anchored.insert(seq.parse::<u64>().unwrap());
            }
            if let Some(i) = line.strip_prefix("ack ") {
                acked.insert(i.parse::<u64>().unwrap());
                n += 1;
                if n >= kill_after && !last {
                    child.kill().unwrap(); // SIGKILL
                    kills += 1;
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        if last {
            assert!(status.success(), "the last run completes: {status}");
        }
        // opening re-verifies the chain, every act's signature and rights, and the operator's signature on each head
        let s =
            allonet_store::Store::open(&db).unwrap_or_else(|e| panic!("round {round}: the log does not reopen: {e}"));
        assert_eq!(s.verify_audit(), Ok(s.len()), "round {round}");
        let g = s.governor();
        assert!(g.rehearsal && g.operator == operator, "round {round}: a rehearsal under the stress operator");
        let heads: i64 = s.connection().query_row("SELECT COUNT(*) FROM heads", [], |r| r.get(0)).unwrap();
        assert_eq!(heads as u64, s.len(), "round {round}: every write ends with a head the operator signed");
        let p = g.proposals.values().next().unwrap();
        for &i in &acked {
            let who = member_address(7, i);
            assert!(p.voters.contains(&who), "round {round}: acknowledged vote {i} is missing");
            assert!(s.has_vote(p.id, who).unwrap(), "round {round}: acknowledged vote {i} is not in the votes table");
        }
        let (logged, signers): (i64, i64) = s
            .connection()
            .query_row(
                "SELECT COUNT(*), COUNT(DISTINCT json_extract(payload, '$.signer')) FROM events WHERE kind = 'vote'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let rows: i64 = s.connection().query_row("SELECT COUNT(*) FROM votes", [], |r| r.get(0)).unwrap();
        assert_eq!(
            (logged as usize, signers as usize, rows as usize),
            (p.voters.len(), p.voters.len(), p.voters.len()),
            "round {round}: no vote is stored twice"
        );
        // every head on chain matches the log; every acknowledged anchor is there (a kill between a vote and its
        // anchor leaves that multiple unanchored, and the next run anchors the next one)
        let log = s.verified_log().unwrap();
        match allonet_engine::audit::check_anchored(&log, &dep, None) {
            Ok(c) => {
                let on_chain: std::collections::BTreeSet<u64> = c.anchors.iter().map(|a| a.seq).collect();
                assert!(
                    anchored.is_subset(&on_chain),
                    "round {round}: acknowledged anchors {anchored:?} on chain {on_chain:?}"
                );
                assert!(on_chain.iter().all(|q| q % anchor_every == 0 && *q <= s.len()), "round {round}: {on_chain:?}");
            }
            Err(e) => assert!(
                anchored.is_empty() && e.to_string().contains("anchored no head"),
                "round {round}: {e} (acknowledged anchors {anchored:?})"
            ),
        }
        if round == rounds - 2 {
            assert!((p.voters.len() as u64) < voters, "every kill landed while votes were still being cast");
        }
    }
    assert!(kills >= 20, "{kills} kill points");
    eprintln!("{kills} kill points; acknowledged anchors {anchored:?}");
    let s = allonet_store::Store::open(&db).unwrap();
    assert_eq!(s.governor().proposals.values().next().unwrap().voters.len() as u64, voters, "the last run completes");
    // the last run anchored up to the last multiple of anchor_every
    let c = allonet_engine::audit::check_anchored(&s.verified_log().unwrap(), &dep, None).unwrap();
    assert_eq!(c.anchors.last().unwrap().seq, (s.len() / anchor_every) * anchor_every, "{:?}", c.anchors);
}

#[test]
fn gov_lifecycle_from_the_cli() {
    let d = tmpdir("gov");
    // k3's address holds nothing
    let (keys, addrs) = gov_keys(&d, 4);
    let k = |i: usize| keys[i].to_str().unwrap();
    let holders = d.join("holders.csv");
    std::fs::write(&holders, format!("address,balance\n{},60\n{},30\n{},10\n", addrs[0], addrs[1], addrs[2])).unwrap();
    let init = |db: &Path, extra: &[&str]| {
        let mut a = vec!["gov", "init", "--db", db.to_str().unwrap(), "--holders", holders.to_str().unwrap()];
        a.extend(["--guardian", &addrs[2], "--voting-delay", "10", "--voting-period", "100", "--timelock", "50"]);
        a.extend(extra);
        allonet(&a)
    };
    let plan = format!("approve-plan:{}", "0x".to_string() + &"ab".repeat(32));

    // --now belongs to rehearsals: refused on a real DAO, and nothing is created
    let real = d.join("real.db");
    let reals = real.to_str().unwrap();
    let o = init(&real, &["--now", "1000"]);
    assert!(!o.status.success() && stderr(&o).contains("--now needs --rehearsal"), "{}", stderr(&o));
    assert!(!real.exists(), "no database is created");
    assert!(!d.join("real.db.operator.key").exists(), "no operator key is created");
    // a real DAO keeps the system clock
    let o = init(&real, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("DAO id 0x") && !stdout(&o).contains("REHEARSAL"), "{}", stdout(&o));
    assert!(d.join("real.db.operator.key").exists(), "the operator key is made beside the database");
    let t0 = unix_now();
    let out = ok(&["gov", "propose", "--db", reals, "--key", k(1), "--action", &plan, "--description", "on the clock"]);
    let t1 = unix_now();
    let from: u64 = word_after(&out, "voting from ").parse().unwrap();
    assert!((t0 + 11..=t1 + 11).contains(&from), "proposed at the system clock ({t0}..{t1}) + delay 10: {out}");
    let e = fails(&[
        "gov",
        "propose",
        "--db",
        reals,
        "--key",
        k(1),
        "--action",
        &plan,
        "--description",
        "backdated",
        "--now",
        "5",
    ]);
    assert!(e.contains("--now is accepted only by a rehearsal database"), "{e}");
    let e = fails(&["gov", "status", "--db", reals, "--now", "5"]);
    assert!(e.contains("--now is accepted only by a rehearsal database"), "{e}");
    let v: serde_json::Value = serde_json::from_str(&ok(&["gov", "status", "--db", reals, "--json"])).unwrap();
    assert_eq!((v["rehearsal"].as_bool(), v["proposals"].as_array().unwrap().len()), (Some(false), 1));

    // a rehearsal takes the caller's times
    let db = d.join("dao.db");
    let dbs = db.to_str().unwrap();
    let o = init(&db, &["--rehearsal", "--now", "1000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("REHEARSAL"), "{out}");
    let dao = word_after(&out, "DAO id ").to_string();
    let operator = key_address(&d.join("dao.db.operator.key"));
    let out = ok(&[
        "gov",
        "propose",
        "--db",
        dbs,
        "--key",
        k(1),
        "--action",
        &plan,
        "--description",
        "pay round 1",
        "--now",
        "1001",
    ]);
    let id = proposal_of(&out);
    let vote = |key: usize, sup: &str, now: &str| {
        allonet(&["gov", "vote", "--db", dbs, "--key", k(key), "--proposal", &id, "--support", sup, "--now", now])
    };
    let o = vote(0, "for", "1005");
    assert!(
        !o.status.success() && stderr(&o).contains("Pending"),
        "voting before the snapshot is refused: {}",
        stderr(&o)
    );
    // only the operator's key writes the log
    let e = fails(&[
        "gov",
        "vote",
        "--db",
        dbs,
        "--key",
        k(0),
        "--proposal",
        &id,
        "--support",
        "for",
        "--now",
        "1020",
        "--operator-key",
        k(1),
    ]);
    assert!(e.contains("not this DAO's operator"), "{e}");
    for (key, sup) in [(0, "for"), (1, "against")] {
        let o = vote(key, sup, "1020");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // a key whose address holds nothing still casts a signed vote, of no weight
    let o = vote(3, "for", "1020");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "vote by {} (signed) recorded as audit entry #5 · for 60 · against 30 · abstain 0",
            addrs[3]
        )),
        "{}",
        stdout(&o)
    );
    let o = vote(0, "for", "1021");
    assert!(!o.status.success() && stderr(&o).contains("already voted"), "{}", stderr(&o));
    // anyone may queue and execute, but signs the act
    let o = allonet(&["gov", "queue", "--db", dbs, "--proposal", &id, "--now", "1112"]);
    assert!(!o.status.success() && stderr(&o).contains("no signing key"), "{}", stderr(&o));
    ok(&["gov", "queue", "--db", dbs, "--key", k(2), "--proposal", &id, "--now", "1112"]);
    let e = fails(&["gov", "execute", "--db", dbs, "--key", k(3), "--proposal", &id, "--now", "1150"]);
    assert!(e.contains("timelock is not over"), "{e}");
    ok(&["gov", "execute", "--db", dbs, "--key", k(3), "--proposal", &id, "--now", "1170"]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["gov", "status", "--db", dbs, "--now", "1170", "--json"])).unwrap();
    assert_eq!(v["proposals"][0]["state"], "Executed");
    assert_eq!((v["proposals"][0]["for"].as_str(), v["proposals"][0]["voters"].as_u64()), (Some("60"), Some(3)));
    assert_eq!(v["registry"]["approved_plans"].as_object().unwrap().len(), 1);
    assert_eq!(v["rehearsal"], true);
    assert_eq!(v["dao"].as_str(), Some(dao.as_str()));
    assert!(v["operator"].as_str().unwrap().eq_ignore_ascii_case(&operator), "{}", v["operator"]);
    assert_eq!(v["events"], 7);
    assert!(ok(&["gov", "status", "--db", dbs, "--now", "1170"]).contains("REHEARSAL"));
    let out = ok(&["gov", "audit", "verify", "--db", dbs]);
    assert!(out.contains("7 entries verified (a REHEARSAL") && out.contains("7 operator-signed heads"), "{out}");
    assert!(out.contains(&format!("DAO {dao} · operator {operator} · head #7 0x")), "{out}");

    // the export re-verifies without the database
    let log = d.join("dao.jsonl");
    let out = ok(&["gov", "audit", "export", "--db", dbs, "-o", log.to_str().unwrap()]);
    assert!(out.contains("exported 7 entries") && out.contains("REHEARSAL"), "{out}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    assert!(lines.iter().enumerate().all(|(i, l)| l["seq"] == i as u64 + 1 && l["rehearsal"] == true));
    let out = ok(&["gov", "audit", "verify", "--log", log.to_str().unwrap()]);
    assert!(out.contains("dao.jsonl: 7 entries verified") && out.contains("head #7 0x"), "{out}");
    // one payload edited in the export: named
    let edited = d.join("edited.jsonl");
    let mut lines = lines;
    let payload = lines[2]["payload"].as_str().unwrap().to_string();
    assert!(payload.contains("\"for\""), "{payload}");
    lines[2]["payload"] = payload.replace("\"for\"", "\"against\"").into();
    let body: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    std::fs::write(&edited, body).unwrap();
    let e = fails(&["gov", "audit", "verify", "--log", edited.to_str().unwrap()]);
    assert!(e.contains("edited.jsonl") && e.contains("entry #3") && e.contains("does not match its contents"), "{e}");

    // tamper with a row: audit verify fails and names it, and nothing else opens the database
    let conn = allonet_store::Store::open(&db).unwrap();
    let n = conn
        .connection()
        .execute("UPDATE events SET payload = replace(payload, '\"against\"', '\"for\"') WHERE seq = 4", [])
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let e = fails(&["gov", "audit", "verify", "--db", dbs]);
    assert!(e.contains("entry #4"), "{e}");
    let e = fails(&["gov", "status", "--db", dbs, "--now", "1170"]);
    assert!(e.contains("dao.db") && e.contains("entry #4"), "{e}");
    let e = fails(&["gov", "audit", "export", "--db", dbs, "-o", d.join("x.jsonl").to_str().unwrap()]);
    assert!(e.contains("entry #4") && !d.join("x.jsonl").exists(), "{e}");
}

#[test]
fn gov_multi_choice_runs_only_the_winning_option_from_the_cli() {
    let d = tmpdir("govmulti");
    let (keys, addrs) = gov_keys(&d, 3);
    let k = |i: usize| keys[i].to_str().unwrap();
    let holders = d.join("holders.csv");
    std::fs::write(&holders, format!("address,balance\n{},60\n{},30\n{},10\n", addrs[0], addrs[1], addrs[2])).unwrap();
    let db = d.join("dao.db");
    let dbs = db.to_str().unwrap();
    ok(&[
        "gov",
        "init",
        "--db",
        dbs,
        "--holders",
        holders.to_str().unwrap(),
        "--guardian",
        &addrs[2],
        "--voting-delay",
        "10",
        "--voting-period",
        "100",
        "--timelock",
        "50",
        "--rehearsal",
        "--now",
        "1000",
    ]);
    let plan = format!("approve-plan:0x{}", "cd".repeat(32));
    let options = format!("yes={plan},no");
    // top-level actions and options together: refused before anything is written
    let e = fails(&[
        "gov",
        "propose",
        "--db",
        dbs,
        "--key",
        k(0),
        "--action",
        &plan,
        "--options",
        &options,
        "--description",
        "both",
        "--now",
        "1001",
    ]);
    assert!(e.contains("--options") && e.contains("cannot be used with"), "{e}");
    let out = ok(&[
        "gov",
        "propose",
        "--db",
        dbs,
        "--key",
        k(0),
        "--options",
        &options,
        "--description",
        "pay round 2?",
        "--now",
        "1001",
    ]);
    let id = proposal_of(&out);
    let vote = |key: usize, how: &[&str]| {
        let mut a = vec!["gov", "vote", "--db", dbs, "--key", k(key), "--proposal", &id, "--now", "1020"];
        a.extend(how);
        allonet(&a)
    };
    let o = vote(2, &["--support", "for"]);
    assert!(!o.status.success() && stderr(&o).contains("weighted votes"), "{}", stderr(&o));
    let o = vote(0, &["--weights", "1=1"]);
    assert!(o.status.success() && stdout(&o).contains("yes 0 · no 60"), "{}{}", stdout(&o), stderr(&o));
    let o = vote(1, &["--weights", "0=1,1=2"]);
    assert!(o.status.success() && stdout(&o).contains("yes 10 · no 80"), "{}{}", stdout(&o), stderr(&o));
    ok(&["gov", "queue", "--db", dbs, "--key", k(2), "--proposal", &id, "--now", "1112"]);
    ok(&["gov", "execute", "--db", dbs, "--key", k(2), "--proposal", &id, "--now", "1170"]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["gov", "status", "--db", dbs, "--now", "1170", "--json"])).unwrap();
    let p = &v["proposals"][0];
    assert_eq!(
        (p["state"].as_str(), p["winner"].as_u64(), p["quorum_reached"].as_bool()),
        (Some("Executed"), Some(1), Some(true))
    );
    assert_eq!((p["options"][0]["votes"].as_str(), p["options"][1]["votes"].as_str()), (Some("10"), Some("80")));
    assert!(v["registry"]["approved_plans"].as_object().unwrap().is_empty(), "`no` won: its (no) actions ran: {v}");
    assert!(ok(&["gov", "audit", "verify", "--db", dbs]).contains("6 entries verified"));
}

#[test]
fn gov_audit_anchors_catch_a_rewrite_and_a_deleted_tail() {
    use allonet_governance::acts::{head_hash, sign, sign_hash};
    use allonet_governance::governor::{Act, Event};
    let d = tmpdir("govanchor");
    let out = ok_in(&d, &["chain", "deploy", "--embedded", "--state", "chain.json", "-o", "dep.json"]);
    assert!(out.contains("dep.json"), "{out}");
    // The operator's key (beside the database) is also a member's: the operator signed its own acts, so it holds
    // every key a consistent rewrite of them needs.
    ok_in(&d, &["gov", "keys", "new", "-o", "dao.db.operator.key"]);
    ok_in(&d, &["gov", "keys", "new", "-o", "k1.json"]);
    ok_in(&d, &["gov", "keys", "new", "-o", "k2.json"]);
    let (k0, k1, k2) = ("dao.db.operator.key", "k1.json", "k2.json");
    let a: Vec<String> = [k0, k1, k2].iter().map(|k| key_address(&d.join(k))).collect();
    std::fs::write(d.join("holders.csv"), format!("address,balance\n{},60\n{},30\n{},10\n", a[0], a[1], a[2])).unwrap();
    let out = ok_in(
        &d,
        &[
            "gov",
            "init",
            "--db",
            "dao.db",
            "--holders",
            "holders.csv",
            "--guardian",
            &a[2],
            "--voting-delay",
            "10",
            "--voting-period",
            "100",
            "--timelock",
            "50",
            "--rehearsal",
            "--now",
            "1000",
        ],
    );
    assert!(out.contains(&format!("operator {}", a[0])), "the existing key file is the operator's: {out}");
    let verify_anchored = ["gov", "audit", "verify", "--db", "dao.db", "--anchor", "--deployment", "dep.json"];
    let e = fails_in(&d, &verify_anchored);
    assert!(e.contains("anchored no head"), "{e}");
    let out = ok_in(
        &d,
        &[
            "gov",
            "propose",
            "--db",
            "dao.db",
            "--key",
            k1,
            "--action",
            "pause",
            "--description",
            "stop",
            "--now",
            "1001",
        ],
    );
    let id = proposal_of(&out);
    for (k, sup) in [(k0, "for"), (k1, "against")] {
        ok_in(&d, &["gov", "vote", "--db", "dao.db", "--key", k, "--proposal", &id, "--support", sup, "--now", "1020"]);
    }
    let anchor = ["gov", "audit", "anchor", "--db", "dao.db", "--deployment", "dep.json"];
    let out = ok_in(&d, &anchor);
    assert!(out.contains("head #4"), "{out}");
    // #5: the operator, as a member, delegates; then #6 and #7 queue and execute
    ok_in(&d, &["gov", "delegate", "--db", "dao.db", "--key", k0, "--to", &a[2], "--now", "1030"]);
    ok_in(&d, &["gov", "queue", "--db", "dao.db", "--key", k2, "--proposal", &id, "--now", "1112"]);
    ok_in(&d, &["gov", "execute", "--db", "dao.db", "--key", k2, "--proposal", &id, "--now", "1170"]);
    let out = ok_in(&d, &anchor);
    assert!(out.contains("head #7"), "{out}");
    let e = fails_in(&d, &anchor);
    assert!(e.contains("SeqNotIncreasing"), "a head already anchored is refused: {e}");
    // #8, not anchored yet
    ok_in(&d, &["gov", "delegate", "--db", "dao.db", "--key", k1, "--to", &a[1], "--now", "1180"]);
    let out = ok_in(&d, &verify_anchored);
    assert!(out.contains("8 entries verified") && out.contains("all 2 heads"), "{out}");
    assert!(out.contains("latest #7") && out.contains("entries #8..#8 are not anchored yet"), "{out}");
    ok_in(&d, &["gov", "audit", "export", "--db", "dao.db", "-o", "dao.jsonl"]);
    let out = ok_in(&d, &["gov", "audit", "verify", "--log", "dao.jsonl", "--anchor", "--deployment", "dep.json"]);
    assert!(out.contains("all 2 heads"), "{out}");

    // (a) A hostile operator rewrites its own entry #5 (delegating elsewhere), re-signs the act, recomputes every
    // later hash and re-signs every later head: the log alone verifies, the anchors do not.
    let operator = allonet_engine::keys::load_key_file(&d.join(k0)).unwrap();
    copy_db(&d.join("dao.db"), &d.join("rewritten.db"));
    {
        let s = allonet_store::Store::open(&d.join("rewritten.db")).unwrap();
        let (dao, chain_id) = (s.governor().dao, s.governor().chain_id);
        let entries = s.entries().unwrap();
        assert_eq!(entries.len(), 8);
        let mut prev = entries[3].hash;
        for en in &entries[4..] {
            let mut payload = en.payload.clone();
            if en.seq == 5 {
                let e: Event = serde_json::from_str(&payload).unwrap();
                assert!(matches!(e.act, Act::Delegate { .. }) && e.signer == operator.address(), "{payload}");
                let to = a[1].parse().unwrap();
                let forged = sign(&operator, Act::Delegate { to }, dao, chain_id, e.nonce, e.signed_at).unwrap();
                payload = allonet_core::canonical_json(&Event { at: e.at, ..forged });
                assert_ne!(payload, en.payload);
            }
            let hash = allonet_store::chain_hash(prev, en.seq, &payload);
            let head = sign_hash(&operator, head_hash(dao, chain_id, en.seq, hash, en.at)).unwrap();
            let c = s.connection();
            let seq = en.seq as i64;
            let sql = "UPDATE events SET payload = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4";
            assert_eq!(c.execute(sql, (&payload, prev.to_string(), hash.to_string(), seq)).unwrap(), 1);
            assert_eq!(c.execute("UPDATE heads SET signature = ?1 WHERE seq = ?2", (&head, seq)).unwrap(), 1);
            prev = hash;
        }
    }
    let out = ok_in(&d, &["gov", "audit", "verify", "--db", "rewritten.db"]);
    assert!(out.contains("8 entries verified"), "the rewrite is consistent in itself: {out}");
    let e = fails_in(&d, &["gov", "audit", "verify", "--db", "rewritten.db", "--anchor", "--deployment", "dep.json"]);
    assert!(e.contains("entry #7") && e.contains("the log was rewritten"), "{e}");
    assert!(e.starts_with("error: the audit log is broken at entry #7") && e.lines().count() == 1, "one line: {e}");
    ok_in(&d, &["gov", "audit", "export", "--db", "rewritten.db", "-o", "rewritten.jsonl"]);
    let e =
        fails_in(&d, &["gov", "audit", "verify", "--log", "rewritten.jsonl", "--anchor", "--deployment", "dep.json"]);
    assert!(e.contains("entry #7") && e.contains("the log was rewritten"), "{e}");

    // (b) The last 3 entries deleted, with their heads and projection rows: the log alone verifies (it ends at a
    // signed head), the anchors do not.
    copy_db(&d.join("dao.db"), &d.join("truncated.db"));
    {
        let s = allonet_store::Store::open(&d.join("truncated.db")).unwrap();
        let c = s.connection();
        for t in ["votes", "proposals", "heads", "events"] {
            c.execute(&format!("DELETE FROM {t} WHERE seq > 5"), []).unwrap();
        }
        let n: i64 = c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 5);
    }
    let out = ok_in(&d, &["gov", "audit", "verify", "--db", "truncated.db"]);
    assert!(out.contains("5 entries verified"), "the shortened log is consistent in itself: {out}");
    let e = fails_in(&d, &["gov", "audit", "verify", "--db", "truncated.db", "--anchor", "--deployment", "dep.json"]);
    assert!(e.contains("entry #7") && e.contains("entries were deleted"), "{e}");
    // the honest database still verifies against its anchors
    ok_in(&d, &verify_anchored);
}

#[test]
fn the_model_registry_serves_only_the_version_governance_activated() {
    let d = tmpdir("registry");
    let (h, p, m, db) = (d.join("h.csv"), d.join("p.csv"), d.join("m.json"), d.join("dao.db"));
    assert!(allonet(&[
        "model",
        "synth",
        "--rounds",
        "4",
        "--per-round",
        "30",
        "-o",
        h.to_str().unwrap(),
        "--new",
        "2",
        "--proposals",
        p.to_str().unwrap()
    ])
    .status
    .success());
    let o = allonet(&[
        "model",
        "train",
        "--data",
        h.to_str().unwrap(),
        "--trees",
        "10",
        "-o",
        m.to_str().unwrap(),
        "--json",
    ]);
    let id = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["model_id"].as_str().unwrap().to_string();
    let key = d.join("k.json");
    ok(&["gov", "keys", "new", "-o", key.to_str().unwrap()]);
    let addr = key_address(&key);
    let holders = d.join("holders.csv");
    std::fs::write(&holders, format!("address,balance\n{addr},100\n")).unwrap();
    let (dbs, ks) = (db.to_str().unwrap(), key.to_str().unwrap());
    ok(&[
        "gov",
        "init",
        "--db",
        dbs,
        "--holders",
        holders.to_str().unwrap(),
        "--guardian",
        &addr,
        "--voting-delay",
        "1",
        "--voting-period",
        "10",
        "--timelock",
        "5",
        "--rehearsal",
        "--now",
        "100",
    ]);
    let rec =
        || allonet(&["recommend", "--model", m.to_str().unwrap(), "--proposals", p.to_str().unwrap(), "--gov-db", dbs]);
    let o = rec();
    assert!(!o.status.success() && stderr(&o).contains("activated no model"), "{}", stderr(&o));
    let out = ok(&[
        "gov",
        "propose",
        "--db",
        dbs,
        "--key",
        ks,
        "--action",
        &format!("activate-model:{id}"),
        "--description",
        "model v1",
        "--now",
        "101",
    ]);
    let pid = proposal_of(&out);
    ok(&["gov", "vote", "--db", dbs, "--key", ks, "--proposal", &pid, "--support", "for", "--now", "103"]);
    ok(&["gov", "queue", "--db", dbs, "--key", ks, "--proposal", &pid, "--now", "113"]);
    assert!(!rec().status.success(), "queued is not activated");
    ok(&["gov", "execute", "--db", dbs, "--key", ks, "--proposal", &pid, "--now", "118"]);
    let o = rec();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn treasury_report_runway_and_stress_from_the_cli() {
    let t = [
        "--policy",
        "examples/treasury/policy.toml",
        "--holdings",
        "examples/treasury/holdings.csv",
        "--prices",
        "examples/treasury/prices.csv",
    ];
    let o = allonet(&[&["treasury", "report"][..], &t, &["--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rules: Vec<&str> = v["violations"].as_array().unwrap().iter().map(|x| x["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["cap of ETH", "band of ETH"]);
    assert!(v["risk"]["max_drawdown"].as_f64().unwrap() > 0.2);
    let run = |seed: &str| {
        allonet(
            &[&["treasury", "runway"][..], &t, &["--paths", "2000", "--months", "60", "--seed", seed, "--json"]]
                .concat(),
        )
    };
    let (a, b) = (run("1"), run("1"));
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout, "seeded");
    let o = allonet(&[
        "treasury",
        "stress",
        "--policy",
        "examples/treasury/policy.toml",
        "--holdings",
        "examples/treasury/holdings.csv",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["scenario"], "USDC depeg");
    assert!((v[0]["after"].as_f64().unwrap() - (11_000_000.0 - 0.12 * 3_200_000.0)).abs() < 1e-6);
    // a bad policy is refused with the reason
    let d = tmpdir("badpolicy");
    let bad = d.join("p.toml");
    let text = std::fs::read_to_string(root().join("examples/treasury/policy.toml"))
        .unwrap()
        .replace("target = 0.15", "target = 0.25");
    std::fs::write(&bad, text).unwrap();
    let o = allonet(&[
        "treasury",
        "report",
        "--policy",
        bad.to_str().unwrap(),
        "--holdings",
        "examples/treasury/holdings.csv",
    ]);
    assert!(!o.status.success() && stderr(&o).contains("sum to 1.1"), "{}", stderr(&o));
}

#[test]
fn treasury_optimize_rebalance_and_backtest_from_the_cli() {
    let pp = ["--policy", "examples/treasury/policy.toml", "--prices", "examples/treasury/prices.csv"];
    for method in ["min-vol", "max-sharpe", "utility", "min-cvar", "risk-parity"] {
        let o = allonet(&[&["treasury", "optimize"][..], &pp, &["--method", method, "--json"]].concat());
        assert!(o.status.success(), "{method}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let w = v["weights"].as_object().unwrap();
        let sum: f64 = w.values().map(|x| x.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-6, "{method}: weights sum to {sum}");
        if method != "risk-parity" {
            assert!(v["over_cap"].as_array().unwrap().is_empty(), "{method} respects the policy's caps");
        }
    }
    let o = allonet(&[&["treasury", "optimize"][..], &pp, &["--method", "efficient-return"]].concat());
    assert!(!o.status.success() && stderr(&o).contains("--target"), "{}", stderr(&o));
    let o = allonet(&[
        "treasury",
        "rebalance",
        "--policy",
        "examples/treasury/policy.toml",
        "--holdings",
        "examples/treasury/holdings.csv",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let net: f64 = v["trades"].as_array().unwrap().iter().map(|t| t["amount"].as_f64().unwrap()).sum();
    assert!(net.abs() < 1e-6);
    let o = allonet(&[&["treasury", "backtest"][..], &pp, &["--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["policy"]["max_drawdown"].as_f64().unwrap() > 0.0 && v["benchmark"]["rebalances"].as_u64().unwrap() > 30);
}

#[test]
fn every_command_has_working_help() {
    // clap's debug assertions (duplicate argument names, bad defaults) fire when a command is built
    for c in [
        "round",
        "chain deploy",
        "chain plan",
        "chain status",
        "chain export-safe",
        "chain advance",
        "config check",
        "gov decision",
        "payout",
        "bench payout",
        "retro",
        "tally",
        "verify",
        "demo",
        "recommend",
        "model train",
        "model evaluate",
        "model explain",
        "model synth",
        "flow run",
        "flow simulate",
        "flow fit",
        "flow score",
        "flow tune",
        "gov init",
        "gov propose",
        "gov vote",
        "gov delegate",
        "gov queue",
        "gov execute",
        "gov cancel",
        "gov pause",
        "gov status",
        "gov audit verify",
        "gov audit anchor",
        "gov audit export",
        "gov keys new",
        "treasury report",
        "treasury runway",
        "treasury stress",
        "treasury optimize",
        "treasury rebalance",
        "treasury backtest",
        "bench gr9",
        "bench forest",
        "bench flow",
        "bench gov",
    ] {
        let mut args: Vec<&str> = c.split(' ').collect();
        args.push("--help");
        let o = allonet(&args);
        assert!(o.status.success(), "`allonet {c} --help` failed: {}", stderr(&o));
    }
}
