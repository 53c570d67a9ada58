//! Signed x402 `exact` payments, as a client sends them: EIP-3009 authorizations signed with a local key, wrapped
//! in the facilitator body `{x402Version, paymentPayload, paymentRequirements}` that `POST /payments` (and a
//! facilitator's `/verify` and `/settle`) takes.

use alloy::primitives::{Address, B256, U256};
use x402_keeper::intake::{Token, domain_of};

/// The terms of an `exact` payment a client signs with [`signed_request`].
#[derive(Clone, Copy, Debug)]
pub struct ExactTerms {
    /// The merchant (`payTo`).
    pub to: Address,
    /// Amount in the token's smallest unit.
    pub value: U256,
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
    token: &Token,
    chain_id: u64,
    terms: ExactTerms,
) -> Result<serde_json::Value, alloy::signers::Error> {
    let authorization = x402_bindings::eip3009::TransferWithAuthorization {
        from: payer,
        to: terms.to,
        value: terms.value,
        validAfter: U256::from(terms.valid_after),
        validBefore: U256::from(terms.valid_before),
        nonce: terms.nonce,
    };
    let signature = signer.sign_typed_data_sync(&authorization, &domain_of(token, chain_id))?;
    let requirements = serde_json::json!({
        "scheme": "exact",
        "network": format!("eip155:{chain_id}"),
        "amount": terms.value.to_string(),
        "asset": token.address,
        "payTo": terms.to,
        "maxTimeoutSeconds": 300,
        "extra": {"name": token.name, "version": token.version},
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
