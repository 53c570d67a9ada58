//! The intake policy: whose payments the keeper settles and how small a payment may be. The keeper pays the gas
//! of everything it settles and the client names the requirements itself, so without a policy a stranger picks
//! the merchant and the amount (zero included) at the keeper's expense. Checked after [`crate::intake::Verifier`]
//! and before anything is queued; the tokens it settles are the verifier's.

use std::collections::HashSet;

use alloy::primitives::{Address, U256};

use crate::config::Merchants;
use crate::intake::Checked;
use x402_protocol::Reason;

/// Merchants and the minimum amount.
#[derive(Clone, Debug)]
pub struct Policy {
    /// `None`: any merchant.
    merchants: Option<HashSet<Address>>,
    min_amount: U256,
}

/// A payment the policy refuses: an x402 reason and what the keeper would accept instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRefusal {
    /// The x402 reason.
    pub reason: Reason,
    /// Why, for `invalidMessage`.
    pub message: String,
}

impl Policy {
    /// Settles for `merchants`, payments of at least `min_amount` (at least 1).
    pub fn new(merchants: &Merchants, min_amount: u128) -> Self {
        let merchants = match merchants {
            Merchants::Any => None,
            Merchants::Only(list) => Some(list.iter().copied().collect()),
        };
        Self { merchants, min_amount: U256::from(min_amount.max(1)) }
    }

    /// Whether the keeper settles `checked`.
    pub fn check(&self, checked: &Checked) -> Result<(), PolicyRefusal> {
        let a = &checked.authorization;
        if let Some(merchants) = &self.merchants
            && !merchants.contains(&a.to)
        {
            return Err(PolicyRefusal {
                reason: Reason::Requirements,
                message: format!("payTo {} is not a merchant this keeper settles for", a.to),
            });
        }
        if a.value < self.min_amount {
            return Err(PolicyRefusal {
                reason: Reason::Requirements,
                message: format!(
                    "amount {} is below this keeper's minimum of {} (in the token's smallest unit)",
                    a.value, self.min_amount
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{B256, Bytes};
    use x402_bindings::eip3009::TransferWithAuthorization;

    use super::*;

    fn payment(to: Address, value: u64) -> Checked {
        Checked {
            token: Address::repeat_byte(1),
            authorization: TransferWithAuthorization {
                from: Address::repeat_byte(2),
                to,
                value: U256::from(value),
                validAfter: U256::ZERO,
                validBefore: U256::MAX,
                nonce: B256::ZERO,
            },
            signature: Bytes::new(),
            needs_wallet_check: false,
        }
    }

    #[test]
    fn only_listed_merchants_and_amounts_from_the_minimum_are_settled() {
        let merchant = Address::repeat_byte(7);
        let policy = Policy::new(&Merchants::Only(vec![merchant]), 1000);
        assert_eq!(policy.check(&payment(merchant, 1000)), Ok(()));
        let stranger = policy.check(&payment(Address::repeat_byte(8), 1000)).unwrap_err();
        assert_eq!(stranger.reason, Reason::Requirements);
        assert!(stranger.message.contains("is not a merchant"), "{}", stranger.message);
        let small = policy.check(&payment(merchant, 999)).unwrap_err();
        assert!(small.message.contains("below this keeper's minimum of 1000"), "{}", small.message);
        // Any merchant by choice; zero is never settled.
        let any = Policy::new(&Merchants::Any, 0);
        assert_eq!(any.check(&payment(Address::repeat_byte(8), 1)), Ok(()));
        assert_eq!(any.check(&payment(merchant, 0)).unwrap_err().reason, Reason::Requirements);
    }
}
