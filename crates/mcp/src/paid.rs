//! Paid MCP tools, the x402 MCP transport: a tool call without a payment is answered with a tool error carrying
//! the `PaymentRequired` (in `structuredContent`, and in `content[0].text` as `{"x402/error": {code: 402,
//! message, data}}`); the client calls again with a `PaymentPayload` in `_meta["x402/payment"]`; the server
//! verifies it with its facilitator, runs the tool, settles, and answers with the `SettleResponse` in
//! `_meta["x402/payment-response"]`.
//!
//! [`PaidTools`] is the server's side, for any rmcp server: its `call_tool` hands each call to
//! [`PaidTools::call`] with the tool's own handler. [`call_paid_tool`] is the client's: it calls a tool and, if
//! the answer asks for a payment, pays it with an [`x402_client::Client`] (its policy and budget) and calls
//! again, so a Rust agent calls paid tools like free ones.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::B256;
use alloy::signers::Signer;
use rmcp::ErrorData;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, MetaObject};
use rmcp::service::{Peer, RequestContext, RoleClient, RoleServer, ServiceError};
use serde_json::{Value, json};
use x402_client::client::Payment;
use x402_client::{Client, ClientError, offer};
use x402_paywall::facilitator::{Facilitator, FacilitatorError};
use x402_paywall::payment::{self, Carried};
use x402_paywall::replay::{Claim, Refused, Replay};
use x402_protocol::facilitator::SettleResponse;
use x402_protocol::{Reason, v2};

/// `_meta` key of the client's payment.
pub const PAYMENT_META: &str = "x402/payment";
/// `_meta` key of the server's settlement.
pub const PAYMENT_RESPONSE_META: &str = "x402/payment-response";
/// The wrapper of a payment-required error in `content[0].text`.
pub const ERROR_KEY: &str = "x402/error";

/// How long the client waits before it sends an undecided payment again.
const RESEND_AFTER: Duration = Duration::from_secs(1);

/// How many payments the replay guard remembers.
const REPLAY_CAPACITY: usize = 100_000;

/// The resource URL of tool `name`: `mcp://tool/<name>`.
pub fn resource_url(name: &str) -> String {
    format!("mcp://tool/{name}")
}

/// One priced tool.
#[derive(Clone, Debug)]
struct Priced {
    description: String,
    accepts: Vec<v2::PaymentRequirements>,
}

/// The server's side: the priced tools, a facilitator, and each payment accepted once.
#[derive(Clone)]
pub struct PaidTools {
    facilitator: Arc<dyn Facilitator>,
    tools: HashMap<String, Priced>,
    replay: Replay,
}

impl std::fmt::Debug for PaidTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaidTools").field("tools", &self.tools).finish_non_exhaustive()
    }
}

impl PaidTools {
    /// No priced tool yet; payments verified and settled by `facilitator`.
    pub fn new(facilitator: impl Facilitator) -> Self {
        Self {
            facilitator: Arc::new(facilitator),
            tools: HashMap::new(),
            replay: Replay::new(REPLAY_CAPACITY),
        }
    }

    /// Charges `requirement` (an `exact` one: network, asset, amount, payTo, maxTimeoutSeconds and the token's
    /// EIP-712 `extra`) for each call of tool `name`; several requirements for one tool are alternatives.
    pub fn price(mut self, name: &str, description: &str, requirement: v2::PaymentRequirements) -> Self {
        let entry = self
            .tools
            .entry(name.to_owned())
            .or_insert_with(|| Priced { description: description.to_owned(), accepts: Vec::new() });
        entry.accepts.push(requirement);
        self
    }

