//! Protocol version 2: everything travels in headers (`PAYMENT-REQUIRED`, `PAYMENT-SIGNATURE`,
//! `PAYMENT-RESPONSE`), networks are CAIP-2 ids, and the payment carries the requirements it accepted.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The resource a payment is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// Its URL.
    pub url: String,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// One way to pay for a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// `exact`, or another scheme.
    pub scheme: String,
    /// CAIP-2 network id (`eip155:84532`).
    pub network: String,
    /// The amount in the asset's smallest unit, decimal.
    pub amount: String,
    /// The token (an address on EVM chains).
    pub asset: String,
    /// Who is paid.
    pub pay_to: String,
    /// How long the payment may take to complete, in seconds.
    pub max_timeout_seconds: u64,
    /// Scheme data: for EIP-3009 tokens the EIP-712 domain's `name` and `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// A server's answer to an unpaid request (the `PAYMENT-REQUIRED` header).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// 2.
    pub x402_version: u8,
    /// Why payment is required (or why the last one failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: ResourceInfo,
    /// The ways to pay, at least one.
    pub accepts: Vec<PaymentRequirements>,
    /// Extension data, by extension name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

/// A client's payment (the `PAYMENT-SIGNATURE` header). `P` is the scheme's payload, raw JSON by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload<P = Value> {
    /// 2.
    pub x402_version: u8,
    /// The resource paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The requirements the client chose, as the server wrote them.
    pub accepted: PaymentRequirements,
    /// The scheme's payload.
    pub payload: P,
    /// Extension data, by extension name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}
