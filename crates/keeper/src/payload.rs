//! The x402 wire format of an `exact` EVM payment as a facilitator receives it: `{x402Version, paymentPayload,
//! paymentRequirements}` (the body of `POST /verify` and `POST /settle`), in protocol versions 1 and 2.

use alloy::primitives::{Address, B256, Bytes};
use serde::Deserialize;

/// A request to accept one payment: what the client signed and what the server asked for.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequest {
    /// 1 or 2.
    pub x402_version: u8,
    /// What the client sent (`X-PAYMENT` in v1, `PAYMENT-SIGNATURE` in v2), decoded.
    pub payment_payload: PaymentPayload,
    /// What the server required (an entry of the 402 response's `accepts`).
    pub payment_requirements: PaymentRequirements,
}

/// The client's payment.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// 1 or 2.
    pub x402_version: u8,
    /// v1 only: the scheme (here `exact`).
    #[serde(default)]
    pub scheme: Option<String>,
    /// v1 only: the network name (e.g. `base-sepolia`).
    #[serde(default)]
    pub network: Option<String>,
    /// v2 only: the requirements the client accepted.
    #[serde(default)]
    pub accepted: Option<PaymentRequirements>,
    /// The signed authorization.
    pub payload: ExactEvmPayload,
}

/// What the server required. v1 names the amount `maxAmountRequired`, v2 `amount`; v1 networks are names,
/// v2 networks CAIP-2 ids (`eip155:84532`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// `exact`.
    pub scheme: String,
    /// `base-sepolia` (v1) or `eip155:84532` (v2), and so on.
    pub network: String,
    /// v2: the exact amount, in the token's smallest unit, as a decimal string.
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

/// The `exact` scheme's payload on EVM: an EIP-3009 `TransferWithAuthorization` and its signature.
#[derive(Clone, Debug, Deserialize)]
pub struct ExactEvmPayload {
    /// 65-byte ECDSA signature (`r || s || v`), or a contract wallet's ERC-1271 signature.
    pub signature: Bytes,
    /// The signed message.
    pub authorization: AuthorizationJson,
}

/// The authorization with the numbers as decimal strings, as x402 clients send them.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationJson {
    /// The payer, who signed.
    pub from: Address,
    /// The merchant.
    pub to: Address,
    /// Amount, decimal.
    pub value: String,
    /// Unix seconds, decimal; valid strictly after.
    pub valid_after: String,
    /// Unix seconds, decimal; valid strictly before.
    pub valid_before: String,
    /// Random 32 bytes, unique per payer.
    pub nonce: B256,
}

impl PaymentRequirements {
    /// The amount required, whichever version named it.
    pub fn required_amount(&self) -> Option<&str> {
        self.amount.as_deref().or(self.max_amount_required.as_deref())
    }
}

/// The terms of an `exact` payment a client signs with [`signed_request`].
#[derive(Clone, Copy, Debug)]
pub struct ExactTerms {
    /// The merchant (`payTo`).
    pub to: Address,
    /// Amount in the token's smallest unit.
    pub value: alloy::primitives::U256,
    /// Valid strictly after (unix seconds).
    pub valid_after: u64,
    /// Valid strictly before (unix seconds).
    pub valid_before: u64,
    /// Unique per payer.
    pub nonce: B256,
}

/// Signs `terms` as an EIP-3009 `TransferWithAuthorization` of `token` on `chain_id` with `signer` (the payer) and
/// returns the x402 v2 request body a facilitator (or the keeper's `POST /payments`) takes.
pub fn signed_request<S: alloy::signers::SignerSync>(
    signer: &S,
    payer: Address,
    token: &crate::intake::Token,
    chain_id: u64,
    terms: ExactTerms,
) -> Result<serde_json::Value, alloy::signers::Error> {
    let authorization = x402_bindings::eip3009::TransferWithAuthorization {
        from: payer,
        to: terms.to,
        value: terms.value,
        validAfter: alloy::primitives::U256::from(terms.valid_after),
        validBefore: alloy::primitives::U256::from(terms.valid_before),
        nonce: terms.nonce,
    };
    let signature =
        signer.sign_typed_data_sync(&authorization, &crate::intake::domain_of(token, chain_id))?;
    let requirements = serde_json::json!({
        "scheme": "exact",
        "network": format!("eip155:{chain_id}"),
        "amount": terms.value.to_string(),
        "asset": token.address,
        "payTo": terms.to,
    });
    Ok(serde_json::json!({
        "x402Version": 2,
        "paymentPayload": {
            "x402Version": 2,
            "accepted": requirements,
            "payload": {
                "signature": alloy::hex::encode_prefixed(signature.as_bytes()),
                "authorization": {
                    "from": payer,
                    "to": terms.to,
                    "value": terms.value.to_string(),
                    "validAfter": terms.valid_after.to_string(),
                    "validBefore": terms.valid_before.to_string(),
                    "nonce": terms.nonce,
                }
            }
        },
        "paymentRequirements": requirements,
    }))
}
