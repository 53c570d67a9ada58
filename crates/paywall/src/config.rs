//! What a paywall charges: the tokens it takes ([`Asset`]) and its priced routes ([`Route`]), built in code or read
//! from TOML, checked once into a [`Paywall`].
//!
//! ```toml
//! pay_to = "0x…"                 # who is paid, unless a route says otherwise
//! max_timeout_seconds = 60       # how long a payment may take to settle
//!
//! [[asset]]                      # a token routes are priced in; USDC by network needs only `network`
//! network = "eip155:84532"
//!
//! [[route]]                      # the first route that matches a request prices it
//! path = "GET /weather"
//! price = "$0.001"               # dollars, converted with each token's decimals; or "1000" token units
//! description = "Weather data"
//! settle = "after"               # after (default) | before | deferred
//!
//! [deferred]                     # routes settled `deferred`: what a payer may be served unsettled
//! max_unsettled = "$0.10"        # per payer and token
//! max_age_seconds = 60           # a payment pending longer makes the payer's next one wait
//!
//! [[channel]]                    # also offer the `channel` scheme (a voucher per request) on a network
//! network = "eip155:84532"
//! payment_channel = "0x…"        # the PaymentChannel proxy of the deployment
//! min_deposit = "$1"             # the smallest channel deposit taken
//! min_challenge_seconds = 3600   # the shortest challenge period taken
//! min_expiry_seconds = 3600      # a channel must not expire sooner than this
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, U256};
use serde::Deserialize;
use serde_json::json;
use x402_protocol::channel::{self, ChannelExtra};
use x402_protocol::network::{self, caip2, chain_id_of};
use x402_protocol::{v1, v2};

use crate::route::{PatternError, RoutePattern};
use x402_protocol::price::{Price, PriceError};

/// The voucher domain's EIP-712 name and version (PaymentChannel's).
const CHANNEL_DOMAIN_NAME: &str = "x402 PaymentChannel";
const CHANNEL_DOMAIN_VERSION: &str = "1";

/// The default `maxTimeoutSeconds`: how long a payment may take to settle.
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 60;

/// A token the paywall takes: an EIP-3009 token on an EVM network.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// CAIP-2 network id (`eip155:84532`).
    pub network: String,
    /// The token; Circle's USDC of the network when left out.
    #[serde(default)]
    pub address: Option<Address>,
    /// Its EIP-712 domain name, as the token reports it (`name()`; USDC: "USDC").
    #[serde(default)]
    pub name: Option<String>,
    /// Its EIP-712 domain version (`version()`; USDC: "2").
    #[serde(default)]
    pub version: Option<String>,
    /// Its decimals, for prices in dollars [USDC: 6; needed for any other token].
    #[serde(default)]
    pub decimals: Option<u8>,
}

impl Asset {
    /// Circle's USDC on `network` (a CAIP-2 id of Base, Base Sepolia, Arbitrum or Arbitrum Sepolia).
    pub fn usdc(network: &str) -> Self {
        Self { network: network.to_owned(), address: None, name: None, version: None, decimals: None }
    }

    /// An EIP-3009 token with its EIP-712 domain `name` and `version` (what the token's `name()` and `version()`
    /// return) and its `decimals`.
    pub fn token(network: &str, address: Address, name: &str, version: &str, decimals: u8) -> Self {
        Self {
            network: network.to_owned(),
            address: Some(address),
            name: Some(name.to_owned()),
            version: Some(version.to_owned()),
            decimals: Some(decimals),
        }
    }
}

/// When a route's payment is settled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettleMode {
    /// After the handler, only if it answered below 400; its response is held until the payment settled (the
    /// reference's behaviour).
    #[default]
    After,
    /// Before the handler runs: the handler runs only for a settled payment, and its answer is the client's
    /// whatever its status.
    Before,
    /// Verified, served at once, settled in the background (in the facilitator's next batch), within the
    /// `[deferred]` exposure limits per payer; past them, settled after the handler.
    Deferred,
}

