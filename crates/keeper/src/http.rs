//! The keeper's HTTP API.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /payments` | queue an x402 `exact` payment (`{x402Version, paymentPayload, paymentRequirements}`) |
//! | `GET /payments/{id}` | a payment's status; `id` is `<token>:<payer>:<nonce>` |
//! | `POST /vouchers` | register a channel voucher `{channelId, amount, signature}` (ECDSA or ERC-1271) to claim before a close |
//! | `GET /subscriptions/{id}/executions` | the executions this keeper recorded for a subscription |
//! | `GET /metrics` | Prometheus metrics |
//! | `GET /health` | 200 while the tick loop is alive |
//! | `GET /ready` | 200 once in-flight transactions are resolved and the chain answers |
//!
//! Refusals are JSON with the x402 reason: `400 {"isValid": false, "invalidReason", "invalidMessage", "payer"}`.
//! Bodies above the limit get 413, a full queue or an exceeded rate (see [`crate::ratelimit`]) 429, an
//! unreachable chain 503. Nothing a client sends can stop the keeper.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use alloy::primitives::{B256, Bytes, U256};
use axum::Router;
use axum::body::Bytes as Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use x402_bindings::{ClaimOutcome, IPaymentChannel};

use crate::JobError;
use crate::daemon::Shared;
use crate::intake::{InvalidReason, OnchainError, check_onchain};
use crate::jobs::channels;
use crate::payload::PaymentRequest;
use crate::ratelimit::{self, Scope};
use crate::store::{Accepted, PaymentKey, PaymentRecord, PaymentStatus, VoucherPut, VoucherRecord};

type Reply = Response;

fn reply(status: StatusCode, body: Value) -> Reply {
    (status, axum::Json(body)).into_response()
}

/// 429 with `Retry-After` in seconds, also given in the body.
fn too_many(message: &str, retry_after_secs: u64) -> Reply {
    let body = json!({"error": message, "retryAfterSecs": retry_after_secs});
    (StatusCode::TOO_MANY_REQUESTS, [(RETRY_AFTER, retry_after_secs.to_string())], axum::Json(body))
        .into_response()
}

fn invalid(reason: &str, message: impl std::fmt::Display, payer: Option<&str>) -> Reply {
    reply(
        StatusCode::BAD_REQUEST,
        json!({"isValid": false, "invalidReason": reason, "invalidMessage": message.to_string(), "payer": payer}),
    )
}

fn unavailable(message: impl std::fmt::Display) -> Reply {
    reply(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"isValid": false, "invalidReason": "unexpected_verify_error", "invalidMessage": message.to_string()}),
    )
}

fn count(shared: &Shared, result: &str) {
    shared.metrics.add("x402_keeper_intake_requests_total", &[("result", result)], 1.0);
}

/// Middleware of the intake routes: refuses a request over its client's or the keeper's rate with 429 and a
/// `Retry-After` header, before the body is read.
async fn rate_limit(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    // Without connection info (a router served without it) every request counts as one unknown client.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |info| info.0.ip());
    let forwarded = request.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let client = ratelimit::client_ip(peer, forwarded, &shared.settings.trusted_proxies);
    // The limiter's state stays consistent whatever a panicking holder did, so a poisoned lock is used as is.
    let verdict = shared.limiter.lock().unwrap_or_else(PoisonError::into_inner).check(client, Instant::now());
    let Err(refusal) = verdict else {
        return next.run(request).await;
    };
    let (result, message) = match refusal.scope {
        Scope::Client => ("rate_limited", "rate limit exceeded for this client; retry later"),
        Scope::Keeper => ("overloaded", "the keeper is at its intake rate limit; retry later"),
    };
    count(&shared, result);
    too_many(message, refusal.retry_after_secs())
}

/// A payment's record as the API shows it.
pub fn payment_view(record: &PaymentRecord) -> Value {
    json!({
        "id": record.key.id(),
        "status": record.status,
        "token": record.key.token,
        "payer": record.key.payer,
        "nonce": record.key.nonce,
        "to": record.to,
        "value": record.value.to_string(),
        "validBefore": record.valid_before.to_string(),
        "transaction": record.tx_hash,
        "block": record.block,
        "reason": record.reason,
    })
}

