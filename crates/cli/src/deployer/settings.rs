//! The deployment's settings: an optional TOML file, checked before anything is sent.

use std::path::Path;

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use super::error::{Describe, Error, Result, refuse};

/// Smallest and largest refund window X402Payment accepts, in seconds.
const REFUND_WINDOW_BOUNDS: (u64, u64) = (60, 30 * 24 * 3600);
/// Highest platform fee ToolRegistry accepts, in basis points.
const MAX_PLATFORM_FEE_BPS: u16 = 3000;

/// The `--config` file. Every field is optional.
///
/// ```toml
/// admin = "0x…"            # every admin, pauser and upgrader role (default: the deployer); a multisig in production
/// arbiter = "0x…"          # X402Payment dispute arbiter (default: admin)
/// keeper = "0x…"           # gets RevenueSplitter's DISTRIBUTOR_ROLE (default: none)
/// treasury = "0x…"         # where platform fees are credited (default: admin)
/// refund_window = 600      # seconds, 60 to 2592000
/// platform_fee_bps = 2000  # at most 3000
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    admin: Option<Address>,
    arbiter: Option<Address>,
    keeper: Option<Address>,
    treasury: Option<Address>,
    refund_window: Option<u64>,
    platform_fee_bps: Option<u16>,
}

/// The settings with every default filled in; recorded with the deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Every admin, pauser and upgrader role.
    pub admin: Address,
    /// X402Payment's dispute arbiter.
    pub arbiter: Address,
    /// Gets RevenueSplitter's DISTRIBUTOR_ROLE.
    pub keeper: Option<Address>,
    /// Where platform fees are credited.
    pub treasury: Address,
    /// X402Payment's refund window, in seconds.
    pub refund_window: u64,
    /// ToolRegistry's platform fee.
    pub platform_fee_bps: u16,
}

impl ConfigFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .describe(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text)
            .map_err(|message| Error::Refused(format!("malformed config file {}: {message}", path.display())))
    }

    fn parse(text: &str) -> std::result::Result<Self, String> {
        // toml's Display spans several lines (with a source excerpt); one line is kept: what and where.
        toml::from_str(text).map_err(|err| {
            let line = err.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let message = err.message().trim().replace('\n', " ");
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            }
        })
    }

    /// Fills in the defaults (`deployer` for the admin, the admin for the rest) and checks the bounds.
    pub fn resolve(&self, deployer: Address) -> Result<Settings> {
        let admin = self.admin.unwrap_or(deployer);
        let settings = Settings {
            admin,
            arbiter: self.arbiter.unwrap_or(admin),
            keeper: self.keeper,
            treasury: self.treasury.unwrap_or(admin),
            refund_window: self.refund_window.unwrap_or(600),
            platform_fee_bps: self.platform_fee_bps.unwrap_or(2000),
        };
        for (name, value) in
            [("admin", settings.admin), ("arbiter", settings.arbiter), ("treasury", settings.treasury)]
        {
            if value.is_zero() {
                refuse!("config: {name} must not be the zero address");
            }
        }
        if settings.keeper.is_some_and(|keeper| keeper.is_zero()) {
            refuse!("config: keeper must not be the zero address");
        }
        let (min, max) = REFUND_WINDOW_BOUNDS;
        if !(min..=max).contains(&settings.refund_window) {
            refuse!("config: refund_window {} is outside {min}..={max} seconds", settings.refund_window);
        }
        if settings.platform_fee_bps > MAX_PLATFORM_FEE_BPS {
            refuse!("config: platform_fee_bps {} is above {MAX_PLATFORM_FEE_BPS}", settings.platform_fee_bps);
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloy::primitives::address;

    const DEPLOYER: Address = address!("0x00000000000000000000000000000000000000d0");

    #[test]
    fn defaults_follow_the_deployer_and_admin() {
        let settings = ConfigFile::default().resolve(DEPLOYER).unwrap();
        assert_eq!(settings.admin, DEPLOYER);
        assert_eq!(settings.arbiter, DEPLOYER);
        assert_eq!(settings.treasury, DEPLOYER);
        assert_eq!(settings.keeper, None);
        assert_eq!((settings.refund_window, settings.platform_fee_bps), (600, 2000));
        let admin = address!("0x00000000000000000000000000000000000000ad");
        let settings = ConfigFile::parse(&format!("admin = \"{admin}\"")).unwrap().resolve(DEPLOYER).unwrap();
        assert_eq!((settings.arbiter, settings.treasury), (admin, admin));
    }

    #[test]
    fn rejects_unknown_fields_bad_values_and_bounds() {
        let unknown = ConfigFile::parse("admn = \"0x00\"").unwrap_err();
        assert!(unknown.contains("unknown field `admn`"), "{unknown}");
        assert!(ConfigFile::parse("admin = \"0x1234\"").is_err());
        assert!(ConfigFile::parse("refund_window = \"ten\"").is_err());
        let fee = ConfigFile::parse("platform_fee_bps = 3001").unwrap().resolve(DEPLOYER).unwrap_err();
        assert!(fee.to_string().contains("platform_fee_bps 3001"), "{fee}");
        let window = ConfigFile::parse("refund_window = 59").unwrap().resolve(DEPLOYER).unwrap_err();
        assert!(window.to_string().contains("refund_window 59"), "{window}");
        let zero = format!("treasury = \"{}\"", Address::ZERO);
        assert!(ConfigFile::parse(&zero).unwrap().resolve(DEPLOYER).is_err());
    }
}