/// The `[deferred]` table: how much a payer may be served before its payments settle.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferredLimits {
    /// A payer's unsettled total per token [default: $0.10].
    #[serde(default = "default_max_unsettled")]
    pub max_unsettled: Price,
    /// The longest a payer's deferred payment may stay unsettled before its next one waits [default: 60].
    #[serde(default = "default_max_age")]
    pub max_age_seconds: u64,
}

fn default_max_unsettled() -> Price {
    Price::Usd("0.10".to_owned())
}

fn default_max_age() -> u64 {
    60
}

impl Default for DeferredLimits {
    fn default() -> Self {
        Self { max_unsettled: default_max_unsettled(), max_age_seconds: default_max_age() }
    }
}

/// A priced route.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `METHOD /path` or `/path` (any method); `:name` or `[name]` is one segment, a final `*` the rest.
    pub path: String,
    /// What one request costs.
    pub price: Price,
    /// Who is paid [default: the paywall's `pay_to`].
    #[serde(default)]
    pub pay_to: Option<Address>,
    /// The networks it can be paid on [default: every asset's].
    #[serde(default)]
    pub networks: Option<Vec<String>>,
    /// What it is, for the client.
    #[serde(default)]
    pub description: Option<String>,
    /// The media type of its answer.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// How long a payment may take to settle [default: the paywall's].
    #[serde(default)]
    pub max_timeout_seconds: Option<u64>,
    /// When it is settled.
    #[serde(default)]
    pub settle: SettleMode,
}

impl Route {
    /// `path` for `price` (see [`Price::parse`]: `"$0.01"` dollars or `"10000"` token units).
    pub fn new(path: &str, price: Price) -> Self {
        Self {
            path: path.to_owned(),
            price,
            pay_to: None,
            networks: None,
            description: None,
            mime_type: None,
            max_timeout_seconds: None,
            settle: SettleMode::After,
        }
    }

    /// Paid to `pay_to`.
    pub fn pay_to(mut self, pay_to: Address) -> Self {
        self.pay_to = Some(pay_to);
        self
    }

    /// Described as `description`.
    pub fn description(mut self, description: &str) -> Self {
        self.description = Some(description.to_owned());
        self
    }

    /// Answering `mime_type`.
    pub fn mime_type(mut self, mime_type: &str) -> Self {
        self.mime_type = Some(mime_type.to_owned());
        self
    }

    /// Settled `mode`.
    pub fn settle(mut self, mode: SettleMode) -> Self {
        self.settle = mode;
        self
    }
}

/// A paywall's settings, as code builds them or TOML gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Who is paid, unless a route says otherwise.
    #[serde(default)]
    pub pay_to: Option<Address>,
    /// How long a payment may take to settle [default: 60].
    #[serde(default)]
    pub max_timeout_seconds: Option<u64>,
    /// The tokens taken.
    #[serde(default, rename = "asset")]
    pub assets: Vec<Asset>,
    /// The priced routes, first match first.
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// The exposure limits of routes settled `deferred`.
    #[serde(default)]
    pub deferred: DeferredLimits,
    /// Networks where every route also offers the `channel` scheme.
    #[serde(default, rename = "channel")]
    pub channels: Vec<ChannelTerms>,
}

/// The `channel` scheme on one network: routes priced there also take vouchers on this PaymentChannel
/// (`docs/channels.md`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelTerms {
    /// CAIP-2 network id; it needs an `[[asset]]`.
    pub network: String,
    /// The PaymentChannel proxy.
    pub payment_channel: Address,
    /// The smallest deposit of a channel taken [$1].
    #[serde(default = "default_min_deposit")]
    pub min_deposit: Price,
    /// The shortest challenge period taken, in seconds [3600]: how long the keeper has to claim once a payer
    /// starts a close.
    #[serde(default = "default_min_challenge")]
    pub min_challenge_seconds: u64,
    /// A channel expiring sooner than this many seconds from now is refused [3600].
    #[serde(default = "default_min_expiry")]
    pub min_expiry_seconds: u64,
}