async fn post_payment(State(shared): State<Arc<Shared>>, body: Body) -> Reply {
    if shared.is_stopping() {
        return unavailable("the keeper is shutting down");
    }
    let request: PaymentRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            count(&shared, "invalid");
            return invalid(
                InvalidReason::Payload.as_str(),
                format!("malformed payment request: {err}"),
                None,
            );
        }
    };
    let payer = request.payment_payload.payload.authorization.from.to_string();
    let payer = Some(payer.as_str());
    let now = match shared.chain_time().await {
        Ok(now) => now,
        Err(err) => {
            count(&shared, "unavailable");
            return unavailable(err);
        }
    };
    let checked = match shared.verifier.check(&request, now) {
        Ok(checked) => checked,
        Err(reason) => {
            count(&shared, "invalid");
            return invalid(reason.as_str(), "refused by the keeper's checks", payer);
        }
    };
    let key = PaymentKey {
        token: checked.token,
        payer: checked.authorization.from,
        nonce: checked.authorization.nonce,
    };
    // A payment accepted before is answered with its status, without asking the chain (its nonce may be used by
    // now because the keeper settled it).
    match shared.store.payment(&key) {
        Ok(Some(existing)) => {
            count(&shared, "duplicate");
            return reply(StatusCode::OK, payment_view(&existing));
        }
        Ok(None) => {}
        Err(err) => return unavailable(err),
    }
    match shared.store.payer_refused(&key.payer) {
        Ok(false) => {}
        Ok(true) => {
            count(&shared, "invalid");
            return invalid(
                InvalidReason::Signature.as_str(),
                "a payment from this wallet passed simulation and was refused on chain; the keeper takes no more",
                payer,
            );
        }
        Err(err) => return unavailable(err),
    }
    match check_onchain(&shared.provider, &checked).await {
        Ok(()) => {}
        Err(OnchainError::Invalid(reason)) => {
            count(&shared, "invalid");
            return invalid(reason.as_str(), "refused by the chain's state", payer);
        }
        Err(OnchainError::Rpc(err)) => {
            count(&shared, "unavailable");
            return unavailable(err);
        }
    }
    let a = &checked.authorization;
    let record = PaymentRecord {
        key,
        to: a.to,
        value: a.value,
        valid_after: a.validAfter,
        valid_before: a.validBefore,
        signature: checked.signature.clone(),
        status: PaymentStatus::Queued,
        tx_hash: None,
        block: None,
        reason: None,
        seq: 0,
        attempts: 0,
        wallet: checked.needs_wallet_check,
    };
    match shared.store.accept_payment(record, shared.settings.max_queue) {
        Ok(Accepted::Queued { record, queued }) => {
            count(&shared, "queued");
            shared.metrics.set("x402_keeper_queue_depth", &[], queued as f64);
            if queued >= shared.settings.payments_batch as u64 {
                shared.wake.notify_one();
            }
            reply(StatusCode::ACCEPTED, payment_view(&record))
        }
        Ok(Accepted::Duplicate(record)) => {
            count(&shared, "duplicate");
            reply(StatusCode::OK, payment_view(&record))
        }
        Ok(Accepted::QueueFull) => {
            count(&shared, "queue_full");
            // The queue drains when the next tick settles a batch.
            too_many("the settlement queue is full; retry later", shared.settings.interval.as_secs().max(1))
        }
        Err(err) => unavailable(err),
    }
}

