//! Verification of an `exact` EVM payment, as `/verify` answers it and `/settle` repeats it: the chain-free checks
//! in the reference facilitator's order (version, scheme, network, the token and its EIP-712 domain, signature,
//! recipient, validity window, value), the intake policy, then the chain: nonce, balance and a simulated transfer
//! in one round of concurrent reads, and the payer's other payments verified or queued and not settled yet counted
//! against its balance.

use alloy::primitives::{Address, keccak256};
use tokio::time::Instant;
use x402_keeper::intake::{Checked, OnchainError, check_onchain_simulated, describe};
use x402_keeper::store::{BalanceSeen, PaymentStatus, StoreError};
use x402_protocol::Reason;
use x402_protocol::facilitator::PaymentRequest;

use crate::engine::Engine;
use crate::holds::{Holds, Refused};

/// Why a payment is not valid, or could not be judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The payment is invalid: an x402 reason and what is wrong.
    Invalid {
        /// The reason.
        reason: String,
        /// For people.
        message: String,
    },
    /// The chain or the store could not be asked; the payment is neither valid nor invalid.
    Unavailable(String),
}

impl Refusal {
    /// An invalid payment with `reason` and its usual description.
    pub fn reason(reason: Reason) -> Self {
        Self::Invalid { reason: reason.as_str().to_owned(), message: describe(reason).to_owned() }
    }

    fn invalid(reason: Reason, message: impl Into<String>) -> Self {
        Self::Invalid { reason: reason.as_str().to_owned(), message: message.into() }
    }
}

impl From<StoreError> for Refusal {
    fn from(err: StoreError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

/// A payment that passed every check.
#[derive(Clone, Debug)]
pub struct Passed {
    /// The payment.
    pub checked: Checked,
    /// The payer's balance as read, with the settled sum read before it.
    pub seen: BalanceSeen,
    /// The chain time the checks used.
    pub now: u64,
}

/// A payment that passed the checks without the chain's state: what it is, at what chain time, and the deadline its
/// chain reads share.
#[derive(Clone, Debug)]
pub struct Offline {
    /// The payment.
    pub checked: Checked,
    /// The chain time the window was checked at.
    pub now: u64,
    deadline: Instant,
}

/// The checks that need only the chain's time: the verifier's (reference order) and the intake policy.
pub async fn offline(engine: &Engine, request: &PaymentRequest) -> Result<Offline, Refusal> {
    let context = &engine.context;
    if let Some(cause) = context.not_taking() {
        return Err(Refusal::Unavailable(cause));
    }
    let deadline = Instant::now() + context.settings.intake_timeout;
    let now = match tokio::time::timeout_at(deadline, context.chain_time()).await {
        Ok(Ok(now)) => now,
        Ok(Err(err)) => {
            context.chain_answered(false);
            return Err(Refusal::Unavailable(format!("cannot read the chain: {err}")));
        }
        Err(_) => {
            context.chain_answered(false);
            return Err(Refusal::Unavailable("the chain did not answer in time".into()));
        }
    };
    let checked = engine.verifier.check(request, now).map_err(Refusal::reason)?;
    context.policy.check(&checked).map_err(|refused| Refusal::invalid(refused.reason, refused.message))?;
    Ok(Offline { checked, now, deadline })
}

/// The checks only the chain answers, within the deadline of [`offline`]: the payer not refused before, the nonce
/// unused, the balance, and the transfer simulated.
pub async fn onchain(engine: &Engine, offline: Offline) -> Result<Passed, Refusal> {
    let context = &engine.context;
    let Offline { checked, now, deadline } = offline;
    if context.store.payer_refused(&checked.authorization.from)? {
        return Err(Refusal::invalid(
            Reason::Signature,
            "a payment from this wallet passed simulation and was refused on chain; no more are taken",
        ));
    }
    // Read before the balance: whatever of the payer's settles in between is taken off the balance read.
    let settled = context.store.payer_totals(&checked.token, &checked.authorization.from)?.settled;
    let reads = check_onchain_simulated(&context.provider, &checked, &context.payer_codes);
    let facts = match tokio::time::timeout_at(deadline, reads).await {
        Ok(Ok(facts)) => facts,
        Ok(Err(OnchainError::Invalid(reason))) => return Err(Refusal::reason(reason)),
        Ok(Err(OnchainError::Rpc(err))) => {
            return Err(Refusal::Unavailable(format!("cannot read the token: {err}")));
        }
        Err(_) => return Err(Refusal::Unavailable("the chain did not answer in time".into())),
    };
    Ok(Passed { checked, seen: BalanceSeen { balance: facts.balance, settled }, now })
}

/// `/verify`: the payer if `request` would settle now. A payment this facilitator already took is judged by its
/// record once the request is shown to carry it for these requirements; a new one is checked on chain and then
/// held against its payer's balance until it settles or expires.
pub async fn verify(engine: &Engine, holds: &Holds, request: &PaymentRequest) -> Result<Address, Refusal> {
    let offline = offline(engine, request).await?;
    let key = offline.checked.key();
    if let Some(record) = engine.context.store.payment(&key)? {
        if record.signature != offline.checked.signature {
            // Another authorization with the same nonce: only the one taken can ever settle.
            return Err(Refusal::reason(Reason::NonceAlreadyUsed));
        }
        return match record.status {
            PaymentStatus::Queued | PaymentStatus::Submitted => Ok(key.payer),
            PaymentStatus::Settled => Err(Refusal::invalid(
                Reason::NonceAlreadyUsed,
                format!("settled already, in {}", record.tx_hash.unwrap_or_default()),
            )),
            PaymentStatus::Failed => {
                let reason = record.reason.unwrap_or_else(|| Reason::UnexpectedSettle.as_str().to_owned());
                Err(Refusal::Invalid { message: format!("it failed before: {reason}"), reason })
            }
        };
    }
    let passed = onchain(engine, offline).await?;
    let a = &passed.checked.authorization;
    let totals = engine.context.store.payer_totals(&key.token, &key.payer)?;
    // What settled since the balance's settled sum was read may or may not be gone from the balance: counted gone.
    let balance = passed.seen.balance.saturating_sub(totals.settled.saturating_sub(passed.seen.settled));
    let available = balance.saturating_sub(totals.outstanding);
    let until = u64::try_from(a.validBefore).unwrap_or(u64::MAX);
    let signed = keccak256(&passed.checked.signature);
    match holds.hold(key, signed, a.value, until, passed.now, available) {
        Ok(()) => Ok(key.payer),
        Err(Refused::OverBalance { held }) => Err(Refusal::invalid(
            Reason::InsufficientFunds,
            format!(
                "the payer's payments verified or queued and not settled yet ({}) and this one ({}) exceed its \
                 balance ({balance})",
                held.saturating_add(totals.outstanding),
                a.value
            ),
        )),
        Err(Refused::TooMany) => Err(Refusal::invalid(
            Reason::InsufficientFunds,
            "too many of the payer's verified payments are not settled yet; settle some first",
        )),
    }
}

/// The balance `passed` leaves for the payment itself once the payer's other verified payments are held.
pub fn seen_for_settlement(passed: &Passed, holds: &Holds) -> BalanceSeen {
    let others = holds.held_by_others(&passed.checked.key(), passed.now);
    BalanceSeen { balance: passed.seen.balance.saturating_sub(others), settled: passed.seen.settled }
}
