//! Regression tests for the keeper defects an independent review found, each named after its defect and run
//! against a real anvil with `x402 keeper` as a separate process: free junk and strangers' merchants at intake, a
//! payer queueing more than its balance, a frozen chain, slow and idle connections, a damaged database, a chain
//! reset under a running keeper, answers that were not JSON or not checksummed, a batch's excess reported as an
//! unexpected error, v1 payments on a local chain, and an unfunded subscriber reactivating its subscriptions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use common::keeper::*;
use common::{Scratch, assert_success, deploy, key_hex, x402};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use x402_bindings::{Subscription, TestStablecoin};

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

fn keeper_log(keeper: &KeeperProc) -> String {
    std::fs::read_to_string(&keeper.log).unwrap_or_default()
}

/// Finding 3: a zero-value payment signed by a fresh, unfunded key passed intake and was settled at the keeper's
/// expense, 300 of them filled the queue, the client named any merchant, and 30 payments of 1,000 from a payer
/// holding 10,000 were all accepted (20 failed at settlement). Now the policy refuses them before anything is
/// queued, and a payer's queued payments never add up to more than the balance read at intake, also when posted
/// all at once.
#[tokio::test(flavor = "multi_thread")]
async fn free_junk_and_strangers_merchants_are_refused_and_a_payer_never_queues_more_than_its_balance() {
    let net = net(common::anvil().spawn()).await;
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

/// Finding 4: with anvil frozen (accepting connections, never answering) every `POST /payments` hung for 120 s
/// and `/ready` stayed 200. Now every RPC call has a deadline: the intake answers 503 within its deadline and
/// `/ready` turns 503 until the chain answers again.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_chain_gets_503_within_seconds_and_ready_follows_it() {
    let net = net(common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let keeper = keeper_with(&net, 1, "rpc_timeout_secs = 2\nintake_timeout_secs = 3\n").await;
    let now = net.demo.now().await.unwrap();
    let pid = net.anvil.child().id().to_string();
    std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap();

    let started = Instant::now();
    let body = net.demo.payment(&net.keys[1], merchant, U256::from(1000), now, b"frozen").unwrap();
    let (status, answer) = keeper.post("/payments", &body).await;
    let waited = started.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert!(waited < Duration::from_secs(6), "answered after {waited:?}");
    wait_until("/ready to turn 503", 10, || async {
        reqwest::get(format!("{}/ready", keeper.api)).await.unwrap().status().as_u16() == 503
    })
    .await;
    let ready: Value = reqwest::get(format!("{}/ready", keeper.api)).await.unwrap().json().await.unwrap();
    assert!(ready["cause"].as_str().is_some(), "{ready}");
    let health = reqwest::get(format!("{}/health", keeper.api)).await.unwrap().status().as_u16();
    assert_eq!(health, 200, "the tick loop goes on");

    std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    wait_until("/ready to turn 200", 30, || async {
        reqwest::get(format!("{}/ready", keeper.api)).await.unwrap().status().as_u16() == 200
    })
    .await;
    let (status, answer) = keeper.post("/payments", &body).await;
    assert_eq!(status, 202, "{answer}");
    wait_final(&keeper, [answer["id"].as_str().unwrap().to_owned()].iter()).await;
}

/// Opens a TCP connection from `local` (any 127.0.0.0/8 address) to the keeper.
async fn connect_from(keeper: &KeeperProc, local: &str) -> Option<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let addr = keeper.api.trim_start_matches("http://").parse().unwrap();
    tokio::time::timeout(Duration::from_secs(5), socket.connect(addr)).await.ok()?.ok()
}

/// Reads until the server closes the connection or `within` passes; returns what was read and whether it closed.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

