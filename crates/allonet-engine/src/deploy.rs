//! Deploying a DAO's contracts with safe defaults, resumable from a journal.
//!
//! The deployer keeps no power: the timelock owns the allocator from its constructor, the deployer renounces the
//! timelock's admin role, the agent and guardian are keys of their own, the agent's caps and veto delay start at
//! 0 and its registry empty, so the first governance proposal must set them. On a JSON-RPC chain the agent, the
//! guardian and the governance token's holders must be given: a default would hand them to the deployer.

use std::path::{Path, PathBuf};

use allonet_chain::deploy::{deploy_resumable, Asset, DeployConfig, Journal, Step};
use allonet_core::{Address, TokenAmount};
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

use crate::connect::{dev_address, Connection, DeploymentFile, Endpoint, DEPLOYMENT_SCHEMA};
use crate::EngineError;

/// What to deploy; `None` fields take the embedded EVM's dev accounts and are refused on RPC.
#[derive(Debug, Clone)]
pub struct DeploySpec {
    pub asset: Asset,
    pub agent: Option<Address>,
    pub guardian: Option<Address>,
    /// Governance token holders and balances (18 decimals).
    pub holders: Option<Vec<(Address, TokenAmount)>>,
    pub epoch_length: u64,
    /// Asset moved from the deployer into the allocator (base units).
    pub fund: U256,
    pub voting_delay: u64,
    pub voting_period: u64,
    pub quorum_percent: u64,
    pub timelock_delay: u64,
    /// Keep the deployer as the allocator's owner (contract tests only; never on RPC).
    pub keep_owner: bool,
}

/// The embedded EVM's default cast: the deployer is dev account 0, the agent 1, the guardian 2, and three
/// holders (accounts 3, 4, 5) hold 400,000, 350,000 and 250,000 ALLO.
pub fn embedded_defaults() -> (Address, Address, Vec<(Address, TokenAmount)>) {
    let allo = |n: u64| TokenAmount(U256::from(n) * U256::from(10u64).pow(U256::from(18)));
    (
        Address(dev_address(1)),
        Address(dev_address(2)),
        vec![
            (Address(dev_address(3)), allo(400_000)),
            (Address(dev_address(4)), allo(350_000)),
            (Address(dev_address(5)), allo(250_000)),
        ],
    )
}

#[derive(Serialize, Deserialize)]
struct JournalFile {
    schema: String,
    chain_id: u64,
    journal: Journal,
}

const JOURNAL_SCHEMA: &str = "allonet.deploy-journal/1";

/// Where the journal of a deployment written to `out` lives.
pub fn journal_path(out: &Path) -> PathBuf {
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("deployment.json");
    out.with_file_name(format!("{name}.journal"))
}

/// Deploy (or continue an interrupted deployment from `out`'s journal) and write the deployment file to `out`.
/// The journal is saved after every step and removed once the deployment file is written.
pub fn deploy(
    conn: &mut Connection,
    endpoint: Endpoint,
    spec: &DeploySpec,
    out: &Path,
) -> Result<(DeploymentFile, Vec<Step>), EngineError> {
    let embedded = conn.is_embedded();
    let chain = conn.chain();
    let sender = *chain.signers().first().ok_or_else(|| EngineError::Config("no sending key".into()))?;
    let (dev_agent, dev_guardian, dev_holders) = embedded_defaults();
    let need = |what: &str| {
        EngineError::Config(format!(
            "on a JSON-RPC chain {what} must be given: a default would leave the power with the deployer"
        ))
    };
    let agent = match (spec.agent, embedded) {
        (Some(a), _) => a,
        (None, true) => dev_agent,
        (None, false) => return Err(need("--agent (a key of its own)")),
    };
    let guardian = match (spec.guardian, embedded) {
        (Some(a), _) => a,
        (None, true) => dev_guardian,
        (None, false) => return Err(need("--guardian")),
    };
    let holders = match (&spec.holders, embedded) {
        (Some(h), _) => h.clone(),
        (None, true) => dev_holders,
        (None, false) => return Err(need("--holders (who votes)")),
    };
    if spec.keep_owner && !embedded {
        return Err(EngineError::Config("--keep-owner is for embedded contract tests only".into()));
    }
    let cfg = DeployConfig {
        deployer: sender,
        agent: agent.0,
        guardian: guardian.0,
        asset: spec.asset.clone(),
        epoch_length: spec.epoch_length,
        holders: holders.iter().map(|(a, n)| (a.0, n.units())).collect(),
        voting_delay: spec.voting_delay,
        voting_period: spec.voting_period,
        quorum_percent: spec.quorum_percent,
        timelock_delay: spec.timelock_delay,
        fund: spec.fund,
        hand_to_timelock: !spec.keep_owner,
    };
    let jpath = journal_path(out);
    let chain_id = chain.chain_id();
    let mut journal = if jpath.exists() {
        let f: JournalFile = allonet_core::input::read_json(&jpath)?;
        if f.schema != JOURNAL_SCHEMA || f.chain_id != chain_id {
            return Err(EngineError::Config(format!(
                "{} is the journal of a deployment on chain {}, not this chain ({chain_id}): remove it or deploy \
                 elsewhere",
                jpath.display(),
                f.chain_id
            )));
        }
        f.journal
    } else {
        Journal::default()
    };
    let mut save_error = None;
    let mut save = |j: &Journal| {
        let f = JournalFile { schema: JOURNAL_SCHEMA.into(), chain_id, journal: j.clone() };
        if let Err(e) = crate::write_atomic(&jpath, serde_json::to_string_pretty(&f).expect("serialises").as_bytes()) {
            save_error.get_or_insert(e);
        }
    };
    let result = deploy_resumable(chain, &cfg, &mut journal, &mut save);
    // An embedded chain keeps what landed, so that its journal stays true.
    conn.save()?;
    if let Some(e) = save_error {
        return Err(e);
    }
    let d = result?;
    let file = DeploymentFile { schema: DEPLOYMENT_SCHEMA.into(), endpoint, deployment: d };
    file.save(out)?;
    let _ = std::fs::remove_file(&jpath);
    Ok((file, journal.steps))
}

