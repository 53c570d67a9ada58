//! The deployer: what `x402 deploy`, `x402 upgrade` and `x402 status` do, as a library, so that `x402 devnet` and
//! the tests deploy in-process.
//!
//! - [`settings`]: the TOML settings of a deployment; [`network`]: the target networks;
//! - [`plan`]: every transaction of a deployment, in order; [`record`]: `deployments/<network>.json`;
//! - [`pipeline`]: one step, signed and recorded before it is broadcast; [`chain`]: the connection and key;
//! - [`layout`]: the storage-layout rule of upgrades;
//! - [`deploy`], [`upgrade`]: the operations; [`error`]: why one failed.

pub mod chain;
pub mod deploy;
pub mod error;
pub mod layout;
pub mod network;
pub mod pipeline;
pub mod plan;
pub mod record;
pub mod settings;
pub mod upgrade;

pub use error::{Error, Result};
