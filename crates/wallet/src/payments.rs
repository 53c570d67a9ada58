//! What a payment did on chain: a transaction's status and the token transfers it made, or whether an `exact`
//! payment's EIP-3009 authorization (payer, nonce) was used, which is true once any facilitator settled it.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::SolEvent;
use schemars::JsonSchema;
use serde::Serialize;
use x402_bindings::TestStablecoin;

use crate::WalletError;

/// A token transfer a transaction made.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// The token.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub token: Address,
    /// From.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub from: Address,
    /// To.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub to: Address,
    /// How much, in the token's units.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::decimal")]
    pub value: U256,
}

/// Where a transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Mined and succeeded.
    Success,
    /// Mined and reverted: it moved nothing.
    Reverted,
    /// Known to the node, not mined yet.
    Pending,
    /// Unknown to the node.
    Unknown,
}

/// A transaction, as the chain has it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionReport {
    /// Its hash.
    #[schemars(with = "String")]
    pub transaction: B256,
    /// Where it is.
    pub status: Status,
    /// The block it was mined in.
    pub block: Option<u64>,
    /// The ERC-20 transfers it made.
    pub transfers: Vec<Transfer>,
}

/// Transaction `hash` on `provider`'s chain.
pub async fn transaction(provider: &DynProvider, hash: B256) -> Result<TransactionReport, WalletError> {
    let receipt =
        provider.get_transaction_receipt(hash).await.map_err(WalletError::rpc("cannot read the receipt"))?;
    let Some(receipt) = receipt else {
        let known = provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(WalletError::rpc("cannot read the transaction"))?
            .is_some();
        let status = if known { Status::Pending } else { Status::Unknown };
        return Ok(TransactionReport { transaction: hash, status, block: None, transfers: Vec::new() });
    };
    let transfers = receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.topics().first() == Some(&TestStablecoin::Transfer::SIGNATURE_HASH))
        .filter_map(|log| {
            let event = TestStablecoin::Transfer::decode_log(&log.inner).ok()?;
            Some(Transfer { token: log.address(), from: event.from, to: event.to, value: event.value })
        })
        .collect();
    let status = if receipt.status() { Status::Success } else { Status::Reverted };
    Ok(TransactionReport { transaction: hash, status, block: receipt.block_number, transfers })
}

/// Whether `payer`'s EIP-3009 authorization `nonce` on `token` was used (the payment it signed settled, or the
/// authorization was cancelled).
pub async fn authorization_used(
    provider: &DynProvider,
    token: Address,
    payer: Address,
    nonce: B256,
) -> Result<bool, WalletError> {
    TestStablecoin::new(token, provider)
        .authorizationState(payer, nonce)
        .call()
        .await
        .map_err(WalletError::chain("cannot read the authorization's state"))
}
