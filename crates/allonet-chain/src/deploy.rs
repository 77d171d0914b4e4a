//! Deploying the whole suite: governance token, timelock, governor, payout token, the allocator owned by the
//! timelock from its constructor, so the deployer never holds any power over it, and the `AlloAnchor` the
//! off-chain audit log is anchored in (no owner, no roles: see [`crate::anchor`]).
//!
//! Safe defaults: the agent's caps and veto delay start at 0 and its recipient registry empty (the first
//! governance proposal sets them); the timelock (`AlloTimelock`) has no admin from its constructor on, the
//! deployer names the governor once and can grant nothing else; the guardian may cancel queued timelock
//! operations except those that replace it. [`verify_deployment`] reads every role back, including every
//! role the timelock ever granted. A deployment runs as a journal of named
//! steps ([`Journal`]): re-run with the same journal after an interruption, it skips what is done and
//! continues; no step leaves funds anywhere but in an allocator governance owns.

use std::collections::BTreeMap;

use alloy_primitives::{Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};

use crate::chain::{read, transact, Chain, ChainError, LogFilter, Tx};
use crate::contracts::{deploy_code, AIAllocator, AlloAnchor, AlloGovernor, AlloTimelock, AlloToken, PayToken};

/// What to deploy.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Sends the deployment transactions; owns the allocator until ownership moves to the timelock.
    pub deployer: Address,
    /// Queues plans within the standing caps and pays approved ones; must differ from the deployer.
    pub agent: Address,
    /// May pause (kill switch).
    pub guardian: Address,
    /// Payout asset: `Native` (ETH), an existing ERC-20, or a fresh `PayToken` minted to the deployer.
    pub asset: Asset,
    /// Seconds per cap epoch.
    pub epoch_length: u64,
    /// Governance token holders and their balances (18 decimals); the holders self-delegate is up to them.
    pub holders: Vec<(Address, U256)>,
    /// Governor settings: blocks of delay, blocks of voting, quorum percent; timelock delay in seconds.
    pub voting_delay: u64,
    pub voting_period: u64,
    pub quorum_percent: u64,
    pub timelock_delay: u64,
    /// Fund the allocator with this much of the asset from the deployer.
    pub fund: U256,
    /// The timelock owns the allocator (the production wiring). `false` makes the deployer its owner, for
    /// tests of the contract's rules only.
    pub hand_to_timelock: bool,
}

/// The payout asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Asset {
    Native,
    Erc20(Address),
    /// Deploy a new PayToken: symbol, decimals, supply minted to the deployer.
    NewToken {
        symbol: String,
        decimals: u8,
        supply: U256,
    },
}

/// Addresses of a deployment, as written to the deployment file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub chain_id: u64,
    pub allocator: Address,
    /// Zero address for native payouts.
    pub asset: Address,
    pub asset_symbol: String,
    pub asset_decimals: u8,
    pub gov_token: Address,
    pub timelock: Address,
    pub governor: Address,
    /// The `AlloAnchor` the off-chain audit log's heads are anchored in; zero in deployment files written
    /// before it was part of the suite.
    #[serde(default)]
    pub anchor: Address,
    pub agent: Address,
    pub guardian: Address,
    pub deployer: Address,
    /// First block of the deployment: logs are read from here.
    pub from_block: u64,
    /// Compiler that built the bytecode.
    pub compiler: String,
}

/// Every transaction of a deployment, for printing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub what: String,
    pub tx_hash: String,
    pub gas_used: u64,
}

/// What a deployment has done so far: the steps that landed and the contracts they created. Saved after
/// every step; a deployment given the journal of an interrupted one continues where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Steps that landed, in order.
    pub steps: Vec<Step>,
    /// Contracts created, by step name.
    pub created: BTreeMap<String, Address>,
    /// The block the deployment's first transaction could land in: its events are read from here.
    pub from_block: u64,
}

impl Journal {
    fn done(&self, what: &str) -> bool {
        self.steps.iter().any(|s| s.what == what)
    }
}

struct Run<'a> {
    chain: &'a mut dyn Chain,
    from: Address,
    journal: &'a mut Journal,
    save: &'a mut dyn FnMut(&Journal),
}

