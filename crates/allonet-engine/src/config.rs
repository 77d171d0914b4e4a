//! One typed configuration of a DAO: `allonet.toml`.
//!
//! ```toml
//! [dao]
//! name = "Example DAO"
//! governance = "onchain"            # or "offchain" (signed votes in SQLite, as Snapshot)
//! database = "dao.db"               # the SQLite governance store and audit log (required off chain)
//!
//! [token]                           # what the allocator pays in
//! symbol = "USDC"
//! decimals = 6
//!
//! [agent]
//! address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
//! key_file = "keys/agent.json"      # optional; else $ALLONET_KEY
//! epoch_cap = "10000"               # whole tokens the agent may queue per epoch (what governance sets)
//! recipient_cap = "2500"            # whole tokens one recipient may receive per epoch under queued plans
//! veto_delay = 86400                # seconds a queued plan waits (at least 3600)
//!
//! [guardian]
//! address = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
//!
//! [[pools]]
//! id = "main"
//! budget = "100000"                 # whole tokens
//! chain = "default"                 # a name under [chains]
//!
//! [chains.default]
//! deployment = "deployment.json"
//! # rpc = "https://…", chain_id = 10, key_file = "…", key_env = "OP_KEY", state = "chain.json"
//! ```
//! Amounts are decimal strings in whole tokens, parsed digit by digit into [`TokenAmount`]s (never through a
//! float); addresses are checked (EIP-55). Every error names the file, the line and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use allonet_core::{Address, InputError, Token, TokenAmount};
use serde::Deserialize;
use toml::Spanned;

use crate::connect::ChainEntry;
use crate::EngineError;

/// How the DAO decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum GovernanceMode {
    /// AlloGovernor + AlloTimelock own the allocator; plans are approved by on-chain proposals.
    OnChain,
    /// Signed votes in SQLite; an executed decision lets the agent queue a plan within the standing caps.
    OffChain,
}

/// The agent's standing authority, as governance sets it on the allocator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentConfig {
    pub address: Address,
    pub key_file: Option<PathBuf>,
    pub epoch_cap: TokenAmount,
    pub recipient_cap: TokenAmount,
    pub veto_delay: u64,
}

/// One pool: a budget in the DAO's token, paid on one chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolConfig {
    pub id: String,
    pub budget: TokenAmount,
    pub chain: String,
}

