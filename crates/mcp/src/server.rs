//! The MCP server: the tools an agent pays with. The key stays in this process (from the environment or a
//! keystore, never a tool argument); every paying tool goes through the spend policy and the budget, refuses
//! with the reason (and the budget left) when they do not allow it, only quotes in dry-run mode, and writes what
//! it paid to the ledger before it answers.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, U256};
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};
use x402_client::client::Payment;
use x402_client::offer::{self, Candidate};
use x402_client::policy::CAP_DECIMALS;
use x402_client::{Channel, Client, ClientError, Policy, Quote, Spent};
use x402_protocol::network::{caip2, chain_id_of};
use x402_protocol::price::{Price, decimal};
use x402_protocol::v2;
use x402_wallet::channels::{self, ChannelOffer, CloseStep};
use x402_wallet::payments::{self, Status};
use x402_wallet::{Wallet, WalletError, balances, tools};

use crate::answers::{self, reason, refuse};
use crate::args;
use crate::ledger::{Entry, Ledger, LedgerError};
use crate::settings::{NetworkSettings, Settings};

/// A channel lives this long unless told otherwise.
const DEFAULT_LIFETIME: u64 = 7 * 86_400;

/// What a tool answers: its typed result, or a tool error.
type Answer<T> = Result<Json<T>, CallToolResult>;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A network's RPC endpoint cannot be used.
    #[error("the network at {url}: {source}")]
    Network {
        /// Its URL.
        url: String,
        /// Why.
        #[source]
        source: WalletError,
    },
    /// Two endpoints are on one chain.
    #[error("two RPC endpoints are on chain {0}")]
    SameChain(u64),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The ledger cannot be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The `x402 mcp` server.
#[derive(Clone, Debug)]
pub struct X402Mcp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    signer: PrivateKeySigner,
    http: reqwest::Client,
    settings: Settings,
    networks: Vec<Network>,
    /// Open channels this server opened (or found in the ledger at start), paid through by `x402_fetch`.
    channels: Mutex<Vec<Arc<Channel>>>,
    ledger: Ledger,
}

#[derive(Debug)]
struct Network {
    wallet: Wallet,
    settings: NetworkSettings,
}

