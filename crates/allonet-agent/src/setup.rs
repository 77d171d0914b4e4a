//! The agent's setup: `agent.toml` in its folder.
//!
//! ```toml
//! [agent]
//! name = "Example agent"
//! governance = "dao.db"        # the DAO's governance store: kill switch, activated model, audit log
//! models = "models"            # model files; the activated one is served as models/<id>.json
//! key_file = "keys/agent.json" # the agent's key: it signs the proposals it files (propose mode)
//! batch_size = 200             # optional: payments per batch (one transaction each) in its plans
//!
//! [inputs]
//! problem = "allocate.toml"    # the allocation instance: pools, rules, projects and their payout addresses
//! votes = "votes.json"         # ballots, tallied quadratically (`allonet tally`)
//! features = "features.csv"    # each project's features for the model, labelled by project name
//!
//! [signals]                    # the instance's signal files, served from the agent's own stages
//! "recommend.json" = "recommend"
//! "tally.json" = "score"
//!
//! [treasury]                   # optional: the plan checked against the treasury policy (and scaled down to fit)
//! policy = "policy.toml"
//! holdings = "holdings.csv"
//! draws = { gitcoin = "USDC", octant = "ETH" }   # pool → the asset its payments come out of
//!
//! [treasury.swaps]             # optional: a rebalance the policy calls for, as Uniswap v2 swaps (once approved)
//! amm = "chains/treasury.amm.json"     # the AMM, the treasury's tokens and its account
//! state = "chains/optimism.state.json" # its chain (or rpc = "…")
//! executor_key = "keys/treasury.json"  # optional: the treasury account's key; without it a Safe batch is written
//! max_slippage_bp = 100                # least output accepted below the pool's price (1 %; at most 3 %)
//! reference_prices = { ETH = 3000 }    # a pool further than max_deviation_bp (200) from these is not traded
//!
//! [payouts.optimism]           # where a pool pays: its allocator's deployment, on the embedded EVM or an RPC
//! deployment = "chains/optimism.deployment.json"
//! state = "chains/optimism.state.json"   # or rpc = "https://…", with optional max_fee_gwei = 2000 (the most a
//!                                        # transaction offers per gas) and stuck_after_s = 60 (then replaced)
//! ```
//! Paths are relative to the folder. Unknown keys are refused, naming them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::stages::Stage;
use crate::AgentError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    agent: AgentSection,
    inputs: Inputs,
    #[serde(default)]
    signals: BTreeMap<String, String>,
    #[serde(default)]
    payouts: BTreeMap<String, PayoutTarget>,
    #[serde(default)]
    treasury: Option<TreasurySetup>,
}

/// The treasury the plan is checked against: its policy, its holdings, and which asset each pool draws on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreasurySetup {
    /// The policy (`allonet treasury report --policy`).
    pub policy: PathBuf,
    /// Holdings: `asset,value_usd`.
    pub holdings: PathBuf,
    /// Pool id → the treasury asset its payments come out of (valued at the pool's price).
    pub draws: BTreeMap<String, String>,
    /// The treasury's tokens and a Uniswap v2 on one chain: a rebalance the policy calls for is made there.
    #[serde(default)]
    pub swaps: Option<crate::rebalance::SwapSetup>,
}

/// Where one pool pays: its allocator's deployment (`allonet chain deploy`) and the chain it is on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutTarget {
    /// The deployment file.
    pub deployment: PathBuf,
    /// The embedded EVM's state file (when there is no `rpc`).
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// A JSON-RPC endpoint instead.
    #[serde(default)]
    pub rpc: Option<String>,
    /// Over JSON-RPC: the most a transaction may offer per gas, in gwei (default 2,000).
    #[serde(default)]
    pub max_fee_gwei: Option<u64>,
    /// Over JSON-RPC: seconds before a transaction not mined is replaced at a higher fee (default 60).
    #[serde(default)]
    pub stuck_after_s: Option<u64>,
}

