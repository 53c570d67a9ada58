//! Deferred settlement's exposure: a payer's verified payments may be served before they settle only while the
//! unsettled total stays within a limit and none has been pending too long. A payer whose deferred payment failed
//! (its wallet emptied in between) gets no more deferral for a while. What a payer can take without paying is
//! thus at most the limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};

/// How long a payer whose deferred payment failed is settled synchronously.
pub const DEFAULTED_FOR: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
struct Entry {
    unsettled: U256,
    pending: HashMap<u64, Instant>,
    defaulted_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    payers: HashMap<(Address, Address), Entry>,
    next_id: u64,
}

/// The unsettled deferred payments, per payer and token.
#[derive(Clone, Debug)]
pub struct Exposure {
    state: Arc<Mutex<State>>,
    max_age: Duration,
}

/// One deferred payment's share of its payer's exposure, released when it settles (or is dropped unsettled).
#[derive(Debug)]
pub struct Ticket {
    exposure: Exposure,
    key: (Address, Address),
    id: u64,
    amount: U256,
}

impl Exposure {
    /// No payer may have a deferred payment pending longer than `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self { state: Arc::default(), max_age }
    }

    /// A ticket to serve `amount` of `asset` from `payer` before it settles, if the payer's unsettled total stays
    /// within `limit`, its oldest pending payment is younger than the maximum age, and it has not defaulted.
    pub fn admit(
        &self,
        payer: Address,
        asset: Address,
        amount: U256,
        limit: U256,
        now: Instant,
    ) -> Option<Ticket> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.next_id += 1;
        let id = state.next_id;
        let entry = state.payers.entry((payer, asset)).or_default();
        if entry.defaulted_until.is_some_and(|until| until > now) {
            return None;
        }
        if entry.pending.values().any(|since| now.saturating_duration_since(*since) >= self.max_age) {
            return None;
        }
        let total = entry.unsettled.checked_add(amount)?;
        if total > limit {
            return None;
        }
        entry.unsettled = total;
        entry.pending.insert(id, now);
        Some(Ticket { exposure: self.clone(), key: (payer, asset), id, amount })
    }

    /// The unsettled deferred total of `payer` in `asset`.
    pub fn unsettled(&self, payer: Address, asset: Address) -> U256 {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.payers.get(&(payer, asset)).map_or(U256::ZERO, |e| e.unsettled)
    }

    fn release(&self, ticket: &Ticket, defaulted: Option<Instant>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = state.payers.get_mut(&ticket.key) else { return };
        if entry.pending.remove(&ticket.id).is_some() {
            entry.unsettled = entry.unsettled.saturating_sub(ticket.amount);
        }
        if let Some(until) = defaulted {
            entry.defaulted_until = Some(until);
        }
        let idle =
            entry.pending.is_empty() && entry.defaulted_until.is_none_or(|until| until <= Instant::now());
        if idle {
            state.payers.remove(&ticket.key);
        }
    }
}

impl Ticket {
    /// The payment did not settle: its payer is settled synchronously for [`DEFAULTED_FOR`].
    pub fn failed(self, now: Instant) {
        self.exposure.release(&self, Some(now + DEFAULTED_FOR));
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // Settled, or never served: either way no longer at risk.
        self.exposure.release(self, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYER: Address = Address::repeat_byte(1);
    const TOKEN: Address = Address::repeat_byte(2);

    #[test]
    fn a_payer_is_served_unsettled_only_within_the_limit_and_age_and_not_after_a_default() {
        let exposure = Exposure::new(Duration::from_secs(10));
        let start = Instant::now();
        let limit = U256::from(2500);
        let admit = |at: Duration| exposure.admit(PAYER, TOKEN, U256::from(1000), limit, start + at);
        let first = admit(Duration::ZERO).unwrap();
        let second = admit(Duration::ZERO).unwrap();
        assert!(admit(Duration::ZERO).is_none(), "3000 is over the limit");
        assert_eq!(exposure.unsettled(PAYER, TOKEN), U256::from(2000));
        assert!(
            exposure.admit(Address::repeat_byte(9), TOKEN, U256::from(1000), limit, start).is_some(),
            "per payer"
        );
        drop(first);
        assert!(admit(Duration::from_secs(11)).is_none(), "the second is pending for too long");
        drop(second);
        assert_eq!(exposure.unsettled(PAYER, TOKEN), U256::ZERO);
        let third = admit(Duration::from_secs(12)).unwrap();
        third.failed(start + Duration::from_secs(12));
        assert!(admit(Duration::from_secs(13)).is_none(), "defaulted");
        assert!(admit(Duration::from_secs(12) + DEFAULTED_FOR + Duration::from_secs(1)).is_some());
    }
}
