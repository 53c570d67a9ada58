//! The tower layer: a priced request without a payment is answered 402 with the route's requirements; one with a
//! payment is matched, claimed once, verified, and settled before or after the inner service runs, as its route
//! says. Requests to unpriced routes pass through untouched.
//!
//! ```no_run
//! # async fn run(config: x402_paywall::config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! use x402_paywall::{PaywallLayer, facilitator::HttpFacilitator};
//! let paywall = PaywallLayer::new(config.build()?, HttpFacilitator::new("http://127.0.0.1:4021")?);
//! let app: axum::Router = axum::Router::new().route("/weather", axum::routing::get(|| async { "sunny" })).layer(paywall);
//! # let _ = app; Ok(()) }
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::json;
use tower::{Layer, Service};
use x402_protocol::facilitator::SettleResponse;
use x402_protocol::headers::{self, PAYMENT_REQUIRED, PAYMENT_RESPONSE, X_PAYMENT_RESPONSE};
use x402_protocol::{Reason, v2};

use crate::config::{Paywall, PricedRoute, SettleMode};
use crate::deferred::{Exposure, Ticket};
use crate::facilitator::{BoxFuture, Facilitator, FacilitatorError};
use crate::metrics::{Metrics, Outcome};
use crate::payment::{Carried, Payment, Voucher, carried};
use crate::replay::{Claim, Refused, Replay};

/// Errors a response body may carry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response the layer gives: the inner service's, or its own.
pub type PaywallBody = UnsyncBoxBody<Bytes, BoxError>;

/// How many payments the replay guard remembers by default (in flight or settled and unexpired).
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

/// Given to the inner service as a request extension: who paid, once the payment is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paid {
    /// The payer's address.
    pub payer: String,
    /// The amount, in the token's units.
    pub amount: String,
    /// The requirement paid.
    pub requirement: v2::PaymentRequirements,
}

struct Shared {
    paywall: Paywall,
    facilitator: Arc<dyn Facilitator>,
    replay: Replay,
    public_url: Option<String>,
    metrics: Arc<Metrics>,
    exposure: Exposure,
}

/// Puts a [`Paywall`] in front of a service.
#[derive(Clone)]
pub struct PaywallLayer {
    shared: Arc<Shared>,
}

impl PaywallLayer {
    /// Charges for `paywall`'s routes, verifying and settling through `facilitator`.
    pub fn new(paywall: Paywall, facilitator: impl Facilitator) -> Self {
        Self::with_facilitator(paywall, Arc::new(facilitator))
    }

    /// As [`Self::new`], with a shared facilitator.
    pub fn with_facilitator(paywall: Paywall, facilitator: Arc<dyn Facilitator>) -> Self {
        let exposure = Exposure::new(paywall.deferred_max_age());
        let shared = Shared {
            exposure,
            paywall,
            facilitator,
            replay: Replay::new(DEFAULT_REPLAY_CAPACITY),
            public_url: None,
            metrics: Arc::default(),
        };
        Self { shared: Arc::new(shared) }
    }

    /// The URL clients reach the service at (`https://api.example.com`): resources are named with it. Without
    /// it, `http://` and the request's `Host`.
    pub fn public_url(self, url: &str) -> Self {
        self.rebuild(|shared| shared.public_url = Some(url.trim_end_matches('/').to_owned()))
    }

    /// Remembers up to `capacity` payments against replay [`DEFAULT_REPLAY_CAPACITY`]; past it, new payments
    /// are answered 503 until some expire.
    pub fn replay_capacity(self, capacity: usize) -> Self {
        self.rebuild(|shared| shared.replay = Replay::new(capacity))
    }

    /// The layer's counters (what `/metrics` shows).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    fn rebuild(self, change: impl FnOnce(&mut Shared)) -> Self {
        let old = &self.shared;
        let mut shared = Shared {
            paywall: old.paywall.clone(),
            facilitator: old.facilitator.clone(),
            replay: old.replay.clone(),
            public_url: old.public_url.clone(),
            metrics: old.metrics.clone(),
            exposure: old.exposure.clone(),
        };
        change(&mut shared);
        Self { shared: Arc::new(shared) }
    }
}

