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
    let facilitator = FacilitatorProc::ready(&net, data.path(), &args).await;
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

/// Review finding: a payer that signed one nonce twice (another payTo, another amount) and had both settled at
/// once got both callers `success: true` with the one transaction that paid only one of them. Now the other caller
/// is refused with `invalid_exact_evm_nonce_already_used`, at `/settle` and at `/payments`.
#[tokio::test(flavor = "multi_thread")]
async fn two_authorizations_of_one_nonce_settled_at_once_settle_one_and_refuse_the_other() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &["--any-merchant"]).await;
    let (first, second) = (net.keys[MERCHANT].address(), net.keys[6].address());
    let now = net.demo.now().await.unwrap();
    for round in 0..3u64 {
        let salt = format!("twice-{round}");
        let (a, b) = (U256::from(100 + round), U256::from(200 + round));
        let bodies = vec![
            net.demo.payment(&net.keys[3], first, a, now, salt.as_bytes()).unwrap(),
            net.demo.payment(&net.keys[3], second, b, now, salt.as_bytes()).unwrap(),
        ];
        let before = (net.demo.balance(first).await.unwrap(), net.demo.balance(second).await.unwrap());
        let answers = settle_all(&facilitator, bodies.clone()).await;
        let paid = (
            net.demo.balance(first).await.unwrap() - before.0,
            net.demo.balance(second).await.unwrap() - before.1,
        );
        let succeeded: Vec<bool> = answers.iter().map(|(_, answer)| answer["success"] == true).collect();
        assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
        match succeeded[..] {
            [true, false] => assert_eq!(paid, (a, U256::ZERO), "{answers:?}"),
            [false, true] => assert_eq!(paid, (U256::ZERO, b), "{answers:?}"),
            _ => panic!("round {round}: exactly one must settle: {answers:?}"),
        }
        let loser = &answers[usize::from(succeeded[0])].1;
        assert_eq!(loser["errorReason"], "invalid_exact_evm_nonce_already_used", "{loser}");
    }
    // The deferred intake: with one authorization queued (not settled yet), the other is refused, instead of being
    // shown the queued payment as its own; `/settle` refuses it too and settles the queued one.
    let queued = net.demo.payment(&net.keys[3], first, U256::from(300), now, b"twice-deferred").unwrap();
    let other = net.demo.payment(&net.keys[3], second, U256::from(400), now, b"twice-deferred").unwrap();
    let (status, answer) = facilitator.post("/payments", &queued).await;
    assert_eq!((status, answer["status"].as_str()), (202, Some("queued")), "{answer}");
    let (status, answer) = facilitator.post("/payments", &other).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["invalidReason"], "invalid_exact_evm_nonce_already_used", "{answer}");
    let (status, answer) = facilitator.post("/settle", &other).await;
    assert_eq!((status, answer["errorReason"].as_str()), (200, Some("invalid_exact_evm_nonce_already_used")));
    let (status, answer) = facilitator.post("/settle", &queued).await;
    assert_eq!((status, answer["success"].as_bool()), (200, Some(true)), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_settlement_pending_at_a_kill_9_ends_in_the_transaction_sent_before_it() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let config = net.scratch.dir().join("facilitator.toml");
    std::fs::write(&config, "[facilitator]\nsettle_timeout_secs = 2\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut facilitator = FacilitatorProc::ready(&net, data.path(), &args).await;
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
