//! Starting a local `anvil` node (from the npm package `@foundry-rs/anvil-linux-amd64`, pinned in
//! `contracts/package.json`) on 127.0.0.1 and a free port; the node stops when the handle drops.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::chain::ChainError;

/// anvil's first six default dev accounts (mnemonic "test test ... junk"), public test keys: deployer, agent,
/// guardian and three governance token holders in allonet's embedded defaults.
pub const DEV_KEYS: [&str; 6] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
];

/// The `contracts/` folder of this checkout.
pub fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

/// Install `contracts/`'s pinned npm packages (solc, OpenZeppelin, anvil) unless `marker` exists already.
/// `Ok(false)` when npm is missing. One install at a time per process.
pub fn npm_install(marker: &str) -> Result<bool, ChainError> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = contracts_dir();
    if dir.join(marker).exists() {
        return Ok(true);
    }
    // Across processes (cargo nextest runs tests as separate processes): a lock file, stale after 10 minutes.
    let lock = dir.join(".npm-install.lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    while std::fs::OpenOptions::new().write(true).create_new(true).open(&lock).is_err() {
        if std::time::Instant::now() > deadline {
            let _ = std::fs::remove_file(&lock);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    struct Unlock(PathBuf);
    impl Drop for Unlock {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _unlock = Unlock(lock);
    if dir.join(marker).exists() {
        return Ok(true);
    }
    if Command::new("npm").arg("--version").output().is_err() {
        if std::env::var_os("ALLONET_REQUIRE_NPM").is_some() {
            return Err(ChainError::Config("ALLONET_REQUIRE_NPM is set but npm is not installed".into()));
        }
        return Ok(false);
    }
    let st = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .map_err(|e| ChainError::Config(format!("npm ci: {e}")))?;
    if !st.success() || !dir.join(marker).exists() {
        return Err(ChainError::Config(format!("npm ci in contracts/ did not install {marker}")));
    }
    Ok(true)
}

/// Path to the anvil binary, installed by `npm ci` in `contracts/` when missing; `Ok(None)` without npm.
pub fn anvil_binary() -> Result<Option<PathBuf>, ChainError> {
    const BIN: &str = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
    Ok(npm_install(BIN)?.then(|| contracts_dir().join(BIN)))
}

/// A running anvil node.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    pub port: u16,
    pub chain_id: u64,
}

impl Anvil {
    /// Start anvil with `chain_id` on a free loopback port and wait until it answers.
    pub fn start(bin: &std::path::Path, chain_id: u64) -> Result<Self, ChainError> {
        Self::spawn(bin, chain_id, &["--gas-limit", "100000000"])
    }

    /// Start anvil as a fork of the node at `url` (its latest block; `--fork-url`), with the same chain id: a
    /// scratch copy of that chain's state, where transactions change nothing on the real one.
    pub fn fork(bin: &std::path::Path, url: &str, chain_id: u64) -> Result<Self, ChainError> {
        Self::spawn(bin, chain_id, &["--fork-url", url])
    }

    /// Start anvil without automatic mining: transactions wait in its pool until [`Anvil`]'s user mines
    /// (`evm_mine`), as on a congested chain.
    pub fn start_without_mining(bin: &std::path::Path, chain_id: u64) -> Result<Self, ChainError> {
        Self::spawn(bin, chain_id, &["--gas-limit", "100000000", "--no-mining"])
    }

    fn spawn(bin: &std::path::Path, chain_id: u64, extra: &[&str]) -> Result<Self, ChainError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| ChainError::Config(format!("no free port: {e}")))?
            .port();
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--chain-id", &chain_id.to_string()])
            .args(extra)
            .arg("--silent")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ChainError::Config(format!("starting {}: {e}", bin.display())))?;
        let anvil = Anvil { child, port, chain_id };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(ChainError::Config(format!("anvil did not open port {port} within 20 s")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(anvil)
    }

    /// The node's HTTP endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
