//! Canonical JSON and keccak-256 digests.
//!
//! Canonical form: the value is serialised through `serde_json::Value`, whose objects are ordered by key
//! (byte order), with no whitespace; floats print in their shortest round-trip form. The same data gives
//! the same bytes on every machine, so its keccak-256 (the Ethereum hash, Keccak with the original
//! padding, FIPS 202 draft as used by the yellow paper) identifies it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A keccak-256 digest, printed as `0x` + 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub alloy_primitives::B256);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<alloy_primitives::B256>()
            .map(Digest)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a 32-byte hex digest")))
    }
}

/// The canonical JSON text of a value: keys sorted, no whitespace.
///
/// Values holding integers beyond 64 bits (u128 token amounts) cannot pass through `serde_json::Value`;
/// they are written directly, which is canonical for the types allonet digests (structs serialise their
/// fields in declaration order, and maps are `BTreeMap`s, so keys are sorted either way).
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> String {
    // Round-trip through Value: serde_json's Map is a BTreeMap (the `preserve_order` feature is not
    // enabled anywhere in the workspace), so keys come out sorted at every depth.
    match serde_json::to_value(value) {
        Ok(v) => serde_json::to_string(&v).expect("Value always serialises"),
        Err(_) => serde_json::to_string(value).expect("serialisable value"),
    }
}

/// keccak-256 of the canonical JSON of a value.
pub fn digest<T: Serialize + ?Sized>(value: &T) -> Digest {
    Digest(alloy_primitives::keccak256(canonical_json(value).as_bytes()))
}

/// keccak-256 of raw bytes.
pub fn keccak(bytes: &[u8]) -> Digest {
    Digest(alloy_primitives::keccak256(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn key_order_does_not_change_the_digest() {
        let a: HashMap<&str, i32> = [("b", 1), ("a", 2), ("c", 3)].into_iter().collect();
        let b: HashMap<&str, i32> = [("c", 3), ("a", 2), ("b", 1)].into_iter().collect();
        assert_eq!(canonical_json(&a), r#"{"a":2,"b":1,"c":3}"#);
        assert_eq!(digest(&a), digest(&b));
    }

    #[test]
    fn wide_integers_are_written_exactly() {
        #[derive(Serialize)]
        struct W {
            b: u128,
            a: u8,
        }
        assert_eq!(canonical_json(&W { b: u128::MAX, a: 1 }), r#"{"b":340282366920938463463374607431768211455,"a":1}"#);
    }

    #[test]
    fn keccak_of_empty_is_the_known_constant() {
        assert_eq!(keccak(b"").to_string(), "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    }
}
