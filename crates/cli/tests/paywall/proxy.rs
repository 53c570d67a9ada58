//! `x402 proxy` in front of an API, paid by `x402 pay` and by the official @x402/fetch, settling through
//! `x402 facilitator`; and `x402 pay` against an official @x402/express server using the reference facilitator.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use serde_json::{Value, json};

use crate::common::anvil;
use crate::common::facilitator::{FacilitatorProc, interop, node};
use crate::common::keeper::{MERCHANT, free_port, net};
use crate::common::paywall::{ProxyProc, Upstream, pay, proxy_prices};

#[tokio::test(flavor = "multi_thread")]
async fn x402_pay_through_the_proxy_pays_once_per_request_and_is_not_charged_for_upstream_errors() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let upstream = Upstream::start().await;
    let proxy = ProxyProc::start(&net, &upstream.url, &facilitator.url, &proxy_prices(&net)).await;
    let merchant = net.keys[MERCHANT].address();
    let payer = &net.keys[4];
    let balances = || async {
        (net.demo.balance(merchant).await.unwrap(), net.demo.balance(payer.address()).await.unwrap())
    };

    // Unpaid: the upstream is not reached.
    let plain = reqwest::get(format!("{}/echo/a", proxy.url)).await.unwrap();
    assert_eq!(plain.status(), 402);
    assert_eq!(upstream.hits(), 0);

    // Dry run: the price, nothing paid.
    let start = balances().await;
    let (code, _, err) = pay(&net, payer, &[&format!("{}/echo/a", proxy.url), "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("would pay 2000 of"), "{err}");
    assert_eq!(balances().await, start);

    // Paid: the body to stdout, the settlement to stderr; the upstream saw the payer, not the payment.
    let (code, out, err) = pay(
        &net,
        payer,
        &[&format!("{}/echo/a/b?q=1", proxy.url), "-d", "hello", "-H", "x402-payer: 0xforged"],
    );
    assert_eq!(code, 0, "{err}");
    let echoed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["path"], "/echo/a/b?q=1");
    assert_eq!(echoed["body"], "hello");
    assert_eq!(echoed["payer"].as_str().unwrap().to_lowercase(), payer.address().to_string().to_lowercase());
    assert_eq!(echoed["payment"], Value::Null, "the payment header is not forwarded");
    assert_eq!(echoed["forwardedFor"], "127.0.0.1");
    let tx =
        err.lines().find_map(|l| l.strip_prefix("settled: transaction ")).unwrap_or_else(|| panic!("{err}"));
    let tx: B256 = tx.split_whitespace().next().unwrap().parse().unwrap();
    assert!(net.demo.provider.get_transaction_receipt(tx).await.unwrap().unwrap().status());
    let after = balances().await;
    assert_eq!(after.0 - start.0, U256::from(2000));
    assert_eq!(start.1 - after.1, U256::from(2000));

    // Settled before the upstream runs.
    let (code, out, err) = pay(&net, payer, &[&format!("{}/echo/before/x", proxy.url), "-d", "early"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("early"), "{out}");
    assert!(err.contains("settled: transaction"), "{err}");

    // An upstream error: exit 5, not charged.
    let before = balances().await;
    let (code, out, err) = pay(&net, payer, &[&format!("{}/broken", proxy.url)]);
    assert_eq!(code, 5, "{err}");
    assert_eq!(out, "upstream broke");
    assert_eq!(balances().await, before, "not charged for the upstream's error");

    // Over the cap: exit 3, nothing signed. A big body streams through.
    let (code, _, err) = pay(&net, payer, &[&format!("{}/echo/a", proxy.url), "--max", "1999"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cap"), "{err}");
    let (code, out, err) = pay(&net, payer, &[&format!("{}/stream", proxy.url)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.len(), 1 << 20);

    // A budget of 3000 per period: the first 2000 fits, the second does not.
    let ledger = net.scratch.dir().join("spend.json");
    let budget = ["--budget", "3000", "--ledger", ledger.to_str().unwrap()];
    let url = format!("{}/echo/c", proxy.url);
    let (code, _, err) = pay(&net, payer, &[&[url.as_str()], &budget[..]].concat());
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = pay(&net, payer, &[&[url.as_str()], &budget[..]].concat());
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("budget has 1000 left"), "{err}");

    // The proxy's own routes.
    let metrics = reqwest::get(format!("{}/metrics", proxy.url)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("x402_paywall_requests_total{outcome=\"paid\"} 4"), "{metrics}");
    assert!(metrics.contains("x402_paywall_requests_total{outcome=\"handler_failed\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_fetch_client_pays_the_proxy() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let upstream = Upstream::start().await;
    let proxy = ProxyProc::start(&net, &upstream.url, &facilitator.url, &proxy_prices(&net)).await;
    let merchant = net.keys[MERCHANT].address();
    let before = net.demo.balance(merchant).await.unwrap();
    let config = json!({
        "url": format!("{}/echo/fetch", proxy.url),
        "chainId": net.demo.chain_id,
        "token": {"address": net.demo.token.address},
        "payerKey": format!("0x{}", alloy::hex::encode(net.keys[5].to_bytes())),
        "paid": 2,
    });
    let out = node("fetch-pays.mjs", &[&config.to_string()]);
    assert_eq!(out["unpaid"]["status"], 402, "{out}");
    assert_eq!(out["unpaid"]["cacheControl"], "no-store");
    assert_eq!(out["unpaid"]["paymentRequired"]["accepts"][0]["amount"], "2000");
    for paid in out["paid"].as_array().unwrap() {
        assert_eq!(paid["status"], 200, "{out}");
        assert_eq!(paid["paymentResponse"]["success"], true, "{out}");
        let echoed: Value = serde_json::from_str(paid["body"].as_str().unwrap()).unwrap();
        assert_eq!(echoed["path"], "/echo/fetch");
    }
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(4000));
}

/// An @x402/express server process, pointed at `facilitator`.
struct Express(std::process::Child, String);

impl Express {
    fn start(config: &Value) -> Self {
        let mut child = std::process::Command::new("node")
            .current_dir(interop())
            .arg("express-server.mjs")
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let started: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("express did not start ({e}): {line}"));
        let url = started["url"].as_str().unwrap().to_owned();
        Self(child, url)
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn x402_pay_pays_an_official_express_server_using_the_reference_facilitator() {
    let net = net(anvil().spawn()).await;
    let port = free_port();
    let key = crate::common::key_hex(&net.anvil, 9);
    let mut reference = std::process::Command::new("node")
        .current_dir(interop())
        .args([
            "reference-facilitator.mjs",
            &port.to_string(),
            &net.anvil.endpoint(),
            &net.demo.chain_id.to_string(),
            &key,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(reference.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let merchant = net.keys[MERCHANT].address();
    let token = &net.demo.token;
    let express = Express::start(&json!({
        "facilitatorUrl": format!("http://127.0.0.1:{port}"),
        "chainId": net.demo.chain_id,
        "token": {"address": token.address, "name": token.name, "version": token.version},
        "merchant": merchant,
        "price": 1234,
    }));
    let before = net.demo.balance(merchant).await.unwrap();
    let (code, out, err) = pay(&net, &net.keys[2], &[&format!("{}/weather", express.1), "-v"]);
    let _ = reference.kill();
    let _ = reference.wait();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sunny"), "{out}");
    assert!(err.contains("offered (v2)"), "{err}");
    assert!(err.contains("settled: transaction"), "{err}");
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(1234));
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_both_ways_x402_pay_pays_the_v1_express_server_and_the_v1_client_pays_the_proxy() {
    // v1 clients know a local chain only as base-sepolia: chain id 84532.
    let net = net(anvil().chain_id(84_532).spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let merchant = net.keys[MERCHANT].address();
    let token = &net.demo.token;
    let express = Express::start(&json!({
        "facilitatorUrl": facilitator.url,
        "chainId": net.demo.chain_id,
        "token": {"address": token.address, "name": token.name, "version": token.version},
        "merchant": merchant,
        "price": 777,
        "version": 1,
    }));
    let before = net.demo.balance(merchant).await.unwrap();
    let (code, out, err) = pay(&net, &net.keys[2], &[&format!("{}/weather", express.1), "-v"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sunny"), "{out}");
    assert!(err.contains("offered (v1)"), "{err}");
    assert!(err.contains("settled: transaction"), "{err}");
    assert!(err.contains("on base-sepolia"), "{err}");
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(777));

    let upstream = Upstream::start().await;
    let proxy = ProxyProc::start(&net, &upstream.url, &facilitator.url, &proxy_prices(&net)).await;
    let config = json!({
        "url": format!("{}/echo/v1", proxy.url),
        "payerKey": format!("0x{}", alloy::hex::encode(net.keys[3].to_bytes())),
    });
    let before = net.demo.balance(merchant).await.unwrap();
    let out = node("v1-client-pays.mjs", &[&config.to_string()]);
    assert_eq!(out["unpaid"]["status"], 402, "{out}");
    assert_eq!(out["unpaid"]["body"]["accepts"][0]["network"], "base-sepolia", "{out}");
    assert_eq!(out["paid"]["status"], 200, "{out}");
    assert_eq!(out["paid"]["paymentResponse"]["success"], true, "{out}");
    assert_eq!(out["paid"]["paymentResponse"]["network"], "base-sepolia", "{out}");
    assert_eq!(out["replayed"]["status"], 402, "{out}");
    assert_eq!(net.demo.balance(merchant).await.unwrap() - before, U256::from(2000));
    assert_eq!(upstream.hits(), 1, "the replay did not reach the upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_asking_for_prices_in_a_loop_is_slowed_and_paying_clients_are_not() {
    let net = net(anvil().spawn()).await;
    let data = tempfile::tempdir().unwrap();
    let facilitator = FacilitatorProc::ready(&net, data.path(), &[]).await;
    let upstream = Upstream::start().await;
    let limits = ["--offer-rate-per-sec", "1", "--offer-rate-burst", "2"];
    let proxy =
        ProxyProc::start_with(&net, &upstream.url, &facilitator.url, &proxy_prices(&net), &limits).await;
    let url = format!("{}/echo/loop", proxy.url);
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(reqwest::get(&url).await.unwrap().status().as_u16());
        }
        out
    };
    assert_eq!(statuses, [402, 402, 429]);
    let limited = reqwest::get(&url).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Unpriced routes and the proxy's own are not limited.
    for _ in 0..5 {
        assert_eq!(reqwest::get(format!("{}/health", proxy.url)).await.unwrap().status(), 200);
    }
    // After a second the client may ask again and pay.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (code, _, err) = pay(&net, &net.keys[1], &[&url]);
    assert_eq!(code, 0, "{err}");
}
