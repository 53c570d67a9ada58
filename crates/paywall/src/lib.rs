//! Charge for an HTTP API with x402: a tower layer ([`PaywallLayer`], usable from axum) that answers a priced
//! request without a payment with 402 and the route's requirements, and serves one with a payment once the
//! payment is verified and settled, with the receipt in `PAYMENT-RESPONSE` (v2) or `X-PAYMENT-RESPONSE` (v1).
//!
//! - [`route`]: route patterns and the path normalization they are matched against;
//! - [`config`]: the tokens and priced routes, from code or TOML, checked into a [`config::Paywall`];
//! - [`facilitator`]: who verifies and settles ([`facilitator::HttpFacilitator`], or in-process);
//! - [`payment`]: the payment a request carries, matched against the route's offer;
//! - [`replay`]: each payment accepted once; [`deferred`]: how much a payer may be served unsettled;
//! - [`layer`]: the tower layer; [`metrics`]: what it did, for `/metrics`.

pub mod config;
pub mod deferred;
pub mod facilitator;
pub mod layer;
pub mod metrics;
pub mod payment;
pub mod replay;
pub mod route;

pub use config::{Config, Paywall};
pub use layer::{Paid, PaywallLayer, PaywallService};
pub use x402_protocol::price::{self, Price};
