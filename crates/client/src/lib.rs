//! Pay for x402 APIs from Rust. [`Client::send`] sends a request; on 402 it reads the offer (the v2
//! `PAYMENT-REQUIRED` header or the v1 body), picks the first requirement its [`Policy`] allows, counts it against
//! the [`Budget`] if there is one, signs an EIP-3009 authorization with the local key and sends the request again
//! with it, returning the answer and the settlement receipt.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use x402_client::{Client, Policy};
//! let signer: alloy::signers::local::PrivateKeySigner = std::env::var("X402_PRIVATE_KEY")?.parse()?;
//! let client = Client::new(signer)?.policy(Policy::default().max_per_request("$0.05".parse()?));
//! let outcome = client.send(client.http_client().get("https://api.example.com/weather").build()?).await?;
//! println!("{} paid {:?}", outcome.response.status(), outcome.payment.map(|p| p.amount));
//! # Ok(()) }
//! ```
//!
//! - [`offer`]: reading a 402;
//! - [`policy`]: what may be paid;
//! - [`ledger`]: the total per period, kept in a file;
//! - [`sign`]: signing a payment;
//! - [`channel`]: paying through a payment channel, a voucher per request;
//! - [`client`]: the request loop.

pub mod channel;
pub mod client;
pub mod ledger;
pub mod offer;
pub mod policy;
pub mod sign;

pub use channel::Channel;
pub use client::{Client, ClientError, Outcome, Payment, Quote, receipt};
pub use ledger::{Budget, Spent};
pub use policy::Policy;
pub use x402_protocol::price::{self, Price};
