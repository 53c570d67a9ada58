//! Protocol version 1: the requirements come in a JSON body, the payment in `X-PAYMENT`, the receipt in
//! `X-PAYMENT-RESPONSE`; networks are names (`base-sepolia`), the amount is `maxAmountRequired` and each
//! requirement names its resource.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One way to pay for a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// `exact`, or another scheme.
    pub scheme: String,
    /// The network's v1 name.
    pub network: String,
    /// The amount in the asset's smallest unit, decimal (for `exact`, the amount itself).
    pub max_amount_required: String,
    /// The resource's URL.
    pub resource: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// Its media type.
    #[serde(default)]
    pub mime_type: String,
    /// The shape of its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Who is paid.
    pub pay_to: String,
    /// How long the payment may take to complete, in seconds.
    pub max_timeout_seconds: u64,
    /// The token.
    pub asset: String,
    /// Scheme data: for EIP-3009 tokens the EIP-712 domain's `name` and `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// A server's 402 body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// 1.
    pub x402_version: u8,
    /// Why payment is required.
    #[serde(default)]
    pub error: String,
    /// The ways to pay.
    pub accepts: Vec<PaymentRequirements>,
}

/// A client's payment (the `X-PAYMENT` header). `P` is the scheme's payload, raw JSON by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload<P = Value> {
    /// 1.
    pub x402_version: u8,
    /// The scheme.
    pub scheme: String,
    /// The network's v1 name.
    pub network: String,
    /// The scheme's payload.
    pub payload: P,
}
