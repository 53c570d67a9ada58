//! An x402 facilitator on the keeper's engine, for the official resource servers (`@x402/express` and others
//! with `HTTPFacilitatorClient`) to point at: `/verify`, `/settle` and `/supported` for x402 v1 and v2, `exact` on
//! EVM (EIP-3009).
//!
//! - [`engine`]: one network's keeper engine (signer, store, batches) and the facilitator's checks for it;
//! - [`verify`]: the checks, in the reference facilitator's order, and `/verify`; [`holds`]: verified payments
//!   held against their payer's balance until settled or expired;
//! - [`settle`]: recorded before anything is sent, settled once in a shared `settleBatch`;
//! - [`channels`]: the `channel` scheme's vouchers, taken without the chain and stored for the keeper to claim;
//! - [`service`]: the answers and metrics; [`http`]: the routes; [`settings`]: the `[facilitator]` table.
//!
//! `docs/facilitator.md` shows how to run it and point an official server at it.

pub mod channels;
pub mod engine;
pub mod holds;
pub mod http;
pub mod service;
pub mod settings;
pub mod settle;
pub mod verify;

use std::sync::Arc;

use tokio::sync::watch;
use x402_keeper::config::Settings as EngineSettings;
use x402_keeper::guard::Guard;
use x402_keeper::ratelimit::RateLimiter;
use x402_keeper::server::{self, Connections};

pub use service::Facilitator;

/// Serves `facilitator` on `listener` until `shutdown` fires, with the rate, body and connection limits of
/// `limits` (the `[keeper]` table the engines share).
pub async fn serve(
    listener: tokio::net::TcpListener,
    facilitator: Arc<Facilitator>,
    limits: &EngineSettings,
    shutdown: watch::Receiver<bool>,
) {
    let limiter = RateLimiter::new(
        limits.client_rate,
        limits.global_rate,
        limits.rate_limit_clients,
        std::time::Instant::now(),
    );
    let counted = Arc::clone(&facilitator);
    let guard = Guard::new(
        limiter,
        limits.trusted_proxies.clone(),
        limits.max_body_bytes,
        limits.connections.body_timeout,
        "the facilitator",
        Box::new(move |result| counted.count_refused("any", result)),
    );
    let connections = Connections::new(limits.connections, limits.trusted_proxies.clone());
    let app = http::router(Arc::clone(&facilitator), Arc::new(guard));
    let monitoring = http::monitoring_router(facilitator);
    server::serve(listener, app, monitoring, connections, limits.connections.header_timeout, shutdown).await;
}