impl<S> Layer<S> for PaywallLayer {
    type Service = PaywallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PaywallService { inner, shared: self.shared.clone() }
    }
}

/// A service behind a paywall.
#[derive(Clone)]
pub struct PaywallService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for PaywallService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<PaywallBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The ready service serves this request; a fresh clone waits for the next one.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let shared = self.shared.clone();
        Box::pin(serve(shared, inner, request))
    }
}

async fn serve<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    mut inner: S,
    mut request: Request<ReqBody>,
) -> Result<Response<PaywallBody>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let metrics = &shared.metrics;
    let answer = |outcome: Outcome, response: Response<PaywallBody>| {
        metrics.count(outcome);
        Ok(response)
    };
    let path = request.uri().path().to_owned();
    let Some(route) = shared.paywall.route_for(request.method(), &path) else {
        return answer(Outcome::Free, inner.call(request).await?.map(boxed));
    };
    let url = resource_url(&shared, &request, &path);
    let payment = match carried(request.headers(), route, &path, &url) {
        Carried::Nothing => {
            return answer(
                Outcome::Required,
                required(route, &url, StatusCode::PAYMENT_REQUIRED, "payment required"),
            );
        }
        Carried::Malformed(why) => {
            return answer(Outcome::Malformed, required(route, &url, StatusCode::BAD_REQUEST, &why));
        }
        Carried::Unmatched(why) => {
            return answer(Outcome::Unmatched, required(route, &url, StatusCode::PAYMENT_REQUIRED, why));
        }
        Carried::Payment(payment) => payment,
        Carried::Voucher(voucher) => {
            let Voucher { request: question, requirement } = *voucher;
            let receipt = match shared.facilitator.accept_voucher(question).await {
                Ok(receipt) => receipt,
                Err(err) => return answer(Outcome::Unavailable, facilitator_down(&err)),
            };
            if !receipt.success {
                let reason = receipt.error_reason.as_deref().unwrap_or("invalid_channel_voucher");
                let why = match &receipt.error_message {
                    Some(message) => format!("{reason}: {message}"),
                    None => reason.to_owned(),
                };
                let mut refused = required(route, &url, StatusCode::PAYMENT_REQUIRED, &why);
                if let Some(header) = header_of(&receipt) {
                    refused.headers_mut().insert(PAYMENT_RESPONSE, header);
                }
                return answer(Outcome::ChannelRefused, refused);
            }
            // The voucher is stored: the request is paid for whatever the handler answers.
            request.extensions_mut().insert(Paid {
                payer: receipt.payer.clone().unwrap_or_default(),
                amount: receipt.charged.clone(),
                requirement,
            });
            let mut response = inner.call(request).await?.map(boxed);
            if let Some(header) = header_of(&receipt) {
                response.headers_mut().insert(PAYMENT_RESPONSE, header);
            }
            private(response.headers_mut());
            return answer(Outcome::ChannelPaid, response);
        }
    };
    let digest = alloy_primitives::keccak256(payment.request.to_string());
    let claim = match shared.replay.claim(payment.key, digest, unix_now()) {
        Ok(claim) => claim,
        Err(Refused::Taken) => {
            let used = required(route, &url, StatusCode::PAYMENT_REQUIRED, "this payment was used already");
            return answer(Outcome::Replayed, used);
        }
        Err(Refused::Full) => {
            return answer(Outcome::Unavailable, unavailable("too many payments are being processed"));
        }
    };
    // A payment whose settlement got no verdict is settled again without verifying: its nonce may be used by now.
    let mut payer = None;
    if !claim.resumed {
        let verdict = match shared.facilitator.verify(payment.request.clone()).await {
            Ok(verdict) => verdict,
            Err(err) => return answer(Outcome::Unavailable, facilitator_down(&err)),
        };
        if !verdict.is_valid {
            let reason = verdict.invalid_reason.unwrap_or_else(|| Reason::Payload.as_str().to_owned());
            let why = match verdict.invalid_message {
                Some(message) => format!("{reason}: {message}"),
                None => reason,
            };
            return answer(Outcome::Invalid, required(route, &url, StatusCode::PAYMENT_REQUIRED, &why));
        }
        payer = verdict.payer;
    }
    // The payer as the client named it is not trusted: the facilitator's, or the signed authorization's.
    request.extensions_mut().insert(Paid {
        payer: payer.unwrap_or_else(|| payment.key.payer.to_string()),
        amount: payment.amount.clone(),
        requirement: payment.requirement.clone(),
    });
    if route.settle == SettleMode::Before {
        let receipt = match settle(&shared, &payment).await {
            Ok(receipt) if receipt.success => receipt,
            Ok(failed) => return answer(Outcome::NotSettled, settle_failed(route, &url, &payment, &failed)),
            Err(err) => {
                claim.unsettled(digest, payment.valid_before);
                return answer(Outcome::Unavailable, facilitator_down(&err));
            }
        };
        let response = inner.call(request).await?;
        return answer(Outcome::Paid, paid(response.map(boxed), &payment, &receipt, claim));
    }
    // Deferred within the payer's exposure limit; past it, settled after the handler.
    let ticket = match (route.settle, x402_protocol::parse_amount(&payment.amount)) {
        (SettleMode::Deferred, Some(amount)) => {
            let limit = route.exposure_limit(&payment.requirement);
            shared.exposure.admit(payment.key.payer, payment.key.asset, amount, limit, Instant::now())
        }
        _ => None,
    };
    let response = inner.call(request).await?;
    if response.status().as_u16() >= 400 {
        // Not served, not charged: the claim is dropped and the payment may be used again.
        return answer(Outcome::HandlerFailed, response.map(boxed));
    }
    if let Some(ticket) = ticket {
        let mut response = response.map(boxed);
        private(response.headers_mut());
        metrics.deferred_started();
        tokio::spawn(settle_deferred(shared.clone(), payment, claim, ticket));
        return answer(Outcome::Deferred, response);
    }
    // The answer is held (its body not read) until the payment is settled.
    match settle(&shared, &payment).await {
        Ok(receipt) if receipt.success => {
            answer(Outcome::Paid, paid(response.map(boxed), &payment, &receipt, claim))
        }
        Ok(failed) => answer(Outcome::NotSettled, settle_failed(route, &url, &payment, &failed)),
        Err(err) => {
            // It may settle still: the same payment sent again resumes it.
            claim.unsettled(digest, payment.valid_before);
            answer(Outcome::Unavailable, facilitator_down(&err))
        }
    }
}

