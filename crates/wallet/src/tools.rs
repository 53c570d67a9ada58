//! ToolRegistry's tools: listed, paid with an allowance (`payForTool`, approving the price first when the
//! allowance is short), or paid with credits deposited in CreditSystem (`payWithCredits`). Both pass the price the
//! caller agreed to as the maximum, so a developer raising the price meanwhile makes the payment revert instead of
//! charging more.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use schemars::JsonSchema;
use serde::Serialize;
use x402_bindings::{CreditSystem, IToolRegistry, TestStablecoin, ToolRegistry};

use crate::{Wallet, WalletError};

/// The most tools one listing reads.
pub const PAGE: u64 = 100;

/// A tool of the registry.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolInfo {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Who registered it.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub developer: Address,
    /// Who its revenue goes to.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub payout: Address,
    /// The token it is paid in.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub token: Address,
    /// Its price per call, in the token's units.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::decimal")]
    pub price: U256,
    /// Whether it takes payments.
    pub active: bool,
}

/// Up to `limit` (at most [`PAGE`]) tools of `registry` from the `offset`-th.
pub async fn list(
    provider: &DynProvider,
    registry: Address,
    offset: u64,
    limit: u64,
) -> Result<Vec<ToolInfo>, WalletError> {
    let page = ToolRegistry::new(registry, provider)
        .getTools(U256::from(offset), U256::from(limit.min(PAGE)))
        .call()
        .await
        .map_err(WalletError::chain("cannot list the registry's tools"))?;
    Ok(page
        .ids
        .into_iter()
        .zip(page.tools)
        .map(|(id, tool)| ToolInfo::new(id.saturating_to(), tool))
        .collect())
}

/// Tool `id` of `registry`.
pub async fn get(provider: &DynProvider, registry: Address, id: u64) -> Result<ToolInfo, WalletError> {
    let tool = ToolRegistry::new(registry, provider)
        .getTool(U256::from(id))
        .call()
        .await
        .map_err(WalletError::chain(format!("cannot read tool {id} (is it registered?)")))?;
    Ok(ToolInfo::new(id, tool))
}

impl ToolInfo {
    fn new(id: u64, tool: IToolRegistry::Tool) -> Self {
        Self {
            id,
            name: tool.name,
            developer: tool.developer,
            payout: tool.payout,
            token: tool.token,
            price: U256::from(tool.price),
            active: tool.active,
        }
    }
}

/// Whether the wallet can pay one call of `tool`: the tool takes payments, and the wallet holds its price (in
/// `credit_system`'s credits, if given, else in tokens). Nothing is sent.
pub async fn check(
    wallet: &Wallet,
    tool: &ToolInfo,
    credit_system: Option<Address>,
) -> Result<(), WalletError> {
    if !tool.active {
        return Err(WalletError::Refused(format!("tool {} ({}) takes no payments", tool.id, tool.name)));
    }
    let payer = wallet.address();
    let (held, what) = match credit_system {
        Some(credit_system) => {
            let (principal, bonus) = credits(wallet.provider(), credit_system, payer, tool.token).await?;
            (principal.saturating_add(bonus), "credits in CreditSystem")
        }
        None => {
            let erc20 = TestStablecoin::new(tool.token, wallet.provider());
            let balance =
                erc20.balanceOf(payer).call().await.map_err(WalletError::chain("cannot read the balance"))?;
            (balance, "units")
        }
    };
    if held < tool.price {
        return Err(WalletError::Refused(format!(
            "the wallet holds {held} {what} of {}, less than the price {}",
            tool.token, tool.price
        )));
    }
    Ok(())
}

/// Pays one call of `tool` from the wallet's tokens, at most `max_price`.
pub async fn pay(
    wallet: &Wallet,
    registry: Address,
    tool: &ToolInfo,
    max_price: U256,
) -> Result<B256, WalletError> {
    check(wallet, tool, None).await?;
    let erc20 = TestStablecoin::new(tool.token, wallet.provider());
    let payer = wallet.address();
    let allowance = erc20
        .allowance(payer, registry)
        .call()
        .await
        .map_err(WalletError::chain("cannot read the allowance"))?;
    if allowance < tool.price {
        wallet.send("approve", erc20.approve(registry, tool.price)).await?;
    }
    let registry = ToolRegistry::new(registry, wallet.provider());
    wallet.send("payForTool", registry.payForTool(U256::from(tool.id), max_price)).await
}

/// Pays one call of `tool` from the wallet's credits in `credit_system`, at most `max_price`.
pub async fn pay_with_credits(
    wallet: &Wallet,
    credit_system: Address,
    tool: &ToolInfo,
    max_price: U256,
) -> Result<B256, WalletError> {
    check(wallet, tool, Some(credit_system)).await?;
    let credits = CreditSystem::new(credit_system, wallet.provider());
    wallet.send("payWithCredits", credits.payWithCredits(U256::from(tool.id), max_price)).await
}

/// The credits (principal, bonus) `owner` holds in `credit_system` for `token`.
pub async fn credits(
    provider: &DynProvider,
    credit_system: Address,
    owner: Address,
    token: Address,
) -> Result<(U256, U256), WalletError> {
    let credits = CreditSystem::new(credit_system, provider)
        .creditsOf(owner, token)
        .call()
        .await
        .map_err(WalletError::chain("cannot read the credits"))?;
    Ok((credits.principal, credits.bonus))
}
