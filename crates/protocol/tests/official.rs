//! The types against what the official x402 packages produce (tests/fixtures/official, see its README): each
//! document parses into its type and serializes back to the same JSON, and the headers decode to the documents
//! and encode back to what decodes the same.

#![allow(clippy::unwrap_used)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use x402_protocol::exact::ExactEvmPayload;
use x402_protocol::facilitator::{PaymentRequest, SettleResponse, SupportedResponse, VerifyResponse};
use x402_protocol::{Reason, headers, network, v1, v2};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/official/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Parses `json` as `T` and checks that it serializes back to the same JSON; returns the parsed value.
fn round_trip<T: Serialize + DeserializeOwned>(json: &Value) -> T {
    let parsed: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&serde_json::to_value(&parsed).unwrap(), json);
    parsed
}

#[test]
fn a_v2_payment_required_and_payment_round_trip() {
    let required: v2::PaymentRequired = round_trip(&fixture("v2-payment-required.json"));
    assert_eq!(required.x402_version, 2);
    let offer = &required.accepts[0];
    assert_eq!((offer.scheme.as_str(), offer.network.as_str()), ("exact", "eip155:84532"));
    assert_eq!(network::chain_id_of(&offer.network), Some(84_532));
    assert_eq!(offer.asset.parse().ok(), network::by_chain_id(84_532).and_then(|n| n.usdc));

    let payment: v2::PaymentPayload<ExactEvmPayload> = round_trip(&fixture("v2-payment-payload.json"));
    assert_eq!(&payment.accepted, offer, "the payment accepted the offer as written");
    assert_eq!(payment.payload.authorization.value, offer.amount);
    assert_eq!(payment.payload.signature.len(), 65);
    let numbers = payment.payload.authorization.numbers().unwrap();
    assert!(numbers.valid_before > numbers.valid_after);
    // The raw-JSON payload round-trips too (for schemes parsed later).
    let _: v2::PaymentPayload = round_trip(&fixture("v2-payment-payload.json"));
}

#[test]
fn the_v2_headers_decode_to_the_documents_and_encode_back() {
    let headers_json = fixture("v2-headers.json");
    let required: v2::PaymentRequired =
        headers::decode(headers_json["PAYMENT-REQUIRED"].as_str().unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&required).unwrap(), fixture("v2-payment-required.json"));
    let payment: v2::PaymentPayload =
        headers::decode(headers_json[headers::PAYMENT_SIGNATURE].as_str().unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&payment).unwrap(), fixture("v2-payment-payload.json"));
    let settled: SettleResponse =
        headers::decode(headers_json[headers::PAYMENT_RESPONSE].as_str().unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&settled).unwrap(), headers_json["settleResponse"]);
    // Ours decode to the same documents.
    for value in [serde_json::to_value(&required).unwrap(), serde_json::to_value(&payment).unwrap()] {
        let ours = headers::encode(&value).unwrap();
        assert_eq!(headers::decode::<Value>(&ours).unwrap(), value);
    }
}

#[test]
fn a_v1_payment_from_the_v1_package_round_trips() {
    let v1_json = fixture("v1-payment.json");
    let required: v1::PaymentRequired = round_trip(&v1_json["paymentRequired"]);
    assert_eq!(required.accepts[0].network, "base-sepolia");
    let payment: v1::PaymentPayload<ExactEvmPayload> =
        headers::decode(v1_json["X-PAYMENT"].as_str().unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&payment).unwrap(), v1_json["paymentPayload"]);
    assert_eq!((payment.x402_version, payment.scheme.as_str()), (1, "exact"));
    assert_eq!(payment.payload.authorization.value, required.accepts[0].max_amount_required);
    // As a facilitator receives it: `{x402Version, paymentPayload, paymentRequirements}`.
    let body = serde_json::json!({
        "x402Version": 1,
        "paymentPayload": v1_json["paymentPayload"],
        "paymentRequirements": v1_json["paymentRequired"]["accepts"][0],
    });
    let request: PaymentRequest = serde_json::from_value(body).unwrap();
    assert_eq!(request.payment_requirements.required_amount(), Some("10000"));
    assert_eq!(request.payment_payload.network.as_deref(), Some("base-sepolia"));
}

#[test]
fn a_v2_facilitator_request_reads_the_official_payment() {
    let body = serde_json::json!({
        "x402Version": 2,
        "paymentPayload": fixture("v2-payment-payload.json"),
        "paymentRequirements": fixture("v2-payment-required.json")["accepts"][0],
    });
    let request: PaymentRequest = serde_json::from_value(body).unwrap();
    let accepted = request.payment_payload.accepted.unwrap();
    assert_eq!(accepted.required_amount(), request.payment_requirements.required_amount());
    assert_eq!(accepted.pay_to, request.payment_payload.payload.authorization.to);
}

#[test]
fn the_facilitator_answers_round_trip_with_known_reasons() {
    let supported: SupportedResponse = round_trip(&fixture("supported.json"));
    assert!(supported.kinds.iter().any(|k| k.x402_version == 2 && k.network == "eip155:84532"));
    assert!(supported.kinds.iter().any(|k| k.x402_version == 1 && k.network == "base-sepolia"));
    assert_eq!(supported.signers["eip155:*"].len(), 1);
    for (name, answer) in fixture("verify-invalid.json").as_object().unwrap() {
        let verify: VerifyResponse = round_trip(answer);
        assert!(!verify.is_valid, "{name}");
        assert!(verify.invalid_reason.unwrap().parse::<Reason>().is_ok(), "{name}");
    }
    for (name, answer) in fixture("settle-failed.json").as_object().unwrap() {
        let settle: SettleResponse = round_trip(answer);
        assert!(!settle.success && settle.transaction.is_empty(), "{name}");
        assert!(settle.error_reason.unwrap().parse::<Reason>().is_ok(), "{name}");
    }
}
