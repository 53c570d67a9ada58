//! A connection that signs with the payer's key. Transactions are sent one at a time and each waits for its
//! receipt: the nonce is asked from the node for every send (a failed send leaves no cached nonce behind), and
//! two tools of one agent paying at once cannot sign the same nonce.

use std::time::Duration;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest;
use tokio::sync::Mutex;

use crate::WalletError;

/// How long a transaction may take to be mined.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The payer on one chain.
#[derive(Debug)]
pub struct Wallet {
    provider: DynProvider,
    chain_id: u64,
    payer: Address,
    sending: Mutex<()>,
}

impl Wallet {
    /// Connects to `url` (every request failing after `timeout`) to sign with `signer`; asks the chain id.
    pub async fn connect(
        url: &str,
        signer: PrivateKeySigner,
        timeout: Duration,
    ) -> Result<Self, WalletError> {
        let parsed: reqwest::Url = url.parse().map_err(|e: <reqwest::Url as std::str::FromStr>::Err| {
            x402_chain::rpc::ConnectError::Url { url: url.to_owned(), message: e.to_string() }
        })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(x402_chain::rpc::ConnectError::Client)?;
        let payer = signer.address();
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_reqwest(http, parsed)
            .erased();
        let chain_id =
            provider.get_chain_id().await.map_err(WalletError::rpc(format!("cannot reach {url}")))?;
        Ok(Self { provider, chain_id, payer, sending: Mutex::new(()) })
    }

    /// The chain.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The payer's address.
    pub fn address(&self) -> Address {
        self.payer
    }

    /// The provider (it signs with the payer's key).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The chain's latest block time.
    pub async fn now(&self) -> Result<u64, WalletError> {
        Ok(x402_chain::block::time(&self.provider).await?)
    }

    /// Sends `call` (described as `what`) after every earlier send of this wallet was mined, and waits for its
    /// receipt; the hash of a successful transaction.
    pub async fn send<P: Provider, D: CallDecoder>(
        &self,
        what: &str,
        call: CallBuilder<P, D>,
    ) -> Result<B256, WalletError> {
        let _one_at_a_time = self.sending.lock().await;
        let pending = call.send().await.map_err(WalletError::chain(format!("{what} was refused")))?;
        let transaction = *pending.tx_hash();
        let receipt =
            x402_chain::receipt::wait(&self.provider, transaction, RECEIPT_TIMEOUT).await.map_err(|e| {
                WalletError::Unconfirmed { what: what.to_owned(), transaction, message: e.to_string() }
            })?;
        match receipt {
            Some(receipt) if receipt.status() => Ok(transaction),
            Some(_) => Err(WalletError::Reverted { what: what.to_owned(), transaction }),
            None => Err(WalletError::NotMined {
                what: what.to_owned(),
                transaction,
                seconds: RECEIPT_TIMEOUT.as_secs(),
            }),
        }
    }
}
