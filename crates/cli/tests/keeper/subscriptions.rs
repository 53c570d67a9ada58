//! Subscriptions: charged exactly once per period, and what an unfunded subscriber costs the keeper.

use std::collections::HashSet;
use std::time::Duration;

use alloy::primitives::U256;
use serde_json::Value;
use x402_bindings::Subscription;

use crate::common::keeper::*;

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_are_charged_exactly_once_per_period_over_many_periods() {
    let net = net(crate::common::anvil().spawn()).await;
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

/// Finding 2, the keeper's side: a subscriber without funds tries to put its subscriptions back on the due list
/// after every keeper run (reactivate, a 1-unit deposit); each costs the keeper one failed execution, in one
/// batch, however many rounds pass.
#[tokio::test(flavor = "multi_thread")]
async fn an_unfunded_subscriber_costs_the_keeper_one_failed_execution_per_subscription() {
    let net = net(crate::common::anvil().spawn()).await;
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
