//! The embedded EVM: `revm` in-process, one block per transaction (like anvil's automine), state kept in a
//! JSON file between runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use revm::context::result::{ExecutionResult, Output};
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::TxKind;
use revm::state::AccountInfo;
use revm::{Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};
use serde::{Deserialize, Serialize};

use crate::chain::{Chain, ChainError, LogFilter, LogRecord, Receipt, Tx};

/// Chain id of the embedded EVM (anvil's default, so dev tooling recognises it).
pub const EMBEDDED_CHAIN_ID: u64 = 31337;
/// Seconds per block, as on Ethereum mainnet.
pub const BLOCK_TIME: u64 = 12;
/// Block gas limit of the embedded chain.
pub const BLOCK_GAS_LIMIT: u64 = 1_000_000_000;
/// Start time of a fresh embedded chain (2026-01-01T00:00:00Z), so runs are reproducible.
pub const GENESIS_TIME: u64 = 1_767_225_600;

/// The embedded EVM backend.
pub struct Embedded {
    db: CacheDB<EmptyDB>,
    number: u64,
    timestamp: u64,
    logs: Vec<LogRecord>,
    /// Gas used by each mined transaction (its receipt's `gasUsed`).
    gas: BTreeMap<B256, u64>,
    path: Option<PathBuf>,
    signers: Vec<Address>,
    chain_id: u64,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("block", &self.number).field("path", &self.path).finish()
    }
}

impl Default for Embedded {
    fn default() -> Self {
        Self::new()
    }
}

impl Embedded {
    /// A fresh chain at block 0, in memory.
    pub fn new() -> Self {
        Embedded {
            db: CacheDB::new(EmptyDB::default()),
            number: 0,
            timestamp: GENESIS_TIME,
            logs: Vec::new(),
            gas: BTreeMap::new(),
            path: None,
            signers: Vec::new(),
            chain_id: EMBEDDED_CHAIN_ID,
        }
    }

    /// A fresh chain with another chain id (to rehearse several chains at once).
    pub fn with_chain_id(chain_id: u64) -> Self {
        Embedded { chain_id, ..Self::new() }
    }

