//! The paying client: sends a request, and on 402 picks the first requirement the policy allows, counts it
//! against the budget, signs it, and sends the request again with the payment. Transient failures (no
//! connection, 429, 502, 503, 504) are retried with backoff, the paid request with the same payment, so one
//! logical request is never paid twice; a refused payment is not retried.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::signers::Signer;
use alloy_primitives::{Address, B256, U256};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Request, Response, StatusCode};
use x402_protocol::Reason;
use x402_protocol::channel::{ChannelReason, ChannelReceipt};
use x402_protocol::facilitator::SettleResponse;
use x402_protocol::headers::{self, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X_PAYMENT, X_PAYMENT_RESPONSE};
use x402_protocol::v2;

use crate::channel::{self, Channel};
use crate::ledger::{Budget, LedgerError};
use crate::offer::{self, Candidate, Offer};
use crate::policy::Policy;
use crate::sign::{SignError, Signed, sign};

/// How long one request may take by default: a paywall may verify (10 s), run its handler and settle (up to
/// 70 s, twice) before it answers.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How many times a transient failure is retried by default.
pub const DEFAULT_RETRIES: u32 = 3;

/// A payment the client made.
#[derive(Clone, Debug)]
pub struct Payment {
    /// The version it was made in.
    pub version: u8,
    /// The requirement paid, in v2's shape.
    pub requirement: v2::PaymentRequirements,
    /// The network as the server named it.
    pub network: String,
    /// The amount, in the token's units.
    pub amount: U256,
    /// Who paid.
    pub payer: Address,
    /// The authorization's nonce.
    pub nonce: B256,
    /// The server's settlement receipt, if it sent one (`exact`).
    pub receipt: Option<SettleResponse>,
    /// The server's channel receipt (`channel`: `nonce` is then the channel's id).
    pub channel: Option<ChannelReceipt>,
}

/// The answer to a request, and what was paid for it.
#[derive(Debug)]
pub struct Outcome {
    /// The final answer.
    pub response: Response,
    /// The offer of the 402 that came first, if one did.
    pub offer: Option<Offer>,
    /// The payment, if one was made.
    pub payment: Option<Payment>,
}

/// What a request would cost, without paying.
#[derive(Debug)]
pub enum Quote {
    /// The server did not ask for a payment.
    Free(Response),
    /// It asked: the offer, and the requirement the policy picks (or why each was refused).
    Priced {
        /// The offer.
        offer: Box<Offer>,
        /// The pick and its amount, or every requirement's refusal.
        choice: Result<(Box<Candidate>, U256), Vec<String>>,
    },
}

/// Why a request was not answered, or not paid.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request failed (after the retries, for transient failures).
    #[error("the request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The request's body is a stream, which cannot be sent twice.
    #[error("the request's body cannot be sent twice, so it cannot be paid for")]
    NotReplayable,
    /// The 402 is not an x402 offer.
    #[error("the 402 answer is not an x402 offer: {0}")]
    Offer(String),
    /// No requirement is allowed by the policy.
    #[error("no offered payment is allowed: {}", .0.join("; "))]
    Refused(Vec<String>),
    /// The budget has not this much left.
    #[error("the budget has {left} left of this token this period, and the payment is {amount}")]
    OverBudget {
        /// The price.
        amount: U256,
        /// What is left.
        left: U256,
    },
    /// The spend ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The payment could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The request already carries a payment header (the official clients refuse these too).
    #[error("the request already carries a payment")]
    AlreadyPaid,
    /// The payment was sent and no answer came: the signed authorization may still be settled.
    #[error("the payment of {} was sent but no answer came (its authorization may still settle): {source}", .payment.amount)]
    Unanswered {
        /// The payment sent.
        payment: Box<Payment>,
        /// Why no answer came.
        #[source]
        source: reqwest::Error,
    },
    /// The server refused the payment.
    #[error("the server refused the payment (HTTP {status}): {reason}")]
    PaymentFailed {
        /// Its status.
        status: u16,
        /// Its reason.
        reason: String,
        /// The payment it refused.
        payment: Box<Payment>,
    },
}

/// A client that pays x402 requests with `S`'s key, which never leaves it.
#[derive(Debug)]
pub struct Client<S> {
    http: reqwest::Client,
    signer: S,
    policy: Policy,
    budget: Option<Budget>,
    retries: u32,
    backoff: Duration,
    channels: Vec<Arc<Channel>>,
}

