//! The networks `x402 deploy` targets, as command-line values; their chain ids and USDC come from
//! `x402_protocol::network`.

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

/// A target network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
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
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::BaseSepolia => "base-sepolia",
            Self::ArbitrumSepolia => "arbitrum-sepolia",
            Self::Base => "base",
            Self::Arbitrum => "arbitrum",
        }
    }

    /// The chain id the RPC must report; `None` for `local`, which accepts any anvil.
    pub fn chain_id(self) -> Option<u64> {
        self.table().chain_id
    }

    /// Circle's USDC on this network; `None` for `local`.
    pub fn usdc(self) -> Option<Address> {
        self.table().usdc
    }

    fn table(self) -> &'static x402_protocol::network::Network {
        // Every variant is in the table; the test below checks it.
        x402_protocol::network::by_name(self.name()).unwrap_or(&x402_protocol::network::NETWORKS[0])
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
            assert!(x402_protocol::network::by_name(network.name()).is_some(), "{}", network.name());
        }
    }
}
