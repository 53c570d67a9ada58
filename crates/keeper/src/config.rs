//! The keeper's settings: the TOML file's `[keeper]` keys (all optional, with the defaults below), validated
//! before anything starts. The command line and the environment override the file (see `x402 keeper --help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::Address;
use serde::Deserialize;
use x402_bindings::Contract;

use crate::ratelimit::{Network, Rate};

/// The three jobs a keeper can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// Execute due subscriptions.
    Subscriptions,
    /// Settle queued x402 payments.
    Payments,
    /// Claim registered vouchers on closing channels and finalize closes.
    Channels,
}

impl Job {
    /// The job's name in settings, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Subscriptions => "subscriptions",
            Self::Payments => "payments",
            Self::Channels => "channels",
        }
    }
}

/// The settings a TOML file may give (every key optional).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Seconds between ticks.
    pub interval_secs: Option<u64>,
    /// Where the HTTP API listens.
    pub listen: Option<SocketAddr>,
    /// Directory of the database.
    pub data_dir: Option<PathBuf>,
    /// Jobs to run.
    pub jobs: Option<Vec<Job>>,
    /// Blocks of confirmation.
    pub confirmations: Option<u64>,
    /// Most payments per `settleBatch`.
    pub payments_batch: Option<usize>,
    /// Most subscriptions per `executeBatch`.
    pub subscriptions_batch: Option<usize>,
    /// Refuse authorizations that expire within this many seconds of chain time.
    pub safety_margin_secs: Option<u64>,
    /// Most payments queued at once; more are refused with 429.
    pub max_queue: Option<u64>,
    /// Intake requests per second from all clients together.
    pub rate_limit_per_sec: Option<u32>,
    /// Intake requests all clients together may send at once.
    pub rate_limit_burst: Option<u32>,
    /// Intake requests per second from one client (IP address; IPv6 /64).
    pub client_rate_limit_per_sec: Option<u32>,
    /// Intake requests one client may send at once.
    pub client_rate_limit_burst: Option<u32>,
    /// Most clients whose rate is tracked at once.
    pub rate_limit_clients: Option<usize>,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Option<Vec<Network>>,
    /// Largest request body in bytes.
    pub max_body_bytes: Option<usize>,
    /// Seconds before an unmined transaction is re-sent with higher fees.
    pub bump_after_secs: Option<u64>,
    /// Fee cap in gwei: never pay more per gas.
    pub max_fee_gwei: Option<u64>,
    /// Seconds to wait for a receipt before leaving the transaction to the next tick.
    pub receipt_timeout_secs: Option<u64>,
    /// Warn when the keeper's balance is below this many wei.
    pub min_balance_wei: Option<u128>,
    /// The merchants (`payTo`) whose payments the keeper settles: a list of addresses, or `"any"`. Required when
    /// the payments job runs: the keeper pays the gas of whatever it settles.
    pub merchants: Option<Merchants>,
    /// The tokens whose payments the keeper settles; default: the deployment record's token.
    pub assets: Option<Vec<Address>>,
    /// The smallest payment accepted, in the token's smallest unit (default 1: zero is refused).
    pub min_amount: Option<u128>,
    /// Seconds any one JSON-RPC request may take before it counts as failed.
    pub rpc_timeout_secs: Option<u64>,
    /// Seconds the intake may spend asking the chain about one payment before it answers 503.
    pub intake_timeout_secs: Option<u64>,
    /// Seconds a client may take to send a request's headers, and a keep-alive connection may stay idle.
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client may take to send a request's body.
    pub body_timeout_secs: Option<u64>,
    /// Most open connections in total.
    pub max_connections: Option<usize>,
    /// Most open connections from one client address (IPv6: one /64).
    pub max_connections_per_client: Option<usize>,
    /// Milliseconds a payment someone waits for (a facilitator's `/settle`) waits for others to share its batch.
    pub settle_window_ms: Option<u64>,
    /// An open channel's stored voucher is claimed once it would pay at least this much (token units)
    /// [1000000: $1 of USDC].
    pub channel_claim_threshold: Option<u128>,
    /// An open channel's stored voucher is claimed, whatever it pays, once the channel expires within this many
    /// seconds [3600].
    pub channel_claim_before_expiry_secs: Option<u64>,
}

