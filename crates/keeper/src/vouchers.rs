//! Channel vouchers: what PaymentChannel would do with them, and registering one for the keeper to claim before a
//! close. A voucher is registered only if a simulated `claimBatch` with it would pay it now, so the contract's own
//! rules decide (the channel open or in its challenge period, the keeper the recipient or its claim operator, the
//! amount above what was paid, the payer's low-s ECDSA signature or its ERC-1271 wallet's approval within the
//! contract's gas budget). The channels job claims the registered ones.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolStruct};
use x402_bindings::voucher::{self, Voucher};
use x402_bindings::{ClaimOutcome, IPaymentChannel, PaymentChannel};
use x402_chain::ChainError;

use crate::context::Context;
use crate::signature::ecdsa_signer;
use crate::store::{StoreError, VoucherPut, VoucherRecord};

/// `ClaimOutcome.Claimed` as `claimBatch` returns it.
pub const CLAIMED: u8 = ClaimOutcome::Claimed as u8;

/// Why `claimBatch` would skip a voucher: its `ClaimOutcome` as an API reason and a message.
pub fn refusal(outcome: u8) -> (&'static str, &'static str) {
    match ClaimOutcome::try_from(outcome) {
        Ok(ClaimOutcome::Claimed) => ("claimed", "claimBatch would pay it"),
        Ok(ClaimOutcome::NotFound) => ("unknown_channel", "no channel with this id"),
        Ok(ClaimOutcome::NotClaimable) => {
            ("channel_not_claimable", "the channel is closed or its challenge period is over")
        }
        Ok(ClaimOutcome::Unauthorized) => {
            ("keeper_not_claim_operator", "the recipient has not made the keeper its claim operator")
        }
        Ok(ClaimOutcome::NothingToClaim) => {
            ("nothing_to_claim", "the voucher is not above what the channel has paid out already")
        }
        Ok(ClaimOutcome::InvalidSignature) => {
            ("invalid_voucher_signature", "neither the payer's signature nor approved by its ERC-1271 wallet")
        }
        Err(_) => ("unknown_outcome", "claimBatch answered an outcome this keeper does not know"),
    }
}

/// Why [`claim_outcomes`] has no verdict.
#[derive(Debug, thiserror::Error)]
pub enum OutcomesError {
    /// The simulation could not be run, or reverted as a whole.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Its answer does not decode as `claimBatch`'s.
    #[error("cannot decode claimBatch's outcomes: {0}")]
    Decode(#[source] alloy::sol_types::Error),
    /// It answered another number of outcomes than vouchers.
    #[error("claimBatch answered {outcomes} outcomes for {vouchers} vouchers")]
    Count {
        /// Outcomes answered.
        outcomes: usize,
        /// Vouchers asked about.
        vouchers: usize,
    },
}

/// PaymentChannel's verdict on each voucher: the outcomes of `claimBatch(claims)` simulated from the keeper.
pub async fn claim_outcomes(
    shared: &Context,
    claims: &[IPaymentChannel::VoucherClaim],
) -> Result<Vec<u8>, OutcomesError> {
    let input: Bytes = PaymentChannel::claimBatchCall { items: claims.to_vec() }.abi_encode().into();
    let returned = shared.simulate(shared.settings.contracts.payment_channel, &input).await?;
    let outcomes =
        PaymentChannel::claimBatchCall::abi_decode_returns(&returned).map_err(OutcomesError::Decode)?;
    if outcomes.len() != claims.len() {
        return Err(OutcomesError::Count { outcomes: outcomes.len(), vouchers: claims.len() });
    }
    Ok(outcomes)
}

/// Whether `claim` carries `payer`'s own ECDSA signature in the form the contract accepts without asking a
/// wallet (65 bytes, low s, v 27 or 28).
pub fn signed_by(shared: &Context, payer: Address, claim: &IPaymentChannel::VoucherClaim) -> bool {
    let domain = voucher::domain(shared.settings.chain_id, shared.settings.contracts.payment_channel);
    let digest = Voucher { channelId: claim.channelId, amount: claim.amount }.eip712_signing_hash(&domain);
    ecdsa_signer(&claim.signature, digest) == Some(payer)
}

/// What [`register`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// Stored: the channel's highest voucher now.
    Stored,
    /// A voucher for at least this amount is registered already.
    NotHigher,
}

/// Why [`register`] did not store a voucher.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The contract would not pay it (or the channel takes no more vouchers): a reason and a message.
    #[error("{message}")]
    Refused {
        /// The API's reason.
        reason: &'static str,
        /// Why.
        message: String,
    },
    /// The chain could not be asked.
    #[error(transparent)]
    Chain(#[from] OutcomesError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registers the voucher for `amount` in all on `channel` if a claim would pay it now.
pub async fn register(
    shared: &Context,
    channel: B256,
    amount: U256,
    signature: Bytes,
) -> Result<Registered, RegisterError> {
    let claim = IPaymentChannel::VoucherClaim { channelId: channel, amount, signature: signature.clone() };
    match claim_outcomes(shared, std::slice::from_ref(&claim)).await {
        Ok(outcomes) if outcomes[0] == CLAIMED => {}
        Ok(outcomes) => {
            let (reason, message) = refusal(outcomes[0]);
            let message = if outcomes[0] == ClaimOutcome::Unauthorized as u8 {
                format!("{message}: it must call setClaimOperator({}, true) first", shared.keeper)
            } else {
                message.to_owned()
            };
            return Err(RegisterError::Refused { reason, message });
        }
        Err(OutcomesError::Chain(err)) if err.is_revert() => {
            return Err(RegisterError::Refused {
                reason: "claim_simulation_reverted",
                message: err.to_string(),
            });
        }
        Err(err) => return Err(err.into()),
    }
    match shared.store.put_voucher(&VoucherRecord { channel, amount, signature, taken: None })? {
        VoucherPut::Stored => Ok(Registered::Stored),
        VoucherPut::NotHigher => Ok(Registered::NotHigher),
        VoucherPut::Refused => Err(RegisterError::Refused {
            reason: "channel_refused",
            message: "a claim on this channel was refused on chain although its simulation passed; it takes no more \
                      vouchers"
                .into(),
        }),
    }
}
