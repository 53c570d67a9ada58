//! The official v2 facilitator client (`HTTPFacilitatorClient` of @x402/core) against this facilitator: what
//! `/supported` lists, a valid payment verified and settled once, and each refusal with its reason.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use serde_json::json;

use crate::common::anvil;
use crate::common::facilitator::{FacilitatorProc, node};
use crate::common::keeper::{KEEPER, MERCHANT, net};

#[tokio::test(flavor = "multi_thread")]
async fn the_official_facilitator_client_gets_every_answer_and_the_chain_agrees() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let api_key = "test-api-key-0123456789";
    let config = net.scratch.dir().join("facilitator.toml");
    std::fs::write(&config, "[keeper]\nmin_amount = 100\n\n[facilitator]\nverify_margin_secs = 6\n").unwrap();
    let config = config.to_str().unwrap();
    let env = [("X402_FACILITATOR_API_KEY", api_key)];
    let mut facilitator =
        FacilitatorProc::start(&net, data.path(), "facilitator.log", &["--config", config], &env);
    facilitator.wait_ready().await;
    let merchant = net.keys[MERCHANT].address();
    let payer = &net.keys[1];
    let before = net.demo.balance(merchant).await.unwrap();
    let key = |signer: &PrivateKeySigner| format!("0x{}", alloy::hex::encode(signer.to_bytes()));
    let config = json!({
        "url": facilitator.url,
        "chainId": net.demo.chain_id,
        "token": {"address": net.demo.token.address, "name": net.demo.token.name, "version": net.demo.token.version},
        "merchant": merchant,
        "stranger": Address::repeat_byte(0x5a),
        "payerKey": key(payer),
        "otherKey": key(&net.keys[2]),
        "unfundedKey": key(&PrivateKeySigner::random()),
        "apiKey": api_key,
    });
    let out = node("facilitator-client.mjs", &[&config.to_string()]);

    // /supported: exact and channel on eip155:31337 (no v1 name for a 31337 chain), the extension, the signer.
    let supported = &out["supported"];
    let channels = net.demo.contracts.payment_channel.to_checksum(None);
    assert_eq!(
        supported["kinds"],
        json!([{"x402Version": 2, "scheme": "exact", "network": "eip155:31337"},
               {"x402Version": 2, "scheme": "channel", "network": "eip155:31337", "extra": {"paymentChannel": channels}}])
    );
    assert_eq!(supported["extensions"], json!(["payment-identifier"]));
    assert_eq!(supported["signers"]["eip155:*"], json!([net.keys[KEEPER].address().to_checksum(None)]));

    // The valid payment: verified, settled once (the repeat answers the same transaction), then no longer valid.
    let valid = &out["valid"];
    assert_eq!(valid["verify"]["isValid"], true, "{valid}");
    assert_eq!(valid["verify"]["payer"], payer.address().to_checksum(None));
    let settled = &valid["settle"];
    assert_eq!(settled["success"], true, "{valid}");
    assert_eq!(settled["network"], "eip155:31337");
    assert_eq!(settled["amount"], "1000");
    assert_eq!(settled["payer"], payer.address().to_checksum(None));
    assert_eq!(valid["settleAgain"], *settled, "a repeated settle answers the same");
    assert_eq!(valid["verifyAfter"]["isValid"], false);
    assert_eq!(valid["verifyAfter"]["invalidReason"], "invalid_exact_evm_nonce_already_used");
    let tx: alloy::primitives::B256 = settled["transaction"].as_str().unwrap().parse().unwrap();
    let receipt = net.demo.provider.get_transaction_receipt(tx).await.unwrap().unwrap();
    assert!(receipt.status(), "the settling transaction succeeded");
    assert_eq!(receipt.from, net.keys[KEEPER].address());

    // Each refusal, the same at /verify (isValid false) and /settle (success false, no transaction).
    let expected = [
        ("invalid_network", "invalid_network"),
        ("unsupported_scheme", "unsupported_scheme"),
        ("network_mismatch", "invalid_exact_evm_network_mismatch"),
        ("missing_domain", "invalid_exact_evm_missing_eip712_domain"),
        ("token_name_mismatch", "invalid_exact_evm_token_name_mismatch"),
        ("token_version_mismatch", "invalid_exact_evm_token_version_mismatch"),
        ("recipient_mismatch", "invalid_exact_evm_payload_recipient_mismatch"),
        ("value_mismatch", "invalid_exact_evm_payload_authorization_value_mismatch"),
        ("unknown_token", "invalid_payment_requirements"),
        ("expiring", "invalid_exact_evm_payload_authorization_valid_before"),
        ("stranger_merchant", "invalid_payment_requirements"),
        ("below_minimum", "invalid_payment_requirements"),
        ("unfunded", "insufficient_funds"),
        ("another_keys_signature", "invalid_exact_evm_payload_signature"),
        ("not_valid_yet", "invalid_exact_evm_payload_authorization_valid_after"),
    ];
    let refused = &out["refused"];
    assert_eq!(refused.as_object().unwrap().len(), expected.len());
    for (case, reason) in expected {
        let answers = &refused[case];
        assert_eq!(answers["verify"]["isValid"], false, "{case}: {answers}");
        assert_eq!(answers["verify"]["invalidReason"], reason, "{case}: {answers}");
        assert!(answers["verify"]["invalidMessage"].as_str().is_some_and(|m| !m.is_empty()), "{case}");
        assert_eq!(answers["settle"]["success"], false, "{case}: {answers}");
        assert_eq!(answers["settle"]["errorReason"], reason, "{case}: {answers}");
        assert_eq!(answers["settle"]["transaction"], "", "{case}: nothing was sent");
    }

    // payment-identifier: the same id and payment twice is one settlement; the id with another payment is 409.
    let ids = &out["paymentIdentifier"];
    assert_eq!(ids["first"]["success"], true, "{ids}");
    assert_eq!(ids["repeated"], ids["first"]);
    assert_eq!(ids["otherPayment"]["thrown"], "SettleError", "{ids}");
    assert_eq!(ids["otherPayment"]["status"], 409, "{ids}");

    // Without the API key /settle is refused; the client throws on the 401.
    assert!(out["withoutKey"]["message"].as_str().unwrap().contains("401"), "{}", out["withoutKey"]);

    // On chain: exactly the two settled payments reached the merchant.
    let after = net.demo.balance(merchant).await.unwrap();
    assert_eq!(after - before, U256::from(2_000));
    let metrics = facilitator.metrics().await;
    assert!(
        metrics.contains("x402_facilitator_requests_total{route=\"settle\",result=\"settled\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("x402_facilitator_verify_seconds_count"), "{metrics}");
    assert!(metrics.contains("x402_keeper_balance_wei{network=\"local\"}"), "{metrics}");
}