fn default_min_deposit() -> Price {
    Price::Usd("1".to_owned())
}

fn default_min_challenge() -> u64 {
    3600
}

fn default_min_expiry() -> u64 {
    3600
}

impl ChannelTerms {
    /// Vouchers on the PaymentChannel at `payment_channel` on `network`, with the default minimums.
    pub fn new(network: &str, payment_channel: Address) -> Self {
        Self {
            network: network.to_owned(),
            payment_channel,
            min_deposit: default_min_deposit(),
            min_challenge_seconds: default_min_challenge(),
            min_expiry_seconds: default_min_expiry(),
        }
    }

    /// Takes channels whose deposit is at least `deposit`.
    pub fn min_deposit(mut self, deposit: Price) -> Self {
        self.min_deposit = deposit;
        self
    }

    /// Takes channels with at least this challenge period, expiring no sooner than `expiry` seconds from now.
    pub fn minimums(mut self, challenge_seconds: u64, expiry_seconds: u64) -> Self {
        self.min_challenge_seconds = challenge_seconds;
        self.min_expiry_seconds = expiry_seconds;
        self
    }
}

/// Why settings cannot make a paywall.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is not paywall settings.
    #[error("invalid paywall settings: {0}")]
    Toml(#[from] toml::de::Error),
    /// No token.
    #[error("no [[asset]]: the paywall must take at least one token")]
    NoAsset,
    /// No route.
    #[error("no [[route]]: nothing is priced")]
    NoRoute,
    /// An asset is incomplete.
    #[error("asset on {network}: {why}")]
    Asset {
        /// Its network.
        network: String,
        /// What is wrong.
        why: String,
    },
    /// A route's pattern.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// A route's price.
    #[error("route {route:?}: {source}")]
    Price {
        /// The route.
        route: String,
        /// Why.
        source: PriceError,
    },
    /// Something else about a route.
    #[error("route {route:?}: {why}")]
    Route {
        /// The route.
        route: String,
        /// What is wrong.
        why: String,
    },
}

