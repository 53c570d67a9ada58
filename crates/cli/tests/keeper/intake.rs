//! The payment intake (`POST /payments`, `x402 enqueue`, `x402 payment`): what it refuses and how it answers.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use x402_bindings::TestStablecoin;

use crate::common::keeper::*;
use crate::common::x402;

/// Posts `bodies` 16 at a time (within one client's connection cap); returns the answers in order.
async fn post_all(keeper: &KeeperProc, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for chunk in bodies.chunks(16) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|body| {
                let request = client.post(format!("{}/payments", keeper.api)).json(body);
                tokio::spawn(async move {
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    (status, response.json::<Value>().await.unwrap_or(Value::Null))
                })
            })
            .collect();
        for task in tasks {
            out.push(task.await.unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_a_full_queue_and_a_flood_are_refused_and_the_keeper_keeps_serving() {
    let net = net(crate::common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let settings = "max_queue = 3\nclient_rate_limit_per_sec = 5\nclient_rate_limit_burst = 10\n\
                    max_body_bytes = 2048\ntrusted_proxies = [\"127.0.0.3\"]\n";
    let mut keeper = keeper_with(&net, 600, settings).await;
    let now = net.demo.now().await.unwrap();

    // A body over max_body_bytes is refused before it is parsed.
    let (status, _) = keeper.post_raw("/payments", format!("{{\"pad\":\"{}\"}}", "x".repeat(4096))).await;
    assert_eq!(status, 413);
    // Not JSON, and JSON of the wrong shape.
    for body in ["not json", "{\"x402Version\":2,\"paymentPayload\":5}", "[]"] {
        let (status, answer) = keeper.post_raw("/payments", body.to_owned()).await;
        assert_eq!((status, answer["invalidReason"].as_str()), (400, Some("invalid_payload")), "{body}");
    }

    // The queue holds three; the fourth payment waits for room (429), a repeat of a queued one is answered.
    let mut queued = Vec::new();
    for i in 0..4u8 {
        let body = net.demo.payment(&net.keys[1], merchant, U256::from(100), now, &[b'q', i]).unwrap();
        let response =
            reqwest::Client::new().post(format!("{}/payments", keeper.api)).json(&body).send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let answer: Value = response.json().await.unwrap();
        if i < 3 {
            assert_eq!(status, 202, "{answer}");
            queued.push(body);
        } else {
            // A full queue waits for the next tick, 600 s away.
            assert_eq!(status, 429, "{answer}");
            assert!(answer["error"].as_str().unwrap().contains("queue is full"), "{answer}");
            assert_eq!(answer["retryAfterSecs"], 600, "{answer}");
            assert_eq!(headers.get("retry-after").unwrap(), "600");
        }
    }
    let (status, answer) = keeper.post("/payments", &queued[0]).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("queued")));

    // A flood of 60 requests at once from 127.0.0.1 against its bucket of 10 refilled at 5/s: most are turned
    // away with 429 and a Retry-After.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    let flood: Vec<_> = (0..60)
        .map(|_| {
            let api = keeper.api.clone();
            tokio::spawn(async move {
                let response =
                    reqwest::Client::new().post(format!("{api}/payments")).body("{}").send().await.unwrap();
                let retry_after =
                    response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                (response.status().as_u16(), retry_after)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in flood {
        statuses.push(request.await.unwrap());
    }
    let mut limited = statuses.iter().filter(|(s, _)| *s == 429).count();
    assert!(statuses.iter().all(|(s, _)| *s == 400 || *s == 429), "{statuses:?}");
    // The burst of 10, plus what the bucket refilled (5/s) while the flood ran.
    let refilled = (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!((10..=10 + refilled).contains(&(60 - limited)), "{limited} of 60 limited, refilled {refilled}");
    assert!(statuses.iter().all(|(s, r)| (*s == 429) == (r.as_deref() == Some("1"))), "{statuses:?}");

    // Another client (127.0.0.2) has its own bucket: the flood did not touch it. An X-Forwarded-For header from
    // it is ignored (it is not a trusted proxy), so naming a new address on every request buys nothing.
    let other = client_from("127.0.0.2");
    let started = Instant::now();
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let request = other
                .post(format!("{}/payments", keeper.api))
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .body("{}");
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut served = 0;
    for request in requests {
        match request.await.unwrap() {
            400 => served += 1,
            429 => limited += 1,
            status => panic!("unexpected {status}"),
        }
    }
    // Its burst of 10, plus what its bucket refilled (5/s) while the requests ran.
    let refilled = (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!((10..=10 + refilled).contains(&served), "127.0.0.2 served {served}, refilled {refilled}");

    // Behind the trusted proxy 127.0.0.3 each forwarded address is a client of its own: none is limited, though
    // twenty at once are twice a client's burst.
    let proxy = client_from("127.0.0.3");
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let request = proxy
                .post(format!("{}/payments", keeper.api))
                .header("x-forwarded-for", format!("203.0.113.77, 198.51.100.{i}"))
                .body("{}");
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), 400, "every forwarded client is served");
    }

    // The keeper is still alive and serving; after a pause the bucket lets requests in again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let health = reqwest::get(format!("{}/health", keeper.api)).await.unwrap().status().as_u16();
    assert_eq!(health, 200);
    let (status, _) = keeper.post_raw("/payments", "{}".to_owned()).await;
    assert_eq!(status, 400);
    let metrics = reqwest::get(format!("{}/metrics", keeper.api)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(&format!("x402_keeper_intake_requests_total{{result=\"rate_limited\"}} {limited}")),
        "{metrics}"
    );
    assert!(metrics.contains("x402_keeper_intake_requests_total{result=\"queue_full\"} 1"), "{metrics}");
    assert!(metrics.contains("x402_keeper_queue_depth 3"), "{metrics}");
    let status = keeper.terminate();
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn enqueue_waits_out_the_rate_limit_and_payment_shows_each_outcome() {
    let net = net(crate::common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let mut keeper =
        keeper_with(&net, 1, "client_rate_limit_per_sec = 2\nclient_rate_limit_burst = 3\n").await;
    let now = net.demo.now().await.unwrap();
    let before = net.demo.balance(merchant).await.unwrap();

    // Eight good payments and one from a payer without funds, in one file: more than the burst of 3 allows.
    let mut requests: Vec<Value> = (0..8u64)
        .map(|i| {
            let payer = &net.keys[1 + (i as usize) % 5];
            net.demo.payment(payer, merchant, U256::from(500 + i), now, &[b'e', i as u8]).unwrap()
        })
        .collect();
    requests
        .push(net.demo.payment(&PrivateKeySigner::random(), merchant, U256::from(7), now, b"broke").unwrap());
    let file = net.scratch.dir().join("payments.json");
    std::fs::write(&file, serde_json::to_string(&requests).unwrap()).unwrap();
    let output =
        x402(&["enqueue", file.to_str().unwrap(), "--keeper-url", &keeper.api], None).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);

    // Every good payment was queued, the 429s waited out rather than reported; the bad one is refused with
    // its reason and makes the exit code 1.
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("rate limit exceeded for this client; retry later); sending again in 1 s"),
        "{stdout}"
    );
    let ids: Vec<String> =
        stdout.lines().filter_map(|line| line.split_once(": queued ").map(|(_, id)| id.to_owned())).collect();
    assert_eq!(ids.len(), 8, "{stdout}");
    assert!(stdout.contains("8: refused (400 Bad Request): insufficient_funds"), "{stdout}");
    assert!(!stdout.contains("refused (429"), "{stdout}");

    // `x402 payment` shows them settled; an unknown id makes it exit 1.
    let mut args = vec!["payment", "--keeper-url", &keeper.api];
    args.extend(ids.iter().map(String::as_str));
    wait_until("the enqueued payments settle", 60, || {
        let output = x402(&args, None).output().unwrap();
        async move {
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            output.status.success() && stdout.matches("\"status\": \"settled\"").count() == 8
        }
    })
    .await;
    let expected: u64 = (0..8).map(|i| 500 + i).sum();
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before + U256::from(expected));
    let unknown = format!("{}:{}:{}", net.demo.token.address, net.keys[1].address(), B256::repeat_byte(9));
    let output = x402(&["payment", "--keeper-url", &keeper.api, &unknown], None).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(keeper.terminate().success());
}

/// Finding 3: a zero-value payment signed by a fresh, unfunded key passed intake and was settled at the keeper's
/// expense, 300 of them filled the queue, the client named any merchant, and 30 payments of 1,000 from a payer
/// holding 10,000 were all accepted (20 failed at settlement). Now the policy refuses them before anything is
/// queued, and a payer's queued payments never add up to more than the balance read at intake, also when posted
/// all at once.
#[tokio::test(flavor = "multi_thread")]
async fn free_junk_and_strangers_merchants_are_refused_and_a_payer_never_queues_more_than_its_balance() {
    let net = net(crate::common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    // Batches of 11: the ten accepted payments of the payer below wait for an eleventh from someone else.
    let keeper = keeper_with(&net, 600, "payments_batch = 11\n").await;
    let now = net.demo.now().await.unwrap();
    let nonce = keeper_nonce(&net).await;

    let junk = PrivateKeySigner::random();
    let zero = net.demo.payment(&junk, merchant, U256::ZERO, now, b"zero").unwrap();
    let (status, answer) = keeper.post("/payments", &zero).await;
    assert_eq!((status, answer["invalidReason"].as_str()), (400, Some("invalid_payment_requirements")));
    assert!(
        answer["invalidMessage"].as_str().unwrap().contains("below this keeper's minimum of 1"),
        "{answer}"
    );
    let stranger = Address::repeat_byte(0x77);
    let elsewhere = net.demo.payment(&net.keys[1], stranger, U256::from(1000), now, b"elsewhere").unwrap();
    let (status, answer) = keeper.post("/payments", &elsewhere).await;
    assert_eq!((status, answer["invalidReason"].as_str()), (400, Some("invalid_payment_requirements")));
    assert!(answer["invalidMessage"].as_str().unwrap().contains("is not a merchant"), "{answer}");
    // 300 junk payments fill nothing: an honest payment is still queued.
    let junk_bodies: Vec<Value> = (0..300u16)
        .map(|i| net.demo.payment(&junk, merchant, U256::ZERO, now, &i.to_be_bytes()).unwrap())
        .collect();
    let answers = post_all(&keeper, junk_bodies).await;
    assert!(answers.iter().all(|(status, _)| *status == 400), "every junk payment refused");

    let payer = PrivateKeySigner::random();
    net.demo.mint(payer.address(), U256::from(10_000)).await.unwrap();
    let bodies: Vec<Value> = (0..30u8)
        .map(|i| net.demo.payment(&payer, merchant, U256::from(1000), now, &[b'p', i]).unwrap())
        .collect();
    let answers = post_all(&keeper, bodies).await;
    let accepted: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 202).map(|(_, a)| a).collect();
    let refused =
        answers.iter().filter(|(s, a)| *s == 400 && a["invalidReason"] == "insufficient_funds").count();
    assert_eq!((accepted.len(), refused), (10, 20), "{answers:?}");
    assert!(
        answers
            .iter()
            .any(|(_, a)| a["invalidMessage"].as_str().is_some_and(|m| m.contains("not settled yet"))),
        "the refusal says why: {answers:?}"
    );

    let honest = net.demo.payment(&net.keys[2], merchant, U256::from(1000), now, b"honest").unwrap();
    let (status, honest) = keeper.post("/payments", &honest).await;
    assert_eq!(status, 202, "{honest}");
    let mut ids: Vec<String> = accepted.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    ids.push(honest["id"].as_str().unwrap().to_owned());
    wait_final(&keeper, ids.iter()).await;
    for id in &ids {
        assert_eq!(keeper.payment(id).await["status"], "settled", "{id}");
    }
    assert_eq!(net.demo.balance(payer.address()).await.unwrap(), U256::ZERO);
    assert_eq!(keeper_nonce(&net).await, nonce + 1, "one batch; nothing sent for the junk");
    let metrics = reqwest::get(format!("{}/metrics", keeper.api)).await.unwrap().text().await.unwrap();
    assert!(
        !metrics.contains("outcome=\"insufficient_funds\""),
        "no payment failed at settlement: {metrics}"
    );
}

async fn futures_outcomes(keeper: &KeeperProc, ids: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for id in ids {
        let record = keeper.payment(id).await;
        out.push((
            record["status"].as_str().unwrap_or_default().to_owned(),
            record["reason"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    out
}

/// Finding 8: the excess of a payer's payments in one batch beyond its balance was reported
/// `unexpected_settle_error`; 404, 405, 413 and 400 answers were not JSON; 202 bodies had lowercase addresses.
#[tokio::test(flavor = "multi_thread")]
async fn answers_are_json_with_checksummed_addresses_and_a_batch_excess_is_insufficient_funds() {
    let net = net(crate::common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let keeper = keeper_with(&net, 600, "payments_batch = 4\nmax_body_bytes = 2048\n").await;
    let now = net.demo.now().await.unwrap();

    let client = reqwest::Client::new();
    let get = |route: &str| client.get(format!("{}{route}", keeper.api)).send();
    for (response, status) in [
        (get("/nope").await.unwrap(), 404),
        (client.delete(format!("{}/payments", keeper.api)).send().await.unwrap(), 405),
        (get("/payments/not-an-id").await.unwrap(), 400),
        (client.post(format!("{}/payments", keeper.api)).body("x".repeat(4096)).send().await.unwrap(), 413),
    ] {
        assert_eq!(response.status().as_u16(), status);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{status}: {body}");
    }

    // A payer holding 3,000 queues three payments of 1,000, then moves 1,500 away before the batch.
    let payer = &net.keys[6];
    net.demo.mint(payer.address(), U256::from(3000)).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3u8 {
        let body = net.demo.payment(payer, merchant, U256::from(1000), now, &[b'x', i]).unwrap();
        let (status, answer) = keeper.post("/payments", &body).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["payer"].as_str(), Some(payer.address().to_checksum(None).as_str()));
        assert_eq!(answer["to"].as_str(), Some(merchant.to_checksum(None).as_str()));
        assert_eq!(answer["token"].as_str(), Some(net.demo.token.address.to_checksum(None).as_str()));
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }
    let token = TestStablecoin::new(net.demo.token.address, &net.demo.provider);
    let drain = token.transfer(net.keys[0].address(), U256::from(1500)).from(payer.address());
    drain.send().await.unwrap().get_receipt().await.unwrap();
    // A fourth payment, from someone else, fills the batch.
    let other = net.demo.payment(&net.keys[1], merchant, U256::from(1000), now, b"fourth").unwrap();
    assert_eq!(keeper.post("/payments", &other).await.0, 202);
    wait_final(&keeper, ids.iter()).await;
    let outcomes: Vec<(String, String)> = futures_outcomes(&keeper, &ids).await;
    assert_eq!(outcomes[0].0, "settled");
    assert_eq!(outcomes[1].0, "failed");
    assert_eq!(outcomes[2].0, "failed");
    assert!(outcomes[1..].iter().all(|(_, reason)| reason == "insufficient_funds"), "{outcomes:?}");
}

/// Finding 9: the official v1 clients sign only for named networks (`base-sepolia` is 84532), and the keeper
/// derived the v1 name from the record's network label, so a `local` deployment took no v1 payment even on an
/// anvil with chain id 84532. Now the name comes from the chain id; a 31337 chain has none.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_chain_with_chain_id_84532_takes_v1_payments() {
    let net = net(crate::common::anvil().chain_id(84_532).spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let keeper = keeper_with(&net, 1, "").await;
    let now = net.demo.now().await.unwrap();
    let v1 = net.demo.payment_v1(&net.keys[1], merchant, U256::from(1234), now, b"v1").unwrap().unwrap();
    assert_eq!(v1["paymentRequirements"]["network"], "base-sepolia");
    let (status, answer) = keeper.post("/payments", &v1).await;
    assert_eq!(status, 202, "{answer}");
    wait_final(&keeper, [answer["id"].as_str().unwrap().to_owned()].iter()).await;
    assert_eq!(keeper.payment(answer["id"].as_str().unwrap()).await["status"], "settled");

    let plain = crate::common::keeper::net(crate::common::anvil().spawn()).await;
    let keeper = keeper_with(&plain, 600, "").await;
    let mut v1 = plain.demo.payment_v1(&plain.keys[1], merchant, U256::from(1234), now, b"v1").unwrap();
    assert!(v1.is_none(), "chain 31337 has no v1 name");
    v1 = net.demo.payment_v1(&plain.keys[1], merchant, U256::from(1234), now, b"v1").unwrap();
    let (status, answer) = keeper.post("/payments", &v1.unwrap()).await;
    assert_eq!((status, answer["invalidReason"].as_str()), (400, Some("invalid_network")), "{answer}");
}
