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
//! Every other answer is JSON too: bodies above the limit get 413, a body not sent in time 408, a full queue or
//! an exceeded rate (see [`crate::guard`]) 429, a chain that does not answer in time 503, an unknown route
//! 404 and a wrong method 405. Nothing a client sends can stop the keeper; [`crate::server`] bounds what a
//! client's connections can hold.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy::primitives::{B256, Bytes, U256};
use axum::Router;
use axum::body::Bytes as Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::context::Context;
use crate::guard::{self, Guard, error, too_many};
use crate::intake::{Checked, OnchainError, check_onchain, describe};
use crate::ratelimit::RateLimiter;
use crate::server::{self, Connections};
use crate::store::{Accepted, BalanceSeen, Durability, PaymentKey, PaymentRecord};
use crate::vouchers::{self, RegisterError, Registered};
use x402_protocol::Reason;
use x402_protocol::facilitator::PaymentRequest;

type Reply = Response;

fn reply(status: StatusCode, body: Value) -> Reply {
    (status, axum::Json(body)).into_response()
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

fn count(shared: &Context, result: &str) {
    shared.metrics.intake(result);
}

/// A payment's record as the API shows it (addresses checksummed).
pub fn payment_view(record: &PaymentRecord) -> Value {
    json!({
        "id": record.key.id(),
        "status": record.status,
        "token": record.key.token.to_string(),
        "payer": record.key.payer.to_string(),
        "nonce": record.key.nonce,
        "to": record.to.to_string(),
        "value": record.value.to_string(),
        "validBefore": record.valid_before.to_string(),
        "transaction": record.tx_hash,
        "block": record.block,
        "reason": record.reason,
    })
}

async fn post_payment(State(shared): State<Arc<Context>>, body: Body) -> Reply {
    queue_payment(&shared, &body).await
}

/// `POST /payments`: checks the payment in `body` and queues it; the answer as the route gives it.
pub async fn queue_payment(shared: &Context, body: &[u8]) -> Reply {
    take_payment(shared, body).await.unwrap_or_else(|refused| refused)
}

/// The intake's steps, in order; each `Err` is the answer that ends it.
async fn take_payment(shared: &Context, body: &[u8]) -> Result<Reply, Reply> {
    if let Some(cause) = shared.not_taking() {
        count(shared, "unavailable");
        return Err(unavailable(cause));
    }
    let request = parse_payment(shared, body)?;
    let payer = request.payment_payload.payload.authorization.from.to_string();
    let payer = Some(payer.as_str());
    // Everything the chain is asked about this payment shares one deadline.
    let deadline = tokio::time::Instant::now() + shared.settings.intake_timeout;
    let checked = check_offline(shared, &request, deadline, payer).await?;
    let key = checked.key();
    // A payment accepted before is answered with its status, without asking the chain (its nonce may be used by
    // now because the keeper settled it).
    if let Some(existing) = shared.store.payment(&key).map_err(unavailable)? {
        if existing.signature != checked.signature {
            return Err(nonce_taken(shared, payer));
        }
        count(shared, "duplicate");
        return Ok(reply(StatusCode::OK, payment_view(&existing)));
    }
    refuse_refused_payer(shared, &key, payer)?;
    let seen = balance_seen(shared, &checked, &key, deadline, payer).await?;
    Ok(accept(shared, checked.queued_record(), seen, payer))
}

/// Another authorization with the same nonce (the payer signed twice) was taken already: only one can settle.
fn nonce_taken(shared: &Context, payer: Option<&str>) -> Reply {
    count(shared, "invalid");
    let message = "another authorization with this nonce was taken already; only one of them can settle";
    invalid(Reason::NonceAlreadyUsed.as_str(), message, payer)
}

#[expect(clippy::result_large_err, reason = "the answer is built once per request and returned at once")]
fn parse_payment(shared: &Context, body: &[u8]) -> Result<PaymentRequest, Reply> {
    serde_json::from_slice(body).map_err(|err| {
        count(shared, "invalid");
        invalid(Reason::Payload.as_str(), format!("malformed payment request: {err}"), None)
    })
}

/// The checks that need no chain state but its time: signature, amounts, validity window, then the policy.
async fn check_offline(
    shared: &Context,
    request: &PaymentRequest,
    deadline: tokio::time::Instant,
    payer: Option<&str>,
) -> Result<Checked, Reply> {
    let now = match tokio::time::timeout_at(deadline, shared.chain_time()).await {
        Ok(Ok(now)) => now,
        Ok(Err(err)) => return Err(chain_unavailable(shared, err, true)),
        Err(_) => return Err(chain_unavailable(shared, "the chain did not answer in time", true)),
    };
    let checked = shared.verifier.check(request, now).map_err(|reason| {
        count(shared, "invalid");
        invalid(reason.as_str(), describe(reason), payer)
    })?;
    shared.policy.check(&checked).map_err(|refusal| {
        count(shared, "invalid");
        invalid(refusal.reason.as_str(), refusal.message, payer)
    })?;
    Ok(checked)
}

/// Refuses a wallet one of whose payments passed simulation and then failed on chain.
#[expect(clippy::result_large_err, reason = "the answer is built once per request and returned at once")]
fn refuse_refused_payer(shared: &Context, key: &PaymentKey, payer: Option<&str>) -> Result<(), Reply> {
    if !shared.store.payer_refused(&key.payer).map_err(unavailable)? {
        return Ok(());
    }
    count(shared, "invalid");
    Err(invalid(
        Reason::Signature.as_str(),
        "a payment from this wallet passed simulation and was refused on chain; the keeper takes no more",
        payer,
    ))
}

/// The payer's balance as the chain shows it now (with the transfer simulated), paired with what of the payer's
/// had settled before it was read.
async fn balance_seen(
    shared: &Context,
    checked: &Checked,
    key: &PaymentKey,
    deadline: tokio::time::Instant,
    payer: Option<&str>,
) -> Result<BalanceSeen, Reply> {
    // Read before the balance: whatever of the payer's settles in between is taken off the balance read.
    let settled = shared.store.payer_totals(&key.token, &key.payer).map_err(unavailable)?.settled;
    // A slow answer here may be the payer's own doing (a contract wallet that burns gas in the simulation), so it
    // does not touch readiness; the probe and the ticks tell whether the chain answers.
    let onchain = check_onchain(&shared.provider, checked, &shared.payer_codes);
    match tokio::time::timeout_at(deadline, onchain).await {
        Ok(Ok(facts)) => Ok(BalanceSeen { balance: facts.balance, settled }),
        Ok(Err(OnchainError::Invalid(reason))) => {
            count(shared, "invalid");
            Err(invalid(reason.as_str(), describe(reason), payer))
        }
        Ok(Err(OnchainError::Rpc(err))) => Err(chain_unavailable(shared, err, false)),
        Err(_) => Err(chain_unavailable(shared, "the chain did not answer in time", false)),
    }
}

/// 503 for a chain that failed or did not answer within the intake deadline; with `chain_down` (a read no client
/// can slow down failed) `/ready` turns 503 with it.
fn chain_unavailable(shared: &Context, message: impl std::fmt::Display, chain_down: bool) -> Reply {
    if chain_down {
        shared.chain_answered(false);
    }
    count(shared, "unavailable");
    unavailable(message)
}

/// Queues a checked payment, unless the queue is full or the payer's payments not settled yet would exceed the
/// balance it was just seen to hold.
fn accept(shared: &Context, record: PaymentRecord, seen: BalanceSeen, payer: Option<&str>) -> Reply {
    let value = record.value;
    match shared.store.accept_payment(record, shared.settings.max_queue, seen, Durability::Immediate) {
        Ok(Accepted::Queued { record, queued }) => {
            count(shared, "queued");
            shared.metrics.queue_depth(queued);
            if queued >= shared.settings.payments_batch as u64 {
                shared.wake.notify_one();
            }
            reply(StatusCode::ACCEPTED, payment_view(&record))
        }
        Ok(Accepted::Duplicate(record)) => {
            count(shared, "duplicate");
            reply(StatusCode::OK, payment_view(&record))
        }
        Ok(Accepted::NonceTaken) => nonce_taken(shared, payer),
        Ok(Accepted::OverBalance { outstanding, balance }) => {
            count(shared, "invalid");
            let message = format!(
                "the payer's payments not settled yet ({outstanding}) and this one ({value}) exceed its balance ({balance})"
            );
            invalid(Reason::InsufficientFunds.as_str(), message, payer)
        }
        Ok(Accepted::QueueFull) => {
            count(shared, "queue_full");
            // The queue drains when the next tick settles a batch.
            too_many("the settlement queue is full; retry later", shared.settings.interval.as_secs().max(1))
        }
        Err(err) => unavailable(err),
    }
}

async fn get_payment(State(shared): State<Arc<Context>>, Path(id): Path<String>) -> Reply {
    let Some(key) = PaymentKey::parse(&id) else {
        return error(StatusCode::BAD_REQUEST, "payment id must be <token>:<payer>:<nonce> in hex");
    };
    match shared.store.payment(&key) {
        Ok(Some(record)) => reply(StatusCode::OK, payment_view(&record)),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such payment"),
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

async fn post_voucher(State(shared): State<Arc<Context>>, body: Body) -> Reply {
    if let Some(cause) = shared.not_taking() {
        return voucher_unavailable(cause);
    }
    let request: VoucherRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return voucher_refused("invalid_payload", format!("malformed voucher: {err}")),
    };
    let Some(amount) = U256::from_str_radix(&request.amount, 10).ok().filter(|a| !a.is_zero()) else {
        return voucher_refused("invalid_payload", "amount must be a positive decimal integer");
    };
    let (status, stored, message) =
        match vouchers::register(&shared, request.channel_id, amount, request.signature).await {
            Ok(Registered::Stored) => {
                (StatusCode::ACCEPTED, true, "the keeper will claim it if the payer starts a close")
            }
            Ok(Registered::NotHigher) => {
                (StatusCode::OK, false, "a voucher for at least this amount is registered already")
            }
            Err(RegisterError::Refused { reason, message }) => return voucher_refused(reason, message),
            Err(err) => return voucher_unavailable(err),
        };
    reply(
        status,
        json!({"stored": stored, "channelId": request.channel_id, "amount": amount.to_string(), "message": message}),
    )
}

async fn get_executions(State(shared): State<Arc<Context>>, Path(id): Path<String>) -> Reply {
    let Ok(id) = U256::from_str_radix(&id, 10) else {
        return error(StatusCode::BAD_REQUEST, "subscription id must be a decimal integer");
    };
    match shared.store.executions(id) {
        Ok(records) => reply(StatusCode::OK, json!(records)),
        Err(err) => unavailable(err),
    }
}

async fn metrics(State(shared): State<Arc<Context>>) -> Response {
    ([("content-type", "text/plain; version=0.0.4")], shared.metrics.render()).into_response()
}

async fn health(State(shared): State<Arc<Context>>) -> Reply {
    let last = shared.last_tick.load(Ordering::Relaxed);
    let now = x402_chain::clock::unix_now();
    // Alive until three intervals (and at least a minute, for long transactions) pass without a tick.
    let allowance = (shared.settings.interval.as_secs() * 3).max(60);
    if last == 0 || now.saturating_sub(last) <= allowance {
        reply(StatusCode::OK, json!({"status": "ok", "lastTick": last}))
    } else {
        reply(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "stalled", "lastTick": last}))
    }
}

