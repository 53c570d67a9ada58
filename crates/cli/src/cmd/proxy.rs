//! `x402 proxy`: the paywall in front of any HTTP API, no code change. Requests to priced routes are answered 402
//! until paid; paid and unpriced ones are forwarded to the upstream with their bodies streamed. An upstream error
//! or timeout is answered 502/504 and, on routes settled after the handler, not charged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use eyre::WrapErr;
use x402_keeper::config::ConnectionLimits;
use x402_keeper::ratelimit::{Rate, RateLimiter};
use x402_keeper::server::{self, Connections};
use x402_paywall::facilitator::HttpFacilitator;
use x402_paywall::metrics::Metrics;
use x402_paywall::{Config, PaywallLayer};

use super::keeper::shutdown_signal;
use crate::logging::{self, LogFormat};

/// The header the upstream learns the verified payer from; a client's own is removed.
pub(crate) const PAYER_HEADER: &str = "x402-payer";

/// Put a paywall with prices per route in front of an HTTP API.
#[derive(Debug, clap::Args)]
pub(crate) struct ProxyArgs {
    /// The API to forward to (`http://127.0.0.1:3000`, or with a base path).
    #[arg(long, env = "X402_PROXY_UPSTREAM")]
    upstream: String,
    /// The prices: a TOML file with `pay_to`, `[[asset]]` and `[[route]]` (see docs/server.md).
    #[arg(long, env = "X402_PROXY_CONFIG")]
    config: PathBuf,
    /// The facilitator that verifies and settles (this project's `x402 facilitator`, or any standard one). Its
    /// API key, if it needs one, comes from X402_FACILITATOR_API_KEY.
    #[arg(long, env = "X402_FACILITATOR_URL", default_value = "http://127.0.0.1:8403")]
    facilitator: String,
    /// Address to listen on.
    #[arg(long, env = "X402_PROXY_LISTEN", default_value = "127.0.0.1:8402")]
    listen: SocketAddr,
    /// The URL clients reach the proxy at, which names the resources paid for [default: http:// and the Host].
    #[arg(long, env = "X402_PROXY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds the upstream may take to answer (status and headers), and between two reads of its body.
    #[arg(long, default_value_t = 60)]
    upstream_timeout: u64,
    /// The largest request body forwarded, in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    max_body_bytes: u64,
    /// Unpaid requests to priced routes (each answered 402) one client may send per second; past it, 429.
    #[arg(long, default_value_t = 20)]
    offer_rate_per_sec: u32,
    /// How many such requests one client may send at once.
    #[arg(long, default_value_t = 40)]
    offer_rate_burst: u32,
    /// Open connections in total.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Open connections from one client address.
    #[arg(long, default_value_t = 256)]
    max_connections_per_client: usize,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "X402_LOG_FORMAT")]
    log_format: LogFormat,
}

/// How long a stopping proxy waits for deferred settlements.
const DRAIN_DEFERRED: Duration = Duration::from_secs(30);

pub(crate) struct Upstream {
    client: reqwest::Client,
    base: String,
    max_body_bytes: u64,
    /// For the upstream's status and headers; its body has the client's read timeout per read.
    timeout: Duration,
}

/// Headers that belong to one connection, not to the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Upstream {
    /// The API at `base`, given `timeout` for its headers and for each read of its body, sent request bodies of
    /// at most `max_body_bytes`.
    pub(crate) fn new(base: &str, timeout: Duration, max_body_bytes: u64) -> eyre::Result<Arc<Self>> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A paid answer's body may be held while its payment settles: a timeout per read, not for the whole.
            .read_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Arc::new(Self { client, base: base.trim_end_matches('/').to_owned(), max_body_bytes, timeout }))
    }
}

/// The proxy's routes: its own `/health`, `/ready` and `/metrics`, everything else forwarded to `upstream`, all
/// behind `layer`; unpaid requests to priced routes limited per client by `offers`, if given.
pub(crate) fn app(layer: PaywallLayer, upstream: Arc<Upstream>, offers: Option<OfferLimit>) -> Router {
    let app =
        monitoring::<Arc<Upstream>>(layer.metrics()).fallback(forward).with_state(upstream).layer(layer);
    match offers {
        Some(offers) => app.layer(axum::middleware::from_fn_with_state(Arc::new(offers), limit_offers)),
        None => app,
    }
}

/// A rate per client for the requests the paywall answers 402 (priced, without a payment): answering them is
/// cheap, but a client asking for offers in a loop is not a customer.
pub(crate) struct OfferLimit {
    paywall: x402_paywall::Paywall,
    limiter: std::sync::Mutex<RateLimiter>,
}

impl OfferLimit {
    pub(crate) fn new(paywall: x402_paywall::Paywall, per_sec: u32, burst: u32) -> Self {
        let client = Rate { per_sec: per_sec.max(1), burst: burst.max(1) };
        // No limit across clients here: each is held to its own rate.
        let all = Rate { per_sec: u32::MAX, burst: u32::MAX };
        let limiter = RateLimiter::new(client, all, 100_000, std::time::Instant::now());
        Self { paywall, limiter: std::sync::Mutex::new(limiter) }
    }
}

