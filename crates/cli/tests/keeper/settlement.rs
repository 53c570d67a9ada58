//! Batched settlement of queued payments: hundreds in a few transactions, the bad ones reported, contract-wallet payers
//! held to their gas budget, batches sized to fit the block.

use std::collections::HashSet;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use x402_bindings::TestStablecoin;

use crate::common::keeper::*;

#[tokio::test(flavor = "multi_thread")]
async fn settles_500_authorizations_in_a_few_transactions_and_reports_the_bad_ones() {
    let net = net(crate::common::anvil().spawn()).await;
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
async fn a_wallet_that_burns_gas_on_chain_fails_its_own_items_and_is_refused_after() {
    let net = net(crate::common::anvil().spawn()).await;
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
    let net = net(crate::common::anvil().spawn()).await;
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
    let net = net(crate::common::anvil().spawn()).await;
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

/// A batch is sized by the simulation that checks it (`eth_simulateV1` measures its gas in the same execution), so
/// no `eth_estimateGas` binary search runs it again; a node without `eth_simulateV1` is asked once, then batches
/// are checked with `eth_call` and estimated.
#[tokio::test(flavor = "multi_thread")]
async fn batches_are_sized_by_their_simulation_and_estimated_where_the_node_cannot_simulate() {
    let net = net(crate::common::anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    let mut paid = net.demo.balance(merchant).await.unwrap();
    for (missing, tag) in [(&[][..], "measured"), (&["eth_simulateV1"][..], "estimated")] {
        let relay = crate::common::relay::Relay::start(&net.anvil.endpoint(), missing).await;
        let data = net.scratch.dir().join(format!("keeper-{tag}"));
        let mut keeper = KeeperProc::start_through(&net, &relay.url, &data, 1, &format!("{tag}.log"), &[]);
        keeper.wait_ready().await;
        let queued = queue(&net, &keeper, 20, tag).await;
        wait_final(&keeper, queued.iter().map(|(id, _, _)| id)).await;
        assert!(settled_txs(&keeper, &queued).await.is_some(), "{tag}: every payment settled");
        paid += queued.iter().map(|(_, _, value)| *value).sum::<U256>();
        assert_eq!(net.demo.balance(merchant).await.unwrap(), paid, "{tag}");
        let (simulated, estimated) = (relay.asked("eth_simulateV1"), relay.asked("eth_estimateGas"));
        if missing.is_empty() {
            assert!(
                simulated >= 1 && estimated == 0,
                "{tag}: {simulated} simulations, {estimated} estimates"
            );
        } else {
            assert!(
                simulated == 1 && estimated >= 1,
                "{tag}: {simulated} simulations, {estimated} estimates"
            );
        }
        drop(keeper);
    }
}
