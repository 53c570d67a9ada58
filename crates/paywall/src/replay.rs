//! A payment is accepted once: the first request that carries it claims it before anything is verified, and a
//! settled claim stays taken until its authorization expires (after which it cannot settle anywhere).
//!
//! The guard is per process. Behind several paywall instances, a payment replayed to another instance is verified
//! again; the facilitator settles one authorization once and answers a repeat with the same transaction, so the
//! merchant is not paid twice, but the second instance serves the request: share the facilitator's store and
//! settle before the handler (`settle = "before"`) where that matters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::payment::PaymentKey;

#[derive(Clone, Copy, Debug)]
enum State {
    /// Being verified or settled by one request.
    InFlight,
    /// Settled; taken until this Unix second.
    Spent(u64),
}

/// The payments seen, bounded.
#[derive(Clone, Debug)]
pub struct Replay {
    seen: Arc<Mutex<HashMap<PaymentKey, State>>>,
    capacity: usize,
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
    spent: bool,
}

impl Replay {
    /// A guard that remembers up to `capacity` payments.
    pub fn new(capacity: usize) -> Self {
        Self { seen: Arc::new(Mutex::new(HashMap::new())), capacity: capacity.max(1) }
    }

    /// Claims `key` for one request at Unix second `now`.
    pub fn claim(&self, key: PaymentKey, now: u64) -> Result<Claim, Refused> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        match seen.get(&key) {
            Some(State::InFlight) => return Err(Refused::Taken),
            Some(State::Spent(until)) if *until >= now => return Err(Refused::Taken),
            _ => {}
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, state| !matches!(state, State::Spent(until) if *until < now));
            if seen.len() >= self.capacity {
                return Err(Refused::Full);
            }
        }
        seen.insert(key, State::InFlight);
        Ok(Claim { replay: self.clone(), key, spent: false })
    }

    /// How many payments it remembers now.
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Claim {
    /// The payment was settled (or served): taken until `until` (its `validBefore`).
    pub fn spend(mut self, until: u64) {
        self.spent = true;
        let mut seen = self.replay.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.insert(self.key, State::Spent(until));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.spent {
            let mut seen = self.replay.seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Address, B256};

    use super::*;

    fn key(n: u8) -> PaymentKey {
        PaymentKey { asset: Address::ZERO, payer: Address::repeat_byte(1), nonce: B256::repeat_byte(n) }
    }

    #[test]
    fn a_payment_is_claimed_once_and_freed_unless_spent() {
        let replay = Replay::new(2);
        let first = replay.claim(key(1), 100).unwrap();
        assert_eq!(replay.claim(key(1), 100).unwrap_err(), Refused::Taken, "in flight");
        drop(first);
        let again = replay.claim(key(1), 100).unwrap();
        again.spend(150);
        assert_eq!(replay.claim(key(1), 150).unwrap_err(), Refused::Taken, "spent until valid_before");
        replay.claim(key(2), 100).unwrap().spend(120);
        assert_eq!(replay.claim(key(3), 110).unwrap_err(), Refused::Full);
        let third = replay.claim(key(3), 121).unwrap();
        assert_eq!(replay.len(), 2, "the expired one made room");
        drop(third);
        assert!(replay.claim(key(1), 151).is_ok(), "after expiry it cannot settle anyway");
    }
}
