//! The facilitator's own settings, the `[facilitator]` table of its TOML file (every key optional); the engines'
//! settings (batches, limits, timeouts, merchants) are the `[keeper]` table's, shared by every network.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// The `[facilitator]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Where the facilitator API listens.
    pub listen: Option<SocketAddr>,
    /// Refuse authorizations that expire within this many seconds of chain time (the reference's 6 s).
    pub verify_margin_secs: Option<u64>,
    /// Seconds `/settle` waits for the payment's batch to be confirmed before answering `settlement_pending`.
    pub settle_timeout_secs: Option<u64>,
}

/// The facilitator's settings, resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Validity margin of `/verify` and `/settle`.
    pub verify_margin: u64,
    /// How long `/settle` waits for confirmation.
    pub settle_timeout: Duration,
    /// The key `/settle` requires (`Authorization: Bearer <key>`), if any; from the environment, never a flag.
    pub api_key: Option<String>,
}

/// A setting out of range.
#[derive(Debug, thiserror::Error)]
#[error("invalid facilitator setting {name}: {message}")]
pub struct SettingError {
    /// The setting.
    pub name: &'static str,
    /// What is wrong.
    pub message: &'static str,
}

impl FileSettings {
    /// Applies the defaults and checks the ranges; `api_key` comes from the environment.
    pub fn resolve(&self, api_key: Option<String>) -> Result<Settings, SettingError> {
        let verify_margin = self.verify_margin_secs.unwrap_or(6);
        if verify_margin > 600 {
            return Err(SettingError { name: "verify_margin_secs", message: "must be at most 600" });
        }
        let settle_timeout = self.settle_timeout_secs.unwrap_or(30);
        if !(1..=600).contains(&settle_timeout) {
            return Err(SettingError { name: "settle_timeout_secs", message: "must be 1..=600" });
        }
        let api_key = api_key.filter(|key| !key.is_empty());
        if api_key.as_ref().is_some_and(|key| key.len() < 16) {
            return Err(SettingError { name: "api key", message: "must be at least 16 characters" });
        }
        Ok(Settings {
            listen: self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8403))),
            verify_margin,
            settle_timeout: Duration::from_secs(settle_timeout),
            api_key,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_and_ranges() {
        let settings = FileSettings::default().resolve(None).unwrap();
        assert_eq!(settings.verify_margin, 6);
        assert_eq!(settings.settle_timeout, Duration::from_secs(30));
        assert_eq!(settings.listen, SocketAddr::from(([127, 0, 0, 1], 8403)));
        let file = FileSettings { settle_timeout_secs: Some(0), ..FileSettings::default() };
        assert_eq!(file.resolve(None).unwrap_err().name, "settle_timeout_secs");
        assert_eq!(FileSettings::default().resolve(Some("short".into())).unwrap_err().name, "api key");
        assert!(FileSettings::default().resolve(Some(String::new())).unwrap().api_key.is_none());
    }
}
