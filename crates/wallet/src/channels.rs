//! Payment channels from the payer's side: open one that meets a paywall's `channel` offer (approve the deposit,
//! then `openChannel`), read one, close one (start the unilateral close; once the challenge is over, finalize and
//! get the rest of the deposit back), and turn an open one into the client's [`Channel`] to pay vouchers from.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use schemars::JsonSchema;
use serde::Serialize;
use x402_bindings::{ChannelStatus, PaymentChannel, TestStablecoin};
use x402_client::Channel;
use x402_protocol::channel::{ChannelExtra, SCHEME};
use x402_protocol::network::chain_id_of;
use x402_protocol::price::Price;
use x402_protocol::v2;

use crate::{Wallet, WalletError};

/// A paywall's `channel` offer: who the channel must pay, in what, and the terms it must meet.
#[derive(Clone, Debug)]
pub struct ChannelOffer {
    /// The chain.
    pub chain_id: u64,
    /// The recipient (`payTo`).
    pub recipient: Address,
    /// The token (`asset`).
    pub token: Address,
    /// The PaymentChannel and the minimum terms.
    pub extra: ChannelExtra,
}

impl ChannelOffer {
    /// The first `channel` requirement of a 402's offer.
    pub fn find(offer: &x402_client::offer::Offer) -> Result<Self, WalletError> {
        let candidate =
            offer.candidates.iter().find(|c| c.requirement.scheme == SCHEME).ok_or_else(|| {
                WalletError::Refused("the offer has no channel scheme requirement".to_owned())
            })?;
        Self::from_requirement(&candidate.requirement)
    }

    /// The offer `requirement` makes, if it is a `channel` one.
    pub fn from_requirement(requirement: &v2::PaymentRequirements) -> Result<Self, WalletError> {
        let refuse = |why: String| WalletError::Refused(why);
        if requirement.scheme != SCHEME {
            return Err(refuse(format!(
                "the requirement is of scheme {:?}, not channel",
                requirement.scheme
            )));
        }
        let extra: ChannelExtra = serde_json::from_value(requirement.extra.clone().unwrap_or_default())
            .map_err(|e| refuse(format!("the channel offer's extra is not the channel scheme's: {e}")))?;
        let chain_id = chain_id_of(&requirement.network)
            .ok_or_else(|| refuse(format!("{} is not an EVM network", requirement.network)))?;
        let recipient = requirement
            .pay_to
            .parse()
            .map_err(|_| refuse("the offer's payTo is not an address".to_owned()))?;
        let token = requirement
            .asset
            .parse()
            .map_err(|_| refuse("the offer's asset is not an address".to_owned()))?;
        Ok(Self { chain_id, recipient, token, extra })
    }
}

/// A channel opened.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Opened {
    /// Its id.
    #[schemars(with = "String")]
    pub channel_id: B256,
    /// The PaymentChannel.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub payment_channel: Address,
    /// The `openChannel` transaction.
    #[schemars(with = "String")]
    pub transaction: B256,
    /// The deposit, in the token's units.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::decimal")]
    pub deposit: U256,
    /// The token.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub token: Address,
    /// The recipient.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub recipient: Address,
    /// The challenge period, seconds.
    pub challenge_period: u64,
    /// When it expires (chain time, Unix seconds).
    pub expires_at: u64,
}

/// What a channel is opened with.
#[derive(Clone, Debug)]
pub struct Opening {
    /// The deposit: `$5` (converted with the token's decimals) or token units.
    pub deposit: Price,
    /// The most it may be, in the same terms; `None`: no limit.
    pub max_deposit: Option<Price>,
    /// The challenge period, seconds [the offer's minimum].
    pub challenge: Option<u64>,
    /// Seconds from now until it expires.
    pub lifetime: u64,
    /// The salt of its id: the id is `channel_id(payer, salt)`, known before anything is sent.
    pub salt: B256,
}