/// Whose payments the keeper settles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merchants {
    /// Any `payTo`: only by explicit choice (`merchants = "any"`).
    Any,
    /// These `payTo` addresses.
    Only(Vec<Address>),
}

impl<'de> Deserialize<'de> for Merchants {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<Address>),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Word(word) if word == "any" => Ok(Self::Any),
            Raw::Word(word) => Err(serde::de::Error::custom(format!(
                "merchants must be a list of addresses or \"any\", not {word:?}"
            ))),
            Raw::List(list) => Ok(Self::Only(list)),
        }
    }
}

/// A `keeper.toml`: the settings under `[keeper]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The keeper's settings.
    #[serde(default)]
    pub keeper: FileSettings,
}

/// The deployed contracts the keeper drives.
#[derive(Clone, Copy, Debug)]
pub struct Contracts {
    /// X402Payment proxy.
    pub x402_payment: Address,
    /// Subscription proxy.
    pub subscription: Address,
    /// PaymentChannel proxy.
    pub payment_channel: Address,
    /// The block PaymentChannel was deployed in: where the log scan starts.
    pub deployed_block: u64,
}

impl Contracts {
    /// The contracts the keeper sends to, with their addresses.
    pub fn driven(&self) -> [(Contract, Address); 3] {
        [
            (Contract::X402Payment, self.x402_payment),
            (Contract::Subscription, self.subscription),
            (Contract::PaymentChannel, self.payment_channel),
        ]
    }
}

/// Everything the keeper needs, resolved and validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// Chain id the deployment record is for.
    pub chain_id: u64,
    /// The contracts.
    pub contracts: Contracts,
    /// Tokens whose payments are accepted.
    pub tokens: Vec<Address>,
    /// Merchants whose payments are accepted.
    pub merchants: Merchants,
    /// The smallest payment accepted.
    pub min_amount: u128,
    /// Deadline of one JSON-RPC request.
    pub rpc_timeout: Duration,
    /// Deadline of the intake's chain reads for one payment.
    pub intake_timeout: Duration,
    /// Connection limits and timeouts of the HTTP API.
    pub connections: ConnectionLimits,
    /// Time between ticks.
    pub interval: Duration,
    /// How long a batch someone waits for collects payments before it is sent.
    pub settle_window: Duration,
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// Directory of the database (`keeper.redb`).
    pub data_dir: PathBuf,
    /// Jobs to run.
    pub jobs: Vec<Job>,
    /// Most payments per batch.
    pub payments_batch: usize,
    /// Most subscriptions per batch.
    pub subscriptions_batch: usize,
    /// Validity safety margin in seconds.
    pub safety_margin: u64,
    /// Queue bound.
    pub max_queue: u64,
    /// Intake rate of one client.
    pub client_rate: Rate,
    /// Intake rate of all clients together.
    pub global_rate: Rate,
    /// Clients tracked at once.
    pub rate_limit_clients: usize,
    /// Proxies trusted for `X-Forwarded-For`.
    pub trusted_proxies: Vec<Network>,
    /// Body limit.
    pub max_body_bytes: usize,
    /// Transaction policy.
    pub tx: TxPolicy,
    /// Balance warning threshold.
    pub min_balance_wei: u128,
    /// The network name every metric is labelled with, when one process runs engines for several networks.
    pub network_label: Option<String>,
    /// Whether the keeper serves its own HTTP API on `listen` (a facilitator serves the engines' routes itself).
    pub serve_api: bool,
    /// When the channels job claims an open channel's stored voucher.
    pub channel_claims: ChannelClaims,
}

/// When the channels job claims the stored voucher of a channel that is still open (a closing one's is claimed
/// at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelClaims {
    /// Once the claim would pay at least this much.
    pub threshold: u128,
    /// Once the channel expires within this many seconds.
    pub before_expiry: u64,
}

