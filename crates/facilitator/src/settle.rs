//! Settlement, exactly once: `/settle` verifies the payment again, records it in the engine's store (durably,
//! before anything is broadcast) and asks the engine to settle soon; payments arriving within the settle window
//! share one `settleBatch`. The caller waits for its own item's outcome at the confirmation depth. A payment the
//! store knows already (a retry, a second caller, a restart) is never recorded or sent again: its caller waits for,
//! or is given, the same outcome and transaction.

use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::primitives::{Address, B256, U256, keccak256};
use tokio::time::Instant;
use x402_keeper::store::{Accepted, Durability, IdBinding, PaymentKey, PaymentRecord, PaymentStatus};
use x402_protocol::Reason;
use x402_protocol::facilitator::PaymentRequest;

use crate::engine::Engine;
use crate::holds::Holds;
use crate::verify::{self, Refusal};

/// What became of a `/settle`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Settled in `transaction`.
    Settled {
        /// The batch that settled it.
        transaction: B256,
        /// The payer.
        payer: Address,
        /// The amount transferred.
        amount: U256,
    },
    /// Refused or failed: an x402 reason, and the transaction if one carried it.
    Failed {
        /// The reason.
        reason: String,
        /// For people.
        message: String,
        /// The transaction that failed it, if any.
        transaction: Option<B256>,
        /// The payer.
        payer: Address,
    },
    /// Not confirmed within the settle timeout; a later `/settle` of the same payment gives the outcome.
    Pending {
        /// The transaction carrying it, once sent.
        transaction: Option<B256>,
        /// The payer.
        payer: Address,
    },
    /// The settlement queue is full.
    Busy {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The `payment-identifier` id came with another request before.
    Conflict,
    /// The chain or the store could not be asked.
    Unavailable(String),
}

/// A client's `payment-identifier` id and the fingerprint of the request it came with.
#[derive(Clone, Copy, Debug)]
pub struct PaymentId<'a> {
    /// The id.
    pub id: &'a str,
    /// The request's fingerprint.
    pub fingerprint: B256,
}

/// Settles `request` on `engine`, waiting until `deadline` for the outcome.
pub async fn settle(
    engine: &Engine,
    holds: &Holds,
    request: &PaymentRequest,
    payment_id: Option<PaymentId<'_>>,
    deadline: Instant,
) -> Settlement {
    let failed = |reason: String, message: String, payer| Settlement::Failed {
        reason,
        message,
        transaction: None,
        payer,
    };
    let refused = |refusal: Refusal, payer| match refusal {
        Refusal::Invalid { reason, message } => failed(reason, message, payer),
        Refusal::Unavailable(cause) => Settlement::Unavailable(cause),
    };
    let payer = request.payment_payload.payload.authorization.from;
    // Whether the request carries a signed payment for these requirements, whenever it was to settle: a payment
    // taken before is answered with its outcome, never for other requirements than its own.
    let terms = match engine.verifier.check_terms(request) {
        Ok(terms) => terms,
        Err(reason) => return refused(Refusal::reason(reason), payer),
    };
    let key = terms.key();
    let store = &engine.context.store;
    if let Some(PaymentId { id, fingerprint }) = payment_id {
        match store.bind_payment_id(id, fingerprint, key) {
            Ok(IdBinding::Bound | IdBinding::Same(_)) => {}
            Ok(IdBinding::Conflict) => return Settlement::Conflict,
            Err(err) => return Settlement::Unavailable(err.to_string()),
        }
    }
    match store.payment(&key) {
        Ok(Some(record)) if record.signature == terms.signature => {
            if record.status == PaymentStatus::Queued {
                engine.context.settle_soon.notify_one();
            }
            return wait(engine, key, deadline).await;
        }
        // The same nonce with another signature is another authorization: only one of them can ever settle.
        Ok(Some(_)) => return refused(Refusal::reason(Reason::NonceAlreadyUsed), payer),
        Ok(None) => {}
        Err(err) => return Settlement::Unavailable(err.to_string()),
    }
    let arriving = Arriving::new(&engine.context.settles_arriving);
    let passed = match verify::offline(engine, request).await {
        Ok(offline) => verify::onchain(engine, offline).await,
        Err(refusal) => Err(refusal),
    };
    let passed = match passed {
        Ok(passed) => passed,
        Err(refusal) => {
            // Refused for good (not for a chain that did not answer): its `/verify` hold, if any, holds nothing.
            if matches!(refusal, Refusal::Invalid { .. }) {
                holds.release_refused(&key, keccak256(&terms.signature));
            }
            return refused(refusal, payer);
        }
    };
    let seen = verify::seen_for_settlement(&passed, holds);
    let context = &engine.context;
    match store.accept_payment(
        passed.checked.queued_record(),
        context.settings.max_queue,
        seen,
        Durability::UntilSent,
    ) {
        Ok(Accepted::Queued { queued, .. }) => {
            drop(arriving);
            holds.release(&key);
            context.metrics.intake("queued");
            context.metrics.queue_depth(queued);
            context.settle_soon.notify_one();
        }
        // Taken meanwhile by another caller: the same payment is waited for; another authorization with the same
        // nonce (a payer signing twice) can never settle too.
        Ok(Accepted::Duplicate(_)) => {}
        Ok(Accepted::NonceTaken) => return refused(Refusal::reason(Reason::NonceAlreadyUsed), payer),
        Ok(Accepted::OverBalance { outstanding, balance }) => {
            return Settlement::Failed {
                reason: Reason::InsufficientFunds.as_str().to_owned(),
                message: format!(
                    "the payer's payments not settled yet ({outstanding}) and this one ({}) exceed its balance \
                     less what its other verified payments hold ({balance})",
                    passed.checked.authorization.value
                ),
                transaction: None,
                payer: key.payer,
            };
        }
        Ok(Accepted::QueueFull) => {
            return Settlement::Busy { retry_after: context.settings.interval.as_secs().max(1) };
        }
        Err(err) => return Settlement::Unavailable(err.to_string()),
    }
    wait(engine, key, deadline).await
}