/// Opens a channel from `wallet` that meets `offer` on the terms of `opening`.
pub async fn open(wallet: &Wallet, offer: &ChannelOffer, opening: &Opening) -> Result<Opened, WalletError> {
    let refuse = |why: String| Err(WalletError::Refused(why));
    if wallet.chain_id() != offer.chain_id {
        return refuse(format!(
            "the offer is on chain {}, the wallet on chain {}",
            offer.chain_id,
            wallet.chain_id()
        ));
    }
    let provider = wallet.provider();
    let erc20 = TestStablecoin::new(offer.token, provider);
    let decimals =
        erc20.decimals().call().await.map_err(WalletError::chain("cannot read the token's decimals"))?;
    let deposit =
        opening.deposit.to_atomic(decimals).map_err(|e| WalletError::Refused(format!("the deposit: {e}")))?;
    if let Some(max) = &opening.max_deposit {
        let max =
            max.to_atomic(decimals).map_err(|e| WalletError::Refused(format!("the maximum deposit: {e}")))?;
        if deposit > max {
            return Err(WalletError::Limit(format!(
                "a deposit of {deposit} units is more than the maximum {max}"
            )));
        }
    }
    let min_deposit = x402_protocol::parse_amount(&offer.extra.min_deposit).unwrap_or_default();
    if deposit < min_deposit || deposit.is_zero() {
        return refuse(format!(
            "the server takes channels of at least {min_deposit} units; the deposit is {deposit}"
        ));
    }
    let (challenge, lifetime) =
        (opening.challenge.unwrap_or(offer.extra.min_challenge_period), opening.lifetime);
    if challenge < offer.extra.min_challenge_period {
        return refuse(format!(
            "the server takes challenge periods of at least {} s",
            offer.extra.min_challenge_period
        ));
    }
    if lifetime <= offer.extra.min_expiry_seconds {
        return refuse(format!(
            "the server takes channels expiring more than {} s from now",
            offer.extra.min_expiry_seconds
        ));
    }
    let balance = erc20
        .balanceOf(wallet.address())
        .call()
        .await
        .map_err(WalletError::chain("cannot read the balance"))?;
    if balance < deposit {
        return refuse(format!(
            "the wallet holds {balance} units of {}, less than the deposit {deposit}",
            offer.token
        ));
    }
    let now = wallet.now().await?;
    let expires_at = now.saturating_add(lifetime);
    let salt = opening.salt;
    let channels = PaymentChannel::new(offer.extra.payment_channel, provider);
    wallet.send("approve", erc20.approve(offer.extra.payment_channel, deposit)).await?;
    let opening = channels.openChannel(
        salt,
        offer.recipient,
        offer.token,
        deposit,
        U256::from(expires_at),
        U256::from(challenge),
    );
    let transaction = wallet.send("openChannel", opening).await?;
    Ok(Opened {
        channel_id: x402_bindings::voucher::channel_id(wallet.address(), salt),
        payment_channel: offer.extra.payment_channel,
        transaction,
        deposit,
        token: offer.token,
        recipient: offer.recipient,
        challenge_period: challenge,
        expires_at,
    })
}

/// Where a channel is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Vouchers are taken.
    Open,
    /// A unilateral close started: the recipient claims until the challenge ends.
    Closing,
    /// Closed: the rest of the deposit went back to the payer.
    Closed,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Open => "open",
            State::Closing => "closing",
            State::Closed => "closed",
        })
    }
}

/// A channel as the chain has it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelInfo {
    /// Its id.
    #[schemars(with = "String")]
    pub channel_id: B256,
    /// The PaymentChannel.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub payment_channel: Address,
    /// Its state.
    pub status: State,
    /// Who pays.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub payer: Address,
    /// Who is paid.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub recipient: Address,
    /// The token.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::address")]
    pub token: Address,
    /// The deposit.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::decimal")]
    pub deposit: U256,
    /// Claimed by the recipient so far.
    #[schemars(with = "String")]
    #[serde(serialize_with = "crate::text::decimal")]
    pub claimed: U256,
    /// When it expires.
    pub expires_at: u64,
    /// The challenge period, seconds.
    pub challenge_period: u64,
    /// When a close started ends its challenge (0 unless closing).
    pub closes_at: u64,
}

