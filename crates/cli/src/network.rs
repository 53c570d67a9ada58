//! The chains `x402` knows: their chain ids and the USDC each deployment accepts.

use alloy::primitives::{Address, address};
use serde::{Deserialize, Serialize};

/// A target network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Network {
    /// Any anvil node; a TestStablecoin is deployed as the token.
    Local,
    /// Base Sepolia (84532), Circle's test USDC.
    BaseSepolia,
    /// Arbitrum Sepolia (421614), Circle's test USDC.
    ArbitrumSepolia,
    /// Base mainnet (8453), USDC.
    Base,
    /// Arbitrum One (42161), USDC.
    Arbitrum,
}

impl Network {
    /// The name used on the command line and for the record file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::BaseSepolia => "base-sepolia",
            Self::ArbitrumSepolia => "arbitrum-sepolia",
            Self::Base => "base",
            Self::Arbitrum => "arbitrum",
        }
    }

    /// The chain id the RPC must report; `None` for `local`, which accepts any anvil.
    pub(crate) fn chain_id(self) -> Option<u64> {
        match self {
            Self::Local => None,
            Self::BaseSepolia => Some(84_532),
            Self::ArbitrumSepolia => Some(421_614),
            Self::Base => Some(8453),
            Self::Arbitrum => Some(42_161),
        }
    }

    /// Circle's USDC on this network (../shared/notes/x402-protocol.md); `None` for `local`.
    pub(crate) fn usdc(self) -> Option<Address> {
        match self {
            Self::Local => None,
            Self::BaseSepolia => Some(address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e")),
            Self::ArbitrumSepolia => Some(address!("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d")),
            Self::Base => Some(address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")),
            Self::Arbitrum => Some(address!("0xaf88d065e77c8cC2239327C5EDb3A432268e5831")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn command_line_names_match_record_names() {
        for network in Network::value_variants() {
            let value = network.to_possible_value().map(|v| v.get_name().to_owned());
            assert_eq!(value.as_deref(), Some(network.name()));
            assert_eq!(serde_json::to_string(network).ok(), Some(format!("\"{}\"", network.name())));
        }
    }
}
