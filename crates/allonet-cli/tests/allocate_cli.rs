//! `allonet allocate` as a user runs it: the real-data example, exact payable plans, the same bytes on
//! every run and thread count, and each refusal naming its field with nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use allonet_chain::plan::PayoutPlan;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn run(args: &[&str], threads: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_allonet"));
    c.args(args).current_dir(root());
    if let Some(t) = threads {
        c.env("RAYON_NUM_THREADS", t);
    }
    c.output().unwrap()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allonet-allocate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_example_gives_exact_payable_plans_and_the_same_bytes_on_any_thread_count() {
    let dir = tmpdir("example");
    let out1 = dir.join("one");
    let out2 = dir.join("two");
    let html = dir.join("a.html");
    let o = run(
        &[
            "allocate",
            "examples/allocate/allocate.toml",
            "-o",
            out1.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        Some("1"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("signal ai × 0.6: recommend.json (recommend)"), "{text}");
    assert!(text.contains("optimism") && text.contains("gitcoin") && text.contains("octant"));
    let o = run(&["allocate", "examples/allocate/allocate.toml", "-o", out2.to_str().unwrap()], Some("2"));
    assert!(o.status.success());
    let a1 = std::fs::read(out1.join("allocation.json")).unwrap();
    assert_eq!(a1, std::fs::read(out2.join("allocation.json")).unwrap(), "same inputs, same bytes, 1 or 2 threads");
    let alloc: serde_json::Value = serde_json::from_slice(&a1).unwrap();
    assert_eq!(alloc["solver"]["solver"], "newton", "the real example is solved on the fast path");
    let budgets = [
        ("optimism", "100000000000000000000000", true),
        ("gitcoin", "50000000000", true),
        ("octant", "20000000000000000000", false),
    ];
    for (pool, budget, spend_all) in budgets {
        let plan = PayoutPlan::load(&out1.join(format!("{pool}.plan.json"))).unwrap();
        assert_eq!(plan.source.map(|d| d.to_string()), alloc["plan_digest"].as_str().map(String::from));
        let total = plan.total.0;
        let budget: alloy_primitives::U256 = budget.parse().unwrap();
        if spend_all {
            assert_eq!(total, budget, "{pool} spends its budget to the base unit");
        } else {
            assert!(total <= budget);
        }
        assert_eq!(
            std::fs::read(out1.join(format!("{pool}.plan.json"))).unwrap(),
            std::fs::read(out2.join(format!("{pool}.plan.json"))).unwrap()
        );
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && !page.contains("http://cdn") && !page.contains("<script src"));
    // JSON on stdout carries the explanation of every project.
    let o = run(&["allocate", "examples/allocate/allocate.toml", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["projects"].as_array().unwrap().len(), 230);
    assert!(v["pools"][0]["shadow_price"].as_f64().unwrap() > 0.0);
}

fn instance(pools: &str, projects: &str) -> String {
    format!("{pools}\n{projects}")
}

const POOL: &str = "[[pools]]\nid = \"dao\"\ntoken = \"USDC\"\ndecimals = 6\nprice = 1\nbudget = \"1000\"\n";

fn project(id: usize, extra: &str) -> String {
    format!(
        "[[projects]]\nid = \"p{id}\"\naddress = \"0x{:040x}\"\nweight = 1\nutility = {{ kind = \"log\", a = 10.0 }}\n{extra}\n",
        id + 1
    )
}

/// Runs `allocate` on `text`; it must fail naming `needle`, and write no plan.
fn refused(name: &str, text: &str, needle: &str) {
    let dir = tmpdir(name);
    let file = dir.join("in.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("plans");
    let o = run(&["allocate", file.to_str().unwrap(), "-o", out.to_str().unwrap()], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{name}: accepted");
    assert!(err.contains(needle), "{name}: the error does not name `{needle}`: {err}");
    assert!(!Path::new(&out).exists(), "{name}: wrote {}", out.display());
}

#[test]
fn each_bad_input_is_refused_naming_its_field_and_writes_nothing() {
    let two = format!("{}{}", project(0, ""), project(1, ""));
    refused(
        "unknown-pool",
        &instance(POOL, &project(0, "eligible = [\"nope\"]")),
        "projects[0] (p0).eligible: unknown pool `nope`",
    );
    refused(
        "negative-budget",
        &instance(&POOL.replace("\"1000\"", "\"-5\""), &two),
        "pools[0] (dao).budget: `-5` is negative",
    );
    refused(
        "spend-all-capped",
        &instance(
            &format!("{POOL}spend_all = true\n"),
            &format!("{}{}", project(0, "pool_caps = { dao = \"100\" }"), project(1, "pool_caps = { dao = \"200\" }")),
        ),
        "pool `dao`: spend_all needs 1000 USDC given, but its 2 eligible projects (2 with a bound above zero) can take at most 300 USDC",
    );
    refused(
        "spend-all-cross-caps",
        &instance(
            &format!("{POOL}spend_all = true\n"),
            &format!("{}{}", project(0, "cap = \"100\""), project(1, "cap = \"200\"")),
        ),
        "the cross-pool caps of 2 projects bind (p0, p1)",
    );
    refused(
        "bad-address",
        &instance(POOL, &project(0, "").replace("0x0000000000000000000000000000000000000001", "Send to alice.eth")),
        "projects[0] (p0).address",
    );
    refused(
        "share",
        &instance(&format!("{POOL}max_share = 1.5\n"), &two),
        "pools[0] (dao).max_share: 1.5 must be in (0, 1]",
    );
    refused(
        "utility",
        &instance(POOL, &project(0, "").replace("a = 10.0", "a = -1.0")),
        "projects[0] (p0).utility: log needs a > 0",
    );
    refused(
        "weight-mix",
        &instance(POOL, &format!("{}{}", project(0, ""), project(1, "").replace("weight = 1\n", ""))),
        "give it on every project",
    );
    refused(
        "signal-without-weight",
        &format!("[signals]\nai = \"r.json\"\n{POOL}{two}"),
        "signals.ai: signal `ai` has no weight",
    );
    refused("unknown-field", &instance(POOL, &project(0, "colour = \"red\"")), "unknown field `colour`");
    refused(
        "duplicate",
        &instance(POOL, &format!("{}{}", project(0, ""), project(0, ""))),
        "project `p0` is given twice",
    );
    refused(
        "min-above-budget",
        &instance(&format!("{POOL}min_grant = \"2000\"\n"), &two),
        "pools[0] (dao).min_grant: `2000` exceeds the pool's budget",
    );
}
