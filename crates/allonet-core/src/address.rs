//! EVM addresses, parsed strictly and printed with the EIP-55 mixed-case checksum.
//!
//! Source: EIP-55, "Mixed-case checksum address encoding" (Buterin, Van de Sande, 2016), through
//! `alloy-primitives`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A 20-byte EVM address. Displays checksummed (EIP-55).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub alloy_primitives::Address);

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not `0x` followed by 40 hex digits.
    #[error("`{0}` is not an address (expected 0x followed by 40 hex digits)")]
    Format(String),
    /// Mixed case whose checksum does not match.
    #[error("`{0}` has a bad EIP-55 checksum (mixed case must match; all lower or all upper case is accepted)")]
    Checksum(String),
}

impl Address {
    /// Parses `0x` + 40 hex digits. All-lowercase and all-uppercase are accepted as unchecksummed;
    /// mixed case must carry a valid EIP-55 checksum.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let t = s.trim();
        let hex =
            t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).ok_or_else(|| AddressError::Format(t.to_string()))?;
        if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AddressError::Format(t.to_string()));
        }
        let inner = alloy_primitives::Address::from_str(hex).map_err(|_| AddressError::Format(t.to_string()))?;
        let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            let expected = inner.to_checksum(None);
            if expected[2..] != *hex {
                return Err(AddressError::Checksum(t.to_string()));
            }
        }
        Ok(Address(inner))
    }

    /// Whether a label looks like it is meant to be an address (starts with `0x`). Such labels must
    /// parse; other labels are opaque ids.
    pub fn looks_like(s: &str) -> bool {
        let t = s.trim();
        t.starts_with("0x") || t.starts_with("0X")
    }

    /// The EIP-55 checksummed form.
    pub fn to_checksum(&self) -> String {
        self.0.to_checksum(None)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_checksum())
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Address::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_vectors_round_trip() {
        // Test vectors from EIP-55.
        for v in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let a = Address::parse(v).unwrap();
            assert_eq!(a.to_checksum(), v);
            assert_eq!(Address::parse(&v.to_lowercase()).unwrap(), a);
        }
    }

    #[test]
    fn rejects_bad_checksum_and_format() {
        assert!(matches!(Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"), Err(AddressError::Checksum(_))));
        assert!(matches!(Address::parse("0x1234"), Err(AddressError::Format(_))));
        assert!(matches!(Address::parse("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"), Err(AddressError::Format(_))));
        assert!(matches!(Address::parse("0xZZAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"), Err(AddressError::Format(_))));
    }
}
