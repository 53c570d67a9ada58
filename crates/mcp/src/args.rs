//! The tools' arguments, as their JSON schemas show them to the host. Addresses, hashes and amounts are strings,
//! checked by the tools, so a malformed one is answered with a tool error that says which.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// `x402_fetch` and `x402_quote`: an HTTP request, and the most it may cost.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchArgs {
    /// The URL (http or https).
    pub url: String,
    /// The method [GET, or POST with a body].
    #[serde(default)]
    pub method: Option<String>,
    /// Request headers, name to value.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// The request body, as text.
    #[serde(default)]
    pub body: Option<String>,
    /// The most this request may cost: `$0.05` (dollars) or token units. It can only lower the configured cap.
    #[serde(default)]
    pub max_price: Option<String>,
}

/// `x402_sign_authorization`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignArgs {
    /// The server's offer: a v2 `PaymentRequired` object (the decoded `PAYMENT-REQUIRED` header) or a v1 402 body.
    pub payment_required: serde_json::Value,
    /// Which of its `accepts` to sign [the first the spend policy allows].
    #[serde(default)]
    pub index: Option<usize>,
}

/// `x402_verify_payment`: a transaction hash, or a payment id.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyArgs {
    /// A transaction hash (0x + 64 hex digits).
    #[serde(default)]
    pub transaction: Option<String>,
    /// A facilitator's payment id, `eip155:<chain id>:<token>:<payer>:<nonce>`: whether its authorization was used.
    #[serde(default)]
    pub id: Option<String>,
    /// The chain of the transaction [every configured chain is asked].
    #[serde(default)]
    pub chain_id: Option<u64>,
}

/// `x402_tools`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolsArgs {
    /// The chain [the first with a ToolRegistry].
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// Skip this many tools [0].
    #[serde(default)]
    pub offset: Option<u64>,
    /// List at most this many [100].
    #[serde(default)]
    pub limit: Option<u64>,
}

/// `x402_pay_tool` and `x402_pay_tool_credits`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayToolArgs {
    /// The tool's id in the ToolRegistry.
    pub tool_id: u64,
    /// The most to pay: `$0.05` or token units [the configured cap]. It can only lower the cap.
    #[serde(default)]
    pub max_price: Option<String>,
    /// The chain [the first with a ToolRegistry].
    #[serde(default)]
    pub chain_id: Option<u64>,
}

/// `x402_channel_open`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelOpenArgs {
    /// A URL whose 402 offers the `channel` scheme.
    pub url: String,
    /// The deposit: `$5` (dollars) or token units; at most the configured maximum deposit.
    pub deposit: String,
    /// The challenge period in seconds [the offer's minimum].
    #[serde(default)]
    pub challenge_seconds: Option<u64>,
    /// Seconds until the channel expires [7 days].
    #[serde(default)]
    pub lifetime_seconds: Option<u64>,
}

/// `x402_channel_close`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelCloseArgs {
    /// The channel id (0x + 64 hex digits).
    pub channel_id: String,
    /// The chain [the channel's, if this server opened it; else the first with a PaymentChannel].
    #[serde(default)]
    pub chain_id: Option<u64>,
}
