//! Who verifies and settles: the [`Facilitator`] trait, with [`HttpFacilitator`] for any standard facilitator
//! (this project's `x402 facilitator`, or the hosted ones) and, with the `in-process` feature, `InProcess` for this
//! project's facilitator in the same process.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use x402_protocol::channel::{ChannelReceipt, VoucherRequest};
use x402_protocol::facilitator::{SettleResponse, VerifyResponse};

/// A boxed future, as the trait's methods return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a facilitator gave no answer about the payment (as opposed to an answer that refuses it).
#[derive(Debug, thiserror::Error)]
pub enum FacilitatorError {
    /// It could not be reached, or did not answer in time.
    #[error("the facilitator could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// It answered with an error status and no verdict.
    #[error("the facilitator answered HTTP {status}: {body}")]
    Status {
        /// The status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// Its answer is not the facilitator API's.
    #[error("the facilitator's answer is not a facilitator answer: {0}")]
    Answer(#[source] serde_json::Error),
    /// It could not decide now (chain or store unavailable, queue full).
    #[error("the facilitator cannot decide now: {0}")]
    Unavailable(String),
    /// It does not do this.
    #[error("the facilitator does not support {0}")]
    Unsupported(&'static str),
}

/// Verifies and settles payments: `request` is the facilitator body `{x402Version, paymentPayload,
/// paymentRequirements}`. An invalid payment is an `Ok` answer with `isValid: false` / `success: false`; an `Err`
/// means no verdict (the client may try again).
pub trait Facilitator: Send + Sync + 'static {
    /// `POST /verify`.
    fn verify(&self, request: Value) -> BoxFuture<'_, Result<VerifyResponse, FacilitatorError>>;
    /// `POST /settle`.
    fn settle(&self, request: Value) -> BoxFuture<'_, Result<SettleResponse, FacilitatorError>>;
    /// `POST /channels/vouchers` (this project's facilitator): takes a `channel` voucher, stored before the
    /// answer. A facilitator without the scheme answers [`FacilitatorError::Unsupported`].
    fn accept_voucher(
        &self,
        request: VoucherRequest,
    ) -> BoxFuture<'_, Result<ChannelReceipt, FacilitatorError>> {
        let _ = request;
        Box::pin(async { Err(FacilitatorError::Unsupported("the channel scheme")) })
    }
}

/// A facilitator behind a URL.
#[derive(Clone, Debug)]
pub struct HttpFacilitator {
    client: reqwest::Client,
    base: String,
    api_key: Option<String>,
    verify_timeout: Duration,
    settle_timeout: Duration,
}

/// How long a `/verify` may take [10 s].
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `/settle` may take [70 s: this project's facilitator answers `settlement_pending` after 30 s].
pub const DEFAULT_SETTLE_TIMEOUT: Duration = Duration::from_secs(70);

impl HttpFacilitator {
    /// The facilitator at `url` (its routes are `url/verify` and `url/settle`).
    pub fn new(url: &str) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            client,
            base: url.trim_end_matches('/').to_owned(),
            api_key: None,
            verify_timeout: DEFAULT_VERIFY_TIMEOUT,
            settle_timeout: DEFAULT_SETTLE_TIMEOUT,
        })
    }

    /// Sends `Authorization: Bearer <key>` (a facilitator that requires a key for `/settle`).
    pub fn api_key(mut self, key: String) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Gives `/verify` and `/settle` these times to answer.
    pub fn timeouts(mut self, verify: Duration, settle: Duration) -> Self {
        self.verify_timeout = verify;
        self.settle_timeout = settle;
        self
    }

    async fn post<T: DeserializeOwned>(
        &self,
        route: &str,
        request: Value,
        timeout: Duration,
    ) -> Result<T, FacilitatorError> {
        let mut call = self.client.post(format!("{}/{route}", self.base)).json(&request).timeout(timeout);
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let response = call.send().await.map_err(FacilitatorError::Transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(FacilitatorError::Transport)?;
        // A verdict comes with 200, from this project's facilitator also with 400 (a payment that is not one) and
        // 409 (a payment-identifier reused), and from the hosted one with 500 for `settlement_pending`: whatever
        // the status, a body that is an answer is the verdict. Anything else is no answer.
        match serde_json::from_slice::<T>(&body) {
            Ok(answer) => Ok(answer),
            Err(err) if status.is_success() => Err(FacilitatorError::Answer(err)),
            _ => Err(FacilitatorError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            }),
        }
    }
}