impl Config {
    /// Settings from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Settings from a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::from_toml(&text)
    }

    /// Who is paid by default.
    pub fn pay_to(mut self, pay_to: Address) -> Self {
        self.pay_to = Some(pay_to);
        self
    }

    /// Also takes `asset`.
    pub fn asset(mut self, asset: Asset) -> Self {
        self.assets.push(asset);
        self
    }

    /// Also offers the `channel` scheme on `terms.network`.
    pub fn channel(mut self, terms: ChannelTerms) -> Self {
        self.channels.push(terms);
        self
    }

    /// Also prices `route` (after those already there).
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// The paywall these settings describe, every route's requirements worked out.
    pub fn build(self) -> Result<Paywall, ConfigError> {
        if self.assets.is_empty() {
            return Err(ConfigError::NoAsset);
        }
        if self.routes.is_empty() {
            return Err(ConfigError::NoRoute);
        }
        let assets = self.assets.iter().map(resolve_asset).collect::<Result<Vec<_>, _>>()?;
        for terms in &self.channels {
            if !assets.iter().any(|asset| asset.network == terms.network) {
                return Err(ConfigError::Asset {
                    network: terms.network.clone(),
                    why: "a [[channel]] needs an [[asset]] on its network".to_owned(),
                });
            }
        }
        let default_timeout = self.max_timeout_seconds.unwrap_or(DEFAULT_MAX_TIMEOUT_SECONDS);
        let mut routes = Vec::with_capacity(self.routes.len());
        for route in self.routes {
            let route_error = |why: String| ConfigError::Route { route: route.path.clone(), why };
            let pattern = RoutePattern::parse(&route.path)?;
            let pay_to = route.pay_to.or(self.pay_to).ok_or_else(|| {
                route_error("no pay_to: set it on the route or for the whole paywall".to_owned())
            })?;
            let max_timeout_seconds = route.max_timeout_seconds.unwrap_or(default_timeout);
            if max_timeout_seconds == 0 {
                return Err(route_error("max_timeout_seconds must be more than 0".to_owned()));
            }
            if let Some(networks) = &route.networks
                && let Some(unknown) = networks.iter().find(|n| !assets.iter().any(|a| &a.network == *n))
            {
                return Err(route_error(format!("network {unknown} has no [[asset]]")));
            }
            let mut accepts = Vec::new();
            let mut exposure_limits = Vec::new();
            for asset in &assets {
                if route.networks.as_ref().is_some_and(|networks| !networks.contains(&asset.network)) {
                    continue;
                }
                let amount = route
                    .price
                    .to_atomic(asset.decimals)
                    .map_err(|source| ConfigError::Price { route: route.path.clone(), source })?;
                accepts.push(v2::PaymentRequirements {
                    scheme: "exact".to_owned(),
                    network: asset.network.clone(),
                    amount: amount.to_string(),
                    asset: asset.address.to_checksum(None),
                    pay_to: pay_to.to_checksum(None),
                    max_timeout_seconds,
                    extra: Some(json!({"name": asset.name, "version": asset.version})),
                });
                let limit = self.deferred.max_unsettled.to_atomic(asset.decimals).map_err(|source| {
                    ConfigError::Price { route: "[deferred] max_unsettled".to_owned(), source }
                })?;
                exposure_limits.push(limit);
                if let Some(terms) = self.channels.iter().find(|terms| terms.network == asset.network) {
                    let min_deposit = terms.min_deposit.to_atomic(asset.decimals).map_err(|source| {
                        ConfigError::Price { route: "[[channel]] min_deposit".to_owned(), source }
                    })?;
                    let extra = ChannelExtra {
                        payment_channel: terms.payment_channel,
                        name: CHANNEL_DOMAIN_NAME.to_owned(),
                        version: CHANNEL_DOMAIN_VERSION.to_owned(),
                        min_deposit: min_deposit.to_string(),
                        min_challenge_period: terms.min_challenge_seconds,
                        min_expiry_seconds: terms.min_expiry_seconds,
                    };
                    accepts.push(v2::PaymentRequirements {
                        scheme: channel::SCHEME.to_owned(),
                        network: asset.network.clone(),
                        amount: amount.to_string(),
                        asset: asset.address.to_checksum(None),
                        pay_to: pay_to.to_checksum(None),
                        max_timeout_seconds,
                        extra: serde_json::to_value(&extra).ok(),
                    });
                    exposure_limits.push(U256::ZERO);
                }
            }
            routes.push(PricedRoute {
                pattern,
                accepts,
                description: route.description.unwrap_or_default(),
                mime_type: route.mime_type.unwrap_or_default(),
                settle: route.settle,
                exposure_limits,
            });
        }
        let max_age = Duration::from_secs(self.deferred.max_age_seconds);
        Ok(Paywall { routes: Arc::new(routes), deferred_max_age: max_age })
    }
}

struct ResolvedAsset {
    network: String,
    address: Address,
    name: String,
    version: String,
    decimals: u8,
}

