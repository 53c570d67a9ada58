//! `x402 devnet`: the whole loop on a local chain. Starts anvil, deploys (as `x402 deploy` does, in-process), funds demo
//! accounts, creates subscriptions, opens a channel, starts the keeper, queues signed x402 payments through the
//! keeper's HTTP API, runs a paid demo API behind the x402 proxy with an agent paying it through the x402 client,
//! advances chain time period by period, and prints what the keeper executed and settled.
//! Runs until Ctrl-C (or, with `--smoke`, checks every balance and exits).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, bail, eyre};
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use x402_devkit::demo::Demo;
use x402_keeper::daemon::{self, Event};

use x402_bindings::Contract;
use x402_cli::deployer::deploy;
use x402_cli::keeper_settings::settings_from_record;
use x402_keeper::config::{FileSettings, Merchants, Settings};

use super::paid_demo::PaidDemo;
use super::say;
use crate::logging::{self, LogFormat};

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
    /// Where the paid demo API (the x402 proxy in front of a demo API) listens.
    #[arg(long, default_value = "127.0.0.1:8404")]
    paid_api_listen: SocketAddr,
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

/// Keys: 0 deployer and token owner, 1..=6 payers and subscribers, 7 merchant, 8 the agent paying the paid API,
/// 9 keeper.
const MERCHANT: usize = 7;
const AGENT: usize = 8;
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
        let anvil = self.start_anvil()?;
        let rpc_url = anvil.endpoint();
        let keys: Vec<PrivateKeySigner> = anvil.keys().iter().map(|k| k.clone().into()).collect();
        if keys.len() <= KEEPER {
            bail!("anvil gave {} keys; the devnet needs 10", keys.len());
        }
        let state =
            tempfile::Builder::new().prefix("x402-devnet-").tempdir().wrap_err("cannot create a temp dir")?;
        let record = deploy_contracts(&rpc_url, &keys[0], &state.path().join("deployments")).await?;
        let merchant = keys[MERCHANT].address();
        let settings = self.keeper_settings(&record, &rpc_url, state.path(), merchant)?;
        let demo = Demo::connect(&rpc_url, &keys, settings.tokens[0], settings.contracts).await?;
        let payers: Vec<&PrivateKeySigner> = keys[1..=usize::from(self.payers)].iter().collect();
        let world = World { demo, payers, merchant, keeper: keys[KEEPER].address() };
        let subscriptions = self.fund_and_subscribe(&world).await?;
        let channel = open_channel(&world).await?;

        // The keeper, in this process, with its own key.
        let mut stop_rx = keeper_stop.clone();
        let keeper = daemon::start(settings, keys[KEEPER].clone(), &mut stop_rx)
            .await?
            .ok_or_else(|| eyre!("stopped before the keeper started"))?;
        let mut events = keeper.shared().events.subscribe();
        let engine = keeper.shared();
        let api = format!("http://{}", keeper.local_addr().unwrap_or(self.keeper_listen));
        let keeper_task = tokio::spawn(keeper.run(false, keeper_stop));
        say(format!("keeper      {}, API {api}, a tick every {} s", world.keeper, self.interval));
        wait_ready(&api).await?;

        let mut totals = Totals::default();
        register_voucher(&world, &api, channel).await?;
        let mut paid = self.queue_payments(&world, &api).await?;
        paid.add(show_intake_answers(&world, &api).await?);
        self.wait_settled(&mut events, &mut totals, &paid).await?;
        paid.add(report_gas(&world, &keys[0], &totals).await?);
        let agent = &keys[AGENT];
        world.demo.mint(agent.address(), U256::from(100 * USDC)).await?;
        let token = &world.demo.token;
        let demo = PaidDemo {
            engine,
            chain_id: self.chain_id,
            token: (token.address, token.name.clone(), token.version.clone()),
            merchant,
            agent,
            demo: &world.demo,
            listen: self.paid_api_listen,
        };
        let agent_paid = demo.run().await?;
        paid.add(Paid { count: agent_paid.count, value: agent_paid.value, ..Paid::default() });
        let count = paid.count;
        wait_for(&mut events, &mut totals, |t| t.settled >= count, "the agent's payments to settle").await?;
        let charged_expected =
            self.run_periods(&world, &mut events, &mut totals, subscriptions.len(), channel).await?;

        // What the merchant must hold: every settled payment, the reference transfer and the channel claim; its
        // subscription income is credited in the contract (pull), not transferred.
        let merchant_balance = world.demo.balance(merchant).await?;
        let expected = paid.value + U256::from(25 * USDC) + agent_paid.channel_claimed;
        say(format!(
            "summary     merchant holds {} units (payments, reference transfer, channel claims; expected {expected}); \
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
                && totals.settled == paid.count;
            if !ok {
                bail!("smoke check failed: balances or counts differ from what was expected");
            }
            say("smoke       all balances and counts as expected");
            return Ok(ExitCode::SUCCESS);
        }
        say(format!(
            "devnet running: RPC {rpc_url}, keeper {api}, paid API http://{}; Ctrl-C to stop",
            self.paid_api_listen
        ));
        loop {
            next_event(&mut events, &mut totals).await;
        }
    }

    fn start_anvil(&self) -> eyre::Result<AnvilInstance> {
        let mut anvil = Anvil::at(&self.anvil).chain_id(self.chain_id);
        if self.port != 0 {
            anvil = anvil.port(self.port);
        }
        let anvil = anvil.try_spawn().wrap_err_with(|| {
            format!("cannot start anvil ({}); is port {} free?", self.anvil.display(), self.port)
        })?;
        let v1 = x402_protocol::network::v1_name(self.chain_id)
            .map(|name| format!(", x402 v1 network {name}"))
            .unwrap_or_default();
        say(format!("anvil       {} (chain {}{v1})", anvil.endpoint(), self.chain_id));
        Ok(anvil)
    }

    /// The keeper's settings: the deployment's contracts, the demo merchant, a short interval.
    fn keeper_settings(
        &self,
        record: &Path,
        rpc_url: &str,
        state: &Path,
        merchant: Address,
    ) -> eyre::Result<Settings> {
        let file = FileSettings {
            interval_secs: Some(self.interval),
            merchants: Some(Merchants::Only(vec![merchant])),
            listen: Some(self.keeper_listen),
            data_dir: Some(state.join("keeper")),
            payments_batch: Some(250),
            // The devnet's one HTTP client stands for all its payers: it may use the keeper's whole intake rate.
            client_rate_limit_per_sec: Some(2_000),
            client_rate_limit_burst: Some(4_000),
            ..Default::default()
        };
        Ok(settings_from_record(record, rpc_url.to_owned(), &file)?)
    }

    async fn fund_and_subscribe(&self, world: &World<'_>) -> eyre::Result<Vec<(U256, U256)>> {
        say("funding     payers and subscribers with 1,000,000 test USDC each");
        for payer in &world.payers {
            world.demo.mint(payer.address(), U256::from(1_000_000 * USDC)).await?;
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
            let subscriber = world.payers[i % world.payers.len()].address();
            let amount = U256::from((10 + i as u64 % 10) * USDC);
            let id = world.demo.subscribe(subscriber, world.merchant, amount, PERIOD).await?;
            subscriptions.push((id, amount));
        }
        say(format!(
            "subscribed  {} subscriptions of 10+ USDC per {PERIOD} s to the merchant {}",
            subscriptions.len(),
            world.merchant
        ));
        Ok(subscriptions)
    }

    /// Queues the signed payments through the keeper's HTTP intake, a few at a time like several clients.
    async fn queue_payments(&self, world: &World<'_>, api: &str) -> eyre::Result<Paid> {
        let now = world.demo.now().await?;
        let mut paid = Paid { started: Some(tokio::time::Instant::now()), ..Paid::default() };
        let client = reqwest::Client::new();
        let mut in_flight = tokio::task::JoinSet::new();
        for i in 0..self.payments {
            let payer = world.payers[i % world.payers.len()];
            let value = U256::from(10_000 + (i as u64 % 50) * 1_000);
            let request = world.demo.payment(payer, world.merchant, value, now, &(i as u64).to_be_bytes())?;
            let (client, url) = (client.clone(), format!("{api}/payments"));
            in_flight.spawn(async move {
                let response = client.post(url).json(&request).send().await?;
                let ok = response.status().is_success();
                let text = if ok { String::new() } else { response.text().await.unwrap_or_default() };
                Ok::<_, reqwest::Error>((i, value, ok, text))
            });
            while in_flight.len() >= 8 || (i + 1 == self.payments && !in_flight.is_empty()) {
                let Some(done) = in_flight.join_next().await else { break };
                let (index, value, ok, text) =
                    done.wrap_err("intake task failed")?.wrap_err("cannot reach the keeper")?;
                if ok {
                    paid.add(Paid { count: 1, value, ..Paid::default() });
                } else {
                    say(format!("  payment {index} refused: {text}"));
                }
            }
            if (i + 1) % 100 == 0 || i + 1 == self.payments {
                say(format!(
                    "queued      {}/{} payments from {} payers",
                    i + 1,
                    self.payments,
                    world.payers.len()
                ));
            }
        }
        paid.queued_in = paid.started.map(|at| at.elapsed());
        Ok(paid)
    }

    async fn wait_settled(
        &self,
        events: &mut broadcast::Receiver<Event>,
        totals: &mut Totals,
        paid: &Paid,
    ) -> eyre::Result<()> {
        let patience = 120 + self.payments as u64 / 20;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(patience);
        while totals.settled < paid.count {
            if tokio::time::Instant::now() > deadline {
                bail!("only {} of {} payments settled after {patience} s", totals.settled, paid.count);
            }
            next_event(events, totals).await;
        }
        let queued_in = paid.queued_in.unwrap_or_default().as_secs_f64();
        say(format!(
            "timing      {} payments accepted in {queued_in:.1} s ({:.0}/s through HTTP), all settled {:.1} s after the first",
            paid.count,
            paid.count as f64 / queued_in.max(f64::EPSILON),
            paid.started.map(|at| at.elapsed()).unwrap_or_default().as_secs_f64()
        ));
        Ok(())
    }

    /// Periods of chain time, each waited for until its charges are in; the payer closes the channel after the
    /// first. Returns the charges expected in all.
    async fn run_periods(
        &self,
        world: &World<'_>,
        events: &mut broadcast::Receiver<Event>,
        totals: &mut Totals,
        subscriptions: usize,
        channel: B256,
    ) -> eyre::Result<usize> {
        let mut charged_expected = subscriptions; // the first period is due at creation
        let mut period_started = tokio::time::Instant::now();
        for period in 1..=self.periods {
            wait_for(events, totals, |t| t.charged >= charged_expected, "subscription charges").await?;
            say(format!(
                "period {period}    {} charges so far in {} executeBatch transactions ({:.0} gas per charge); \
                 this period's {subscriptions} done {:.1} s after it became due",
                totals.charged,
                totals.charge_txs,
                totals.charge_gas as f64 / totals.charged.max(1) as f64,
                period_started.elapsed().as_secs_f64()
            ));
            if period == 1 {
                world.demo.start_close(world.payers[0].address(), channel).await?;
                say(
                    "channel     payer started a unilateral close; the keeper claims any voucher not claimed yet",
                );
                wait_for(events, totals, |t| t.claims >= 1, "the voucher claim").await?;
                say(format!(
                    "channel     {} USDC claimed for the merchant",
                    world.demo.channel(channel).await?.1 / U256::from(USDC)
                ));
            }
            world.demo.advance(PERIOD).await?;
            period_started = tokio::time::Instant::now();
            charged_expected += subscriptions;
            say(format!("time        +{PERIOD} s of chain time"));
        }
        wait_for(events, totals, |t| t.charged >= charged_expected, "subscription charges").await?;
        wait_for(events, totals, |t| t.finalized >= 1, "the channel's finalization").await?;
        say(format!(
            "channel     finalized after the challenge period: status {}",
            world.demo.channel(channel).await?.0
        ));
        Ok(charged_expected)
    }
}

