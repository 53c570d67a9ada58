//! Charge for an HTTP API with x402 (work in progress: the tower layer that answers 402 and settles is not built
//! yet). What is here:
//!
//! - [`price`]: a route's price, in dollars or token units;
//! - [`route`]: route patterns and the path normalization they are matched against;
//! - [`config`]: the tokens and priced routes, from code or TOML, checked into a [`config::Paywall`];
//! - [`facilitator`]: who verifies and settles ([`facilitator::HttpFacilitator`], or in-process);

pub mod config;
pub mod facilitator;
pub mod price;
pub mod route;
