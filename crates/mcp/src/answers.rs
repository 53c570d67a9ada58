//! The tools' typed results (their output schemas), and the refusal every tool answers with when it does not do
//! what was asked: a tool error whose structured content is `{reason, message}`.

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;
use x402_wallet::balances::TokenBalance;
use x402_wallet::channels::{ChannelInfo, CloseStep, Opened};
use x402_wallet::payments::TransactionReport;
use x402_wallet::tools::ToolInfo;

/// Why a tool did not do what was asked, as a tool error.
pub mod reason {
    /// An argument is malformed.
    pub const INVALID_ARGUMENT: &str = "invalid_argument";
    /// The server runs in dry-run mode: paying tools only quote.
    pub const DRY_RUN: &str = "dry_run";
    /// The spend policy allows none of the offer (cap, network, token, recipient).
    pub const POLICY: &str = "policy";
    /// The budget of the period has not enough left.
    pub const OVER_BUDGET: &str = "over_budget";
    /// The server refused the payment.
    pub const PAYMENT_FAILED: &str = "payment_failed";
    /// The payment was sent and no answer came; it may still settle.
    pub const UNANSWERED: &str = "unanswered";
    /// The URL could not be fetched.
    pub const HTTP: &str = "http";
    /// The chain refused or could not be asked.
    pub const CHAIN: &str = "chain";
    /// The server is not configured for it (no RPC endpoint for the chain, no deployment).
    pub const NOT_CONFIGURED: &str = "not_configured";
    /// The ledger could not be written (after a payment: it was made, not logged).
    pub const LEDGER: &str = "ledger";
}

/// A tool error: `reason` (one of [`reason`]) and a message for the user.
pub fn refuse(reason: &str, message: impl std::fmt::Display) -> CallToolResult {
    let message = message.to_string();
    let mut result = CallToolResult::structured_error(json!({"reason": reason, "message": message}));
    result.content = vec![ContentBlock::text(format!("{reason}: {message}"))];
    result
}

/// One requirement of an offer, for a person to read.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    /// `exact` (a signed transfer, settled by the server) or `channel` (a voucher on a payment channel).
    pub scheme: String,
    /// The network, CAIP-2 (`eip155:8453` is Base).
    pub network: String,
    /// Its chain id, for an EVM network.
    pub chain_id: Option<u64>,
    /// The token.
    pub asset: String,
    /// Who is paid.
    pub pay_to: String,
    /// The price, in the token's units.
    pub amount: String,
    /// The price in dollars, for a token the policy counts as a 6-decimal dollar stablecoin (USDC).
    pub dollars: Option<String>,
    /// The x402 version it is paid in.
    pub x402_version: u8,
    /// Whether the spend policy allows paying it.
    pub allowed: bool,
    /// Why not, if it does not.
    pub refusal: Option<String>,
}

/// `x402_quote`, and `x402_fetch` in dry-run mode.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuoteAnswer {
    /// The URL.
    pub url: String,
    /// True if it answered without asking for a payment.
    pub free: bool,
    /// The HTTP status of the unpaid request.
    pub status: u16,
    /// The server's message with its 402.
    pub error: Option<String>,
    /// What it accepts.
    pub requirements: Vec<Requirement>,
    /// The one a fetch would pay (channel vouchers are preferred on a channel this server opened).
    pub would_pay: Option<Requirement>,
    /// Nothing signed or paid.
    pub dry_run: bool,
}

/// A payment made for a fetch.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paid {
    /// The requirement paid.
    pub requirement: Requirement,
    /// The payer.
    pub payer: String,
    /// The settlement transaction (`exact`).
    pub transaction: Option<String>,
    /// The channel paid through (`channel`).
    pub channel_id: Option<String>,
    /// What the server took on the channel in all (`channel`).
    pub channel_cumulative: Option<String>,
    /// What is left of the channel's deposit (`channel`).
    pub channel_remaining: Option<String>,
    /// The server's settlement receipt (`exact`) or channel receipt, as it sent it.
    pub receipt: Option<serde_json::Value>,
}

