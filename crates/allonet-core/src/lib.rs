//! # allonet-core
//!
//! The ground every allonet capability stands on:
//!
//! - [`TokenAmount`] and [`Token`]: money as integer base units with a number of decimals, parsed from and
//!   printed to decimal strings without ever passing through a float.
//! - [`Address`]: EVM addresses, parsed strictly (EIP-55 checksum enforced on mixed case) and printed
//!   checksummed.
//! - [`apportion_exact`] and [`apportion_capped`]: turning scores into payouts that sum to the budget
//!   exactly (largest-remainder method, stable tie-break).
//! - [`digest`]: canonical JSON and keccak-256 digests of inputs and outputs, so anyone can recompute a result.
//! - [`input`]: CSV/JSON readers whose errors name the file, line and column.
//!
//! This crate does no printing and holds no policy; it is pure data and arithmetic plus file readers.
//!
//! ```
//! use allonet_core::{apportion_exact, Token, TokenAmount};
//! let usdc = Token::new("USDC", 6);
//! let budget = usdc.parse("100").unwrap();
//! let payouts = apportion_exact(budget, &[1.0, 1.0, 1.0]).unwrap();
//! let total: TokenAmount = payouts.iter().copied().sum();
//! assert_eq!(total, budget);
//! assert_eq!(usdc.format(payouts[0]), "33.333334");
//! ```

pub mod address;
pub mod amount;
pub mod apportion;
pub mod digest;
pub mod input;

pub use address::{Address, AddressError};
pub use amount::{AmountError, Token, TokenAmount};
pub use apportion::{apportion_capped, apportion_exact, water_fill, ApportionError};
pub use digest::{canonical_json, digest, Digest};
pub use input::{InputError, Table};