async fn get_payment(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Reply {
    let Some(key) = PaymentKey::parse(&id) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "payment id must be <token>:<payer>:<nonce> in hex"}),
        );
    };
    match shared.store.payment(&key) {
        Ok(Some(record)) => reply(StatusCode::OK, payment_view(&record)),
        Ok(None) => reply(StatusCode::NOT_FOUND, json!({"error": "no such payment"})),
        Err(err) => unavailable(err),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VoucherRequest {
    channel_id: B256,
    amount: String,
    signature: Bytes,
}

fn voucher_refused(reason: &str, message: impl std::fmt::Display) -> Reply {
    reply(StatusCode::BAD_REQUEST, json!({"stored": false, "reason": reason, "message": message.to_string()}))
}

fn voucher_unavailable(message: impl std::fmt::Display) -> Reply {
    let body = json!({"stored": false, "reason": "unavailable", "message": message.to_string()});
    reply(StatusCode::SERVICE_UNAVAILABLE, body)
}

async fn post_voucher(State(shared): State<Arc<Shared>>, body: Body) -> Reply {
    let request: VoucherRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return voucher_refused("invalid_payload", format!("malformed voucher: {err}")),
    };
    let Some(amount) = U256::from_str_radix(&request.amount, 10).ok().filter(|a| !a.is_zero()) else {
        return voucher_refused("invalid_payload", "amount must be a positive decimal integer");
    };
    // Registered only if a claim would pay it now: the contract's own checks, simulated.
    let claim = IPaymentChannel::VoucherClaim {
        channelId: request.channel_id,
        amount,
        signature: request.signature.clone(),
    };
    match channels::claim_outcomes(&shared, std::slice::from_ref(&claim)).await {
        Ok(outcomes) if outcomes.as_slice() == [channels::CLAIMED] => {}
        Ok(outcomes) if outcomes.len() == 1 => {
            let (reason, message) = channels::refusal(outcomes[0]);
            if outcomes[0] == ClaimOutcome::Unauthorized as u8 {
                let message =
                    format!("{message}: it must call setClaimOperator({}, true) first", shared.keeper);
                return voucher_refused(reason, message);
            }
            return voucher_refused(reason, message);
        }
        Ok(outcomes) => {
            return voucher_unavailable(format!(
                "claimBatch answered {} outcomes for one voucher",
                outcomes.len()
            ));
        }
        Err(JobError::Reverted(message)) => return voucher_refused("claim_simulation_reverted", message),
        Err(err) => return voucher_unavailable(err),
    }
    let record = VoucherRecord { channel: request.channel_id, amount, signature: request.signature };
    let (status, stored, message) = match shared.store.put_voucher(&record) {
        Ok(VoucherPut::Stored) => {
            (StatusCode::ACCEPTED, true, "the keeper will claim it if the payer starts a close")
        }
        Ok(VoucherPut::NotHigher) => {
            (StatusCode::OK, false, "a voucher for at least this amount is registered already")
        }
        Ok(VoucherPut::Refused) => {
            return voucher_refused(
                "channel_refused",
                "a claim on this channel was refused on chain although its simulation passed; it takes no more vouchers",
            );
        }
        Err(err) => return voucher_unavailable(err),
    };
    reply(
        status,
        json!({"stored": stored, "channelId": request.channel_id, "amount": amount.to_string(), "message": message}),
    )
}

async fn get_executions(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Reply {
    let Ok(id) = U256::from_str_radix(&id, 10) else {
        return reply(StatusCode::BAD_REQUEST, json!({"error": "subscription id must be a decimal integer"}));
    };
    match shared.store.executions(id) {
        Ok(records) => reply(StatusCode::OK, json!(records)),
        Err(err) => unavailable(err),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    ([("content-type", "text/plain; version=0.0.4")], shared.metrics.render()).into_response()
}

async fn health(State(shared): State<Arc<Shared>>) -> Reply {
    let last = shared.last_tick.load(Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    // Alive until three intervals (and at least a minute, for long transactions) pass without a tick.
    let allowance = (shared.settings.interval.as_secs() * 3).max(60);
    if last == 0 || now.saturating_sub(last) <= allowance {
        reply(StatusCode::OK, json!({"status": "ok", "lastTick": last}))
    } else {
        reply(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "stalled", "lastTick": last}))
    }
}

async fn ready(State(shared): State<Arc<Shared>>) -> Reply {
    if shared.ready.load(Ordering::Relaxed) && !shared.is_stopping() {
        reply(StatusCode::OK, json!({"status": "ready"}))
    } else {
        reply(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "not ready"}))
    }
}

/// The API's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.settings.max_body_bytes;
    Router::new()
        .route("/payments", post(post_payment))
        .route("/vouchers", post(post_voucher))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), rate_limit))
        .route("/payments/{id}", get(get_payment))
        .route("/subscriptions/{id}/executions", get(get_executions))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

/// Serves the API on `listener` until `shutdown` fires.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = router(shared);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::error!(error = %err, "HTTP server failed");
    }
}