fn resolve_asset(asset: &Asset) -> Result<ResolvedAsset, ConfigError> {
    let error = |why: &str| ConfigError::Asset { network: asset.network.clone(), why: why.to_owned() };
    if !asset.network.starts_with("eip155:") {
        return Err(error("the network must be a CAIP-2 eip155 id, such as eip155:84532"));
    }
    let chain_id = chain_id_of(&asset.network).ok_or_else(|| error("not a CAIP-2 eip155 id"))?;
    let usdc = network::by_chain_id(chain_id).and_then(|n| n.usdc);
    let is_usdc = asset.address.is_none() || asset.address == usdc;
    let address =
        asset.address.or(usdc).ok_or_else(|| error("no address, and no USDC known on this network"))?;
    let (name, version) = match (&asset.name, &asset.version) {
        (Some(name), Some(version)) => (name.clone(), version.clone()),
        (None, None) if is_usdc => ("USDC".to_owned(), "2".to_owned()),
        _ => return Err(error("name and version (the token's EIP-712 domain) are both needed")),
    };
    // USDC has 6 decimals; another token's must be said, or a dollar price would be off by powers of ten.
    let decimals = match asset.decimals {
        Some(decimals) => decimals,
        None if is_usdc => 6,
        None => return Err(error("decimals is needed for a token other than USDC")),
    };
    Ok(ResolvedAsset { network: caip2(chain_id), address, name, version, decimals })
}

/// A route with its requirements worked out.
#[derive(Debug)]
pub struct PricedRoute {
    /// What it matches.
    pub pattern: RoutePattern,
    /// One per asset it can be paid in, in v2's shape.
    pub accepts: Vec<v2::PaymentRequirements>,
    /// What it is.
    pub description: String,
    /// The media type of its answer.
    pub mime_type: String,
    /// When it is settled.
    pub settle: SettleMode,
    /// For each of `accepts`, how much of its token a payer may have unsettled when the route is deferred.
    pub exposure_limits: Vec<U256>,
}

impl PricedRoute {
    /// The exposure limit for `requirement` (one of [`Self::accepts`]).
    pub fn exposure_limit(&self, requirement: &v2::PaymentRequirements) -> U256 {
        let index = self.accepts.iter().position(|r| r == requirement);
        index.and_then(|i| self.exposure_limits.get(i).copied()).unwrap_or(U256::ZERO)
    }

    /// Its requirements in v1's shape for the resource at `url`: `exact` on networks with a v1 name (the
    /// `channel` scheme is v2 only).
    pub fn accepts_v1(&self, url: &str) -> Vec<v1::PaymentRequirements> {
        self.accepts.iter().filter_map(|r| self.in_v1(r, url)).collect()
    }

    /// `requirement` (one of [`Self::accepts`]) in v1's shape, if it is `exact` and its network has a v1 name.
    pub fn in_v1(&self, requirement: &v2::PaymentRequirements, url: &str) -> Option<v1::PaymentRequirements> {
        if requirement.scheme != "exact" {
            return None;
        }
        let name = network::v1_name(chain_id_of(&requirement.network)?)?;
        Some(v1::PaymentRequirements {
            scheme: requirement.scheme.clone(),
            network: name.to_owned(),
            max_amount_required: requirement.amount.clone(),
            resource: url.to_owned(),
            description: self.description.clone(),
            mime_type: self.mime_type.clone(),
            output_schema: None,
            pay_to: requirement.pay_to.clone(),
            max_timeout_seconds: requirement.max_timeout_seconds,
            asset: requirement.asset.clone(),
            extra: requirement.extra.clone(),
        })
    }
}

/// Priced routes, checked: cheap to clone, shared by every request.
#[derive(Clone, Debug)]
pub struct Paywall {
    routes: Arc<Vec<PricedRoute>>,
    deferred_max_age: Duration,
}

impl Paywall {
    /// An empty configuration to build on.
    pub fn builder() -> Config {
        Config::default()
    }

    /// The route that prices a request with `method` to `path`, if any.
    pub fn route_for(&self, method: &http::Method, path: &str) -> Option<&PricedRoute> {
        let segments = crate::route::normalize(path);
        self.routes.iter().find(|route| route.pattern.matches(method, &segments))
    }

    /// How long a deferred payment may stay unsettled before its payer's next one waits.
    pub fn deferred_max_age(&self) -> Duration {
        self.deferred_max_age
    }