/// The demo's chain helpers and accounts.
struct World<'a> {
    demo: Demo,
    payers: Vec<&'a PrivateKeySigner>,
    merchant: Address,
    keeper: Address,
}

/// Payments accepted for the merchant: how many, their value, and when queueing started and took.
#[derive(Clone, Copy, Default)]
struct Paid {
    count: usize,
    value: U256,
    started: Option<tokio::time::Instant>,
    queued_in: Option<Duration>,
}

impl Paid {
    fn add(&mut self, more: Paid) {
        self.count += more.count;
        self.value += more.value;
    }
}

/// Deploys every contract in-process, as `x402 deploy --network local` does, and lists the proxies; returns the
/// record's path.
async fn deploy_contracts(rpc_url: &str, deployer: &PrivateKeySigner, dir: &Path) -> eyre::Result<PathBuf> {
    say("deploying   every contract, as x402 deploy --network local does ...");
    let report = deploy::local(rpc_url, deployer, dir).await?;
    for contract in [Contract::X402Payment, Contract::Subscription, Contract::PaymentChannel] {
        say(format!("  {:<16} {}", contract.name(), report.record.proxy(contract).unwrap_or_default()));
    }
    Ok(report.path)
}

/// A channel from the first payer to the merchant, which the keeper may claim for the merchant.
async fn open_channel(world: &World<'_>) -> eyre::Result<B256> {
    let payer = world.payers[0].address();
    let channel = world.demo.open_channel(payer, world.merchant, U256::from(100 * USDC), CHALLENGE).await?;
    world.demo.approve_claim_operator(world.merchant, world.keeper).await?;
    say(format!("channel     {channel} (100 USDC deposit; the keeper may claim for the merchant)"));
    Ok(channel)
}

