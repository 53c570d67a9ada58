//! The paywall layer in an axum app and the paying client, against a real anvil and `x402 facilitator` run as the
//! user runs it: paid, refused and replayed requests, settled before and after the handler, v2 and v1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod channels;
mod deferred;
mod layer;
mod mcp;
mod proxy;
