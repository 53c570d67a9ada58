//! Payments `/verify` accepted and nobody has settled yet: each holds its value against its payer's balance until
//! it is settled through this facilitator (then the store counts it), or its authorization expires. A payer's
//! verified payments therefore never add up to more than the balance, even when a server verifies several before
//! settling any. Holds live in memory: forgetting them (a restart) only forgets promises nobody paid for yet.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use alloy::primitives::{Address, B256, U256};
use x402_keeper::store::PaymentKey;

/// Most payments one payer may hold at once.
const PER_PAYER: usize = 10_000;
/// Most holds in all; expired ones are dropped first when it is reached.
const TOTAL: usize = 1_000_000;

#[derive(Clone, Copy, Debug)]
struct Hold {
    key: PaymentKey,
    /// The hash of the authorization's signature: which of the authorizations of `key` (a payer may sign one nonce
    /// twice) is held.
    signed: B256,
    value: U256,
    /// Chain time from which the authorization can no longer settle.
    until: u64,
}

/// Why [`Holds::hold`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The payer's other holds and this one exceed what it has available.
    OverBalance {
        /// What the payer's other verified payments hold.
        held: U256,
    },
    /// The payer, or everyone together, holds too many payments.
    TooMany,
}

/// The verified payments not settled yet, by token and payer.
#[derive(Debug, Default)]
pub struct Holds {
    by_payer: Mutex<HashMap<(Address, Address), Vec<Hold>>>,
}

impl Holds {
    /// Holds `value` for `key` (signed as `signed`, the signature's hash) until chain time `until`, if the payer's
    /// other live holds plus `value` stay within `available` (its balance less what the store counts as not settled
    /// yet). A key already held is replaced.
    pub fn hold(
        &self,
        key: PaymentKey,
        signed: B256,
        value: U256,
        until: u64,
        now: u64,
        available: U256,
    ) -> Result<(), Refused> {
        let mut by_payer = self.by_payer.lock().unwrap_or_else(PoisonError::into_inner);
        if by_payer.len() >= TOTAL {
            by_payer.retain(|_, holds| {
                holds.retain(|h| h.until > now);
                !holds.is_empty()
            });
            if by_payer.len() >= TOTAL {
                return Err(Refused::TooMany);
            }
        }
        let holds = by_payer.entry((key.token, key.payer)).or_default();
        holds.retain(|h| h.until > now && h.key != key);
        if holds.len() >= PER_PAYER {
            return Err(Refused::TooMany);
        }
        let held = holds.iter().fold(U256::ZERO, |sum, h| sum.saturating_add(h.value));
        if held.saturating_add(value) > available {
            return Err(Refused::OverBalance { held });
        }
        holds.push(Hold { key, signed, value, until });
        Ok(())
    }

    /// What the payer of `key`'s other live holds add up to.
    pub fn held_by_others(&self, key: &PaymentKey, now: u64) -> U256 {
        let by_payer = self.by_payer.lock().unwrap_or_else(PoisonError::into_inner);
        by_payer.get(&(key.token, key.payer)).map_or(U256::ZERO, |holds| {
            holds
                .iter()
                .filter(|h| h.until > now && h.key != *key)
                .fold(U256::ZERO, |sum, h| sum.saturating_add(h.value))
        })
    }

    /// Forgets the hold of `key` (its payment is in the store now).
    pub fn release(&self, key: &PaymentKey) {
        self.release_where(key, |_| true);
    }

    /// Forgets the hold of `key` if it is the authorization signed as `signed` (`/settle` refused it for good, so
    /// it holds the payer's balance for nothing); another authorization of the same nonce keeps its hold.
    pub fn release_refused(&self, key: &PaymentKey, signed: B256) {
        self.release_where(key, |hold| hold.signed == signed);
    }

    fn release_where(&self, key: &PaymentKey, matches: impl Fn(&Hold) -> bool) {
        let mut by_payer = self.by_payer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(holds) = by_payer.get_mut(&(key.token, key.payer)) {
            holds.retain(|h| h.key != *key || !matches(h));
            if holds.is_empty() {
                by_payer.remove(&(key.token, key.payer));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;

    fn key(nonce: u8) -> PaymentKey {
        PaymentKey {
            token: Address::repeat_byte(1),
            payer: Address::repeat_byte(2),
            nonce: B256::repeat_byte(nonce),
        }
    }

    #[test]
    fn a_payers_holds_never_exceed_what_it_has_and_expire_with_their_authorization() {
        let holds = Holds::default();
        let v = U256::from(400);
        assert_eq!(holds.hold(key(1), B256::ZERO, v, 100, 10, U256::from(1000)), Ok(()));
        assert_eq!(holds.hold(key(2), B256::ZERO, v, 100, 10, U256::from(1000)), Ok(()));
        assert_eq!(
            holds.hold(key(3), B256::ZERO, v, 100, 10, U256::from(1000)),
            Err(Refused::OverBalance { held: U256::from(800) })
        );
        // Verifying a held payment again does not count it twice.
        assert_eq!(holds.hold(key(2), B256::ZERO, v, 100, 10, U256::from(1000)), Ok(()));
        assert_eq!(holds.held_by_others(&key(3), 10), U256::from(800));
        assert_eq!(holds.held_by_others(&key(1), 10), v);
        holds.release(&key(1));
        assert_eq!(holds.hold(key(3), B256::ZERO, v, 100, 10, U256::from(1000)), Ok(()));
        // At chain time 100 every one of them has expired.
        assert_eq!(holds.held_by_others(&key(9), 100), U256::ZERO);
        assert_eq!(holds.hold(key(4), B256::ZERO, U256::from(1000), 200, 100, U256::from(1000)), Ok(()));
    }

    #[test]
    fn a_refused_authorization_releases_its_own_hold_and_not_another_of_the_same_nonce() {
        let holds = Holds::default();
        let (mine, other) = (B256::repeat_byte(7), B256::repeat_byte(8));
        let v = U256::from(600);
        assert_eq!(holds.hold(key(1), mine, v, 100, 10, U256::from(1000)), Ok(()));
        holds.release_refused(&key(1), other);
        assert_eq!(holds.held_by_others(&key(2), 10), v, "another authorization of the nonce keeps the hold");
        holds.release_refused(&key(1), mine);
        assert_eq!(holds.held_by_others(&key(2), 10), U256::ZERO);
        assert_eq!(holds.hold(key(2), mine, U256::from(1000), 100, 10, U256::from(1000)), Ok(()));
    }
}