async fn limit_offers(
    State(offers): State<Arc<OfferLimit>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let paying = [header::HeaderName::from_static("payment-signature"), HeaderName::from_static("x-payment")]
        .iter()
        .any(|name| request.headers().contains_key(name));
    let priced = offers.paywall.route_for(request.method(), request.uri().path()).is_some();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let (false, true, Some(peer)) = (paying, priced, peer) {
        let checked = offers
            .limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(peer, std::time::Instant::now());
        if let Err(refusal) = checked {
            let mut response =
                error(StatusCode::TOO_MANY_REQUESTS, "too many requests for a price; pay or slow down");
            if let Ok(value) = HeaderValue::from_str(&refusal.retry_after_secs().to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    }
    next.run(request).await
}

/// Request headers a client may not pass on: the payment itself, the payer the proxy vouches for, method
/// overrides (an upstream honouring them would serve a priced method for an unpriced one's price), and forwarding
/// headers, which the proxy sets itself.
const FROM_CLIENT_REMOVED: [&str; 11] = [
    "host",
    "payment-signature",
    "x-payment",
    PAYER_HEADER,
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
];

/// `headers` without the hop-by-hop ones, those `Connection` names, and `remove`; names are compared with `_` as
/// `-` (CGI-style upstreams read both alike).
fn end_to_end(headers: &HeaderMap, remove: &[&str]) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|n| n.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.as_str().replace('_', "-");
        let lower = lower.as_str();
        if HOP_BY_HOP.contains(&lower) || named.iter().any(|n| n == lower) || remove.contains(&lower) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

async fn forward(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let length = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|length| length > upstream.max_body_bytes) {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "the request body is larger than the proxy forwards");
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", upstream.base);
    let mut headers = end_to_end(&parts.headers, &FROM_CLIENT_REMOVED);
    if let Some(paid) = parts.extensions.get::<x402_paywall::Paid>()
        && let Ok(payer) = HeaderValue::from_str(&paid.payer)
    {
        headers.insert(HeaderName::from_static(PAYER_HEADER), payer);
    }
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>()
        && let Ok(ip) = HeaderValue::from_str(&peer.ip().to_string())
    {
        headers.insert(HeaderName::from_static("x-forwarded-for"), ip);
    }
    if let Some(host) = parts.headers.get(header::HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    let mut call = upstream.client.request(parts.method, url).headers(headers);
    if http_body::Body::size_hint(&body).exact() != Some(0) {
        let limited = http_body_util::Limited::new(
            body,
            usize::try_from(upstream.max_body_bytes).unwrap_or(usize::MAX),
        );
        call = call.body(reqwest::Body::wrap_stream(Body::new(limited).into_data_stream()));
    }
    let timed_out = || {
        tracing::warn!("the upstream did not answer in time");
        error(StatusCode::GATEWAY_TIMEOUT, "the upstream did not answer in time")
    };
    match tokio::time::timeout(upstream.timeout, call.send()).await {
        Ok(Ok(answer)) => {
            let status = answer.status();
            let headers = end_to_end(answer.headers(), &[]);
            let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(_) => timed_out(),
        Ok(Err(err)) if err.is_timeout() => timed_out(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "the upstream could not be reached");
            error(StatusCode::BAD_GATEWAY, "the upstream could not be reached")
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

fn monitoring<T: Clone + Send + Sync + 'static>(metrics: Arc<Metrics>) -> Router<T> {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(|| async { "ready" }))
        .route("/metrics", get(move || async move { metrics.render() }))
}

impl ProxyArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        logging::init(self.log_format, "info");
        let paywall = Config::from_file(&self.config)
            .and_then(Config::build)
            .wrap_err_with(|| format!("invalid prices {}", self.config.display()))?;
        let base = self.upstream.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base).wrap_err_with(|| format!("--upstream {base:?} is not a URL"))?;
        let mut facilitator = HttpFacilitator::new(&self.facilitator)?;
        if let Ok(key) = std::env::var("X402_FACILITATOR_API_KEY") {
            facilitator = facilitator.api_key(key);
        }
        let offers = OfferLimit::new(paywall.clone(), self.offer_rate_per_sec, self.offer_rate_burst);
        let mut layer = PaywallLayer::new(paywall, facilitator);
        if let Some(url) = &self.public_url {
            layer = layer.public_url(url);
        }
        let upstream = Upstream::new(&base, Duration::from_secs(self.upstream_timeout), self.max_body_bytes)?;
        let metrics = layer.metrics();
        let app = app(layer, upstream, Some(offers));
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max: self.max_connections,
            per_client: self.max_connections_per_client.min(self.max_connections),
        };
        let connections = Connections::new(limits, Vec::new());
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .wrap_err_with(|| format!("cannot listen on {}", self.listen))?;
        let shutdown = shutdown_signal()?;
        tracing::info!(addr = %listener.local_addr()?, upstream = %base, facilitator = %self.facilitator, "proxy listening");
        server::serve(
            listener,
            app,
            monitoring(metrics.clone()),
            connections,
            limits.header_timeout,
            shutdown,
        )
        .await;
        // Deferred settlements still running are waited for: each is with the facilitator already, and the
        // facilitator keeps it if this process goes, but their outcome is only logged here.
        let deadline = tokio::time::Instant::now() + DRAIN_DEFERRED;
        while metrics.deferred_pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if metrics.deferred_pending() > 0 {
            tracing::warn!(
                pending = metrics.deferred_pending(),
                "stopping with deferred settlements unfinished"
            );
        }
        tracing::info!("proxy stopped");
        Ok(ExitCode::SUCCESS)
    }
}
