//! An axum app behind `PaywallLayer`, verifying and settling through `x402 facilitator`, paid by `x402-client`.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use serde_json::{Value, json};
use x402_client::offer::{self, Candidate};
use x402_client::sign::sign;
use x402_client::{ClientError, Policy};
use x402_paywall::facilitator::HttpFacilitator;
use x402_protocol::headers;

use crate::common::anvil;
use crate::common::facilitator::FacilitatorProc;
use crate::common::keeper::{MERCHANT, net};
use crate::common::paywall::{App, WEATHER_PRICE, client};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The 402 of `url` and its first requirement.
async fn offer_of(url: &str) -> (offer::Offer, Candidate) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 402);
    let headers = response.headers().clone();
    let offer = offer::read(&headers, &response.bytes().await.unwrap()).unwrap();
    let candidate = offer.candidates[0].clone();
    (offer, candidate)
}

async fn get_with(url: &str, header: &str, value: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = reqwest::Client::new().get(url).header(header, value).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, response.json().await.unwrap_or(Value::Null), headers)
}

fn error_of(headers: &reqwest::header::HeaderMap) -> String {
    let required: Value = headers::decode(headers["payment-required"].to_str().unwrap()).unwrap();
    required["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_layer_serves_paid_requests_once_and_refuses_the_rest_before_the_handler() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let app = App::start(&net, HttpFacilitator::new(&facilitator.url).unwrap()).await;
    let merchant = net.keys[MERCHANT].address();
    let payer = &net.keys[3];
    let weather = format!("{}/weather", app.url);

    // No payment: 402, the offer in PAYMENT-REQUIRED, no-store; unpriced routes pass.
    let plain = reqwest::get(&weather).await.unwrap();
    assert_eq!(plain.status(), 402);
    assert_eq!(plain.headers()["cache-control"], "no-store");
    let (offer, candidate) = offer_of(&weather).await;
    assert_eq!(offer.resource.as_ref().unwrap().url, weather);
    assert_eq!(offer.resource.as_ref().unwrap().description.as_deref(), Some("Weather"));
    assert_eq!(candidate.requirement.amount, WEATHER_PRICE.to_string());
    assert_eq!(candidate.requirement.network, "eip155:31337");
    let body: Value = reqwest::get(&weather).await.unwrap().json().await.unwrap();
    assert_eq!(body["x402Version"], 1);
    assert_eq!(body["accepts"], json!([]), "a chain without a v1 name is not offered to v1 clients");
    assert_eq!(reqwest::get(format!("{}/free", app.url)).await.unwrap().text().await.unwrap(), "free");

    // Paid by the client: served once, settled, the receipt in PAYMENT-RESPONSE, Cache-Control private.
    let before = net.demo.balance(merchant).await.unwrap();
    let client = client(&net, payer);
    let outcome = client.send(client.http_client().get(&weather).build().unwrap()).await.unwrap();
    assert_eq!(outcome.response.status(), 200);
    assert_eq!(outcome.response.headers()["cache-control"], "private");
    let payment = outcome.payment.unwrap();
    let receipt = payment.receipt.clone().unwrap();
    assert!(receipt.success, "{receipt:?}");
    assert_eq!(
        receipt.payer.as_deref().map(str::to_lowercase),
        Some(payer.address().to_string().to_lowercase())
    );
    let tx: B256 = receipt.transaction.parse().unwrap();
    assert!(net.demo.provider.get_transaction_receipt(tx).await.unwrap().unwrap().status());
    let body: Value = outcome.response.json().await.unwrap();
    assert_eq!(body["weather"], "sunny");
    assert_eq!(body["payer"].as_str().unwrap().to_lowercase(), payer.address().to_string().to_lowercase());
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(WEATHER_PRICE));
    assert_eq!(app.served(), 1);

    // The same payment again (a replay): refused before the handler.
    let signed =
        sign(payer, &candidate, offer.resource.as_ref(), U256::from(WEATHER_PRICE), now()).await.unwrap();
    let (status, _, _) = get_with(&weather, signed.header, &signed.value).await;
    assert_eq!(status, 200);
    let (status, _, replayed) = get_with(&weather, signed.header, &signed.value).await;
    assert_eq!(status, 402);
    assert!(error_of(&replayed).contains("used already"), "{}", error_of(&replayed));
    assert_eq!(app.served(), 2);

    // Made for /weather, sent to /broken (priced differently): unmatched. A tampered value: the signature fails.
    let fresh =
        sign(payer, &candidate, offer.resource.as_ref(), U256::from(WEATHER_PRICE), now()).await.unwrap();
    let (status, _, headers) = get_with(&format!("{}/broken", app.url), fresh.header, &fresh.value).await;
    assert_eq!(status, 402);
    assert!(error_of(&headers).contains("another resource"), "{}", error_of(&headers));
    let mut tampered: Value = headers::decode(&fresh.value).unwrap();
    tampered["payload"]["authorization"]["validBefore"] = json!((now() + 50).to_string());
    let (status, _, headers) = get_with(&weather, fresh.header, &headers::encode(&tampered).unwrap()).await;
    assert_eq!(status, 402);
    assert!(error_of(&headers).contains("invalid_exact_evm_payload_signature"), "{}", error_of(&headers));
    // Expired: signed long ago.
    let old = sign(payer, &candidate, offer.resource.as_ref(), U256::from(WEATHER_PRICE), now() - 3600)
        .await
        .unwrap();
    let (status, _, headers) = get_with(&weather, old.header, &old.value).await;
    assert_eq!(status, 402);
    assert!(error_of(&headers).contains("valid_before"), "{}", error_of(&headers));
    // Not a payment at all: 400.
    let (status, _, _) = get_with(&weather, "PAYMENT-SIGNATURE", "bm90IGpzb24=").await;
    assert_eq!(status, 400);
    assert_eq!(app.served(), 2, "no refused payment reached the handler");

    // A handler that fails is not charged, and its payment stays usable.
    let payer_before = net.demo.balance(payer.address()).await.unwrap();
    let broken = format!("{}/broken", app.url);
    let (broken_offer, broken_candidate) = offer_of(&broken).await;
    let signed =
        sign(payer, &broken_candidate, broken_offer.resource.as_ref(), U256::from(700), now()).await.unwrap();
    let (status, _, headers) = get_with(&broken, signed.header, &signed.value).await;
    assert_eq!(status, 500);
    assert!(headers.get("payment-response").is_none());
    assert_eq!(net.demo.balance(payer.address()).await.unwrap(), payer_before, "not settled");
    let (status, _, _) = get_with(&broken, signed.header, &signed.value).await;
    assert_eq!(status, 500, "the claim was released");

    // Settled before the handler, with a POST body.
    let outcome = client
        .send(client.http_client().post(format!("{}/report", app.url)).body("rain").build().unwrap())
        .await
        .unwrap();
    assert_eq!(outcome.response.status(), 200);
    assert!(outcome.payment.as_ref().unwrap().receipt.as_ref().unwrap().success);
    assert_eq!(outcome.response.text().await.unwrap(), "report on rain");

    // Over the policy's cap: refused by the client, nothing signed or sent.
    let strict = x402_client::Client::new(payer.clone()).unwrap().policy(
        Policy::default()
            .allow_asset(net.demo.chain_id, net.demo.token.address)
            .max_per_request("1000".parse().unwrap()),
    );
    let refused = strict.send(strict.http_client().get(&weather).build().unwrap()).await.unwrap_err();
    assert!(matches!(&refused, ClientError::Refused(reasons) if reasons[0].contains("cap")), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_facilitator_that_cannot_be_reached_is_a_503_and_the_payment_stays_usable() {
    let net = net(anvil().spawn()).await;
    let port = crate::common::keeper::free_port();
    let app = App::start(&net, HttpFacilitator::new(&format!("http://127.0.0.1:{port}")).unwrap()).await;
    let weather = format!("{}/weather", app.url);
    let (offer, candidate) = offer_of(&weather).await;
    let signed = sign(&net.keys[3], &candidate, offer.resource.as_ref(), U256::from(WEATHER_PRICE), now())
        .await
        .unwrap();
    let response =
        reqwest::Client::new().get(&weather).header(signed.header, &signed.value).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(app.served(), 0);
}

/// The real facilitator, whose first settlement answer is lost on the way back (it settles, the layer hears
/// nothing).
struct LosesFirstSettleAnswer(HttpFacilitator, std::sync::atomic::AtomicBool);

impl x402_paywall::facilitator::Facilitator for LosesFirstSettleAnswer {
    fn verify(
        &self,
        request: Value,
    ) -> x402_paywall::facilitator::BoxFuture<
        '_,
        Result<x402_protocol::facilitator::VerifyResponse, x402_paywall::facilitator::FacilitatorError>,
    > {
        self.0.verify(request)
    }

    fn settle(
        &self,
        request: Value,
    ) -> x402_paywall::facilitator::BoxFuture<
        '_,
        Result<x402_protocol::facilitator::SettleResponse, x402_paywall::facilitator::FacilitatorError>,
    > {
        Box::pin(async move {
            let answer = self.0.settle(request).await;
            if !self.1.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(x402_paywall::facilitator::FacilitatorError::Unavailable("answer lost".into()));
            }
            answer
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_whose_settlement_answer_was_lost_is_served_when_sent_again_and_paid_once() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let flaky = LosesFirstSettleAnswer(HttpFacilitator::new(&facilitator.url).unwrap(), Default::default());
    let app = App::start(&net, flaky).await;
    let merchant = net.keys[MERCHANT].address();
    let before = net.demo.balance(merchant).await.unwrap();
    let weather = format!("{}/weather", app.url);
    let (offer, candidate) = offer_of(&weather).await;
    let signed = sign(&net.keys[2], &candidate, offer.resource.as_ref(), U256::from(WEATHER_PRICE), now())
        .await
        .unwrap();
    let (status, _, _) = get_with(&weather, signed.header, &signed.value).await;
    assert_eq!(status, 503, "no verdict: try again");
    assert_eq!(
        net.demo.balance(merchant).await.unwrap() - before,
        U256::from(WEATHER_PRICE),
        "it did settle"
    );
    // Verifying again would fail (the nonce is used); the same payment resumes its settlement instead.
    let (status, body, headers) = get_with(&weather, signed.header, &signed.value).await;
    assert_eq!(status, 200, "{body}");
    let receipt: Value = headers::decode(headers["payment-response"].to_str().unwrap()).unwrap();
    assert_eq!(receipt["success"], true);
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(WEATHER_PRICE), "paid once");
    // Another payload with the same nonce does not resume it.
    let mut forged: Value = headers::decode(&signed.value).unwrap();
    forged["payload"]["authorization"]["value"] = json!("1");
    let (status, _, _) = get_with(&weather, signed.header, &headers::encode(&forged).unwrap()).await;
    assert_eq!(status, 402);

    // A request that already carries a payment is not paid again by the client.
    let client = client(&net, &net.keys[2]);
    let request = client.http_client().get(&weather).header(signed.header, &signed.value).build().unwrap();
    assert!(matches!(client.send(request).await, Err(ClientError::AlreadyPaid)));
}