/// Write the embedded EVM's cast as key files in `dir` (`deployer.json`, `agent.json`, `guardian.json`,
/// `holder1.json` … `holder3.json`), so a rehearsal can sign as each of them. These are anvil's public dev keys:
/// never fund them on a real chain. Existing files are left alone.
pub fn write_dev_keys(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::Io { path: dir.display().to_string(), cause: e })?;
    let names = ["deployer", "agent", "guardian", "holder1", "holder2", "holder3"];
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let p = dir.join(format!("{name}.json"));
        if !p.exists() {
            let k = allonet_chain::rpc::signer_from_hex(allonet_chain::anvil::DEV_KEYS[i])?;
            crate::keys::write_key_file(&p, &k)?;
        }
        out.push(p);
    }
    Ok(out)
}

/// The payout asset from its command-line form: `native`, an ERC-20 address, or `new:SYMBOL:DECIMALS:SUPPLY`
/// (a fresh PayToken minted to the deployer, SUPPLY in whole tokens).
pub fn parse_asset(s: &str) -> Result<Asset, EngineError> {
    let bad = |m: String| EngineError::Config(format!("--asset: {m}"));
    Ok(match s {
        "native" | "eth" | "ETH" => Asset::Native,
        s if s.starts_with("new:") => {
            let parts: Vec<&str> = s.split(':').collect();
            if parts.len() != 4 {
                return Err(bad(format!("new:SYMBOL:DECIMALS:SUPPLY, e.g. new:USDC:6:1000000000 (got {s:?})")));
            }
            let decimals: u8 = parts[2].parse().map_err(|_| bad(format!("decimals {:?} is not 0..=255", parts[2])))?;
            let supply = allonet_core::Token::new("", decimals)
                .parse(parts[3])
                .map_err(|e| bad(format!("supply {:?}: {e}", parts[3])))?
                .units();
            Asset::NewToken { symbol: parts[1].to_string(), decimals, supply }
        }
        s => Asset::Erc20(Address::parse(s).map_err(|e| bad(e.to_string()))?.0),
    })
}

/// The decimals an asset pays in (an existing ERC-20's are read from the chain).
pub fn asset_decimals(chain: &mut dyn allonet_chain::Chain, asset: &Asset) -> Result<u8, EngineError> {
    Ok(match asset {
        Asset::Native => 18,
        Asset::NewToken { decimals, .. } => *decimals,
        Asset::Erc20(t) => allonet_chain::read(chain, *t, &allonet_chain::contracts::PayToken::decimalsCall {})
            .map_err(|e| EngineError::Config(format!("--asset {t}: cannot read decimals(): {e}")))?,
    })
}

/// Whether a deployment uses the embedded EVM's rehearsal cast (no agent, guardian or holders given).
pub fn uses_embedded_cast(conn: &Connection, spec: &DeploySpec) -> bool {
    conn.is_embedded() && spec.agent.is_none() && spec.guardian.is_none() && spec.holders.is_none()
}
