//! A fresh anvil with a TestStablecoin, and helpers to deploy the contracts behind ERC1967 proxies.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use x402_bindings::{ERC1967Proxy, TestStablecoin};

/// anvil plus a provider whose wallet holds the deployer (anvil key 0, also the token owner) and `accounts`.
pub struct Devnet {
    _anvil: AnvilInstance,
    pub provider: DynProvider,
    pub chain_id: u64,
    pub deployer: Address,
    /// anvil keys 1..: registered in the wallet, so `.from(account)` signs with them.
    pub accounts: Vec<Address>,
    pub token: TestStablecoin::TestStablecoinInstance<DynProvider>,
}

fn anvil_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(path.exists(), "anvil is not installed at {}: run bin/setup", path.display());
    path
}

pub async fn devnet() -> Devnet {
    let anvil = Anvil::at(anvil_binary()).spawn();
    let keys: Vec<PrivateKeySigner> = anvil.keys().iter().take(5).map(|k| k.clone().into()).collect();
    let deployer = keys[0].address();
    let accounts = keys[1..].iter().map(PrivateKeySigner::address).collect();
    let mut wallet = EthereumWallet::from(keys[0].clone());
    for key in &keys[1..] {
        wallet.register_signer(key.clone());
    }
    let provider = ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint_url()).erased();
    let chain_id = provider.get_chain_id().await.unwrap();
    let token = TestStablecoin::deploy(provider.clone(), "USDC".into(), "USDC".into(), "2".into(), deployer)
        .await
        .unwrap();
    Devnet { _anvil: anvil, provider, chain_id, deployer, accounts, token }
}

/// Sends a contract call and waits for its successful receipt.
#[allow(async_fn_in_trait)]
pub trait Mined {
    /// Sends the call, waits for its receipt and asserts it succeeded.
    async fn mined(self) -> TransactionReceipt;
}

impl<D: CallDecoder> Mined for CallBuilder<&DynProvider, D> {
    async fn mined(self) -> TransactionReceipt {
        let receipt = self.send().await.unwrap().get_receipt().await.unwrap();
        assert!(receipt.status(), "transaction reverted: {receipt:?}");
        receipt
    }
}

impl Devnet {
    /// An ERC1967Proxy in front of `implementation`, initialized in its constructor with `init`.
    pub async fn proxy(&self, implementation: Address, init: Vec<u8>) -> Address {
        *ERC1967Proxy::deploy(self.provider.clone(), implementation, Bytes::from(init))
            .await
            .unwrap()
            .address()
    }

    pub async fn fund(&self, to: Address, amount: u64) {
        self.token.mint(to, U256::from(amount)).mined().await;
    }

    pub async fn now(&self) -> u64 {
        self.provider.get_block_by_number(Default::default()).await.unwrap().unwrap().header.timestamp
    }

    pub async fn balance(&self, account: Address) -> U256 {
        self.token.balanceOf(account).call().await.unwrap()
    }
}
