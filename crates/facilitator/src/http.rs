//! The facilitator's HTTP API.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /verify` | `{x402Version, paymentPayload, paymentRequirements}` -> `{isValid, invalidReason?, invalidMessage?, payer}` |
//! | `POST /settle` | the same body -> `{success, transaction, network, payer, amount?, errorReason?, errorMessage?}`; with an API key set, only with `Authorization: Bearer <key>` |
//! | `POST /channels/vouchers` | a `channel` voucher for a route's price (`docs/channels.md`) -> its receipt, the voucher stored before the answer; with an API key set, only with the key |
//! | `GET /channels/{network}:{channelId}` | a channel as the voucher desk knows it: status, deposit, claimed, taken, highest voucher |
//! | `GET /supported` | `{kinds, extensions, signers}` |
//! | `GET /settlements/{network}:{token}:{payer}:{nonce}` | a payment's record (`network` a CAIP-2 id) |
//! | `POST /payments` | the keeper's deferred intake, for the network the requirements name |
//! | `GET /metrics`, `GET /health`, `GET /ready` | Prometheus metrics of the facilitator and its engines; liveness; readiness of every engine |
//!
//! As the reference answers: an invalid payment is 200 with `isValid: false` / `success: false` and the reason; a
//! body that is not a payment request is 400; the chain not answering 503; a full queue or an exceeded rate 429
//! with `Retry-After`; a `payment-identifier` id reused for another payment 409. Every answer is JSON.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use x402_keeper::guard::{self, Guard};
use x402_keeper::http::{payment_view, queue_payment};
use x402_keeper::store::PaymentKey;
use x402_protocol::Reason;
use x402_protocol::channel::{ChannelReason, VoucherRequest};
use x402_protocol::facilitator::PaymentRequest;

use crate::service::{Answer, Facilitator};

