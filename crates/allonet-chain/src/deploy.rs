//! Deploying the whole suite: governance token, timelock, governor, payout token, and the allocator owned by
//! the timelock (so caps change only by vote).

use alloy_primitives::{Address, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::chain::{read, transact, Chain, ChainError, Tx};
use crate::contracts::{deploy_code, AIAllocator, AlloGovernor, AlloToken, PayToken, TimelockController};

/// What to deploy.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Sends the deployment transactions; owns the allocator until ownership moves to the timelock.
    pub deployer: Address,
    /// May pay within caps.
    pub agent: Address,
    /// May pause (kill switch).
    pub guardian: Address,
    /// Payout asset: `Native` (ETH), an existing ERC-20, or a fresh `PayToken` minted to the deployer.
    pub asset: Asset,
    /// Seconds per cap epoch.
    pub epoch_length: u64,
    /// Agent cap per epoch (asset units).
    pub epoch_cap: U256,
    /// Agent cap per recipient per epoch (asset units).
    pub recipient_cap: U256,
    /// Governance token holders and their balances (18 decimals); the holders self-delegate is up to them.
    pub holders: Vec<(Address, U256)>,
    /// Governor settings: blocks of delay, blocks of voting, quorum percent; timelock delay in seconds.
    pub voting_delay: u64,
    pub voting_period: u64,
    pub quorum_percent: u64,
    pub timelock_delay: u64,
    /// Fund the allocator with this much of the asset from the deployer.
    pub fund: U256,
    /// Hand the allocator to the timelock at the end (the production wiring).
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
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub what: String,
    pub tx_hash: String,
    pub gas_used: u64,
}

fn create(
    chain: &mut dyn Chain,
    from: Address,
    code: Bytes,
    what: &str,
    steps: &mut Vec<Step>,
) -> Result<Address, ChainError> {
    let r = chain.send(Tx { from, to: None, data: code, ..Default::default() })?;
    steps.push(Step { what: what.into(), tx_hash: r.tx_hash.to_string(), gas_used: r.gas_used });
    r.contract_address.ok_or_else(|| ChainError::Rpc(format!("{what}: receipt has no contract address")))
}

fn record(steps: &mut Vec<Step>, what: &str, r: Result<crate::Receipt, ChainError>) -> Result<(), ChainError> {
    let r = r.map_err(|e| ChainError::Config(format!("{what}: {e}")))?;
    steps.push(Step { what: what.into(), tx_hash: r.tx_hash.to_string(), gas_used: r.gas_used });
    Ok(())
}

/// Deploy the suite and wire it. Returns the deployment and the transactions sent.
pub fn deploy(chain: &mut dyn Chain, cfg: &DeployConfig) -> Result<(Deployment, Vec<Step>), ChainError> {
    if cfg.epoch_length == 0 {
        return Err(ChainError::Config("epoch length must be positive".into()));
    }
    let from = cfg.deployer;
    let from_block = chain.block_number()? + 1;
    let mut steps = Vec::new();
    let (holders, amounts): (Vec<Address>, Vec<U256>) = cfg.holders.iter().copied().unzip();
    let gov_token = create(
        chain,
        from,
        deploy_code(
            &AlloToken::BYTECODE,
            &AlloToken::constructorCall {
                name_: "Allonet Governance".into(),
                symbol_: "ALLO".into(),
                holders,
                amounts,
            },
        ),
        "AlloToken (ERC20Votes)",
        &mut steps,
    )?;
    let timelock = create(
        chain,
        from,
        deploy_code(
            &TimelockController::BYTECODE,
            &TimelockController::constructorCall {
                minDelay: U256::from(cfg.timelock_delay),
                proposers: vec![],
                executors: vec![Address::ZERO],
                admin: from,
            },
        ),
        "TimelockController",
        &mut steps,
    )?;
    let governor = create(
        chain,
        from,
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
        "AlloGovernor",
        &mut steps,
    )?;
    let proposer: alloy_primitives::B256 = read(chain, timelock, &TimelockController::PROPOSER_ROLECall {})?;
    let canceller: alloy_primitives::B256 = read(chain, timelock, &TimelockController::CANCELLER_ROLECall {})?;
    let r = transact(chain, from, timelock, &TimelockController::grantRoleCall { role: proposer, account: governor });
    record(&mut steps, "timelock: governor may propose", r)?;
    let r = transact(chain, from, timelock, &TimelockController::grantRoleCall { role: canceller, account: governor });
    record(&mut steps, "timelock: governor may cancel", r)?;
    let admin: alloy_primitives::B256 = read(chain, timelock, &TimelockController::DEFAULT_ADMIN_ROLECall {})?;
    let r = transact(
        chain,
        from,
        timelock,
        &TimelockController::renounceRoleCall { role: admin, callerConfirmation: from },
    );
    record(&mut steps, "timelock: deployer renounces admin", r)?;

    let (asset, symbol, decimals) = match &cfg.asset {
        Asset::Native => (Address::ZERO, "ETH".to_string(), 18),
        Asset::Erc20(a) => {
            let symbol: String = read(chain, *a, &PayToken::symbolCall {})?;
            let decimals: u8 = read(chain, *a, &PayToken::decimalsCall {})?;
            (*a, symbol, decimals)
        }
        Asset::NewToken { symbol, decimals, supply } => {
            let a = create(
                chain,
                from,
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
                "PayToken",
                &mut steps,
            )?;
            (a, symbol.clone(), *decimals)
        }
    };
    let allocator = create(
        chain,
        from,
        deploy_code(
            &AIAllocator::BYTECODE,
            &AIAllocator::constructorCall { initialOwner: from, asset_: asset, epochLength_: cfg.epoch_length },
        ),
        "AIAllocator",
        &mut steps,
    )?;
    let r = transact(chain, from, allocator, &AIAllocator::setAgentCall { agent_: cfg.agent });
    record(&mut steps, "allocator: set agent", r)?;
    let r = transact(chain, from, allocator, &AIAllocator::setGuardianCall { guardian_: cfg.guardian });
    record(&mut steps, "allocator: set guardian", r)?;
    let r = transact(
        chain,
        from,
        allocator,
        &AIAllocator::setCapsCall { epochCap_: cfg.epoch_cap, recipientCap_: cfg.recipient_cap },
    );
    record(&mut steps, "allocator: set caps", r)?;
    if !cfg.fund.is_zero() {
        let r = if asset == Address::ZERO {
            chain.send(Tx { from, to: Some(allocator), value: cfg.fund, ..Default::default() })
        } else {
            transact(chain, from, asset, &PayToken::transferCall { to: allocator, value: cfg.fund })
        };
        record(&mut steps, "fund the allocator", r)?;
    }
    if cfg.hand_to_timelock {
        let r = transact(chain, from, allocator, &AIAllocator::transferOwnershipCall { newOwner: timelock });
        record(&mut steps, "allocator: ownership to the timelock", r)?;
    }
    let d = Deployment {
        chain_id: chain.chain_id(),
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
    Ok((d, steps))
}
