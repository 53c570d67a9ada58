//! The keeper daemon against a real anvil, run as the user runs it (`x402 deploy`, then `x402 keeper` as a
//! separate process): subscriptions charged exactly once per period, 500 queued authorizations settled in a few
//! batches with the bad ones refused or reported, `kill -9` mid-batch, anvil restarted from a state dump, two
//! keepers on one database, abusive intake (oversized bodies, a full queue, floods from one client), `x402 enqueue`
//! and `x402 payment`, and vouchers of EOA and contract-wallet payers claimed before a close.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use common::keeper::*;
use common::x402;
use serde_json::Value;
use x402_bindings::{PaymentChannel, Subscription, TestStablecoin};

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_are_charged_exactly_once_per_period_over_many_periods() {
    let net = net(common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let mut subs = Vec::new();
    for i in 0..6u64 {
        let subscriber = net.keys[1 + (i as usize % 3)].address();
        let amount = U256::from((i + 1) * USDC);
        subs.push((net.demo.subscribe(subscriber, merchant, amount, PERIOD).await.unwrap(), amount));
    }
    let data = net.scratch.dir().join("keeper");
    let mut keeper = KeeperProc::start(&net, &data, 1, "keeper.log");
    keeper.wait_ready().await;
    let contract = Subscription::new(net.demo.contracts.subscription, &net.demo.provider);
    let count_of = |id: U256| {
        let contract = contract.clone();
        async move { contract.getSubscription(id).call().await.unwrap().count }
    };
    // Eight periods one by one, then a jump of three periods at once (caught up one period per round).
    let mut periods = 1u64;
    for step in [1u64, 1, 1, 1, 1, 1, 1, 3] {
        for (id, _) in &subs {
            wait_until("the period's charges", 60, || async { u64::from(count_of(*id).await) >= periods })
                .await;
        }
        net.demo.advance(step * PERIOD).await.unwrap();
        periods += step;
    }
    for (id, _) in &subs {
        wait_until("the last charges", 60, || async { u64::from(count_of(*id).await) >= periods }).await;
    }
    // A few more ticks at the same chain time must charge nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (id, amount) in &subs {
        assert_eq!(u64::from(count_of(*id).await), periods, "subscription {id} charged once per period");
        let records: Vec<Value> = reqwest::get(format!("{}/subscriptions/{id}/executions", keeper.api))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let charged: Vec<&Value> = records.iter().filter(|r| r["outcome"] == "charged").collect();
        assert_eq!(charged.len() as u64, periods, "every charge recorded once: {records:?}");
        let due: HashSet<&str> = charged.iter().map(|r| r["due_at"].as_str().unwrap()).collect();
        assert_eq!(due.len() as u64, periods, "no period charged twice");
        assert!(charged.iter().all(|r| r["amount"].as_str().unwrap() == format!("{amount:#x}")));
    }
    // Tokens: subscribers paid amount x periods; the merchant's credit plus the keeper's rewards equal it.
    let charged_total: U256 = subs.iter().map(|(_, a)| *a * U256::from(periods)).sum();
    let credited = contract.withdrawableBalance(merchant, net.demo.token.address).call().await.unwrap();
    let rewards = net.demo.balance(net.keys[KEEPER].address()).await.unwrap();
    assert_eq!(credited + rewards, charged_total);
    assert_eq!(rewards, charged_total / U256::from(1000), "0.1% keeper reward");
    let status = keeper.terminate();
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn settles_500_authorizations_in_a_few_transactions_and_reports_the_bad_ones() {
    let net = net(common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let data = net.scratch.dir().join("keeper");
    // A long interval: batches go out when 250 payments are queued.
    let mut keeper = KeeperProc::start(&net, &data, 600, "keeper.log");
    keeper.wait_ready().await;
    let before: Vec<U256> =
        balances_of(&net, &net.keys[1..=5].iter().map(PrivateKeySigner::address).collect::<Vec<_>>()).await;
    let now = net.demo.now().await.unwrap();
    let payer = &net.keys[1];

    // Refused at intake.
    let mut bad_signature = net.demo.payment(payer, merchant, U256::from(5), now, b"bad-sig").unwrap();
    let forged = net.demo.payment(&net.keys[2], merchant, U256::from(5), now, b"bad-sig").unwrap();
    bad_signature["paymentPayload"]["payload"]["signature"] =
        forged["paymentPayload"]["payload"]["signature"].clone();
    let expired = {
        let terms = x402_devkit::payments::ExactTerms {
            to: merchant,
            value: U256::from(5),
            valid_after: now - 600,
            valid_before: now - 1,
            nonce: keccak256(b"expired"),
        };
        x402_devkit::payments::signed_request(
            payer,
            payer.address(),
            &net.demo.token,
            net.demo.chain_id,
            terms,
        )
        .unwrap()
    };
    let broke = PrivateKeySigner::random();
    let unfunded = net.demo.payment(&broke, merchant, U256::from(5), now, b"broke").unwrap();
    let mut wrong_token = net.demo.payment(payer, merchant, U256::from(5), now, b"wrong-token").unwrap();
    wrong_token["paymentRequirements"]["asset"] = Value::String(format!("{:#x}", Address::repeat_byte(0x42)));
    wrong_token["paymentPayload"]["accepted"]["asset"] = wrong_token["paymentRequirements"]["asset"].clone();
    // A nonce used on-chain before it reaches the keeper.
    let used = net.demo.payment(payer, merchant, U256::from(5), now, b"used").unwrap();
    submit_directly(&net, &used).await;
    for (body, reason) in [
        (&bad_signature, "invalid_exact_evm_payload_signature"),
        (&expired, "invalid_exact_evm_payload_authorization_valid_before"),
        (&unfunded, "insufficient_funds"),
        (&wrong_token, "invalid_payment_requirements"),
        (&used, "invalid_exact_evm_nonce_already_used"),
    ] {
        let (status, answer) = keeper.post("/payments", body).await;
        assert_eq!((status, answer["invalidReason"].as_str()), (400, Some(reason)), "{answer}");
    }
    let (status, answer) = keeper.post("/payments", &serde_json::json!({"x402Version": "two"})).await;
    assert_eq!((status, answer["invalidReason"].as_str()), (400, Some("invalid_payload")));

    // Accepted, then front-run (settled directly by someone else) or drained before the batch: reported per item.
    let front_run = net.demo.payment(&net.keys[3], merchant, U256::from(7), now, b"front-run").unwrap();
    let (status, front_run_answer) = keeper.post("/payments", &front_run).await;
    assert_eq!(status, 202);
    submit_directly(&net, &front_run).await;
    let drainer = &net.keys[6];
    net.demo.mint(drainer.address(), U256::from(9)).await.unwrap();
    let drained = net.demo.payment(drainer, merchant, U256::from(9), now, b"drained").unwrap();
    let (status, drained_answer) = keeper.post("/payments", &drained).await;
    assert_eq!(status, 202);
    let token = TestStablecoin::new(net.demo.token.address, &net.demo.provider);
    token
        .transfer(net.keys[0].address(), U256::from(9))
        .from(drainer.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    let nonce_before = keeper_nonce(&net).await;
    let good = queue(&net, &keeper, 498, "good").await;
    // 500 accepted in all: two full batches of 250 go out without waiting for the interval.
    wait_until("500 settlements", 120, || async {
        all_final(&keeper, &[&front_run_answer, &drained_answer]).await
            && settled_txs(&keeper, &good).await.is_some()
    })
    .await;
    let txs = settled_txs(&keeper, &good).await.unwrap();
    assert!(txs.len() <= 3, "498 settled in {} transactions", txs.len());
    assert_eq!(keeper_nonce(&net).await - nonce_before, 2, "two settleBatch transactions");
    let front = keeper.payment(front_run_answer["id"].as_str().unwrap()).await;
    assert_eq!(
        (front["status"].as_str(), front["reason"].as_str()),
        (Some("failed"), Some("invalid_exact_evm_nonce_already_used"))
    );
    let drained = keeper.payment(drained_answer["id"].as_str().unwrap()).await;
    assert_eq!(
        (drained["status"].as_str(), drained["reason"].as_str()),
        (Some("failed"), Some("insufficient_funds"))
    );

    // Every balance to the unit: the merchant got the 498 payments plus the two direct transfers.
    assert_eq!(net.demo.balance(merchant).await.unwrap(), total(&good) + U256::from(5 + 7));
    let after =
        balances_of(&net, &net.keys[1..=5].iter().map(PrivateKeySigner::address).collect::<Vec<_>>()).await;
    for (i, payer) in net.keys[1..=5].iter().enumerate() {
        let paid: U256 = good.iter().filter(|(_, p, _)| *p == payer.address()).map(|(_, _, v)| *v).sum();
        let direct = match i {
            0 => U256::from(5),
            2 => U256::from(7),
            _ => U256::ZERO,
        };
        assert_eq!(before[i] - after[i], paid + direct, "payer {i}");
    }
    let metrics = reqwest::get(format!("{}/metrics", keeper.api)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("x402_keeper_items_total{job=\"payments\",outcome=\"settled\"} 498"),
        "{metrics}"
    );
    assert!(metrics.contains("x402_keeper_queue_depth 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_batch_then_restart_loses_nothing_and_pays_nothing_twice() {
    // Two-second blocks: the batch sits in the mempool long enough to kill the keeper while it is in flight.
    let net = net(common::anvil().block_time(2).spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let data = net.scratch.dir().join("keeper");
    let mut keeper = KeeperProc::start(&net, &data, 600, "keeper-1.log");
    keeper.wait_ready().await;
    let nonce_before = keeper_nonce(&net).await;
    // The 250th payment fills a batch, which goes out at once; the keeper dies while it waits to be mined.
    let mut ids = queue(&net, &keeper, 250, "k").await;
    wait_until("the first batch in flight", 60, || async {
        keeper.payment(&ids[0].0).await["status"] == "submitted"
    })
    .await;
    keeper.kill_9();

    let mut keeper = KeeperProc::start(&net, &data, 1, "keeper-2.log");
    keeper.wait_ready().await;
    ids.extend(queue(&net, &keeper, 50, "l").await);
    wait_until("every payment settled after the restart", 120, || async {
        settled_txs(&keeper, &ids).await.is_some()
    })
    .await;
    let txs = settled_txs(&keeper, &ids).await.unwrap();
    // Nothing lost, nothing paid twice: the merchant got exactly the 300 payments, and the keeper sent exactly
    // the settlement transactions the records name.
    assert_eq!(net.demo.balance(merchant).await.unwrap(), total(&ids));
    assert_eq!(keeper_nonce(&net).await - nonce_before, txs.len() as u64, "no extra transaction: {txs:?}");
    let mut in_flight = HashSet::new();
    for (id, _, _) in &ids[..250] {
        in_flight.insert(keeper.payment(id).await["transaction"].as_str().unwrap().to_owned());
    }
    assert_eq!(in_flight.len(), 1, "the batch in flight at the kill landed once, as one transaction");
}

#[tokio::test(flavor = "multi_thread")]
async fn recovers_by_itself_when_anvil_restarts_from_a_state_dump() {
    let port = free_port();
    let state_file = tempfile::NamedTempFile::new().unwrap();
    let state = state_file.path().to_str().unwrap().to_owned();
    let anvil = common::anvil().port(port).args(["--dump-state", &state]).spawn();
    let mut net = net(anvil).await;
    let merchant = net.keys[MERCHANT].address();
    let sub = net.demo.subscribe(net.keys[1].address(), merchant, U256::from(USDC), PERIOD).await.unwrap();
    let data = net.scratch.dir().join("keeper");
    let mut keeper = KeeperProc::start(&net, &data, 1, "keeper.log");
    keeper.wait_ready().await;
    let first = queue(&net, &keeper, 40, "a").await;
    wait_until("the first payments", 60, || async { settled_txs(&keeper, &first).await.is_some() }).await;

    // anvil stops (dumping its state on SIGTERM) and comes back from the dump on the same port.
    let pid = net.anvil.child().id().to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    net.anvil.child_mut().wait().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ready = reqwest::get(format!("{}/ready", keeper.api)).await.unwrap().status().as_u16();
    assert_eq!(ready, 503, "not ready while the chain is down");
    let restarted = common::anvil().port(port).args(["--load-state", &state]).spawn();
    let old = std::mem::replace(&mut net.anvil, restarted);
    drop(old);
    keeper.wait_ready().await;

    let second = queue(&net, &keeper, 40, "b").await;
    wait_until("the payments queued after the restart", 60, || async {
        settled_txs(&keeper, &second).await.is_some()
    })
    .await;
    net.demo.advance(PERIOD).await.unwrap();
    let contract = Subscription::new(net.demo.contracts.subscription, &net.demo.provider);
    wait_until("the subscription's second charge", 60, || async {
        contract.getSubscription(sub).call().await.unwrap().count >= 2
    })
    .await;
    assert_eq!(net.demo.balance(merchant).await.unwrap(), total(&first) + total(&second));
    let metrics = reqwest::get(format!("{}/metrics", keeper.api)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("x402_keeper_errors_total{job=\"rpc\"}"), "the outage was counted: {metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_keepers_on_one_database_never_conflict() {
    let net = net(common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let data = net.scratch.dir().join("keeper");
    let mut first = KeeperProc::start(&net, &data, 1, "keeper-a.log");
    first.wait_ready().await;
    // Same database, same key: the second waits as a standby and serves nothing.
    let mut second = KeeperProc::start(&net, &data, 1, "keeper-b.log");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(second.child.try_wait().unwrap().is_none(), "the standby keeps running");
    assert!(reqwest::get(format!("{}/ready", second.api)).await.is_err(), "the standby serves nothing");
    let log = std::fs::read_to_string(net.scratch.dir().join("keeper-b.log")).unwrap();
    assert!(log.contains("standby"), "{log}");

    let nonce_before = keeper_nonce(&net).await;
    let a = queue(&net, &first, 100, "a").await;
    wait_until("the first keeper's settlements", 60, || async { settled_txs(&first, &a).await.is_some() })
        .await;
    first.kill_9();
    // The standby takes over the database and the work.
    second.wait_ready().await;
    let b = queue(&net, &second, 60, "b").await;
    let mut txs = settled_txs(&second, &a).await.unwrap();
    wait_until("the second keeper's settlements", 60, || async { settled_txs(&second, &b).await.is_some() })
        .await;
    txs.extend(settled_txs(&second, &b).await.unwrap());
    assert_eq!(net.demo.balance(merchant).await.unwrap(), total(&a) + total(&b));
    assert_eq!(
        keeper_nonce(&net).await - nonce_before,
        txs.len() as u64,
        "every keeper transaction is a recorded batch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_a_full_queue_and_a_flood_are_refused_and_the_keeper_keeps_serving() {
    let net = net(common::anvil().spawn()).await;
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
    let net = net(common::anvil().spawn()).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn registered_vouchers_of_eoa_and_contract_wallet_payers_are_claimed_before_the_close() {
    let net = net(common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let keeper_address = net.keys[KEEPER].address();
    let usdc = |n: u64| U256::from(n * USDC);
    net.demo.approve_claim_operator(merchant, keeper_address).await.unwrap();

    // To the merchant: channel A from an EOA, B from a contract wallet, D from a wallet that approves only in
    // simulations and burns its gas on chain. C goes to a recipient that has not made the keeper its claim
    // operator.
    let a = net.demo.open_channel(net.keys[1].address(), merchant, usdc(100), 900).await.unwrap();
    let c =
        net.demo.open_channel(net.keys[3].address(), net.keys[6].address(), usdc(100), 900).await.unwrap();
    let owner = &net.keys[2];
    let wallet = contract_wallet(&net, owner.address()).await;
    let (b, as_wallet) = open_from_contract(&net, wallet, merchant, 0xb).await;
    let hostile = two_faced_wallet(&net, 0xd4).await;
    // D sorts before B, so the claim batch checks D's wallet and then B's: D's burn must not leave B short.
    let salt = (0..=u8::MAX)
        .find(|salt| x402_bindings::voucher::channel_id(hostile, B256::repeat_byte(*salt)) < b)
        .unwrap();
    let (d, as_hostile) = open_from_contract(&net, hostile, merchant, salt).await;

    let mut keeper = KeeperProc::start(&net, &net.scratch.dir().join("keeper"), 1, "keeper.log");
    keeper.wait_ready().await;
    let register = |body: Value| {
        let keeper = &keeper;
        async move { keeper.post("/vouchers", &body).await }
    };
    let stored = |answer: (u16, Value)| (answer.0, answer.1["stored"].as_bool(), answer.1["reason"].clone());
    let refused = |answer: (u16, Value)| (answer.0, answer.1["reason"].as_str().map(str::to_owned));

    // The EOA's voucher; a lower one later changes nothing.
    let answer = register(net.demo.voucher(&net.keys[1], a, usdc(25)).await.unwrap()).await;
    assert_eq!(stored(answer), (202, Some(true), Value::Null));
    let answer = register(net.demo.voucher(&net.keys[1], a, usdc(20)).await.unwrap()).await;
    assert_eq!(stored(answer), (200, Some(false), Value::Null));
    // The wallet's vouchers: its owner's signature with a byte appended (no ECDSA signature of the payer can
    // be that long, so only the wallet can approve it), then a higher one with the owner's bare signature.
    let mut wrapped = net.demo.voucher(owner, b, usdc(30)).await.unwrap();
    wrapped["signature"] = Value::String(format!("{}00", wrapped["signature"].as_str().unwrap()));
    assert_eq!(stored(register(wrapped).await), (202, Some(true), Value::Null));
    let answer = register(net.demo.voucher(owner, b, usdc(40)).await.unwrap()).await;
    assert_eq!(stored(answer), (202, Some(true), Value::Null));
    // The two-faced wallet's voucher passes the simulation.
    let answer = register(net.demo.voucher(&net.keys[4], d, usdc(10)).await.unwrap()).await;
    assert_eq!(stored(answer), (202, Some(true), Value::Null));
    // Refused with the contract's reasons: the payer's signature in forms only ECDSA libraries accept, a key
    // that is neither the payer nor its wallet's owner, an unknown channel, and a recipient that does not let
    // the keeper claim.
    let [twin, zero_one] = malleable(&net.demo.voucher(&net.keys[1], a, usdc(50)).await.unwrap());
    for (body, reason) in [
        (twin, "invalid_voucher_signature"),
        (zero_one, "invalid_voucher_signature"),
        (net.demo.voucher(&net.keys[4], b, usdc(50)).await.unwrap(), "invalid_voucher_signature"),
        (net.demo.voucher(&net.keys[4], a, usdc(50)).await.unwrap(), "invalid_voucher_signature"),
        (net.demo.voucher(&net.keys[1], B256::repeat_byte(7), usdc(5)).await.unwrap(), "unknown_channel"),
        (net.demo.voucher(&net.keys[3], c, usdc(10)).await.unwrap(), "keeper_not_claim_operator"),
    ] {
        assert_eq!(refused(register(body).await), (400, Some(reason.to_owned())));
    }

    // The payers start closing: the keeper claims the registered vouchers during the challenge period, in one
    // transaction that has room for D's wallet to burn its budget. D's claim is skipped on chain; the keeper
    // drops it and the channel takes no more vouchers.
    let nonce = keeper_nonce(&net).await;
    net.demo.start_close(net.keys[1].address(), a).await.unwrap();
    let channels = net.demo.contracts.payment_channel;
    sent_by(PaymentChannel::new(channels, &as_wallet).startClose(b).from(wallet).send().await).await;
    sent_by(PaymentChannel::new(channels, &as_hostile).startClose(d).from(hostile).send().await).await;
    wait_until("both vouchers claimed", 60, || async {
        net.demo.channel(a).await.unwrap() == (2, usdc(25))
            && net.demo.channel(b).await.unwrap() == (2, usdc(40))
    })
    .await;
    wait_until("the skipped claim recorded", 30, || async {
        let metrics = reqwest::get(format!("{}/metrics", keeper.api)).await.unwrap().text().await.unwrap();
        metrics.contains("x402_keeper_items_total{job=\"channels\",outcome=\"claim_skipped\"} 1")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(keeper_nonce(&net).await, nonce + 1, "one claim transaction, not one per tick");
    assert_eq!(net.demo.channel(d).await.unwrap(), (2, U256::ZERO));
    assert_eq!(net.demo.balance(merchant).await.unwrap(), usdc(65));
    let answer = register(net.demo.voucher(&net.keys[4], d, usdc(20)).await.unwrap()).await;
    assert_eq!(refused(answer), (400, Some("channel_refused".to_owned())));
    // A voucher for no more than was paid is of no use now.
    let answer = register(net.demo.voucher(&net.keys[1], a, usdc(25)).await.unwrap()).await;
    assert_eq!(refused(answer), (400, Some("nothing_to_claim".to_owned())));

    // After the challenge period the keeper finalizes all three; the payers get the rest back.
    net.demo.advance(901).await.unwrap();
    wait_until("the channels finalized", 60, || async {
        let mut closed = true;
        for id in [a, b, d] {
            closed &= net.demo.channel(id).await.unwrap().0 == 3;
        }
        closed
    })
    .await;
    assert_eq!(net.demo.balance(merchant).await.unwrap(), usdc(65));
    assert_eq!(net.demo.balance(wallet).await.unwrap(), usdc(60));
    assert_eq!(net.demo.balance(hostile).await.unwrap(), usdc(100));
    assert_eq!(net.demo.balance(net.keys[1].address()).await.unwrap(), usdc(1_000_000 - 100 + 75));
    assert_eq!(net.demo.channel(c).await.unwrap(), (1, U256::ZERO), "channel C is untouched");
    let answer = register(net.demo.voucher(&net.keys[1], a, usdc(90)).await.unwrap()).await;
    assert_eq!(refused(answer), (400, Some("channel_not_claimable".to_owned())));
    assert!(keeper.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wallet_that_burns_gas_on_chain_fails_its_own_items_and_is_refused_after() {
    let net = net(common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    // A batch goes out when 13 payments are queued (the interval is too long to matter).
    let mut keeper = keeper_with(&net, 600, "payments_batch = 13\n").await;
    let now = net.demo.now().await.unwrap();

    // A wallet that approves in the intake and batch simulations and the estimate, and burns its gas on chain.
    let hostile = two_faced_wallet(&net, 0xbe).await;
    net.demo.mint(hostile, U256::from(USDC)).await.unwrap();
    let from_wallet = |i: u8| wallet_payment(&net, &net.keys[4], hostile, merchant, 1_000, now, i);

    // Three of its payments first in the queue, then ten honest ones: all accepted, one batch.
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, answer) = keeper.post("/payments", &from_wallet(i)).await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }
    let before = net.demo.balance(merchant).await.unwrap();
    let honest = queue(&net, &keeper, 10, "h").await;
    wait_final(&keeper, ids.iter().chain(honest.iter().map(|(id, _, _)| id))).await;

    // The batch did not run out of gas: the honest ten settled in it, the wallet's three failed in it.
    let txs = settled_txs(&keeper, &honest).await.expect("the honest payments settled");
    assert_eq!(txs.len(), 1, "{txs:?}");
    for id in &ids {
        let record = keeper.payment(id).await;
        assert_eq!(record["status"], "failed", "{record}");
        assert!(txs.contains(record["transaction"].as_str().unwrap()), "{record}");
    }
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before + total(&honest));
    assert_eq!(net.demo.balance(hostile).await.unwrap(), U256::from(USDC));

    // The wallet's next payment is refused at intake.
    let (status, answer) = keeper.post("/payments", &from_wallet(9)).await;
    assert_eq!(
        (status, answer["invalidReason"].as_str()),
        (400, Some("invalid_exact_evm_payload_signature"))
    );
    assert!(answer["invalidMessage"].as_str().unwrap().contains("refused on chain"), "{answer}");
    assert!(keeper.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn wallet_payments_are_batched_to_fit_the_block_with_room_for_every_wallet_to_burn_its_budget() {
    let net = net(common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    // Blocks of 4M gas: a batch has room for its estimate plus four wallet budgets (518k each), not ten.
    let limit = 4_000_000u64;
    small_blocks(&net, limit).await;
    let mut keeper = keeper_with(&net, 600, "payments_batch = 10\n").await;
    let now = net.demo.now().await.unwrap();

    // Two payments from a wallet that burns its gas on chain, then eight from an honest wallet.
    let hostile = two_faced_wallet(&net, 0xbf).await;
    let owner = &net.keys[2];
    let honest = contract_wallet(&net, owner.address()).await;
    for wallet in [hostile, honest] {
        net.demo.mint(wallet, U256::from(USDC)).await.unwrap();
    }
    let pay =
        |wallet: Address, i: u8| wallet_payment(&net, owner, wallet, merchant, 1_000 + u64::from(i), now, i);
    let mut ids = Vec::new();
    for (wallet, i) in [(hostile, 0), (hostile, 1)].into_iter().chain((2..10).map(|i| (honest, i))) {
        let (status, answer) = keeper.post("/payments", &pay(wallet, i)).await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }
    let before = net.demo.balance(merchant).await.unwrap();
    wait_final(&keeper, ids.iter()).await;

    // The honest eight settled; the hostile two failed on their own; no batch asked for more than a block.
    let mut txs = HashSet::new();
    for (n, id) in ids.iter().enumerate() {
        let record = keeper.payment(id).await;
        assert_eq!(record["status"], if n < 2 { "failed" } else { "settled" }, "{record}");
        if let Some(tx) = record["transaction"].as_str() {
            txs.insert(tx.parse::<B256>().unwrap());
        }
    }
    assert_eq!(
        net.demo.balance(merchant).await.unwrap(),
        before + U256::from((2..10).map(|i| 1_000 + i).sum::<u64>())
    );
    assert!(txs.len() >= 3, "ten wallet payments need at least three batches here: {txs:?}");
    for tx in &txs {
        let receipt = net.demo.provider.get_transaction_receipt(*tx).await.unwrap().unwrap();
        assert!(receipt.status(), "no batch reverted: {receipt:?}");
    }
    assert_gas_limits_within(&net, txs, limit).await;
    assert!(keeper.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_batch_too_big_for_the_block_is_halved_and_all_of_it_settles() {
    let net = net(common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    // 150 payments need about 5.6M gas; blocks hold 4M.
    let limit = 4_000_000u64;
    small_blocks(&net, limit).await;
    let mut keeper = keeper_with(&net, 600, "payments_batch = 150\n").await;
    let before = net.demo.balance(merchant).await.unwrap();
    let ids = queue(&net, &keeper, 150, "big").await;
    wait_final(&keeper, ids.iter().map(|(id, _, _)| id)).await;
    let txs = settled_txs(&keeper, &ids).await.expect("all settled");
    assert!((2..=4).contains(&txs.len()), "the batch of 150 split by halving: {txs:?}");
    assert_gas_limits_within(&net, txs.iter().map(|tx| tx.parse().unwrap()), limit).await;
    assert_eq!(net.demo.balance(merchant).await.unwrap(), before + total(&ids));
    assert!(keeper.terminate().success());
}
