//! Signs a payment for a requirement: an EIP-3009 `TransferWithAuthorization` in the token's EIP-712 domain,
//! wrapped as the requirement's version wants it, ready for `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1).

use alloy::signers::Signer;
use alloy_primitives::{Address, B256, U256};
use serde_json::{Value, json};
use x402_bindings::eip3009::{self, TransferWithAuthorization};
use x402_protocol::exact::{ExactEvmAuthorization, ExactEvmPayload};
use x402_protocol::headers::{self, PAYMENT_SIGNATURE, X_PAYMENT};
use x402_protocol::v2;

use crate::offer::Candidate;

/// A signed payment.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The header it goes in.
    pub header: &'static str,
    /// The header's value.
    pub value: String,
    /// The payment payload the header encodes (`PaymentPayload` of its version), for transports other than
    /// HTTP headers (MCP's `_meta["x402/payment"]`).
    pub payload: Value,
    /// Who pays.
    pub payer: Address,
    /// The authorization's nonce.
    pub nonce: B256,
}

/// Why a payment could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The requirement cannot be paid with an EIP-3009 authorization.
    #[error("the requirement cannot be signed: {0}")]
    Requirement(String),
    /// The signer failed.
    #[error(transparent)]
    Signer(#[from] eip3009::Error),
    /// The payment could not be encoded.
    #[error("the payment could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Signs `candidate` for `amount` at Unix second `now`, with a fresh random nonce.
pub async fn sign<S: Signer + Sync>(
    signer: &S,
    candidate: &Candidate,
    resource: Option<&v2::ResourceInfo>,
    amount: U256,
    now: u64,
) -> Result<Signed, SignError> {
    let r = &candidate.requirement;
    let bad = |why: &str| SignError::Requirement(why.to_owned());
    let chain_id = candidate.chain_id.ok_or_else(|| bad("not an EVM network"))?;
    let token: Address = r.asset.parse().map_err(|_| bad("the asset is not an address"))?;
    let to: Address = r.pay_to.parse().map_err(|_| bad("payTo is not an address"))?;
    let text =
        |key: &str| r.extra.as_ref().and_then(|e| e.get(key)).and_then(Value::as_str).map(str::to_owned);
    let (Some(name), Some(version)) = (text("name"), text("version")) else {
        return Err(bad("extra has no EIP-712 name and version for the token"));
    };
    // As the official clients: v2 valid from 0, v1 from ten minutes ago; both until now + maxTimeoutSeconds.
    let valid_after = if candidate.version == 1 { now.saturating_sub(600) } else { 0 };
    let valid_before = now.saturating_add(r.max_timeout_seconds.max(1));
    let nonce = B256::random();
    let message = TransferWithAuthorization {
        from: signer.address(),
        to,
        value: amount,
        validAfter: U256::from(valid_after),
        validBefore: U256::from(valid_before),
        nonce,
    };
    let domain = eip3009::token_domain(name, version, chain_id, token);
    let signature = eip3009::sign(signer, &domain, &message).await?;
    let payload = ExactEvmPayload {
        signature,
        authorization: ExactEvmAuthorization {
            from: message.from,
            to,
            value: amount.to_string(),
            valid_after: valid_after.to_string(),
            valid_before: valid_before.to_string(),
            nonce,
        },
    };
    let (header, body) = match candidate.version {
        1 => (
            X_PAYMENT,
            json!({"x402Version": 1, "scheme": r.scheme, "network": candidate.network, "payload": payload}),
        ),
        _ => {
            let mut body = json!({"x402Version": 2, "accepted": r, "payload": payload});
            if let Some(resource) = resource {
                body["resource"] = serde_json::to_value(resource)?;
            }
            (PAYMENT_SIGNATURE, body)
        }
    };
    Ok(Signed { header, value: headers::encode(&body)?, payload: body, payer: message.from, nonce })
}
