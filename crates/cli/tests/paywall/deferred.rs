//! Deferred settlement through `x402 proxy`: served before the payment settles, settled in the facilitator's
//! next batch; and a payer who empties its wallet after paying takes at most the exposure limit.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use serde_json::Value;
use x402_bindings::TestStablecoin;
use x402_client::ClientError;

use crate::common::anvil;
use crate::common::facilitator::FacilitatorProc;
use crate::common::keeper::{MERCHANT, Net, net, wait_until};
use crate::common::paywall::{ProxyProc, Upstream, client, prices_head};

/// `/deferred/*` for 1000 units, settled deferred, with at most 2500 unsettled per payer.
fn prices(net: &Net) -> String {
    let rest = r#"
[[route]]
path = "/deferred/*"
price = "1000"
settle = "deferred"
[deferred]
max_unsettled = "2500"
max_age_seconds = 60
"#;
    format!("{}{rest}", prices_head(net))
}

async fn automine(net: &Net, on: bool) {
    let _: Value = net.demo.provider.raw_request("evm_setAutomine".into(), (on,)).await.unwrap();
}

async fn mine(net: &Net) {
    let _: Value = net.demo.provider.raw_request("evm_mine".into(), ()).await.unwrap();
}

async fn pending_txs(net: &Net) -> usize {
    let status: Value = net.demo.provider.raw_request("txpool_status".into(), ()).await.unwrap();
    let pending = &status["pending"];
    pending
        .as_u64()
        .map(|n| n as usize)
        .or_else(|| {
            pending
                .as_str()
                .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                .map(|n| n as usize)
        })
        .unwrap_or(0)
}

async fn metric(proxy: &ProxyProc, line: &str) -> bool {
    let text = reqwest::get(format!("{}/metrics", proxy.url)).await.unwrap().text().await.unwrap();
    text.lines().any(|l| l == line)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deferred_payment_is_served_before_it_settles_and_settles_in_the_next_block() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let upstream = Upstream::start().await;
    let proxy = ProxyProc::start(&net, &upstream.url, &facilitator.url, &prices(&net)).await;
    let merchant = net.keys[MERCHANT].address();
    let before = net.demo.balance(merchant).await.unwrap();
    let client = client(&net, &net.keys[1]);

    automine(&net, false).await;
    let outcome = client
        .send(client.http_client().get(format!("{}/deferred/a", proxy.url)).build().unwrap())
        .await
        .unwrap();
    assert_eq!(outcome.response.status(), 200, "served with no block mined");
    assert!(outcome.payment.as_ref().unwrap().receipt.is_none(), "no receipt: not settled yet");
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before);
    wait_until("the settlement is sent", 10, || async { pending_txs(&net).await >= 1 }).await;
    automine(&net, true).await;
    mine(&net).await;
    wait_until("the deferred payment settles", 20, || async {
        net.demo.balance(merchant).await.unwrap() - before == U256::from(1000)
    })
    .await;
    wait_until("the proxy counts it", 10, || {
        metric(&proxy, "x402_paywall_deferred_total{result=\"settled\"} 1")
    })
    .await;
    assert!(metric(&proxy, "x402_paywall_deferred_pending 0").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payer_that_empties_its_wallet_after_paying_takes_at_most_the_exposure_limit() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let upstream = Upstream::start().await;
    let proxy = ProxyProc::start(&net, &upstream.url, &facilitator.url, &prices(&net)).await;
    let merchant = net.keys[MERCHANT].address();
    let payer = net.keys[6].clone();
    net.demo.mint(payer.address(), U256::from(10_000)).await.unwrap();
    let before = net.demo.balance(merchant).await.unwrap();

    // Blocks are mined by hand from here: every payment is verified, none settled.
    automine(&net, false).await;
    let started = Instant::now();
    let mut requests = Vec::new();
    for i in 0..5 {
        let client = client(&net, &payer);
        let url = format!("{}/deferred/{i}", proxy.url);
        requests.push(tokio::spawn(async move {
            let result = client.send(client.http_client().get(url).build().unwrap()).await;
            (result.map(|o| o.response.status().as_u16()), started.elapsed())
        }));
    }
    // Two fit in the 2500 limit and are served at once; the other three wait for their settlement.
    wait_until("two are served unsettled", 20, || {
        metric(&proxy, "x402_paywall_requests_total{outcome=\"deferred\"} 2")
    })
    .await;
    wait_until("the settlements are sent", 20, || async { pending_txs(&net).await >= 1 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Past the limit the route is settled after the handler: the upstream answered, its answers are held.
    wait_until("all five reached the upstream", 10, || async { upstream.hits() == 5 }).await;

    // The payer moves everything away, ahead of the settlement in the block.
    let token = TestStablecoin::new(net.demo.token.address, &net.demo.provider);
    let _pending = token
        .transfer(Address::repeat_byte(0xee), U256::from(10_000))
        .from(payer.address())
        .gas(100_000)
        .max_priority_fee_per_gas(100_000_000_000)
        .max_fee_per_gas(200_000_000_000)
        .send()
        .await
        .unwrap();
    automine(&net, true).await;
    mine(&net).await;

    let mut served = 0;
    let mut refused = 0;
    for request in requests {
        match request.await.unwrap() {
            (Ok(200), _) => served += 1,
            (Err(ClientError::PaymentFailed { status: 402, .. }), _) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        (served, refused),
        (2, 3),
        "the three past the limit were refused when their settlement failed"
    );
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before, "nothing settled: the wallet was empty");
    wait_until("the deferred two fail", 20, || {
        metric(&proxy, "x402_paywall_deferred_total{result=\"failed\"} 2")
    })
    .await;
    // Served unpaid: 2 x 1000, within the 2500 limit; the three held answers were never delivered.

    // The payer has defaulted: its next payment, funded again, is settled before it is served.
    net.demo.mint(payer.address(), U256::from(5_000)).await.unwrap();
    let client = client(&net, &payer);
    let outcome = client
        .send(client.http_client().get(format!("{}/deferred/late", proxy.url)).build().unwrap())
        .await
        .unwrap();
    assert_eq!(outcome.response.status(), 200);
    assert!(outcome.payment.unwrap().receipt.unwrap().success, "settled synchronously, with a receipt");
    assert!(metric(&proxy, "x402_paywall_requests_total{outcome=\"deferred\"} 2").await);
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(1000));
}
