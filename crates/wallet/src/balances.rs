//! What a wallet holds: a token's balance with its symbol and decimals, and the chain's gas coin.

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use schemars::JsonSchema;
use serde::Serialize;
use x402_bindings::TestStablecoin;

use crate::WalletError;

/// A token balance.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenBalance {
    /// The token.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub token: Address,
    /// Its symbol.
    pub symbol: String,
    /// Its decimals.
    pub decimals: u8,
    /// The balance, in the token's units.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::decimal")]
    pub balance: U256,
    /// The balance in whole tokens (dollars for a USD stablecoin).
    pub amount: String,
}

/// `owner`'s balance of `token`.
pub async fn token(
    provider: &DynProvider,
    token: Address,
    owner: Address,
) -> Result<TokenBalance, WalletError> {
    let erc20 = TestStablecoin::new(token, provider);
    let what = format!("cannot read token {token}");
    let balance = erc20.balanceOf(owner).call().await.map_err(WalletError::chain(what.clone()))?;
    let decimals = erc20.decimals().call().await.map_err(WalletError::chain(what.clone()))?;
    let symbol = erc20.symbol().call().await.map_err(WalletError::chain(what))?;
    Ok(TokenBalance {
        token,
        symbol,
        decimals,
        balance,
        amount: x402_protocol::price::decimal(balance, decimals),
    })
}

/// `owner`'s balance of the chain's gas coin, in wei.
pub async fn gas(provider: &DynProvider, owner: Address) -> Result<U256, WalletError> {
    provider.get_balance(owner).await.map_err(WalletError::rpc("cannot read the gas balance"))
}
