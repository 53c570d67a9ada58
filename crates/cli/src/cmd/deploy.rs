//! `x402 deploy`: runs the deployment plan (see `x402_cli::deployer::deploy`) and reports it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use x402_cli::deployer::chain::Chain;
use x402_cli::deployer::deploy::{self, DeployOptions, DeployReport};
use x402_cli::deployer::settings::ConfigFile;

use super::{Target, say};
use crate::keys;

/// Deploy every contract behind an ERC1967 proxy, wire them, and write `<deployments-dir>/<network>.json`.
///
/// The deployer's key comes from X402_PRIVATE_KEY, or from --keystore with X402_KEYSTORE_PASSWORD (or a
/// prompt). Each transaction is signed and written to the record before it is broadcast, so a second run
/// deploys nothing, and a run that was interrupted resumes where it stopped without sending anything twice.
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    target: Target,
    /// TOML settings: admin, arbiter, keeper, treasury, refund_window, platform_fee_bps (all optional; see
    /// docs/deployer.md). Must match the record when resuming.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Foundry/geth keystore file of the deployer (password from X402_KEYSTORE_PASSWORD or a prompt).
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Check everything and print the plan and its estimated cost; send nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Deploy deterministically through the CREATE2 deployer at 0x4e59b44847b379578588920ca78fbf26c0b4956c with
    /// this 32-byte salt: the same deployer key, salt and settings give the same addresses on every chain.
    #[arg(long)]
    create2_salt: Option<alloy::primitives::B256>,
}

impl DeployArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        let started = Instant::now();
        let config = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let signer = keys::load(self.keystore.as_deref(), "deployer")?;
        let chain = Chain::connect(&self.target.rpc_url()?, Some(signer)).await?;
        let options = DeployOptions {
            network: self.target.network,
            config,
            deployments_dir: self.target.deployments_dir.clone(),
            create2_salt: self.create2_salt,
            dry_run: self.dry_run,
        };
        let report = deploy::deploy(&chain, &options, |(id, receipt)| match receipt {
            Some(receipt) => eprintln!("{id:<56} {} (gas {})", receipt.transaction_hash, receipt.gas_used),
            None => eprintln!("{id:<56} already at its deterministic address"),
        })
        .await?;
        for id in &report.would_send {
            eprintln!("would send: {id}");
        }
        print(&self.target, &report, started);
        Ok(ExitCode::SUCCESS)
    }
}

fn print(target: &Target, report: &DeployReport, started: Instant) {
    let (record, path, sent) = (&report.record, &report.path, report.sent);
    let seconds = started.elapsed().as_secs_f64();
    if target.json {
        let contracts: serde_json::Map<String, serde_json::Value> = record
            .contracts
            .iter()
            .map(|(name, c)| {
                let value = serde_json::json!({
                    "proxy": c.proxy.as_ref().map(|d| d.address),
                    "implementation": c.implementation.as_ref().map(|d| d.address),
                });
                (name.clone(), value)
            })
            .collect();
        say(serde_json::json!({
            "network": record.network.name(),
            "chainId": record.chain_id,
            "record": path,
            "transactionsSent": sent,
            "seconds": seconds,
            "summary": report.summary,
            "token": record.token.address,
            "contracts": contracts,
        }));
    } else {
        say(format!("{} ({sent} transactions, {seconds:.2}s); record: {}", report.summary, path.display()));
        for (name, c) in &record.contracts {
            if let Some(proxy) = &c.proxy {
                say(format!("  {name:<16} {}", proxy.address));
            }
        }
        if let Some(token) = record.token.address {
            say(format!("  {:<16} {token}", "token"));
        }
    }
}
