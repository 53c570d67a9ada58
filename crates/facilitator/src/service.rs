//! The facilitator: the engines of its networks, the verified payments held, its settings and metrics, and the
//! answers of `/verify`, `/settle` and `/supported` in the wire format the official clients read.

use std::collections::BTreeMap;
use std::time::Instant;

use alloy::primitives::{B256, keccak256};
use serde_json::Value;
use x402_keeper::metrics::{Family, Kind, Registry};
use x402_protocol::Reason;
use x402_protocol::channel::{self, ChannelReason, ChannelReceipt, VoucherRequest};
use x402_protocol::facilitator::{
    PAYMENT_IDENTIFIER, PaymentRequest, SettleResponse, SupportedKind, SupportedResponse, VerifyResponse,
};

use crate::engine::{Engine, Engines};
use crate::holds::Holds;
use crate::settings::Settings;
use crate::settle::{self, PaymentId, Settlement};
use crate::verify::{self, Refusal};

const REQUESTS: &str = "x402_facilitator_requests_total";
const VERIFY_SECONDS: &str = "x402_facilitator_verify_seconds";
const SETTLE_SECONDS: &str = "x402_facilitator_settle_seconds";
const VOUCHER_SECONDS: &str = "x402_facilitator_voucher_seconds";

const FAMILIES: &[Family] = &[
    Family {
        name: REQUESTS,
        help: "Facilitator requests per route and result (valid, settled, pending, or the x402 reason).",
        kind: Kind::Counter,
    },
    Family { name: VERIFY_SECONDS, help: "Time to answer /verify.", kind: Kind::Histogram },
    Family { name: SETTLE_SECONDS, help: "Time to answer /settle.", kind: Kind::Histogram },
    Family { name: VOUCHER_SECONDS, help: "Time to answer /channels/vouchers.", kind: Kind::Histogram },
];

/// An answer and the HTTP status it goes with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<T> {
    /// 200 with the body.
    Ok(T),
    /// 503: the chain or the store could not be asked.
    Unavailable(T),
    /// 429: try again after this many seconds.
    Busy(T, u64),
    /// 409: the payment identifier came with another request.
    Conflict(T),
}

/// The facilitator over its engines.
#[derive(Debug)]
pub struct Facilitator {
    engines: Engines,
    holds: Holds,
    settings: Settings,
    metrics: Registry,
}

impl Facilitator {
    /// A facilitator over `engines` with `settings`.
    pub fn new(engines: Engines, settings: Settings) -> Self {
        Self { engines, holds: Holds::default(), settings, metrics: Registry::new(FAMILIES, &[]) }
    }

    /// Its settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Its engines.
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// The metrics of the facilitator and of every engine, in the text exposition format.
    pub fn render_metrics(&self) -> String {
        let mut registries = vec![&self.metrics];
        registries.extend(self.engines.iter().map(|engine| engine.context.metrics.registry()));
        x402_keeper::metrics::render(&registries)
    }

    fn count(&self, route: &str, result: &str, started: Instant, histogram: &'static str) {
        self.metrics.add(REQUESTS, &[("route", route), ("result", result)], 1.0);
        self.metrics.observe(histogram, &[], started.elapsed().as_secs_f64());
    }

    /// Counts a request refused before it reached a check (malformed, unauthorized, rate limited).
    pub fn count_refused(&self, route: &str, result: &str) {
        self.metrics.add(REQUESTS, &[("route", route), ("result", result)], 1.0);
    }

    /// `/verify`; `raw` is the request body as sent (a `payment-identifier` id bound to another request is
    /// refused here as `/settle` would refuse it).
    pub async fn verify(&self, request: &PaymentRequest, raw: &Value) -> Answer<VerifyResponse> {
        let started = Instant::now();
        let payer = Some(request.payment_payload.payload.authorization.from.to_checksum(None));
        let verdict = match self.engines.find(&request.payment_requirements.network) {
            None => Err(Refusal::reason(Reason::Network)),
            Some(engine) => match payment_id_usable(engine, request, raw) {
                Ok(()) => verify::verify(engine, &self.holds, request).await,
                Err(refusal) => Err(refusal),
            },
        };
        let invalid = |reason: Option<String>, message: String| VerifyResponse {
            is_valid: false,
            invalid_reason: reason,
            invalid_message: Some(message),
            payer: payer.clone(),
            extensions: None,
        };
        match verdict {
            Ok(_) => {
                self.count("verify", "valid", started, VERIFY_SECONDS);
                Answer::Ok(VerifyResponse {
                    is_valid: true,
                    invalid_reason: None,
                    invalid_message: None,
                    payer: payer.clone(),
                    extensions: None,
                })
            }
            Err(Refusal::Invalid { reason, message }) => {
                self.count("verify", &reason, started, VERIFY_SECONDS);
                Answer::Ok(invalid(Some(reason), message))
            }
            Err(Refusal::Unavailable(cause)) => {
                self.count("verify", Reason::UnexpectedVerify.as_str(), started, VERIFY_SECONDS);
                Answer::Unavailable(invalid(Some(Reason::UnexpectedVerify.as_str().to_owned()), cause))
            }
        }
    }

