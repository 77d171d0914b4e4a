//! The committed artifacts must be what the pinned solc-js makes of the committed sources.

use std::process::Command;

use allonet_chain::anvil::contracts_dir;

#[test]
fn committed_artifacts_match_a_fresh_compile() {
    if Command::new("node").arg("--version").output().is_err() {
        assert!(std::env::var_os("ALLONET_REQUIRE_NPM").is_none(), "ALLONET_REQUIRE_NPM is set but node is missing");
        eprintln!("SKIP: node is not installed, cannot recompile the contracts");
        return;
    }
    let dir = contracts_dir();
    if !dir.join("node_modules/solc").exists() {
        let st =
            Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().expect("npm runs");
        assert!(st.success(), "npm ci in contracts/ failed");
    }
    let out = Command::new("node").args(["compile.js", "--check"]).current_dir(&dir).output().expect("node runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "stale contract artifacts:\n{text}");
    assert!(text.contains("up to date"), "{text}");
}

#[test]
fn artifacts_record_the_pinned_compiler_and_evm_version() {
    for (name, text) in allonet_chain::contracts::ARTIFACTS {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["contractName"], *name);
        assert!(v["compiler"]["version"].as_str().unwrap().starts_with("0.8.37+"), "{name}");
        assert_eq!(v["compiler"]["settings"]["evmVersion"], "cancun", "{name}");
        assert!(v["bytecode"].as_str().unwrap().len() > 100, "{name}");
    }
}
