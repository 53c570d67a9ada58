//! The JSON-RPC connection: every request has a deadline, so a node that accepts connections and never answers
//! makes calls fail in bounded time instead of hanging whoever asked.

use std::time::Duration;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::transports::http::reqwest;

/// Why the connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("invalid RPC URL {url:?}: {message}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it does not parse.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A provider for `url` whose every request fails after `timeout`.
pub fn connect(url: &str, timeout: Duration) -> Result<DynProvider, ConnectError> {
    let parsed: reqwest::Url = url.parse().map_err(|e: <reqwest::Url as std::str::FromStr>::Err| {
        ConnectError::Url { url: url.to_owned(), message: e.to_string() }
    })?;
    let client = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
    Ok(ProviderBuilder::new().connect_reqwest(client, parsed).erased())
}