impl Run<'_> {
    fn landed(&mut self, what: &str, r: crate::Receipt) {
        self.journal.steps.push(Step { what: what.into(), tx_hash: r.tx_hash.to_string(), gas_used: r.gas_used });
        if let Some(a) = r.contract_address {
            self.journal.created.insert(what.into(), a);
        }
        (self.save)(self.journal);
    }

    fn create(&mut self, what: &str, code: Bytes) -> Result<Address, ChainError> {
        if let Some(a) = self.journal.created.get(what) {
            return Ok(*a);
        }
        let r = self.chain.send(Tx { from: self.from, to: None, data: code, ..Default::default() })?;
        let a =
            r.contract_address.ok_or_else(|| ChainError::Rpc(format!("{what}: receipt has no contract address")))?;
        self.landed(what, r);
        Ok(a)
    }

    fn call<C: alloy_sol_types::SolCall>(&mut self, what: &str, to: Address, call: &C) -> Result<(), ChainError> {
        if self.journal.done(what) {
            return Ok(());
        }
        let r = transact(self.chain, self.from, to, call).map_err(|e| ChainError::Config(format!("{what}: {e}")))?;
        self.landed(what, r);
        Ok(())
    }
}

/// Deploy the suite and wire it. Returns the deployment and the transactions sent.
pub fn deploy(chain: &mut dyn Chain, cfg: &DeployConfig) -> Result<(Deployment, Vec<Step>), ChainError> {
    let mut journal = Journal::default();
    let d = deploy_resumable(chain, cfg, &mut journal, &mut |_| {})?;
    Ok((d, journal.steps))
}

/// [`deploy`], continuing from `journal` and calling `save` after every step that lands.
pub fn deploy_resumable(
    chain: &mut dyn Chain,
    cfg: &DeployConfig,
    journal: &mut Journal,
    save: &mut dyn FnMut(&Journal),
) -> Result<Deployment, ChainError> {
    if cfg.epoch_length == 0 {
        return Err(ChainError::Config("epoch length must be positive".into()));
    }
    if cfg.agent == cfg.deployer || cfg.agent == Address::ZERO {
        return Err(ChainError::Config(format!(
            "the agent ({}) must be a key of its own, not the deployer's nor zero",
            cfg.agent
        )));
    }
    if cfg.agent == cfg.guardian {
        return Err(ChainError::Config("the agent and the guardian must be different keys".into()));
    }
    if cfg.holders.is_empty() {
        return Err(ChainError::Config("no governance token holders: give at least one".into()));
    }
    if cfg.voting_delay >= 1 << 48 || cfg.voting_period == 0 || cfg.voting_period > u64::from(u32::MAX) {
        return Err(ChainError::Config(format!(
            "voting delay {} and period {} blocks: the delay must be below 2^48 and the period 1 to 2^32 - 1",
            cfg.voting_delay, cfg.voting_period
        )));
    }
    let from = cfg.deployer;
    if journal.steps.is_empty() {
        journal.from_block = chain.block_number()? + 1;
    }
    let from_block = journal.from_block;
    let mut run = Run { chain, from, journal, save };
    let (holders, amounts): (Vec<Address>, Vec<U256>) = cfg.holders.iter().copied().unzip();
    let gov_token = run.create(
        "AlloToken (ERC20Votes)",
        deploy_code(
            &AlloToken::BYTECODE,
            &AlloToken::constructorCall {
                name_: "Allonet Governance".into(),
                symbol_: "ALLO".into(),
                holders,
                amounts,
            },
        ),
    )?;
    let timelock = run.create(
        "AlloTimelock",
        deploy_code(
            &AlloTimelock::BYTECODE,
            &AlloTimelock::constructorCall { minDelay: U256::from(cfg.timelock_delay), guardian: cfg.guardian },
        ),
    )?;
    let governor = run.create(
        "AlloGovernor",
        deploy_code(
            &AlloGovernor::BYTECODE,
            &AlloGovernor::constructorCall {
                token: gov_token,
                timelock,
                votingDelay_: alloy_primitives::aliases::U48::from(cfg.voting_delay),
                votingPeriod_: u32::try_from(cfg.voting_period).expect("checked above"),
                proposalThreshold_: U256::ZERO,
                quorumPercent: U256::from(cfg.quorum_percent),
            },
        ),
    )?;
    run.call(
        "timelock: the governor proposes and cancels (named once)",
        timelock,
        &AlloTimelock::bindGovernorCall { governor },
    )?;

    let (asset, symbol, decimals) = match &cfg.asset {
        Asset::Native => (Address::ZERO, "ETH".to_string(), 18),
        Asset::Erc20(a) => {
            let symbol: String = read(run.chain, *a, &PayToken::symbolCall {})?;
            let decimals: u8 = read(run.chain, *a, &PayToken::decimalsCall {})?;
            (*a, symbol, decimals)
        }
        Asset::NewToken { symbol, decimals, supply } => {
            let a = run.create(
                "PayToken",
                deploy_code(
                    &PayToken::BYTECODE,
                    &PayToken::constructorCall {
                        name_: format!("{symbol} (allonet payout token)"),
                        symbol_: symbol.clone(),
                        decimals_: *decimals,
                        holder: from,
                        supply: *supply,
                    },
                ),
            )?;
            (a, symbol.clone(), *decimals)
        }
    };
    let owner = if cfg.hand_to_timelock { timelock } else { from };
    let allocator = run.create(
        "AIAllocator",
        deploy_code(
            &AIAllocator::BYTECODE,
            &AIAllocator::constructorCall {
                initialOwner: owner,
                asset_: asset,
                epochLength_: cfg.epoch_length,
                agent_: cfg.agent,
                guardian_: cfg.guardian,
            },
        ),
    )?;
    // After the allocator, so the addresses of the contracts before it stay those of earlier versions.
    let anchor = run.create("AlloAnchor", AlloAnchor::BYTECODE.clone())?;
    let d = Deployment {
        chain_id: run.chain.chain_id(),
        allocator,
        asset,
        asset_symbol: symbol,
        asset_decimals: decimals,
        gov_token,
        timelock,
        governor,
        anchor,
        agent: cfg.agent,
        guardian: cfg.guardian,
        deployer: from,
        from_block,
        compiler: crate::contracts::compiler_version(),
    };
    // Verified before any funds move: a journal (or a chain) that names contracts which are not this
    // deployment's is refused while the funds are still the deployer's.
    let problems = verify_deployment(run.chain, &d, cfg)?;
    if !problems.is_empty() {
        return Err(ChainError::Config(format!("the deployment's roles are wrong:\n  - {}", problems.join("\n  - "))));
    }
    const FUND: &str = "fund the allocator";
    if !cfg.fund.is_zero() && !run.journal.done(FUND) {
        // A re-run after a crash between sending and journaling must not fund twice.
        if crate::payout::asset_balance(run.chain, asset, allocator)? < cfg.fund {
            let r = if asset == Address::ZERO {
                run.chain.send(Tx { from, to: Some(allocator), value: cfg.fund, ..Default::default() })
            } else {
                transact(run.chain, from, asset, &PayToken::transferCall { to: allocator, value: cfg.fund })
            };
            let r = r.map_err(|e| ChainError::Config(format!("{FUND}: {e}")))?;
            run.landed(FUND, r);
        }
    }
    Ok(d)
}

