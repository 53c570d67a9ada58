//! `x402 pay`: a curl-like request that pays its 402 with the local key under a spend policy. The answer's body
//! goes to stdout; what was paid and settled to stderr. Exit codes: 0 served, 1 error, 3 refused by the policy,
//! 4 payment refused by the server (or sent and unanswered), 5 an HTTP error answer.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use eyre::{WrapErr, bail};
use reqwest::Method;
use x402_client::client::{Outcome, Payment};
use x402_client::{Budget, Channel, Client, ClientError, Policy, Quote};
use x402_protocol::price::Price;

use crate::keys;

/// Exit code: no requirement allowed by the policy, or over budget.
const REFUSED: u8 = 3;
/// Exit code: the server refused the payment.
const PAYMENT_FAILED: u8 = 4;
/// Exit code: the answer is an HTTP error.
const HTTP_ERROR: u8 = 5;

/// The spend policy: what one payment may be, and the budget per period.
#[derive(Debug, clap::Args)]
pub(crate) struct SpendArgs {
    /// The most one request may cost: `$0.05` (dollars, 6-decimal stablecoins) or token units [default: $1].
    #[arg(long)]
    max: Option<Price>,
    /// Also pay in this token: `CHAIN_ID:ADDRESS` (USDC of Base and Arbitrum, mainnet and Sepolia, is allowed).
    #[arg(long = "allow-asset", value_parser = parse_asset)]
    allow_assets: Vec<(u64, Address)>,
    /// Pay only these recipients (`payTo`); repeat for several [default: anyone].
    #[arg(long = "recipient")]
    recipients: Vec<Address>,
    /// Pay only on these chains (ids); repeat for several [default: any with an allowed token].
    #[arg(long = "chain-id")]
    chain_ids: Vec<u64>,
    /// The most all requests may cost per --period, per token; kept in --ledger.
    #[arg(long)]
    budget: Option<Price>,
    /// The budget's period in seconds [default: 86400].
    #[arg(long, default_value_t = 86_400, requires = "budget")]
    period: u64,
}

impl SpendArgs {
    /// The policy.
    pub(crate) fn policy(&self) -> Policy {
        let mut policy = Policy::default();
        if let Some(max) = &self.max {
            policy = policy.max_per_request(max.clone());
        }
        for (chain, token) in &self.allow_assets {
            policy = policy.allow_asset(*chain, *token);
        }
        if !self.recipients.is_empty() {
            policy = policy.recipients(self.recipients.clone());
        }
        if !self.chain_ids.is_empty() {
            policy = policy.networks(self.chain_ids.clone());
        }
        policy
    }

    /// The budget, its totals kept in `file`, if one is set.
    pub(crate) fn budget(&self, file: PathBuf) -> Option<Budget> {
        let limit = self.budget.clone()?;
        Some(Budget { limit, period: Duration::from_secs(self.period), file })
    }
}

/// Send a request and pay for it if the server asks (HTTP 402).
#[derive(Debug, clap::Args)]
pub(crate) struct PayArgs {
    /// The URL.
    url: String,
    /// The method [default: GET, or POST with --data].
    #[arg(short = 'X', long = "request")]
    method: Option<String>,
    /// A request header, `Name: value`; repeat for several.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The request body (`@FILE` reads a file).
    #[arg(short = 'd', long = "data")]
    data: Option<String>,
    #[command(flatten)]
    spend: SpendArgs,
    /// The budget's ledger file [default: x402-spend.json].
    #[arg(long, default_value = "x402-spend.json", requires = "budget")]
    ledger: PathBuf,
    /// Send the request once without a payment and show what would be paid; sign and pay nothing.
    #[arg(long)]
    dry_run: bool,
    /// Show the 402's requirements and the answer's headers on stderr.
    #[arg(short, long)]
    verbose: bool,
    /// Seconds each HTTP request may take (the paid one included, which waits for its settlement).
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Foundry/geth keystore file of the payer (password from X402_KEYSTORE_PASSWORD or a prompt); otherwise the
    /// key comes from X402_PRIVATE_KEY.
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Pay with vouchers on this payment channel of the payer (see `x402 channel open`) when the server offers the
    /// channel scheme; its state is read from --rpc-url.
    #[arg(long, requires = "rpc_url")]
    channel: Option<B256>,
    /// JSON-RPC endpoint of the channel's chain.
    #[arg(long, env = "ETH_RPC_URL")]
    rpc_url: Option<String>,
}

