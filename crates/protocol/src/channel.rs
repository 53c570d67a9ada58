//! The `channel` scheme: pay for each request with a voucher on a PaymentChannel, checked by the server without
//! the chain. `docs/channels.md` describes the flow; these are its wire shapes.
//!
//! - A route offers it in `accepts` next to `exact`: `scheme: "channel"`, the same `network`, `asset`, `payTo`,
//!   `amount` (the price of one request) and `maxTimeoutSeconds`, and [`ChannelExtra`] in `extra`.
//! - The client pays with a v2 `PAYMENT-SIGNATURE` whose `payload` is a [`ChannelPayload`]: a voucher for the
//!   channel's new cumulative amount (what it paid before plus this request's price).
//! - The server answers with a [`ChannelReceipt`] in `PAYMENT-RESPONSE`, also on a refused voucher, so that a
//!   client that lost a race re-signs from the server's cumulative.
//! - A server that delegates the check asks a facilitator with a [`VoucherRequest`] and gets a
//!   [`VoucherVerdict`] (`POST /channels/vouchers`).

use alloy_primitives::{Address, B256, Bytes};
use serde::{Deserialize, Serialize};

/// The scheme's name in requirements.
pub const SCHEME: &str = "channel";

/// `extra` of a `channel` requirement: where the channel lives and what the server takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelExtra {
    /// The PaymentChannel contract (its proxy).
    #[serde(with = "crate::exact::checksummed")]
    pub payment_channel: Address,
    /// The voucher domain's EIP-712 name (`x402 PaymentChannel`).
    pub name: String,
    /// The voucher domain's EIP-712 version (`1`).
    pub version: String,
    /// The smallest deposit of a channel the server takes, in the asset's units, decimal.
    pub min_deposit: String,
    /// The shortest challenge period of a channel the server takes, in seconds.
    pub min_challenge_period: u64,
    /// The channel must not expire before now plus this many seconds.
    pub min_expiry_seconds: u64,
}

/// `payload` of a `channel` payment: a voucher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPayload {
    /// The channel.
    pub channel_id: B256,
    /// The cumulative amount the payer owes on the channel with this request, decimal.
    pub amount: String,
    /// The payer's EIP-712 signature of `Voucher(bytes32 channelId,uint256 amount)` in the PaymentChannel's
    /// domain: 65 bytes, low s, v 27 or 28 (or a contract wallet's ERC-1271 signature).
    pub signature: Bytes,
}

/// The server's answer about a voucher, in `PAYMENT-RESPONSE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelReceipt {
    /// Whether the voucher paid for the request.
    pub success: bool,
    /// `channel`.
    pub scheme: String,
    /// The CAIP-2 network.
    pub network: String,
    /// The channel.
    pub channel_id: B256,
    /// Who pays on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// What the server counts as paid on the channel so far (after this request when it succeeded), decimal:
    /// the next voucher is this plus the next price.
    pub cumulative: String,
    /// The deposit not yet paid: the most further vouchers can add, decimal.
    pub remaining: String,
    /// What this request cost, decimal (zero when refused).
    pub charged: String,
    /// Why the voucher was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// The refusal, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// A server's question to a facilitator about one voucher: take it for `price` if the channel pays `pay_to`
/// in `asset` and the voucher adds at least `price` to what was taken on the channel before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoucherRequest {
    /// The CAIP-2 network.
    pub network: String,
    /// The route's requirement extra the client accepted.
    pub extra: ChannelExtra,
    /// The token the route is priced in.
    pub asset: Address,
    /// Who the route pays.
    pub pay_to: Address,
    /// This request's price, decimal.
    pub price: String,
    /// The voucher.
    pub voucher: ChannelPayload,
}

/// A facilitator's answer to a [`VoucherRequest`]: the receipt the server passes on. A taken voucher is stored
/// durably before this answer is given.
pub type VoucherVerdict = ChannelReceipt;