    /// `/settle`; `raw` is the request body as sent, whose fingerprint a `payment-identifier` id is bound to.
    pub async fn settle(&self, request: &PaymentRequest, raw: &Value) -> Answer<SettleResponse> {
        let started = Instant::now();
        let network = request.payment_requirements.network.clone();
        let payer = request.payment_payload.payload.authorization.from;
        let answer = |success: bool, reason: Option<String>, message: Option<String>, tx: Option<B256>| {
            SettleResponse {
                success,
                error_reason: reason,
                error_message: message,
                payer: Some(payer.to_checksum(None)),
                transaction: tx.map(|t| t.to_string()).unwrap_or_default(),
                network: network.clone(),
                amount: None,
                extensions: None,
            }
        };
        let Some(engine) = self.engines.find(&network) else {
            self.count("settle", Reason::Network.as_str(), started, SETTLE_SECONDS);
            let message = "the facilitator does not settle on this network".to_owned();
            return Answer::Ok(answer(false, Some(Reason::Network.as_str().to_owned()), Some(message), None));
        };
        let id = match request.payment_payload.payment_identifier() {
            Ok(id) => id,
            Err(err) => {
                self.count("settle", Reason::Payload.as_str(), started, SETTLE_SECONDS);
                return Answer::Ok(answer(
                    false,
                    Some(Reason::Payload.as_str().to_owned()),
                    Some(err.to_string()),
                    None,
                ));
            }
        };
        let payment_id = id.map(|id| PaymentId { id, fingerprint: fingerprint(raw) });
        let deadline = tokio::time::Instant::now() + self.settings.settle_timeout;
        match settle::settle(engine, &self.holds, request, payment_id, deadline).await {
            Settlement::Settled { transaction, amount, .. } => {
                self.count("settle", "settled", started, SETTLE_SECONDS);
                let mut body = answer(true, None, None, Some(transaction));
                body.amount = Some(amount.to_string());
                Answer::Ok(body)
            }
            Settlement::Failed { reason, message, transaction, .. } => {
                self.count("settle", &reason, started, SETTLE_SECONDS);
                Answer::Ok(answer(false, Some(reason), Some(message), transaction))
            }
            Settlement::Pending { transaction, .. } => {
                self.count("settle", "pending", started, SETTLE_SECONDS);
                let message = format!(
                    "not confirmed within {} s; settle the same payment again for its outcome",
                    self.settings.settle_timeout.as_secs()
                );
                Answer::Ok(answer(
                    false,
                    Some(Reason::SettlementPending.as_str().to_owned()),
                    Some(message),
                    transaction,
                ))
            }
            Settlement::Busy { retry_after } => {
                self.count("settle", "queue_full", started, SETTLE_SECONDS);
                let message = "the settlement queue is full; retry later".to_owned();
                Answer::Busy(
                    answer(false, Some(Reason::UnexpectedSettle.as_str().to_owned()), Some(message), None),
                    retry_after,
                )
            }
            Settlement::Conflict => {
                self.count("settle", "payment_identifier_conflict", started, SETTLE_SECONDS);
                let message = "this payment-identifier id came with another payment before".to_owned();
                Answer::Conflict(answer(
                    false,
                    Some(Reason::Payload.as_str().to_owned()),
                    Some(message),
                    None,
                ))
            }
            Settlement::Unavailable(cause) => {
                self.count("settle", Reason::UnexpectedSettle.as_str(), started, SETTLE_SECONDS);
                Answer::Unavailable(answer(
                    false,
                    Some(Reason::UnexpectedSettle.as_str().to_owned()),
                    Some(cause),
                    None,
                ))
            }
        }
    }