impl Facilitator for HttpFacilitator {
    fn verify(&self, request: Value) -> BoxFuture<'_, Result<VerifyResponse, FacilitatorError>> {
        Box::pin(self.post("verify", request, self.verify_timeout))
    }

    fn settle(&self, request: Value) -> BoxFuture<'_, Result<SettleResponse, FacilitatorError>> {
        Box::pin(self.post("settle", request, self.settle_timeout))
    }

    fn accept_voucher(
        &self,
        request: VoucherRequest,
    ) -> BoxFuture<'_, Result<ChannelReceipt, FacilitatorError>> {
        Box::pin(async move {
            let body = serde_json::to_value(&request).map_err(FacilitatorError::Answer)?;
            let receipt: ChannelReceipt = self.post("channels/vouchers", body, self.verify_timeout).await?;
            // 503 comes with a receipt whose reason is `unavailable`: no verdict.
            if receipt.error_reason.as_deref() == Some("unavailable") {
                return Err(FacilitatorError::Unavailable(receipt.error_message.unwrap_or_default()));
            }
            Ok(receipt)
        })
    }
}

/// This project's facilitator in the same process: no network hop, the same checks and batches.
#[cfg(feature = "in-process")]
#[derive(Clone, Debug)]
pub struct InProcess(pub std::sync::Arc<x402_facilitator::Facilitator>);

#[cfg(feature = "in-process")]
mod in_process {
    use serde::Deserialize;
    use serde_json::Value;
    use x402_facilitator::service::Answer;
    use x402_protocol::channel::{ChannelReceipt, VoucherRequest};
    use x402_protocol::facilitator::{PaymentRequest, SettleResponse, VerifyResponse};

    use super::{BoxFuture, Facilitator, FacilitatorError, InProcess};

    fn verdict<T>(answer: Answer<T>, message: impl Fn(&T) -> Option<String>) -> Result<T, FacilitatorError> {
        match answer {
            Answer::Ok(body) | Answer::Conflict(body) => Ok(body),
            Answer::Unavailable(body) | Answer::Busy(body, _) => {
                Err(FacilitatorError::Unavailable(message(&body).unwrap_or_default()))
            }
        }
    }

    impl Facilitator for InProcess {
        fn verify(&self, request: Value) -> BoxFuture<'_, Result<VerifyResponse, FacilitatorError>> {
            Box::pin(async move {
                match PaymentRequest::deserialize(&request) {
                    Ok(parsed) => {
                        verdict(self.0.verify(&parsed, &request).await, |b| b.invalid_message.clone())
                    }
                    Err(err) => Ok(VerifyResponse {
                        is_valid: false,
                        invalid_reason: Some(x402_protocol::Reason::Payload.as_str().to_owned()),
                        invalid_message: Some(format!("not a payment request: {err}")),
                        payer: None,
                        extensions: None,
                    }),
                }
            })
        }

        fn settle(&self, request: Value) -> BoxFuture<'_, Result<SettleResponse, FacilitatorError>> {
            Box::pin(async move {
                match PaymentRequest::deserialize(&request) {
                    Ok(parsed) => {
                        verdict(self.0.settle(&parsed, &request).await, |b| b.error_message.clone())
                    }
                    Err(err) => Ok(SettleResponse {
                        success: false,
                        error_reason: Some(x402_protocol::Reason::Payload.as_str().to_owned()),
                        error_message: Some(format!("not a payment request: {err}")),
                        payer: None,
                        transaction: String::new(),
                        network: String::new(),
                        amount: None,
                        extensions: None,
                    }),
                }
            })
        }

        fn accept_voucher(
            &self,
            request: VoucherRequest,
        ) -> BoxFuture<'_, Result<ChannelReceipt, FacilitatorError>> {
            Box::pin(
                async move { verdict(self.0.accept_voucher(&request).await, |b| b.error_message.clone()) },
            )
        }
    }
}