/// Reads channel `id` of `payment_channel`.
pub async fn read(
    provider: &DynProvider,
    payment_channel: Address,
    id: B256,
) -> Result<ChannelInfo, WalletError> {
    let channel = PaymentChannel::new(payment_channel, provider)
        .getChannel(id)
        .call()
        .await
        .map_err(WalletError::chain("cannot read the channel"))?;
    let status = match ChannelStatus::try_from(channel.status) {
        Ok(ChannelStatus::Open) => State::Open,
        Ok(ChannelStatus::Closing) => State::Closing,
        Ok(ChannelStatus::Closed) => State::Closed,
        _ => return Err(WalletError::Refused(format!("no channel {id} on {payment_channel}"))),
    };
    Ok(ChannelInfo {
        channel_id: id,
        payment_channel,
        status,
        payer: channel.payer,
        recipient: channel.recipient,
        token: channel.token,
        deposit: U256::from(channel.deposit),
        claimed: U256::from(channel.claimed),
        expires_at: channel.expiresAt.to::<u64>(),
        challenge_period: u64::from(channel.challengePeriod),
        closes_at: channel.closesAt.to::<u64>(),
    })
}

/// What [`close`] did.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "step")]
pub enum CloseStep {
    /// The close started; finalize after `closesAt` (the recipient claims its last voucher meanwhile).
    Started {
        /// The `startClose` transaction.
        #[schemars(with = "String")]
        transaction: B256,
        /// When the challenge ends.
        closes_at: u64,
    },
    /// The challenge is over: closed, the rest of the deposit back to the payer.
    Finalized {
        /// The `finalizeClose` transaction.
        #[schemars(with = "String")]
        transaction: B256,
        /// Claimed by the recipient in all.
        #[schemars(with = "String")]
        #[serde(serialize_with = "crate::text::decimal")]
        claimed: U256,
    },
    /// It was closed already.
    AlreadyClosed,
}

/// Moves channel `id` of `payment_channel` one step to closed: starts the close of an open channel, or finalizes
/// a closing one whose challenge is over.
pub async fn close(wallet: &Wallet, payment_channel: Address, id: B256) -> Result<CloseStep, WalletError> {
    let channel = read(wallet.provider(), payment_channel, id).await?;
    if channel.payer != wallet.address() {
        return Err(WalletError::Refused(format!(
            "channel {id} is paid by {}, not by this wallet ({})",
            channel.payer,
            wallet.address()
        )));
    }
    let contract = PaymentChannel::new(payment_channel, wallet.provider());
    match channel.status {
        State::Open => {
            let transaction = wallet.send("startClose", contract.startClose(id)).await?;
            let channel = read(wallet.provider(), payment_channel, id).await?;
            Ok(CloseStep::Started { transaction, closes_at: channel.closes_at })
        }
        State::Closing => {
            let now = wallet.now().await?;
            if now < channel.closes_at {
                return Err(WalletError::Refused(format!(
                    "the challenge ends at {} (chain time now {now}); finalize after it",
                    channel.closes_at
                )));
            }
            let transaction = wallet.send("finalizeClose", contract.finalizeClose(id)).await?;
            let channel = read(wallet.provider(), payment_channel, id).await?;
            Ok(CloseStep::Finalized { transaction, claimed: channel.claimed })
        }
        State::Closed => Ok(CloseStep::AlreadyClosed),
    }
}

/// Channel `id` of `payment_channel` on `chain_id`, open and paid by `payer`, as the client pays from it. What
/// the server took is at least what was claimed and at least `reported` (the last running total the server
/// reported, if the caller kept it); a refused voucher tells the client the rest.
pub async fn for_client(
    provider: &DynProvider,
    chain_id: u64,
    payment_channel: Address,
    id: B256,
    payer: Address,
    reported: U256,
) -> Result<Channel, WalletError> {
    let on = provider.get_chain_id().await.map_err(WalletError::rpc("cannot reach the RPC endpoint"))?;
    if on != chain_id {
        return Err(WalletError::Refused(format!(
            "the channel is on chain {chain_id}, the RPC endpoint on chain {on}"
        )));
    }
    let channel = read(provider, payment_channel, id).await?;
    if channel.status != State::Open {
        return Err(WalletError::Refused(format!(
            "channel {id} is not open ({}) on {payment_channel}",
            channel.status
        )));
    }
    if channel.payer != payer {
        return Err(WalletError::Refused(format!(
            "channel {id} is paid by {}, not by this key ({payer})",
            channel.payer
        )));
    }
    Ok(Channel::new(
        chain_id,
        payment_channel,
        id,
        channel.recipient,
        channel.token,
        channel.deposit,
        channel.claimed.max(reported),
    ))
}
