//! The keeper daemon against a real anvil, run as the user runs it (deployed, then `x402 keeper` as a separate
//! process), one file per topic. Tests named after a finding of the independent review say so in their doc
//! comment ("Finding N") and failed before its fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod channels;
mod connections;
mod devnet;
mod intake;
mod resilience;
mod settlement;
mod subscriptions;
