//! `x402 devnet`: the whole loop on a local chain. Starts anvil, deploys with `x402 deploy`, funds demo
//! accounts, creates subscriptions, opens a channel, starts the keeper, queues signed x402 payments through the
//! keeper's HTTP API, advances chain time period by period, and prints what the keeper executed and settled.
//! Runs until Ctrl-C (or, with `--smoke`, checks every balance and exits).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy::node_bindings::Anvil;
use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, bail, eyre};
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use x402_devkit::demo::Demo;
use x402_keeper::daemon::{self, Event};

use super::say;
use crate::cmd::keeper::settings_from_record;
use crate::logging::{self, LogFormat};
use crate::network::Network;
use crate::record::Record;

/// 1 USDC in the test token's units (6 decimals).
const USDC: u64 = 1_000_000;
/// Subscription period of the demo, in seconds of chain time.
const PERIOD: u64 = 3600;
/// Challenge period of the demo channel.
const CHALLENGE: u64 = 900;

/// Run a local devnet: anvil, every contract, the keeper, and a demo workload.
#[derive(Debug, clap::Args)]
pub(crate) struct DevnetArgs {
    /// The anvil binary.
    #[arg(long, env = "X402_ANVIL", default_value = "anvil")]
    anvil: PathBuf,
    /// anvil's port (0 picks a free one).
    #[arg(long, env = "X402_DEVNET_PORT", default_value_t = 8545)]
    port: u16,
    /// anvil's chain id. 84532 (Base Sepolia's) lets the official x402 v1 clients pay: they sign only for the
    /// chains they know by name, and the keeper then serves the v1 network `base-sepolia`.
    #[arg(long, default_value_t = 31337)]
    chain_id: u64,
    /// Where the keeper's HTTP API listens.
    #[arg(long, default_value = "127.0.0.1:8402")]
    keeper_listen: SocketAddr,
    /// Signed x402 payments to queue.
    #[arg(long, default_value_t = 300)]
    payments: usize,
    /// Accounts paying them (anvil keys 1..).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=6))]
    payers: u8,
    /// Subscriptions to create.
    #[arg(long, default_value_t = 4)]
    subscriptions: usize,
    /// Subscription periods of chain time to run through.
    #[arg(long, default_value_t = 3)]
    periods: u64,
    /// Seconds between keeper ticks.
    #[arg(long, default_value_t = 2)]
    interval: u64,
    /// Check every balance at the end and exit instead of running until Ctrl-C.
    #[arg(long)]
    smoke: bool,
}

/// Keys: 0 deployer and token owner, 1..=6 payers and subscribers, 7 merchant, 9 keeper.
const MERCHANT: usize = 7;
const KEEPER: usize = 9;

#[derive(Default)]
struct Totals {
    settled: usize,
    settle_txs: Vec<B256>,
    settle_gas: u64,
    charged: usize,
    charge_txs: usize,
    charge_gas: u64,
    claims: usize,
    finalized: usize,
}

