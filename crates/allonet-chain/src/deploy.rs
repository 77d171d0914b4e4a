//! Deploying the whole suite: governance token, timelock, governor, payout token, and the allocator owned by
//! the timelock from its constructor, so the deployer never holds any power over it.
//!
//! Safe defaults: the agent's caps and veto delay start at 0 and its recipient registry empty (the first
//! governance proposal sets them); the guardian may cancel queued timelock operations; the deployer renounces
//! the timelock's admin role. [`verify_roles`] reads every role back. A deployment runs as a journal of named
//! steps ([`Journal`]): re-run with the same journal after an interruption, it skips what is done and
//! continues; no step leaves funds anywhere but in an allocator governance owns.

use std::collections::BTreeMap;

use alloy_primitives::{Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};

use crate::chain::{read, transact, Chain, ChainError, Tx};
use crate::contracts::{deploy_code, AIAllocator, AlloGovernor, AlloToken, PayToken, TimelockController};

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
        "TimelockController",
        deploy_code(
            &TimelockController::BYTECODE,
            &TimelockController::constructorCall {
                minDelay: U256::from(cfg.timelock_delay),
                proposers: vec![],
                executors: vec![Address::ZERO],
                admin: from,
            },
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
                votingPeriod_: cfg.voting_period as u32,
                proposalThreshold_: U256::ZERO,
                quorumPercent: U256::from(cfg.quorum_percent),
            },
        ),
    )?;
    let (proposer, canceller, admin) = timelock_roles(run.chain, timelock)?;
    run.call(
        "timelock: governor may propose",
        timelock,
        &TimelockController::grantRoleCall { role: proposer, account: governor },
    )?;
    run.call(
        "timelock: governor may cancel",
        timelock,
        &TimelockController::grantRoleCall { role: canceller, account: governor },
    )?;
    run.call(
        "timelock: guardian may cancel",
        timelock,
        &TimelockController::grantRoleCall { role: canceller, account: cfg.guardian },
    )?;
    run.call(
        "timelock: deployer renounces admin",
        timelock,
        &TimelockController::renounceRoleCall { role: admin, callerConfirmation: from },
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
    let d = Deployment {
        chain_id: run.chain.chain_id(),
        allocator,
        asset,
        asset_symbol: symbol,
        asset_decimals: decimals,
        gov_token,
        timelock,
        governor,
        agent: cfg.agent,
        guardian: cfg.guardian,
        deployer: from,
        from_block,
        compiler: crate::contracts::compiler_version(),
    };
    let problems = verify_roles(run.chain, &d, cfg.hand_to_timelock)?;
    if !problems.is_empty() {
        return Err(ChainError::Config(format!("the deployment's roles are wrong:\n  - {}", problems.join("\n  - "))));
    }
    Ok(d)
}

fn timelock_roles(chain: &mut dyn Chain, timelock: Address) -> Result<(B256, B256, B256), ChainError> {
    Ok((
        read(chain, timelock, &TimelockController::PROPOSER_ROLECall {})?,
        read(chain, timelock, &TimelockController::CANCELLER_ROLECall {})?,
        read(chain, timelock, &TimelockController::DEFAULT_ADMIN_ROLECall {})?,
    ))
}

/// Read every role of a deployment back and list what is not as it must be: the allocator's owner (the
/// timelock, unless `timelock_owns` is false), agent and guardian; caps and veto delay at 0; the governor
/// proposes and cancels on the timelock, the guardian cancels, and the deployer is no longer its admin.
pub fn verify_roles(chain: &mut dyn Chain, d: &Deployment, timelock_owns: bool) -> Result<Vec<String>, ChainError> {
    let mut problems = Vec::new();
    let a = d.allocator;
    let owner = read(chain, a, &AIAllocator::ownerCall {})?;
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
    let (proposer, canceller, admin) = timelock_roles(chain, d.timelock)?;
    let has = |c: &mut dyn Chain, role: B256, who: Address| {
        read(c, d.timelock, &TimelockController::hasRoleCall { role, account: who })
    };
    if !has(chain, proposer, d.governor)? {
        problems.push("the governor cannot propose on the timelock".into());
    }
    if !has(chain, canceller, d.governor)? {
        problems.push("the governor cannot cancel on the timelock".into());
    }
    if !has(chain, canceller, d.guardian)? {
        problems.push("the guardian cannot cancel queued timelock operations".into());
    }
    if has(chain, admin, d.deployer)? {
        problems.push("the deployer is still the timelock's admin".into());
    }
    if has(chain, proposer, d.deployer)? && d.deployer != d.governor {
        problems.push("the deployer may propose on the timelock".into());
    }
    Ok(problems)
}
