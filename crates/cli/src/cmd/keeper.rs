//! `x402 keeper`: runs the keeper daemon against the contracts of a deployment record.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy::primitives::Address;
use eyre::WrapErr;
use tokio::sync::watch;
use x402_keeper::config::{FileConfig, Merchants};
use x402_keeper::daemon;

use super::Target;
use crate::keys;
use crate::logging::{self, LogFormat};
use x402_cli::deployer::record::Record;
use x402_cli::keeper_settings::settings_from_record;

/// Run the keeper: execute due subscriptions, settle queued x402 payments, watch payment channels.
#[derive(Debug, clap::Args)]
pub(crate) struct KeeperArgs {
    #[command(flatten)]
    target: Target,
    /// TOML file with a `[keeper]` table (see docs/keeper.md); flags and environment variables override it.
    #[arg(long, env = "X402_KEEPER_CONFIG")]
    config: Option<PathBuf>,
    /// Foundry/geth keystore file of the keeper's key (password from X402_KEYSTORE_PASSWORD or a prompt);
    /// otherwise the key comes from X402_PRIVATE_KEY.
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Directory of the keeper's database [default: keeper-data].
    #[arg(long, env = "X402_KEEPER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:8402].
    #[arg(long, env = "X402_KEEPER_LISTEN")]
    listen: Option<SocketAddr>,
    /// Seconds between ticks [default: 15].
    #[arg(long, env = "X402_KEEPER_INTERVAL")]
    interval: Option<u64>,
    /// A merchant (`payTo`) whose payments the keeper settles; repeat for several. Overrides `merchants` in the
    /// file.
    #[arg(long = "merchant", env = "X402_KEEPER_MERCHANTS", value_delimiter = ',')]
    merchants: Vec<Address>,
    /// Settle payments to any merchant (the keeper pays the gas of whatever it settles).
    #[arg(long, conflicts_with = "merchants")]
    any_merchant: bool,
    /// Run one tick and exit (for cron).
    #[arg(long)]
    once: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "X402_LOG_FORMAT")]
    log_format: LogFormat,
}

/// Loads a keeper TOML file.
pub(crate) fn load_file(path: Option<&Path>) -> eyre::Result<x402_keeper::config::FileSettings> {
    let Some(path) = path else { return Ok(Default::default()) };
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let file: FileConfig =
        toml::from_str(&text).wrap_err_with(|| format!("invalid keeper config {}", path.display()))?;
    Ok(file.keeper)
}

/// A watch that turns true on SIGINT or SIGTERM.
pub(crate) fn shutdown_signal() -> eyre::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .wrap_err("cannot listen for SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

impl KeeperArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        logging::init(self.log_format, "info");
        let path = Record::path(&self.target.deployments_dir, self.target.network);
        let mut file = load_file(self.config.as_deref())?;
        // Flags and environment variables override the file.
        file.data_dir = self.data_dir.clone().or(file.data_dir);
        file.listen = self.listen.or(file.listen);
        file.interval_secs = self.interval.or(file.interval_secs);
        if self.any_merchant {
            file.merchants = Some(Merchants::Any);
        } else if !self.merchants.is_empty() {
            file.merchants = Some(Merchants::Only(self.merchants.clone()));
        }
        let settings = settings_from_record(&path, self.target.rpc_url()?, &file)?;
        let signer = keys::load(self.keystore.as_deref(), "keeper")?;
        let mut shutdown = shutdown_signal()?;
        let Some(keeper) = daemon::start(settings, signer, &mut shutdown).await? else {
            return Ok(ExitCode::SUCCESS);
        };
        keeper.run(self.once, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    }
}
