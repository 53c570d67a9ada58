//! The payer's side on chain, for `x402 channel`, `x402 mcp` and any agent that holds its own key:
//!
//! - [`wallet`]: a connection that signs with the payer's key, one transaction at a time;
//! - [`channels`]: opening a payment channel that meets a paywall's `channel` offer, reading and closing it;
//! - [`balances`]: token and gas balances, and credits in CreditSystem;
//! - [`tools`]: ToolRegistry's tools, paid with an allowance or with credits;
//! - [`payments`]: what a payment did on chain (a transaction's transfers, an authorization's state);
//! - [`error`]: why an operation did not happen ([`WalletError`]).

pub mod balances;
pub mod channels;
pub mod error;
pub mod payments;
mod text;
pub mod tools;
pub mod wallet;

pub use error::WalletError;
pub use wallet::Wallet;
