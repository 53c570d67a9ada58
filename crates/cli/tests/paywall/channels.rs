//! The `channel` scheme end to end: an axum app behind the paywall offering vouchers on the deployment's
//! PaymentChannel, `x402 facilitator` taking them without the chain and its keeper claiming them, the client
//! paying per request through a channel its payer opened.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use serde_json::{Value, json};
use x402_client::channel::receipt as channel_receipt;
use x402_client::{Channel, ClientError};
use x402_paywall::Price;
use x402_paywall::config::ChannelTerms;
use x402_paywall::facilitator::HttpFacilitator;
use x402_protocol::channel::ChannelReceipt;
use x402_protocol::headers;

use crate::common::anvil;
use crate::common::facilitator::FacilitatorProc;
use crate::common::keeper::{KEEPER, MERCHANT, Net, USDC, free_port, net};
use crate::common::paywall::{App, WEATHER_PRICE, app_config, client, demo_asset};

const DEPOSIT: u64 = 10 * USDC;
/// The keeper claims an open channel once a claim pays 13 requests' worth.
const THRESHOLD: u64 = 13 * WEATHER_PRICE;

fn units(n: u64) -> U256 {
    U256::from(n)
}

/// A facilitator on `listen` whose keeper ticks every second and claims open channels at [`THRESHOLD`].
fn start_facilitator(net: &Net, data: &std::path::Path, listen: &str) -> FacilitatorProc {
    let config = net.scratch.dir().join("channels.toml");
    std::fs::write(&config, format!("[keeper]\ninterval_secs = 1\nchannel_claim_threshold = {THRESHOLD}\n"))
        .unwrap();
    let args = ["--config", config.to_str().unwrap(), "--listen", listen];
    FacilitatorProc::start(net, data, "facilitator.log", &args, &[])
}

/// The app, taking channels with at least `challenge` seconds of challenge period expiring after `expiry` s.
async fn app_with(net: &Net, facilitator: &FacilitatorProc, challenge: u64, expiry: u64) -> App {
    let network = demo_asset(net).network;
    let terms = ChannelTerms::new(&network, net.demo.contracts.payment_channel)
        .min_deposit(Price::parse("$1").unwrap())
        .minimums(challenge, expiry);
    App::start_config(app_config(net).channel(terms), HttpFacilitator::new(&facilitator.url).unwrap()).await
}

/// `payer`'s new channel of `deposit` to `recipient` (challenge period `challenge`, expiring in two hours), as the
/// client pays through it.
async fn open(
    net: &Net,
    payer: &PrivateKeySigner,
    recipient: Address,
    deposit: u64,
    challenge: u64,
) -> Channel {
    let id =
        net.demo.open_channel_for(payer.address(), recipient, units(deposit), challenge, 7200).await.unwrap();
    Channel::new(
        net.demo.chain_id,
        net.demo.contracts.payment_channel,
        id,
        recipient,
        net.demo.token.address,
        units(deposit),
        U256::ZERO,
    )
}

/// The `channel` requirement of `url`'s 402.
async fn channel_requirement(url: &str) -> Value {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 402);
    let offer: Value = headers::decode(response.headers()["payment-required"].to_str().unwrap()).unwrap();
    offer["accepts"].as_array().unwrap().iter().find(|r| r["scheme"] == "channel").unwrap().clone()
}

/// A `PAYMENT-SIGNATURE` with `signer`'s voucher for `amount` in total on `channel`.
async fn voucher_header(
    net: &Net,
    signer: &PrivateKeySigner,
    requirement: &Value,
    channel: B256,
    amount: u64,
) -> String {
    let voucher = net.demo.voucher(signer, channel, units(amount)).await.unwrap();
    let payload = json!({"x402Version": 2, "accepted": requirement, "payload": voucher});
    headers::encode(&payload).unwrap()
}

/// Sends `header` to `url`: the status and the channel receipt.
async fn pay_with(url: &str, header: &str) -> (u16, Option<ChannelReceipt>) {
    let response = reqwest::Client::new().get(url).header("payment-signature", header).send().await.unwrap();
    (response.status().as_u16(), channel_receipt(response.headers()))
}