/// The send policy `max_fee_gwei` and `stuck_after_s` give (`None` when neither is set).
pub fn send_policy(max_fee_gwei: Option<u64>, stuck_after_s: Option<u64>) -> Option<allonet_chain::rpc::SendPolicy> {
    if max_fee_gwei.is_none() && stuck_after_s.is_none() {
        return None;
    }
    let d = allonet_chain::rpc::SendPolicy::default();
    Some(allonet_chain::rpc::SendPolicy {
        max_fee_per_gas: max_fee_gwei.map(|g| g as u128 * 1_000_000_000).unwrap_or(d.max_fee_per_gas),
        stuck_after: stuck_after_s.map(std::time::Duration::from_secs).unwrap_or(d.stuck_after),
        ..d
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentSection {
    name: String,
    governance: PathBuf,
    models: PathBuf,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    batch_size: Option<u32>,
}

/// The input files an epoch observes (relative to the agent's folder).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    pub problem: PathBuf,
    pub votes: PathBuf,
    pub features: PathBuf,
}

impl PayoutTarget {
    /// How to reach its chain: the embedded EVM's state file, or the JSON-RPC endpoint (no sending key).
    pub fn connect_spec(&self) -> allonet_engine::connect::ConnectSpec {
        allonet_engine::connect::ConnectSpec {
            embedded: self.rpc.is_none(),
            state: self.state.clone().unwrap_or_default(),
            rpc: self.rpc.clone(),
            send_policy: send_policy(self.max_fee_gwei, self.stuck_after_s),
            ..Default::default()
        }
    }
}

/// The agent's setup, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    pub name: String,
    /// The DAO's governance database (absolute).
    pub governance: PathBuf,
    /// Folder of model files (absolute).
    pub models: PathBuf,
    /// The agent's key (it signs the proposals it files in propose mode).
    pub key_file: Option<PathBuf>,
    /// Payments per batch (one transaction each) in the plans it makes.
    pub batch_size: u32,
    pub inputs: Inputs,
    /// Signal file named in the instance → the stage whose output serves it.
    pub signals: BTreeMap<String, Stage>,
    /// Pool id → where it pays (paths absolute). A pool without one is not paid by the agent.
    pub payouts: BTreeMap<String, PayoutTarget>,
    /// The treasury check, if configured (paths relative to the folder, as observed inputs).
    pub treasury: Option<TreasurySetup>,
    /// keccak-256 of the `agent.toml` text: an epoch finishes with the setup it began with.
    pub digest: allonet_core::Digest,
}

impl Setup {
    /// Reads `agent.toml` in `dir`.
    pub fn load(dir: &Path) -> Result<Setup, AgentError> {
        let path = dir.join("agent.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            AgentError::Setup(format!("{}: cannot read it: {e} (agent init DIR makes one)", path.display()))
        })?;
        Setup::parse(dir, &path.display().to_string(), &text)
    }

    /// Parses the text of an `agent.toml` in `dir`.
    pub fn parse(dir: &Path, name: &str, text: &str) -> Result<Setup, AgentError> {
        let f: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            AgentError::Setup(format!("{name}{}: {}", line.map(|l| format!(":{l}")).unwrap_or_default(), e.message()))
        })?;
        let mut signals = BTreeMap::new();
        for (file, stage) in f.signals {
            let s = match stage.as_str() {
                "recommend" => Stage::Recommend,
                "score" => Stage::Score,
                other => {
                    return Err(AgentError::Setup(format!(
                        "{name}: signals.\"{file}\": `{other}` is not a stage that makes a signal (recommend or score)"
                    )))
                }
            };
            signals.insert(file, s);
        }
        if f.agent.name.trim().is_empty() {
            return Err(AgentError::Setup(format!("{name}: agent.name is empty")));
        }
        Ok(Setup {
            name: f.agent.name,
            governance: dir.join(f.agent.governance),
            models: dir.join(f.agent.models),
            key_file: f.agent.key_file.map(|k| dir.join(k)),
            batch_size: match f.agent.batch_size {
                None => allonet_chain::plan::DEFAULT_BATCH_SIZE,
                Some(b) if (1..=allonet_chain::plan::MAX_BATCH_SIZE).contains(&b) => b,
                Some(b) => {
                    return Err(AgentError::Setup(format!(
                        "{name}: agent.batch_size {b} is not between 1 and {}",
                        allonet_chain::plan::MAX_BATCH_SIZE
                    )))
                }
            },
            inputs: f.inputs,
            signals,
            payouts: f
                .payouts
                .into_iter()
                .map(|(pool, t)| {
                    let t =
                        PayoutTarget { deployment: dir.join(t.deployment), state: t.state.map(|s| dir.join(s)), ..t };
                    (pool, t)
                })
                .collect(),
            treasury: f.treasury,
            digest: allonet_core::digest::keccak(text.as_bytes()),
        })
    }
}