impl X402Mcp {
    /// Connects to every network of `settings` and loads the channels of the ledger that are still open.
    pub async fn start(signer: PrivateKeySigner, settings: Settings) -> Result<Self, StartError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(settings.timeout)
            .build()?;
        let mut networks: Vec<Network> = Vec::new();
        for network in &settings.networks {
            let wallet = Wallet::connect(&network.rpc_url, signer.clone(), settings.timeout)
                .await
                .map_err(|source| StartError::Network { url: network.rpc_url.clone(), source })?;
            if networks.iter().any(|n| n.wallet.chain_id() == wallet.chain_id()) {
                return Err(StartError::SameChain(wallet.chain_id()));
            }
            networks.push(Network { wallet, settings: network.clone() });
        }
        let ledger = Ledger::new(settings.ledger.clone());
        let entries = ledger.entries()?;
        let inner = Inner { signer, http, settings, networks, channels: Mutex::new(Vec::new()), ledger };
        let server = Self { inner: Arc::new(inner) };
        server.reload_channels(&entries).await;
        Ok(server)
    }

    /// The channels opened in `entries` and not closed since, that are still open on chain.
    async fn reload_channels(&self, entries: &[Entry]) {
        for entry in entries
            .iter()
            .filter(|e| e.kind == "channel_open" && matches!(e.outcome.as_str(), "opened" | "unanswered"))
        {
            let closed =
                entries.iter().any(|e| e.kind == "channel_close" && e.channel_id == entry.channel_id);
            let parsed = (
                chain_id_of(&entry.network),
                entry.payment_channel.as_deref().and_then(|a| a.parse::<Address>().ok()),
                entry.channel_id.as_deref().and_then(|id| id.parse::<B256>().ok()),
            );
            let (Some(chain_id), Some(payment_channel), Some(id)) = parsed else { continue };
            let Some(network) = self.network(Some(chain_id)) else { continue };
            if closed {
                continue;
            }
            let provider = network.wallet.provider();
            // The server took at least what it last reported: starting lower would sign vouchers it refuses.
            let reported = entries
                .iter()
                .filter(|e| e.channel_id == entry.channel_id)
                .filter_map(|e| e.cumulative.as_deref().and_then(x402_protocol::parse_amount))
                .max()
                .unwrap_or_default();
            match channels::for_client(provider, chain_id, payment_channel, id, self.address(), reported)
                .await
            {
                Ok(channel) => self.channels().push(Arc::new(channel)),
                Err(err) => tracing::warn!(%id, "a channel of the ledger is not used: {err}"),
            }
        }
    }

    fn address(&self) -> Address {
        self.inner.signer.address()
    }

    fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Channel>>> {
        self.inner.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The network of `chain_id`, or the first one.
    fn network(&self, chain_id: Option<u64>) -> Option<&Network> {
        self.inner.networks.iter().find(|n| chain_id.is_none_or(|id| n.wallet.chain_id() == id))
    }

    /// The network of `chain_id` (or the first) that has `contract`.
    fn network_with(
        &self,
        chain_id: Option<u64>,
        what: &str,
        contract: impl Fn(&NetworkSettings) -> Option<Address>,
    ) -> Result<(&Network, Address), CallToolResult> {
        self.inner
            .networks
            .iter()
            .filter(|n| chain_id.is_none_or(|id| n.wallet.chain_id() == id))
            .find_map(|n| contract(&n.settings).map(|address| (n, address)))
            .ok_or_else(|| {
                let on = chain_id.map(|id| format!(" on chain {id}")).unwrap_or_default();
                refuse(
                    reason::NOT_CONFIGURED,
                    format!("no network with a {what} is configured{on} (--rpc-url and --deployment)"),
                )
            })
    }

    fn dry_run(&self, what: &str) -> Result<(), CallToolResult> {
        if self.settings().dry_run {
            return Err(refuse(
                reason::DRY_RUN,
                format!("dry-run mode: {what} would pay, so nothing was done"),
            ));
        }
        Ok(())
    }

    /// The policy, its cap lowered to `max_price` if that is lower.
    fn policy(&self, max_price: Option<&str>) -> Result<Policy, CallToolResult> {
        let policy = self.settings().policy.clone();
        let Some(text) = max_price else { return Ok(policy) };
        let bad =
            |e: &dyn std::fmt::Display| refuse(reason::INVALID_ARGUMENT, format!("maxPrice {text:?}: {e}"));
        let lower = Price::parse(text).and_then(|p| p.to_atomic(CAP_DECIMALS)).map_err(|e| bad(&e))?;
        let cap = policy.cap().map_err(|e| bad(&e))?;
        Ok(if lower < cap { policy.max_per_request(Price::Atomic(lower)) } else { policy })
    }

    fn client(&self, policy: Policy) -> Result<Client<PrivateKeySigner>, CallToolResult> {
        let mut client = Client::new(self.inner.signer.clone())
            .map_err(|e| refuse(reason::HTTP, e))?
            .http(self.inner.http.clone())
            .policy(policy);
        if let Some(budget) = &self.settings().budget {
            client = client.budget(budget.clone());
        }
        for channel in self.channels().iter() {
            client = client.channel(Arc::clone(channel));
        }
        Ok(client)
    }

    fn request(&self, args: &args::FetchArgs) -> Result<reqwest::Request, CallToolResult> {
        let bad = |what: String| refuse(reason::INVALID_ARGUMENT, what);
        let url: reqwest::Url = args.url.parse().map_err(|e| bad(format!("url {:?}: {e}", args.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!("url {:?} is not http or https", args.url)));
        }
        let method = match (&args.method, &args.body) {
            (Some(method), _) => Method::from_bytes(method.to_uppercase().as_bytes())
                .map_err(|_| bad(format!("method {method:?} is not an HTTP method")))?,
            (None, Some(_)) => Method::POST,
            (None, None) => Method::GET,
        };
        let mut request = reqwest::Request::new(method, url);
        for (name, value) in args.headers.iter().flatten() {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(format!("header name {name:?}")))?;
            let value =
                HeaderValue::from_str(value).map_err(|_| bad(format!("header {name} value {value:?}")))?;
            request.headers_mut().append(name, value);
        }
        if let Some(body) = &args.body {
            *request.body_mut() = Some(body.clone().into());
        }
        Ok(request)
    }

    fn requirement(&self, candidate: &Candidate, policy: &Policy) -> answers::Requirement {
        let r = &candidate.requirement;
        let amount = x402_protocol::parse_amount(&r.amount);
        let dollar_token = match (candidate.chain_id, r.asset.parse::<Address>()) {
            (Some(chain_id), Ok(asset)) => policy.assets.contains(&(chain_id, asset)),
            _ => false,
        };
        let allowed = policy.allows(candidate);
        answers::Requirement {
            scheme: r.scheme.clone(),
            network: r.network.clone(),
            chain_id: candidate.chain_id,
            asset: r.asset.clone(),
            pay_to: r.pay_to.clone(),
            amount: r.amount.clone(),
            dollars: amount.filter(|_| dollar_token).map(|a| decimal(a, CAP_DECIMALS)),
            x402_version: candidate.version,
            allowed: allowed.is_ok(),
            refusal: allowed.err(),
        }
    }

    fn log(&self, entry: &Entry) -> Result<(), CallToolResult> {
        self.inner.ledger.append(entry).map_err(|e| {
            tracing::error!("a payment was made and not written to the ledger: {e}; {entry:?}");
            refuse(reason::LEDGER, format!("the payment was made but not written to the ledger: {e}"))
        })
    }

    fn payment_entry(
        &self,
        tool: &str,
        url: &str,
        payment: &Payment,
        outcome: &str,
        detail: Option<String>,
    ) -> Entry {
        let r = &payment.requirement;
        let by_channel = r.scheme == x402_protocol::channel::SCHEME;
        let transaction = payment.receipt.as_ref().filter(|r| r.success).map(|r| r.transaction.clone());
        // The server's running total on the channel, when it reported one: where a restart starts from.
        let cumulative = payment.channel.as_ref().map(|c| c.cumulative.clone());
        Entry {
            time: unix_now(),
            tool: tool.to_owned(),
            kind: r.scheme.clone(),
            outcome: outcome.to_owned(),
            network: r.network.clone(),
            asset: Some(r.asset.clone()),
            pay_to: Some(r.pay_to.clone()),
            amount: payment.amount.to_string(),
            url: Some(url.to_owned()),
            transaction,
            // A channel payment's `nonce` is its channel's id.
            channel_id: by_channel.then(|| payment.nonce.to_string()),
            payment_channel: None,
            nonce: (!by_channel).then(|| payment.nonce.to_string()),
            cumulative,
            detail,
        }
    }

    fn paid(&self, payment: &Payment, policy: &Policy) -> answers::Paid {
        let candidate = candidate_of(payment);
        let channel = payment.channel.as_ref();
        let receipt = match (&payment.receipt, channel) {
            (_, Some(channel)) => serde_json::to_value(channel).ok(),
            (Some(receipt), None) => serde_json::to_value(receipt).ok(),
            (None, None) => None,
        };
        answers::Paid {
            requirement: self.requirement(&candidate, policy),
            payer: payment.payer.to_string(),
            transaction: payment.receipt.as_ref().filter(|r| r.success).map(|r| r.transaction.clone()),
            channel_id: channel.map(|c| c.channel_id.to_string()),
            channel_cumulative: channel.map(|c| c.cumulative.clone()),
            channel_remaining: channel.map(|c| c.remaining.clone()),
            receipt,
        }
    }

    async fn quote_answer(&self, args: &args::FetchArgs) -> Result<answers::QuoteAnswer, CallToolResult> {
        let policy = self.policy(args.max_price.as_deref())?;
        let client = self.client(policy.clone())?;
        let request = self.request(args)?;
        let quote = client.quote(request).await.map_err(|e| refuse(reason::HTTP, e))?;
        let dry_run = self.settings().dry_run;
        Ok(match quote {
            Quote::Free(response) => answers::QuoteAnswer {
                url: args.url.clone(),
                free: true,
                status: response.status().as_u16(),
                error: None,
                requirements: Vec::new(),
                would_pay: None,
                dry_run,
            },
            Quote::Priced { offer, choice } => answers::QuoteAnswer {
                url: args.url.clone(),
                free: false,
                status: StatusCode::PAYMENT_REQUIRED.as_u16(),
                error: offer.error.clone(),
                requirements: offer.candidates.iter().map(|c| self.requirement(c, &policy)).collect(),
                would_pay: choice.ok().map(|(candidate, _)| self.requirement(&candidate, &policy)),
                dry_run,
            },
        })
    }

    async fn body(&self, mut response: reqwest::Response) -> (String, bool, Option<String>) {
        let limit = self.settings().max_body_bytes;
        let mut bytes = Vec::new();
        let mut truncated = false;
        let mut note = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = limit.saturating_sub(bytes.len());
                    if chunk.len() > room {
                        bytes.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => {
                    note = Some(format!("the body broke off after {} bytes: {err}", bytes.len()));
                    break;
                }
            }
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                let bytes = err.into_bytes();
                // A cut in the middle of a character is not binary.
                match std::str::from_utf8(&bytes) {
                    Err(e) if truncated && e.error_len().is_none() => {
                        String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
                    }
                    _ => {
                        note =
                            Some("the body is not UTF-8 text; shown with replacement characters".to_owned());
                        String::from_utf8_lossy(&bytes).into_owned()
                    }
                }
            }
        };
        if truncated {
            note = Some(format!("the body is longer than {limit} bytes: cut there"));
        }
        (text, truncated, note)
    }

    async fn pay_tool_with(
        &self,
        args: args::PayToolArgs,
        with_credits: bool,
    ) -> Answer<answers::ToolPaidAnswer> {
        let tool_name = if with_credits { "x402_pay_tool_credits" } else { "x402_pay_tool" };
        self.dry_run(tool_name)?;
        let (network, registry) = self.network_with(args.chain_id, "ToolRegistry", |n| n.tool_registry)?;
        let credit_system = if with_credits {
            Some(self.network_with(Some(network.wallet.chain_id()), "CreditSystem", |n| n.credit_system)?.1)
        } else {
            None
        };
        let chain_id = network.wallet.chain_id();
        let tool =
            tools::get(network.wallet.provider(), registry, args.tool_id).await.map_err(chain_error)?;
        let policy = self.policy(args.max_price.as_deref())?;
        let candidate = Candidate {
            version: 2,
            requirement: v2::PaymentRequirements {
                scheme: "exact".to_owned(),
                network: caip2(chain_id),
                amount: tool.price.to_string(),
                asset: tool.token.to_string(),
                pay_to: tool.payout.to_string(),
                max_timeout_seconds: 0,
                extra: None,
            },
            network: caip2(chain_id),
            chain_id: Some(chain_id),
        };
        let price = policy
            .allows(&candidate)
            .map_err(|why| refuse(reason::POLICY, format!("tool {}: {why}", tool.id)))?;
        // What would refuse it before anything is sent costs no budget.
        tools::check(&network.wallet, &tool, credit_system).await.map_err(chain_error)?;
        // Counted before it is sent: a payment that then fails costs budget, never money past the budget.
        self.spend(chain_id, tool.token, price)?;
        let paid = match credit_system {
            Some(credits) => tools::pay_with_credits(&network.wallet, credits, &tool, price).await,
            None => tools::pay(&network.wallet, registry, &tool, price).await,
        };
        let entry = |outcome: &str, transaction: B256, detail: String| Entry {
            time: unix_now(),
            tool: tool_name.to_owned(),
            kind: if with_credits { "tool_credits" } else { "tool" }.to_owned(),
            outcome: outcome.to_owned(),
            network: caip2(chain_id),
            asset: Some(tool.token.to_string()),
            pay_to: Some(tool.payout.to_string()),
            amount: price.to_string(),
            transaction: Some(transaction.to_string()),
            detail: Some(detail),
            ..Entry::default()
        };
        let transaction = match paid {
            Ok(transaction) => transaction,
            Err(err) => {
                if let Some(transaction) = err.unconfirmed() {
                    self.log(&entry("unanswered", transaction, err.to_string()))?;
                }
                return Err(chain_error(err));
            }
        };
        self.log(&entry("paid", transaction, format!("tool {} ({})", tool.id, tool.name)))?;
        Ok(Json(answers::ToolPaidAnswer {
            chain_id,
            tool,
            transaction: transaction.to_string(),
            with_credits,
        }))
    }

    /// Counts `amount` of `token` against the budget, if there is one.
    fn spend(&self, chain_id: u64, token: Address, amount: U256) -> Result<(), CallToolResult> {
        let Some(budget) = &self.settings().budget else { return Ok(()) };
        match budget.spend(chain_id, token, amount, unix_now()) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(left)) => Err(refuse(reason::OVER_BUDGET, ClientError::OverBudget { amount, left })),
            Err(err) => Err(refuse(reason::LEDGER, err)),
        }
    }
}

