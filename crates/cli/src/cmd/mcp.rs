//! `x402 mcp`: the MCP server over stdio (`docs/mcp.md`). Stdout carries the protocol, so logs go to stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use alloy::providers::Provider;
use eyre::{WrapErr, bail};
use rmcp::ServiceExt;
use x402_bindings::Contract;
use x402_cli::deployer::record::Record;
use x402_mcp::ledger::Ledger;
use x402_mcp::{NetworkSettings, Settings, X402Mcp};
use x402_protocol::price::Price;

use super::pay::SpendArgs;
use crate::keys;
use crate::logging::{self, LogFormat};

/// Serve MCP tools that let an AI assistant pay x402 APIs from this wallet, within limits.
#[derive(Debug, clap::Args)]
pub(crate) struct McpArgs {
    #[command(flatten)]
    spend: SpendArgs,
    /// A chain's JSON-RPC endpoint (balances, channels, tools, payment status); repeat for several chains.
    #[arg(long = "rpc-url", env = "ETH_RPC_URL", value_delimiter = ',')]
    rpc_urls: Vec<String>,
    /// A deployment record (`deployments/<network>.json`): its PaymentChannel, ToolRegistry, CreditSystem and
    /// token are used on the --rpc-url of its chain; repeat for several.
    #[arg(long = "deployment")]
    deployments: Vec<PathBuf>,
    /// The ledger: one JSON line per payment [default: ~/.x402/mcp-ledger.jsonl]. The budget's totals are kept
    /// beside it (`<ledger>.budget.json`).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Print the ledger and exit.
    #[arg(long)]
    print_ledger: bool,
    /// Every paying tool only quotes: nothing is signed or sent.
    #[arg(long)]
    dry_run: bool,
    /// The most of a fetched body a tool answers with, bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_body: usize,
    /// The largest deposit `x402_channel_open` may lock: `$10` or token units.
    #[arg(long, default_value = "$10")]
    max_deposit: Price,
    /// Seconds an HTTP request (a paid one waits for its settlement) or an RPC request may take.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Foundry/geth keystore file of the wallet (password from X402_KEYSTORE_PASSWORD); otherwise the key comes
    /// from X402_PRIVATE_KEY.
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "json")]
    log_format: LogFormat,
}

impl McpArgs {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        let ledger = match &self.ledger {
            Some(path) => path.clone(),
            None => default_ledger()?,
        };
        if self.print_ledger {
            return print_ledger(&ledger);
        }
        logging::init(self.log_format, "info");
        let signer = keys::load(self.keystore.as_deref(), "wallet")?;
        let timeout = Duration::from_secs(self.timeout);
        let mut networks = Vec::new();
        let mut chains = Vec::new();
        let mut records = Vec::new();
        for path in &self.deployments {
            let Some(record) = Record::load(path)? else {
                bail!("no deployment record at {}", path.display())
            };
            records.push(record);
        }
        for url in &self.rpc_urls {
            let provider = x402_chain::rpc::connect(url, timeout)?;
            let chain_id = provider.get_chain_id().await.wrap_err_with(|| format!("cannot reach {url}"))?;
            let mut network = NetworkSettings { rpc_url: url.clone(), ..NetworkSettings::default() };
            if let Some(record) = records.iter().find(|r| r.chain_id == chain_id) {
                network.payment_channel = record.proxy(Contract::PaymentChannel);
                network.tool_registry = record.proxy(Contract::ToolRegistry);
                network.credit_system = record.proxy(Contract::CreditSystem);
                network.tokens.extend(record.token.address);
            }
            networks.push(network);
            chains.push(chain_id);
        }
        if let Some(record) = records.iter().find(|r| !chains.contains(&r.chain_id)) {
            bail!("the deployment of chain {} has no --rpc-url on that chain", record.chain_id);
        }
        let settings = Settings {
            policy: self.spend.policy(),
            budget: self.spend.budget(with_suffix(&ledger, ".budget.json")),
            ledger,
            dry_run: self.dry_run,
            max_body_bytes: self.max_body,
            max_deposit: self.max_deposit.clone(),
            timeout,
            networks,
        };
        let mut stop = super::keeper::shutdown_signal()?;
        let server = X402Mcp::start(signer, settings).await?;
        let running =
            server.serve(rmcp::transport::stdio()).await.wrap_err("the MCP session did not start")?;
        tokio::select! {
            ended = running.waiting() => {
                ended.wrap_err("the MCP session failed")?;
            }
            _ = stop.wait_for(|stopped| *stopped) => {}
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `~/.x402/mcp-ledger.jsonl`.
fn default_ledger() -> eyre::Result<PathBuf> {
    let home = std::env::var_os("HOME").ok_or_else(|| eyre::eyre!("HOME is not set: pass --ledger"))?;
    Ok(PathBuf::from(home).join(".x402").join("mcp-ledger.jsonl"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// One line per entry: when, what, outcome, amount, to whom, and the transaction or channel.
fn print_ledger(path: &Path) -> eyre::Result<ExitCode> {
    let entries = Ledger::new(path.to_owned()).entries()?;
    if entries.is_empty() {
        super::say(format!("{}: no payments yet", path.display()));
    }
    for e in entries {
        let reference = e.transaction.or(e.channel_id).or(e.nonce).unwrap_or_default();
        super::say(format!(
            "{} {} {} {} of {} on {} to {} {} {}",
            e.time,
            e.kind,
            e.outcome,
            e.amount,
            e.asset.unwrap_or_default(),
            e.network,
            e.pay_to.unwrap_or_default(),
            e.url.unwrap_or_default(),
            reference
        ));
    }
    Ok(ExitCode::SUCCESS)
}