    /// Open the state file at `path` (a fresh chain when it does not exist). [`Embedded::save`] writes it back.
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        let mut chain = if path.exists() {
            let text =
                std::fs::read_to_string(path).map_err(|e| ChainError::Config(format!("{}: {e}", path.display())))?;
            let state: State = serde_json::from_str(&text).map_err(|e| {
                ChainError::Config(format!("{}: not an embedded chain state file: {e}", path.display()))
            })?;
            Self::from_state(state)?
        } else {
            Self::new()
        };
        chain.path = Some(path.to_path_buf());
        Ok(chain)
    }

    /// [`Embedded::open`], creating a fresh chain with `chain_id` when the file does not exist; an existing file
    /// must hold that chain id.
    pub fn open_with_chain_id(path: &Path, chain_id: u64) -> Result<Self, ChainError> {
        let mut chain = if path.exists() { Self::open(path)? } else { Self::with_chain_id(chain_id) };
        if chain.chain_id != chain_id {
            return Err(ChainError::Config(format!(
                "{} holds chain {}, not chain {chain_id}",
                path.display(),
                chain.chain_id
            )));
        }
        chain.path = Some(path.to_path_buf());
        Ok(chain)
    }

    /// Write the state back to the file it was opened from (atomically).
    pub fn save(&self) -> Result<(), ChainError> {
        let Some(path) = &self.path else { return Ok(()) };
        let text = serde_json::to_string(&self.to_state()).expect("state serialises");
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| ChainError::Config(format!("{}: {e}", path.display())))
    }

    /// Give `who` native balance and make it a signer.
    pub fn fund(&mut self, who: Address, wei: U256) {
        let mut info = self.account(who);
        info.balance = wei;
        self.db.insert_account_info(who, info);
        if !self.signers.contains(&who) {
            self.signers.push(who);
        }
    }

    /// Advance `blocks` empty blocks (12 s each).
    pub fn mine(&mut self, blocks: u64) {
        self.number += blocks;
        self.timestamp += blocks * BLOCK_TIME;
    }

    /// Advance the clock by `seconds` (and one block).
    pub fn warp(&mut self, seconds: u64) {
        self.number += 1;
        self.timestamp += seconds;
    }

    fn account(&self, who: Address) -> AccountInfo {
        self.db.cache.accounts.get(&who).map(|a| a.info.clone()).unwrap_or_default()
    }

    fn tx_env(&self, tx: &Tx, gas: u64) -> TxEnv {
        let kind = match tx.to {
            Some(to) => TxKind::Call(to),
            None => TxKind::Create,
        };
        TxEnv::builder()
            .caller(tx.from)
            .kind(kind)
            .data(tx.data.clone())
            .value(tx.value)
            .gas_limit(gas)
            .gas_price(0)
            .nonce(self.account(tx.from).nonce)
            .chain_id(Some(self.chain_id))
            .build_fill()
    }

    /// The latest block (`pending = false`, for calls) or the block the next transaction will be mined in
    /// (for gas estimates, so a transaction that crosses into a new cap epoch is estimated as it will run).
    fn block_env(&self, pending: bool) -> BlockEnv {
        let k = u64::from(pending);
        BlockEnv {
            number: U256::from(self.number + k),
            timestamp: U256::from(self.timestamp + k * BLOCK_TIME),
            gas_limit: BLOCK_GAS_LIMIT,
            basefee: 0,
            ..Default::default()
        }
    }

    /// Run `tx` against the next block; commit when `commit`.
    fn run(&mut self, tx: &Tx, gas: u64, commit: bool, pending: bool) -> Result<ExecutionResult, ChainError> {
        let mut cfg: CfgEnv = CfgEnv::default();
        cfg.chain_id = self.chain_id;
        cfg.disable_nonce_check = !commit;
        cfg.tx_gas_limit_cap = Some(BLOCK_GAS_LIMIT);
        let block = self.block_env(pending);
        let env = self.tx_env(tx, gas);
        let db = std::mem::take(&mut self.db);
        let mut evm = Context::mainnet().with_db(db).with_block(block).with_cfg(cfg).build_mainnet();
        let result = if commit { evm.transact_commit(env) } else { evm.transact(env).map(|r| r.result) };
        self.db = evm.ctx.journaled_state.database;
        result.map_err(|e| ChainError::Config(format!("transaction invalid: {e:?}")))
    }

    fn to_state(&self) -> State {
        let accounts = self
            .db
            .cache
            .accounts
            .iter()
            .map(|(addr, acc)| {
                let code = acc.info.code.as_ref().map(|c| c.original_bytes()).filter(|c| !c.is_empty());
                let storage: BTreeMap<U256, U256> =
                    acc.storage.iter().filter(|(_, v)| !v.is_zero()).map(|(k, v)| (*k, *v)).collect();
                (*addr, AccountState { balance: acc.info.balance, nonce: acc.info.nonce, code, storage })
            })
            .collect();
        State {
            schema: STATE_SCHEMA.into(),
            chain_id: self.chain_id,
            number: self.number,
            timestamp: self.timestamp,
            signers: self.signers.clone(),
            accounts,
            logs: self.logs.clone(),
            gas: self.gas.clone(),
        }
    }

    fn from_state(state: State) -> Result<Self, ChainError> {
        if state.schema != STATE_SCHEMA {
            return Err(ChainError::Config(format!(
                "state file schema is {:?}, expected {STATE_SCHEMA:?}",
                state.schema
            )));
        }
        let mut chain = Self::with_chain_id(state.chain_id);
        for (addr, acc) in state.accounts {
            let info = match acc.code {
                Some(code) => {
                    let bytecode = Bytecode::new_raw(code);
                    AccountInfo::new(acc.balance, acc.nonce, bytecode.hash_slow(), bytecode)
                }
                None => AccountInfo { balance: acc.balance, nonce: acc.nonce, ..Default::default() },
            };
            chain.db.insert_account_info(addr, info);
            for (k, v) in acc.storage {
                chain
                    .db
                    .insert_account_storage(addr, k, v)
                    .map_err(|e| ChainError::Config(format!("state file: {e:?}")))?;
            }
        }
        chain.number = state.number;
        chain.timestamp = state.timestamp;
        chain.logs = state.logs;
        chain.gas = state.gas;
        chain.signers = state.signers;
        Ok(chain)
    }
}

const STATE_SCHEMA: &str = "allonet.embedded-evm/1";

#[derive(Serialize, Deserialize)]
struct State {
    schema: String,
    chain_id: u64,
    number: u64,
    timestamp: u64,
    signers: Vec<Address>,
    accounts: BTreeMap<Address, AccountState>,
    logs: Vec<LogRecord>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    gas: BTreeMap<B256, u64>,
}

#[derive(Serialize, Deserialize)]
struct AccountState {
    balance: U256,
    nonce: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<Bytes>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    storage: BTreeMap<U256, U256>,
}

