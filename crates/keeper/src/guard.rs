//! What the project's HTTP APIs (the keeper's, a facilitator's) put in front of their handlers that take a body:
//! the rate limits (per client and in all, see [`crate::ratelimit`]) before the body is read, then the whole body
//! read within its deadline and size limit, so a handler never waits on a slow client.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ratelimit::{self, Network, RateLimiter, Scope};

/// Counts a refusal of the guard: `rate_limited` (the client's limit) or `overloaded` (the service's).
pub type Count = Box<dyn Fn(&'static str) + Send + Sync>;

/// The limits of one API.
pub struct Guard {
    limiter: Mutex<RateLimiter>,
    trusted_proxies: Vec<Network>,
    max_body_bytes: usize,
    body_timeout: Duration,
    /// What the refusals call the service ("the keeper", "the facilitator").
    service: &'static str,
    count: Count,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("service", &self.service).finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard with `limiter`, trusting `trusted_proxies`' `X-Forwarded-For`, taking bodies up to `max_body_bytes`
    /// sent within `body_timeout`; `count` is told each rate refusal.
    pub fn new(
        limiter: RateLimiter,
        trusted_proxies: Vec<Network>,
        max_body_bytes: usize,
        body_timeout: Duration,
        service: &'static str,
        count: Count,
    ) -> Self {
        Self { limiter: Mutex::new(limiter), trusted_proxies, max_body_bytes, body_timeout, service, count }
    }

    /// The body limit.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}

/// A JSON error answer, `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

/// 429 with `Retry-After` in seconds, also given in the body.
pub fn too_many(message: &str, retry_after_secs: u64) -> Response {
    let body = json!({"error": message, "retryAfterSecs": retry_after_secs});
    (StatusCode::TOO_MANY_REQUESTS, [(RETRY_AFTER, retry_after_secs.to_string())], axum::Json(body))
        .into_response()
}

/// Middleware: refuses a request over its client's or the service's rate with 429 and a `Retry-After` header,
/// before the body is read.
pub async fn rate_limit(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    // Without connection info (a router served without it) every request counts as one unknown client.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |info| info.0.ip());
    let forwarded = request.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let client = ratelimit::client_ip(peer, forwarded, &guard.trusted_proxies);
    // The limiter's state stays consistent whatever a panicking holder did, so a poisoned lock is used as is.
    let verdict = guard.limiter.lock().unwrap_or_else(PoisonError::into_inner).check(client, Instant::now());
    let Err(refusal) = verdict else {
        return next.run(request).await;
    };
    let (result, message) = match refusal.scope {
        Scope::Client => ("rate_limited", "rate limit exceeded for this client; retry later".to_owned()),
        Scope::Keeper => {
            ("overloaded", format!("{} is at its intake rate limit; retry later", guard.service))
        }
    };
    (guard.count)(result);
    too_many(&message, refusal.retry_after_secs())
}

/// Middleware, after [`rate_limit`]: reads the whole body within the body deadline and the size limit, answering
/// 408 (and closing the connection) or 413 otherwise.
pub async fn buffer_body(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let limit = guard.max_body_bytes;
    let too_large =
        || error(StatusCode::PAYLOAD_TOO_LARGE, &format!("the body is larger than {limit} bytes"));
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let deadline = guard.body_timeout;
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Ok(Err(err)) if is_length_limit(&err) => too_large(),
        Ok(Err(err)) => error(StatusCode::BAD_REQUEST, &format!("cannot read the body: {err}")),
        Err(_) => {
            let message = format!("the body was not sent within {} s", deadline.as_secs());
            let mut response = error(StatusCode::REQUEST_TIMEOUT, &message);
            response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The answer to an unknown route: 404 as JSON.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}

/// The answer to a known route with another method: 405 as JSON.
pub async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "this route does not take that method")
}
