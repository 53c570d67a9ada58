//! Many callers at once, and a crash in the middle of a settlement: distinct payments share batches, one payment
//! settled by ten callers is one transfer with ten identical answers, and a settlement left pending by a
//! `kill -9` ends, after a restart and a retry, in the transaction that was sent before the crash.

use std::collections::HashSet;

use alloy::primitives::U256;
use alloy::providers::Provider;
use serde_json::Value;

use crate::common::anvil;
use crate::common::facilitator::FacilitatorProc;
use crate::common::keeper::{MERCHANT, Net, net};

/// A signed v2 payment of `value` from payer `index` to the merchant, as a server sends it to `/settle`.
async fn payment(net: &Net, index: usize, value: u64, salt: &str) -> Value {
    let now = net.demo.now().await.unwrap();
    let merchant = net.keys[MERCHANT].address();
    net.demo.payment(&net.keys[index], merchant, U256::from(value), now, salt.as_bytes()).unwrap()
}

async fn settle_all(facilitator: &FacilitatorProc, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let url = format!("{}/settle", facilitator.url);
            tokio::spawn(async move {
                let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_two_callers_settle_distinct_payments_in_shared_batches_and_ten_callers_one_payment_once() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    // A window long enough for 32 checks on a busy machine; a batch goes as soon as no caller is being checked.
    let config = net.scratch.dir().join("facilitator.toml");
    std::fs::write(&config, "[keeper]\nsettle_window_ms = 250\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut facilitator = FacilitatorProc::start(&net, data.path(), "facilitator.log", &args, &[]);
    facilitator.wait_ready().await;
    let merchant = net.keys[MERCHANT].address();
    let before = net.demo.balance(merchant).await.unwrap();

    let mut bodies = Vec::new();
    for i in 0..32u64 {
        bodies.push(payment(&net, 1 + (i as usize % 5), 100 + i, &format!("distinct-{i}")).await);
    }
    let answers = settle_all(&facilitator, bodies).await;
    let mut transactions = HashSet::new();
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
        assert_eq!(answer["success"], true, "{answer}");
        transactions.insert(answer["transaction"].as_str().unwrap().to_owned());
    }
    let expected: u64 = (0..32).map(|i| 100 + i).sum();
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(expected));
    eprintln!("32 payments went out in {} transactions", transactions.len());
    assert!(transactions.len() <= 8, "32 payments went out in {} transactions", transactions.len());

    // One payment from ten callers at once: one transfer, ten identical answers.
    let one = payment(&net, 4, 777, "the-same-one").await;
    let answers = settle_all(&facilitator, vec![one; 10]).await;
    assert!(answers.iter().all(|(status, answer)| *status == 200 && *answer == answers[0].1), "{answers:?}");
    assert_eq!(answers[0].1["success"], true);
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(expected + 777));

    // A payment queued through the keeper's deferred intake and then settled is one record, settled once.
    let deferred = payment(&net, 5, 888, "deferred").await;
    let (status, queued) = facilitator.post("/payments", &deferred).await;
    assert_eq!((status, queued["status"].as_str()), (202, Some("queued")), "{queued}");
    let (status, settled) = facilitator.post("/settle", &deferred).await;
    assert_eq!((status, settled["success"].as_bool()), (200, Some(true)), "{settled}");
    let (status, again) = facilitator.post("/payments", &deferred).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("settled")), "{again}");
    assert_eq!(again["transaction"], settled["transaction"]);
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(expected + 777 + 888));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_settlement_pending_at_a_kill_9_ends_in_the_transaction_sent_before_it() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let config = net.scratch.dir().join("facilitator.toml");
    std::fs::write(&config, "[facilitator]\nsettle_timeout_secs = 2\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut facilitator = FacilitatorProc::start(&net, data.path(), "facilitator.log", &args, &[]);
    facilitator.wait_ready().await;
    let merchant = net.keys[MERCHANT].address();
    let before = net.demo.balance(merchant).await.unwrap();
    let provider = &net.demo.provider;
    // Blocks stop: the batch is sent and stays in the mempool.
    let () = provider.raw_request("evm_setAutomine".into(), (false,)).await.unwrap();
    let body = payment(&net, 2, 4242, "crash").await;
    let (status, pending) = facilitator.post("/settle", &body).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(pending["success"], false);
    assert_eq!(pending["errorReason"], "settlement_pending", "{pending}");
    let sent = pending["transaction"].as_str().unwrap().to_owned();
    assert!(
        sent.starts_with("0x") && sent.len() == 66,
        "the pending answer names the transaction: {pending}"
    );
    let payer = net.keys[2].address();
    let id = format!(
        "eip155:31337:{}:{payer}:{}",
        net.demo.token.address,
        body["paymentPayload"]["payload"]["authorization"]["nonce"].as_str().unwrap()
    );
    let (_, record) = facilitator.get(&format!("/settlements/{id}")).await;
    assert_eq!(record["status"], "submitted", "{record}");

    facilitator.kill_9();
    let () = provider.raw_request("evm_setAutomine".into(), (true,)).await.unwrap();
    let _: String = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let mut facilitator = FacilitatorProc::start(&net, data.path(), "facilitator-2.log", &args, &[]);
    facilitator.wait_ready().await;
    let (status, settled) = facilitator.post("/settle", &body).await;
    assert_eq!(status, 200, "{settled}");
    assert_eq!(settled["success"], true, "{settled}");
    assert_eq!(
        settled["transaction"],
        sent.as_str(),
        "the transaction sent before the crash, not a second one"
    );
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(4242));
    let keeper_txs =
        provider.get_transaction_count(net.keys[crate::common::keeper::KEEPER].address()).await.unwrap();
    assert_eq!(keeper_txs, 1, "the facilitator's signer sent one transaction in all");
}