fn json_reply(status: StatusCode, body: &impl Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

fn answer<T: Serialize>(answer: Answer<T>) -> Response {
    match answer {
        Answer::Ok(body) => json_reply(StatusCode::OK, &body),
        Answer::Unavailable(body) => json_reply(StatusCode::SERVICE_UNAVAILABLE, &body),
        Answer::Conflict(body) => json_reply(StatusCode::CONFLICT, &body),
        Answer::Busy(body, retry_after) => {
            let mut response = json_reply(StatusCode::TOO_MANY_REQUESTS, &body);
            if let Ok(value) = retry_after.to_string().parse() {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            response
        }
    }
}

/// The request in `body` (and the body as JSON), or what is wrong with it.
fn parse(body: &[u8]) -> Result<(PaymentRequest, Value), String> {
    let raw: Value = serde_json::from_slice(body).map_err(|err| format!("the body is not JSON: {err}"))?;
    let request = PaymentRequest::deserialize(&raw).map_err(|err| format!("not a payment request: {err}"))?;
    Ok((request, raw))
}

async fn post_verify(State(facilitator): State<Arc<Facilitator>>, body: Bytes) -> Response {
    match parse(&body) {
        Ok((request, raw)) => answer(facilitator.verify(&request, &raw).await),
        Err(message) => {
            facilitator.count_refused("verify", "malformed");
            let body = json!({"isValid": false, "invalidReason": Reason::Payload.as_str(), "invalidMessage": message});
            json_reply(StatusCode::BAD_REQUEST, &body)
        }
    }
}

/// Whether `headers` carry the API key, when one is set.
fn authorized(facilitator: &Facilitator, headers: &HeaderMap) -> bool {
    let Some(key) = &facilitator.settings().api_key else { return true };
    let given = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let given = given.strip_prefix("Bearer ").unwrap_or(given);
    // Compared in constant time: the key is a secret.
    given.len() == key.len() && given.bytes().zip(key.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The 401 for `route` (`settle`, `vouchers`) without the API key, when one is set.
fn unauthorized(facilitator: &Facilitator, headers: &HeaderMap, route: &str, path: &str) -> Option<Response> {
    if authorized(facilitator, headers) {
        return None;
    }
    facilitator.count_refused(route, "unauthorized");
    let message = format!("{path} needs the facilitator's API key: Authorization: Bearer <key>");
    Some(guard::error(StatusCode::UNAUTHORIZED, &message))
}

async fn post_settle(
    State(facilitator): State<Arc<Facilitator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = unauthorized(&facilitator, &headers, "settle", "/settle") {
        return refused;
    }
    match parse(&body) {
        Ok((request, raw)) => answer(facilitator.settle(&request, &raw).await),
        Err(message) => {
            facilitator.count_refused("settle", "malformed");
            let body = json!({"success": false, "errorReason": Reason::Payload.as_str(), "errorMessage": message,
                              "transaction": "", "network": ""});
            json_reply(StatusCode::BAD_REQUEST, &body)
        }
    }
}

async fn post_voucher(
    State(facilitator): State<Arc<Facilitator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = unauthorized(&facilitator, &headers, "vouchers", "/channels/vouchers") {
        return refused;
    }
    match serde_json::from_slice::<VoucherRequest>(&body) {
        Ok(request) => answer(facilitator.accept_voucher(&request).await),
        Err(err) => {
            facilitator.count_refused("vouchers", "malformed");
            let body = json!({"success": false, "errorReason": ChannelReason::Malformed.as_str(),
                              "errorMessage": format!("not a voucher request: {err}")});
            json_reply(StatusCode::BAD_REQUEST, &body)
        }
    }
}

async fn get_channel(State(facilitator): State<Arc<Facilitator>>, Path(id): Path<String>) -> Response {
    let usage = "the id is <network>:<channel id>, the network a CAIP-2 id";
    let Some((network, channel)) = id.rsplit_once(':') else {
        return guard::error(StatusCode::BAD_REQUEST, usage);
    };
    let Ok(channel) = channel.parse::<alloy::primitives::B256>() else {
        return guard::error(StatusCode::BAD_REQUEST, usage);
    };
    let Some(engine) = facilitator.engines().find(network) else {
        return guard::error(StatusCode::NOT_FOUND, "the facilitator takes no vouchers on this network");
    };
    match engine.desk.state(channel).await {
        Ok(Some(state)) => json_reply(StatusCode::OK, &state),
        Ok(None) => guard::error(StatusCode::NOT_FOUND, "no such channel"),
        Err(err) => guard::error(StatusCode::SERVICE_UNAVAILABLE, &err.to_string()),
    }
}

async fn get_supported(State(facilitator): State<Arc<Facilitator>>) -> Response {
    json_reply(StatusCode::OK, &facilitator.supported())
}

async fn get_settlement(State(facilitator): State<Arc<Facilitator>>, Path(id): Path<String>) -> Response {
    // `eip155:<chain id>:<token>:<payer>:<nonce>`.
    let mut parts = id.splitn(3, ':');
    let (Some(namespace), Some(reference), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return guard::error(
            StatusCode::BAD_REQUEST,
            "the id is <network>:<token>:<payer>:<nonce>, the network a CAIP-2 id",
        );
    };
    let network = format!("{namespace}:{reference}");
    let Some(key) = PaymentKey::parse(rest) else {
        return guard::error(
            StatusCode::BAD_REQUEST,
            "the id is <network>:<token>:<payer>:<nonce>, the network a CAIP-2 id",
        );
    };
    let Some(engine) = facilitator.engines().find(&network) else {
        return guard::error(StatusCode::NOT_FOUND, "the facilitator does not settle on this network");
    };
    match engine.context.store.payment(&key) {
        Ok(Some(record)) => {
            let mut view = payment_view(&record);
            view["network"] = json!(network);
            json_reply(StatusCode::OK, &view)
        }
        Ok(None) => guard::error(StatusCode::NOT_FOUND, "no such payment"),
        Err(err) => guard::error(StatusCode::SERVICE_UNAVAILABLE, &err.to_string()),
    }
}

async fn post_payment(State(facilitator): State<Arc<Facilitator>>, body: Bytes) -> Response {
    let request = match parse(&body) {
        Ok((request, _)) => request,
        Err(message) => {
            let body = json!({"isValid": false, "invalidReason": Reason::Payload.as_str(), "invalidMessage": message});
            return json_reply(StatusCode::BAD_REQUEST, &body);
        }
    };
    match facilitator.engines().find(&request.payment_requirements.network) {
        Some(engine) => queue_payment(&engine.context, &body).await,
        None => json_reply(
            StatusCode::BAD_REQUEST,
            &json!({"isValid": false, "invalidReason": Reason::Network.as_str(),
                    "invalidMessage": "the requirements name no network this facilitator settles on"}),
        ),
    }
}

async fn metrics(State(facilitator): State<Arc<Facilitator>>) -> Response {
    ([("content-type", "text/plain; version=0.0.4")], facilitator.render_metrics()).into_response()
}

async fn health(State(facilitator): State<Arc<Facilitator>>) -> Response {
    let stalled: Vec<&str> = facilitator
        .engines()
        .iter()
        .filter(|engine| {
            let last = engine.context.last_tick.load(std::sync::atomic::Ordering::Relaxed);
            let allowance = (engine.context.settings.interval.as_secs() * 3).max(60);
            last != 0 && x402_chain::clock::unix_now().saturating_sub(last) > allowance
        })
        .map(|engine| engine.name.as_str())
        .collect();
    if stalled.is_empty() {
        json_reply(StatusCode::OK, &json!({"status": "ok"}))
    } else {
        json_reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "stalled", "networks": stalled}))
    }
}

async fn ready(State(facilitator): State<Arc<Facilitator>>) -> Response {
    let causes: serde_json::Map<String, Value> = facilitator
        .engines()
        .iter()
        .filter_map(|engine| engine.context.unready_cause().map(|cause| (engine.name.clone(), json!(cause))))
        .collect();
    if causes.is_empty() {
        json_reply(StatusCode::OK, &json!({"status": "ready"}))
    } else {
        json_reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "not ready", "causes": causes}))
    }
}

/// The API's routes, those with a body behind `guard`.
pub fn router(facilitator: Arc<Facilitator>, guard: Arc<Guard>) -> Router {
    let limit = guard.max_body_bytes();
    Router::new()
        .route("/verify", post(post_verify))
        .route("/settle", post(post_settle))
        .route("/payments", post(post_payment))
        .route("/channels/vouchers", post(post_voucher))
        .route("/channels/{id}", get(get_channel))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&guard), guard::buffer_body))
        .route_layer(middleware::from_fn_with_state(guard, guard::rate_limit))
        .route("/supported", get(get_supported))
        .route("/settlements/{id}", get(get_settlement))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(guard::not_found)
        .method_not_allowed_fallback(guard::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(facilitator)
}

async fn at_connection_limit() -> Response {
    guard::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the facilitator is at its connection limit; only /health, /ready and /metrics are served; retry later",
    )
}

/// The routes a reserve connection gets when every regular one is taken: monitoring only.
pub fn monitoring_router(facilitator: Arc<Facilitator>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(at_connection_limit)
        .with_state(facilitator)
}
