//! Findings of the black-box review of the facilitator, each failing before its fix: `/verify` now refuses a
//! `payment-identifier` id that `/settle` would refuse, `/payments` calls a malformed body `invalid_payload`, and a
//! payment `/settle` refused for good no longer holds its payer's balance against later payments.

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};

use crate::common::anvil;
use crate::common::facilitator::FacilitatorProc;
use crate::common::keeper::{MERCHANT, net, submit_directly};

fn with_id(mut body: Value, id: &str) -> Value {
    body["paymentPayload"]["extensions"] =
        json!({"payment-identifier": {"info": {"required": false, "id": id}}});
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_refuses_the_payment_identifier_ids_settle_would_refuse() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let merchant = net.keys[MERCHANT].address();
    let now = net.demo.now().await.unwrap();
    let payment =
        |salt: &str| net.demo.payment(&net.keys[2], merchant, U256::from(5), now, salt.as_bytes()).unwrap();

    for bad in ["short", &"x".repeat(129), "has spaces in it, sixteen+"] {
        let (status, answer) = facilitator.post("/verify", &with_id(payment("bad-id"), bad)).await;
        assert_eq!((status, answer["isValid"].as_bool()), (200, Some(false)), "{bad}: {answer}");
        assert_eq!(answer["invalidReason"], "invalid_payload", "{answer}");
    }
    let id = "order-0123456789abcdef";
    let (status, settled) = facilitator.post("/settle", &with_id(payment("first"), id)).await;
    assert_eq!((status, settled["success"].as_bool()), (200, Some(true)), "{settled}");
    // The same id with the same request still verifies (as settled: its nonce is used), with another is refused.
    let (_, again) = facilitator.post("/verify", &with_id(payment("first"), id)).await;
    assert_eq!(again["invalidReason"], "invalid_exact_evm_nonce_already_used", "{again}");
    let (status, other) = facilitator.post("/verify", &with_id(payment("second"), id)).await;
    assert_eq!((status, other["isValid"].as_bool()), (200, Some(false)), "{other}");
    assert_eq!(other["invalidReason"], "invalid_payload", "{other}");
    let (status, _) = facilitator.post("/settle", &with_id(payment("second"), id)).await;
    assert_eq!(status, 409);
    let (_, plain) = facilitator.post("/verify", &payment("second")).await;
    assert_eq!(plain["isValid"], true, "{plain}");
    // The deferred intake names a malformed body for what it is, not as an unknown network.
    for body in [json!("x"), json!({})] {
        let (status, answer) = facilitator.post("/payments", &body).await;
        assert_eq!((status, answer["invalidReason"].as_str()), (400, Some("invalid_payload")), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_settle_refused_for_good_holds_nothing_against_the_next_ones() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let merchant = net.keys[MERCHANT].address();
    let now = net.demo.now().await.unwrap();
    let payer = PrivateKeySigner::random();
    let pay = |value: u64, salt: &str| {
        net.demo.payment(&payer, merchant, U256::from(value), now, salt.as_bytes()).unwrap()
    };
    net.demo.mint(payer.address(), U256::from(1000)).await.unwrap();

    let verified = pay(600, "verified");
    let (_, answer) = facilitator.post("/verify", &verified).await;
    assert_eq!(answer["isValid"], true, "{answer}");
    // The payer spends everything elsewhere: the verified payment cannot settle any more.
    submit_directly(&net, &pay(1000, "elsewhere")).await;
    let (_, answer) = facilitator.post("/settle", &verified).await;
    assert_eq!(answer["errorReason"], "insufficient_funds", "{answer}");
    // Funded again, the payer's next payment is not held back by the refused one.
    net.demo.mint(payer.address(), U256::from(1000)).await.unwrap();
    let (_, answer) = facilitator.post("/verify", &pay(600, "next")).await;
    assert_eq!(answer["isValid"], true, "{answer}");
}