    /// Answers the call `request` (`context` is its request context, where rmcp puts the request's `_meta`): a
    /// tool that is not priced runs at once; a priced one only with a payment that verifies, and its payment is
    /// settled only if the tool did not fail (`isError`). `run` is the tool itself.
    pub async fn call<F, Fut>(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        run: F,
    ) -> Result<CallToolResponse, ErrorData>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CallToolResponse, ErrorData>>,
    {
        let name = request.name.as_ref();
        let Some(priced) = self.tools.get(name) else { return run().await };
        let required = |error: &str, settlement: Option<&SettleResponse>| {
            Ok(payment_required(name, priced, error, settlement).into())
        };
        let carried = request.meta.as_ref().and_then(|meta| meta.get(PAYMENT_META));
        let Some(raw) = carried.or_else(|| context.meta.get(PAYMENT_META)) else {
            return required("Payment required to call this tool", None);
        };
        let payment = match payment::from_payload(raw, &priced.accepts, &resource_url(name)) {
            Carried::Payment(payment) => payment,
            Carried::Malformed(why) => return required(&format!("the payment is malformed: {why}"), None),
            Carried::Unmatched(why) => return required(why, None),
            Carried::Voucher(_) | Carried::Nothing => {
                return required("only exact payments pay for tools", None);
            }
        };
        let digest = alloy::primitives::keccak256(payment.request.to_string());
        let claim = match self.replay.claim(payment.key, digest, unix_now()) {
            Ok(claim) => claim,
            Err(Refused::Taken) => return required("this payment was used already", None),
            Err(Refused::Full) => return Ok(unavailable("too many payments are being processed").into()),
        };
        // A payment whose settlement got no verdict is settled again without verifying (its nonce may be used).
        if !claim.resumed {
            let verdict = match self.facilitator.verify(payment.request.clone()).await {
                Ok(verdict) => verdict,
                Err(err) => return Ok(unavailable(&err.to_string()).into()),
            };
            if !verdict.is_valid {
                let reason = verdict.invalid_reason.unwrap_or_else(|| Reason::Payload.as_str().to_owned());
                let why =
                    verdict.invalid_message.map_or_else(|| reason.clone(), |m| format!("{reason}: {m}"));
                return required(&why, None);
            }
        }
        let answer = run().await?;
        let mut result = match answer {
            CallToolResponse::Complete(result) => result,
            // The tool asks for more input: not served yet, not charged; the payment comes with the next round.
            CallToolResponse::InputRequired(_) => return Ok(answer),
            // A task was started: served, so paid before it is handed out.
            task => {
                return Ok(match self.settled(&payment, claim, digest, name, priced).await {
                    Ok(_) => task,
                    Err(refused) => refused.into(),
                });
            }
        };
        if result.is_error == Some(true) {
            // Not served, not charged: the claim is dropped and the payment may be used again.
            return Ok(result.into());
        }
        match self.settled(&payment, claim, digest, name, priced).await {
            Ok(receipt) => {
                let mut meta = result.meta.take().unwrap_or_default();
                meta.insert(PAYMENT_RESPONSE_META.to_owned(), json!(receipt));
                result.meta = Some(meta);
                Ok(result.into())
            }
            Err(refused) => Ok(refused.into()),
        }
    }

    /// Settles `payment`: its receipt, or the tool error to answer instead (a failed settlement, or none decided:
    /// then the same payment sent again resumes it).
    async fn settled(
        &self,
        payment: &payment::Payment,
        claim: Claim,
        digest: B256,
        name: &str,
        priced: &Priced,
    ) -> Result<SettleResponse, CallToolResult> {
        match self.settle(&payment.request).await {
            Ok(receipt) if receipt.success => {
                claim.spend(unix_now(), payment.valid_before);
                Ok(receipt)
            }
            Ok(failed) => {
                let reason = failed.error_reason.clone().unwrap_or_default();
                Err(payment_required(
                    name,
                    priced,
                    &format!("Payment settlement failed: {reason}"),
                    Some(&failed),
                ))
            }
            Err(err) => {
                claim.unsettled(digest, payment.valid_before);
                Err(unavailable(&format!("the payment could not be settled now (call again with it): {err}")))
            }
        }
    }

    async fn settle(&self, request: &Value) -> Result<SettleResponse, FacilitatorError> {
        let mut receipt = self.facilitator.settle(request.clone()).await?;
        if !receipt.success && receipt.error_reason.as_deref() == Some(Reason::SettlementPending.as_str()) {
            receipt = self.facilitator.settle(request.clone()).await?;
        }
        Ok(receipt)
    }
}

