//! Paying through a payment channel the payer opened: each request carries a voucher for what the server took
//! on the channel so far plus the request's price (`docs/channels.md`). The client keeps the server's running
//! total and its vouchers in flight, so concurrent requests sign increasing amounts; a voucher that lost a race
//! is answered with the server's total, from which the client signs again.

use std::sync::{Mutex, MutexGuard, PoisonError};

use alloy::signers::Signer;
use alloy_primitives::{Address, B256, Bytes, U256};
use x402_bindings::voucher;
use x402_protocol::channel::{ChannelExtra, ChannelPayload, ChannelReceipt};
use x402_protocol::headers::{self, PAYMENT_RESPONSE};
use x402_protocol::v2;

use crate::sign::SignError;

/// A channel the payer opened, as the client pays through it.
#[derive(Debug)]
pub struct Channel {
    /// The chain.
    pub chain_id: u64,
    /// The PaymentChannel proxy.
    pub payment_channel: Address,
    /// The channel's id.
    pub id: B256,
    /// Who it pays.
    pub recipient: Address,
    /// Its token.
    pub token: Address,
    /// Its deposit.
    pub deposit: U256,
    tally: Mutex<Tally>,
}

/// What the client knows of the server's running total, and its vouchers in flight.
#[derive(Debug)]
struct Tally {
    /// The highest running total the server reported.
    taken: U256,
    /// Vouchers sent and not answered.
    in_flight: u64,
    /// The most this client knows was owed: the total it was made with, and its highest voucher.
    known: U256,
}

/// A voucher amount reserved on a channel, until its answer (or until dropped, as when the request is cancelled).
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    channel: &'a Channel,
    /// The voucher's cumulative amount.
    pub(crate) amount: U256,
    done: bool,
}

impl Reservation<'_> {
    /// Ends the reservation with the server's running total, if its answer reported one. A total more than
    /// `trust` above what this client knows was owed is not believed (a server could otherwise ask for a voucher
    /// of the whole deposit): `false`, and the client's total stays.
    pub(crate) fn answered(mut self, reported: Option<U256>, trust: U256) -> bool {
        self.done = true;
        let mut tally = self.channel.locked();
        tally.in_flight = tally.in_flight.saturating_sub(1);
        match reported {
            Some(taken) if taken > tally.known.saturating_add(trust) => false,
            Some(taken) => {
                tally.taken = tally.taken.max(taken);
                tally.known = tally.known.max(taken);
                true
            }
            None => true,
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut tally = self.channel.locked();
            tally.in_flight = tally.in_flight.saturating_sub(1);
        }
    }
}

impl Channel {
    /// A channel of `deposit` in `token` to `recipient` on the PaymentChannel at `payment_channel`, of which
    /// the server took `taken` already (zero for a new channel; a lower figure only costs one refused voucher,
    /// whose answer tells the right one).
    pub fn new(
        chain_id: u64,
        payment_channel: Address,
        id: B256,
        recipient: Address,
        token: Address,
        deposit: U256,
        taken: U256,
    ) -> Self {
        let tally = Mutex::new(Tally { taken, in_flight: 0, known: taken });
        Self { chain_id, payment_channel, id, recipient, token, deposit, tally }
    }

    fn locked(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server's running total on the channel, as it last reported it.
    pub fn owed(&self) -> U256 {
        self.locked().taken
    }

    /// The next voucher's amount for `price`: the server's total plus the prices of the vouchers in flight and
    /// this one's, if the deposit covers it.
    fn next(tally: &Tally, price: U256, deposit: U256) -> Option<U256> {
        let ahead = price.checked_mul(U256::from(tally.in_flight + 1))?;
        tally.taken.checked_add(ahead).filter(|next| *next <= deposit)
    }

    /// Whether the deposit covers `price` more.
    pub fn covers(&self, price: U256) -> bool {
        Self::next(&self.locked(), price, self.deposit).is_some()
    }

    /// Reserves `price` on the channel: the cumulative amount the next voucher carries, or `None` when the
    /// deposit cannot cover it.
    pub(crate) fn reserve(&self, price: U256) -> Option<Reservation<'_>> {
        let mut tally = self.locked();
        let amount = Self::next(&tally, price, self.deposit)?;
        tally.in_flight += 1;
        tally.known = tally.known.max(amount);
        Some(Reservation { channel: self, amount, done: false })
    }

