//! The x402 keeper: a daemon that executes due subscriptions, settles queued x402 `exact` payments in batches
//! and watches payment channels, with its state in an embedded database.
//!
//! - [`intake`] and [`policy`]: the checks queued payments (in the wire format of `x402-protocol`) pass before
//!   acceptance, and whose payments the keeper settles at all;
//! - [`store`]: the durable state behind the [`store::Store`] trait;
//! - [`sender`]: the transaction pipeline (nonce, persist before broadcast, confirmation, fee bump, recovery);
//! - [`daemon`]: start-up, the tick loop and shutdown; the jobs live in `jobs`;
//! - [`http`]: the HTTP API (intake, status, metrics, health); [`guard`] and [`ratelimit`]: its body limits and its
//!   per-client and keeper-wide rates; [`server`]: connection limits and timeouts;
//! - [`context`]: what the jobs and the HTTP API share; [`signature`]: ECDSA recovery for intake and vouchers;
//!   [`vouchers`]: channel voucher registration;
//! - [`config`]: settings; [`metrics`]: Prometheus metrics.
//!
//! `docs/architecture.md` follows a payment through these modules.

pub mod config;
pub mod context;
pub mod daemon;
pub mod guard;
pub mod http;
pub mod intake;
mod jobs;
pub mod metrics;
pub mod policy;
pub mod ratelimit;
pub mod sender;
pub mod server;
pub mod signature;
pub mod store;
pub mod vouchers;

pub use jobs::JobError;
