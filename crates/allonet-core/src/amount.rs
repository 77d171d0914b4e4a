//! Token amounts: integer base units plus the token's decimals.
//!
//! An amount such as `1.5` USDC (6 decimals) is held as the integer `1_500_000`. Parsing and printing go
//! digit by digit, so no value ever round-trips through a float.

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::str::FromStr;

/// A non-negative quantity of a token in base units (wei for 18-decimal tokens).
///
/// Arithmetic is checked; serialises as a decimal string of base units so JSON never loses precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenAmount(pub U256);

impl TokenAmount {
    /// Zero base units.
    pub const ZERO: TokenAmount = TokenAmount(U256::ZERO);

    /// From a count of base units.
    pub fn from_base_units(units: u128) -> Self {
        TokenAmount(U256::from(units))
    }

    /// The base units as a `U256`.
    pub fn units(self) -> U256 {
        self.0
    }

    /// Checked addition.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(TokenAmount)
    }

    /// Checked subtraction (fails rather than going negative).
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(TokenAmount)
    }

    /// Saturating subtraction.
    pub fn saturating_sub(self, other: Self) -> Self {
        TokenAmount(self.0.saturating_sub(other.0))
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// A lossy view as `f64` base units, for display and charts only, never for money that moves.
    pub fn to_f64_lossy(self) -> f64 {
        // U256 -> f64 through its decimal digits is exact up to f64 precision.
        self.0.to_string().parse::<f64>().unwrap_or(f64::INFINITY)
    }
}

impl Sum for TokenAmount {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        TokenAmount(iter.fold(U256::ZERO, |a, b| a + b.0))
    }
}

impl fmt::Display for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for TokenAmount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for TokenAmount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        U256::from_str_radix(&s, 10)
            .map(TokenAmount)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a base-unit integer")))
    }
}

/// Why a decimal string is not a valid amount of a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Empty string.
    #[error("empty amount")]
    Empty,
    /// A leading minus sign.
    #[error("amount `{0}` is negative; amounts must be zero or more")]
    Negative(String),
    /// Not of the form `123`, `123.45` or `.5`.
    #[error("amount `{0}` is not a decimal number (expected digits with an optional `.`)")]
    NotDecimal(String),
    /// More fractional digits than the token has decimals.
    #[error("amount `{value}` has more than {decimals} decimal places, the token's precision")]
    TooPrecise {
        /// the input
        value: String,
        /// the token's decimals
        decimals: u8,
    },
    /// Does not fit 256 bits of base units.
    #[error("amount `{0}` is too large")]
    Overflow(String),
    /// A float that is not finite or negative.
    #[error("value {0} cannot be turned into a token amount")]
    BadFloat(String),
}

/// A token: a symbol for display and its number of decimals (6 for USDC, 18 for ETH and OP).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Ticker shown to people, e.g. `OP`.
    pub symbol: String,
    /// Decimal places of one whole token in base units (at most 77, the digits of a U256).
    pub decimals: u8,
}

impl Token {
    /// A token with a symbol and decimals.
    pub fn new(symbol: impl Into<String>, decimals: u8) -> Self {
        Token { symbol: symbol.into(), decimals: decimals.min(77) }
    }

    /// Parses a decimal string such as `"1.5"` into base units. Rejects signs, exponents, and more
    /// fractional digits than the token has (no silent rounding of money).
    pub fn parse(&self, s: &str) -> Result<TokenAmount, AmountError> {
        parse_decimal(s, self.decimals)
    }

    /// Prints base units as a decimal string with trailing fractional zeros trimmed (`1500000` at 6
    /// decimals prints `1.5`; whole amounts print with no point).
    pub fn format(&self, a: TokenAmount) -> String {
        format_decimal(a, self.decimals)
    }

    /// Converts a non-negative finite `f64` of whole tokens to base units, rounding half away from zero
    /// at the last decimal. Rust prints floats exactly, so the result is deterministic on every machine.
    /// Used only where a score (a float) becomes a budget; payouts themselves are apportioned in integers.
    pub fn from_f64(&self, x: f64) -> Result<TokenAmount, AmountError> {
        if !x.is_finite() || x < 0.0 {
            return Err(AmountError::BadFloat(x.to_string()));
        }
        // `{:.N}` rounds the exact binary value to N decimals, half to even on exact ties, deterministically.
        let s = format!("{:.*}", self.decimals as usize, x);
        parse_decimal(&s, self.decimals)
    }
}

