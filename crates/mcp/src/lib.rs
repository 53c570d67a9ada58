//! `x402 mcp`: a Model Context Protocol server (stdio) that gives an AI assistant a wallet with limits. Its tools
//! fetch and pay x402 APIs, quote them, show balances, sign authorizations for hosts that relay them, check a
//! payment on chain, pay ToolRegistry tools, and open and close payment channels; every paying tool keeps to the
//! spend policy and the budget and writes what it paid to the ledger (`docs/mcp.md`).
//!
//! - [`settings`]: what the server is told;
//! - [`args`] and [`answers`]: the tools' arguments and typed results;
//! - [`ledger`]: the file of payments;
//! - [`server`]: the tools;
//! - [`paid`]: paid MCP tools (the x402 MCP transport), the server's side and the client's.

pub mod answers;
pub mod args;
pub mod ledger;
pub mod paid;
pub mod server;
pub mod settings;

pub use server::{StartError, X402Mcp};
pub use settings::{NetworkSettings, Settings};
