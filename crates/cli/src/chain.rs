//! The RPC connection and the transaction pipeline: every transaction is signed locally and stored in the record
//! before it is broadcast, so a run killed at any point can find out what happened to it and never sends a
//! second one in its place.

use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, bail};

/// How long a request may take before the RPC is reported unreachable.
const RPC_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a receipt before giving up (the record keeps the transaction for the next run).
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(600);
/// Gas limit headroom over the estimate, in percent.
const GAS_HEADROOM_PERCENT: u64 = 20;

/// A connected chain and the deployer's key.
pub(crate) struct Chain {
    pub(crate) provider: DynProvider,
    pub(crate) rpc_url: String,
    pub(crate) chain_id: u64,
    pub(crate) deployer: Address,
    /// `None` for read-only commands.
    wallet: Option<EthereumWallet>,
}

/// A signed transaction, ready to broadcast.
pub(crate) struct Signed {
    pub(crate) nonce: u64,
    pub(crate) hash: B256,
    pub(crate) raw: Bytes,
}

/// What a transaction ended as.
pub(crate) enum Outcome {
    Mined(Box<TransactionReceipt>),
    /// Neither mined nor known to the node: the same signed transaction can be broadcast again.
    Unknown,
}

impl Chain {
    /// Connects to `rpc_url` and reads its chain id; without a signer the connection can only read.
    pub(crate) async fn connect(rpc_url: &str, signer: Option<PrivateKeySigner>) -> eyre::Result<Self> {
        let url = rpc_url.parse().wrap_err_with(|| format!("invalid RPC URL {rpc_url:?}"))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let chain_id = tokio::time::timeout(RPC_TIMEOUT, provider.get_chain_id())
            .await
            .map_err(|_| eyre::eyre!("RPC {rpc_url} did not answer within {}s", RPC_TIMEOUT.as_secs()))?
            .wrap_err_with(|| format!("cannot reach RPC {rpc_url}"))?;
        Ok(Self {
            provider,
            rpc_url: rpc_url.to_owned(),
            chain_id,
            deployer: signer.as_ref().map(PrivateKeySigner::address).unwrap_or_default(),
            wallet: signer.map(EthereumWallet::from),
        })
    }

    /// The node's `web3_clientVersion`, empty if it does not say.
    pub(crate) async fn client_version(&self) -> String {
        self.provider.get_client_version().await.unwrap_or_default()
    }

    /// Whether `address` holds code.
    pub(crate) async fn has_code(&self, address: Address) -> eyre::Result<bool> {
        Ok(!self.code(address).await?.is_empty())
    }

    /// The runtime code at `address`.
    pub(crate) async fn code(&self, address: Address) -> eyre::Result<Bytes> {
        self.provider
            .get_code_at(address)
            .await
            .wrap_err_with(|| format!("cannot read the code at {address}"))
    }

    /// keccak256 of the runtime code at `address`.
    pub(crate) async fn code_hash(&self, address: Address) -> eyre::Result<B256> {
        Ok(keccak256(self.code(address).await?))
    }

    /// The deployer's balance in wei.
    pub(crate) async fn balance(&self) -> eyre::Result<U256> {
        self.provider.get_balance(self.deployer).await.wrap_err("cannot read the deployer's balance")
    }

    /// The fee per gas a new transaction offers.
    pub(crate) async fn max_fee_per_gas(&self) -> eyre::Result<u128> {
        Ok(self.provider.estimate_eip1559_fees().await.wrap_err("cannot estimate fees")?.max_fee_per_gas)
    }

    /// The gas a transaction from the deployer would use; fails if it would revert.
    pub(crate) async fn estimate(&self, to: Option<Address>, input: &Bytes) -> eyre::Result<u64> {
        self.provider.estimate_gas(self.request(to, input)).await.wrap_err("the transaction would fail")
    }

    /// Signs a transaction from the deployer with the next pending nonce, the estimated gas plus headroom, and
    /// current fees.
    pub(crate) async fn sign(&self, to: Option<Address>, input: Bytes) -> eyre::Result<Signed> {
        let nonce = self
            .provider
            .get_transaction_count(self.deployer)
            .pending()
            .await
            .wrap_err("cannot read the deployer's nonce")?;
        let gas = self.estimate(to, &input).await?;
        let fees = self.provider.estimate_eip1559_fees().await.wrap_err("cannot estimate fees")?;
        let request = self
            .request(to, &input)
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(gas + gas * GAS_HEADROOM_PERCENT / 100)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let wallet = self.wallet.as_ref().ok_or_else(|| eyre::eyre!("no deployer key loaded"))?;
        let envelope = request.build(wallet).await.wrap_err("cannot sign the transaction")?;
        Ok(Signed { nonce, hash: *envelope.tx_hash(), raw: envelope.encoded_2718().into() })
    }

    /// Broadcasts a signed transaction. A node that already has it is fine.
    pub(crate) async fn broadcast(&self, raw: &Bytes) -> eyre::Result<()> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(err) if err.to_string().to_lowercase().contains("already") => Ok(()),
            Err(err) => Err(err).wrap_err("the node refused the transaction"),
        }
    }

    /// Looks a transaction up once.
    pub(crate) async fn lookup(&self, hash: B256) -> eyre::Result<Outcome> {
        let receipt = self
            .provider
            .get_transaction_receipt(hash)
            .await
            .wrap_err_with(|| format!("cannot look up {hash}"))?;
        if let Some(receipt) = receipt {
            return Ok(Outcome::Mined(Box::new(receipt)));
        }
        let known = self.provider.get_transaction_by_hash(hash).await.ok().flatten().is_some();
        if known {
            // Pending in the node: wait for it like for a fresh broadcast.
            return Ok(Outcome::Mined(Box::new(self.wait(hash).await?)));
        }
        Ok(Outcome::Unknown)
    }

    /// Waits for the receipt of `hash`.
    pub(crate) async fn wait(&self, hash: B256) -> eyre::Result<TransactionReceipt> {
        let deadline = tokio::time::Instant::now() + RECEIPT_TIMEOUT;
        let mut delay = Duration::from_millis(50);
        loop {
            if let Some(receipt) =
                self.provider.get_transaction_receipt(hash).await.wrap_err("cannot poll receipts")?
            {
                return Ok(receipt);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "transaction {hash} not mined after {}s; run again to keep waiting",
                    RECEIPT_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// The deployer's nonce as of the latest block.
    pub(crate) async fn mined_nonce(&self) -> eyre::Result<u64> {
        self.provider.get_transaction_count(self.deployer).await.wrap_err("cannot read the deployer's nonce")
    }

    fn request(&self, to: Option<Address>, input: &Bytes) -> TransactionRequest {
        let request = TransactionRequest::default().with_from(self.deployer);
        match to {
            Some(to) => request.with_to(to).with_input(input.clone()),
            None => request.with_deploy_code(input.clone()),
        }
    }
}