/// Counts a caller on its way to the queue for as long as it lives.
struct Arriving<'a>(&'a AtomicUsize);

impl<'a> Arriving<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Arriving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits until `deadline` for the payment `key` to be settled or to fail.
async fn wait(engine: &Engine, key: PaymentKey, deadline: Instant) -> Settlement {
    let mut changes = engine.context.payments_final.subscribe();
    loop {
        // Marked seen before the read: a change after it wakes the wait below.
        changes.borrow_and_update();
        let record = match engine.context.store.payment(&key) {
            Ok(Some(record)) => record,
            Ok(None) => return Settlement::Unavailable("the payment's record is gone".into()),
            Err(err) => return Settlement::Unavailable(err.to_string()),
        };
        if let Some(outcome) = outcome(&record) {
            return outcome;
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return pending(&record);
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                // Read once more: the record may have been given its transaction meanwhile.
                let latest = engine.context.store.payment(&key).ok().flatten().unwrap_or(record);
                return outcome(&latest).unwrap_or_else(|| pending(&latest));
            }
        }
    }
}

fn pending(record: &PaymentRecord) -> Settlement {
    Settlement::Pending { transaction: record.tx_hash, payer: record.key.payer }
}

/// The final outcome `record` holds, if it has one.
fn outcome(record: &PaymentRecord) -> Option<Settlement> {
    match record.status {
        PaymentStatus::Settled => Some(Settlement::Settled {
            transaction: record.tx_hash.unwrap_or_default(),
            payer: record.key.payer,
            amount: record.value,
        }),
        PaymentStatus::Failed => {
            let reason =
                record.reason.clone().unwrap_or_else(|| Reason::UnexpectedSettle.as_str().to_owned());
            let message = reason.parse::<Reason>().map_or_else(
                |_| "the payment failed".to_owned(),
                |r| x402_keeper::intake::describe(r).to_owned(),
            );
            Some(Settlement::Failed { reason, message, transaction: record.tx_hash, payer: record.key.payer })
        }
        PaymentStatus::Queued | PaymentStatus::Submitted => None,
    }
}