/// `x402_fetch`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FetchAnswer {
    /// The URL.
    pub url: String,
    /// The answer's HTTP status.
    pub status: u16,
    /// Its content type.
    pub content_type: Option<String>,
    /// Its body, as text (at most the configured size).
    pub body: String,
    /// True if the body was cut at the configured size.
    pub truncated: bool,
    /// The payment, if one was made.
    pub paid: Option<Paid>,
    /// A note for the reader (truncation, a body that is not text).
    pub note: Option<String>,
}

/// Credits in CreditSystem.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credits {
    /// The token.
    pub token: String,
    /// Deposited credits left.
    pub principal: String,
    /// Bonus credits left.
    pub bonus: String,
}

/// A channel this server opened, and what is left of it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelLine {
    /// The channel on chain.
    #[serde(flatten)]
    pub channel: ChannelInfo,
    /// Its deposit less what the server reported taking (or the recipient claimed, if more).
    pub remaining: String,
}

/// One chain's balances.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBalance {
    /// The chain.
    pub chain_id: u64,
    /// The gas coin, wei.
    pub gas_wei: String,
    /// Tokens.
    pub tokens: Vec<TokenBalance>,
    /// Credits in the deployment's CreditSystem.
    pub credits: Vec<Credits>,
    /// Channels this server opened and has not finished closing.
    pub channels: Vec<ChannelLine>,
    /// A read that failed.
    pub error: Option<String>,
}

/// The budget of one token.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetLine {
    /// The chain.
    pub chain_id: u64,
    /// The token.
    pub token: String,
    /// Spent this period, token units.
    pub spent: String,
    /// Left this period.
    pub left: String,
    /// The limit per period.
    pub limit: String,
    /// When the period started, Unix seconds.
    pub period_start: u64,
    /// The period's length, seconds.
    pub period_seconds: u64,
}

/// `x402_balance`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceAnswer {
    /// The wallet.
    pub address: String,
    /// The cap per request.
    pub max_per_request: String,
    /// Paying tools only quote.
    pub dry_run: bool,
    /// Per chain.
    pub networks: Vec<NetworkBalance>,
    /// The budget per token, if one is set.
    pub budget: Vec<BudgetLine>,
}

/// `x402_sign_authorization`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedAnswer {
    /// The header to send it in (`PAYMENT-SIGNATURE` for v2, `X-PAYMENT` for v1).
    pub header: String,
    /// The header's value.
    pub value: String,
    /// The requirement signed.
    pub requirement: Requirement,
    /// The payer.
    pub payer: String,
    /// The authorization's nonce (with the payer and token, the payment's id).
    pub nonce: String,
}

/// A transaction on one chain.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainTransaction {
    /// The chain.
    pub chain_id: u64,
    /// The transaction.
    #[serde(flatten)]
    pub report: TransactionReport,
}

/// An authorization's state.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationState {
    /// The chain.
    pub chain_id: u64,
    /// The token.
    pub token: String,
    /// The payer.
    pub payer: String,
    /// The nonce.
    pub nonce: String,
    /// True once the payment settled (or the authorization was cancelled).
    pub used: bool,
}

/// `x402_verify_payment`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyAnswer {
    /// The transaction, on the chain that knows it.
    pub transaction: Option<ChainTransaction>,
    /// The authorization of a payment id.
    pub authorization: Option<AuthorizationState>,
}

/// `x402_tools`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolsAnswer {
    /// The chain.
    pub chain_id: u64,
    /// The ToolRegistry.
    pub registry: String,
    /// The tools.
    pub tools: Vec<ToolInfo>,
}

/// `x402_pay_tool` and `x402_pay_tool_credits`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolPaidAnswer {
    /// The chain.
    pub chain_id: u64,
    /// The tool.
    pub tool: ToolInfo,
    /// The payment's transaction.
    pub transaction: String,
    /// Paid with credits, not an allowance.
    pub with_credits: bool,
}

/// `x402_channel_open`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelOpenedAnswer {
    /// The chain.
    pub chain_id: u64,
    /// The channel.
    #[serde(flatten)]
    pub opened: Opened,
}

/// `x402_channel_close`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelClosedAnswer {
    /// The chain.
    pub chain_id: u64,
    /// The channel.
    pub channel_id: String,
    /// What was done.
    pub close: CloseStep,
}
