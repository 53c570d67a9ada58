//! The paywall's cost, side by side in one run on one anvil: the same axum handler unpaid, paid with settlement
//! after the handler, paid deferred, and paid with a `channel` voucher, all through this project's facilitator in
//! the same process (the keeper engine, as `x402 facilitator` runs it). For each, requests per second and latency p50/p99 at 1, 8, 32 and 64
//! concurrent callers on loopback (closed loop: each caller sends its next request when the last is answered), the
//! latency added over the unpaid handler, throughput as a share of the unpaid one, and gas per settled payment
//! against a standalone `transferWithAuthorization`. Channel callers each pay through their own channel (opened
//! before the phase); after the phase the merchant claims every channel's last voucher in one `claimBatch`, whose
//! gas is spread over the phase's requests.
//!
//! Every paid request carries a distinct payment signed before its phase starts (the client's signing is not
//! measured). Run with `cargo bench -p x402-cli --bench paywall` (release build; about two minutes; needs
//! `bin/setup`). `X402_BENCH_QUICK=1` runs fewer requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::node_bindings::Anvil;
use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use axum::routing::get;
use tokio::sync::Mutex;
use x402_bindings::{IPaymentChannel, PaymentChannel};
use x402_cli::deployer::deploy;
use x402_cli::keeper_settings::{contracts_of, settings_from_record};
use x402_client::offer::{self, Candidate};
use x402_client::sign::sign;
use x402_devkit::demo::Demo;
use x402_facilitator::engine::{Engine, Engines};
use x402_facilitator::{Facilitator, settings};
use x402_keeper::config::{FileSettings, Job, Merchants};
use x402_keeper::daemon;
use x402_paywall::config::{Asset, ChannelTerms, Config, DeferredLimits, Route, SettleMode};
use x402_paywall::facilitator::InProcess;
use x402_paywall::{PaywallLayer, Price};
use x402_protocol::v2;

const PAYERS: std::ops::RangeInclusive<usize> = 1..=6;
const MERCHANT: usize = 7;
const KEEPER: usize = 9;
const PRICE: u64 = 1_000;
const CONCURRENCY: [usize; 4] = [1, 8, 32, 64];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn handler() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"city": "Lisbon", "sky": "clear", "temperature": 21}))
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

struct Sample {
    latency: Duration,
    ok: bool,
    tx: Option<B256>,
}

/// One request to `url` (with its payment header, if any), timed; the settlement's transaction, if it names one.
async fn sample(client: &reqwest::Client, url: &str, payment: Option<(&'static str, String)>) -> Sample {
    let mut request = client.get(url);
    if let Some((name, value)) = payment {
        request = request.header(name, value);
    }
    let sent = Instant::now();
    let (ok, tx) = match request.send().await {
        Ok(response) => {
            let tx =
                x402_client::receipt(response.headers()).and_then(|r| r.transaction.parse::<B256>().ok());
            let ok = response.status().is_success() && response.bytes().await.is_ok();
            (ok, tx)
        }
        Err(_) => (false, None),
    };
    Sample { latency: sent.elapsed(), ok, tx }
}

/// Every worker's samples, and the time since `started`.
async fn gather(
    started: Instant,
    workers: Vec<tokio::task::JoinHandle<Vec<Sample>>>,
) -> (Vec<Sample>, Duration) {
    let mut samples = Vec::new();
    for worker in workers {
        samples.extend(worker.await.unwrap());
    }
    (samples, started.elapsed())
}

/// `requests` (each with its payment header, or none) to `url` from `concurrency` callers.
async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    requests: Vec<Option<(&'static str, String)>>,
    concurrency: usize,
) -> (Vec<Sample>, Duration) {
    let queue = Arc::new(Mutex::new(requests.into_iter()));
    let started = Instant::now();
    let workers = (0..concurrency)
        .map(|_| {
            let (queue, client, url) = (Arc::clone(&queue), client.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    // The lock is released at the end of this statement, before the request.
                    let Some(payment) = queue.lock().await.next() else { break };
                    samples.push(sample(&client, &url, payment).await);
                }
                samples
            })
        })
        .collect();
    gather(started, workers).await
}

/// Each lane's requests (its payment headers in order) to `url`, one caller per lane.
async fn lanes_loop(client: &reqwest::Client, url: &str, lanes: Vec<Vec<String>>) -> (Vec<Sample>, Duration) {
    let started = Instant::now();
    let workers = lanes
        .into_iter()
        .map(|lane| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(lane.len());
                for header in lane {
                    samples.push(sample(&client, &url, Some(("PAYMENT-SIGNATURE", header))).await);
                }
                samples
            })
        })
        .collect();
    gather(started, workers).await
}

fn percentile(samples: &[Sample], p: f64) -> Duration {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Signs `count` payments for `candidate`, round-robin over the payers.
async fn payments(
    payers: &[PrivateKeySigner],
    candidate: &Candidate,
    resource: Option<&v2::ResourceInfo>,
    count: usize,
) -> Vec<Option<(&'static str, String)>> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let signed =
            sign(&payers[i % payers.len()], candidate, resource, U256::from(PRICE), now()).await.unwrap();
        out.push(Some((signed.header, signed.value)));
    }
    out
}