/// How transactions are confirmed and re-priced.
#[derive(Clone, Debug)]
pub struct TxPolicy {
    /// Blocks on top of the including one before a receipt counts (1 = the including block).
    pub confirmations: u64,
    /// How long a transaction may stay unmined before its fees are bumped.
    pub bump_after: Duration,
    /// Fees are never bumped above this many wei per gas.
    pub max_fee_per_gas: u128,
    /// How long to wait for a receipt before giving up on this tick (the transaction stays stored).
    pub receipt_timeout: Duration,
    /// Delay between receipt polls.
    pub poll_interval: Duration,
}

/// How the HTTP API treats connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a request's headers; also how long a keep-alive connection may stay idle.
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
    /// Open connections in total.
    pub max: usize,
    /// Open connections from one client address.
    pub per_client: usize,
}

/// A setting out of range.
#[derive(Debug, thiserror::Error)]
#[error("invalid keeper setting {name}: {message}")]
pub struct SettingError {
    /// The setting.
    pub name: &'static str,
    /// What is wrong.
    pub message: String,
}

fn check(ok: bool, name: &'static str, message: &str) -> Result<(), SettingError> {
    if ok { Ok(()) } else { Err(SettingError { name, message: message.to_owned() }) }
}

/// The intake's rate limits, resolved.
struct RateLimits {
    client: Rate,
    global: Rate,
    clients: usize,
}

/// Whose payments the keeper takes: jobs, tokens, merchants and the smallest amount.
struct Scope {
    jobs: Vec<Job>,
    tokens: Vec<Address>,
    merchants: Merchants,
    min_amount: u128,
}

/// How long the keeper waits on the chain and on clients.
struct Timeouts {
    rpc: Duration,
    intake: Duration,
    connections: ConnectionLimits,
}

