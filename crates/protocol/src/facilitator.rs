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
    /// v2 only: extension data, by extension name (`payment-identifier`, ...).
    #[serde(default)]
    pub extensions: Option<Value>,
}

impl RequestPayload {
    /// The network the payload is for: v1 names it, v2 carries it in the requirements it accepted.
    pub fn network(&self) -> Option<&str> {
        self.network.as_deref().or(self.accepted.as_ref().map(|a| a.network.as_str()))
    }

    /// The scheme the payload is for, in either version's place.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref().or(self.accepted.as_ref().map(|a| a.scheme.as_str()))
    }

    /// The `payment-identifier` extension's id (`extensions["payment-identifier"].info.id`), if the payload
    /// carries one; `Err` when the extension is there but its id is not 16 to 128 of `[A-Za-z0-9_-]`.
    pub fn payment_identifier(&self) -> Result<Option<&str>, InvalidPaymentId> {
        let Some(info) = self.extensions.as_ref().and_then(|e| e.get(PAYMENT_IDENTIFIER)?.get("info")) else {
            return Ok(None);
        };
        match info.get("id") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(id)) if is_payment_id(id) => Ok(Some(id)),
            Some(_) => Err(InvalidPaymentId),
        }
    }
}

/// The name of the `payment-identifier` extension.
pub const PAYMENT_IDENTIFIER: &str = "payment-identifier";

/// A `payment-identifier` id that is not 16 to 128 characters of `[A-Za-z0-9_-]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the payment-identifier id must be 16 to 128 characters of A-Z, a-z, 0-9, '_' and '-'")]
pub struct InvalidPaymentId;

fn is_payment_id(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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
    /// Seconds the server gives the payment to settle.
    #[serde(default)]
    pub max_timeout_seconds: Option<u64>,
    /// Scheme data: for an EIP-3009 token its EIP-712 domain `name` and `version`.
    #[serde(default)]
    pub extra: Option<Value>,
}

impl RequestRequirements {
    /// The amount required, whichever version named it.
    pub fn required_amount(&self) -> Option<&str> {
        self.amount.as_deref().or(self.max_amount_required.as_deref())
    }

    /// `extra.name` and `extra.version`, the token's EIP-712 domain as the server names it; `None` for each that
    /// is missing or not a string.
    pub fn domain(&self) -> (Option<&str>, Option<&str>) {
        let field = |name: &str| self.extra.as_ref()?.get(name)?.as_str();
        (field("name"), field("version"))
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