/// Settles a deferred payment in the background, trying again while the facilitator gives no verdict and the
/// authorization is valid. A failure makes its payer settle synchronously for a while.
async fn settle_deferred(shared: Arc<Shared>, payment: Box<Payment>, claim: Claim, ticket: Ticket) {
    let mut wait = Duration::from_millis(500);
    let receipt = loop {
        match settle(&shared, &payment).await {
            Ok(receipt) => break Some(receipt),
            Err(err) if unix_now() < payment.valid_before => {
                tracing::warn!(error = %err, payer = %payment.key.payer, "a deferred settlement got no verdict; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(err) => {
                tracing::warn!(error = %err, payer = %payment.key.payer, "a deferred settlement got no verdict before the authorization expired");
                break None;
            }
        }
    };
    claim.spend(unix_now(), payment.valid_before);
    match receipt {
        Some(receipt) if receipt.success => {
            shared.metrics.deferred_done(true);
            drop(ticket);
        }
        other => {
            let reason = other.and_then(|r| r.error_reason).unwrap_or_else(|| "no verdict".to_owned());
            tracing::warn!(payer = %payment.key.payer, reason, "a deferred payment did not settle; its payer is settled synchronously for now");
            shared.metrics.deferred_done(false);
            ticket.failed(Instant::now());
        }
    }
}

/// Settles, asking once more when the facilitator answers that the transaction is not confirmed yet (as the
/// official servers do).
async fn settle(shared: &Shared, payment: &Payment) -> Result<SettleResponse, FacilitatorError> {
    let started = Instant::now();
    let mut receipt = shared.facilitator.settle(payment.request.clone()).await?;
    if !receipt.success && receipt.error_reason.as_deref() == Some(Reason::SettlementPending.as_str()) {
        receipt = shared.facilitator.settle(payment.request.clone()).await?;
    }
    shared.metrics.settled_in(started.elapsed());
    Ok(receipt)
}

fn resource_url<B>(shared: &Shared, request: &Request<B>, path: &str) -> String {
    if let Some(base) = &shared.public_url {
        return format!("{base}{path}");
    }
    let host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    format!("http://{host}{path}")
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

fn boxed<B>(body: B) -> PaywallBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

fn full(bytes: impl Into<Bytes>) -> PaywallBody {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed_unsync()
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response<PaywallBody> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn header_of(value: &impl Serialize) -> Option<HeaderValue> {
    headers::encode(value).ok().and_then(|text| HeaderValue::from_str(&text).ok())
}

/// A 402 (or 400) offering the route's requirements: v2 in `PAYMENT-REQUIRED`, v1 in the body.
fn required(route: &PricedRoute, url: &str, status: StatusCode, error: &str) -> Response<PaywallBody> {
    let offer = v2::PaymentRequired {
        x402_version: 2,
        error: Some(error.to_owned()),
        resource: v2::ResourceInfo {
            url: url.to_owned(),
            description: Some(route.description.clone()).filter(|d| !d.is_empty()),
            mime_type: Some(route.mime_type.clone()).filter(|m| !m.is_empty()),
        },
        accepts: route.accepts.clone(),
        extensions: None,
    };
    let body = json!({"x402Version": 1, "error": error, "accepts": route.accepts_v1(url)});
    let mut response = json_response(status, &body);
    if let Some(header) = header_of(&offer) {
        response.headers_mut().insert(PAYMENT_REQUIRED, header);
    }
    response
}

/// The settlement failed: 402, the failed receipt in the version's header, and for v1 the offer again.
fn settle_failed(
    route: &PricedRoute,
    url: &str,
    payment: &Payment,
    receipt: &SettleResponse,
) -> Response<PaywallBody> {
    let reason = receipt.error_reason.clone().unwrap_or_else(|| Reason::UnexpectedSettle.as_str().to_owned());
    let mut response = match payment.version {
        1 => required(route, url, StatusCode::PAYMENT_REQUIRED, &reason),
        _ => json_response(StatusCode::PAYMENT_REQUIRED, &json!({})),
    };
    let name = if payment.version == 1 { X_PAYMENT_RESPONSE } else { PAYMENT_RESPONSE };
    if let Some(header) = header_of(receipt) {
        response.headers_mut().insert(name, header);
    }
    response
}

/// The inner service's answer with the receipt; the payment is spent.
fn paid(
    mut response: Response<PaywallBody>,
    payment: &Payment,
    receipt: &SettleResponse,
    claim: Claim,
) -> Response<PaywallBody> {
    claim.spend(unix_now(), payment.valid_before);
    let name = if payment.version == 1 { X_PAYMENT_RESPONSE } else { PAYMENT_RESPONSE };
    if let Some(header) = header_of(receipt) {
        response.headers_mut().insert(name, header);
    }
    private(response.headers_mut());
    response
}

/// A paid answer is for its payer only: `private` added to the handler's own `Cache-Control`, as the official
/// servers do.
fn private(headers: &mut http::HeaderMap) {
    let value = match headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()) {
        Some(own) if own.to_ascii_lowercase().contains("private") => return,
        Some(own) if !own.trim().is_empty() => {
            HeaderValue::from_str(&format!("{own}, private")).unwrap_or(HeaderValue::from_static("private"))
        }
        _ => HeaderValue::from_static("private"),
    };
    headers.insert(CACHE_CONTROL, value);
}

fn unavailable(why: &str) -> Response<PaywallBody> {
    let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": why}));
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn facilitator_down(err: &FacilitatorError) -> Response<PaywallBody> {
    tracing::warn!(error = %err, "facilitator gave no verdict");
    unavailable(&format!("the payment could not be checked now: {err}"))
}