impl FileSettings {
    /// Applies defaults and validates; `rpc_url`, the chain, the contracts and the default token come from the
    /// deployment record.
    pub fn resolve(
        &self,
        rpc_url: String,
        chain_id: u64,
        contracts: Contracts,
        record_tokens: Vec<Address>,
    ) -> Result<Settings, SettingError> {
        let interval_secs = self.interval_secs.unwrap_or(15);
        check((1..=86_400).contains(&interval_secs), "interval_secs", "must be 1..=86400")?;
        let payments_batch = self.payments_batch.unwrap_or(250);
        // settleBatch keeps ITEM_GAS_RESERVE (about 518k) of headroom per item; 1000 items of ~30k gas fill
        // 30M-gas blocks.
        check((1..=1000).contains(&payments_batch), "payments_batch", "must be 1..=1000")?;
        let subscriptions_batch = self.subscriptions_batch.unwrap_or(200);
        check((1..=1000).contains(&subscriptions_batch), "subscriptions_batch", "must be 1..=1000")?;
        let safety_margin = self.safety_margin_secs.unwrap_or(30);
        check(safety_margin <= 3600, "safety_margin_secs", "must be at most 3600")?;
        let max_queue = self.max_queue.unwrap_or(100_000);
        check(max_queue >= 1, "max_queue", "must be at least 1")?;
        let settle_window_ms = self.settle_window_ms.unwrap_or(20);
        check(settle_window_ms <= 1000, "settle_window_ms", "must be at most 1000")?;
        let max_body_bytes = self.max_body_bytes.unwrap_or(16 * 1024);
        check((1024..=1 << 20).contains(&max_body_bytes), "max_body_bytes", "must be 1024..=1048576")?;
        let claim_threshold = self.channel_claim_threshold.unwrap_or(1_000_000);
        check(claim_threshold >= 1, "channel_claim_threshold", "must be at least 1")?;
        let rates = self.rate_limits()?;
        let tx = self.tx_policy()?;
        let scope = self.scope(record_tokens)?;
        let timeouts = self.timeouts()?;
        Ok(Settings {
            rpc_url,
            chain_id,
            contracts,
            tokens: scope.tokens,
            merchants: scope.merchants,
            min_amount: scope.min_amount,
            rpc_timeout: timeouts.rpc,
            intake_timeout: timeouts.intake,
            connections: timeouts.connections,
            interval: Duration::from_secs(interval_secs),
            settle_window: Duration::from_millis(settle_window_ms),
            listen: self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8402))),
            data_dir: self.data_dir.clone().unwrap_or_else(|| PathBuf::from("keeper-data")),
            jobs: scope.jobs,
            payments_batch,
            subscriptions_batch,
            safety_margin,
            max_queue,
            client_rate: rates.client,
            global_rate: rates.global,
            rate_limit_clients: rates.clients,
            trusted_proxies: self.trusted_proxies.clone().unwrap_or_default(),
            max_body_bytes,
            tx,
            min_balance_wei: self.min_balance_wei.unwrap_or(10_000_000_000_000_000),
            network_label: None,
            serve_api: true,
            channel_claims: ChannelClaims {
                threshold: claim_threshold,
                before_expiry: self.channel_claim_before_expiry_secs.unwrap_or(3600),
            },
        })
    }

    fn rate_limits(&self) -> Result<RateLimits, SettingError> {
        let global_rate = self.rate_limit_per_sec.unwrap_or(2_000);
        check(global_rate >= 1, "rate_limit_per_sec", "must be at least 1")?;
        let global_burst = self.rate_limit_burst.unwrap_or(global_rate.saturating_mul(2));
        check(global_burst >= 1, "rate_limit_burst", "must be at least 1")?;
        let rate = self.client_rate_limit_per_sec.unwrap_or(500.min(global_rate));
        check(rate >= 1, "client_rate_limit_per_sec", "must be at least 1")?;
        check(rate <= global_rate, "client_rate_limit_per_sec", "must be at most rate_limit_per_sec")?;
        let burst = self.client_rate_limit_burst.unwrap_or(rate.saturating_mul(2).min(global_burst));
        check(burst >= 1, "client_rate_limit_burst", "must be at least 1")?;
        check(burst <= global_burst, "client_rate_limit_burst", "must be at most rate_limit_burst")?;
        // Enough slots that every client active at once fits: each holds a keeper token spent within the time
        // its own bucket takes to refill.
        let active =
            u64::from(global_burst) + u64::from(global_rate) * u64::from(burst).div_ceil(u64::from(rate));
        let default_clients = usize::try_from(active).unwrap_or(usize::MAX).clamp(10_000, 10_000_000);
        let clients = self.rate_limit_clients.unwrap_or(default_clients);
        check((1..=10_000_000).contains(&clients), "rate_limit_clients", "must be 1..=10000000")?;
        Ok(RateLimits {
            client: Rate { per_sec: rate, burst },
            global: Rate { per_sec: global_rate, burst: global_burst },
            clients,
        })
    }

    fn tx_policy(&self) -> Result<TxPolicy, SettingError> {
        let confirmations = self.confirmations.unwrap_or(1);
        check((1..=64).contains(&confirmations), "confirmations", "must be 1..=64")?;
        let bump_after = self.bump_after_secs.unwrap_or(30);
        check(bump_after >= 1, "bump_after_secs", "must be at least 1")?;
        let max_fee_gwei = self.max_fee_gwei.unwrap_or(500);
        check(max_fee_gwei >= 1, "max_fee_gwei", "must be at least 1")?;
        let receipt_timeout = self.receipt_timeout_secs.unwrap_or(180);
        check(receipt_timeout >= bump_after, "receipt_timeout_secs", "must be at least bump_after_secs")?;
        Ok(TxPolicy {
            confirmations,
            bump_after: Duration::from_secs(bump_after),
            max_fee_per_gas: u128::from(max_fee_gwei) * 1_000_000_000,
            receipt_timeout: Duration::from_secs(receipt_timeout),
            poll_interval: Duration::from_millis(200),
        })
    }

    fn scope(&self, record_tokens: Vec<Address>) -> Result<Scope, SettingError> {
        let jobs =
            self.jobs.clone().unwrap_or_else(|| vec![Job::Subscriptions, Job::Payments, Job::Channels]);
        check(!jobs.is_empty(), "jobs", "name at least one job")?;
        let tokens = self.assets.clone().unwrap_or(record_tokens);
        check(!tokens.is_empty(), "assets", "name at least one token (the deployment record names none)")?;
        let merchants = self.merchants.clone().unwrap_or(Merchants::Only(Vec::new()));
        check(
            !jobs.contains(&Job::Payments) || merchants != Merchants::Only(Vec::new()),
            "merchants",
            "list the payTo addresses whose payments this keeper settles (it pays their gas), or set \"any\"",
        )?;
        let min_amount = self.min_amount.unwrap_or(1);
        check(min_amount >= 1, "min_amount", "must be at least 1: a zero payment only costs the keeper gas")?;
        Ok(Scope { jobs, tokens, merchants, min_amount })
    }

    fn timeouts(&self) -> Result<Timeouts, SettingError> {
        let rpc = self.rpc_timeout_secs.unwrap_or(10);
        check((1..=300).contains(&rpc), "rpc_timeout_secs", "must be 1..=300")?;
        let intake = self.intake_timeout_secs.unwrap_or(5);
        check((1..=300).contains(&intake), "intake_timeout_secs", "must be 1..=300")?;
        let header_timeout = self.header_timeout_secs.unwrap_or(10);
        check((1..=3600).contains(&header_timeout), "header_timeout_secs", "must be 1..=3600")?;
        let body_timeout = self.body_timeout_secs.unwrap_or(10);
        check((1..=3600).contains(&body_timeout), "body_timeout_secs", "must be 1..=3600")?;
        let max_connections = self.max_connections.unwrap_or(1024);
        check((1..=1_000_000).contains(&max_connections), "max_connections", "must be 1..=1000000")?;
        let per_client = self.max_connections_per_client.unwrap_or(64.min(max_connections));
        check(
            (1..=max_connections).contains(&per_client),
            "max_connections_per_client",
            "must be 1..=max_connections",
        )?;
        Ok(Timeouts {
            rpc: Duration::from_secs(rpc),
            intake: Duration::from_secs(intake),
            connections: ConnectionLimits {
                header_timeout: Duration::from_secs(header_timeout),
                body_timeout: Duration::from_secs(body_timeout),
                max: max_connections,
                per_client,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves `toml_text`, with `merchants = "any"` unless it names merchants itself.
    fn resolve(toml_text: &str) -> Result<Settings, SettingError> {
        let mut file: FileConfig = toml::from_str(toml_text).unwrap();
        file.keeper.merchants.get_or_insert(Merchants::Any);
        resolve_as_is(&file)
    }

    fn resolve_as_is(file: &FileConfig) -> Result<Settings, SettingError> {
        let contracts = Contracts {
            x402_payment: Address::repeat_byte(1),
            subscription: Address::repeat_byte(2),
            payment_channel: Address::repeat_byte(3),
            deployed_block: 0,
        };
        file.keeper.resolve("http://localhost:8545".into(), 31337, contracts, vec![Address::repeat_byte(4)])
    }

    #[test]
    fn defaults_give_each_client_a_quarter_of_the_keeper_rate() {
        let settings = resolve("").unwrap();
        assert_eq!(settings.client_rate, Rate { per_sec: 500, burst: 1000 });
        assert_eq!(settings.global_rate, Rate { per_sec: 2000, burst: 4000 });
        assert_eq!(settings.rate_limit_clients, 10_000);
        assert!(settings.trusted_proxies.is_empty());
    }

    #[test]
    fn a_low_keeper_rate_caps_the_default_client_rate() {
        let settings = resolve("[keeper]\nrate_limit_per_sec = 100\n").unwrap();
        assert_eq!(settings.client_rate, Rate { per_sec: 100, burst: 200 });
        assert_eq!(settings.global_rate, Rate { per_sec: 100, burst: 200 });
    }

    #[test]
    fn the_client_table_defaults_to_every_client_that_can_be_active_at_once() {
        // 20000 keeper tokens at once plus 10000/s for the 5 s a client bucket takes to refill.
        let text = "[keeper]\nrate_limit_per_sec = 10000\nrate_limit_burst = 20000\n\
                    client_rate_limit_per_sec = 2\nclient_rate_limit_burst = 10\n";
        assert_eq!(resolve(text).unwrap().rate_limit_clients, 70_000);
        // Capped where an explicit value would be refused.
        let text = "[keeper]\nrate_limit_per_sec = 4000000\nclient_rate_limit_per_sec = 1\n";
        assert_eq!(resolve(text).unwrap().rate_limit_clients, 10_000_000);
    }

    #[test]
    fn rate_settings_out_of_range_are_refused_with_their_name() {
        for (text, name) in [
            ("client_rate_limit_per_sec = 0", "client_rate_limit_per_sec"),
            ("client_rate_limit_per_sec = 3000", "client_rate_limit_per_sec"),
            ("client_rate_limit_burst = 5000", "client_rate_limit_burst"),
            ("client_rate_limit_burst = 0", "client_rate_limit_burst"),
            ("rate_limit_per_sec = 0", "rate_limit_per_sec"),
            ("rate_limit_burst = 0", "rate_limit_burst"),
            ("rate_limit_per_sec = 100\nclient_rate_limit_per_sec = 200", "client_rate_limit_per_sec"),
            ("rate_limit_clients = 0", "rate_limit_clients"),
        ] {
            let err = resolve(&format!("[keeper]\n{text}\n")).unwrap_err();
            assert_eq!(err.name, name, "{text}: {err}");
        }
    }

    #[test]
    fn the_payments_job_needs_an_explicit_merchant_list_or_any() {
        let parse = |text: &str| toml::from_str::<FileConfig>(text).unwrap();
        let err = resolve_as_is(&parse("")).unwrap_err();
        assert_eq!(err.name, "merchants");
        assert_eq!(resolve_as_is(&parse("[keeper]\nmerchants = []\n")).unwrap_err().name, "merchants");
        // Without the payments job nothing is settled for merchants.
        assert!(resolve_as_is(&parse("[keeper]\njobs = [\"subscriptions\"]\n")).is_ok());
        let any = resolve_as_is(&parse("[keeper]\nmerchants = \"any\"\n")).unwrap();
        assert_eq!(any.merchants, Merchants::Any);
        let listed = format!("[keeper]\nmerchants = [\"{}\"]\n", Address::repeat_byte(9));
        let listed = resolve_as_is(&parse(&listed)).unwrap();
        assert_eq!(listed.merchants, Merchants::Only(vec![Address::repeat_byte(9)]));
        assert_eq!(listed.tokens, vec![Address::repeat_byte(4)], "the record's token by default");
        assert_eq!(listed.min_amount, 1, "zero is refused by default");
        let err = toml::from_str::<FileConfig>("[keeper]\nmerchants = \"all\"\n").unwrap_err();
        assert!(err.to_string().contains("a list of addresses or \"any\""), "{err}");
        assert_eq!(resolve("[keeper]\nmin_amount = 0\n").unwrap_err().name, "min_amount");
    }

    #[test]
    fn connection_limits_default_and_bounds() {
        let settings = resolve("").unwrap();
        assert_eq!(settings.connections.max, 1024);
        assert_eq!(settings.connections.per_client, 64);
        assert_eq!(settings.connections.header_timeout, Duration::from_secs(10));
        assert_eq!(settings.rpc_timeout, Duration::from_secs(10));
        assert_eq!(settings.intake_timeout, Duration::from_secs(5));
        let text = "[keeper]\nmax_connections = 10\nmax_connections_per_client = 11\n";
        assert_eq!(resolve(text).unwrap_err().name, "max_connections_per_client");
        assert_eq!(resolve("[keeper]\nmax_connections = 16\n").unwrap().connections.per_client, 16);
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let settings = resolve("[keeper]\ntrusted_proxies = [\"10.0.0.9\", \"fd00::/8\"]\n").unwrap();
        let expected: Vec<Network> = vec!["10.0.0.9".parse().unwrap(), "fd00::/8".parse().unwrap()];
        assert_eq!(settings.trusted_proxies, expected);
        let err =
            toml::from_str::<FileConfig>("[keeper]\ntrusted_proxies = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(err.to_string().contains("prefix length must be 0..=32"), "{err}");
        assert!(
            toml::from_str::<FileConfig>("[keeper]\nrate_limit = 5\n").is_err(),
            "unknown keys are refused"
        );
    }
}
