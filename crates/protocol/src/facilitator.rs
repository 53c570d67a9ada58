//! The facilitator API: the body of `POST /verify` and `POST /settle` (`{x402Version, paymentPayload,
//! paymentRequirements}`, in either version's shape) and the answers, `GET /supported` included.

use std::collections::BTreeMap;

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::exact::ExactEvmPayload;

/// A request to verify or settle one `exact` EVM payment, read leniently so that both versions fit one shape:
/// v1 payloads name their scheme and network, v2 payloads carry the requirements they `accepted`; v1
/// requirements name the amount `maxAmountRequired`, v2 `amount`. Fields not used here are ignored.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequest {
    /// 1 or 2.
    pub x402_version: u8,
    /// What the client sent (`X-PAYMENT` in v1, `PAYMENT-SIGNATURE` in v2), decoded.
    pub payment_payload: RequestPayload,
    /// What the server required (an entry of its 402 answer's `accepts`).
    pub payment_requirements: RequestRequirements,
}

/// The client's payment, as [`PaymentRequest`] reads it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestPayload {
    /// 1 or 2.
    pub x402_version: u8,
    /// v1 only: the scheme.
    #[serde(default)]
    pub scheme: Option<String>,
    /// v1 only: the network name.
    #[serde(default)]
    pub network: Option<String>,
    /// v2 only: the requirements the client accepted.
    #[serde(default)]
    pub accepted: Option<RequestRequirements>,
    /// The signed authorization.
    pub payload: ExactEvmPayload,
}

/// What the server required, as [`PaymentRequest`] reads it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRequirements {
    /// `exact`.
    pub scheme: String,
    /// A v1 name (`base-sepolia`) or a CAIP-2 id (`eip155:84532`).
    pub network: String,
    /// v2: the exact amount, decimal.
    #[serde(default)]
    pub amount: Option<String>,
    /// v1: the same, under its v1 name.
    #[serde(default)]
    pub max_amount_required: Option<String>,
    /// The token.
    pub asset: Address,
    /// The merchant, who must be the authorization's `to`.
    pub pay_to: Address,
}

impl RequestRequirements {
    /// The amount required, whichever version named it.
    pub fn required_amount(&self) -> Option<&str> {
        self.amount.as_deref().or(self.max_amount_required.as_deref())
    }
}

/// The answer to `POST /verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment would settle.
    pub is_valid: bool,
    /// Why not: an x402 reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Why not, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// The payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Extension data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// The answer to `POST /settle`, and the receipt a server passes on (`PAYMENT-RESPONSE`, `X-PAYMENT-RESPONSE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the payment settled.
    pub success: bool,
    /// Why not: an x402 reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Why not, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The settling transaction's hash; `""` when there is none.
    pub transaction: String,
    /// The network it settled on.
    pub network: String,
    /// The amount settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Extension data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// What a facilitator settles: `GET /supported`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    /// Each (version, scheme, network) it settles.
    pub kinds: Vec<SupportedKind>,
    /// The extensions it implements.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Its signers' addresses, by CAIP-2 family (`eip155:*`).
    #[serde(default)]
    pub signers: BTreeMap<String, Vec<String>>,
}

/// One (version, scheme, network) a facilitator settles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// 1 or 2.
    pub x402_version: u8,
    /// The scheme.
    pub scheme: String,
    /// A v1 name (version 1) or a CAIP-2 id (version 2).
    pub network: String,
    /// Scheme data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}
