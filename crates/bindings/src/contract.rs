//! The upgradeable contracts the deployer creates, by name: what records, plans, status checks and the keeper
//! name them by, with the creation code each ships with.

use std::fmt;
use std::str::FromStr;

use alloy::primitives::Bytes;

use crate::generated::{
    CreditSystem, PaymentChannel, RevenueSplitter, Subscription, ToolRegistry, X402Payment,
};

/// One of the six upgradeable contracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Contract {
    /// Invoices with a refund window, and batched x402 settlement.
    X402Payment,
    /// Tool revenue credited to developers, splits and the platform.
    RevenueSplitter,
    /// Pay-per-call tools with a platform fee.
    ToolRegistry,
    /// Prepaid credits for tools.
    CreditSystem,
    /// Payment channels with cumulative vouchers.
    PaymentChannel,
    /// Recurring payments executed by keepers.
    Subscription,
}

impl Contract {
    /// Every contract, in the order they are deployed.
    pub const ALL: [Contract; 6] = [
        Contract::X402Payment,
        Contract::RevenueSplitter,
        Contract::ToolRegistry,
        Contract::CreditSystem,
        Contract::PaymentChannel,
        Contract::Subscription,
    ];

    /// The contract's Solidity name, as records and the command line write it.
    pub const fn name(self) -> &'static str {
        match self {
            Contract::X402Payment => "X402Payment",
            Contract::RevenueSplitter => "RevenueSplitter",
            Contract::ToolRegistry => "ToolRegistry",
            Contract::CreditSystem => "CreditSystem",
            Contract::PaymentChannel => "PaymentChannel",
            Contract::Subscription => "Subscription",
        }
    }

    /// The implementation's creation code, as built from this project's source.
    pub fn creation_code(self) -> &'static Bytes {
        match self {
            Contract::X402Payment => &X402Payment::BYTECODE,
            Contract::RevenueSplitter => &RevenueSplitter::BYTECODE,
            Contract::ToolRegistry => &ToolRegistry::BYTECODE,
            Contract::CreditSystem => &CreditSystem::BYTECODE,
            Contract::PaymentChannel => &PaymentChannel::BYTECODE,
            Contract::Subscription => &Subscription::BYTECODE,
        }
    }
}

/// A name that is not one of the contracts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown contract {0:?}; expected one of X402Payment, RevenueSplitter, ToolRegistry, CreditSystem, PaymentChannel, Subscription"
)]
pub struct UnknownContract(pub String);

impl FromStr for Contract {
    type Err = UnknownContract;

    fn from_str(name: &str) -> Result<Self, UnknownContract> {
        Contract::ALL.into_iter().find(|c| c.name() == name).ok_or_else(|| UnknownContract(name.to_owned()))
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_every_contract_has_code() {
        for contract in Contract::ALL {
            assert_eq!(contract.name().parse::<Contract>(), Ok(contract));
            assert!(!contract.creation_code().is_empty(), "{contract}");
        }
        assert!("Nope".parse::<Contract>().is_err());
    }
}