fn timelock_roles(chain: &mut dyn Chain, timelock: Address) -> Result<(B256, B256, B256, B256), ChainError> {
    Ok((
        read(chain, timelock, &AlloTimelock::PROPOSER_ROLECall {})?,
        read(chain, timelock, &AlloTimelock::CANCELLER_ROLECall {})?,
        read(chain, timelock, &AlloTimelock::DEFAULT_ADMIN_ROLECall {})?,
        read(chain, timelock, &AlloTimelock::EXECUTOR_ROLECall {})?,
    ))
}

/// [`verify_roles`] plus what a fresh deployment must hold: the configured timelock delay, asset and epoch
/// length, the agent's caps and veto delay at 0, and an anchor contract (code that answers `AlloAnchor`'s views).
pub fn verify_deployment(chain: &mut dyn Chain, d: &Deployment, cfg: &DeployConfig) -> Result<Vec<String>, ChainError> {
    let mut problems = verify_roles(chain, d, cfg.hand_to_timelock)?;
    let a = d.allocator;
    if read(chain, d.timelock, &AlloTimelock::getMinDelayCall {})? != U256::from(cfg.timelock_delay) {
        problems.push(format!("the timelock's delay is not the configured {} s", cfg.timelock_delay));
    }
    if read(chain, a, &AIAllocator::assetCall {})? != d.asset {
        problems.push("the allocator pays another asset than the deployment says".into());
    }
    if read(chain, a, &AIAllocator::epochLengthCall {})? != cfg.epoch_length {
        problems.push("the allocator's epoch length is not the configured one".into());
    }
    let mut supply = U256::ZERO;
    for &(holder, amount) in &cfg.holders {
        supply = supply.saturating_add(amount);
        if read(chain, d.gov_token, &AlloToken::balanceOfCall { account: holder })? != amount {
            problems.push(format!("the governance token does not give {holder} its configured {amount} votes"));
        }
    }
    if read(chain, d.gov_token, &AlloToken::totalSupplyCall {})? != supply {
        problems.push("the governance token's supply is not the configured holders' sum".into());
    }
    let caps = (read(chain, a, &AIAllocator::epochCapCall {})?, read(chain, a, &AIAllocator::recipientCapCall {})?);
    if caps != (U256::ZERO, U256::ZERO) || read(chain, a, &AIAllocator::vetoDelayCall {})? != 0 {
        problems.push("a fresh allocator must start with caps and veto delay at 0".into());
    }
    problems.extend(crate::anchor::verify_anchor(chain, d.anchor)?);
    Ok(problems)
}

