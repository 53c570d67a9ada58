//! The command line: one `Args` struct per subcommand, each with a `run` method.

mod channel;
mod deploy;
mod devnet;
mod enqueue;
mod facilitator;
pub(crate) mod keeper;
mod mcp;
mod paid_demo;
mod pay;
mod proxy;
mod status;
mod upgrade;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use x402_cli::deployer::network::Network;

/// Deploy the x402 settlement contracts, keep their record, check it against the chain, and run the keeper.
#[derive(Debug, Parser)]
#[command(name = "x402", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Deploy (or finish deploying) every contract behind an ERC1967 proxy, wire them and record the result.
    ///
    /// The deployer's key comes from X402_PRIVATE_KEY, or from --keystore with X402_KEYSTORE_PASSWORD (or a
    /// prompt). Each transaction is signed and written to `<deployments-dir>/<network>.json` before it is
    /// broadcast, so a second run deploys nothing and an interrupted run resumes without sending anything twice.
    Deploy(deploy::DeployArgs),
    /// Compare the chain with the deployment record; exits with 1 on any drift.
    ///
    /// Checks code at every address, each proxy's EIP-1967 implementation slot and the implementation's code
    /// hash, the admin's roles (and that the deployer kept none after a hand-over), the paused flag and the UUPS
    /// version. Needs no key.
    Status(status::StatusArgs),
    /// Upgrade one contract to a new implementation whose storage layout extends the deployed one.
    ///
    /// The new implementation is the one built into this binary (the project's current source) unless
    /// --implementation-artifact says otherwise. Its ERC-7201 layout must keep every namespace and only append
    /// members; otherwise nothing is sent. The key (as for deploy) must hold the contract's UPGRADER_ROLE.
    Upgrade(upgrade::UpgradeArgs),
    /// Run the keeper daemon: execute due subscriptions, settle queued x402 payments in batches, watch channels.
    ///
    /// Reads the contracts from the deployment record of --network. The key comes from X402_PRIVATE_KEY or
    /// --keystore, as for deploy. State lives in --data-dir (an embedded database); a restart loses nothing, and
    /// a second keeper on the same directory waits as a standby. Serves the intake (POST /payments), payment
    /// status (GET /payments/{id}), voucher registration (POST /vouchers), /metrics, /health and /ready.
    Keeper(keeper::KeeperArgs),
    /// Run an x402 facilitator (POST /verify, POST /settle, GET /supported) for official x402 servers.
    ///
    /// One engine per --network, each from its deployment record with its own database under --data-dir; one key
    /// (X402_PRIVATE_KEY or --keystore) signs for all. Concurrent settlements share one settleBatch; each is
    /// recorded before anything is sent, so a retry or a restart never pays twice. With X402_FACILITATOR_API_KEY
    /// set, /settle needs `Authorization: Bearer <key>`.
    Facilitator(facilitator::FacilitatorArgs),
    /// Queue signed x402 payments (a JSON file or `-`) with a running keeper.
    Enqueue(enqueue::EnqueueArgs),
    /// Show the status of payments queued with a running keeper.
    Payment(enqueue::PaymentArgs),
    /// Send an HTTP request and pay for it if the server asks (x402): the body to stdout, the payment to stderr.
    ///
    /// The payer's key comes from X402_PRIVATE_KEY or --keystore and never leaves this process. On a 402 it pays the
    /// first offered requirement the policy allows (--max per request, tokens, recipients, chains, --budget per
    /// period). Exit codes: 0 served, 1 error, 3 refused by the policy (nothing paid), 4 payment refused by the
    /// server, 5 an HTTP error answer.
    Pay(pay::PayArgs),
    /// Open, show or close a payment channel for paying per request with vouchers (the channel scheme).
    ///
    /// `open URL --deposit $5` opens a channel that meets the URL's channel offer (approve, then openChannel, from
    /// the payer's key); `x402 pay URL --channel ID` then pays with vouchers. `close` starts a unilateral close, and
    /// once the challenge period is over, finalizes it.
    Channel(channel::ChannelArgs),
    /// Put a paywall in front of an HTTP API: priced routes answer 402 until paid, then are forwarded.
    ///
    /// Prices per route come from a TOML file (--config, see docs/server.md); payments are verified and settled by
    /// --facilitator. Bodies are streamed both ways; an upstream error is not charged on routes settled after the
    /// handler. Serves /health, /ready and /metrics itself.
    Proxy(proxy::ProxyArgs),
    /// Serve MCP tools (stdio) that let an AI assistant pay x402 APIs from this wallet, within limits.
    ///
    /// Tools: x402_fetch, x402_quote, x402_balance, x402_sign_authorization, x402_verify_payment, x402_tools,
    /// x402_pay_tool, x402_pay_tool_credits, x402_channel_open, x402_channel_close. The key comes from
    /// X402_PRIVATE_KEY or --keystore and never leaves this process; every payment keeps to the policy (--max,
    /// tokens, recipients, chains, --budget per period) and is written to --ledger. See docs/mcp.md.
    Mcp(mcp::McpArgs),
    /// Run the whole loop on a local anvil: deploy, fund demo accounts, subscriptions, a channel, the keeper,
    /// a few hundred payments, and chain time moving forward. Ctrl-C stops everything.
    Devnet(devnet::DevnetArgs),
}

impl Cli {
    pub(crate) async fn run(self) -> eyre::Result<ExitCode> {
        match self.command {
            Command::Deploy(args) => args.run().await,
            Command::Status(args) => args.run().await,
            Command::Upgrade(args) => args.run().await,
            Command::Keeper(args) => args.run().await,
            Command::Facilitator(args) => args.run().await,
            Command::Enqueue(args) => args.run().await,
            Command::Payment(args) => args.run().await,
            Command::Pay(args) => args.run().await,
            Command::Channel(args) => args.run().await,
            Command::Proxy(args) => args.run().await,
            Command::Mcp(args) => args.run().await,
            Command::Devnet(args) => args.run().await,
        }
    }
}

/// Options shared by the subcommands that talk to a chain and read or write its record.
#[derive(Debug, clap::Args)]
struct Target {
    /// The network: `local` (an anvil node; deploys a test USDC), `base-sepolia`, `arbitrum-sepolia`, `base` or
    /// `arbitrum` (Circle's USDC of that chain, checked on-chain).
    #[arg(long, value_enum)]
    network: Network,
    /// JSON-RPC endpoint. Defaults to http://127.0.0.1:8545 for `local`; required for the other networks.
    #[arg(long, env = "ETH_RPC_URL")]
    rpc_url: Option<String>,
    /// Directory of the deployment records (`<network>.json`).
    #[arg(long, default_value = "deployments")]
    deployments_dir: PathBuf,
    /// Print a JSON document instead of text.
    #[arg(long)]
    json: bool,
}

impl Target {
    fn rpc_url(&self) -> eyre::Result<String> {
        match (&self.rpc_url, self.network) {
            (Some(url), _) => Ok(url.clone()),
            (None, Network::Local) => Ok("http://127.0.0.1:8545".to_owned()),
            (None, network) => {
                eyre::bail!("no RPC URL for {}: pass --rpc-url or set ETH_RPC_URL", network.name())
            }
        }
    }
}

/// Writes a line of the command's result to stdout.
fn say(line: impl std::fmt::Display) {
    // A closed stdout (e.g. piped into `head`) must not turn a finished deployment into an error.
    writeln!(std::io::stdout().lock(), "{line}").ok();
}