    /// Whether the channel pays `requirement` (a `channel` requirement on `chain_id`).
    pub fn serves(&self, chain_id: u64, requirement: &v2::PaymentRequirements) -> bool {
        let extra =
            requirement.extra.clone().and_then(|extra| serde_json::from_value::<ChannelExtra>(extra).ok());
        chain_id == self.chain_id
            && extra.is_some_and(|extra| extra.payment_channel == self.payment_channel)
            && requirement.pay_to.parse::<Address>().ok() == Some(self.recipient)
            && requirement.asset.parse::<Address>().ok() == Some(self.token)
    }

    /// The `PAYMENT-SIGNATURE` value of a voucher for `amount` in total, paying `requirement`.
    pub(crate) async fn header<S: Signer + Sync>(
        &self,
        signer: &S,
        requirement: &v2::PaymentRequirements,
        resource: Option<&v2::ResourceInfo>,
        amount: U256,
    ) -> Result<String, SignError> {
        let domain = voucher::domain(self.chain_id, self.payment_channel);
        let signature: Bytes = voucher::sign(signer, &domain, self.id, amount)
            .await
            .map_err(|err| SignError::Requirement(format!("the voucher cannot be signed: {err}")))?;
        let payload = v2::PaymentPayload {
            x402_version: 2,
            resource: resource.cloned(),
            accepted: requirement.clone(),
            payload: ChannelPayload { channel_id: self.id, amount: amount.to_string(), signature },
            extensions: None,
        };
        Ok(headers::encode(&payload)?)
    }
}

/// The channel receipt of an answer, if it carries one.
pub fn receipt(headers: &reqwest::header::HeaderMap) -> Option<ChannelReceipt> {
    let header = headers.get(PAYMENT_RESPONSE)?;
    headers::decode::<ChannelReceipt>(header.to_str().ok()?)
        .ok()
        .filter(|r| r.scheme == x402_protocol::channel::SCHEME)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn channel(taken: u64) -> Channel {
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        Channel::new(1, a, B256::repeat_byte(3), b, a, U256::from(10_000), U256::from(taken))
    }

    #[test]
    fn vouchers_in_flight_count_up_and_a_cancelled_one_is_released() {
        let channel = channel(100);
        let price = U256::from(10);
        let first = channel.reserve(price).unwrap();
        let second = channel.reserve(price).unwrap();
        assert_eq!((first.amount, second.amount), (U256::from(110), U256::from(120)));
        drop(second); // cancelled before its answer
        assert!(first.answered(Some(U256::from(110)), U256::from(1_000)));
        assert_eq!(channel.owed(), U256::from(110));
        assert_eq!(channel.reserve(price).unwrap().amount, U256::from(120), "nothing left in flight");
    }

    #[test]
    fn a_server_total_far_above_what_was_signed_is_not_believed() {
        let channel = channel(0);
        let price = U256::from(10);
        // Up to the cap above the client's highest voucher (10) is believed: an earlier run's vouchers.
        assert!(channel.reserve(price).unwrap().answered(Some(U256::from(500)), U256::from(1_000)));
        assert_eq!(channel.owed(), U256::from(500));
        // A total near the deposit is not: the client would sign the deposit away.
        assert!(!channel.reserve(price).unwrap().answered(Some(U256::from(9_990)), U256::from(1_000)));
        assert_eq!(channel.owed(), U256::from(500));
        assert!(!channel.covers(U256::from(9_501)));
        assert!(channel.covers(U256::from(9_500)));
    }
}
