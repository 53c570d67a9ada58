//! A price: an amount in the token's smallest unit, or a decimal USD amount converted with the token's decimals (for
//! a USD stablecoin, one token is one dollar). Servers price routes with it, clients cap what they pay with it.

use alloy_primitives::U256;
use serde::{Deserialize, Deserializer};

/// What a route costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Price {
    /// An amount in the token's smallest unit (USDC: 1 = $0.000001).
    Atomic(U256),
    /// A decimal amount of dollars (`"0.05"`), for a USD stablecoin: converted with each token's decimals.
    Usd(String),
}

/// Why a price cannot be charged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// Not a decimal number.
    #[error(
        "price {0:?} is not a decimal amount such as \"$0.05\" or a whole number of token units such as \"50000\""
    )]
    NotDecimal(String),
    /// More decimal places than the token has.
    #[error("price ${price} has more decimal places than the token's {decimals}")]
    TooPrecise {
        /// The price.
        price: String,
        /// The token's decimals.
        decimals: u8,
    },
    /// Zero: a free route needs no paywall.
    #[error("a price must be more than zero (leave a free route out of the paywall)")]
    Zero,
    /// Beyond 2^256.
    #[error("price {0:?} is too large")]
    TooLarge(String),
}

impl std::str::FromStr for Price {
    type Err = PriceError;

    fn from_str(text: &str) -> Result<Self, PriceError> {
        Self::parse(text)
    }
}

impl Price {
    /// `text` as a price: `"$0.05"` is dollars, `"50000"` token units.
    pub fn parse(text: &str) -> Result<Self, PriceError> {
        let text = text.trim();
        if let Some(usd) = text.strip_prefix('$') {
            let valid = !usd.is_empty()
                && usd.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && usd.bytes().filter(|b| *b == b'.').count() <= 1
                && usd.bytes().any(|b| b.is_ascii_digit());
            return if valid {
                Ok(Self::Usd(usd.to_owned()))
            } else {
                Err(PriceError::NotDecimal(text.to_owned()))
            };
        }
        match crate::parse_amount(text) {
            Some(amount) if amount.is_zero() => Err(PriceError::Zero),
            Some(amount) => Ok(Self::Atomic(amount)),
            None if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() => {
                Err(PriceError::TooLarge(text.to_owned()))
            }
            None => Err(PriceError::NotDecimal(text.to_owned())),
        }
    }

    /// The amount in the smallest unit of a token with `decimals`.
    pub fn to_atomic(&self, decimals: u8) -> Result<U256, PriceError> {
        let amount = match self {
            Self::Atomic(amount) => *amount,
            Self::Usd(usd) => {
                let (whole, fraction) = usd.split_once('.').unwrap_or((usd, ""));
                let fraction = fraction.trim_end_matches('0');
                if fraction.len() > usize::from(decimals) {
                    return Err(PriceError::TooPrecise { price: usd.clone(), decimals });
                }
                let digits = format!("{whole}{fraction:0<width$}", width = usize::from(decimals));
                let digits = digits.trim_start_matches('0');
                if digits.is_empty() {
                    U256::ZERO
                } else {
                    crate::parse_amount(digits).ok_or_else(|| PriceError::TooLarge(usd.clone()))?
                }
            }
        };
        if amount.is_zero() { Err(PriceError::Zero) } else { Ok(amount) }
    }
}

/// `amount` of a token with `decimals` as a decimal number of whole tokens: 50000 with 6 decimals is `0.05`
/// (for a USD stablecoin, dollars).
pub fn decimal(amount: U256, decimals: u8) -> String {
    let digits = amount.to_string();
    let places = usize::from(decimals);
    if places == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = places + 1);
    let (whole, fraction) = padded.split_at(padded.len() - places);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() { whole.to_owned() } else { format!("{whole}.{fraction}") }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_convert_with_the_tokens_decimals() {
        let atomic = |text: &str, decimals| Price::parse(text).and_then(|p| p.to_atomic(decimals));
        assert_eq!(atomic("$0.05", 6), Ok(U256::from(50_000)));
        assert_eq!(atomic("$1", 6), Ok(U256::from(1_000_000)));
        assert_eq!(atomic("$.5", 2), Ok(U256::from(50)));
        assert_eq!(atomic("$0.000001", 6), Ok(U256::from(1)));
        assert_eq!(atomic("$0.0000010", 6), Ok(U256::from(1)), "trailing zeros are not precision");
        assert_eq!(atomic("$1.25", 18), Ok(U256::from(1_250_000_000_000_000_000u128)));
        assert_eq!(atomic("1500", 6), Ok(U256::from(1500)), "whole token units are not converted");
        assert!(matches!(atomic("$0.0000001", 6), Err(PriceError::TooPrecise { .. })));
        assert_eq!(atomic("$0.00", 6), Err(PriceError::Zero));
        assert_eq!(atomic("0", 6), Err(PriceError::Zero));
        for bad in ["", "$", "$.", "$1.2.3", "$-1", "1.5", "0x10", "$1e3", "abc"] {
            assert!(matches!(Price::parse(bad), Err(PriceError::NotDecimal(_))), "{bad:?}");
        }
        assert!(matches!(Price::parse(&"9".repeat(80)), Err(PriceError::TooLarge(_))));
        assert!(matches!(atomic(&format!("${}", "9".repeat(80)), 6), Err(PriceError::TooLarge(_))));
    }

    #[test]
    fn amounts_read_back_as_decimals() {
        assert_eq!(decimal(U256::from(50_000), 6), "0.05");
        assert_eq!(decimal(U256::from(1), 6), "0.000001");
        assert_eq!(decimal(U256::from(12_500_000), 6), "12.5");
        assert_eq!(decimal(U256::ZERO, 6), "0");
        assert_eq!(decimal(U256::from(7), 0), "7");
        for text in ["$0.05", "$12.5", "$0.000001"] {
            let atomic = Price::parse(text).unwrap().to_atomic(6).unwrap();
            assert_eq!(format!("${}", decimal(atomic, 6)), text);
        }
    }
}
