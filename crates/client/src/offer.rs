//! What a 402 answer offers: the v2 `PAYMENT-REQUIRED` header, or else the v1 JSON body, as one list of
//! requirements in v2's shape with the version each must be paid in.

use reqwest::header::HeaderMap;
use serde_json::Value;
use x402_protocol::headers::{self, PAYMENT_REQUIRED};
use x402_protocol::network::{NETWORKS, caip2, chain_id_of};
use x402_protocol::{v1, v2};

/// One requirement a server offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// 1 or 2: the version the payment must be in.
    pub version: u8,
    /// The requirement in v2's shape (for v1: `maxAmountRequired` as `amount`, the network as CAIP-2).
    pub requirement: v2::PaymentRequirements,
    /// The network as the server named it (a v1 name for v1).
    pub network: String,
    /// The chain id, if the network is an EVM one this crate knows how to name.
    pub chain_id: Option<u64>,
}

/// A 402 answer, read.
#[derive(Clone, Debug)]
pub struct Offer {
    /// Its version: 2 if it came in `PAYMENT-REQUIRED`, else the body's.
    pub version: u8,
    /// The resource it names (v2).
    pub resource: Option<v2::ResourceInfo>,
    /// Why the server answered 402 (`error`).
    pub error: Option<String>,
    /// What it accepts.
    pub candidates: Vec<Candidate>,
}

/// The chain id of a network named by CAIP-2 (`eip155:84532`) or by its v1 name (`base-sepolia`).
pub fn chain_of(network: &str) -> Option<u64> {
    chain_id_of(network)
        .or_else(|| NETWORKS.iter().find(|n| n.v1_name == Some(network)).and_then(|n| n.chain_id))
}

/// Reads a 402 answer's offer; `Err` says why it is not one.
pub fn read(headers: &HeaderMap, body: &[u8]) -> Result<Offer, String> {
    if let Some(header) = headers.get(PAYMENT_REQUIRED) {
        let text = header.to_str().map_err(|_| format!("{PAYMENT_REQUIRED} is not ASCII"))?;
        let required: v2::PaymentRequired =
            headers::decode(text).map_err(|e| format!("{PAYMENT_REQUIRED} is not a v2 offer: {e}"))?;
        return Ok(from_v2(required));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| "the 402 has no PAYMENT-REQUIRED header and no JSON body".to_owned())?;
    let version = value.get("x402Version").and_then(Value::as_u64);
    if version != Some(1) {
        return Err(format!("the 402 body is not a v1 offer (x402Version {version:?})"));
    }
    from_json(value)
}

/// An offer as JSON: a v2 `PaymentRequired` (the decoded header) or a v1 402 body, told apart by `x402Version`.
pub fn from_json(value: Value) -> Result<Offer, String> {
    match value.get("x402Version").and_then(Value::as_u64) {
        Some(2) => serde_json::from_value(value).map(from_v2).map_err(|e| format!("not a v2 offer: {e}")),
        Some(1) => serde_json::from_value(value).map(from_v1).map_err(|e| format!("not a v1 offer: {e}")),
        other => Err(format!("not an x402 offer (x402Version {other:?})")),
    }
}

fn from_v2(required: v2::PaymentRequired) -> Offer {
    let candidates = required
        .accepts
        .into_iter()
        .map(|requirement| Candidate {
            version: 2,
            network: requirement.network.clone(),
            chain_id: chain_id_of(&requirement.network),
            requirement,
        })
        .collect();
    Offer { version: 2, resource: Some(required.resource), error: required.error, candidates }
}

fn from_v1(required: v1::PaymentRequired) -> Offer {
    let candidates = required
        .accepts
        .into_iter()
        .map(|r| {
            let chain_id = chain_of(&r.network);
            Candidate {
                version: 1,
                requirement: v2::PaymentRequirements {
                    scheme: r.scheme,
                    network: chain_id.map_or_else(|| r.network.clone(), caip2),
                    amount: r.max_amount_required,
                    asset: r.asset,
                    pay_to: r.pay_to,
                    max_timeout_seconds: r.max_timeout_seconds,
                    extra: r.extra,
                },
                network: r.network,
                chain_id,
            }
        })
        .collect();
    Offer { version: 1, resource: None, error: Some(required.error), candidates }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn v2_offers_come_from_the_header_and_v1_from_the_body() {
        let requirement = json!({"scheme": "exact", "network": "eip155:84532", "amount": "1000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x00000000000000000000000000000000000000aa",
            "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}});
        let v2 = json!({"x402Version": 2, "resource": {"url": "http://x/a"}, "accepts": [requirement]});
        let mut map = HeaderMap::new();
        map.insert(PAYMENT_REQUIRED, HeaderValue::from_str(&headers::encode(&v2).unwrap()).unwrap());
        let offer = read(&map, b"{}").unwrap();
        assert_eq!((offer.version, offer.candidates.len()), (2, 1));
        assert_eq!(offer.candidates[0].chain_id, Some(84532));

        let v1 = json!({"x402Version": 1, "error": "pay", "accepts": [{"scheme": "exact", "network": "base-sepolia",
            "maxAmountRequired": "1000", "resource": "http://x/a", "description": "", "mimeType": "",
            "payTo": "0x00000000000000000000000000000000000000aa", "maxTimeoutSeconds": 60,
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "extra": {"name": "USDC", "version": "2"}}]});
        let offer = read(&HeaderMap::new(), v1.to_string().as_bytes()).unwrap();
        assert_eq!(offer.version, 1);
        assert_eq!(offer.candidates[0].requirement.network, "eip155:84532");
        assert_eq!(offer.candidates[0].requirement.amount, "1000");
        assert_eq!(offer.candidates[0].network, "base-sepolia");

        assert_eq!(from_json(v2).unwrap().candidates[0].chain_id, Some(84532));
        assert!(from_json(json!({"x402Version": 2})).is_err());
        assert!(read(&HeaderMap::new(), b"nope").is_err());
        assert!(read(&HeaderMap::new(), br#"{"x402Version": 3}"#).is_err());
    }
}
