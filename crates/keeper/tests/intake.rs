//! The intake checks: every x402 error reason from a payment that is valid but for one field, and the on-chain
//! checks against a real anvil (nonce used by a front-runner, empty payer, valid payment accepted).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use alloy::network::EthereumWallet;
use alloy::node_bindings::Anvil;
use alloy::primitives::{Address, U256, address, keccak256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use x402_bindings::TestStablecoin;
use x402_devkit::payments::{ExactTerms, signed_request};
use x402_keeper::intake::{OnchainError, PayerCodes, Token, Verifier, check_onchain};
use x402_protocol::Reason;
use x402_protocol::facilitator::PaymentRequest;

const NOW: u64 = 1_800_000_000;
const MERCHANT: Address = address!("0x0000000000000000000000000000000000004242");

fn usdc(address: Address) -> Token {
    Token { address, name: "USDC".into(), version: "2".into() }
}

/// A valid v2 request paying MERCHANT 10000 units of `token`, signed by `payer`, as JSON to mutate.
fn request(payer: &PrivateKeySigner, token: &Token, chain_id: u64, now: u64, nonce: u8) -> Value {
    let terms = ExactTerms {
        to: MERCHANT,
        value: U256::from(10_000u64),
        valid_after: now - 60,
        valid_before: now + 600,
        nonce: keccak256([nonce]),
    };
    signed_request(payer, payer.address(), token, chain_id, terms).unwrap()
}

/// A change that breaks one field of a valid request.
type Mutation = Box<dyn Fn(&mut Value)>;

fn check(verifier: &Verifier, body: &Value, now: u64) -> Result<(), Reason> {
    let request: PaymentRequest = serde_json::from_value(body.clone()).unwrap();
    verifier.check(&request, now).map(|_| ())
}

#[test]
fn a_valid_payment_passes_and_each_bad_field_gets_its_reason() {
    let token = usdc(address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"));
    let verifier = Verifier::new(84_532, std::slice::from_ref(&token), 6);
    let payer = PrivateKeySigner::random();
    let valid = request(&payer, &token, 84_532, NOW, 1);
    assert_eq!(check(&verifier, &valid, NOW), Ok(()));

    let cases: Vec<(&str, Mutation, Reason)> = vec![
        ("version", Box::new(|b| b["x402Version"] = json!(3)), Reason::X402Version),
        ("versions differ", Box::new(|b| b["paymentPayload"]["x402Version"] = json!(1)), Reason::X402Version),
        ("scheme", Box::new(|b| b["paymentRequirements"]["scheme"] = json!("upto")), Reason::Scheme),
        (
            "network",
            Box::new(|b| b["paymentRequirements"]["network"] = json!("eip155:8453")),
            Reason::Network,
        ),
        (
            "unknown token",
            Box::new(|b| {
                b["paymentRequirements"]["asset"] = json!(Address::repeat_byte(7));
                b["paymentPayload"]["accepted"]["asset"] = json!(Address::repeat_byte(7));
            }),
            Reason::Requirements,
        ),
        (
            "value text",
            Box::new(|b| b["paymentPayload"]["payload"]["authorization"]["value"] = json!("1e4")),
            Reason::Payload,
        ),
        (
            "value",
            Box::new(|b| b["paymentPayload"]["payload"]["authorization"]["value"] = json!("9999")),
            Reason::ValueMismatch,
        ),
        (
            "recipient",
            Box::new(|b| {
                b["paymentPayload"]["payload"]["authorization"]["to"] = json!(Address::repeat_byte(9))
            }),
            Reason::RecipientMismatch,
        ),
        (
            "not yet valid",
            Box::new(|b| {
                b["paymentPayload"]["payload"]["authorization"]["validAfter"] = json!(NOW.to_string())
            }),
            Reason::ValidAfter,
        ),
        (
            "expiring within the margin",
            Box::new(|b| {
                b["paymentPayload"]["payload"]["authorization"]["validBefore"] = json!((NOW + 6).to_string())
            }),
            Reason::ValidBefore,
        ),
        (
            "no signature",
            Box::new(|b| b["paymentPayload"]["payload"]["signature"] = json!("0x")),
            Reason::Signature,
        ),
        (
            "payload for another network",
            Box::new(|b| b["paymentPayload"]["accepted"]["network"] = json!("eip155:8453")),
            Reason::NetworkMismatch,
        ),
        (
            "another domain name",
            Box::new(|b| b["paymentRequirements"]["extra"]["name"] = json!("USD Coin")),
            Reason::TokenNameMismatch,
        ),
        (
            "another domain version",
            Box::new(|b| b["paymentRequirements"]["extra"]["version"] = json!("1")),
            Reason::TokenVersionMismatch,
        ),
        (
            "a counterfactual wallet",
            Box::new(|b| {
                let wrapped = format!("0x{}{}", "00".repeat(96), "6492".repeat(16));
                b["paymentPayload"]["payload"]["signature"] = json!(wrapped);
            }),
            Reason::FactoryNotAllowed,
        ),
        (
            "a v2 payload without the requirements it accepted",
            Box::new(|b| {
                b["paymentPayload"].as_object_mut().unwrap().remove("accepted");
            }),
            Reason::Payload,
        ),
    ];
    for (name, mutate, expected) in cases {
        let mut body = valid.clone();
        mutate(&mut body);
        assert_eq!(check(&verifier, &body, NOW), Err(expected), "{name}");
        assert!(
            expected.as_str().starts_with("invalid_")
                || ["unsupported_scheme", "eip6492_factory_not_allowed"].contains(&expected.as_str())
        );
    }

    // The authorization settles, not what the payload says it accepted: a differing `accepted.amount` alone is no
    // reason (the reference does not compare it either).
    let mut accepted = valid.clone();
    accepted["paymentPayload"]["accepted"]["amount"] = json!("1");
    assert_eq!(check(&verifier, &accepted, NOW), Ok(()));

    // The keeper takes requirements without the token's domain; a facilitator, like the reference, does not.
    let mut bare = valid.clone();
    bare["paymentRequirements"].as_object_mut().unwrap().remove("extra");
    assert_eq!(check(&verifier, &bare, NOW), Ok(()));
    assert_eq!(check(&verifier.for_facilitator(6), &bare, NOW), Err(Reason::MissingDomain));
    assert_eq!(check(&verifier.for_facilitator(6), &valid, NOW), Ok(()));

    // A signature by another key, or a tampered nonce, is not the payer's ECDSA signature: only a contract
    // wallet could still approve it, which the on-chain check asks the token about.
    let mut tampered = valid.clone();
    tampered["paymentPayload"]["payload"]["authorization"]["nonce"] = json!(keccak256([99u8]));
    let request: PaymentRequest = serde_json::from_value(tampered).unwrap();
    assert!(verifier.check(&request, NOW).unwrap().needs_wallet_check);

    // The malleable twin (s -> n - s, v flipped) is not accepted as the payer's ECDSA signature either: USDC
    // would refuse it at settlement.
    let mut twin = valid.clone();
    let original: alloy::primitives::Bytes =
        serde_json::from_value(valid["paymentPayload"]["payload"]["signature"].clone()).unwrap();
    let n =
        U256::from_str_radix("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16).unwrap();
    let high_s = n - U256::from_be_slice(&original[32..64]);
    let mut malleated = original.to_vec();
    malleated[32..64].copy_from_slice(&high_s.to_be_bytes::<32>());
    malleated[64] = if original[64] == 27 { 28 } else { 27 };
    twin["paymentPayload"]["payload"]["signature"] = json!(alloy::hex::encode_prefixed(&malleated));
    let request: PaymentRequest = serde_json::from_value(twin).unwrap();
    assert!(verifier.check(&request, NOW).unwrap().needs_wallet_check);

    // v1: network names and maxAmountRequired.
    let mut v1 = valid;
    v1["x402Version"] = json!(1);
    v1["paymentPayload"]["x402Version"] = json!(1);
    v1["paymentPayload"]["scheme"] = json!("exact");
    v1["paymentPayload"]["network"] = json!("base-sepolia");
    v1["paymentPayload"].as_object_mut().unwrap().remove("accepted");
    v1["paymentRequirements"]["network"] = json!("base-sepolia");
    v1["paymentRequirements"].as_object_mut().unwrap().remove("amount");
    v1["paymentRequirements"]["maxAmountRequired"] = json!("10000");
    assert_eq!(check(&verifier, &v1, NOW), Ok(()));
    // v1 asks for at least maxAmountRequired (the v1 spec), v2 for the exact amount.
    v1["paymentRequirements"]["maxAmountRequired"] = json!("9999");
    assert_eq!(check(&verifier, &v1, NOW), Ok(()));
    v1["paymentRequirements"]["maxAmountRequired"] = json!("10001");
    assert_eq!(check(&verifier, &v1, NOW), Err(Reason::ValueMismatch));
}

#[tokio::test]
async fn onchain_checks_catch_used_nonces_and_empty_payers() {
    let anvil_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let anvil = Anvil::at(anvil_path).spawn();
    let owner: PrivateKeySigner = anvil.keys()[0].clone().into();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner.clone()))
        .connect_http(anvil.endpoint_url())
        .erased();
    let contract =
        TestStablecoin::deploy(provider.clone(), "USDC".into(), "USDC".into(), "2".into(), owner.address())
            .await
            .unwrap();
    let token = usdc(*contract.address());
    let chain_id = anvil.chain_id();
    let verifier = Verifier::new(chain_id, std::slice::from_ref(&token), 6);
    let codes = PayerCodes::default();
    let now = provider.get_block_by_number(Default::default()).await.unwrap().unwrap().header.timestamp;

    let payer = PrivateKeySigner::random();
    let body = request(&payer, &token, chain_id, now, 1);
    let parsed: PaymentRequest = serde_json::from_value(body).unwrap();
    let checked = verifier.check(&parsed, now).unwrap();
    assert!(matches!(
        check_onchain(&provider, &checked, &codes).await,
        Err(OnchainError::Invalid(Reason::InsufficientFunds))
    ));

    contract
        .mint(payer.address(), U256::from(1_000_000u64))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    check_onchain(&provider, &checked, &codes).await.unwrap();

    // Someone submits the signed authorization directly: the nonce is used, the payment must be refused.
    let a = &checked.authorization;
    contract
        .transferWithAuthorization_0(
            a.from,
            a.to,
            a.value,
            a.validAfter,
            a.validBefore,
            a.nonce,
            checked.signature.clone(),
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(matches!(
        check_onchain(&provider, &checked, &codes).await,
        Err(OnchainError::Invalid(Reason::NonceAlreadyUsed))
    ));

    // A signature that is not the payer's: the token's own check (simulated) refuses it.
    let mut forged = request(&payer, &token, chain_id, now, 2);
    let other = PrivateKeySigner::random();
    let other_body = request(&other, &token, chain_id, now, 2);
    forged["paymentPayload"]["payload"]["signature"] =
        other_body["paymentPayload"]["payload"]["signature"].clone();
    let forged: PaymentRequest = serde_json::from_value(forged).unwrap();
    let checked = verifier.check(&forged, now).unwrap();
    assert!(checked.needs_wallet_check);
    assert!(matches!(
        check_onchain(&provider, &checked, &codes).await,
        Err(OnchainError::Invalid(Reason::Signature))
    ));

    // Review finding: a forged signature "from" a plain account cost three RPC calls (nonce, balance, simulated
    // transfer). Now the payer's code is looked up once and remembered: with the chain gone, the next forgery from
    // the same payer is still refused, with no call at all, while a real check fails for want of a chain.
    let dead = ProviderBuilder::new().connect_http("http://127.0.0.1:9".parse().unwrap()).erased();
    let mut again = request(&payer, &token, chain_id, now, 3);
    again["paymentPayload"]["payload"]["signature"] =
        request(&other, &token, chain_id, now, 3)["paymentPayload"]["payload"]["signature"].clone();
    let again = verifier.check(&serde_json::from_value(again).unwrap(), now).unwrap();
    assert!(matches!(
        check_onchain(&dead, &again, &codes).await,
        Err(OnchainError::Invalid(Reason::Signature))
    ));
    let genuine =
        verifier.check(&serde_json::from_value(request(&payer, &token, chain_id, now, 4)).unwrap(), now);
    assert!(matches!(check_onchain(&dead, &genuine.unwrap(), &codes).await, Err(OnchainError::Rpc(_))));
}

/// Payments the official packages signed (crates/protocol/tests/fixtures/official) pass the checks: their
/// EIP-712 signatures recover to the payer with this project's hashing, v2 (`@x402/core`) and v1 (`x402` 1.x).
#[test]
fn payments_signed_by_the_official_packages_pass_the_checks() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/fixtures/official");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(fixtures.join(name)).unwrap()).unwrap()
    };
    let token = usdc(address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"));
    let verifier = Verifier::new(84_532, std::slice::from_ref(&token), 6);
    let v2 = read("v2-payment-payload.json");
    let v1 = read("v1-payment.json");
    for (version, payload, requirements) in [
        (2, v2, read("v2-payment-required.json")["accepts"][0].clone()),
        (1, v1["paymentPayload"].clone(), v1["paymentRequired"]["accepts"][0].clone()),
    ] {
        let body =
            json!({"x402Version": version, "paymentPayload": payload, "paymentRequirements": requirements});
        let request: PaymentRequest = serde_json::from_value(body).unwrap();
        let valid_before: u64 = request.payment_payload.payload.authorization.valid_before.parse().unwrap();
        let checked = verifier.check(&request, valid_before - 30).unwrap();
        assert!(!checked.needs_wallet_check, "v{version}: the payer's own signature");
        assert_eq!(checked.authorization.from, request.payment_payload.payload.authorization.from);
    }
}
