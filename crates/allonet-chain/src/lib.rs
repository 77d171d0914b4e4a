//! On-chain execution for allonet: bindings to the committed contract artifacts, one [`Chain`] interface with
//! two backends (the embedded `revm` EVM and any node over JSON-RPC via `alloy`), payout plans executed in
//! gas-sized, idempotent batches, and Safe Transaction Builder export.

pub mod amm;
pub mod anchor;
pub mod anvil;
pub mod chain;
pub mod contracts;
pub mod deploy;
pub mod embedded;
pub mod governor;
pub mod payout;
pub mod plan;
pub mod rpc;
pub mod safe;

pub use chain::{read, transact, Chain, ChainError, LogFilter, LogRecord, Receipt, Tx};
pub use embedded::Embedded;
pub use plan::{Payment, PayoutPlan, PlanToken};
pub use rpc::Rpc;