/// The payment-required tool error for `name`.
fn payment_required(
    name: &str,
    priced: &Priced,
    error: &str,
    settlement: Option<&SettleResponse>,
) -> CallToolResult {
    let mut required = json!({
        "x402Version": 2,
        "error": error,
        "resource": {"url": resource_url(name), "description": priced.description, "mimeType": "application/json"},
        "accepts": priced.accepts,
    });
    if let Some(settlement) = settlement {
        required[PAYMENT_RESPONSE_META] = json!(settlement);
    }
    let text = json!({ERROR_KEY: {"code": 402, "message": error, "data": required}}).to_string();
    let mut result = CallToolResult::structured_error(required);
    result.content = vec![ContentBlock::text(text)];
    result
}

/// How a tool error saying that payments cannot be decided now (the facilitator unreachable) begins.
pub const UNAVAILABLE: &str = "payments cannot be taken now";

/// A tool error for a payment that cannot be decided now.
fn unavailable(why: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!("{UNAVAILABLE}: {why}"))])
}

/// Whether `result` says the payment is not decided yet (settlement pending, or the server could not ask its
/// facilitator): the same payment sent again may go through.
fn undecided(result: &CallToolResult) -> bool {
    if let Some(required) = payment_required_of(result) {
        return required[PAYMENT_RESPONSE_META]["errorReason"] == Reason::SettlementPending.as_str();
    }
    result.is_error == Some(true)
        && result.content.first().and_then(|c| c.as_text()).is_some_and(|t| t.text.starts_with(UNAVAILABLE))
}

/// The `PaymentRequired` of a tool error, as the transport's clients look for it: `structuredContent`, its
/// `x402/error` wrapper, or `content[0].text`.
pub fn payment_required_of(result: &CallToolResult) -> Option<Value> {
    if result.is_error != Some(true) {
        return None;
    }
    let is_offer = |v: &Value| v.get("x402Version").is_some() && v.get("accepts").is_some();
    let unwrap = |v: &Value| -> Option<Value> {
        if is_offer(v) {
            return Some(v.clone());
        }
        v.get(ERROR_KEY).and_then(|e| e.get("data")).filter(|d| is_offer(d)).cloned()
    };
    if let Some(found) = result.structured_content.as_ref().and_then(unwrap) {
        return Some(found);
    }
    let text = result.content.first()?.as_text()?;
    unwrap(&serde_json::from_str(&text.text).ok()?)
}

/// A paid tool call's outcome.
#[derive(Debug)]
pub struct PaidCall {
    /// The tool's answer.
    pub result: CallToolResult,
    /// The payment made, if the tool asked for one.
    pub payment: Option<Payment>,
    /// The server's settlement receipt.
    pub receipt: Option<SettleResponse>,
    /// The payment as sent: a tool that failed (`isError`, no receipt) was not charged, and this payment may pay
    /// the next call.
    pub payload: Option<Value>,
}

