//! The networks this project deploys to: chain id, CAIP-2 id (v2), x402 v1 name, the name a deployment record
//! uses, and Circle's USDC there. The official v1 packages know a chain only by its v1 name and look its chain id
//! up from it; Arbitrum has no v1 name in them, and neither has a local chain (which serves v1 clients only when it
//! runs with chain id 84532, as `base-sepolia`).

use alloy_primitives::{Address, address};

/// One network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    /// The name of its deployment record (`deployments/<name>.json`) and of `x402 --network`.
    pub name: &'static str,
    /// Its chain id; `None` for `local`, which is any anvil.
    pub chain_id: Option<u64>,
    /// Its x402 v1 name.
    pub v1_name: Option<&'static str>,
    /// Circle's USDC (EIP-3009, EIP-712 domain "USDC" / "2"); `None` for `local`, which deploys a test token.
    pub usdc: Option<Address>,
}

/// The networks, `local` first.
pub const NETWORKS: [Network; 5] = [
    Network { name: "local", chain_id: None, v1_name: None, usdc: None },
    Network {
        name: "base-sepolia",
        chain_id: Some(84_532),
        v1_name: Some("base-sepolia"),
        usdc: Some(address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e")),
    },
    Network {
        name: "arbitrum-sepolia",
        chain_id: Some(421_614),
        v1_name: None,
        usdc: Some(address!("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d")),
    },
    Network {
        name: "base",
        chain_id: Some(8453),
        v1_name: Some("base"),
        usdc: Some(address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")),
    },
    Network {
        name: "arbitrum",
        chain_id: Some(42_161),
        v1_name: None,
        usdc: Some(address!("0xaf88d065e77c8cC2239327C5EDb3A432268e5831")),
    },
];

/// The chain id anvil starts with unless told otherwise.
pub const ANVIL_CHAIN_ID: u64 = 31_337;

/// The network whose record is called `name`.
pub fn by_name(name: &str) -> Option<&'static Network> {
    NETWORKS.iter().find(|n| n.name == name)
}

/// The named network with `chain_id`.
pub fn by_chain_id(chain_id: u64) -> Option<&'static Network> {
    NETWORKS.iter().find(|n| n.chain_id == Some(chain_id))
}

/// The x402 v1 name of a chain, if the official v1 packages know it.
pub fn v1_name(chain_id: u64) -> Option<&'static str> {
    by_chain_id(chain_id).and_then(|n| n.v1_name)
}

/// The CAIP-2 id of an EVM chain: `eip155:<chain id>`.
pub fn caip2(chain_id: u64) -> String {
    format!("eip155:{chain_id}")
}

/// The chain a network id names: a CAIP-2 `eip155:<chain id>`, or a v1 name.
pub fn chain_id_of(network: &str) -> Option<u64> {
    if let Some(id) = network.strip_prefix("eip155:") {
        return (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.parse().ok()).flatten();
    }
    NETWORKS.iter().find(|n| n.v1_name == Some(network)).and_then(|n| n.chain_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_v1_names_agree() {
        assert_eq!(v1_name(84_532), Some("base-sepolia"));
        assert_eq!(v1_name(8453), Some("base"));
        assert_eq!(v1_name(42_161), None, "no v1 name for Arbitrum in the official packages");
        assert_eq!(v1_name(ANVIL_CHAIN_ID), None);
        assert_eq!(caip2(84_532), "eip155:84532");
        assert_eq!(chain_id_of("eip155:421614"), Some(421_614));
        assert_eq!(chain_id_of("base-sepolia"), Some(84_532));
        for bad in ["eip155:", "eip155:x", "solana:abc", "arbitrum", "eip155:-1"] {
            assert_eq!(chain_id_of(bad), None, "{bad}");
        }
        assert_eq!(by_name("arbitrum-sepolia").and_then(|n| n.chain_id), Some(421_614));
        assert!(by_name("local").is_some_and(|n| n.chain_id.is_none() && n.usdc.is_none()));
        for network in &NETWORKS[1..] {
            assert_eq!(by_chain_id(network.chain_id.unwrap()), Some(network));
        }
    }
}
