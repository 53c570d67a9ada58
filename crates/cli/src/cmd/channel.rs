//! `x402 channel open|status|close`: the payer's side of a payment channel on chain. `open` reads a paywalled
//! URL's 402 for its `channel` offer (PaymentChannel, recipient, token, minimum terms) and opens a channel that
//! meets it; `x402 pay URL --channel ID` then pays per request with vouchers (docs/channels.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, bail, eyre};
use x402_bindings::{ChannelStatus, PaymentChannel, TestStablecoin};
use x402_protocol::channel::{ChannelExtra, SCHEME};
use x402_protocol::headers::{self, PAYMENT_REQUIRED};
use x402_protocol::network::chain_id_of;
use x402_protocol::price::Price;
use x402_protocol::v2;

use super::say;
use crate::keys;

/// How long a transaction may take to be mined.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Open, show or close a payment channel (the payer's side).
#[derive(Debug, clap::Args)]
pub(crate) struct ChannelArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Open a channel that pays a paywalled URL's `channel` offer: approve the deposit, then `openChannel`.
    Open(OpenArgs),
    /// Show a channel as the chain has it.
    Status(StatusArgs),
    /// Start a unilateral close (the recipient's keeper claims its last voucher meanwhile); once the challenge
    /// period is over, finalize it and get the rest of the deposit back.
    Close(StatusArgs),
}

/// Where the chain is and who signs.
#[derive(Debug, clap::Args)]
struct Chain {
    /// JSON-RPC endpoint of the channel's chain.
    #[arg(long, env = "ETH_RPC_URL")]
    rpc_url: String,
    /// Foundry/geth keystore file of the payer (password from X402_KEYSTORE_PASSWORD or a prompt); otherwise the
    /// key comes from X402_PRIVATE_KEY.
    #[arg(long)]
    keystore: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct OpenArgs {
    /// A URL whose 402 offers the `channel` scheme.
    url: String,
    /// The deposit: `$5` (dollars, 6-decimal stablecoins) or token units.
    #[arg(long)]
    deposit: Price,
    /// The challenge period in seconds [default: the offer's minimum].
    #[arg(long)]
    challenge: Option<u64>,
    /// Seconds until the channel expires [default: 7 days].
    #[arg(long, default_value_t = 7 * 86_400)]
    lifetime: u64,
    #[command(flatten)]
    chain: Chain,
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    /// The channel id.
    channel: B256,
    /// The PaymentChannel proxy (the `paymentChannel` of the offer, or the deployment record's).
    #[arg(long)]
    payment_channel: Address,
    #[command(flatten)]
    chain: Chain,
}

fn provider(chain: &Chain, signer: Option<PrivateKeySigner>) -> eyre::Result<DynProvider> {
    let url = chain.rpc_url.parse().wrap_err_with(|| format!("{} is not a URL", chain.rpc_url))?;
    Ok(match signer {
        Some(signer) => {
            ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url).erased()
        }
        None => ProviderBuilder::new().connect_http(url).erased(),
    })
}

async fn mined(
    what: &str,
    sent: alloy::contract::Result<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>>,
) -> eyre::Result<B256> {
    let pending = sent.wrap_err_with(|| format!("{what} was refused"))?;
    let receipt = pending
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .wrap_err_with(|| format!("{what} was sent but no receipt came"))?;
    if !receipt.status() {
        bail!("{what} reverted in {}", receipt.transaction_hash);
    }
    Ok(receipt.transaction_hash)
}

/// The `channel` requirement of `url`'s 402.
async fn channel_offer(url: &str) -> eyre::Result<(v2::PaymentRequirements, ChannelExtra, u64)> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let response = http.get(url).send().await.wrap_err_with(|| format!("cannot reach {url}"))?;
    if response.status() != reqwest::StatusCode::PAYMENT_REQUIRED {
        bail!("{url} answered HTTP {}, not 402", response.status().as_u16());
    }
    let header =
        response.headers().get(PAYMENT_REQUIRED).and_then(|v| v.to_str().ok()).ok_or_else(|| {
            eyre!("{url} sent no PAYMENT-REQUIRED header (the channel scheme is x402 v2 only)")
        })?;
    let offer: v2::PaymentRequired =
        headers::decode(header).wrap_err("the PAYMENT-REQUIRED header is unreadable")?;
    let requirement = offer
        .accepts
        .into_iter()
        .find(|r| r.scheme == SCHEME)
        .ok_or_else(|| eyre!("{url} does not offer the channel scheme"))?;
    let extra: ChannelExtra = serde_json::from_value(requirement.extra.clone().unwrap_or_default())
        .wrap_err("the channel offer's extra is not the channel scheme's")?;
    let chain_id = chain_id_of(&requirement.network)
        .ok_or_else(|| eyre!("{} is not an EVM network", requirement.network))?;
    Ok((requirement, extra, chain_id))
}

impl ChannelArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        match self.action {
            Action::Open(args) => args.run().await,
            Action::Status(args) => args.status().await,
            Action::Close(args) => args.close().await,
        }
    }
}