async fn ready(State(shared): State<Arc<Context>>) -> Reply {
    match shared.unready_cause() {
        None => reply(StatusCode::OK, json!({"status": "ready"})),
        Some(cause) => reply(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "not ready", "cause": cause})),
    }
}

/// The API's routes, the intake ones behind `guard`.
pub fn router(shared: Arc<Context>, guard: Arc<Guard>) -> Router {
    let limit = guard.max_body_bytes();
    Router::new()
        .route("/payments", post(post_payment))
        .route("/vouchers", post(post_voucher))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&guard), guard::buffer_body))
        .route_layer(middleware::from_fn_with_state(guard, guard::rate_limit))
        .route("/payments/{id}", get(get_payment))
        .route("/subscriptions/{id}/executions", get(get_executions))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(guard::not_found)
        .method_not_allowed_fallback(guard::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

async fn at_connection_limit() -> Reply {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the keeper is at its connection limit; only /health, /ready and /metrics are served; retry later",
    )
}

/// The routes a reserve connection gets when every regular one is taken: monitoring only.
pub fn monitoring_router(shared: Arc<Context>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(at_connection_limit)
        .with_state(shared)
}

/// The keeper's intake limits, from its settings; refusals are counted in `x402_keeper_intake_requests_total`.
pub fn intake_guard(shared: &Arc<Context>) -> Guard {
    let settings = &shared.settings;
    let limiter = RateLimiter::new(
        settings.client_rate,
        settings.global_rate,
        settings.rate_limit_clients,
        std::time::Instant::now(),
    );
    let counted = Arc::clone(shared);
    Guard::new(
        limiter,
        settings.trusted_proxies.clone(),
        settings.max_body_bytes,
        settings.connections.body_timeout,
        "the keeper",
        Box::new(move |result| counted.metrics.intake(result)),
    )
}

/// Serves the API on `listener` until `shutdown` fires, within the settings' connection limits.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Context>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = shared.settings.connections;
    let connections = Connections::new(limits, shared.settings.trusted_proxies.clone());
    let guard = Arc::new(intake_guard(&shared));
    let (app, monitoring) = (router(Arc::clone(&shared), guard), monitoring_router(shared));
    server::serve(listener, app, monitoring, connections, limits.header_timeout, shutdown).await;
}