async fn offer_of(client: &reqwest::Client, url: &str) -> (Candidate, Option<v2::ResourceInfo>) {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 402);
    let headers = response.headers().clone();
    let offer = offer::read(&headers, &response.bytes().await.unwrap()).unwrap();
    (offer.candidates[0].clone(), offer.resource)
}

#[tokio::main]
async fn main() {
    let quick = std::env::var("X402_BENCH_QUICK").is_ok();
    let anvil_path = root().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let anvil = Anvil::at(anvil_path).args(["--gas-limit", "60000000"]).spawn();
    let keys: Vec<PrivateKeySigner> = anvil.keys().iter().map(|k| k.clone().into()).collect();
    let scratch = tempfile::tempdir().unwrap();
    let report = deploy::local(&anvil.endpoint(), &keys[0], scratch.path()).await.unwrap();
    let (contracts, token) = contracts_of(&report.record, &report.path).unwrap();
    let demo = Demo::connect(&anvil.endpoint(), &keys, token, contracts).await.unwrap();
    let token = demo.token.clone();
    for payer in PAYERS {
        demo.mint(keys[payer].address(), U256::from(10u64).pow(U256::from(15))).await.unwrap();
    }
    let merchant = keys[MERCHANT].address();

    // The facilitator's engine, as `x402 facilitator` configures it, in this process.
    let file = FileSettings {
        merchants: Some(Merchants::Only(vec![merchant])),
        data_dir: Some(scratch.path().join("engine")),
        jobs: Some(vec![Job::Payments]),
        payments_batch: Some(1000),
        ..Default::default()
    };
    let mut engine_settings = settings_from_record(&report.path, anvil.endpoint(), &file).unwrap();
    engine_settings.serve_api = false;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut start_stop = stop.clone();
    let keeper =
        daemon::start(engine_settings, keys[KEEPER].clone(), &mut start_stop).await.unwrap().unwrap();
    let settings = settings::FileSettings::default().resolve(None).unwrap();
    let engine = Engine::new("local".to_owned(), keeper.shared(), settings.verify_margin);
    tokio::spawn(keeper.run(false, stop));
    let facilitator = Arc::new(Facilitator::new(Engines::new(vec![engine]), settings));

    let network = format!("eip155:{}", demo.chain_id);
    let config = Config {
        deferred: DeferredLimits { max_unsettled: Price::parse("$1000000").unwrap(), max_age_seconds: 600 },
        ..Config::default()
    }
    .pay_to(merchant)
    .asset(Asset::token(&network, token.address, &token.name, &token.version, 6))
    .route(Route::new("GET /after", Price::parse(&PRICE.to_string()).unwrap()))
    .route(
        Route::new("GET /deferred", Price::parse(&PRICE.to_string()).unwrap()).settle(SettleMode::Deferred),
    )
    .route(Route::new("GET /channel", Price::parse(&PRICE.to_string()).unwrap()))
    .channel(
        ChannelTerms::new(&network, demo.contracts.payment_channel)
            .min_deposit(Price::parse(&PRICE.to_string()).unwrap())
            .minimums(3600, 600),
    );
    let layer = PaywallLayer::new(config.build().unwrap(), InProcess(facilitator));
    let metrics = layer.metrics();
    let bare = serve(axum::Router::new().route("/free", get(handler))).await;
    let paid = serve(
        axum::Router::new()
            .route("/after", get(handler))
            .route("/deferred", get(handler))
            .route("/channel", get(handler))
            .layer(layer),
    )
    .await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let payers: Vec<PrivateKeySigner> = PAYERS.map(|i| keys[i].clone()).collect();
    let standalone = demo.standalone_transfer_gas(keys[0].address(), &keys[1], merchant).await.unwrap();
    let (after_offer, after_resource) = offer_of(&client, &format!("{paid}/after")).await;
    let (deferred_offer, deferred_resource) = offer_of(&client, &format!("{paid}/deferred")).await;
    let channel_requirement = {
        let response = client.get(format!("{paid}/channel")).send().await.unwrap();
        let offer = offer::read(&response.headers().clone(), &response.bytes().await.unwrap()).unwrap();
        offer.candidates.into_iter().find(|c| c.requirement.scheme == "channel").unwrap().requirement
    };
    let voucher_domain = x402_bindings::voucher::domain(demo.chain_id, demo.contracts.payment_channel);
    let channels = PaymentChannel::new(demo.contracts.payment_channel, &demo.provider);

    println!("paywall benchmark: one axum handler on loopback, {} payers, automine anvil", payers.len());
    println!("standalone transferWithAuthorization: {standalone} gas");
    println!();
    println!(
        "| mode | callers | requests | ok | req/s | p50 ms | p99 ms | added p50 ms | share of unpaid req/s | gas/payment | x standalone |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for concurrency in CONCURRENCY {
        let scale = if quick { 4 } else { 1 };
        let unpaid_count = 4000 / scale;
        let after_count = (match concurrency {
            1 => 150,
            8 => 600,
            _ => 1600,
        }) / scale;
        let deferred_count = 3000 / scale;

        let (unpaid, unpaid_took) =
            closed_loop(&client, &format!("{bare}/free"), vec![None; unpaid_count], concurrency).await;
        let unpaid_rate = unpaid.len() as f64 / unpaid_took.as_secs_f64();
        let unpaid_p50 = percentile(&unpaid, 0.5);
        let row = |mode: &str, samples: &[Sample], took: Duration, gas: Option<(f64, f64)>| {
            let rate = samples.len() as f64 / took.as_secs_f64();
            let ok = samples.iter().filter(|s| s.ok).count();
            let (gas, ratio) =
                gas.map_or(("-".to_owned(), "-".to_owned()), |(g, r)| (format!("{g:.0}"), format!("{r:.2}")));
            println!(
                "| {mode} | {concurrency} | {} | {ok} | {rate:.0} | {:.2} | {:.2} | {:+.2} | {:.2} | {gas} | {ratio} |",
                samples.len(),
                ms(percentile(samples, 0.5)),
                ms(percentile(samples, 0.99)),
                ms(percentile(samples, 0.5)) - ms(unpaid_p50),
                rate / unpaid_rate,
            );
        };
        row("unpaid", &unpaid, unpaid_took, None);

        let signed = payments(&payers, &after_offer, after_resource.as_ref(), after_count).await;
        let (after, after_took) = closed_loop(&client, &format!("{paid}/after"), signed, concurrency).await;
        let txs: HashSet<B256> = after.iter().filter_map(|s| s.tx).collect();
        let mut gas = 0u64;
        for tx in &txs {
            gas += demo.provider.get_transaction_receipt(*tx).await.unwrap().unwrap().gas_used;
        }
        let settled = after.iter().filter(|s| s.tx.is_some()).count().max(1);
        let per_payment = gas as f64 / settled as f64;
        row("settle after", &after, after_took, Some((per_payment, per_payment / standalone as f64)));

        let signed = payments(&payers, &deferred_offer, deferred_resource.as_ref(), deferred_count).await;
        let before = demo.balance(merchant).await.unwrap();
        let (deferred, deferred_took) =
            closed_loop(&client, &format!("{paid}/deferred"), signed, concurrency).await;
        let deadline = Instant::now() + Duration::from_secs(300);
        while metrics.deferred_pending() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let settled_value = demo.balance(merchant).await.unwrap() - before;
        assert_eq!(
            settled_value,
            U256::from(PRICE * deferred.iter().filter(|s| s.ok).count() as u64),
            "every deferred payment settled"
        );
        row("deferred", &deferred, deferred_took, None);

        // Channel: one channel per caller, its vouchers signed before the phase.
        let per_lane = (3000 / scale).div_ceil(concurrency);
        let mut lanes = Vec::with_capacity(concurrency);
        let mut last = Vec::with_capacity(concurrency);
        for lane in 0..concurrency {
            let payer = &payers[lane % payers.len()];
            let deposit = U256::from(PRICE * per_lane as u64);
            let id = demo.open_channel_for(payer.address(), merchant, deposit, 3600, 7200).await.unwrap();
            let mut headers = Vec::with_capacity(per_lane);
            for n in 1..=per_lane as u64 {
                let amount = U256::from(PRICE * n);
                let signature =
                    x402_bindings::voucher::sign(payer, &voucher_domain, id, amount).await.unwrap();
                let payload = serde_json::json!({"x402Version": 2, "accepted": channel_requirement,
                    "payload": {"channelId": id, "amount": amount.to_string(), "signature": signature}});
                headers.push(x402_protocol::headers::encode(&payload).unwrap());
                if n == per_lane as u64 {
                    last.push(IPaymentChannel::VoucherClaim { channelId: id, amount, signature });
                }
            }
            lanes.push(headers);
        }
        let (channel, channel_took) = lanes_loop(&client, &format!("{paid}/channel"), lanes).await;
        assert!(channel.iter().all(|s| s.ok), "every voucher was taken");
        let receipt =
            channels.claimBatch(last).from(merchant).send().await.unwrap().get_receipt().await.unwrap();
        assert!(receipt.status());
        let per_request = receipt.gas_used as f64 / channel.len() as f64;
        row("channel", &channel, channel_took, Some((per_request, per_request / standalone as f64)));
    }
    println!();
    println!(
        "added p50: the mode's p50 minus the unpaid p50 at the same concurrency; share: the mode's req/s over the"
    );
    println!(
        "unpaid req/s. Deferred payments all settled after each phase (checked against the merchant's balance)."
    );
    println!(
        "Channel gas: one claimBatch of every caller's last voucher after the phase, over the phase's requests."
    );
}