impl DevnetArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        logging::init(LogFormat::Text, "warn");
        let mut stop = crate::cmd::keeper::shutdown_signal()?;
        let (keeper_stop_tx, keeper_stop) = watch::channel(false);
        let result = tokio::select! {
            result = self.main(&keeper_stop_tx, keeper_stop) => result,
            _ = stop.changed() => {
                say("Ctrl-C: stopping the keeper and anvil");
                Ok(ExitCode::from(130))
            }
        };
        let _ = keeper_stop_tx.send(true);
        // Give the keeper task a moment to finish its tick; anvil stops when its handle drops (inside `main`).
        tokio::time::sleep(Duration::from_millis(200)).await;
        result
    }

    async fn main(
        &self,
        stop_keeper: &watch::Sender<bool>,
        keeper_stop: watch::Receiver<bool>,
    ) -> eyre::Result<ExitCode> {
        let mut anvil = Anvil::at(&self.anvil).chain_id(self.chain_id);
        if self.port != 0 {
            anvil = anvil.port(self.port);
        }
        let anvil = anvil.try_spawn().wrap_err_with(|| {
            format!("cannot start anvil ({}); is port {} free?", self.anvil.display(), self.port)
        })?;
        let rpc_url = anvil.endpoint();
        let v1 = x402_protocol::network::v1_name(self.chain_id)
            .map(|name| format!(", x402 v1 network {name}"))
            .unwrap_or_default();
        say(format!("anvil       {rpc_url} (chain {}{v1})", self.chain_id));
        let keys: Vec<PrivateKeySigner> = anvil.keys().iter().map(|k| k.clone().into()).collect();
        if keys.len() <= KEEPER {
            bail!("anvil gave {} keys; the devnet needs 10", keys.len());
        }
        let state =
            tempfile::Builder::new().prefix("x402-devnet-").tempdir().wrap_err("cannot create a temp dir")?;

        // Deploy exactly as a user would: the same binary's `deploy` command.
        say("deploying   x402 deploy --network local ...");
        let deployments = state.path().join("deployments");
        let exe = std::env::current_exe().wrap_err("cannot find the x402 binary")?;
        let output = tokio::process::Command::new(exe)
            .args(["deploy", "--network", "local", "--rpc-url", &rpc_url, "--deployments-dir"])
            .arg(&deployments)
            .env(crate::keys::PRIVATE_KEY_ENV, alloy::hex::encode(keys[0].to_bytes()))
            .output()
            .await
            .wrap_err("cannot run x402 deploy")?;
        if !output.status.success() {
            bail!("x402 deploy failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        let path = Record::path(&deployments, Network::Local);
        let record = Record::load(&path)?.ok_or_else(|| eyre!("x402 deploy wrote no record"))?;
        for name in ["X402Payment", "Subscription", "PaymentChannel"] {
            say(format!("  {name:<16} {}", record.proxy(name).unwrap_or_default()));
        }

        let merchant = keys[MERCHANT].address();
        let file = x402_keeper::config::FileSettings {
            interval_secs: Some(self.interval),
            merchants: Some(x402_keeper::config::Merchants::Only(vec![merchant])),
            listen: Some(self.keeper_listen),
            data_dir: Some(state.path().join("keeper")),
            payments_batch: Some(250),
            // The devnet's one HTTP client stands for all its payers: it may use the keeper's whole intake rate.
            client_rate_limit_per_sec: Some(2_000),
            client_rate_limit_burst: Some(4_000),
            ..Default::default()
        };
        let settings = settings_from_record(&path, rpc_url.clone(), &file)?;
        let token = settings.tokens[0];
        let demo = Demo::connect(&rpc_url, &keys, token, settings.contracts).await?;
        let keeper_address = keys[KEEPER].address();
        let payers: Vec<&PrivateKeySigner> = keys[1..=usize::from(self.payers)].iter().collect();

        say("funding     payers and subscribers with 1,000,000 test USDC each");
        for payer in &payers {
            demo.mint(payer.address(), U256::from(1_000_000 * USDC)).await?;
        }
        let mut subscriptions = Vec::new();
        let subscribing = tokio::time::Instant::now();
        for i in 0..self.subscriptions {
            if i > 0 && i % 1000 == 0 {
                say(format!(
                    "subscribing {i}/{} ({:.0} s)",
                    self.subscriptions,
                    subscribing.elapsed().as_secs_f64()
                ));
            }
            let subscriber = payers[i % payers.len()].address();
            let amount = U256::from((10 + i as u64 % 10) * USDC);
            let id = demo.subscribe(subscriber, merchant, amount, PERIOD).await?;
            subscriptions.push((id, amount));
        }
        say(format!(
            "subscribed  {} subscriptions of 10+ USDC per {PERIOD} s to the merchant {merchant}",
            subscriptions.len()
        ));
        let channel_payer = payers[0];
        let channel =
            demo.open_channel(channel_payer.address(), merchant, U256::from(100 * USDC), CHALLENGE).await?;
        demo.approve_claim_operator(merchant, keeper_address).await?;
        say(format!("channel     {channel} (100 USDC deposit; the keeper may claim for the merchant)"));

        // The keeper, in this process, with its own key.
        let mut stop_rx = keeper_stop.clone();
        let keeper = daemon::start(settings, keys[KEEPER].clone(), &mut stop_rx)
            .await?
            .ok_or_else(|| eyre!("stopped before the keeper started"))?;
        let shared = keeper.shared();
        let mut events = shared.events.subscribe();
        let api = format!("http://{}", keeper.local_addr().unwrap_or(self.keeper_listen));
        let keeper_task = tokio::spawn(keeper.run(false, keeper_stop));
        say(format!("keeper      {keeper_address}, API {api}, a tick every {} s", self.interval));
        wait_ready(&api).await?;

        let mut totals = Totals::default();

        // The voucher the merchant registers with the keeper.
        let voucher = demo.voucher(channel_payer, channel, U256::from(25 * USDC)).await?;
        let answer = post(&api, "/vouchers", &voucher).await?;
        say(format!(
            "voucher     25 USDC on the channel registered: {}",
            answer.1["message"].as_str().unwrap_or("?")
        ));

        // Payments, through the HTTP intake, with progress.
        let now = demo.now().await?;
        let mut expected_to_merchant = U256::ZERO;
        let mut accepted = 0usize;
        let client = reqwest::Client::new();
        let started = tokio::time::Instant::now();
        let mut in_flight = tokio::task::JoinSet::new();
        for i in 0..self.payments {
            let payer = payers[i % payers.len()];
            let value = U256::from(10_000 + (i as u64 % 50) * 1_000);
            let request = demo.payment(payer, merchant, value, now, &(i as u64).to_be_bytes())?;
            let (client, url) = (client.clone(), format!("{api}/payments"));
            in_flight.spawn(async move {
                let response = client.post(url).json(&request).send().await?;
                let ok = response.status().is_success();
                let text = if ok { String::new() } else { response.text().await.unwrap_or_default() };
                Ok::<_, reqwest::Error>((i, value, ok, text))
            });
            // A few requests at a time, like several clients.
            while in_flight.len() >= 8 || (i + 1 == self.payments && !in_flight.is_empty()) {
                let Some(done) = in_flight.join_next().await else { break };
                let (index, value, ok, text) =
                    done.wrap_err("intake task failed")?.wrap_err("cannot reach the keeper")?;
                if ok {
                    accepted += 1;
                    expected_to_merchant += value;
                } else {
                    say(format!("  payment {index} refused: {text}"));
                }
            }
            if (i + 1) % 100 == 0 || i + 1 == self.payments {
                say(format!("queued      {}/{} payments from {} payers", i + 1, self.payments, payers.len()));
            }
        }
        let queued_in = started.elapsed();
        // Two bad ones, to show the intake's answers: a replay and a payer without funds.
        let replay = demo.payment(payers[0], merchant, U256::from(10_000), now, &0u64.to_be_bytes())?;
        let (status, body) = post(&api, "/payments", &replay).await?;
        say(format!(
            "replayed    payment 0 again: HTTP {status}, a duplicate answered with its status ({})",
            body["status"].as_str().unwrap_or("?")
        ));
        // On a chain with an x402 v1 name, what an official v1 client sends is taken too.
        if let Some(v1) = demo.payment_v1(payers[0], merchant, U256::from(10_000), now, b"v1")? {
            let (status, body) = post(&api, "/payments", &v1).await?;
            say(format!(
                "v1 payment  network {}: HTTP {status} ({})",
                v1["paymentRequirements"]["network"].as_str().unwrap_or("?"),
                body["status"].as_str().or(body["invalidReason"].as_str()).unwrap_or("?")
            ));
            if status == 202 {
                accepted += 1;
                expected_to_merchant += U256::from(10_000);
            }
        }
        let broke = PrivateKeySigner::random();
        let (status, body) =
            post(&api, "/payments", &demo.payment(&broke, merchant, U256::from(10_000), now, b"x")?).await?;
        say(format!(
            "unfunded    payer refused: HTTP {status} {}",
            body["invalidReason"].as_str().unwrap_or("?")
        ));

        // Wait for the queue to drain.
        let patience = 120 + self.payments as u64 / 20;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(patience);
        while totals.settled < accepted {
            if tokio::time::Instant::now() > deadline {
                bail!("only {} of {accepted} payments settled after {patience} s", totals.settled);
            }
            next_event(&mut events, &mut totals).await;
        }
        let settled_in = started.elapsed();
        say(format!(
            "timing      {accepted} payments accepted in {:.1} s ({:.0}/s through HTTP), all settled {:.1} s after the first",
            queued_in.as_secs_f64(),
            accepted as f64 / queued_in.as_secs_f64(),
            settled_in.as_secs_f64()
        ));
        // The reference: one payment as a facilitator settles it, to the same (already funded) merchant.
        let standalone = demo.standalone_transfer_gas(keys[0].address(), payers[0], merchant).await?;
        expected_to_merchant += U256::from(x402_devkit::demo::STANDALONE_VALUE);
        let per_payment = totals.settle_gas as f64 / totals.settled.max(1) as f64;
        say(format!(
            "settled     {} payments in {} transactions: {:.0} gas per payment, {:.2}x a standalone \
             transferWithAuthorization ({standalone} gas)",
            totals.settled,
            totals.settle_txs.len(),
            per_payment,
            per_payment / standalone as f64
        ));

        // Periods of chain time; the payer closes the channel after the first.
        let mut charged_expected = subscriptions.len(); // the first period is due at creation
        let mut period_started = tokio::time::Instant::now();
        for period in 1..=self.periods {
            wait_for(&mut events, &mut totals, |t| t.charged >= charged_expected, "subscription charges")
                .await?;
            say(format!(
                "period {period}    {} charges so far in {} executeBatch transactions ({:.0} gas per charge); \
                 this period's {} done {:.1} s after it became due",
                totals.charged,
                totals.charge_txs,
                totals.charge_gas as f64 / totals.charged.max(1) as f64,
                subscriptions.len(),
                period_started.elapsed().as_secs_f64()
            ));
            if period == 1 {
                demo.start_close(channel_payer.address(), channel).await?;
                say("channel     payer started a unilateral close; the keeper should claim the voucher");
                wait_for(&mut events, &mut totals, |t| t.claims >= 1, "the voucher claim").await?;
                say(format!(
                    "channel     claimed {} USDC for the merchant",
                    demo.channel(channel).await?.1 / U256::from(USDC)
                ));
            }
            demo.advance(PERIOD).await?;
            period_started = tokio::time::Instant::now();
            charged_expected += subscriptions.len();
            say(format!("time        +{PERIOD} s of chain time"));
        }
        wait_for(&mut events, &mut totals, |t| t.charged >= charged_expected, "subscription charges").await?;
        wait_for(&mut events, &mut totals, |t| t.finalized >= 1, "the channel's finalization").await?;
        say(format!(
            "channel     finalized after the challenge period: status {}",
            demo.channel(channel).await?.0
        ));

        // What the merchant must hold: every settled payment, the reference transfer and the channel claim; its
        // subscription income is credited in the contract (pull), not transferred.
        let merchant_balance = demo.balance(merchant).await?;
        let expected = expected_to_merchant + U256::from(25 * USDC);
        say(format!(
            "summary     merchant holds {} units (payments, reference transfer, channel claim; expected {expected}); \
             {} subscription charges executed, exactly {} per subscription",
            merchant_balance,
            totals.charged,
            totals.charged / subscriptions.len().max(1)
        ));
        if self.smoke {
            // Stop the keeper before anvil goes away with this function's scope.
            let _ = stop_keeper.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(30), keeper_task).await;
            let ok = merchant_balance == expected
                && totals.charged == charged_expected
                && totals.settled == accepted;
            if !ok {
                bail!("smoke check failed: balances or counts differ from what was expected");
            }
            say("smoke       all balances and counts as expected");
            return Ok(ExitCode::SUCCESS);
        }
        say(format!("devnet running: RPC {rpc_url}, keeper {api}; Ctrl-C to stop"));
        loop {
            next_event(&mut events, &mut totals).await;
        }
    }
}

