//! Deployment files and the chains they live on: the embedded EVM (a state file) or any JSON-RPC endpoint, and
//! a chains file naming several of them for one plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use allonet_chain::anvil::DEV_KEYS;
use allonet_chain::deploy::Deployment;
use allonet_chain::rpc::signer_from_hex;
use allonet_chain::{Chain, Embedded, Rpc};
use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Where a deployment lives, recorded in the deployment file so later commands reconnect by themselves.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Embedded { state: PathBuf },
    Rpc { url: String },
}

/// Schema tag of deployment files.
pub const DEPLOYMENT_SCHEMA: &str = "allonet.deployment/2";

/// A deployment file: where and what.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DeploymentFile {
    pub schema: String,
    pub endpoint: Endpoint,
    #[serde(flatten)]
    pub deployment: Deployment,
}

impl DeploymentFile {
    /// Read and check a deployment file.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let f: DeploymentFile = allonet_core::input::read_json(path)?;
        if f.schema != DEPLOYMENT_SCHEMA {
            return Err(EngineError::Config(format!(
                "{}: schema is {:?}, expected {DEPLOYMENT_SCHEMA:?} (redeploy with this version)",
                path.display(),
                f.schema
            )));
        }
        Ok(f)
    }

    /// Write it (atomically).
    pub fn save(&self, path: &Path) -> Result<(), EngineError> {
        crate::write_atomic(path, (serde_json::to_string_pretty(self).expect("serialises") + "\n").as_bytes())
    }
}

/// How to reach a chain and as whom.
#[derive(Clone, Debug, Default)]
pub struct ConnectSpec {
    /// Use the embedded EVM with `state`, even if a deployment says otherwise.
    pub embedded: bool,
    /// Embedded EVM state file.
    pub state: PathBuf,
    /// JSON-RPC endpoint.
    pub rpc: Option<String>,
    /// Refuse an endpoint that reports another chain id.
    pub chain_id: Option<u64>,
    /// Key file of the sender (see [`crate::keys`]); else the environment variable `key_env`.
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the sender's hex key (default `ALLONET_KEY`).
    pub key_env: String,
    /// A key already loaded; takes precedence over `key_file` and `key_env`.
    pub key: Option<alloy_signer_local::PrivateKeySigner>,
    /// How sends over JSON-RPC are replaced when stuck, and the most they may offer per gas (default:
    /// [`allonet_chain::rpc::SendPolicy::default`]).
    pub send_policy: Option<allonet_chain::rpc::SendPolicy>,
}

/// An open chain. The embedded EVM keeps its state in memory until [`Connection::save`].
pub enum Connection {
    Embedded(Embedded, PathBuf),
    Rpc(Rpc),
}

impl Connection {
    /// The chain behind it.
    pub fn chain(&mut self) -> &mut dyn Chain {
        match self {
            Connection::Embedded(e, _) => e,
            Connection::Rpc(r) => r,
        }
    }

    /// Persist the embedded EVM's state (no-op on RPC).
    pub fn save(&self) -> Result<(), EngineError> {
        if let Connection::Embedded(e, _) = self {
            e.save()?;
        }
        Ok(())
    }

    /// Whether this is the embedded EVM.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Connection::Embedded(..))
    }

    /// Advance a development chain: `blocks` blocks and `seconds` seconds (embedded EVM, or anvil's
    /// `anvil_mine`/`evm_increaseTime`). Real chains refuse it.
    pub fn advance(&mut self, blocks: u64, seconds: u64) -> Result<(), EngineError> {
        match self {
            Connection::Embedded(e, _) => {
                if blocks > 0 {
                    e.mine(blocks);
                }
                if seconds > 0 {
                    e.warp(seconds);
                }
                Ok(())
            }
            Connection::Rpc(r) => Ok(r.advance(blocks, seconds)?),
        }
    }
}

/// The address of anvil's dev account `i` (the embedded EVM funds the same accounts).
pub fn dev_address(i: usize) -> Address {
    signer_from_hex(DEV_KEYS[i]).expect("dev key").address()
}

