//! `x402 facilitator` against a real anvil, run as the user runs it, driven by the official x402 packages
//! (interop/, unmodified): @x402/core's HTTPFacilitatorClient, an @x402/express server paid by @x402/fetch, and
//! the `x402` 1.x facilitator client; then concurrency and a crash in the middle of a settlement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod concurrency;
mod express;
mod official;
mod review;
mod v1;