impl OpenArgs {
    async fn run(self) -> eyre::Result<ExitCode> {
        let signer = keys::load(self.chain.keystore.as_deref(), "payer")?;
        let payer = signer.address();
        let (requirement, extra, chain_id) = channel_offer(&self.url).await?;
        let provider = provider(&self.chain, Some(signer))?;
        let on = provider.get_chain_id().await.wrap_err("cannot reach the RPC endpoint")?;
        if on != chain_id {
            bail!("the offer is on chain {chain_id}, the RPC endpoint on chain {on}");
        }
        let recipient: Address =
            requirement.pay_to.parse().wrap_err("the offer's payTo is not an address")?;
        let token: Address = requirement.asset.parse().wrap_err("the offer's asset is not an address")?;
        let erc20 = TestStablecoin::new(token, &provider);
        let decimals = erc20.decimals().call().await.wrap_err("cannot read the token's decimals")?;
        let deposit = self.deposit.to_atomic(decimals)?;
        let min_deposit = x402_protocol::parse_amount(&extra.min_deposit).unwrap_or_default();
        if deposit < min_deposit {
            bail!("the server takes channels of at least {min_deposit} units; --deposit is {deposit}");
        }
        let challenge = self.challenge.unwrap_or(extra.min_challenge_period);
        if challenge < extra.min_challenge_period {
            bail!("the server takes challenge periods of at least {} s", extra.min_challenge_period);
        }
        if self.lifetime <= extra.min_expiry_seconds {
            bail!("the server takes channels expiring more than {} s from now", extra.min_expiry_seconds);
        }
        let now = x402_chain::block::time(&provider).await?;
        let salt = B256::random();
        let channels = PaymentChannel::new(extra.payment_channel, &provider);
        mined("approve", erc20.approve(extra.payment_channel, deposit).send().await).await?;
        let open = channels.openChannel(
            salt,
            recipient,
            token,
            deposit,
            U256::from(now + self.lifetime),
            U256::from(challenge),
        );
        let tx = mined("openChannel", open.send().await).await?;
        let id = x402_bindings::voucher::channel_id(payer, salt);
        say(format!("opened channel {id} in {tx}"));
        say(format!(
            "  {deposit} units of {token} from {payer} to {recipient}, challenge {challenge} s, expires in {} s",
            self.lifetime
        ));
        say(format!("pay through it: x402 pay {} --channel {id} --rpc-url {}", self.url, self.chain.rpc_url));
        Ok(ExitCode::SUCCESS)
    }
}

impl StatusArgs {
    async fn status(self) -> eyre::Result<ExitCode> {
        let provider = provider(&self.chain, None)?;
        let channel = PaymentChannel::new(self.payment_channel, &provider)
            .getChannel(self.channel)
            .call()
            .await
            .wrap_err("cannot read the channel")?;
        let status = match ChannelStatus::try_from(channel.status) {
            Ok(ChannelStatus::Open) => "open",
            Ok(ChannelStatus::Closing) => "closing",
            Ok(ChannelStatus::Closed) => "closed",
            _ => bail!("no channel {} on {}", self.channel, self.payment_channel),
        };
        say(format!("channel {}: {status}", self.channel));
        say(format!("  payer {} -> recipient {} in {}", channel.payer, channel.recipient, channel.token));
        say(format!("  deposit {}, claimed {}", channel.deposit, channel.claimed));
        say(format!("  expires at {}, challenge period {} s", channel.expiresAt, channel.challengePeriod));
        if channel.status == ChannelStatus::Closing as u8 {
            say(format!("  the challenge ends at {}", channel.closesAt));
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn close(self) -> eyre::Result<ExitCode> {
        let signer = keys::load(self.chain.keystore.as_deref(), "payer")?;
        let provider = provider(&self.chain, Some(signer))?;
        let contract = PaymentChannel::new(self.payment_channel, &provider);
        let channel = contract.getChannel(self.channel).call().await.wrap_err("cannot read the channel")?;
        match ChannelStatus::try_from(channel.status) {
            Ok(ChannelStatus::Open) => {
                let tx = mined("startClose", contract.startClose(self.channel).send().await).await?;
                let channel = contract.getChannel(self.channel).call().await?;
                say(format!("close started in {tx}; the challenge ends at {}", channel.closesAt));
                say("run this again after it to finalize and get the rest of the deposit back");
            }
            Ok(ChannelStatus::Closing) => {
                let now = x402_chain::block::time(&provider).await?;
                if now < channel.closesAt.to::<u64>() {
                    bail!("the challenge ends at {} (now {now}); finalize after it", channel.closesAt);
                }
                let tx = mined("finalizeClose", contract.finalizeClose(self.channel).send().await).await?;
                say(format!("closed in {tx}"));
            }
            Ok(ChannelStatus::Closed) => say("the channel is closed already"),
            _ => bail!("no channel {} on {}", self.channel, self.payment_channel),
        }
        Ok(ExitCode::SUCCESS)
    }
}
