//! The devnet's paid API: a demo API behind the proxy of `x402 proxy` (in this process, with the facilitator on
//! the devnet's keeper engine), and an agent paying it with the x402 client, printing what it paid and what
//! settled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use axum::routing::get;
use eyre::{WrapErr, bail};
use x402_client::{Client, Policy};
use x402_facilitator::engine::{Engine, Engines};
use x402_facilitator::{Facilitator, settings};
use x402_keeper::context::Context;
use x402_paywall::config::{Asset, Config, Route, SettleMode};
use x402_paywall::facilitator::InProcess;
use x402_paywall::{PaywallLayer, Price};

use super::proxy::{Upstream, app};
use super::say;

/// What the agent paid: how many payments and their value, in token units.
pub(crate) struct AgentPaid {
    pub(crate) count: usize,
    pub(crate) value: U256,
}

/// The token and people of the demo.
pub(crate) struct PaidDemo<'a> {
    pub(crate) engine: Arc<Context>,
    pub(crate) chain_id: u64,
    pub(crate) token: (Address, String, String),
    pub(crate) merchant: Address,
    pub(crate) agent: &'a PrivateKeySigner,
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
            .build()?;
        let layer = PaywallLayer::new(paywall, InProcess(facilitator));
        let metrics = layer.metrics();
        let upstream = Upstream::new(&format!("http://{api_addr}"), Duration::from_secs(10), 1 << 20)?;
        let proxy = format!("http://{}", serve(app(layer, upstream, None), self.listen).await?);
        say(format!(
            "paid API    {proxy} (x402 proxy in front of a demo API at http://{api_addr}): GET /weather $0.001, \
             GET /news/:topic $0.002 deferred"
        ));

        let policy =
            Policy::default().allow_asset(self.chain_id, *token).max_per_request(Price::parse("$0.01")?);
        let client = Client::new(self.agent.clone())?.policy(policy);
        let mut paid = AgentPaid { count: 0, value: U256::ZERO };
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
        say(format!(
            "try         X402_PRIVATE_KEY=<anvil key 1..6> x402 pay {proxy}/weather --allow-asset {}:{token}",
            self.chain_id
        ));
        Ok(paid)
    }
}
