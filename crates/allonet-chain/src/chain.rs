//! The one interface both backends implement, and the typed helpers built on it.

use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_sol_types::{SolCall, SolEvent};
use serde::{Deserialize, Serialize};

use crate::contracts::decode_revert;

/// Errors from a chain backend. Reverts carry the decoded reason (custom error, `Error(string)` or panic).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The EVM reverted: `reason` is decoded from the revert data when a known ABI matches.
    #[error("reverted: {reason}")]
    Reverted { reason: String, data: Bytes },
    /// The EVM halted (out of gas, invalid opcode, ...).
    #[error("halted: {0}")]
    Halted(String),
    /// The node refused or failed the request.
    #[error("rpc: {0}")]
    Rpc(String),
    /// Configuration problems: wrong chain id, unknown signer, unreadable state file.
    #[error("{0}")]
    Config(String),
}

impl ChainError {
    /// A revert from raw revert data.
    pub fn reverted(data: Bytes) -> Self {
        ChainError::Reverted { reason: decode_revert(&data), data }
    }

    /// The decoded revert reason, when this is a revert.
    pub fn revert_reason(&self) -> Option<&str> {
        match self {
            ChainError::Reverted { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// A transaction to send. `to: None` creates a contract from `data`.
#[derive(Debug, Clone, Default)]
pub struct Tx {
    pub from: Address,
    pub to: Option<Address>,
    pub data: Bytes,
    pub value: U256,
    /// Gas limit; estimated when absent.
    pub gas: Option<u64>,
}

impl Tx {
    /// A call to `to` with ABI-encoded `call`.
    pub fn call<C: SolCall>(from: Address, to: Address, call: &C) -> Self {
        Tx { from, to: Some(to), data: call.abi_encode().into(), ..Default::default() }
    }
}

/// One event log as stored on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
    pub block: u64,
    pub tx_hash: B256,
    pub log_index: u64,
}

impl LogRecord {
    /// Decode this log as event `E` (checks topic 0).
    pub fn decode<E: SolEvent>(&self) -> Option<E> {
        E::decode_raw_log(self.topics.iter().copied(), &self.data).ok()
    }
}

/// Which logs to fetch: one emitter, any of `topic0`, optionally a fixed topic 1 and topic 2, over a block range
/// (`to_block: None` = up to the latest).
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub address: Address,
    pub topic0: Vec<B256>,
    pub topic1: Option<B256>,
    pub topic2: Option<B256>,
    pub from_block: u64,
    pub to_block: Option<u64>,
}

impl LogFilter {
    /// True when `log` passes this filter.
    pub fn matches(&self, log: &LogRecord) -> bool {
        log.address == self.address
            && log.block >= self.from_block
            && self.to_block.is_none_or(|b| log.block <= b)
            && log.topics.first().is_some_and(|t| self.topic0.is_empty() || self.topic0.contains(t))
            && self.topic1.is_none_or(|t1| log.topics.get(1) == Some(&t1))
            && self.topic2.is_none_or(|t2| log.topics.get(2) == Some(&t2))
    }
}

/// A mined transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: B256,
    pub block: u64,
    pub gas_used: u64,
    pub contract_address: Option<Address>,
    pub logs: Vec<LogRecord>,
}

impl Receipt {
    /// All logs of event `E` in this receipt.
    pub fn events<E: SolEvent>(&self) -> Vec<E> {
        self.logs.iter().filter_map(|l| l.decode::<E>()).collect()
    }
}

/// An EVM chain: the embedded `revm` backend ([`crate::Embedded`]) or a node over JSON-RPC ([`crate::Rpc`]).
/// Every transaction is checked with a call first, so a revert is an error with its reason and is never sent.
pub trait Chain {
    /// EIP-155 chain id.
    fn chain_id(&self) -> u64;
    /// Where this chain is: `embedded` (with its state file) or the RPC URL.
    fn describe(&self) -> String;
    /// Latest block number.
    fn block_number(&mut self) -> Result<u64, ChainError>;
    /// Latest block timestamp (seconds).
    fn timestamp(&mut self) -> Result<u64, ChainError>;
    /// Native balance.
    fn balance(&mut self, who: Address) -> Result<U256, ChainError>;
    /// The runtime code at `who` in the latest state (empty for a key or an unused address).
    fn code(&mut self, who: Address) -> Result<Bytes, ChainError>;
    /// Read-only call against the latest state.
    fn call(&mut self, from: Address, to: Address, data: Bytes) -> Result<Bytes, ChainError>;
    /// Gas the transaction would use (reverts are errors).
    fn estimate_gas(&mut self, tx: &Tx) -> Result<u64, ChainError>;
    /// Send, wait for the receipt, and return it; a revert is an error.
    fn send(&mut self, tx: Tx) -> Result<Receipt, ChainError>;
    /// Transactions `who` has had mined (its next nonce, not counting any still pending).
    fn nonce(&mut self, who: Address) -> Result<u64, ChainError>;
    /// Gas used by a mined transaction (from its receipt); `None` when the chain does not know it.
    fn gas_used(&mut self, tx_hash: B256) -> Result<Option<u64>, ChainError>;
    /// Logs matching `filter`, in chain order.
    fn logs(&mut self, filter: &LogFilter) -> Result<Vec<LogRecord>, ChainError>;
    /// The addresses this backend can send from.
    fn signers(&self) -> Vec<Address>;
}

/// Typed read-only call.
pub fn read<C: SolCall>(chain: &mut dyn Chain, to: Address, call: &C) -> Result<C::Return, ChainError> {
    let out = chain.call(Address::ZERO, to, call.abi_encode().into())?;
    C::abi_decode_returns(&out).map_err(|e| ChainError::Rpc(format!("cannot decode return of {}: {e}", C::SIGNATURE)))
}

/// Typed transaction.
pub fn transact<C: SolCall>(
    chain: &mut dyn Chain,
    from: Address,
    to: Address,
    call: &C,
) -> Result<Receipt, ChainError> {
    chain.send(Tx::call(from, to, call))
}
