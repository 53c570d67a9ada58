//! What `x402 mcp` is told: the spend policy and budget, the ledger file, dry run, limits, and the networks it
//! reaches (an RPC endpoint each, with the deployment's contracts when it has one).

use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::Address;
use x402_client::{Budget, Policy};
use x402_protocol::price::Price;

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// What one payment may be: cap per request, networks, tokens, recipients.
    pub policy: Policy,
    /// The most all payments may cost per period, per token; `None`: no period limit.
    pub budget: Option<Budget>,
    /// The ledger: every payment, one JSON line each.
    pub ledger: PathBuf,
    /// Every paying tool only quotes.
    pub dry_run: bool,
    /// The most of a fetched body a tool answers with, in bytes.
    pub max_body_bytes: usize,
    /// The largest channel deposit `x402_channel_open` may lock.
    pub max_deposit: Price,
    /// How long an HTTP request (the paid one waits for its settlement) or an RPC request may take.
    pub timeout: Duration,
    /// The chains it reads and pays on directly.
    pub networks: Vec<NetworkSettings>,
}

/// One chain.
#[derive(Clone, Debug, Default)]
pub struct NetworkSettings {
    /// Its JSON-RPC endpoint.
    pub rpc_url: String,
    /// The deployment's PaymentChannel.
    pub payment_channel: Option<Address>,
    /// The deployment's ToolRegistry.
    pub tool_registry: Option<Address>,
    /// The deployment's CreditSystem.
    pub credit_system: Option<Address>,
    /// Tokens to show balances of, besides the policy's tokens on this chain.
    pub tokens: Vec<Address>,
}