fn parse_asset(text: &str) -> Result<(u64, Address), String> {
    let (chain, address) = text.split_once(':').ok_or("expected CHAIN_ID:ADDRESS")?;
    let chain = chain.parse().map_err(|_| format!("{chain:?} is not a chain id"))?;
    let address = address.parse().map_err(|_| format!("{address:?} is not an address"))?;
    Ok((chain, address))
}

impl PayArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        let signer = keys::load(self.keystore.as_deref(), "payer")?;
        let policy = self.spend.policy();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(self.timeout))
            .build()?;
        let mut client = Client::new(signer)?.http(http).policy(policy);
        if let Some(budget) = self.spend.budget(self.ledger.clone()) {
            client = client.budget(budget);
        }
        if let Some(id) = self.channel {
            let channel = self.channel_of(&client, id).await?;
            client = client.channel(channel);
        }
        let request = self.request(&client)?;
        if self.dry_run {
            return self.quote(&client, request).await;
        }
        match client.send(request).await {
            Ok(outcome) => self.finish(outcome).await,
            Err(ClientError::Refused(reasons)) => {
                eprintln!("refused by the policy, nothing paid:");
                for reason in reasons {
                    eprintln!("  {reason}");
                }
                Ok(ExitCode::from(REFUSED))
            }
            Err(err @ ClientError::OverBudget { .. }) => {
                eprintln!("refused by the policy, nothing paid: {err}");
                Ok(ExitCode::from(REFUSED))
            }
            Err(ClientError::PaymentFailed { status, reason, payment }) => {
                describe(&payment);
                eprintln!("payment refused by the server (HTTP {status}): {reason}");
                Ok(ExitCode::from(PAYMENT_FAILED))
            }
            Err(ClientError::Unanswered { payment, source }) => {
                describe(&payment);
                eprintln!(
                    "no answer to the paid request ({source}); the signed authorization may still settle"
                );
                Ok(ExitCode::from(PAYMENT_FAILED))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The payer's channel `id`, as the chain has it, for the channel offer of the URL's 402.
    async fn channel_of(
        &self,
        client: &Client<alloy::signers::local::PrivateKeySigner>,
        id: B256,
    ) -> eyre::Result<Channel> {
        let Quote::Priced { offer, .. } = client.quote(self.request(client)?).await? else {
            bail!("{} asks for no payment", self.url);
        };
        let offer = x402_wallet::channels::ChannelOffer::find(&offer)
            .wrap_err_with(|| format!("{} does not offer the channel scheme", self.url))?;
        let url = self.rpc_url.as_deref().unwrap_or_default();
        let provider = x402_chain::rpc::connect(url, Duration::from_secs(30))?;
        let channel = x402_wallet::channels::for_client(
            &provider,
            offer.chain_id,
            offer.extra.payment_channel,
            id,
            client.address(),
            U256::ZERO,
        )
        .await?;
        Ok(channel)
    }

    fn request(
        &self,
        client: &Client<alloy::signers::local::PrivateKeySigner>,
    ) -> eyre::Result<reqwest::Request> {
        let method = match (&self.method, &self.data) {
            (Some(method), _) => Method::from_bytes(method.to_uppercase().as_bytes())
                .map_err(|_| eyre::eyre!("{method:?} is not an HTTP method"))?,
            (None, Some(_)) => Method::POST,
            (None, None) => Method::GET,
        };
        let mut builder = client.http_client().request(method, &self.url);
        for header in &self.headers {
            let Some((name, value)) = header.split_once(':') else {
                bail!("header {header:?} is not `Name: value`");
            };
            builder = builder.header(name.trim(), value.trim());
        }
        if let Some(data) = &self.data {
            let body = match data.strip_prefix('@') {
                Some(path) => std::fs::read(path).wrap_err_with(|| format!("cannot read {path}"))?,
                None => data.clone().into_bytes(),
            };
            builder = builder.body(body);
        }
        builder.build().wrap_err_with(|| format!("{} is not a URL to request", self.url))
    }

    async fn quote(
        &self,
        client: &Client<alloy::signers::local::PrivateKeySigner>,
        request: reqwest::Request,
    ) -> eyre::Result<ExitCode> {
        match client.quote(request).await? {
            Quote::Free(response) => {
                eprintln!("free: HTTP {} without a payment; nothing to pay", response.status().as_u16());
                Ok(ExitCode::SUCCESS)
            }
            Quote::Priced { offer, choice } => {
                if self.verbose {
                    for candidate in &offer.candidates {
                        eprintln!(
                            "offered (v{}): {}",
                            candidate.version,
                            serde_json::to_string(&candidate.requirement)?
                        );
                    }
                }
                match choice {
                    Ok((candidate, amount)) => {
                        let r = &candidate.requirement;
                        eprintln!(
                            "would pay {amount} of {} on {} to {} from {} (dry run: nothing signed)",
                            r.asset,
                            candidate.network,
                            r.pay_to,
                            client.address()
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(reasons) => {
                        eprintln!("the policy allows none of the offer:");
                        for reason in reasons {
                            eprintln!("  {reason}");
                        }
                        Ok(ExitCode::from(REFUSED))
                    }
                }
            }
        }
    }

    async fn finish(&self, outcome: Outcome) -> eyre::Result<ExitCode> {
        let Outcome { mut response, offer, payment } = outcome;
        if self.verbose {
            for candidate in offer.iter().flat_map(|o| &o.candidates) {
                eprintln!(
                    "offered (v{}): {}",
                    candidate.version,
                    serde_json::to_string(&candidate.requirement)?
                );
            }
            eprintln!("HTTP {}", response.status());
            for (name, value) in response.headers() {
                eprintln!("{name}: {}", value.to_str().unwrap_or("<binary>"));
            }
        }
        if let Some(payment) = &payment {
            describe(payment);
        }
        let status = response.status();
        let mut stdout = std::io::stdout().lock();
        while let Some(chunk) = response.chunk().await? {
            if stdout.write_all(&chunk).is_err() {
                break;
            }
        }
        stdout.flush().ok();
        if status.is_client_error() || status.is_server_error() {
            eprintln!("HTTP {}", status.as_u16());
            return Ok(ExitCode::from(HTTP_ERROR));
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn describe(payment: &Payment) {
    let r = &payment.requirement;
    eprintln!(
        "paid {} of {} on {} to {} from {}",
        payment.amount, r.asset, payment.network, r.pay_to, payment.payer
    );
    if let Some(receipt) = &payment.channel {
        match receipt.error_reason.as_deref() {
            None => eprintln!(
                "paid by voucher on channel {}: {} taken in all, {} of the deposit left",
                receipt.channel_id, receipt.cumulative, receipt.remaining
            ),
            Some(reason) => eprintln!(
                "voucher refused: {reason}{} ({} taken on channel {})",
                receipt.error_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
                receipt.cumulative,
                receipt.channel_id
            ),
        }
        return;
    }
    match &payment.receipt {
        Some(receipt) if receipt.success => {
            eprintln!("settled: transaction {} on {}", receipt.transaction, receipt.network)
        }
        Some(receipt) => eprintln!(
            "not settled: {}{}",
            receipt.error_reason.as_deref().unwrap_or("no reason"),
            receipt.error_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
        ),
        None => eprintln!("no settlement receipt in the answer (not settled yet, or not charged)"),
    }
}