/// Connect: an explicit `--rpc` or `--embedded` wins, else the deployment's endpoint, else the embedded EVM.
/// An embedded chain funds anvil's dev accounts on first use (it has no signatures: any funded account sends).
/// On RPC the key comes from the key file or the environment; reading needs none.
pub fn connect(spec: &ConnectSpec, endpoint: Option<&Endpoint>) -> Result<(Connection, Endpoint), EngineError> {
    let endpoint = match (&spec.rpc, spec.embedded, endpoint) {
        (Some(url), _, _) => Endpoint::Rpc { url: url.clone() },
        (None, true, _) => Endpoint::Embedded { state: spec.state.clone() },
        (None, false, Some(e)) => e.clone(),
        (None, false, None) => Endpoint::Embedded { state: spec.state.clone() },
    };
    let conn = match &endpoint {
        Endpoint::Embedded { state } => {
            if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| EngineError::Io { path: dir.display().to_string(), cause: e })?;
            }
            let mut e = Embedded::open(state)?;
            for i in 0..DEV_KEYS.len() {
                let a = dev_address(i);
                if !e.signers().contains(&a) {
                    e.fund(a, U256::from(10u64).pow(U256::from(24)));
                }
            }
            Connection::Embedded(e, state.clone())
        }
        Endpoint::Rpc { url } => {
            let env = if spec.key_env.is_empty() { "ALLONET_KEY" } else { &spec.key_env };
            let signers = match (&spec.key, &spec.key_file, std::env::var(env)) {
                (Some(k), _, _) => vec![k.clone()],
                (None, None, Err(_)) => vec![],
                _ => vec![crate::keys::load_key(spec.key_file.as_deref(), env)?],
            };
            Connection::Rpc(
                Rpc::connect(url, spec.chain_id, signers)?.with_policy(spec.send_policy.clone().unwrap_or_default()),
            )
        }
    };
    Ok((conn, endpoint))
}

/// `[chains.NAME]` entries of a chains file: where each chain's part of a plan is paid.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ChainsFile {
    pub chains: BTreeMap<String, ChainEntry>,
}

/// One chain of a chains file.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ChainEntry {
    /// Its deployment file (relative to the chains file).
    pub deployment: PathBuf,
    pub rpc: Option<String>,
    /// Embedded EVM state file (when there is no `rpc`).
    pub state: Option<PathBuf>,
    pub chain_id: Option<u64>,
    pub key_file: Option<PathBuf>,
    pub key_env: Option<String>,
}

impl ChainsFile {
    /// Read a chains file; errors name the file, line and field.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EngineError::Io { path: path.display().to_string(), cause: e })?;
        toml::from_str(&text).map_err(|e| EngineError::Input(toml_error(path, &text, &e)))
    }
}

/// A TOML error as a located [`allonet_core::InputError`] (file, line, field).
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> allonet_core::InputError {
    let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1) as u64);
    let message = e.message().to_string();
    match line {
        Some(l) => allonet_core::InputError {
            line: Some(l),
            ..allonet_core::InputError::file(path.display().to_string(), message)
        },
        None => allonet_core::InputError::file(path.display().to_string(), message),
    }
}

/// One chain a plan pays on, resolved: its name, deployment and how to connect.
#[derive(Debug, Clone)]
pub struct ChainTarget {
    /// The plan's chain name (`None` = the default chain).
    pub name: Option<String>,
    pub deployment: DeploymentFile,
    pub connect: ConnectSpec,
}

impl ChainTarget {
    /// The name for people (`default` for the default chain).
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| "default".into())
    }
}

/// Resolve every chain name of a plan: `None` to the default deployment and connection, others through the
/// chains file. A name the file does not define, or a key variable that is not set, is refused here, before
/// any chain is contacted.
pub fn resolve_chains(
    names: &[Option<String>],
    default_deployment: &Path,
    default_connect: &ConnectSpec,
    chains_file: Option<&Path>,
) -> Result<Vec<ChainTarget>, EngineError> {
    let chains = chains_file.map(ChainsFile::load).transpose()?;
    let base = chains_file.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let mut out = Vec::new();
    for name in names {
        let (dep_path, connect) = match name {
            None => (default_deployment.to_path_buf(), default_connect.clone()),
            Some(n) => {
                let entry = chains.as_ref().and_then(|c| c.chains.get(n)).ok_or_else(|| {
                    EngineError::Config(format!(
                        "the plan pays on chain {n:?}, which {} does not define",
                        chains_file.map(|p| p.display().to_string()).unwrap_or_else(|| "no chains file".into())
                    ))
                })?;
                if let Some(env) = &entry.key_env {
                    if entry.key_file.is_none() && std::env::var(env).is_err() {
                        return Err(EngineError::Config(format!(
                            "chain {n:?}: environment variable {env} (its key) is not set"
                        )));
                    }
                }
                let connect = ConnectSpec {
                    embedded: entry.rpc.is_none() && entry.state.is_some(),
                    rpc: entry.rpc.clone(),
                    chain_id: entry.chain_id,
                    key_file: entry.key_file.as_ref().map(|k| base.join(k)),
                    state: entry.state.as_ref().map(|p| base.join(p)).unwrap_or_else(|| default_connect.state.clone()),
                    key_env: entry.key_env.clone().unwrap_or_else(|| "ALLONET_KEY".into()),
                    key: None,
                    send_policy: default_connect.send_policy.clone(),
                };
                (base.join(&entry.deployment), connect)
            }
        };
        out.push(ChainTarget { name: name.clone(), deployment: DeploymentFile::load(&dep_path)?, connect });
    }
    Ok(out)
}