#[tool_router]
impl X402Mcp {
    /// Fetch a URL; if it asks for an x402 payment (HTTP 402), pay it within the spend policy and return the
    /// answer with the receipt.
    #[tool(
        name = "x402_fetch",
        description = "Fetch an HTTP URL. If it answers 402 Payment Required (x402), pay it within the wallet's spend policy (an exact USDC transfer, or a voucher on a payment channel opened with x402_channel_open) and return the paid answer: status, body (cut at the configured size) and the payment with its receipt. In dry-run mode it only says what would be paid."
    )]
    async fn fetch(&self, Parameters(args): Parameters<args::FetchArgs>) -> Answer<answers::FetchAnswer> {
        if self.settings().dry_run {
            let quote = self.quote_answer(&args).await?;
            let note = "dry-run mode: nothing was paid; `quote` says what would be";
            return Ok(Json(answers::FetchAnswer {
                url: args.url.clone(),
                status: quote.status,
                content_type: None,
                body: serde_json::to_string(&quote).unwrap_or_default(),
                truncated: false,
                paid: None,
                note: Some(note.to_owned()),
            }));
        }
        let policy = self.policy(args.max_price.as_deref())?;
        let client = self.client(policy.clone())?;
        let request = self.request(&args)?;
        let tool = "x402_fetch";
        let outcome = match client.send(request).await {
            Ok(outcome) => outcome,
            Err(ClientError::Refused(reasons)) => {
                return Err(refuse(reason::POLICY, format!("nothing paid: {}", reasons.join("; "))));
            }
            Err(err @ ClientError::OverBudget { .. }) => {
                return Err(refuse(reason::OVER_BUDGET, format!("nothing paid: {err}")));
            }
            Err(ClientError::PaymentFailed { status, reason: why, payment }) => {
                if payment.requirement.scheme == x402_protocol::channel::SCHEME {
                    // A channel the server refuses (closing, expired, its terms changed) is not used again:
                    // the next fetch pays another way.
                    self.channels().retain(|c| c.id != payment.nonce);
                }
                let detail = format!("HTTP {status}: {why}");
                self.log(&self.payment_entry(tool, &args.url, &payment, "refused", Some(detail.clone())))?;
                return Err(refuse(
                    reason::PAYMENT_FAILED,
                    format!("the server refused the payment ({detail})"),
                ));
            }
            Err(ClientError::Unanswered { payment, source }) => {
                let detail = format!("no answer: {source}");
                self.log(&self.payment_entry(tool, &args.url, &payment, "unanswered", Some(detail.clone())))?;
                return Err(refuse(
                    reason::UNANSWERED,
                    format!("the payment was sent and {detail}; its authorization may still settle"),
                ));
            }
            Err(err) => return Err(client_refusal(err)),
        };
        let status = outcome.response.status().as_u16();
        if let Some(payment) = &outcome.payment {
            // An error answer with no settlement was not charged: the authorization is signed, not paid.
            let settled = payment.receipt.as_ref().is_some_and(|r| r.success);
            let (outcome, detail) = match status < 400 || settled {
                true => ("paid", None),
                false => ("signed", Some(format!("HTTP {status}, not settled"))),
            };
            self.log(&self.payment_entry(tool, &args.url, payment, outcome, detail))?;
        }
        let content_type =
            outcome.response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let paid = outcome.payment.as_ref().map(|p| self.paid(p, &policy));
        let (body, truncated, note) = self.body(outcome.response).await;
        Ok(Json(answers::FetchAnswer { url: args.url, status, content_type, body, truncated, paid, note }))
    }

    /// What a URL costs, without paying.
    #[tool(
        name = "x402_quote",
        description = "What an HTTP URL costs, without paying: its x402 requirements (scheme, network, token, recipient, amount in token units and in dollars for USDC), whether the spend policy allows each, and which one x402_fetch would pay."
    )]
    async fn quote(&self, Parameters(args): Parameters<args::FetchArgs>) -> Answer<answers::QuoteAnswer> {
        self.quote_answer(&args).await.map(Json)
    }

    /// The wallet's balances, channels, credits and budget.
    #[tool(
        name = "x402_balance",
        description = "The wallet: its address, token and gas balances on each configured network, credits in CreditSystem, the payment channels it opened and what is left of their deposits, and the budget spent and left in the current period."
    )]
    async fn balance(&self) -> Answer<answers::BalanceAnswer> {
        let owner = self.address();
        let policy = &self.settings().policy;
        let mut networks = Vec::new();
        let mut budget = Vec::new();
        for network in &self.inner.networks {
            let chain_id = network.wallet.chain_id();
            let provider = network.wallet.provider();
            let mut errors = Vec::new();
            let mut tokens: Vec<Address> =
                policy.assets.iter().filter(|(id, _)| *id == chain_id).map(|(_, token)| *token).collect();
            for token in &network.settings.tokens {
                if !tokens.contains(token) {
                    tokens.push(*token);
                }
            }
            let gas_wei = match balances::gas(provider, owner).await {
                Ok(wei) => wei.to_string(),
                Err(err) => {
                    errors.push(err.to_string());
                    String::new()
                }
            };
            let mut token_balances = Vec::new();
            let mut credits = Vec::new();
            for token in &tokens {
                match balances::token(provider, *token, owner).await {
                    Ok(balance) => token_balances.push(balance),
                    // A policy token not deployed on this chain (a local chain) is no error.
                    Err(err) if network.settings.tokens.contains(token) => errors.push(err.to_string()),
                    Err(_) => continue,
                }
                if let Some(credit_system) = network.settings.credit_system {
                    match tools::credits(provider, credit_system, owner, *token).await {
                        Ok((principal, bonus)) => credits.push(answers::Credits {
                            token: token.to_string(),
                            principal: principal.to_string(),
                            bonus: bonus.to_string(),
                        }),
                        Err(err) => errors.push(err.to_string()),
                    }
                }
                if let Some(limits) = &self.settings().budget {
                    match limits.spent(chain_id, *token, unix_now()) {
                        Ok(spent) => budget.push(budget_line(chain_id, *token, &spent, limits.period)),
                        Err(err) => errors.push(err.to_string()),
                    }
                }
            }
            let ours: Vec<Arc<Channel>> =
                self.channels().iter().filter(|c| c.chain_id == chain_id).cloned().collect();
            let mut channel_lines = Vec::new();
            for channel in ours {
                match channels::read(provider, channel.payment_channel, channel.id).await {
                    Ok(info) => {
                        let remaining = info.deposit.saturating_sub(channel.owed().max(info.claimed));
                        channel_lines
                            .push(answers::ChannelLine { channel: info, remaining: remaining.to_string() });
                    }
                    Err(err) => errors.push(err.to_string()),
                }
            }
            networks.push(answers::NetworkBalance {
                chain_id,
                gas_wei,
                tokens: token_balances,
                credits,
                channels: channel_lines,
                error: (!errors.is_empty()).then(|| errors.join("; ")),
            });
        }
        // What the budget spent on chains without an RPC endpoint (`x402_fetch` pays there by signing).
        if let Some(limits) = &self.settings().budget {
            for (chain_id, token) in &policy.assets {
                if budget.iter().any(|b| b.chain_id == *chain_id && b.token == token.to_string()) {
                    continue;
                }
                let spent =
                    limits.spent(*chain_id, *token, unix_now()).map_err(|e| refuse(reason::LEDGER, e))?;
                if !spent.spent.is_zero() {
                    budget.push(budget_line(*chain_id, *token, &spent, limits.period));
                }
            }
        }
        Ok(Json(answers::BalanceAnswer {
            address: owner.to_string(),
            max_per_request: policy.cap().map(|c| c.to_string()).unwrap_or_default(),
            dry_run: self.settings().dry_run,
            networks,
            budget,
        }))
    }

    /// A signed `exact` payment for an offer, for a host that relays it.
    #[tool(
        name = "x402_sign_authorization",
        description = "Sign an x402 exact payment (an EIP-3009 authorization) for a server's offer, without sending it, for a host that relays the request itself: returns the header name and value to send. It counts against the budget as spent (whoever holds it can settle it). Refused in dry-run mode."
    )]
    async fn sign_authorization(
        &self,
        Parameters(args): Parameters<args::SignArgs>,
    ) -> Answer<answers::SignedAnswer> {
        self.dry_run("signing an authorization")?;
        let mut offer = offer::from_json(args.payment_required)
            .map_err(|e| refuse(reason::INVALID_ARGUMENT, format!("paymentRequired is {e}")))?;
        if let Some(index) = args.index {
            let Some(candidate) = offer.candidates.get(index).cloned() else {
                let count = offer.candidates.len();
                return Err(refuse(
                    reason::INVALID_ARGUMENT,
                    format!("index {index}: the offer has {count}"),
                ));
            };
            offer.candidates = vec![candidate];
        }
        let policy = self.policy(None)?;
        let (signed, payment) = match self.client(policy.clone())?.authorize(&offer).await {
            Ok(signed) => signed,
            Err(ClientError::Refused(reasons)) => return Err(refuse(reason::POLICY, reasons.join("; "))),
            Err(err @ ClientError::OverBudget { .. }) => return Err(refuse(reason::OVER_BUDGET, err)),
            Err(err) => return Err(client_refusal(err)),
        };
        let candidate = candidate_of(&payment);
        let amount = payment.amount;
        let r = &candidate.requirement;
        self.log(&Entry {
            time: unix_now(),
            tool: "x402_sign_authorization".to_owned(),
            kind: "authorization".to_owned(),
            outcome: "signed".to_owned(),
            network: r.network.clone(),
            asset: Some(r.asset.clone()),
            pay_to: Some(r.pay_to.clone()),
            amount: amount.to_string(),
            url: offer.resource.as_ref().map(|res| res.url.clone()),
            nonce: Some(signed.nonce.to_string()),
            ..Entry::default()
        })?;
        Ok(Json(answers::SignedAnswer {
            header: signed.header.to_owned(),
            value: signed.value,
            requirement: self.requirement(&candidate, &policy),
            payer: signed.payer.to_string(),
            nonce: signed.nonce.to_string(),
        }))
    }

    /// A payment's status on chain.
    #[tool(
        name = "x402_verify_payment",
        description = "The status of a payment on chain: by transaction hash (mined, reverted, pending or unknown, and the token transfers it made), or by a facilitator's payment id eip155:<chain id>:<token>:<payer>:<nonce> (whether its authorization was used, i.e. the payment settled)."
    )]
    async fn verify_payment(
        &self,
        Parameters(args): Parameters<args::VerifyArgs>,
    ) -> Answer<answers::VerifyAnswer> {
        let bad = |what: String| refuse(reason::INVALID_ARGUMENT, what);
        match (&args.transaction, &args.id) {
            (Some(hash), None) => {
                let hash: B256 =
                    hash.parse().map_err(|_| bad(format!("transaction {hash:?} is not a hash")))?;
                let mut first = None;
                let mut failed = Vec::new();
                for network in self
                    .inner
                    .networks
                    .iter()
                    .filter(|n| args.chain_id.is_none_or(|id| n.wallet.chain_id() == id))
                {
                    let chain_id = network.wallet.chain_id();
                    // One chain that cannot be asked does not hide the transaction on another.
                    let report = match payments::transaction(network.wallet.provider(), hash).await {
                        Ok(report) => report,
                        Err(err) => {
                            failed.push(format!("chain {chain_id}: {err}"));
                            continue;
                        }
                    };
                    let found = report.status != Status::Unknown;
                    let line = answers::ChainTransaction { chain_id, report };
                    if found {
                        return Ok(Json(answers::VerifyAnswer {
                            transaction: Some(line),
                            authorization: None,
                        }));
                    }
                    first.get_or_insert(line);
                }
                if !failed.is_empty() {
                    let message = format!("not found where asked; {}", failed.join("; "));
                    return Err(refuse(reason::CHAIN, message));
                }
                let first = first.ok_or_else(|| {
                    refuse(reason::NOT_CONFIGURED, "no network is configured for that chain")
                })?;
                Ok(Json(answers::VerifyAnswer { transaction: Some(first), authorization: None }))
            }
            (None, Some(id)) => {
                let usage = || bad(format!("id {id:?} is not eip155:<chain id>:<token>:<payer>:<nonce>"));
                let parts: Vec<&str> = id.split(':').collect();
                let [namespace, chain, token, payer, nonce] = parts.as_slice() else { return Err(usage()) };
                if *namespace != "eip155" {
                    return Err(usage());
                }
                let chain_id: u64 = chain.parse().map_err(|_| usage())?;
                let token: Address = token.parse().map_err(|_| usage())?;
                let payer: Address = payer.parse().map_err(|_| usage())?;
                let nonce: B256 = nonce.parse().map_err(|_| usage())?;
                let network = self.network(Some(chain_id)).ok_or_else(|| {
                    refuse(reason::NOT_CONFIGURED, format!("no network is configured for chain {chain_id}"))
                })?;
                let used = payments::authorization_used(network.wallet.provider(), token, payer, nonce)
                    .await
                    .map_err(chain_error)?;
                let authorization = answers::AuthorizationState {
                    chain_id,
                    token: token.to_string(),
                    payer: payer.to_string(),
                    nonce: nonce.to_string(),
                    used,
                };
                Ok(Json(answers::VerifyAnswer { transaction: None, authorization: Some(authorization) }))
            }
            _ => Err(bad("give either transaction or id".to_owned())),
        }
    }

    /// ToolRegistry's tools.
    #[tool(
        name = "x402_tools",
        description = "List the tools of the deployment's ToolRegistry: id, name, developer, payout, token, price per call (token units) and whether each takes payments."
    )]
    async fn tools(&self, Parameters(args): Parameters<args::ToolsArgs>) -> Answer<answers::ToolsAnswer> {
        let (network, registry) = self.network_with(args.chain_id, "ToolRegistry", |n| n.tool_registry)?;
        let listed = tools::list(
            network.wallet.provider(),
            registry,
            args.offset.unwrap_or(0),
            args.limit.unwrap_or(tools::PAGE),
        )
        .await
        .map_err(chain_error)?;
        Ok(Json(answers::ToolsAnswer {
            chain_id: network.wallet.chain_id(),
            registry: registry.to_string(),
            tools: listed,
        }))
    }

    /// Pay one call of a ToolRegistry tool with an allowance.
    #[tool(
        name = "x402_pay_tool",
        description = "Pay one call of a ToolRegistry tool from the wallet's tokens (approving the price first if needed), within the spend policy: the price is the most paid, so a price raised meanwhile makes it fail instead of charging more. Refused in dry-run mode."
    )]
    async fn pay_tool(
        &self,
        Parameters(args): Parameters<args::PayToolArgs>,
    ) -> Answer<answers::ToolPaidAnswer> {
        self.pay_tool_with(args, false).await
    }

    /// Pay one call of a ToolRegistry tool with credits.
    #[tool(
        name = "x402_pay_tool_credits",
        description = "Pay one call of a ToolRegistry tool with the wallet's credits in CreditSystem, within the spend policy. Refused in dry-run mode."
    )]
    async fn pay_tool_credits(
        &self,
        Parameters(args): Parameters<args::PayToolArgs>,
    ) -> Answer<answers::ToolPaidAnswer> {
        self.pay_tool_with(args, true).await
    }

    /// Open a payment channel for a URL's channel offer.
    #[tool(
        name = "x402_channel_open",
        description = "Open a payment channel that meets a URL's x402 channel offer (approve the deposit, then openChannel): afterwards x402_fetch pays that server with a signed voucher per request, no transaction each. The deposit is at most the configured maximum; what is not paid comes back on close. Refused in dry-run mode."
    )]
    async fn channel_open(
        &self,
        Parameters(args): Parameters<args::ChannelOpenArgs>,
    ) -> Answer<answers::ChannelOpenedAnswer> {
        self.dry_run("opening a channel")?;
        let bad = |what: String| refuse(reason::INVALID_ARGUMENT, what);
        let deposit =
            Price::parse(&args.deposit).map_err(|e| bad(format!("deposit {:?}: {e}", args.deposit)))?;
        let fetch = args::FetchArgs {
            url: args.url.clone(),
            method: None,
            headers: None,
            body: None,
            max_price: None,
        };
        let client = self.client(self.policy(None)?)?;
        let request = self.request(&fetch)?;
        let Quote::Priced { offer, .. } = client.quote(request).await.map_err(|e| refuse(reason::HTTP, e))?
        else {
            return Err(refuse(reason::INVALID_ARGUMENT, format!("{} asks for no payment", args.url)));
        };
        let terms = ChannelOffer::find(&offer)
            .map_err(|e| refuse(reason::INVALID_ARGUMENT, format!("{}: {e}", args.url)))?;
        let candidate = offer
            .candidates
            .iter()
            .find(|c| c.requirement.scheme == x402_protocol::channel::SCHEME)
            .ok_or_else(|| refuse(reason::INVALID_ARGUMENT, "no channel requirement"))?;
        self.settings().policy.allows(candidate).map_err(|why| refuse(reason::POLICY, why))?;
        let network = self.network(Some(terms.chain_id)).ok_or_else(|| {
            refuse(
                reason::NOT_CONFIGURED,
                format!("the offer is on chain {}, which has no --rpc-url", terms.chain_id),
            )
        })?;
        // Only the deployment's PaymentChannel: the deposit is approved to it, and a contract the server named
        // could take it.
        if network.settings.payment_channel != Some(terms.extra.payment_channel) {
            return Err(refuse(
                reason::POLICY,
                format!(
                    "the offer's PaymentChannel {} is not the deployment's ({}): no deposit is approved to it",
                    terms.extra.payment_channel,
                    network
                        .settings
                        .payment_channel
                        .map_or_else(|| "none configured".to_owned(), |a| a.to_string())
                ),
            ));
        }
        let opening = channels::Opening {
            deposit,
            max_deposit: Some(self.settings().max_deposit.clone()),
            challenge: args.challenge_seconds,
            lifetime: args.lifetime_seconds.unwrap_or(DEFAULT_LIFETIME),
            salt: B256::random(),
        };
        let channel_id = x402_bindings::voucher::channel_id(self.address(), opening.salt);
        let entry = |outcome: &str, amount: String, transaction: B256, detail: Option<String>| Entry {
            time: unix_now(),
            tool: "x402_channel_open".to_owned(),
            kind: "channel_open".to_owned(),
            outcome: outcome.to_owned(),
            network: caip2(terms.chain_id),
            asset: Some(terms.token.to_string()),
            pay_to: Some(terms.recipient.to_string()),
            amount,
            url: Some(args.url.clone()),
            transaction: Some(transaction.to_string()),
            channel_id: Some(channel_id.to_string()),
            payment_channel: Some(terms.extra.payment_channel.to_string()),
            detail,
            ..Entry::default()
        };
        let opened = match channels::open(&network.wallet, &terms, &opening).await {
            Ok(opened) => opened,
            Err(err) => {
                if let Some(transaction) = err.unconfirmed() {
                    self.log(&entry("unanswered", args.deposit.clone(), transaction, Some(err.to_string())))?;
                }
                return Err(chain_error(err));
            }
        };
        self.log(&entry("opened", opened.deposit.to_string(), opened.transaction, None))?;
        let channel = Channel::new(
            terms.chain_id,
            opened.payment_channel,
            opened.channel_id,
            opened.recipient,
            opened.token,
            opened.deposit,
            U256::ZERO,
        );
        self.channels().push(Arc::new(channel));
        Ok(Json(answers::ChannelOpenedAnswer { chain_id: terms.chain_id, opened }))
    }

    /// Close a payment channel.
    #[tool(
        name = "x402_channel_close",
        description = "Close a payment channel of this wallet, one step at a time: an open channel starts its close (the recipient claims its last voucher during the challenge period; vouchers stop); call again after closesAt to finalize and get the rest of the deposit back."
    )]
    async fn channel_close(
        &self,
        Parameters(args): Parameters<args::ChannelCloseArgs>,
    ) -> Answer<answers::ChannelClosedAnswer> {
        self.dry_run("closing a channel")?;
        let id: B256 = args.channel_id.parse().map_err(|_| {
            refuse(reason::INVALID_ARGUMENT, format!("channelId {:?} is not a channel id", args.channel_id))
        })?;
        let known = self.channels().iter().find(|c| c.id == id).cloned();
        let (network, payment_channel) = match &known {
            Some(channel) => {
                let network = self
                    .network(Some(channel.chain_id))
                    .ok_or_else(|| refuse(reason::NOT_CONFIGURED, "the channel's chain"))?;
                (network, channel.payment_channel)
            }
            None => self.network_with(args.chain_id, "PaymentChannel", |n| n.payment_channel)?,
        };
        let step = channels::close(&network.wallet, payment_channel, id).await.map_err(chain_error)?;
        self.channels().retain(|c| c.id != id);
        let (outcome, transaction) = match &step {
            CloseStep::Started { transaction, .. } => ("closing", Some(transaction.to_string())),
            CloseStep::Finalized { transaction, .. } => ("closed", Some(transaction.to_string())),
            CloseStep::AlreadyClosed => ("closed", None),
        };
        let chain_id = network.wallet.chain_id();
        self.log(&Entry {
            time: unix_now(),
            tool: "x402_channel_close".to_owned(),
            kind: "channel_close".to_owned(),
            outcome: outcome.to_owned(),
            network: caip2(chain_id),
            amount: "0".to_owned(),
            transaction,
            channel_id: Some(id.to_string()),
            payment_channel: Some(payment_channel.to_string()),
            ..Entry::default()
        })?;
        Ok(Json(answers::ChannelClosedAnswer { chain_id, channel_id: id.to_string(), close: step }))
    }
}