    /// `POST /channels/vouchers`: takes a `channel` voucher on the desk of the network it names.
    pub async fn accept_voucher(&self, request: &VoucherRequest) -> Answer<ChannelReceipt> {
        let started = Instant::now();
        let refused = |reason: ChannelReason, message: String| ChannelReceipt {
            success: false,
            scheme: channel::SCHEME.to_owned(),
            network: request.network.clone(),
            channel_id: request.voucher.channel_id,
            payer: None,
            cumulative: "0".into(),
            remaining: "0".into(),
            charged: "0".into(),
            error_reason: Some(reason.as_str().to_owned()),
            error_message: Some(message),
        };
        let Some(engine) = self.engines.find(&request.network) else {
            self.count("vouchers", ChannelReason::UnknownContract.as_str(), started, VOUCHER_SECONDS);
            let message = format!("the facilitator takes no vouchers on {}", request.network);
            return Answer::Ok(refused(ChannelReason::UnknownContract, message));
        };
        match engine.desk.accept(request).await {
            Ok(receipt) => {
                let result = receipt.error_reason.as_deref().unwrap_or("accepted").to_owned();
                self.count("vouchers", &result, started, VOUCHER_SECONDS);
                Answer::Ok(receipt)
            }
            Err(err) => {
                self.count("vouchers", "unavailable", started, VOUCHER_SECONDS);
                let mut body = refused(ChannelReason::Malformed, err.to_string());
                body.error_reason = Some("unavailable".into());
                Answer::Unavailable(body)
            }
        }
    }

    /// `/supported`: `exact` on every network served, in v2 (CAIP-2 id) and in v1 where the network has a v1
    /// name; `channel` in v2, with the PaymentChannel's address; the `payment-identifier` extension; the signer of each network.
    pub fn supported(&self) -> SupportedResponse {
        let mut kinds = Vec::new();
        let mut signers = Vec::new();
        for engine in self.engines.iter() {
            let verifier = &engine.verifier;
            kinds.push(SupportedKind {
                x402_version: 2,
                scheme: "exact".into(),
                network: verifier.caip2().to_owned(),
                extra: None,
            });
            kinds.push(SupportedKind {
                x402_version: 2,
                scheme: channel::SCHEME.into(),
                network: verifier.caip2().to_owned(),
                extra: Some(
                    serde_json::json!({"paymentChannel": engine.desk.payment_channel().to_checksum(None)}),
                ),
            });
            if let Some(v1) = verifier.v1_name() {
                kinds.push(SupportedKind {
                    x402_version: 1,
                    scheme: "exact".into(),
                    network: v1.to_owned(),
                    extra: None,
                });
            }
            let signer = engine.context.keeper.to_checksum(None);
            if !signers.contains(&signer) {
                signers.push(signer);
            }
        }
        SupportedResponse {
            kinds,
            extensions: vec![PAYMENT_IDENTIFIER.to_owned()],
            signers: BTreeMap::from([("eip155:*".to_owned(), signers)]),
        }
    }
}

/// Whether the request's `payment-identifier` id (if any) is well formed and free or bound to this very request:
/// what `/settle` checks before it binds the id, without binding it.
fn payment_id_usable(engine: &Engine, request: &PaymentRequest, raw: &Value) -> Result<(), Refusal> {
    let id = match request.payment_payload.payment_identifier() {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(()),
        Err(err) => {
            return Err(Refusal::Invalid {
                reason: Reason::Payload.as_str().to_owned(),
                message: err.to_string(),
            });
        }
    };
    match engine.context.store.payment_id_fingerprint(id) {
        Ok(Some(bound)) if bound != fingerprint(raw) => Err(Refusal::Invalid {
            reason: Reason::Payload.as_str().to_owned(),
            message: "this payment-identifier id came with another payment before".to_owned(),
        }),
        Ok(_) => Ok(()),
        Err(err) => Err(Refusal::Unavailable(err.to_string())),
    }
}

/// The fingerprint a `payment-identifier` id is bound to: the payload and the requirements as sent (JSON object
/// keys in order, so the same request always gives the same fingerprint).
fn fingerprint(raw: &Value) -> B256 {
    let mut bytes = serde_json::to_vec(&raw["paymentPayload"]).unwrap_or_default();
    bytes.extend(serde_json::to_vec(&raw["paymentRequirements"]).unwrap_or_default());
    keccak256(bytes)
}