fn reason(answer: &(u16, Option<ChannelReceipt>)) -> (u16, String) {
    (answer.0, answer.1.as_ref().and_then(|r| r.error_reason.clone()).unwrap_or_default())
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A facilitator on a free port (its data in a temp dir, restartable on both) and the app in front of it, taking
/// channels with at least `challenge` s of challenge period expiring after `expiry` s.
pub(crate) struct Stack {
    pub(crate) data: tempfile::TempDir,
    pub(crate) listen: String,
    pub(crate) facilitator: FacilitatorProc,
    pub(crate) app: App,
    pub(crate) weather: String,
}

/// `x402 facilitator` and the app offering exact and the channel scheme (at least `challenge` seconds of
/// challenge, expiring after `expiry` s).
pub(crate) async fn stack(net: &Net, challenge: u64, expiry: u64) -> Stack {
    let data = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut facilitator = start_facilitator(net, data.path(), &listen);
    facilitator.wait_ready().await;
    let app = app_with(net, &facilitator, challenge, expiry).await;
    let weather = format!("{}/weather", app.url);
    Stack { data, listen, facilitator, app, weather }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_paid_with_vouchers_checked_without_the_chain_and_claimed_by_the_keeper() {
    let net = net(anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    net.demo.approve_claim_operator(merchant, net.keys[KEEPER].address()).await.unwrap();
    let Stack { data, listen, mut facilitator, app, weather } = stack(&net, 1800, 600).await;

    // The offer: exact first, then the channel scheme with its terms; v1 clients see exact only.
    let requirement = channel_requirement(&weather).await;
    assert_eq!(requirement["amount"], WEATHER_PRICE.to_string());
    let extra = &requirement["extra"];
    assert_eq!(extra["paymentChannel"], net.demo.contracts.payment_channel.to_checksum(None));
    assert_eq!((extra["name"].as_str(), extra["version"].as_str()), (Some("x402 PaymentChannel"), Some("1")));
    assert_eq!(
        (extra["minDeposit"].as_str(), extra["minChallengePeriod"].as_u64()),
        (Some("1000000"), Some(1800))
    );
    let (_, supported) = facilitator.get("/supported").await;
    assert!(supported["kinds"].as_array().unwrap().iter().any(|k| k["scheme"] == "channel"), "{supported}");

    // The client pays per request through its channel: nothing settles on chain, the receipts count up.
    let payer = &net.keys[3];
    let channel = open(&net, payer, merchant, DEPOSIT, 1800).await;
    let id = channel.id;
    let client = std::sync::Arc::new(client(&net, payer).channel(channel));
    let merchant_before = net.demo.balance(merchant).await.unwrap();
    for n in 1..=3u64 {
        let outcome = client.send(client.http_client().get(&weather).build().unwrap()).await.unwrap();
        assert_eq!(outcome.response.status(), 200);
        assert_eq!(outcome.response.headers()["cache-control"], "private");
        let receipt = outcome.payment.unwrap().channel.unwrap();
        assert!(receipt.success, "{receipt:?}");
        assert_eq!(receipt.cumulative, (n * WEATHER_PRICE).to_string());
        assert_eq!(receipt.remaining, (DEPOSIT - n * WEATHER_PRICE).to_string());
        assert_eq!(receipt.charged, WEATHER_PRICE.to_string());
        let body: Value = outcome.response.json().await.unwrap();
        assert_eq!(
            body["payer"].as_str().map(str::to_lowercase),
            Some(payer.address().to_string().to_lowercase())
        );
    }
    assert_eq!(app.served(), 3);

    // Eight at once: the client's running total keeps the vouchers apart; every request is paid once.
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, url) = (client.clone(), weather.clone());
        sends.spawn(async move { client.send(client.http_client().get(&url).build().unwrap()).await });
    }
    while let Some(outcome) = sends.join_next().await {
        assert_eq!(outcome.unwrap().unwrap().response.status(), 200);
    }
    assert_eq!(app.served(), 11);
    assert_eq!(client.channels()[0].owed(), units(11 * WEATHER_PRICE));

    // Two requests with the same voucher at once: one is served, the other told the total to sign from.
    let header = voucher_header(&net, payer, &requirement, id, 12 * WEATHER_PRICE).await;
    let (a, b) = tokio::join!(pay_with(&weather, &header), pay_with(&weather, &header));
    let mut answers = [reason(&a), reason(&b)];
    answers.sort();
    assert_eq!(answers, [(200, String::new()), (402, "invalid_channel_voucher_too_low".to_owned())]);
    let lost = if a.0 == 402 { a.1.unwrap() } else { b.1.unwrap() };
    assert_eq!(lost.cumulative, (12 * WEATHER_PRICE).to_string());
    assert_eq!(app.served(), 12);

    // Refused with their reasons, before the handler: a replay, a lower voucher, one adding less than the
    // price, another key's signature, above the deposit, a channel to someone else, an unknown one, one whose
    // challenge period is shorter than the route takes.
    let other = open(&net, &net.keys[4], net.keys[6].address(), DEPOSIT, 1800).await;
    let short = open(&net, &net.keys[5], merchant, DEPOSIT, 900).await;
    let cases = [
        (header.clone(), "invalid_channel_voucher_too_low"),
        (
            voucher_header(&net, payer, &requirement, id, 5 * WEATHER_PRICE).await,
            "invalid_channel_voucher_too_low",
        ),
        (
            voucher_header(&net, payer, &requirement, id, 13 * WEATHER_PRICE - 1).await,
            "invalid_channel_voucher_too_low",
        ),
        (
            voucher_header(&net, &net.keys[4], &requirement, id, 13 * WEATHER_PRICE).await,
            "invalid_channel_voucher_signature",
        ),
        (
            voucher_header(&net, payer, &requirement, id, DEPOSIT + 1).await,
            "invalid_channel_voucher_over_deposit",
        ),
        (
            voucher_header(&net, &net.keys[4], &requirement, other.id, WEATHER_PRICE).await,
            "invalid_channel_recipient_or_asset",
        ),
        (
            voucher_header(&net, payer, &requirement, B256::repeat_byte(7), WEATHER_PRICE).await,
            "invalid_channel_not_found",
        ),
        (
            voucher_header(&net, &net.keys[5], &requirement, short.id, WEATHER_PRICE).await,
            "invalid_channel_terms",
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(reason(&pay_with(&weather, &header).await), (402, expected.to_owned()), "{expected}");
    }
    assert_eq!(app.served(), 12, "no refused voucher reached the handler");
    assert_eq!(net.demo.balance(merchant).await.unwrap(), merchant_before, "nothing settled per request");

    // The facilitator killed and restarted on its data: the stored voucher still counts, so a replay stays
    // refused; the client (which did not know of the voucher above) is told the total and signs from it.
    facilitator.kill_9();
    let mut facilitator = start_facilitator(&net, data.path(), &listen);
    facilitator.wait_ready().await;
    assert_eq!(
        reason(&pay_with(&weather, &header).await),
        (402, "invalid_channel_voucher_too_low".to_owned())
    );
    let outcome = client.send(client.http_client().get(&weather).build().unwrap()).await.unwrap();
    assert_eq!(outcome.response.status(), 200);
    assert_eq!(outcome.payment.unwrap().channel.unwrap().cumulative, (13 * WEATHER_PRICE).to_string());

    // Past the threshold, the keeper claims the highest voucher while the channel stays open. (Vouchers that
    // arrived out of order left credit: the highest may be above what was taken, by at most the eight in flight.)
    let state = |facilitator: &FacilitatorProc| {
        let route = format!("/channels/eip155:{}:{id}", net.demo.chain_id);
        let facilitator_url = facilitator.url.clone();
        async move {
            let state: Value =
                reqwest::get(format!("{facilitator_url}{route}")).await.unwrap().json().await.unwrap();
            let number = |key: &str| state[key].as_str().unwrap().parse::<u64>().unwrap();
            (
                state["status"].as_str().unwrap().to_owned(),
                number("taken"),
                number("voucher"),
                number("claimed"),
            )
        }
    };
    let (status, taken, highest, _) = state(&facilitator).await;
    assert_eq!((status.as_str(), taken), ("open", 13 * WEATHER_PRICE));
    assert!((taken..=taken + 8 * WEATHER_PRICE).contains(&highest), "{highest}");
    wait_until("the threshold claim", || async {
        net.demo.channel(id).await.unwrap() == (1, units(highest))
    })
    .await;
    assert_eq!(net.demo.balance(merchant).await.unwrap(), merchant_before + units(highest));

    // Three more requests, then the payer starts a close: the desk takes no more vouchers, and the keeper claims
    // the highest voucher within the challenge period, then finalizes once it is over.
    for _ in 0..3 {
        let outcome = client.send(client.http_client().get(&weather).build().unwrap()).await.unwrap();
        assert_eq!(outcome.response.status(), 200);
    }
    assert_eq!(app.served(), 16);
    let payer_before = net.demo.balance(payer.address()).await.unwrap();
    net.demo.start_close(payer.address(), id).await.unwrap();
    wait_until("the close to be seen", || async {
        // Too low for an open channel, so it is never taken: the answer tells whether the close was seen.
        let header = voucher_header(&net, payer, &requirement, id, WEATHER_PRICE).await;
        reason(&pay_with(&weather, &header).await) == (402, "invalid_channel_not_open".to_owned())
    })
    .await;
    let (status, taken, highest, _) = state(&facilitator).await;
    assert_eq!((status.as_str(), taken), ("closing", 16 * WEATHER_PRICE));
    assert!((taken..=taken + 8 * WEATHER_PRICE).contains(&highest), "{highest}");
    wait_until("the claim during the challenge", || async {
        net.demo.channel(id).await.unwrap() == (2, units(highest))
    })
    .await;
    match client.send(client.http_client().get(&weather).build().unwrap()).await {
        Err(ClientError::PaymentFailed { reason, .. }) => assert_eq!(reason, "invalid_channel_not_open"),
        Ok(outcome) => panic!("a closing channel paid (HTTP {})", outcome.response.status()),
        Err(other) => panic!("{other}"),
    }
    net.demo.advance(7200 + 1801).await.unwrap();
    wait_until("the close to be final", || async { net.demo.channel(id).await.unwrap().0 == 3 }).await;
    assert_eq!(net.demo.balance(merchant).await.unwrap(), merchant_before + units(highest));
    assert_eq!(
        net.demo.balance(payer.address()).await.unwrap(),
        payer_before + units(DEPOSIT - highest),
        "the rest of the deposit went back to the payer"
    );
    drop(facilitator);
}

/// `x402` run to the end in a blocking thread (the app it talks to runs on this test's runtime).
async fn x402_run(args: Vec<String>, key: String) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = crate::common::run(crate::common::x402(&args, Some(&key)));
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn x402_channel_opens_from_the_offer_and_x402_pay_pays_through_it_until_closed() {
    let net = net(anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    net.demo.approve_claim_operator(merchant, net.keys[KEEPER].address()).await.unwrap();
    let Stack { data: _data, facilitator, app, weather, .. } = stack(&net, 1800, 600).await;
    let key = crate::common::key_hex(&net.anvil, 2);
    let rpc = net.anvil.endpoint();
    let channels = net.demo.contracts.payment_channel.to_string();
    let asset = format!("{}:{}", net.demo.chain_id, net.demo.token.address);
    let args = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();

    // Below the offer's minimum deposit or challenge period: refused before anything is sent.
    let (code, _, err) =
        x402_run(args(&["channel", "open", &weather, "--deposit", "$0.50", "--rpc-url", &rpc]), key.clone())
            .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("at least 1000000 units"), "{err}");
    let too_short = ["channel", "open", &weather, "--deposit", "$2", "--challenge", "900", "--rpc-url", &rpc];
    let (code, _, err) = x402_run(args(&too_short), key.clone()).await;
    assert!(code == 1 && err.contains("at least 1800 s"), "{err}");

    // Opened from the offer; x402 pay pays through it, the receipts counting up.
    let (code, out, err) =
        x402_run(args(&["channel", "open", &weather, "--deposit", "$2", "--rpc-url", &rpc]), key.clone())
            .await;
    assert_eq!(code, 0, "{err}");
    let id = out.split_whitespace().nth(2).unwrap().to_owned();
    assert!(out.starts_with("opened channel 0x") && out.contains("--channel"), "{out}");
    let pay = args(&["pay", &weather, "--channel", &id, "--rpc-url", &rpc, "--allow-asset", &asset]);
    for n in 1..=2u64 {
        let (code, out, err) = x402_run(pay.clone(), key.clone()).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("sunny"), "{out}");
        // Each run starts from the chain's claimed (zero), so the second learns the server's total first.
        assert!(err.contains(&format!("{} taken in all", n * WEATHER_PRICE)), "{err}");
    }
    assert_eq!(app.served(), 2);
    let status = args(&["channel", "status", &id, "--payment-channel", &channels, "--rpc-url", &rpc]);
    let (code, out, _) = x402_run(status.clone(), key.clone()).await;
    assert!(code == 0 && out.contains(": open") && out.contains("deposit 2000000, claimed 0"), "{out}");

    // Closed: x402 pay no longer uses the channel (the server's refusal of a closing channel is tested above);
    // after the challenge period the close is finalized and the deposit less the claimed vouchers comes back.
    let close = args(&["channel", "close", &id, "--payment-channel", &channels, "--rpc-url", &rpc]);
    let (code, out, err) = x402_run(close.clone(), key.clone()).await;
    assert!(code == 0 && out.contains("close started"), "{out}{err}");
    let (code, _, err) = x402_run(close.clone(), key.clone()).await;
    assert!(code == 1 && err.contains("finalize after it"), "{err}");
    let (code, _, err) = x402_run(pay.clone(), key.clone()).await;
    assert!(code == 1 && err.contains("is not open"), "{err}");
    assert_eq!(app.served(), 2);
    wait_until("the keeper's claim", || async {
        net.demo.channel(id.parse().unwrap()).await.unwrap().1 >= units(2 * WEATHER_PRICE)
    })
    .await;
    net.demo.advance(7 * 86_400 + 1801).await.unwrap();
    let payer = net.keys[2].address();
    let before = net.demo.balance(payer).await.unwrap();
    let (code, out, err) = x402_run(close, key.clone()).await;
    if code != 0 {
        // The keeper may have finalized it first (anyone may).
        assert!(err.contains("closed already") || out.contains("closed already"), "{out}{err}");
    }
    wait_until("the close to be final", || async {
        net.demo.channel(id.parse().unwrap()).await.unwrap().0 == 3
    })
    .await;
    let (_, claimed) = net.demo.channel(id.parse().unwrap()).await.unwrap();
    let refunded = net.demo.balance(payer).await.unwrap() - before;
    assert_eq!(claimed + refunded, units(2 * USDC), "claimed {claimed}, refunded {refunded}");
    drop(facilitator);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contract_wallet_payers_vouchers_are_each_checked_by_the_wallet_once_the_keeper_may_claim_them() {
    let net = net(anvil().spawn()).await;
    let merchant = net.keys[MERCHANT].address();
    // The wallet's channel expires in 60 s with a 900 s challenge period: the app takes that.
    let Stack { data: _data, facilitator, app, weather, .. } = stack(&net, 900, 30).await;
    let requirement = channel_requirement(&weather).await;
    let owner = &net.keys[2];
    let wallet = crate::common::keeper::contract_wallet(&net, owner.address()).await;
    let (id, _) = crate::common::keeper::open_from_contract(&net, wallet, merchant, 0x1b).await;

    // The merchant has not made the keeper its claim operator yet: refused, as the keeper could not claim.
    let header = voucher_header(&net, owner, &requirement, id, WEATHER_PRICE).await;
    assert_eq!(
        reason(&pay_with(&weather, &header).await),
        (402, "invalid_channel_no_claim_operator".to_owned())
    );
    net.demo.approve_claim_operator(merchant, net.keys[KEEPER].address()).await.unwrap();

    // The owner's signature with a byte appended is no ECDSA signature: the wallet is asked (by simulating the
    // merchant's claim), every time.
    let mut first = net.demo.voucher(owner, id, units(WEATHER_PRICE)).await.unwrap();
    first["signature"] = Value::String(format!("{}00", first["signature"].as_str().unwrap()));
    let payload = json!({"x402Version": 2, "accepted": requirement, "payload": first});
    let answer = pay_with(&weather, &headers::encode(&payload).unwrap()).await;
    assert_eq!(reason(&answer), (200, String::new()));
    assert_eq!(answer.1.unwrap().payer.map(|p| p.to_lowercase()), Some(wallet.to_string().to_lowercase()));
    // The owner's bare signature: the wallet is asked each time (it could stop approving the key).
    for n in 2..=3 {
        let header = voucher_header(&net, owner, &requirement, id, n * WEATHER_PRICE).await;
        assert_eq!(reason(&pay_with(&weather, &header).await), (200, String::new()));
    }
    // Another key: the wallet refuses.
    let header = voucher_header(&net, &net.keys[4], &requirement, id, 4 * WEATHER_PRICE).await;
    assert_eq!(
        reason(&pay_with(&weather, &header).await),
        (402, "invalid_channel_voucher_signature".to_owned())
    );
    assert_eq!(app.served(), 3);

    // The official client (@x402/fetch, exact only) is not put off by the channel offer: it pays exact.
    let config = json!({
        "url": weather,
        "chainId": net.demo.chain_id,
        "token": {"address": net.demo.token.address},
        "payerKey": crate::common::key_hex(&net.anvil, 5),
        "paid": 1,
    });
    let out = tokio::task::spawn_blocking(move || {
        crate::common::facilitator::node("fetch-pays.mjs", &[&config.to_string()])
    })
    .await
    .unwrap();
    let accepts = &out["unpaid"]["paymentRequired"]["accepts"];
    assert_eq!(
        (accepts[0]["scheme"].as_str(), accepts[1]["scheme"].as_str()),
        (Some("exact"), Some("channel"))
    );
    assert_eq!(out["paid"][0]["status"], 200, "{out}");
    assert_eq!(out["paid"][0]["paymentResponse"]["success"], true, "{out}");
    assert_eq!(app.served(), 4);
    drop(facilitator);
}
