//! The flows of allonet, between the domain crates and every front end (CLI, service, agent).
//!
//! The domain crates compute (mechanisms, models, governance rules) and carry (the chain crate sends what it is
//! given); this crate owns the paths money takes from a result to a recipient:
//! - [`plans`]: a mechanism result becomes a payout plan: typed, its digest recomputed from the result, exact
//!   base units, cut into committed batches;
//! - [`govern`]: the plan's approval, by an on-chain Governor + Timelock proposal (typed actions, votes direct and
//!   by signature, queue, execute, status) or by an off-chain decision record (SQLite governance, checked by
//!   digest against the store) under which the agent queues the plan within the standing caps;
//! - [`pay`]: every chain of a plan resolved and checked (approval, pause, caps, registry, balance) before any is
//!   paid, then batches, resume, reconcile;
//! - [`deploy`]: a deployment with safe defaults (no power left to the deployer, caps at 0, roles read back),
//!   resumable from its journal;
//! - [`config`]: one typed configuration of a DAO (`allonet.toml`); [`keys`]: the one key-file and holders format;
//! - [`connect`]: deployment files and the chains they live on; [`audit`]: money-path steps in the audit log;
//! - [`offchain`]: the SQLite governor's events, built and signed; [`models`]: training, explanations and the
//!   model governance activated; [`treasury`]: reports, optimisers, runway and the check of a payout;
//!   [`results`]: mechanism runs, result files and `verify`; [`flows`]: allocation-network commands;
//! - [`rehearsal`]: every step of `allonet demo`, the money path included; [`bench`]: measurements.
//!
//! **Never:** prints, parses command lines, or holds an amount as a float. Every refusal happens before the
//! first transaction and names its reason.

pub mod audit;
pub mod bench;
pub mod config;
pub mod connect;
pub mod deploy;
pub mod flows;
pub mod govern;
pub mod keys;
pub mod models;
pub mod offchain;
pub mod pay;
pub mod plans;
pub mod rehearsal;
pub mod results;
pub mod treasury;

use allonet_chain::payout::PayoutError;
use allonet_chain::ChainError;
use allonet_core::InputError;

/// Errors of the engine's flows.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A file or value is not what it must be (names file, line and field).
    #[error(transparent)]
    Input(#[from] InputError),
    /// A chain call failed or reverted.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The flow refused before sending anything; every reason is listed.
    #[error("refused, nothing sent:\n  - {}", .0.join("\n  - "))]
    Refused(Vec<String>),
    /// A configuration problem (one sentence).
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The cause (not named `source`, so that it is printed once, not again as a chained cause).
        cause: std::io::Error,
    },
}

impl From<PayoutError> for EngineError {
    fn from(e: PayoutError) -> Self {
        match e {
            PayoutError::Refused(r) => EngineError::Refused(r),
            PayoutError::Chain(c) => EngineError::Chain(c),
        }
    }
}

/// Write bytes through a temporary file and a rename, so a failure never leaves a partial file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), EngineError> {
    let io = |e| EngineError::Io { path: path.display().to_string(), cause: e };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("out")));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
