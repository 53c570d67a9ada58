//! The devnet's paid API: a demo API behind the proxy of `x402 proxy` (in this process, with the facilitator on
//! the devnet's keeper engine), and an agent paying it with the x402 client, printing what it paid and what
//! settled: first with `exact` payments, then per request through a payment channel (vouchers taken by the
//! facilitator's desk, claimed by the keeper when the agent closes the channel).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use axum::routing::get;
use eyre::{WrapErr, bail};
use std::time::Instant;
use x402_bindings::PaymentChannel;
use x402_client::{Channel, Client, Policy};
use x402_devkit::demo::Demo;
use x402_facilitator::engine::{Engine, Engines};
use x402_facilitator::{Facilitator, settings};
use x402_keeper::context::Context;
use x402_paywall::config::{Asset, ChannelTerms, Config, Route, SettleMode};
use x402_paywall::facilitator::InProcess;
use x402_paywall::{PaywallLayer, Price};

use super::proxy::{Upstream, app};
use super::say;

/// What the agent paid: how many `exact` payments and their value, in token units, and what the keeper claimed
/// on its channel.
pub(crate) struct AgentPaid {
    pub(crate) count: usize,
    pub(crate) value: U256,
    pub(crate) channel_claimed: U256,
}

/// Requests the agent pays through its channel, and how many it sends at once.
const CHANNEL_REQUESTS: usize = 400;
const CHANNEL_CALLERS: usize = 8;

/// The token and people of the demo.
pub(crate) struct PaidDemo<'a> {
    pub(crate) engine: Arc<Context>,
    pub(crate) chain_id: u64,
    pub(crate) token: (Address, String, String),
    pub(crate) merchant: Address,
    pub(crate) agent: &'a PrivateKeySigner,
    /// The devnet's chain and keys (the agent opens its channel with them).
    pub(crate) demo: &'a Demo,
    /// Where the paid API (the proxy) listens.
    pub(crate) listen: SocketAddr,
}