/// Read every role of a deployment back and list what is not as it must be: the allocator's owner (the
/// timelock, unless `timelock_owns` is false), agent and guardian; the governor names the timelock and the
/// token; on the timelock, the governor was bound and proposes and cancels, the guardian cancels, anyone
/// executes, and every role ever granted (its `RoleGranted` events since the deployment's first block) went to
/// one of those: the timelock itself (admin), the governor, the guardian, or anyone (executor). A deployer that
/// granted itself or a second key a role is named.
pub fn verify_roles(chain: &mut dyn Chain, d: &Deployment, timelock_owns: bool) -> Result<Vec<String>, ChainError> {
    use alloy_sol_types::SolEvent;
    let mut problems = Vec::new();
    let a = d.allocator;
    let owner = read(chain, a, &AIAllocator::ownerCall {}).map_err(|e| {
        ChainError::Config(format!("the deployment's roles are wrong: {a} is not an AIAllocator ({e})"))
    })?;
    let want_owner = if timelock_owns { d.timelock } else { d.deployer };
    if owner != want_owner {
        problems.push(format!("the allocator's owner is {owner}, expected {want_owner}"));
    }
    if read(chain, a, &AIAllocator::agentCall {})? != d.agent {
        problems.push("the allocator's agent is not the configured agent".into());
    }
    if read(chain, a, &AIAllocator::guardianCall {})? != d.guardian {
        problems.push("the allocator's guardian is not the configured guardian".into());
    }
    if read(chain, d.governor, &AlloGovernor::timelockCall {})? != d.timelock {
        problems.push("the governor executes through another timelock".into());
    }
    if read(chain, d.governor, &AlloGovernor::tokenCall {})? != d.gov_token {
        problems.push("the governor counts another token's votes".into());
    }
    let (proposer, canceller, admin, executor) = timelock_roles(chain, d.timelock)?;
    let has = |c: &mut dyn Chain, role: B256, who: Address| {
        read(c, d.timelock, &AlloTimelock::hasRoleCall { role, account: who })
    };
    if !read(chain, d.timelock, &AlloTimelock::governorBoundCall {})? || !has(chain, proposer, d.governor)? {
        problems.push("the governor cannot propose on the timelock".into());
    }
    if !has(chain, canceller, d.governor)? {
        problems.push("the governor cannot cancel on the timelock".into());
    }
    if !has(chain, canceller, d.guardian)? {
        problems.push("the guardian cannot cancel queued timelock operations".into());
    }
    if !has(chain, executor, Address::ZERO)? {
        problems.push("execution of passed proposals is not open to anyone".into());
    }
    let grants = chain.logs(&LogFilter {
        address: d.timelock,
        topic0: vec![AlloTimelock::RoleGranted::SIGNATURE_HASH],
        topic1: None,
        topic2: None,
        from_block: d.from_block,
        to_block: None,
    })?;
    for g in grants.iter().filter_map(|l| l.decode::<AlloTimelock::RoleGranted>()) {
        let expected = (g.role == admin && g.account == d.timelock)
            || (g.role == proposer && g.account == d.governor)
            || (g.role == canceller && (g.account == d.governor || g.account == d.guardian))
            || (g.role == executor && g.account == Address::ZERO);
        if !expected {
            problems.push(format!(
                "the timelock granted role {} to {}, which the deployment does not provide for",
                g.role, g.account
            ));
        }
    }
    for role in [admin, proposer, canceller] {
        if has(chain, role, d.deployer)? {
            problems.push(format!("the deployer holds timelock role {role}"));
        }
    }
    Ok(problems)
}
