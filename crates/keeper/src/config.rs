//! The keeper's settings: the TOML file's `[keeper]` keys (all optional, with the defaults below), validated
//! before anything starts. The command line and the environment override the file (see `x402 keeper --help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::Address;
use serde::Deserialize;

use crate::ratelimit::{Network, Rate};
use crate::sender::TxPolicy;

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

/// Everything the keeper needs, resolved and validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// Chain id the deployment record is for.
    pub chain_id: u64,
    /// The x402 v1 network name (`base-sepolia`), if the network has one.
    pub network_name: Option<String>,
    /// The contracts.
    pub contracts: Contracts,
    /// Tokens whose payments are accepted.
    pub tokens: Vec<Address>,
    /// Time between ticks.
    pub interval: Duration,
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

impl FileSettings {
    /// Applies defaults and validates; `rpc_url`, the chain, the contracts and the tokens come from the
    /// deployment record.
    pub fn resolve(
        &self,
        rpc_url: String,
        chain_id: u64,
        network_name: Option<String>,
        contracts: Contracts,
        tokens: Vec<Address>,
    ) -> Result<Settings, SettingError> {
        let interval_secs = self.interval_secs.unwrap_or(15);
        check((1..=86_400).contains(&interval_secs), "interval_secs", "must be 1..=86400")?;
        let payments_batch = self.payments_batch.unwrap_or(250);
        // settleBatch keeps ITEM_GAS_RESERVE (about 518k) of headroom per item; 1000 items of ~30k gas fill
        // 30M-gas blocks.
        check((1..=1000).contains(&payments_batch), "payments_batch", "must be 1..=1000")?;
        let subscriptions_batch = self.subscriptions_batch.unwrap_or(200);
        check((1..=1000).contains(&subscriptions_batch), "subscriptions_batch", "must be 1..=1000")?;
        let confirmations = self.confirmations.unwrap_or(1);
        check((1..=64).contains(&confirmations), "confirmations", "must be 1..=64")?;
        let safety_margin = self.safety_margin_secs.unwrap_or(30);
        check(safety_margin <= 3600, "safety_margin_secs", "must be at most 3600")?;
        let max_queue = self.max_queue.unwrap_or(100_000);
        check(max_queue >= 1, "max_queue", "must be at least 1")?;
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
        let rate_limit_clients = self.rate_limit_clients.unwrap_or(default_clients);
        check((1..=10_000_000).contains(&rate_limit_clients), "rate_limit_clients", "must be 1..=10000000")?;
        let max_body_bytes = self.max_body_bytes.unwrap_or(16 * 1024);
        check((1024..=1 << 20).contains(&max_body_bytes), "max_body_bytes", "must be 1024..=1048576")?;
        let bump_after = self.bump_after_secs.unwrap_or(30);
        check(bump_after >= 1, "bump_after_secs", "must be at least 1")?;
        let max_fee_gwei = self.max_fee_gwei.unwrap_or(500);
        check(max_fee_gwei >= 1, "max_fee_gwei", "must be at least 1")?;
        let receipt_timeout = self.receipt_timeout_secs.unwrap_or(180);
        check(receipt_timeout >= bump_after, "receipt_timeout_secs", "must be at least bump_after_secs")?;
        let jobs =
            self.jobs.clone().unwrap_or_else(|| vec![Job::Subscriptions, Job::Payments, Job::Channels]);
        check(!jobs.is_empty(), "jobs", "name at least one job")?;
        check(!tokens.is_empty(), "tokens", "the deployment record names no token")?;
        Ok(Settings {
            rpc_url,
            chain_id,
            network_name,
            contracts,
            tokens,
            interval: Duration::from_secs(interval_secs),
            listen: self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8402))),
            data_dir: self.data_dir.clone().unwrap_or_else(|| PathBuf::from("keeper-data")),
            jobs,
            payments_batch,
            subscriptions_batch,
            safety_margin,
            max_queue,
            client_rate: Rate { per_sec: rate, burst },
            global_rate: Rate { per_sec: global_rate, burst: global_burst },
            rate_limit_clients,
            trusted_proxies: self.trusted_proxies.clone().unwrap_or_default(),
            max_body_bytes,
            tx: TxPolicy {
                confirmations,
                bump_after: Duration::from_secs(bump_after),
                max_fee_per_gas: u128::from(max_fee_gwei) * 1_000_000_000,
                receipt_timeout: Duration::from_secs(receipt_timeout),
                poll_interval: Duration::from_millis(200),
            },
            min_balance_wei: self.min_balance_wei.unwrap_or(10_000_000_000_000_000),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml_text: &str) -> Result<Settings, SettingError> {
        let file: FileConfig = toml::from_str(toml_text).unwrap();
        let contracts = Contracts {
            x402_payment: Address::repeat_byte(1),
            subscription: Address::repeat_byte(2),
            payment_channel: Address::repeat_byte(3),
            deployed_block: 0,
        };
        file.keeper.resolve(
            "http://localhost:8545".into(),
            31337,
            None,
            contracts,
            vec![Address::repeat_byte(4)],
        )
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
