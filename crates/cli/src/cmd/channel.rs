//! `x402 channel open|status|close`: the payer's side of a payment channel on chain. `open` reads a paywalled
//! URL's 402 for its `channel` offer (PaymentChannel, recipient, token, minimum terms) and opens a channel that
//! meets it; `x402 pay URL --channel ID` then pays per request with vouchers (docs/channels.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, bail};
use x402_client::{Client, Quote};
use x402_protocol::price::Price;
use x402_wallet::Wallet;
use x402_wallet::channels::{self, ChannelOffer, CloseStep, Opening, State};

use super::say;
use crate::keys;

/// How long each RPC request may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

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

impl Chain {
    /// The payer's key, and a wallet signing with it on the chain.
    async fn wallet(&self) -> eyre::Result<(PrivateKeySigner, Wallet)> {
        let signer = keys::load(self.keystore.as_deref(), "payer")?;
        let wallet = Wallet::connect(&self.rpc_url, signer.clone(), RPC_TIMEOUT).await?;
        Ok((signer, wallet))
    }
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
        let (signer, wallet) = self.chain.wallet().await?;
        let client = Client::new(signer)?;
        let request = client
            .http_client()
            .get(&self.url)
            .build()
            .wrap_err_with(|| format!("{} is not a URL", self.url))?;
        let Quote::Priced { offer, .. } = client.quote(request).await? else {
            bail!("{} asks for no payment", self.url);
        };
        let offer = ChannelOffer::find(&offer).wrap_err_with(|| format!("{} offers no channel", self.url))?;
        let opening = Opening {
            deposit: self.deposit.clone(),
            max_deposit: None,
            challenge: self.challenge,
            lifetime: self.lifetime,
            salt: B256::random(),
        };
        let opened = channels::open(&wallet, &offer, &opening).await?;
        let id = opened.channel_id;
        say(format!("opened channel {id} in {}", opened.transaction));
        say(format!(
            "  {} units of {} from {} to {}, challenge {} s, expires in {} s",
            opened.deposit,
            opened.token,
            wallet.address(),
            opened.recipient,
            opened.challenge_period,
            self.lifetime
        ));
        say(format!("pay through it: x402 pay {} --channel {id} --rpc-url {}", self.url, self.chain.rpc_url));
        Ok(ExitCode::SUCCESS)
    }
}

impl StatusArgs {
    async fn status(self) -> eyre::Result<ExitCode> {
        let provider = x402_chain::rpc::connect(&self.chain.rpc_url, RPC_TIMEOUT)?;
        let channel = channels::read(&provider, self.payment_channel, self.channel).await?;
        say(format!("channel {}: {}", self.channel, channel.status));
        say(format!("  payer {} -> recipient {} in {}", channel.payer, channel.recipient, channel.token));
        say(format!("  deposit {}, claimed {}", channel.deposit, channel.claimed));
        say(format!("  expires at {}, challenge period {} s", channel.expires_at, channel.challenge_period));
        if channel.status == State::Closing {
            say(format!("  the challenge ends at {}", channel.closes_at));
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn close(self) -> eyre::Result<ExitCode> {
        let (_, wallet) = self.chain.wallet().await?;
        match channels::close(&wallet, self.payment_channel, self.channel).await? {
            CloseStep::Started { transaction, closes_at } => {
                say(format!("close started in {transaction}; the challenge ends at {closes_at}"));
                say("run this again after it to finalize and get the rest of the deposit back");
            }
            CloseStep::Finalized { transaction, .. } => say(format!("closed in {transaction}")),
            CloseStep::AlreadyClosed => say("the channel is closed already"),
        }
        Ok(ExitCode::SUCCESS)
    }
}