async fn serve(app: axum::Router, listen: SocketAddr) -> eyre::Result<SocketAddr> {
    let listener =
        tokio::net::TcpListener::bind(listen).await.wrap_err_with(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    Ok(addr)
}

impl PaidDemo<'_> {
    /// Runs the paid API and the agent; returns what was paid, once every payment settled.
    pub(crate) async fn run(&self) -> eyre::Result<AgentPaid> {
        let api: axum::Router = axum::Router::new()
            .route(
                "/weather",
                get(|| async { axum::Json(serde_json::json!({"city": "Lisbon", "sky": "clear"})) }),
            )
            .route(
                "/news/{topic}",
                get(|topic: axum::extract::Path<String>| async move { format!("news on {}", topic.0) }),
            );
        let api_addr = serve(api, SocketAddr::from(([127, 0, 0, 1], 0))).await?;

        let settings = settings::FileSettings::default().resolve(None)?;
        let engine = Engine::new("local".to_owned(), self.engine.clone(), settings.verify_margin);
        let facilitator = Arc::new(Facilitator::new(Engines::new(vec![engine]), settings));
        let (token, name, version) = &self.token;
        let paywall = Config::default()
            .pay_to(self.merchant)
            .asset(Asset::token(&format!("eip155:{}", self.chain_id), *token, name, version, 6))
            .route(
                Route::new("GET /weather", Price::parse("$0.001")?)
                    .description("Weather, settled after serving"),
            )
            .route(Route::new("GET /news/:topic", Price::parse("$0.002")?).settle(SettleMode::Deferred))
            .channel(
                ChannelTerms::new(&format!("eip155:{}", self.chain_id), self.demo.contracts.payment_channel)
                    .minimums(900, 600),
            )
            .build()?;
        let layer = PaywallLayer::new(paywall, InProcess(facilitator));
        let metrics = layer.metrics();
        let upstream = Upstream::new(&format!("http://{api_addr}"), Duration::from_secs(10), 1 << 20)?;
        let proxy = format!("http://{}", serve(app(layer, upstream, None), self.listen).await?);
        say(format!(
            "paid API    {proxy} (x402 proxy in front of a demo API at http://{api_addr}): GET /weather $0.001, \
             GET /news/:topic $0.002 deferred; both also by channel voucher"
        ));

        let policy =
            Policy::default().allow_asset(self.chain_id, *token).max_per_request(Price::parse("$0.01")?);
        let client = Client::new(self.agent.clone())?.policy(policy);
        let mut paid = AgentPaid { count: 0, value: U256::ZERO, channel_claimed: U256::ZERO };
        for path in ["/weather", "/news/rates", "/weather", "/news/markets", "/weather"] {
            let outcome = client.send(client.http_client().get(format!("{proxy}{path}")).build()?).await?;
            let status = outcome.response.status().as_u16();
            let Some(payment) = outcome.payment else { bail!("GET {path} was not paid for (HTTP {status})") };
            let settled = match &payment.receipt {
                Some(receipt) if receipt.success => format!("settled in tx {}", receipt.transaction),
                Some(receipt) => format!("not settled: {}", receipt.error_reason.as_deref().unwrap_or("?")),
                None => "served first, settling in the background".to_owned(),
            };
            say(format!(
                "agent       GET {path}: HTTP {status}, paid {} units to {}; {settled}",
                payment.amount, payment.requirement.pay_to
            ));
            if status != 200 {
                bail!("GET {path} answered HTTP {status}");
            }
            paid.count += 1;
            paid.value += payment.amount;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while metrics.deferred_pending() > 0 {
            if tokio::time::Instant::now() > deadline {
                bail!("deferred payments still unsettled after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        say(format!(
            "agent       {} paid requests for {} units; the deferred ones settled since",
            paid.count, paid.value
        ));
        paid.channel_claimed = self.pay_by_channel(&proxy).await?;
        say(format!(
            "try         X402_PRIVATE_KEY=<anvil key 1..6> x402 pay {proxy}/weather --allow-asset {}:{token}",
            self.chain_id
        ));
        say(format!(
            "            x402 channel open {proxy}/weather --deposit '$5' --rpc-url <RPC>, then x402 pay ... --channel <id>"
        ));
        Ok(paid)
    }

    /// The agent opens a channel to the merchant and pays [`CHANNEL_REQUESTS`] requests with vouchers, then
    /// starts a close; returns what the keeper claimed for the merchant.
    async fn pay_by_channel(&self, proxy: &str) -> eyre::Result<U256> {
        let (token, ..) = &self.token;
        let deposit = U256::from(5_000_000u64);
        let channels = self.demo.contracts.payment_channel;
        let agent = self.agent.address();
        let id = self.demo.open_channel_for(agent, self.merchant, deposit, 900, 86_400).await?;
        say(format!("agent       opened channel {id}: $5 deposit to the merchant, 900 s challenge period"));
        let channel = Channel::new(self.chain_id, channels, id, self.merchant, *token, deposit, U256::ZERO);
        let policy =
            Policy::default().allow_asset(self.chain_id, *token).max_per_request(Price::parse("$0.01")?);
        let client = Arc::new(Client::new(self.agent.clone())?.policy(policy).channel(channel));
        let url = format!("{proxy}/weather");
        let started = Instant::now();
        let mut callers = tokio::task::JoinSet::new();
        for caller in 0..CHANNEL_CALLERS {
            let (client, url) = (Arc::clone(&client), url.clone());
            callers.spawn(async move {
                let mut paid = 0usize;
                for _ in (caller..CHANNEL_REQUESTS).step_by(CHANNEL_CALLERS) {
                    let outcome = client.send(client.http_client().get(&url).build()?).await?;
                    let by_voucher = outcome.payment.as_ref().is_some_and(|p| p.channel.is_some());
                    if outcome.response.status() != 200 || !by_voucher {
                        bail!("GET /weather by voucher answered HTTP {}", outcome.response.status());
                    }
                    paid += 1;
                }
                Ok::<usize, eyre::Report>(paid)
            });
        }
        let mut paid = 0;
        while let Some(done) = callers.join_next().await {
            paid += done??;
        }
        let took = started.elapsed();
        let taken = client.channels()[0].owed();
        say(format!(
            "agent       {paid} requests paid by voucher in {:.2} s ({:.0} req/s, {CHANNEL_CALLERS} at once): {taken} units \
             taken, nothing on chain per request",
            took.as_secs_f64(),
            paid as f64 / took.as_secs_f64()
        ));
        // The close makes the keeper claim the channel's highest voucher at once.
        self.demo.start_close(agent, id).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let claimed = loop {
            let (_, claimed) = self.demo.channel(id).await?;
            if claimed >= taken {
                break claimed;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the keeper did not claim the agent's channel within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let filter = Filter::new()
            .address(channels)
            .event_signature(PaymentChannel::ChannelClaimed::SIGNATURE_HASH)
            .topic1(id)
            .from_block(0);
        let logs = self.demo.provider.get_logs(&filter).await?;
        let mut gas = 0u64;
        for tx in logs.iter().filter_map(|log| log.transaction_hash) {
            if let Some(receipt) = self.demo.provider.get_transaction_receipt(tx).await? {
                gas += receipt.gas_used;
            }
        }
        say(format!(
            "keeper      claimed {claimed} units on the agent's channel once its close started: {gas} gas, {:.0} gas \
             per paid request",
            gas as f64 / paid.max(1) as f64
        ));
        Ok(claimed)
    }
}
