//! What the paywall's and the client's tests share: an axum app behind the paywall layer, priced in the demo
//! token, and a paying client for a demo key.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::signers::local::PrivateKeySigner;
use axum::routing::{get, post};
use x402_client::{Client, Policy};
use x402_paywall::config::{Asset, Config, Route, SettleMode};
use x402_paywall::facilitator::Facilitator;
use x402_paywall::{Paid, PaywallLayer, Price};

use super::keeper::{MERCHANT, Net};

/// An axum app on a free port: `GET /weather` (settled after), `POST /report` (settled before), `GET /broken`
/// (answers 500), `GET /free` (not priced). `served` counts the priced handlers' runs.
pub struct App {
    pub url: String,
    pub served: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

pub const WEATHER_PRICE: u64 = 1_500;

/// The demo token on `net` as a paywall asset.
pub fn demo_asset(net: &Net) -> Asset {
    let token = &net.demo.token;
    Asset::token(&format!("eip155:{}", net.demo.chain_id), token.address, &token.name, &token.version)
}

impl App {
    pub async fn start(net: &Net, facilitator: impl Facilitator) -> Self {
        let config = Config::default()
            .pay_to(net.keys[MERCHANT].address())
            .asset(demo_asset(net))
            .route(
                Route::new("GET /weather", Price::parse(&WEATHER_PRICE.to_string()).unwrap())
                    .description("Weather"),
            )
            .route(Route::new("POST /report", Price::parse("$0.01").unwrap()).settle(SettleMode::Before))
            .route(Route::new("GET /broken", Price::parse("700").unwrap()));
        let served = Arc::new(AtomicUsize::new(0));
        let count = |served: &Arc<AtomicUsize>| {
            let served = served.clone();
            move || {
                served.fetch_add(1, Ordering::SeqCst);
            }
        };
        let (weather, report, broken) = (count(&served), count(&served), count(&served));
        let app: axum::Router = axum::Router::new()
            .route(
                "/weather",
                get(move |paid: axum::Extension<Paid>| async move {
                    weather();
                    axum::Json(serde_json::json!({"weather": "sunny", "payer": paid.payer}))
                }),
            )
            .route(
                "/report",
                post(move |body: String| async move {
                    report();
                    format!("report on {body}")
                }),
            )
            .route(
                "/broken",
                get(move || async move {
                    broken();
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "broken")
                }),
            )
            .route("/free", get(|| async { "free" }))
            .layer(PaywallLayer::new(config.build().unwrap(), facilitator));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, served, task }
    }

    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client paying with `key`, allowed the demo token up to 1 token per request.
pub fn client(net: &Net, key: &PrivateKeySigner) -> Client<PrivateKeySigner> {
    let policy = Policy::default()
        .allow_asset(net.demo.chain_id, net.demo.token.address)
        .max_per_request(Price::parse("$1").unwrap());
    Client::new(key.clone()).unwrap().policy(policy).retries(2, std::time::Duration::from_millis(100))
}
