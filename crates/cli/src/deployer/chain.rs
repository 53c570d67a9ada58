//! The deployer's chain connection and key: every transaction is signed locally with the next pending nonce, the
//! estimate plus the shared headroom and the current fees, so that the pipeline can store it in the record before
//! it is broadcast. Requests, broadcasts and receipts go through `x402-chain`, as the keeper's do.

use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use x402_chain::{gas, receipt, rpc, send};

use super::error::{Describe, Error, Result, refuse};

/// How long one request may take before the RPC counts as unreachable.
const RPC_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a receipt before giving up (the record keeps the transaction for the next run).
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(600);

/// A connected chain and the deployer's key.
pub struct Chain {
    /// The connection.
    pub provider: DynProvider,
    /// Its URL, for messages.
    pub rpc_url: String,
    /// The chain id it reports.
    pub chain_id: u64,
    /// The deployer's address (zero for read-only connections).
    pub deployer: Address,
    /// `None` for read-only commands.
    wallet: Option<EthereumWallet>,
}

/// A signed transaction, ready to broadcast.
pub struct Signed {
    /// Its nonce.
    pub nonce: u64,
    /// Its hash.
    pub hash: B256,
    /// The EIP-2718 encoding.
    pub raw: Bytes,
}

/// What a transaction ended as.
pub enum Outcome {
    /// Mined.
    Mined(Box<TransactionReceipt>),
    /// Neither mined nor known to the node: the same signed transaction can be broadcast again.
    Unknown,
}

impl Chain {
    /// Connects to `rpc_url` and reads its chain id; without a signer the connection can only read.
    pub async fn connect(rpc_url: &str, signer: Option<PrivateKeySigner>) -> Result<Self> {
        let provider = rpc::connect(rpc_url, RPC_TIMEOUT)
            .map_err(|err| Error::Refused(format!("RPC {rpc_url}: {err}")))?;
        let chain_id = provider.get_chain_id().await.describe(|| format!("cannot reach RPC {rpc_url}"))?;
        Ok(Self {
            provider,
            rpc_url: rpc_url.to_owned(),
            chain_id,
            deployer: signer.as_ref().map(PrivateKeySigner::address).unwrap_or_default(),
            wallet: signer.map(EthereumWallet::from),
        })
    }

    /// The node's `web3_clientVersion`, empty if it does not say.
    pub async fn client_version(&self) -> String {
        self.provider.get_client_version().await.unwrap_or_default()
    }

    /// Whether `address` holds code.
    pub async fn has_code(&self, address: Address) -> Result<bool> {
        Ok(!self.code(address).await?.is_empty())
    }

    /// The runtime code at `address`.
    pub async fn code(&self, address: Address) -> Result<Bytes> {
        self.provider.get_code_at(address).await.describe(|| format!("cannot read the code at {address}"))
    }

    /// keccak256 of the runtime code at `address`.
    pub async fn code_hash(&self, address: Address) -> Result<B256> {
        Ok(keccak256(self.code(address).await?))
    }

    /// The deployer's balance in wei.
    pub async fn balance(&self) -> Result<U256> {
        self.provider
            .get_balance(self.deployer)
            .await
            .describe(|| "cannot read the deployer's balance".into())
    }

    /// The fee per gas a new transaction offers.
    pub async fn max_fee_per_gas(&self) -> Result<u128> {
        let fees = self.provider.estimate_eip1559_fees().await.describe(|| "cannot estimate fees".into())?;
        Ok(fees.max_fee_per_gas)
    }

    /// The gas a transaction from the deployer would use; fails if it would revert.
    pub async fn estimate(&self, to: Option<Address>, input: &Bytes) -> Result<u64> {
        self.provider
            .estimate_gas(self.request(to, input))
            .await
            .describe(|| "the transaction would fail".into())
    }

    /// Signs a transaction from the deployer with the next pending nonce, the estimated gas plus headroom, and
    /// current fees.
    pub async fn sign(&self, to: Option<Address>, input: Bytes) -> Result<Signed> {
        let nonce = self
            .provider
            .get_transaction_count(self.deployer)
            .pending()
            .await
            .describe(|| "cannot read the deployer's nonce".into())?;
        let gas = self.estimate(to, &input).await?;
        let fees = self.provider.estimate_eip1559_fees().await.describe(|| "cannot estimate fees".into())?;
        let request = self
            .request(to, &input)
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(gas::headroom(gas))
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let Some(wallet) = self.wallet.as_ref() else { refuse!("no deployer key loaded") };
        let envelope = request.build(wallet).await.map_err(|err| Error::Sign(Box::new(err)))?;
        Ok(Signed { nonce, hash: *envelope.tx_hash(), raw: envelope.encoded_2718().into() })
    }

    /// Broadcasts a signed transaction. A node that already has it is fine.
    pub async fn broadcast(&self, raw: &Bytes) -> Result<()> {
        send::broadcast(&self.provider, raw).await.describe(|| "the node refused the transaction".into())
    }

    /// Looks a transaction up once; one still pending in the node is waited for.
    pub async fn lookup(&self, hash: B256) -> Result<Outcome> {
        let found =
            receipt::find(&self.provider, &[hash]).await.describe(|| format!("cannot look up {hash}"))?;
        if let Some(receipt) = found {
            return Ok(Outcome::Mined(Box::new(receipt)));
        }
        let known = self.provider.get_transaction_by_hash(hash).await.ok().flatten().is_some();
        if known {
            return Ok(Outcome::Mined(Box::new(self.wait(hash).await?)));
        }
        Ok(Outcome::Unknown)
    }

    /// Waits for the receipt of `hash`.
    pub async fn wait(&self, hash: B256) -> Result<TransactionReceipt> {
        let receipt = receipt::wait(&self.provider, hash, RECEIPT_TIMEOUT)
            .await
            .describe(|| "cannot poll receipts".into())?;
        match receipt {
            Some(receipt) => Ok(receipt),
            None => refuse!(
                "transaction {hash} not mined after {}s; run again to keep waiting",
                RECEIPT_TIMEOUT.as_secs()
            ),
        }
    }

    /// The deployer's nonce as of the latest block.
    pub async fn mined_nonce(&self) -> Result<u64> {
        self.provider
            .get_transaction_count(self.deployer)
            .await
            .describe(|| "cannot read the deployer's nonce".into())
    }

    fn request(&self, to: Option<Address>, input: &Bytes) -> TransactionRequest {
        let request = TransactionRequest::default().with_from(self.deployer);
        match to {
            Some(to) => request.with_to(to).with_input(input.clone()),
            None => request.with_deploy_code(input.clone()),
        }
    }
}
