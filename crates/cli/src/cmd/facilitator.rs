//! `x402 facilitator`: an x402 facilitator (`/verify`, `/settle`, `/supported`) for one or more networks, each with
//! the keeper engine of its deployment record (its own database, nonces and batches; one key for all).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use alloy::primitives::Address;
use clap::ValueEnum;
use eyre::WrapErr;
use serde::Deserialize;
use x402_facilitator::engine::{Engine, Engines};
use x402_facilitator::{Facilitator, settings};
use x402_keeper::config::{FileSettings, Job, Merchants, Settings};
use x402_keeper::daemon;

use super::keeper::shutdown_signal;
use crate::keys;
use crate::logging::{self, LogFormat};
use x402_cli::deployer::network::Network;
use x402_cli::deployer::record::Record;
use x402_cli::keeper_settings::settings_from_record;

/// Run an x402 facilitator for official x402 servers to point at.
#[derive(Debug, clap::Args)]
pub(crate) struct FacilitatorArgs {
    /// A network to settle on, `NAME` or `NAME=RPC_URL` (local, base-sepolia, arbitrum-sepolia, base, arbitrum);
    /// repeat for several. `local` defaults to http://127.0.0.1:8545; with one network, --rpc-url or ETH_RPC_URL
    /// may give the URL.
    #[arg(long = "network", required = true)]
    networks: Vec<String>,
    /// JSON-RPC endpoint of the only network.
    #[arg(long, env = "ETH_RPC_URL")]
    rpc_url: Option<String>,
    /// Directory of the deployment records (`<network>.json`).
    #[arg(long, default_value = "deployments")]
    deployments_dir: PathBuf,
    /// TOML file with a `[facilitator]` and a `[keeper]` table (see docs/facilitator.md).
    #[arg(long, env = "X402_FACILITATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Foundry/geth keystore file of the signer (password from X402_KEYSTORE_PASSWORD or a prompt); otherwise the
    /// key comes from X402_PRIVATE_KEY.
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Directory of the databases, one per network [default: facilitator-data].
    #[arg(long, env = "X402_FACILITATOR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the facilitator API [default: 127.0.0.1:8403].
    #[arg(long, env = "X402_FACILITATOR_LISTEN")]
    listen: Option<SocketAddr>,
    /// A merchant (`payTo`) whose payments are settled; repeat for several. Overrides `merchants` in the file.
    #[arg(long = "merchant", env = "X402_FACILITATOR_MERCHANTS", value_delimiter = ',')]
    merchants: Vec<Address>,
    /// Settle payments to any merchant (the facilitator pays the gas of whatever it settles).
    #[arg(long, conflicts_with = "merchants")]
    any_merchant: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "X402_LOG_FORMAT")]
    log_format: LogFormat,
}

/// A facilitator's TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    facilitator: settings::FileSettings,
    #[serde(default)]
    keeper: FileSettings,
}

fn load_file(path: Option<&Path>) -> eyre::Result<FileConfig> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).wrap_err_with(|| format!("invalid facilitator config {}", path.display()))
}

impl FacilitatorArgs {
    /// The networks asked for, each with its RPC URL.
    fn targets(&self) -> eyre::Result<Vec<(Network, String)>> {
        let mut out: Vec<(Network, String)> = Vec::new();
        for value in &self.networks {
            let (name, url) = match value.split_once('=') {
                Some((name, url)) => (name, Some(url.to_owned())),
                None => (value.as_str(), None),
            };
            let network = Network::from_str(name, false).map_err(|_| {
                eyre::eyre!(
                    "unknown network {name:?}: local, base-sepolia, arbitrum-sepolia, base or arbitrum"
                )
            })?;
            if out.iter().any(|(n, _)| *n == network) {
                eyre::bail!("network {name} is given twice");
            }
            let only = self.networks.len() == 1;
            let url = match (url, network) {
                (Some(url), _) => url,
                (None, _) if only && self.rpc_url.is_some() => self.rpc_url.clone().unwrap_or_default(),
                (None, Network::Local) => "http://127.0.0.1:8545".to_owned(),
                (None, _) => eyre::bail!("no RPC URL for {name}: pass --network {name}=URL"),
            };
            out.push((network, url));
        }
        Ok(out)
    }