    /// The v2 requirements of the route that prices `method` `path`, if any (what its 402 offers).
    pub fn requirements(&self, method: &http::Method, path: &str) -> Option<&[v2::PaymentRequirements]> {
        self.route_for(method, path).map(|route| route.accepts.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERCHANT: &str = "0x00000000000000000000000000000000000000aa";

    #[test]
    fn toml_routes_become_requirements_per_asset() {
        let text = format!(
            r#"
            pay_to = "{MERCHANT}"
            [[asset]]
            network = "eip155:84532"
            [[asset]]
            network = "eip155:31337"
            address = "0x00000000000000000000000000000000000000bb"
            name = "Test Stablecoin"
            version = "1"
            decimals = 18
            [[route]]
            path = "GET /weather"
            price = "$0.001"
            description = "Weather"
            [[route]]
            path = "/local/*"
            price = "1500"
            networks = ["eip155:31337"]
            settle = "before"
            "#
        );
        let paywall = Config::from_toml(&text).unwrap().build().unwrap();
        let weather = paywall.requirements(&http::Method::GET, "/weather").unwrap();
        assert_eq!(weather.len(), 2);
        assert_eq!(weather[0].amount, "1000");
        assert_eq!(weather[0].asset, "0x036CbD53842c5426634e7929541eC2318f3dCF7e");
        assert_eq!(weather[0].extra, Some(json!({"name": "USDC", "version": "2"})));
        assert_eq!(weather[1].amount, "1000000000000000", "$0.001 with 18 decimals");
        assert_eq!(weather[0].max_timeout_seconds, DEFAULT_MAX_TIMEOUT_SECONDS);
        let route = paywall.route_for(&http::Method::GET, "/weather").unwrap();
        let v1 = route.accepts_v1("http://x/weather");
        assert_eq!(v1.len(), 1, "only Base Sepolia has a v1 name");
        assert_eq!(v1[0].network, "base-sepolia");
        assert_eq!(v1[0].max_amount_required, "1000");
        let local = paywall.route_for(&http::Method::POST, "/local/a/b").unwrap();
        assert_eq!(local.accepts.len(), 1);
        assert_eq!(local.accepts[0].amount, "1500");
        assert_eq!(local.settle, SettleMode::Before);
        assert!(paywall.requirements(&http::Method::POST, "/weather").is_none());
    }

    #[test]
    fn incomplete_settings_are_refused_with_the_reason() {
        let merchant: Address = MERCHANT.parse().unwrap();
        let usdc = || Asset::usdc("eip155:84532");
        let route = || Route::new("GET /a", Price::parse("$0.01").unwrap());
        let err = |config: Config| config.build().unwrap_err().to_string();
        assert!(err(Paywall::builder().route(route())).contains("no [[asset]]"));
        assert!(err(Paywall::builder().asset(usdc())).contains("nothing is priced"));
        assert!(err(Paywall::builder().asset(usdc()).route(route())).contains("no pay_to"));
        let local = Asset {
            network: "eip155:31337".into(),
            address: None,
            name: None,
            version: None,
            decimals: None,
        };
        assert!(
            err(Paywall::builder().pay_to(merchant).asset(local).route(route())).contains("no USDC known")
        );
        let nameless =
            Asset { name: Some("X".into()), address: Some(merchant), ..Asset::usdc("eip155:31337") };
        assert!(
            err(Paywall::builder().pay_to(merchant).asset(nameless).route(route())).contains("both needed")
        );
        let precise = Route::new("GET /a", Price::parse("$0.0000001").unwrap());
        assert!(
            err(Paywall::builder().pay_to(merchant).asset(usdc()).route(precise)).contains("decimal places")
        );
        let elsewhere = Route { networks: Some(vec!["eip155:1".into()]), ..route() };
        assert!(
            err(Paywall::builder().pay_to(merchant).asset(usdc()).route(elsewhere))
                .contains("has no [[asset]]")
        );
        assert!(Config::from_toml("[[route]]\npath = \"/a\"\nprice = \"1.5\"").is_err(), "not a price");
        assert!(Config::from_toml("colour = 1").is_err(), "unknown keys are refused");
    }
}