/// A DAO's configuration, checked whole.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DaoConfig {
    pub name: String,
    pub governance: GovernanceMode,
    /// The SQLite governance store (resolved against the file's folder).
    pub database: Option<PathBuf>,
    pub token: Token,
    pub agent: AgentConfig,
    pub guardian: Address,
    pub pools: Vec<PoolConfig>,
    /// Chains by name (paths resolved against the file's folder).
    #[serde(skip)]
    pub chains: BTreeMap<String, ChainEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    dao: RawDao,
    token: RawToken,
    agent: RawAgent,
    guardian: RawGuardian,
    #[serde(default)]
    pools: Vec<RawPool>,
    #[serde(default)]
    chains: BTreeMap<String, ChainEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDao {
    name: String,
    governance: Spanned<String>,
    database: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    symbol: String,
    decimals: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    address: Spanned<String>,
    key_file: Option<PathBuf>,
    epoch_cap: Spanned<String>,
    recipient_cap: Spanned<String>,
    veto_delay: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuardian {
    address: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    id: String,
    budget: Spanned<String>,
    chain: Spanned<String>,
}

/// Shortest veto delay the allocator accepts for queued plans (`AIAllocator.MIN_VETO_DELAY`).
pub const MIN_VETO_DELAY: u64 = 3_600;

impl DaoConfig {
    /// Read and check `allonet.toml`.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EngineError::Io { path: path.display().to_string(), cause: e })?;
        Self::parse(path, &text)
    }

    /// Check a configuration's text; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self, EngineError> {
        let name = path.display().to_string();
        let raw: RawFile = toml::from_str(text).map_err(|e| crate::connect::toml_error(path, text, &e))?;
        let line = |span: std::ops::Range<usize>| text[..span.start.min(text.len())].lines().count().max(1) as u64;
        let at = |span: std::ops::Range<usize>, field: &str, msg: String| {
            EngineError::Input(InputError::at(name.clone(), line(span), field, msg))
        };
        let governance = match raw.dao.governance.get_ref().as_str() {
            "onchain" => GovernanceMode::OnChain,
            "offchain" => GovernanceMode::OffChain,
            other => {
                return Err(at(
                    raw.dao.governance.span(),
                    "dao.governance",
                    format!("`{other}` is not a governance mode (expected \"onchain\" or \"offchain\")"),
                ))
            }
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let database = raw.dao.database.map(|p| base.join(p));
        if governance == GovernanceMode::OffChain && database.is_none() {
            return Err(EngineError::Input(InputError::file(
                name,
                "dao.database: off-chain governance needs its SQLite store (e.g. database = \"dao.db\")",
            )));
        }
        let token = Token::new(raw.token.symbol, raw.token.decimals);
        let amount = |s: &Spanned<String>, field: &str| {
            token.parse(s.get_ref()).map_err(|e| at(s.span(), field, format!("`{}`: {e}", s.get_ref())))
        };
        let address = |s: &Spanned<String>, field: &str| {
            Address::parse(s.get_ref()).map_err(|e| at(s.span(), field, e.to_string()))
        };
        let veto = *raw.agent.veto_delay.get_ref();
        if veto < MIN_VETO_DELAY {
            return Err(at(
                raw.agent.veto_delay.span(),
                "agent.veto_delay",
                format!("{veto} s is shorter than the allocator's minimum veto window ({MIN_VETO_DELAY} s)"),
            ));
        }
        let agent = AgentConfig {
            address: address(&raw.agent.address, "agent.address")?,
            key_file: raw.agent.key_file.map(|p| base.join(p)),
            epoch_cap: amount(&raw.agent.epoch_cap, "agent.epoch_cap")?,
            recipient_cap: amount(&raw.agent.recipient_cap, "agent.recipient_cap")?,
            veto_delay: veto,
        };
        if agent.recipient_cap > agent.epoch_cap {
            return Err(at(
                raw.agent.recipient_cap.span(),
                "agent.recipient_cap",
                "is larger than agent.epoch_cap: no recipient can receive more than the agent may queue".into(),
            ));
        }
        let guardian = address(&raw.guardian.address, "guardian.address")?;
        if guardian == agent.address {
            return Err(at(
                raw.guardian.address.span(),
                "guardian.address",
                "the guardian must not be the agent".into(),
            ));
        }
        let mut chains = raw.chains;
        for c in chains.values_mut() {
            c.deployment = base.join(&c.deployment);
            c.key_file = c.key_file.take().map(|p| base.join(p));
            c.state = c.state.take().map(|p| base.join(p));
        }
        let mut pools = Vec::new();
        for (i, p) in raw.pools.iter().enumerate() {
            let field = format!("pools[{i}]");
            if pools.iter().any(|q: &PoolConfig| q.id == p.id) {
                return Err(at(p.budget.span(), &format!("{field}.id"), format!("pool `{}` defined twice", p.id)));
            }
            if !chains.contains_key(p.chain.get_ref()) {
                return Err(at(
                    p.chain.span(),
                    &format!("{field}.chain"),
                    format!("`{}` is not a chain under [chains]", p.chain.get_ref()),
                ));
            }
            pools.push(PoolConfig {
                id: p.id.clone(),
                budget: amount(&p.budget, &format!("{field}.budget"))?,
                chain: p.chain.get_ref().clone(),
            });
        }
        Ok(DaoConfig { name: raw.dao.name, governance, database, token, agent, guardian, pools, chains })
    }

    /// The standing authority the first governance proposal gives the agent: caps and veto delay (the registry
    /// comes from the plans' recipients).
    pub fn standing_actions(&self) -> Vec<allonet_chain::governor::Action> {
        crate::govern::standing_actions(
            self.agent.epoch_cap.units(),
            self.agent.recipient_cap.units(),
            Vec::new(),
            self.agent.veto_delay,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[dao]
name = "Example DAO"
governance = "offchain"
database = "dao.db"

[token]
symbol = "USDC"
decimals = 6

[agent]
address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
epoch_cap = "10000"
recipient_cap = "2500.5"
veto_delay = 86400

[guardian]
address = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"

[[pools]]
id = "main"
budget = "100000"
chain = "default"

[chains.default]
deployment = "deployment.json"
"#;

    fn parse(text: &str) -> Result<DaoConfig, EngineError> {
        DaoConfig::parse(Path::new("dao/allonet.toml"), text)
    }

    #[test]
    fn a_good_file_gives_exact_amounts_and_resolved_paths() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.governance, GovernanceMode::OffChain);
        assert_eq!(c.agent.recipient_cap.units(), alloy_primitives::U256::from(2_500_500_000u64));
        assert_eq!(c.pools[0].budget.units(), alloy_primitives::U256::from(100_000_000_000u64));
        assert_eq!(c.database, Some(PathBuf::from("dao/dao.db")));
        assert_eq!(c.chains["default"].deployment, PathBuf::from("dao/deployment.json"));
        assert_eq!(c.standing_actions().len(), 2);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_field() {
        let cases = [
            (GOOD.replace("\"10000\"", "\"10,000\""), "allonet.toml:13", "agent.epoch_cap"),
            (GOOD.replace("\"100000\"", "\"-5\""), "allonet.toml:22", "pools[0].budget"),
            (GOOD.replace("offchain", "snapshot"), "allonet.toml:4", "dao.governance"),
            (
                GOOD.replace("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x3C44"),
                "allonet.toml:18",
                "guardian.address",
            ),
            (GOOD.replace("chain = \"default\"", "chain = \"base\""), "allonet.toml:23", "pools[0].chain"),
            (GOOD.replace("veto_delay = 86400", "veto_delay = 60"), "allonet.toml:15", "agent.veto_delay"),
            (GOOD.replace("decimals = 6", "decimals = 6\ncolour = \"red\""), "allonet.toml:", "unknown field `colour`"),
            (GOOD.replace("\"2500.5\"", "\"20000\""), "allonet.toml:14", "agent.recipient_cap"),
        ];
        for (text, place, field) in cases {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(place) && e.contains(field), "{field}: {e}");
        }
        let e = parse(&GOOD.replace("database = \"dao.db\"\n", "")).unwrap_err().to_string();
        assert!(e.contains("dao.database"), "{e}");
    }
}
