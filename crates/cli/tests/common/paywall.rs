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
    Asset::token(&format!("eip155:{}", net.demo.chain_id), token.address, &token.name, &token.version, 6)
}

/// The app's prices: `GET /weather` 1500 units, `POST /report` $0.01 settled before, `GET /broken` 700 units.
pub fn app_config(net: &Net) -> Config {
    Config::default()
        .pay_to(net.keys[MERCHANT].address())
        .asset(demo_asset(net))
        .route(
            Route::new("GET /weather", Price::parse(&WEATHER_PRICE.to_string()).unwrap())
                .description("Weather"),
        )
        .route(Route::new("POST /report", Price::parse("$0.01").unwrap()).settle(SettleMode::Before))
        .route(Route::new("GET /broken", Price::parse("700").unwrap()))
}

impl App {
    pub async fn start(net: &Net, facilitator: impl Facilitator) -> Self {
        Self::start_config(app_config(net), facilitator).await
    }

    /// The app priced by `config` (which must price its routes).
    pub async fn start_config(config: Config, facilitator: impl Facilitator) -> Self {
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

/// An upstream API for the proxy: any path but these answers the method, path, body and the `x402-payer` header it got;
/// `/broken` answers 500; `/stream` a 1 MiB body in chunks. `hits` counts its requests.
pub struct Upstream {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app: axum::Router = axum::Router::new()
            .fallback(
                |method: axum::http::Method,
                 uri: axum::http::Uri,
                 headers: axum::http::HeaderMap,
                 body: String| async move {
                    let header =
                        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    axum::Json(serde_json::json!({
                        "method": method.as_str(), "path": uri.to_string(), "body": body,
                        "payer": header("x402-payer"), "payment": header("payment-signature"),
                        "forwardedFor": header("x-forwarded-for"),
                    }))
                },
            )
            .route(
                "/broken",
                get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "upstream broke") }),
            )
            .route("/stream", get(|| async { "x".repeat(1 << 20) }))
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(request)
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, hits, task }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An `x402 proxy` process in front of `upstream`, priced by `prices` (TOML), settling through `facilitator`.
pub struct ProxyProc {
    pub child: std::process::Child,
    pub url: String,
    pub log: std::path::PathBuf,
}

impl ProxyProc {
    pub async fn start(net: &Net, upstream: &str, facilitator: &str, prices: &str) -> Self {
        Self::start_with(net, upstream, facilitator, prices, &[]).await
    }

    pub async fn start_with(
        net: &Net,
        upstream: &str,
        facilitator: &str,
        prices: &str,
        extra: &[&str],
    ) -> Self {
        let config = net.scratch.dir().join("prices.toml");
        std::fs::write(&config, prices).unwrap();
        let listen = format!("127.0.0.1:{}", super::keeper::free_port());
        let log = net.scratch.dir().join("proxy.log");
        let mut args = vec![
            "proxy",
            "--upstream",
            upstream,
            "--config",
            config.to_str().unwrap(),
            "--facilitator",
            facilitator,
            "--listen",
            &listen,
            "--log-format",
            "json",
            "--upstream-timeout",
            "5",
        ];
        args.extend(extra);
        let child = super::x402(&args, None)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut proxy = Self { child, url: format!("http://{listen}"), log };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/health", proxy.url)).await
                && r.status().is_success()
            {
                return proxy;
            }
            if let Some(status) = proxy.child.try_wait().unwrap() {
                panic!(
                    "the proxy exited with {status}: {}",
                    std::fs::read_to_string(&proxy.log).unwrap_or_default()
                );
            }
            assert!(std::time::Instant::now() < deadline, "the proxy did not start");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ProxyProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {} ---\n{}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// Prices for the demo token on `net`: `/echo/*` at 2000 units settled after, `POST /echo/before/*` before,
/// `/broken` and `/stream` at 1000.
pub fn proxy_prices(net: &Net) -> String {
    let routes = r#"
[[route]]
path = "POST /echo/before/*"
price = "2000"
settle = "before"
[[route]]
path = "/echo/*"
price = "2000"
description = "Echo"
[[route]]
path = "/broken"
price = "1000"
[[route]]
path = "/stream"
price = "1000"
"#;
    format!("{}{routes}", prices_head(net))
}

/// The top of a prices file: the demo merchant as `pay_to` and the demo token as the one `[[asset]]`.
pub fn prices_head(net: &Net) -> String {
    let token = &net.demo.token;
    format!(
        "pay_to = \"{}\"\n[[asset]]\nnetwork = \"eip155:{}\"\naddress = \"{}\"\nname = \"{}\"\nversion = \"{}\"\ndecimals = 6\n",
        net.keys[MERCHANT].address(),
        net.demo.chain_id,
        token.address,
        token.name,
        token.version,
    )
}

/// `x402 pay` with `key`, allowed the demo token; its exit code, stdout and stderr.
pub fn pay(net: &Net, key: &PrivateKeySigner, args: &[&str]) -> (i32, String, String) {
    let asset = format!("{}:{}", net.demo.chain_id, net.demo.token.address);
    let mut all = vec!["pay", "--allow-asset", &asset];
    all.extend(args);
    let output =
        super::x402(&all, Some(&format!("0x{}", alloy::hex::encode(key.to_bytes())))).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
