//! What every part of the project that talks to a chain shares, so that the deployer and the keeper send, wait
//! and fail the same way:
//!
//! - [`rpc`]: the JSON-RPC connection, with a deadline on every request;
//! - [`error`]: [`ChainError`], which keeps the transport error or the node's answer (revert data included);
//! - [`gas`]: the headroom over an estimate and whether a call fits a block;
//! - [`send`]: broadcasting a signed transaction, where a node that has it already counts as sent;
//! - [`receipt`]: finding and waiting for receipts;
//! - [`simulate`]: a call simulated with the gas it used (`eth_simulateV1`), in one execution;
//! - [`block`]: the latest block (its time, its gas limit);
//! - [`clock`]: the host's unix time, for records and liveness (never for "due": that is the chain's time).

pub mod block;
pub mod clock;
pub mod error;
pub mod gas;
pub mod receipt;
pub mod rpc;
pub mod send;
pub mod simulate;

pub use error::ChainError;