fn parse_decimal(s: &str, decimals: u8) -> Result<TokenAmount, AmountError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(AmountError::Empty);
    }
    if t.starts_with('-') {
        return Err(AmountError::Negative(t.to_string()));
    }
    let t2 = t.strip_prefix('+').unwrap_or(t);
    let (int, frac) = match t2.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t2, ""),
    };
    let ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !ok(int) || !ok(frac) {
        return Err(AmountError::NotDecimal(t.to_string()));
    }
    let frac_trim = frac.trim_end_matches('0');
    if frac_trim.len() > decimals as usize {
        return Err(AmountError::TooPrecise { value: t.to_string(), decimals });
    }
    let mut digits = String::with_capacity(int.len() + decimals as usize);
    digits.push_str(int);
    digits.push_str(frac_trim);
    for _ in frac_trim.len()..decimals as usize {
        digits.push('0');
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(TokenAmount::ZERO);
    }
    U256::from_str_radix(digits, 10).map(TokenAmount).map_err(|_| AmountError::Overflow(t.to_string()))
}

fn format_decimal(a: TokenAmount, decimals: u8) -> String {
    let s = a.0.to_string();
    let d = decimals as usize;
    if d == 0 {
        return s;
    }
    let padded = if s.len() <= d { format!("{}{}", "0".repeat(d + 1 - s.len()), s) } else { s };
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

impl FromStr for TokenAmount {
    type Err = AmountError;
    /// Parses base units (an integer string), not a decimal amount; use [`Token::parse`] for that.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_decimal(s, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_without_floats() {
        let op = Token::new("OP", 18);
        let a = op.parse("1.5").unwrap();
        assert_eq!(a.0, U256::from(1_500_000_000_000_000_000u128));
        assert_eq!(op.format(a), "1.5");
        assert_eq!(op.format(op.parse("0.000000000000000001").unwrap()), "0.000000000000000001");
        assert_eq!(op.format(op.parse("10000000").unwrap()), "10000000");
        assert_eq!(op.parse(".5").unwrap(), op.parse("0.50").unwrap());
        // 0.1 + 0.2 is exact here
        let s = op.parse("0.1").unwrap().checked_add(op.parse("0.2").unwrap()).unwrap();
        assert_eq!(op.format(s), "0.3");
    }

    #[test]
    fn rejects_bad_amounts() {
        let usdc = Token::new("USDC", 6);
        assert!(matches!(usdc.parse("-1"), Err(AmountError::Negative(_))));
        assert!(matches!(usdc.parse("1e5"), Err(AmountError::NotDecimal(_))));
        assert!(matches!(usdc.parse("abc"), Err(AmountError::NotDecimal(_))));
        assert!(matches!(usdc.parse("."), Err(AmountError::NotDecimal(_))));
        assert!(matches!(usdc.parse(""), Err(AmountError::Empty)));
        assert!(matches!(usdc.parse("0.0000001"), Err(AmountError::TooPrecise { .. })));
        assert_eq!(usdc.parse("0.1000000").unwrap().0, U256::from(100_000u64));
    }

    #[test]
    fn from_f64_rounds_at_last_decimal() {
        let usdc = Token::new("USDC", 6);
        assert_eq!(usdc.format(usdc.from_f64(13.6).unwrap()), "13.6");
        assert_eq!(usdc.format(usdc.from_f64(19.318181818).unwrap()), "19.318182");
        assert!(usdc.from_f64(f64::NAN).is_err());
        assert!(usdc.from_f64(-1.0).is_err());
    }

    proptest! {
        #[test]
        fn print_then_parse_is_identity(units in any::<u128>(), decimals in 0u8..30) {
            let t = Token::new("T", decimals);
            let a = TokenAmount::from_base_units(units);
            prop_assert_eq!(t.parse(&t.format(a)).unwrap(), a);
        }
    }
}