    /// The engine settings of `network`: the `[keeper]` table with this network's record, database directory and
    /// metric label, the payments job always on, and no HTTP API of its own.
    fn engine_settings(
        &self,
        file: &FileSettings,
        network: Network,
        rpc_url: String,
    ) -> eyre::Result<Settings> {
        let mut file = file.clone();
        // A facilitator's clients are resource servers, each settling many payments at once (every one waits for
        // its batch, holding its connection): unless the file says otherwise, 4096 connections, and one client may
        // use all of them and all of the rate.
        let connections = *file.max_connections.get_or_insert(4096);
        file.max_connections_per_client.get_or_insert(connections);
        let rate = file.rate_limit_per_sec.unwrap_or(2_000);
        file.client_rate_limit_per_sec.get_or_insert(rate);
        let burst = file.rate_limit_burst.unwrap_or(rate.saturating_mul(2));
        file.client_rate_limit_burst.get_or_insert(burst);
        // Payments that callers wait for should not wait for a second batch: bigger batches than the keeper's
        // (cut to fit the block, like every batch).
        file.payments_batch.get_or_insert(1000);
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("facilitator-data"));
        file.data_dir = Some(data_dir.join(network.name()));
        let mut jobs =
            file.jobs.clone().unwrap_or_else(|| vec![Job::Subscriptions, Job::Payments, Job::Channels]);
        if !jobs.contains(&Job::Payments) {
            jobs.push(Job::Payments);
        }
        file.jobs = Some(jobs);
        if self.any_merchant {
            file.merchants = Some(Merchants::Any);
        } else if !self.merchants.is_empty() {
            file.merchants = Some(Merchants::Only(self.merchants.clone()));
        }
        let path = Record::path(&self.deployments_dir, network);
        let mut settings = settings_from_record(&path, rpc_url, &file)?;
        settings.network_label = Some(network.name().to_owned());
        settings.serve_api = false;
        Ok(settings)
    }

    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        logging::init(self.log_format, "info");
        let file = load_file(self.config.as_deref())?;
        let mut facilitator_file = file.facilitator.clone();
        facilitator_file.listen = self.listen.or(facilitator_file.listen);
        let api_key = std::env::var("X402_FACILITATOR_API_KEY").ok();
        let settings = facilitator_file.resolve(api_key)?;
        let targets = self.targets()?;
        let mut engine_settings = Vec::new();
        for (network, url) in targets {
            engine_settings.push((network, self.engine_settings(&file.keeper, network, url)?));
        }
        let signer = keys::load(self.keystore.as_deref(), "facilitator")?;
        let mut shutdown = shutdown_signal()?;
        let limits = engine_settings[0].1.clone();
        let mut engines = Vec::new();
        let mut runs = Vec::new();
        for (network, engine) in engine_settings {
            let Some(keeper) = daemon::start(engine, signer.clone(), &mut shutdown).await? else {
                return Ok(ExitCode::SUCCESS);
            };
            engines.push(Engine::new(network.name().to_owned(), keeper.shared(), settings.verify_margin));
            runs.push(tokio::spawn(keeper.run(false, shutdown.clone())));
        }
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .wrap_err_with(|| format!("cannot listen on {}", settings.listen))?;
        let names: Vec<&str> = engines.iter().map(|e| e.name.as_str()).collect();
        tracing::info!(addr = %listener.local_addr()?, networks = ?names, signer = %signer.address(), "facilitator listening");
        let facilitator = Arc::new(Facilitator::new(Engines::new(engines), settings));
        let stop = shutdown.clone();
        let server =
            tokio::spawn(async move { x402_facilitator::serve(listener, facilitator, &limits, stop).await });
        for run in runs {
            run.await.wrap_err("an engine stopped unexpectedly")??;
        }
        server.abort();
        let _ = server.await;
        tracing::info!("facilitator stopped");
        Ok(ExitCode::SUCCESS)
    }
}