async fn wait_ready(api: &str) -> eyre::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("{api}/ready")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the keeper did not become ready at {api}")
}

async fn post(api: &str, route: &str, body: &Value) -> eyre::Result<(u16, Value)> {
    let response = reqwest::Client::new()
        .post(format!("{api}{route}"))
        .json(body)
        .send()
        .await
        .wrap_err("cannot reach the keeper")?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn wait_for(
    events: &mut broadcast::Receiver<Event>,
    totals: &mut Totals,
    done: impl Fn(&Totals) -> bool,
    what: &str,
) -> eyre::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !done(totals) {
        if tokio::time::Instant::now() > deadline {
            bail!("waited 300 s for {what}");
        }
        next_event(events, totals).await;
    }
    Ok(())
}

/// Waits for the keeper's next event (at most a second), prints it and adds it to the totals.
async fn next_event(events: &mut broadcast::Receiver<Event>, totals: &mut Totals) {
    let event = match tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
        Ok(Ok(event)) => event,
        _ => return,
    };
    match event {
        Event::Batch { job, action, tx, items, succeeded, gas_used, block } => {
            say(format!(
                "  keeper    {action}: {succeeded}/{items} in block {block}, {gas_used} gas, tx {tx}"
            ));
            match job {
                "payments" => {
                    totals.settled += succeeded;
                    totals.settle_txs.push(tx);
                    totals.settle_gas += gas_used;
                }
                "subscriptions" => {
                    totals.charged += succeeded;
                    totals.charge_txs += 1;
                    totals.charge_gas += gas_used;
                }
                _ if action == "claimBatch" => totals.claims += succeeded,
                _ => totals.finalized += succeeded,
            }
        }
        Event::Tick { errors, .. } => {
            for error in errors {
                say(format!("  keeper    error: {error}"));
            }
        }
    }
}