/// Finding 5: 1,000 half-sent requests and idle keep-alive connections stayed open past 90 s, and about 20,100
/// connections from one local client used up the keeper's open files, so `/health` and `/payments` timed out
/// for everyone. Now request headers and bodies have deadlines, idle connections are closed, and connections
/// are capped per client and in total, with a reserve that still answers `/health`.
#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_connections_are_closed_and_a_flood_leaves_room_for_health() {
    let net = net(common::anvil().spawn()).await;
    let settings = "header_timeout_secs = 2\nbody_timeout_secs = 2\nmax_connections = 60\n\
                    max_connections_per_client = 20\n";
    let keeper = keeper_with(&net, 600, settings).await;

    // A slowloris flood from 127.0.0.1: 200 connections, each sending half a request.
    let mut flood = Vec::new();
    for _ in 0..200 {
        if let Some(mut stream) = connect_from(&keeper, "127.0.0.1").await {
            let _ = stream.write_all(b"POST /payments HTTP/1.1\r\nHost: keeper\r\n").await;
            flood.push(stream);
        }
    }
    // Another client gets in at once, and so does a health check.
    let health = client_from("127.0.0.2").get(format!("{}/health", keeper.api)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Every flooding connection ends within the header deadline (2 s) and a margin: all but 20 at once.
    let started = Instant::now();
    let mut closed = 0;
    for stream in &mut flood {
        let (_, done) = read_to_close(stream, Duration::from_secs(6).saturating_sub(started.elapsed())).await;
        closed += usize::from(done);
    }
    assert_eq!(closed, flood.len(), "every half-sent request is cut off");
    assert!(keeper_log(&keeper).contains("connection cap reached"), "the cap is logged");

    // An idle keep-alive connection is closed after the header deadline.
    let mut idle = connect_from(&keeper, "127.0.0.3").await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: keeper\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let (answer, done) = read_to_close(&mut idle, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(done && started.elapsed() < Duration::from_secs(5), "idle for {:?}", started.elapsed());

    // A body that never arrives gets 408 (as JSON) after the body deadline.
    let mut slow = connect_from(&keeper, "127.0.0.4").await.unwrap();
    slow.write_all(
        b"POST /payments HTTP/1.1\r\nHost: keeper\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"x",
    )
    .await
    .unwrap();
    let (answer, done) = read_to_close(&mut slow, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("\"error\""), "{answer}");
    assert!(done);

    // Many clients at once fill every regular slot: monitoring is still served from the reserve.
    let mut held = Vec::new();
    for i in 0..3 {
        for _ in 0..20 {
            if let Some(stream) = connect_from(&keeper, &format!("127.0.1.{i}")).await {
                held.push(stream);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = client_from("127.0.0.5").get(format!("{}/health", keeper.api)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "health from the reserve");
    let payments = client_from("127.0.0.6").post(format!("{}/payments", keeper.api)).body("{}").send().await;
    let status = payments.unwrap().status().as_u16();
    assert_eq!(status, 503, "the API is full, and says so");
    drop(held);
}

/// Finding 6: a truncated database file made redb panic at start (exit 101 with a stack trace), and an empty one
/// started silently as a fresh database. Now both are a one-line error naming the file and what to do, exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_or_empty_database_is_a_one_line_error_not_a_panic() {
    let net = net(common::anvil().spawn()).await;
    let data = net.scratch.dir().join("keeper");
    let once = |data: &std::path::Path| {
        let rpc = net.anvil.endpoint();
        let dir = net.scratch.dir().to_str().unwrap().to_owned();
        let merchant = net.keys[MERCHANT].address().to_string();
        let args = [
            "keeper",
            "--network",
            "local",
            "--rpc-url",
            &rpc,
            "--deployments-dir",
            &dir,
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--merchant",
            &merchant,
            "--once",
        ];
        common::run(x402(&args, Some(&key_hex(&net.anvil, KEEPER))))
    };
    // A healthy database from a first run, with payments and a transaction in it.
    let mut keeper = KeeperProc::start(&net, &data, 600, "keeper.log");
    keeper.wait_ready().await;
    let _ = queue(&net, &keeper, 20, "t").await;
    keeper.terminate();
    let file = data.join("keeper.redb");
    let length = std::fs::metadata(&file).unwrap().len();
    assert!(length > 0);

    for (name, size) in [("truncated", length / 2), ("empty", 0)] {
        let copy = net.scratch.dir().join(name);
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(&file, copy.join("keeper.redb")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(copy.join("keeper.redb"))
            .unwrap()
            .set_len(size)
            .unwrap();
        let output = once(&copy);
        assert_eq!(output.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(lines.len(), 1, "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(lines[0].contains(copy.join("keeper.redb").to_str().unwrap()), "{name}: {stderr}");
        assert!(lines[0].contains("restore it from a backup"), "{name}: {stderr}");
        let expected = if size == 0 { "is empty (0 bytes)" } else { "is damaged" };
        assert!(lines[0].contains(expected), "{name}: {stderr}");
    }
    assert!(once(&data).status.success(), "the healthy database still opens");
}

/// Finding 7: after anvil restarted without its state, the keeper re-sent its transaction every 30 s with rising
/// fees and no log line named the cause. Now it sees that the chain no longer holds the deployment (no code, or a
/// different genesis block once the contracts are redeployed at the same addresses), logs the cause as an error,
/// stays unready and sends nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_chain_reset_under_a_running_keeper_halts_it_with_the_cause() {
    let port = free_port();
    let mut net = net(common::anvil().port(port).spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let data = net.scratch.dir().join("keeper");
    let mut keeper = KeeperProc::start(&net, &data, 1, "keeper.log");
    keeper.wait_ready().await;
    let settled = queue(&net, &keeper, 3, "before").await;
    wait_until("the payments before the reset", 60, || async {
        settled_txs(&keeper, &settled).await.is_some()
    })
    .await;

    // The node comes back empty on the same port.
    net.anvil.child_mut().kill().unwrap();
    net.anvil.child_mut().wait().unwrap();
    let restarted = common::anvil().port(port).spawn();
    drop(std::mem::replace(&mut net.anvil, restarted));
    let ready_cause = || async {
        let answer = reqwest::get(format!("{}/ready", keeper.api)).await.unwrap();
        (answer.status().as_u16(), answer.json::<Value>().await.unwrap_or(Value::Null))
    };
    wait_until("the keeper to notice the empty chain", 30, || async {
        ready_cause().await.1["cause"].as_str().is_some_and(|c| c.contains("no longer holds the deployment"))
    })
    .await;
    assert!(keeper_log(&keeper).contains("no code at X402Payment"), "{}", keeper_log(&keeper));

    // Redeployed at the same addresses on the new chain: still not the chain the keeper's state belongs to.
    let scratch = Scratch::new();
    assert_success(&deploy(&net.anvil, &scratch, "local", &[]));
    wait_until("the keeper to notice the reset", 30, || async {
        ready_cause().await.1["cause"].as_str().is_some_and(|c| c.contains("the chain was reset"))
    })
    .await;
    let (status, _) = ready_cause().await;
    assert_eq!(status, 503);
    // Nothing is taken while halted: a payment could never be sent.
    let now = net.demo.now().await.unwrap();
    let body = net.demo.payment(&net.keys[1], merchant, U256::from(1000), now, b"halted").unwrap();
    let (status, answer) = keeper.post("/payments", &body).await;
    assert_eq!(status, 503, "{answer}");
    assert!(answer["invalidMessage"].as_str().unwrap().contains("the chain was reset"), "{answer}");
    let log = keeper_log(&keeper);
    assert!(log.contains("\"level\":\"ERROR\"") && log.contains("keeper halted"), "{log}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let keeper_address = net.keys[KEEPER].address();
    let provider = common::provider(&net.anvil);
    assert_eq!(
        provider.get_transaction_count(keeper_address).await.unwrap(),
        0,
        "nothing sent to the new chain"
    );
    drop(keeper);
    // A restart against the reset chain is refused at once, with the cause.
    let output = common::run(x402(
        &[
            "keeper",
            "--network",
            "local",
            "--rpc-url",
            &net.anvil.endpoint(),
            "--deployments-dir",
            scratch.dir().to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--merchant",
            &merchant.to_string(),
            "--once",
        ],
        Some(&key_hex(&net.anvil, KEEPER)),
    ));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("the chain was reset or replaced"));
}

/// Finding 8: the excess of a payer's payments in one batch beyond its balance was reported
/// `unexpected_settle_error`; 404, 405, 413 and 400 answers were not JSON; 202 bodies had lowercase addresses.
#[tokio::test(flavor = "multi_thread")]
async fn answers_are_json_with_checksummed_addresses_and_a_batch_excess_is_insufficient_funds() {
    let net = net(common::anvil().spawn()).await;
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

/// Finding 9: the official v1 clients sign only for named networks (`base-sepolia` is 84532), and the keeper
/// derived the v1 name from the record's network label, so a `local` deployment took no v1 payment even on an
/// anvil with chain id 84532. Now the name comes from the chain id; a 31337 chain has none.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_chain_with_chain_id_84532_takes_v1_payments() {
    let net = net(common::anvil().chain_id(84_532).spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let keeper = keeper_with(&net, 1, "").await;
    let now = net.demo.now().await.unwrap();
    let v1 = net.demo.payment_v1(&net.keys[1], merchant, U256::from(1234), now, b"v1").unwrap().unwrap();
    assert_eq!(v1["paymentRequirements"]["network"], "base-sepolia");
    let (status, answer) = keeper.post("/payments", &v1).await;
    assert_eq!(status, 202, "{answer}");
    wait_final(&keeper, [answer["id"].as_str().unwrap().to_owned()].iter()).await;
    assert_eq!(keeper.payment(answer["id"].as_str().unwrap()).await["status"], "settled");

    let plain = common::keeper::net(common::anvil().spawn()).await;
    let keeper = keeper_with(&plain, 600, "").await;
    let mut v1 = plain.demo.payment_v1(&plain.keys[1], merchant, U256::from(1234), now, b"v1").unwrap();
    assert!(v1.is_none(), "chain 31337 has no v1 name");
    v1 = net.demo.payment_v1(&plain.keys[1], merchant, U256::from(1234), now, b"v1").unwrap();
    let (status, answer) = keeper.post("/payments", &v1.unwrap()).await;
    assert_eq!((status, answer["invalidReason"].as_str()), (400, Some("invalid_network")), "{answer}");
}

/// Finding 2, the keeper's side: a subscriber without funds tries to put its subscriptions back on the due list
/// after every keeper run (reactivate, a 1-unit deposit); each costs the keeper one failed execution, in one
/// batch, however many rounds pass.
#[tokio::test(flavor = "multi_thread")]
async fn an_unfunded_subscriber_costs_the_keeper_one_failed_execution_per_subscription() {
    let net = net(common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let spammer = net.keys[8].address();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(net.demo.subscribe(spammer, merchant, U256::from(USDC), PERIOD).await.unwrap());
    }
    net.demo.mint(spammer, U256::from(100)).await.unwrap();
    let keeper = keeper_with(&net, 1, "").await;
    let contract = Subscription::new(net.demo.contracts.subscription, &net.demo.provider);
    let executions = |id: U256| {
        let api = keeper.api.clone();
        async move {
            let records: Vec<Value> = reqwest::get(format!("{api}/subscriptions/{id}/executions"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            records
        }
    };
    for round in 0..5 {
        for id in &ids {
            wait_until("the failed charge", 30, || async { !executions(*id).await.is_empty() }).await;
            assert!(
                contract.reactivate(*id).from(spammer).call().await.is_err(),
                "round {round}: reactivate"
            );
            contract
                .deposit(*id, U256::from(1))
                .from(spammer)
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
        }
        net.demo.advance(PERIOD).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    for id in &ids {
        let records = executions(*id).await;
        assert_eq!(records.len(), 1, "{id}: {records:?}");
        assert_eq!(records[0]["outcome"], "charge_failed");
    }
    let metrics = reqwest::get(format!("{}/metrics", keeper.api)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("x402_keeper_transactions_total{job=\"subscriptions\",result=\"confirmed\"} 1"),
        "one executeBatch in five rounds: {metrics}"
    );
}

/// Finding 9, the devnet: `x402 devnet --chain-id 84532` runs the whole loop on a local chain that official v1
/// clients can pay, and shows a v1 payment taken and settled with the rest.
#[test]
fn the_devnet_on_chain_id_84532_takes_a_v1_payment() {
    let mut command = x402(
        &[
            "devnet",
            "--smoke",
            "--port",
            "0",
            "--keeper-listen",
            "127.0.0.1:0",
            "--chain-id",
            "84532",
            "--payments",
            "20",
            "--subscriptions",
            "1",
            "--periods",
            "1",
        ],
        None,
    );
    command.env("X402_ANVIL", common::tools("anvil"));
    let output = common::run(command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("(chain 84532, x402 v1 network base-sepolia)"), "{stdout}");
    assert!(stdout.contains("v1 payment  network base-sepolia: HTTP 202 (queued)"), "{stdout}");
    assert!(stdout.contains("settled     21 payments"), "{stdout}");
    assert!(stdout.contains("smoke       all balances and counts as expected"), "{stdout}");
}