/// Gas charged (after refunds) and gas needed while running (before refunds).
struct Gas {
    used: u64,
    spent: u64,
}

type Outcome = (Gas, Bytes, Option<Address>, Vec<alloy_primitives::Log>);

fn outcome(result: ExecutionResult) -> Result<Outcome, ChainError> {
    match result {
        ExecutionResult::Success { gas, logs, output, .. } => {
            let (out, created) = match output {
                Output::Call(b) => (b, None),
                Output::Create(b, a) => (b, a),
            };
            Ok((Gas { used: gas.tx_gas_used(), spent: gas.total_gas_spent() }, out, created, logs))
        }
        ExecutionResult::Revert { output, .. } => Err(ChainError::reverted(output)),
        ExecutionResult::Halt { reason, .. } => Err(ChainError::Halted(format!("{reason:?}"))),
    }
}

impl Chain for Embedded {
    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("embedded EVM (revm, state {})", p.display()),
            None => "embedded EVM (revm, in memory)".into(),
        }
    }

    fn block_number(&mut self) -> Result<u64, ChainError> {
        Ok(self.number)
    }

    fn timestamp(&mut self) -> Result<u64, ChainError> {
        Ok(self.timestamp)
    }

    fn balance(&mut self, who: Address) -> Result<U256, ChainError> {
        Ok(self.account(who).balance)
    }

    fn code(&mut self, who: Address) -> Result<Bytes, ChainError> {
        Ok(self.account(who).code.map(|c| c.original_bytes()).unwrap_or_default())
    }

    fn call(&mut self, from: Address, to: Address, data: Bytes) -> Result<Bytes, ChainError> {
        let tx = Tx { from, to: Some(to), data, ..Default::default() };
        let (_, out, _, _) = outcome(self.run(&tx, BLOCK_GAS_LIMIT, false, false)?)?;
        Ok(out)
    }

    fn estimate_gas(&mut self, tx: &Tx) -> Result<u64, ChainError> {
        let (gas, _, _, _) = outcome(self.run(tx, BLOCK_GAS_LIMIT, false, true)?)?;
        // Refunds are paid only at the end, and EIP-150 keeps 1/64 back at every call: start from the gas
        // spent before refunds and leave headroom, as nodes' estimators do.
        Ok(gas.spent + gas.spent / 10)
    }

    fn send(&mut self, tx: Tx) -> Result<Receipt, ChainError> {
        if !self.signers.contains(&tx.from) {
            return Err(ChainError::Config(format!("{} is not a funded account of the embedded chain", tx.from)));
        }
        let gas = match tx.gas {
            Some(g) => g,
            None => self.estimate_gas(&tx)?,
        };
        let nonce = self.account(tx.from).nonce;
        let result = self.run(&tx, gas, true, true)?;
        self.number += 1;
        self.timestamp += BLOCK_TIME;
        // An id for the embedded transaction: keccak(chain id ‖ block ‖ nonce ‖ sender).
        let tx_hash = keccak256(
            [&self.chain_id.to_be_bytes()[..], &self.number.to_be_bytes(), &nonce.to_be_bytes(), tx.from.as_slice()]
                .concat(),
        );
        let (gas_used, _, created, logs) = outcome(result)?;
        let first = self.logs.len() as u64;
        let logs: Vec<LogRecord> = logs
            .into_iter()
            .enumerate()
            .map(|(i, l)| LogRecord {
                address: l.address,
                topics: l.data.topics().to_vec(),
                data: l.data.data.clone(),
                block: self.number,
                tx_hash,
                log_index: first + i as u64,
            })
            .collect();
        self.logs.extend(logs.iter().cloned());
        self.gas.insert(tx_hash, gas_used.used);
        Ok(Receipt { tx_hash, block: self.number, gas_used: gas_used.used, contract_address: created, logs })
    }

    fn nonce(&mut self, who: Address) -> Result<u64, ChainError> {
        Ok(self.account(who).nonce)
    }

    fn gas_used(&mut self, tx_hash: B256) -> Result<Option<u64>, ChainError> {
        Ok(self.gas.get(&tx_hash).copied())
    }

    fn logs(&mut self, filter: &LogFilter) -> Result<Vec<LogRecord>, ChainError> {
        Ok(self.logs.iter().filter(|l| filter.matches(l)).cloned().collect())
    }

    fn signers(&self) -> Vec<Address> {
        self.signers.clone()
    }
}