/// How many times a voucher that lost a race is signed again.
const CHANNEL_RESIGNS: u32 = 3;

impl<S: Signer + Send + Sync> Client<S> {
    /// A client that signs with `signer`, under the default [`Policy`], with no budget.
    pub fn new(signer: S) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(DEFAULT_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            signer,
            policy: Policy::default(),
            budget: None,
            retries: DEFAULT_RETRIES,
            backoff: Duration::from_millis(200),
            channels: Vec::new(),
        })
    }

    /// Pays requirements of the `channel` scheme that `channel` serves with its vouchers (preferred to `exact`
    /// while its deposit lasts).
    /// A channel shared with other clients (`Arc<Channel>`) keeps one running total for all of them.
    pub fn channel(mut self, channel: impl Into<Arc<Channel>>) -> Self {
        self.channels.push(channel.into());
        self
    }

    /// The channels the client pays through.
    pub fn channels(&self) -> &[Arc<Channel>] {
        &self.channels
    }

    /// Uses `http` to send requests (its timeouts apply).
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Pays under `policy`.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Counts payments against `budget`.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Retries transient failures `retries` times, waiting `backoff`, then twice as long each time.
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }

    /// The payer's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The underlying HTTP client, to build requests with.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request` without paying and says what it would cost.
    pub async fn quote(&self, request: Request) -> Result<Quote, ClientError> {
        let response = self.send_retrying(&request, None).await?;
        if response.status() != StatusCode::PAYMENT_REQUIRED {
            return Ok(Quote::Free(response));
        }
        let offer = read_offer(response).await?;
        let choice = self.choose(&offer).map(|(candidate, amount)| (Box::new(candidate), amount));
        Ok(Quote::Priced { offer: Box::new(offer), choice })
    }

    /// Sends `request`; on 402 pays as the policy allows and sends it again with the payment.
    pub async fn send(&self, request: Request) -> Result<Outcome, ClientError> {
        if [PAYMENT_SIGNATURE, X_PAYMENT].iter().any(|name| request.headers().contains_key(*name)) {
            return Err(ClientError::AlreadyPaid);
        }
        let first = self.send_retrying(&request, None).await?;
        if first.status() != StatusCode::PAYMENT_REQUIRED {
            return Ok(Outcome { response: first, offer: None, payment: None });
        }
        let offer = read_offer(first).await?;
        let (candidate, amount) = self.choose(&offer).map_err(ClientError::Refused)?;
        if candidate.requirement.scheme == x402_protocol::channel::SCHEME {
            return self.pay_by_channel(&request, offer, candidate, amount).await;
        }
        let (signed, mut payment) = self.sign_counted(&offer, &candidate, amount).await?;
        let header =
            HeaderValue::from_str(&signed.value).map_err(|e| SignError::Requirement(e.to_string()))?;
        let mut pending_retried = false;
        loop {
            let response = match self.send_retrying(&request, Some((signed.header, header.clone()))).await {
                Ok(response) => response,
                Err(ClientError::Http(source)) => {
                    return Err(ClientError::Unanswered { payment: Box::new(payment), source });
                }
                Err(other) => return Err(other),
            };
            payment.receipt = receipt(response.headers());
            if response.status() != StatusCode::PAYMENT_REQUIRED {
                return Ok(Outcome { response, offer: Some(offer), payment: Some(payment) });
            }
            let pending = payment.receipt.as_ref().and_then(|r| r.error_reason.as_deref())
                == Some(Reason::SettlementPending.as_str());
            if pending && !pending_retried {
                // Sent but not confirmed yet: the same payment again is served once it settles.
                pending_retried = true;
                tokio::time::sleep(self.backoff.max(Duration::from_secs(1))).await;
                continue;
            }
            let status = response.status().as_u16();
            let reason = refusal(&payment, response).await;
            return Err(ClientError::PaymentFailed { status, reason, payment: Box::new(payment) });
        }
    }

    /// Signs an `exact` payment for `offer` as [`Client::send`] would (the first requirement the policy allows,
    /// counted against the budget), for a transport other than HTTP to carry (MCP's `_meta["x402/payment"]`):
    /// the signed payment and what it pays.
    pub async fn authorize(&self, offer: &Offer) -> Result<(Signed, Payment), ClientError> {
        let (candidate, amount) = self.choose_exact(offer).map_err(ClientError::Refused)?;
        self.sign_counted(offer, &candidate, amount).await
    }

    /// Signs `candidate` for `amount` and counts it against the budget: signed first (a requirement that cannot
    /// be signed costs nothing), counted before it is sent.
    async fn sign_counted(
        &self,
        offer: &Offer,
        candidate: &Candidate,
        amount: U256,
    ) -> Result<(Signed, Payment), ClientError> {
        let now = unix_now();
        let signed = sign(&self.signer, candidate, offer.resource.as_ref(), amount, now).await?;
        if let Some(budget) = &self.budget {
            let chain_id = candidate.chain_id.unwrap_or_default();
            let token = candidate.requirement.asset.parse().unwrap_or_default();
            if let Err(left) = budget.spend(chain_id, token, amount, now)? {
                return Err(ClientError::OverBudget { amount, left });
            }
        }
        let payment = Payment {
            version: candidate.version,
            requirement: candidate.requirement.clone(),
            network: candidate.network.clone(),
            amount,
            payer: signed.payer,
            nonce: signed.nonce,
            receipt: None,
            channel: None,
        };
        Ok((signed, payment))
    }

    /// Pays `candidate` (a `channel` requirement) with a voucher of a channel that serves it, signing again
    /// from the server's running total when a voucher lost a race.
    async fn pay_by_channel(
        &self,
        request: &Request,
        offer: Offer,
        candidate: Candidate,
        price: U256,
    ) -> Result<Outcome, ClientError> {
        let chain_id = candidate.chain_id.unwrap_or_default();
        let requirement = &candidate.requirement;
        let channel = self.channel_for(chain_id, requirement).ok_or_else(|| {
            ClientError::Refused(vec!["no channel of this client serves the offer".to_owned()])
        })?;
        let now = unix_now();
        if let Some(budget) = &self.budget
            && let Err(left) = budget.spend(chain_id, channel.token, price, now)?
        {
            return Err(ClientError::OverBudget { amount: price, left });
        }
        let mut payment = Payment {
            version: 2,
            requirement: requirement.clone(),
            network: candidate.network.clone(),
            amount: price,
            payer: self.signer.address(),
            nonce: channel.id,
            receipt: None,
            channel: None,
        };
        let mut resigned = 0;
        loop {
            let Some(reservation) = channel.reserve(price) else {
                let reason = format!("the channel's deposit {} cannot cover {price} more", channel.deposit);
                return Err(ClientError::Refused(vec![reason]));
            };
            let signed =
                channel.header(&self.signer, requirement, offer.resource.as_ref(), reservation.amount).await;
            let header = signed
                .and_then(|v| HeaderValue::from_str(&v).map_err(|e| SignError::Requirement(e.to_string())))?;
            let sent = self.send_retrying(request, Some((PAYMENT_SIGNATURE, header))).await;
            payment.channel = sent.as_ref().ok().and_then(|response| channel::receipt(response.headers()));
            let reported = payment.channel.as_ref().and_then(|r| x402_protocol::parse_amount(&r.cumulative));
            // A server's total is believed up to one request's cap above what this client knows was owed.
            if !reservation.answered(reported, self.policy.cap().unwrap_or_default()) {
                let status = sent.as_ref().map_or(0, |r| r.status().as_u16());
                let reason = format!(
                    "the server reports {} taken on the channel, more than this client signed plus the cap per \
                     request: not believed, nothing more signed",
                    reported.unwrap_or_default()
                );
                return Err(ClientError::PaymentFailed { status, reason, payment: Box::new(payment) });
            }
            let response = match sent {
                Ok(response) => response,
                Err(ClientError::Http(source)) => {
                    return Err(ClientError::Unanswered { payment: Box::new(payment), source });
                }
                Err(other) => return Err(other),
            };
            let lost_race = payment.channel.as_ref().and_then(|r| r.error_reason.as_deref())
                == Some(ChannelReason::TooLow.as_str());
            if response.status() != StatusCode::PAYMENT_REQUIRED {
                return Ok(Outcome { response, offer: Some(offer), payment: Some(payment) });
            }
            if lost_race && resigned < CHANNEL_RESIGNS {
                resigned += 1;
                continue;
            }
            let status = response.status().as_u16();
            let reason = match payment.channel.as_ref().and_then(|r| r.error_reason.clone()) {
                Some(reason) => reason,
                None => refusal(&payment, response).await,
            };
            return Err(ClientError::PaymentFailed { status, reason, payment: Box::new(payment) });
        }
    }

    fn channel_for(&self, chain_id: u64, requirement: &v2::PaymentRequirements) -> Option<Arc<Channel>> {
        self.channels.iter().find(|channel| channel.serves(chain_id, requirement)).cloned()
    }

    /// The requirement to pay: a `channel` one a channel of the client serves, else the first the policy
    /// allows.
    fn choose(&self, offer: &Offer) -> Result<(Candidate, U256), Vec<String>> {
        let channel_scheme = |c: &&Candidate| c.requirement.scheme == x402_protocol::channel::SCHEME;
        for candidate in offer.candidates.iter().filter(channel_scheme) {
            let served = candidate.chain_id.and_then(|id| self.channel_for(id, &candidate.requirement));
            if let Some(channel) = served
                && let Ok(amount) = self.policy.allows(candidate)
                && channel.covers(amount)
            {
                return Ok((candidate.clone(), amount));
            }
        }
        self.choose_exact(offer)
    }

    /// The first requirement of another scheme than `channel` the policy allows, or every refusal.
    fn choose_exact(&self, offer: &Offer) -> Result<(Candidate, U256), Vec<String>> {
        let channel_scheme = |c: &&Candidate| c.requirement.scheme == x402_protocol::channel::SCHEME;
        let mut reasons = Vec::new();
        for candidate in offer.candidates.iter().filter(|c| !channel_scheme(c)) {
            match self.policy.allows(candidate) {
                Ok(amount) => return Ok((candidate.clone(), amount)),
                Err(why) => reasons.push(format!(
                    "{} {} on {}: {why}",
                    candidate.requirement.amount, candidate.requirement.asset, candidate.network
                )),
            }
        }
        if reasons.is_empty() {
            reasons.push("the offer lists no requirement this client can pay".to_owned());
        }
        Err(reasons)
    }

    async fn send_retrying(
        &self,
        request: &Request,
        payment: Option<(&'static str, HeaderValue)>,
    ) -> Result<Response, ClientError> {
        let mut wait = self.backoff;
        let mut attempt = 0;
        loop {
            let mut copy = request.try_clone().ok_or(ClientError::NotReplayable)?;
            if let Some((name, value)) = &payment {
                copy.headers_mut().insert(*name, value.clone());
            }
            let result = self.http.execute(copy).await;
            let transient = match &result {
                Ok(response) => matches!(response.status().as_u16(), 429 | 502 | 503 | 504),
                // A paid request that timed out may be being served: sending it again would race with itself.
                Err(err) => err.is_connect() || (payment.is_none() && err.is_timeout()),
            };
            if !transient || attempt >= self.retries {
                return Ok(result?);
            }
            let pause = result.as_ref().ok().and_then(|r| retry_after(r.headers())).unwrap_or(wait);
            tracing::debug!(attempt, ?pause, "transient failure; retrying");
            tokio::time::sleep(pause).await;
            wait = wait.saturating_mul(2);
            attempt += 1;
        }
    }
}

async fn read_offer(response: Response) -> Result<Offer, ClientError> {
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    offer::read(&headers, &body).map_err(ClientError::Offer)
}

/// The settlement receipt in `PAYMENT-RESPONSE` or `X-PAYMENT-RESPONSE`.
pub fn receipt(headers: &HeaderMap) -> Option<SettleResponse> {
    let header = headers.get(PAYMENT_RESPONSE).or_else(|| headers.get(X_PAYMENT_RESPONSE))?;
    headers::decode(header.to_str().ok()?).ok()
}

async fn refusal(payment: &Payment, response: Response) -> String {
    if let Some(reason) = payment.receipt.as_ref().and_then(|r| r.error_reason.clone()) {
        return reason;
    }
    match read_offer(response).await {
        Ok(offer) => offer.error.unwrap_or_else(|| "no reason given".to_owned()),
        Err(err) => err.to_string(),
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(10)))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}