#[tool_handler(
    name = "x402",
    instructions = "A wallet for paying HTTP APIs that charge with x402 (HTTP 402 Payment Required), within a spend policy set by the user. Use x402_quote to see what a URL costs, x402_fetch to fetch and pay it, x402_balance for what is left. Every payment is written to the user's ledger file."
)]
impl ServerHandler for X402Mcp {}

/// The budget of `token` on `chain_id`, for `x402_balance`.
fn budget_line(chain_id: u64, token: Address, spent: &Spent, period: Duration) -> answers::BudgetLine {
    answers::BudgetLine {
        chain_id,
        token: token.to_string(),
        spent: spent.spent.to_string(),
        left: spent.left.to_string(),
        limit: spent.limit.to_string(),
        period_start: spent.period_start,
        period_seconds: period.as_secs(),
    }
}

/// What `payment` paid, as an offer's candidate.
fn candidate_of(payment: &Payment) -> Candidate {
    Candidate {
        version: payment.version,
        requirement: payment.requirement.clone(),
        network: payment.network.clone(),
        chain_id: chain_id_of(&payment.requirement.network),
    }
}

/// The refusal for a client error that is not a policy or budget one.
fn client_refusal(err: ClientError) -> CallToolResult {
    let why = match &err {
        ClientError::Ledger(_) => reason::LEDGER,
        ClientError::Sign(_) | ClientError::AlreadyPaid | ClientError::NotReplayable => {
            reason::INVALID_ARGUMENT
        }
        ClientError::Refused(_) => reason::POLICY,
        ClientError::OverBudget { .. } => reason::OVER_BUDGET,
        ClientError::PaymentFailed { .. } => reason::PAYMENT_FAILED,
        ClientError::Unanswered { .. } => reason::UNANSWERED,
        ClientError::Http(_) | ClientError::Offer(_) => reason::HTTP,
    };
    refuse(why, err)
}

fn chain_error(err: WalletError) -> CallToolResult {
    let why = match &err {
        WalletError::Refused(_) => reason::INVALID_ARGUMENT,
        WalletError::Limit(_) => reason::POLICY,
        WalletError::NotMined { .. } | WalletError::Unconfirmed { .. } => reason::UNANSWERED,
        _ => reason::CHAIN,
    };
    refuse(why, err)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}
