//! The reasons an x402 payment is refused, as `invalidReason` (verify) and `errorReason` (settle) carry them:
//! the specification's list and the ones the reference implementation adds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// An x402 error reason.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$doc])* $variant,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The wire value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $text,)*
                }
            }
        }

        impl FromStr for Reason {
            type Err = UnknownReason;

            fn from_str(text: &str) -> Result<Self, UnknownReason> {
                match text {
                    $($text => Ok(Reason::$variant),)*
                    _ => Err(UnknownReason(text.to_owned())),
                }
            }
        }
    };
}

reasons! {
    /// The payer cannot cover the value.
    InsufficientFunds = "insufficient_funds",
    /// Not valid yet.
    ValidAfter = "invalid_exact_evm_payload_authorization_valid_after",
    /// Expired, or expiring within the safety margin.
    ValidBefore = "invalid_exact_evm_payload_authorization_valid_before",
    /// The authorized value is not the amount required.
    ValueMismatch = "invalid_exact_evm_payload_authorization_value_mismatch",
    /// The signature is not the payer's (or is malleable).
    Signature = "invalid_exact_evm_payload_signature",
    /// The authorization pays someone else than `payTo`.
    RecipientMismatch = "invalid_exact_evm_payload_recipient_mismatch",
    /// Not a network the facilitator serves.
    Network = "invalid_network",
    /// A malformed payload, or one that does not match the requirements it accepted.
    Payload = "invalid_payload",
    /// Requirements the facilitator does not settle (token, merchant, amount).
    Requirements = "invalid_payment_requirements",
    /// The scheme is not `exact` on both sides.
    InvalidScheme = "invalid_scheme",
    /// A scheme the facilitator does not implement.
    Scheme = "unsupported_scheme",
    /// Not version 1 or 2, or versions that differ.
    X402Version = "invalid_x402_version",
    /// The transaction is not in a state that settles.
    TransactionState = "invalid_transaction_state",
    /// Verification failed for a reason that is not the payment's.
    UnexpectedVerify = "unexpected_verify_error",
    /// Settlement failed for a reason that is not the payment's.
    UnexpectedSettle = "unexpected_settle_error",
    /// The authorization's nonce was used already.
    NonceAlreadyUsed = "invalid_exact_evm_nonce_already_used",
    /// The payer's balance is below the value (the reference's name for it in simulations).
    InsufficientBalance = "invalid_exact_evm_insufficient_balance",
    /// The payload names another network than the requirements.
    NetworkMismatch = "invalid_exact_evm_network_mismatch",
    /// The requirements lack the token's EIP-712 `name` and `version`.
    MissingDomain = "invalid_exact_evm_missing_eip712_domain",
    /// `extra.name` is not the token's EIP-712 name.
    TokenNameMismatch = "invalid_exact_evm_token_name_mismatch",
    /// `extra.version` is not the token's EIP-712 version.
    TokenVersionMismatch = "invalid_exact_evm_token_version_mismatch",
    /// A simulated transfer failed.
    SimulationFailed = "invalid_exact_evm_transaction_simulation_failed",
    /// The settling transaction failed.
    TransactionFailed = "invalid_exact_evm_transaction_failed",
    /// The receipt's `Transfer` event is not the authorization's.
    TransferEventMismatch = "invalid_exact_evm_transfer_event_mismatch",
    /// The settling transaction is sent but not confirmed yet.
    SettlementPending = "settlement_pending",
    /// An ERC-6492 signature of a wallet not deployed yet, from a factory the facilitator does not deploy from.
    FactoryNotAllowed = "eip6492_factory_not_allowed",
}

/// A reason string this crate does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown x402 reason {0:?}")]
pub struct UnknownReason(pub String);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_parses_back_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert_eq!(reason.as_str().parse::<Reason>(), Ok(*reason));
            assert!(seen.insert(reason.as_str()), "{reason} twice");
            assert_eq!(serde_json::to_string(reason).unwrap(), format!("\"{reason}\""));
        }
        assert!("no_such_reason".parse::<Reason>().is_err());
    }
}
