//! Faults: `kill -9` mid-batch, anvil restarted or frozen, two keepers on one database, a damaged database, a chain
//! reset under a running keeper.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::Provider;
use serde_json::Value;
use x402_bindings::Subscription;

use crate::common::keeper::*;
use crate::common::{Scratch, assert_success, deploy, key_hex, x402};

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_batch_then_restart_loses_nothing_and_pays_nothing_twice() {
    // Two-second blocks: the batch sits in the mempool long enough to kill the keeper while it is in flight.
    let net = net(crate::common::anvil().block_time(2).spawn()).await;
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
    let anvil = crate::common::anvil().port(port).args(["--dump-state", &state]).spawn();
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
    let restarted = crate::common::anvil().port(port).args(["--load-state", &state]).spawn();
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
    let net = net(crate::common::anvil().spawn()).await;
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

/// Finding 4: with anvil frozen (accepting connections, never answering) every `POST /payments` hung for 120 s
/// and `/ready` stayed 200. Now every RPC call has a deadline: the intake answers 503 within its deadline and
/// `/ready` turns 503 until the chain answers again.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_chain_gets_503_within_seconds_and_ready_follows_it() {
    let net = net(crate::common::anvil().spawn()).await;
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

/// Finding 6: a truncated database file made redb panic at start (exit 101 with a stack trace), and an empty one
/// started silently as a fresh database. Now both are a one-line error naming the file and what to do, exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_or_empty_database_is_a_one_line_error_not_a_panic() {
    let net = net(crate::common::anvil().spawn()).await;
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
        crate::common::run(x402(&args, Some(&key_hex(&net.anvil, KEEPER))))
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
    let mut net = net(crate::common::anvil().port(port).spawn()).await;
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
    let restarted = crate::common::anvil().port(port).spawn();
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
    let provider = crate::common::provider(&net.anvil);
    assert_eq!(
        provider.get_transaction_count(keeper_address).await.unwrap(),
        0,
        "nothing sent to the new chain"
    );
    drop(keeper);
    // A restart against the reset chain is refused at once, with the cause.
    let output = crate::common::run(x402(
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