/// Why a paid tool call did not go through.
#[derive(Debug, thiserror::Error)]
pub enum PaidToolError {
    /// The MCP call failed.
    #[error("the tool call failed: {0}")]
    Call(#[from] ServiceError),
    /// The tool's payment-required answer is not an x402 offer.
    #[error("the tool's payment request is not an x402 offer: {0}")]
    Offer(String),
    /// The client would not pay (policy, budget, signing).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The paid call got no answer: the payment may still settle; send `payload` again rather than a new one.
    #[error("the paid tool call got no answer (its payment may still settle; send it again): {source}")]
    Unanswered {
        /// The payment.
        payment: Box<Payment>,
        /// The payment as sent.
        payload: Box<Value>,
        /// Why.
        #[source]
        source: ServiceError,
    },
    /// The server could not decide the payment, also when it was sent again: send `payload` again later.
    #[error("the tool's server could not settle the payment yet; send the same payment again later")]
    Undecided {
        /// The payment.
        payment: Box<Payment>,
        /// The payment as sent.
        payload: Box<Value>,
        /// Its answer.
        result: Box<CallToolResult>,
    },
    /// The server refused the payment, or could not settle it.
    #[error("the tool refused the payment: {reason}")]
    PaymentFailed {
        /// Its reason.
        reason: String,
        /// The payment it refused (signed: it may still settle if the server kept it).
        payment: Box<Payment>,
        /// Its answer.
        result: Box<CallToolResult>,
    },
}

/// Calls a tool through `peer`; if it asks for an x402 payment, pays it with `client` (its policy and budget)
/// and calls again with the payment in `_meta["x402/payment"]`.
pub async fn call_paid_tool<S: Signer + Send + Sync>(
    peer: &Peer<RoleClient>,
    client: &Client<S>,
    params: CallToolRequestParams,
) -> Result<PaidCall, PaidToolError> {
    let first = peer.call_tool(params.clone()).await?;
    let Some(required) = payment_required_of(&first) else {
        return Ok(PaidCall { result: first, payment: None, receipt: None, payload: None });
    };
    let offer = offer::from_json(required).map_err(PaidToolError::Offer)?;
    let (signed, payment) = client.authorize(&offer).await?;
    let mut paid = params;
    let mut meta = paid.meta.take().unwrap_or_default();
    meta.insert(PAYMENT_META.to_owned(), signed.payload.clone());
    paid.meta = Some(meta);
    let payment = Box::new(payment);
    let unanswered = |payment: &Payment, source| PaidToolError::Unanswered {
        payment: Box::new(payment.clone()),
        payload: Box::new(signed.payload.clone()),
        source,
    };
    let mut result = peer.call_tool(paid.clone()).await.map_err(|e| unanswered(&payment, e))?;
    if undecided(&result) {
        // Sent again, the same payment: the server resumes it rather than taking a second one.
        tokio::time::sleep(RESEND_AFTER).await;
        result = peer.call_tool(paid).await.map_err(|e| unanswered(&payment, e))?;
    }
    let receipt: Option<SettleResponse> = result
        .meta
        .as_ref()
        .and_then(|meta: &MetaObject| meta.get(PAYMENT_RESPONSE_META))
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    if undecided(&result) {
        return Err(PaidToolError::Undecided {
            payment,
            payload: Box::new(signed.payload),
            result: Box::new(result),
        });
    }
    if let Some(again) = payment_required_of(&result) {
        let reason = again.get("error").and_then(Value::as_str).unwrap_or("no reason given").to_owned();
        return Err(PaidToolError::PaymentFailed { reason, payment, result: Box::new(result) });
    }
    Ok(PaidCall { result, payment: Some(*payment), receipt, payload: Some(signed.payload) })
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_request_is_found_where_the_transport_puts_it() {
        let offer =
            json!({"x402Version": 2, "error": "pay", "resource": {"url": "mcp://tool/t"}, "accepts": []});
        let error = |structured: Option<Value>, text: &str| {
            let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
            result.structured_content = structured;
            result
        };
        let wrapped = json!({ERROR_KEY: {"code": 402, "message": "pay", "data": offer}});
        assert_eq!(payment_required_of(&error(Some(offer.clone()), "")), Some(offer.clone()));
        assert_eq!(payment_required_of(&error(Some(wrapped.clone()), "")), Some(offer.clone()));
        assert_eq!(payment_required_of(&error(None, &wrapped.to_string())), Some(offer.clone()));
        assert_eq!(payment_required_of(&error(None, &offer.to_string())), Some(offer.clone()));
        assert_eq!(payment_required_of(&error(None, "no forecast today")), None, "a tool's own error");
        let mut fine = CallToolResult::structured(offer);
        fine.is_error = Some(false);
        assert_eq!(payment_required_of(&fine), None, "only errors ask for payment");
        let priced = Priced { description: "d".into(), accepts: Vec::new() };
        let built = payment_required("t", &priced, "pay", None);
        assert_eq!(payment_required_of(&built).unwrap()["resource"]["url"], "mcp://tool/t");
        let text: Value = serde_json::from_str(&built.content[0].as_text().unwrap().text).unwrap();
        assert_eq!(text[ERROR_KEY]["data"], built.structured_content.unwrap());
    }
}