/// A channel as a facilitator's desk knows it (`GET /channels/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelState {
    /// The channel.
    pub channel_id: B256,
    /// The CAIP-2 network.
    pub network: String,
    /// Who pays.
    #[serde(with = "crate::exact::checksummed")]
    pub payer: Address,
    /// Who is paid.
    #[serde(with = "crate::exact::checksummed")]
    pub recipient: Address,
    /// The token.
    #[serde(with = "crate::exact::checksummed")]
    pub token: Address,
    /// `open`, `closing` or `closed`, as last read from the chain.
    pub status: String,
    /// The deposit, decimal.
    pub deposit: String,
    /// Paid out on chain so far, decimal.
    pub claimed: String,
    /// What the desk took (the prices of the requests paid), decimal.
    pub taken: String,
    /// The highest voucher stored (what a claim can pay), decimal.
    pub voucher: String,
    /// Unix seconds when the channel expires.
    pub expires_at: u64,
}

/// Why a voucher is refused: `errorReason` of a [`ChannelReceipt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelReason {
    /// The payload is not a voucher, or its numbers are not decimal.
    Malformed,
    /// Not a PaymentChannel (or network) the server takes vouchers for.
    UnknownContract,
    /// No channel with this id.
    NotFound,
    /// The channel pays someone else, or in another token.
    WrongChannel,
    /// The recipient has not made the facilitator's signer its claim operator, so its vouchers could not be
    /// claimed.
    NoClaimOperator,
    /// The channel is closing or closed.
    NotOpen,
    /// The channel expires too soon, or its challenge period is shorter than the server takes.
    TermsTooShort,
    /// The deposit is below the server's minimum.
    DepositTooSmall,
    /// The signature is not the payer's.
    Signature,
    /// The voucher does not add the price to what was taken already (a replay, a lower or equal voucher, or
    /// one that lost a race): sign again from `cumulative`.
    TooLow,
    /// The voucher is above the deposit: top up or open a new channel.
    OverDeposit,
}

impl ChannelReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "invalid_channel_payload",
            Self::UnknownContract => "invalid_channel_contract",
            Self::NotFound => "invalid_channel_not_found",
            Self::WrongChannel => "invalid_channel_recipient_or_asset",
            Self::NoClaimOperator => "invalid_channel_no_claim_operator",
            Self::NotOpen => "invalid_channel_not_open",
            Self::TermsTooShort => "invalid_channel_terms",
            Self::DepositTooSmall => "invalid_channel_deposit_too_small",
            Self::Signature => "invalid_channel_voucher_signature",
            Self::TooLow => "invalid_channel_voucher_too_low",
            Self::OverDeposit => "invalid_channel_voucher_over_deposit",
        }
    }
}

impl std::fmt::Display for ChannelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn shapes_are_camel_case_with_decimal_amounts() {
        let extra = ChannelExtra {
            payment_channel: Address::repeat_byte(0xab),
            name: "x402 PaymentChannel".into(),
            version: "1".into(),
            min_deposit: "1000000".into(),
            min_challenge_period: 3600,
            min_expiry_seconds: 600,
        };
        let value = serde_json::to_value(&extra).unwrap();
        assert_eq!(value["paymentChannel"], Address::repeat_byte(0xab).to_checksum(None));
        assert_eq!(value["minDeposit"], "1000000");
        assert_eq!(value["minChallengePeriod"], 3600);
        let payload: ChannelPayload = serde_json::from_value(json!({
            "channelId": format!("0x{}", "11".repeat(32)),
            "amount": "1500",
            "signature": "0x01",
        }))
        .unwrap();
        assert_eq!(payload.amount, "1500");
        let reasons = [ChannelReason::TooLow, ChannelReason::OverDeposit, ChannelReason::Signature];
        assert!(reasons.iter().all(|r| r.as_str().starts_with("invalid_channel_")));
    }
}