/// The voucher the merchant registers with the keeper.
async fn register_voucher(world: &World<'_>, api: &str, channel: B256) -> eyre::Result<()> {
    let voucher = world.demo.voucher(world.payers[0], channel, U256::from(25 * USDC)).await?;
    let answer = post(api, "/vouchers", &voucher).await?;
    say(format!(
        "voucher     25 USDC on the channel registered (the keeper claims it: over its 1 USDC threshold, and the \
         channel expires within the hour): {}",
        answer.1["message"].as_str().unwrap_or("?")
    ));
    Ok(())
}

/// A replay and an unfunded payer, to show the intake's answers; on a chain with an x402 v1 name, a payment as an
/// official v1 client sends it (returned when accepted).
async fn show_intake_answers(world: &World<'_>, api: &str) -> eyre::Result<Paid> {
    let (demo, merchant, payer) = (&world.demo, world.merchant, world.payers[0]);
    let now = demo.now().await?;
    let mut paid = Paid::default();
    let replay = demo.payment(payer, merchant, U256::from(10_000), now, &0u64.to_be_bytes())?;
    let (status, body) = post(api, "/payments", &replay).await?;
    say(format!(
        "replayed    payment 0 again: HTTP {status}, a duplicate answered with its status ({})",
        body["status"].as_str().unwrap_or("?")
    ));
    if let Some(v1) = demo.payment_v1(payer, merchant, U256::from(10_000), now, b"v1")? {
        let (status, body) = post(api, "/payments", &v1).await?;
        say(format!(
            "v1 payment  network {}: HTTP {status} ({})",
            v1["paymentRequirements"]["network"].as_str().unwrap_or("?"),
            body["status"].as_str().or(body["invalidReason"].as_str()).unwrap_or("?")
        ));
        if status == 202 {
            paid.add(Paid { count: 1, value: U256::from(10_000), ..Paid::default() });
        }
    }
    let broke = PrivateKeySigner::random();
    let (status, body) =
        post(api, "/payments", &demo.payment(&broke, merchant, U256::from(10_000), now, b"x")?).await?;
    say(format!(
        "unfunded    payer refused: HTTP {status} {}",
        body["invalidReason"].as_str().unwrap_or("?")
    ));
    Ok(paid)
}

/// Gas per settled payment against one standalone transfer to the same (already funded) merchant, as a
/// facilitator settles a payment; returns that transfer's value, which the merchant holds too.
async fn report_gas(world: &World<'_>, relayer: &PrivateKeySigner, totals: &Totals) -> eyre::Result<Paid> {
    let standalone =
        world.demo.standalone_transfer_gas(relayer.address(), world.payers[0], world.merchant).await?;
    let per_payment = totals.settle_gas as f64 / totals.settled.max(1) as f64;
    say(format!(
        "settled     {} payments in {} transactions: {:.0} gas per payment, {:.2}x a standalone \
         transferWithAuthorization ({standalone} gas)",
        totals.settled,
        totals.settle_txs.len(),
        per_payment,
        per_payment / standalone as f64
    ));
    Ok(Paid { value: U256::from(x402_devkit::demo::STANDALONE_VALUE), ..Paid::default() })
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
