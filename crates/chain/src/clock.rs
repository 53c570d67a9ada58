//! The host's clock, for what is about the host: when a record was written, when the last tick ran. What is due
//! or expired on chain is decided by the chain's time ([`crate::block::time`]).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}
