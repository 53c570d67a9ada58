//! Typed forms of the `IX402Payment`, `IPaymentChannel` and `ISubscription` enums. A JSON ABI carries enums as bare `uint8`, so
//! the variants are spelled here; a test reads the Solidity interfaces and fails if the two ever differ.

use std::fmt;

/// A `uint8` that is not a variant of the enum it was decoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{value} is not a valid {name}")]
pub struct UnknownVariant {
    /// The enum's name.
    pub name: &'static str,
    /// The value received.
    pub value: u8,
}

macro_rules! solidity_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The variant's Solidity name.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                }
            }
        }

        impl TryFrom<u8> for $name {
            type Error = UnknownVariant;

            fn try_from(value: u8) -> Result<Self, UnknownVariant> {
                match value {
                    $($value => Ok($name::$variant),)+
                    _ => Err(UnknownVariant { name: stringify!($name), value }),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                value as u8
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

solidity_enum! {
    /// `IX402Payment.InvoiceStatus`. `Expired` is never stored; `getInvoice` reports it for an unpaid invoice past
    /// its expiry.
    InvoiceStatus {
        /// No such invoice.
        None = 0,
        /// Created, not paid.
        Pending = 1,
        /// Paid; funds in escrow, refund window open.
        Confirmed = 2,
        /// Refund window over; amount credited to the payee.
        Released = 3,
        /// Refunded to the payer.
        Refunded = 4,
        /// Disputed by the payer; funds frozen.
        Disputed = 5,
        /// Dispute resolved by the arbiter.
        Resolved = 6,
        /// Unpaid past its expiry.
        Expired = 7,
    }
}

solidity_enum! {
    /// `IX402Payment.SettlementOutcome`: what `settleBatch` did with one authorization.
    SettlementOutcome {
        /// Not produced by the contract.
        None = 0,
        /// Transferred.
        Settled = 1,
        /// Nonce already used or cancelled (front-run, replayed or duplicated).
        AlreadyUsed = 2,
        /// At or after `validBefore`; not submitted.
        Expired = 3,
        /// At or before `validAfter`; not submitted.
        NotYetValid = 4,
        /// The token rejected it (signature, balance, blacklist, pause...).
        Failed = 5,
    }
}

solidity_enum! {
    /// `IPaymentChannel.ClaimOutcome`: what `claimBatch` did with one voucher.
    ClaimOutcome {
        /// Paid to the recipient.
        Claimed = 0,
        /// No such channel.
        NotFound = 1,
        /// Closed, or closing with its challenge period over.
        NotClaimable = 2,
        /// The caller is neither the recipient nor its claim operator.
        Unauthorized = 3,
        /// The voucher is not above what the channel paid out already.
        NothingToClaim = 4,
        /// Neither the payer's ECDSA signature nor approved by its ERC-1271 wallet.
        InvalidSignature = 5,
    }
}

solidity_enum! {
    /// `IPaymentChannel.ChannelStatus`.
    ChannelStatus {
        /// No such channel.
        None = 0,
        /// Open: vouchers are claimed, top-ups and extensions taken.
        Open = 1,
        /// The payer started a unilateral close: claims until its challenge period ends.
        Closing = 2,
        /// Closed; everything paid out.
        Closed = 3,
    }
}

solidity_enum! {
    /// `ISubscription.ExecutionOutcome`: what an execution did with one subscription.
    ExecutionOutcome {
        /// One period charged.
        Charged = 0,
        /// No such subscription.
        NotFound = 1,
        /// Cancelled, ended or past due.
        Inactive = 2,
        /// The next charge is not due yet.
        NotDue = 3,
        /// Its token is no longer allowlisted.
        TokenNotAllowed = 4,
        /// The charge could not be collected; the subscription is PastDue now.
        ChargeFailed = 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variant names of `enum <name> { ... }` in `contracts/interfaces/<interface>.sol`, in order.
    fn solidity_variants(interface: &str, name: &str) -> Vec<String> {
        let path = format!("{}/../../contracts/interfaces/{interface}.sol", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(&path).expect("read the interface");
        let start = source.find(&format!("enum {name} {{")).expect("enum declared") + name.len() + 7;
        let body = &source[start..start + source[start..].find('}').expect("enum closed")];
        body.split(',').map(str::trim).filter(|v| !v.is_empty()).map(String::from).collect()
    }

    /// `variants` (name and value, in declaration order) are the Solidity enum's, numbered from 0.
    fn assert_matches_solidity(variants: &[(&str, u8)], interface: &str, name: &str) {
        let rust: Vec<_> = variants.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(rust, solidity_variants(interface, name));
        for (i, (_, value)) in variants.iter().enumerate() {
            assert_eq!(usize::from(*value), i);
        }
    }

    macro_rules! variants {
        ($enum:ident) => {
            $enum::ALL.iter().map(|v| (v.name(), u8::from(*v))).collect::<Vec<_>>()
        };
    }

    #[test]
    fn enums_match_solidity() {
        assert_matches_solidity(&variants!(InvoiceStatus), "IX402Payment", "InvoiceStatus");
        assert_matches_solidity(&variants!(SettlementOutcome), "IX402Payment", "SettlementOutcome");
        assert_matches_solidity(&variants!(ClaimOutcome), "IPaymentChannel", "ClaimOutcome");
        assert_matches_solidity(&variants!(ChannelStatus), "IPaymentChannel", "ChannelStatus");
        assert_matches_solidity(&variants!(ExecutionOutcome), "ISubscription", "ExecutionOutcome");
    }

    #[test]
    fn rejects_unknown_values() {
        assert_eq!(
            SettlementOutcome::try_from(6),
            Err(UnknownVariant { name: "SettlementOutcome", value: 6 })
        );
        assert_eq!(InvoiceStatus::try_from(2), Ok(InvoiceStatus::Confirmed));
    }
}
