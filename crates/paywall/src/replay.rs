//! A payment is accepted once: the first request that carries it claims it before anything is verified, and a
//! settled claim stays taken for a while after (by then the facilitator sees its nonce used on chain and refuses
//! it at verification anyway). A payment whose settlement got no verdict (the facilitator timed out) is kept as
//! unsettled: the same payment sent again skips verification (its nonce may be used by then) and is settled
//! again, which the facilitator answers with the same transaction.
//!
//! The guard is per process. Behind several paywall instances, the same payment sent to two of them at the same
//! moment is verified by both; the facilitator settles one authorization once and answers the other with the same
//! transaction, so the merchant is paid once and both instances serve the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use alloy_primitives::B256;

use crate::payment::PaymentKey;

#[derive(Clone, Copy, Debug)]
enum State {
    /// Being verified or settled by one request.
    InFlight,
    /// Settled; taken until this Unix second.
    Spent(u64),
    /// Sent for settlement with no verdict back, until this Unix second; the payment's digest.
    Unsettled(u64, B256),
}

/// How long a settled payment stays taken: past it, the facilitator refuses its used nonce itself.
pub const SPENT_FOR: u64 = 600;

/// The payments seen, bounded.
#[derive(Clone, Debug)]
pub struct Replay {
    seen: Arc<Mutex<Seen>>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Seen {
    states: HashMap<PaymentKey, State>,
    last_sweep: u64,
}

/// Why a payment cannot be claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Another request carries it, or carried it and was served.
    #[error("this payment was used already")]
    Taken,
    /// Too many payments are in flight or unexpired to remember one more.
    #[error("too many payments are being processed")]
    Full,
}

/// One request's hold on a payment: released on drop unless spent.
#[derive(Debug)]
pub struct Claim {
    replay: Replay,
    key: PaymentKey,
    kept: bool,
    /// The payment was sent for settlement before and got no verdict: settle it again, without verifying.
    pub resumed: bool,
}

impl Replay {
    /// A guard that remembers up to `capacity` payments.
    pub fn new(capacity: usize) -> Self {
        Self { seen: Arc::default(), capacity: capacity.max(1) }
    }

    /// Claims the payment `key` (whose facilitator request hashes to `digest`) for one request at Unix second
    /// `now`.
    pub fn claim(&self, key: PaymentKey, digest: B256, now: u64) -> Result<Claim, Refused> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let resumed = match seen.states.get(&key) {
            Some(State::InFlight) => return Err(Refused::Taken),
            Some(State::Spent(until)) if *until >= now => return Err(Refused::Taken),
            // The same payment again resumes its settlement; another one with its nonce is not it.
            Some(State::Unsettled(until, was)) if *until >= now => {
                if *was != digest {
                    return Err(Refused::Taken);
                }
                true
            }
            _ => false,
        };
        if !resumed && seen.states.len() >= self.capacity {
            // At most one sweep a second: a full guard refuses quickly.
            if seen.last_sweep != now {
                seen.last_sweep = now;
                seen.states.retain(|_, state| match state {
                    State::InFlight => true,
                    State::Spent(until) | State::Unsettled(until, _) => *until >= now,
                });
            }
            if seen.states.len() >= self.capacity {
                return Err(Refused::Full);
            }
        }
        seen.states.insert(key, State::InFlight);
        Ok(Claim { replay: self.clone(), key, kept: false, resumed })
    }

    /// How many payments it remembers now.
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).states.len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Claim {
    /// The payment was settled (or served) at Unix second `now`: taken for [`SPENT_FOR`] seconds, or until it
    /// expires if sooner.
    pub fn spend(self, now: u64, valid_before: u64) {
        self.keep(State::Spent(valid_before.min(now.saturating_add(SPENT_FOR))));
    }

    /// The payment (hashing to `digest`) was sent for settlement and no verdict came: the same payment sent
    /// again until it expires at `valid_before` resumes its settlement.
    pub fn unsettled(self, digest: B256, valid_before: u64) {
        self.keep(State::Unsettled(valid_before, digest));
    }

    fn keep(mut self, state: State) {
        self.kept = true;
        let mut seen = self.replay.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.states.insert(self.key, state);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.kept {
            let mut seen = self.replay.seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.states.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;

    use super::*;

    fn key(n: u8) -> PaymentKey {
        PaymentKey { asset: Address::ZERO, payer: Address::repeat_byte(1), nonce: B256::repeat_byte(n) }
    }

    const DIGEST: B256 = B256::repeat_byte(7);

    #[test]
    fn a_payment_is_claimed_once_and_freed_unless_spent() {
        let replay = Replay::new(2);
        let first = replay.claim(key(1), DIGEST, 100).unwrap();
        assert!(!first.resumed);
        assert_eq!(replay.claim(key(1), DIGEST, 100).unwrap_err(), Refused::Taken, "in flight");
        drop(first);
        let again = replay.claim(key(1), DIGEST, 100).unwrap();
        again.spend(100, 150);
        assert_eq!(
            replay.claim(key(1), DIGEST, 150).unwrap_err(),
            Refused::Taken,
            "spent until valid_before"
        );
        replay.claim(key(2), DIGEST, 100).unwrap().spend(100, 120);
        assert_eq!(replay.claim(key(3), DIGEST, 110).unwrap_err(), Refused::Full);
        let third = replay.claim(key(3), DIGEST, 121).unwrap();
        assert_eq!(replay.len(), 2, "the expired one made room");
        drop(third);
        assert!(replay.claim(key(1), DIGEST, 151).is_ok(), "after expiry it cannot settle anyway");
    }

    #[test]
    fn a_spent_payment_is_kept_for_a_bounded_time_whatever_its_valid_before() {
        let replay = Replay::new(10);
        replay.claim(key(1), DIGEST, 100).unwrap().spend(100, u64::MAX);
        assert!(replay.claim(key(1), DIGEST, 100 + SPENT_FOR).is_err());
        assert!(replay.claim(key(1), DIGEST, 101 + SPENT_FOR).is_ok());
    }

    #[test]
    fn an_unsettled_payment_resumes_only_for_the_same_payment() {
        let replay = Replay::new(10);
        replay.claim(key(1), DIGEST, 100).unwrap().unsettled(DIGEST, 200);
        assert_eq!(replay.claim(key(1), B256::ZERO, 101).unwrap_err(), Refused::Taken, "another payload");
        let resumed = replay.claim(key(1), DIGEST, 101).unwrap();
        assert!(resumed.resumed);
        assert_eq!(replay.claim(key(1), DIGEST, 101).unwrap_err(), Refused::Taken, "in flight again");
        resumed.spend(102, 200);
        assert_eq!(replay.claim(key(1), DIGEST, 103).unwrap_err(), Refused::Taken);
    }
}
