//! The payment a request carries: read from `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1), matched against what
//! the route offers and bound to the resource it was made for, before anything is asked of a facilitator.

use alloy_primitives::{Address, B256};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use x402_protocol::channel::{self, ChannelExtra, ChannelPayload, VoucherRequest};
use x402_protocol::exact::ExactEvmPayload;
use x402_protocol::headers::{self, PAYMENT_SIGNATURE, X_PAYMENT};
use x402_protocol::{v1, v2};

use crate::config::PricedRoute;
use crate::route::normalize;

/// What makes a payment unique: an EIP-3009 nonce is spent once per payer and token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PaymentKey {
    /// The token.
    pub asset: Address,
    /// Who pays.
    pub payer: Address,
    /// The authorization's nonce.
    pub nonce: B256,
}

/// A payment that matches one of the route's requirements.
#[derive(Clone, Debug)]
pub struct Payment {
    /// 1 or 2: the version the client spoke, and the one its receipt header is in.
    pub version: u8,
    /// The facilitator's body: `{x402Version, paymentPayload, paymentRequirements}`.
    pub request: Value,
    /// The requirement it pays, in v2's shape.
    pub requirement: v2::PaymentRequirements,
    /// Its identity, for the replay guard.
    pub key: PaymentKey,
    /// The amount authorized, in the token's units.
    pub amount: String,
    /// Unix seconds after which the authorization cannot settle any more.
    pub valid_before: u64,
}

/// What a request carries.
#[derive(Debug)]
pub enum Carried {
    /// No payment header.
    Nothing,
    /// A header that is not a payment; the reason.
    Malformed(String),
    /// A payment that pays for something the route does not offer; the reason.
    Unmatched(&'static str),
    /// A payment for one of the route's requirements.
    Payment(Box<Payment>),
    /// A `channel` voucher for one of the route's `channel` requirements.
    Voucher(Box<Voucher>),
}

/// A voucher that matches one of the route's `channel` requirements.
#[derive(Clone, Debug)]
pub struct Voucher {
    /// The question for the facilitator's desk.
    pub request: VoucherRequest,
    /// The requirement it pays.
    pub requirement: v2::PaymentRequirements,
}

/// Reads the payment of a request to `path` priced by `route`; `url` is the resource's URL as its 402 names it.
pub fn carried(headers: &HeaderMap, route: &PricedRoute, path: &str, url: &str) -> Carried {
    if let Some(value) = headers.get(PAYMENT_SIGNATURE) {
        return match value.to_str() {
            Ok(text) => from_v2(text, route, path),
            Err(_) => Carried::Malformed(format!("{PAYMENT_SIGNATURE} is not ASCII")),
        };
    }
    if let Some(value) = headers.get(X_PAYMENT) {
        return match value.to_str() {
            Ok(text) => from_v1(text, route, url),
            Err(_) => Carried::Malformed(format!("{X_PAYMENT} is not ASCII")),
        };
    }
    Carried::Nothing
}

fn from_v2(header: &str, route: &PricedRoute, path: &str) -> Carried {
    let raw: Value = match headers::decode(header) {
        Ok(raw) => raw,
        Err(err) => return Carried::Malformed(format!("{PAYMENT_SIGNATURE}: {err}")),
    };
    // A payment names the resource it was made for; one made for another path does not pay for this one.
    v2_payment(&raw, &route.accepts, |url| normalize(path_of(url)) == normalize(path))
}

/// Reads a v2 `PaymentPayload` carried outside an HTTP header (MCP's `_meta["x402/payment"]`), matched against
/// `accepts`; a payload that names a resource must name `resource`.
pub fn from_payload(raw: &Value, accepts: &[v2::PaymentRequirements], resource: &str) -> Carried {
    v2_payment(raw, accepts, |url| url == resource)
}

fn v2_payment(raw: &Value, accepts: &[v2::PaymentRequirements], for_this: impl Fn(&str) -> bool) -> Carried {
    let payload: v2::PaymentPayload = match v2::PaymentPayload::deserialize(raw) {
        Ok(payload) => payload,
        Err(err) => return Carried::Malformed(format!("not a v2 payment: {err}")),
    };
    if payload.x402_version != 2 {
        return Carried::Malformed(format!("the payment carries x402Version {}", payload.x402_version));
    }
    if let Some(resource) = &payload.resource
        && !for_this(&resource.url)
    {
        return Carried::Unmatched("the payment was made for another resource");
    }
    let Some(offered) = accepts.iter().find(|offered| same_requirement(&payload.accepted, offered)) else {
        return Carried::Unmatched("the payment accepts requirements this route does not offer");
    };
    if offered.scheme == channel::SCHEME {
        return voucher(offered, &payload.payload);
    }
    let request = json!({"x402Version": 2, "paymentPayload": raw, "paymentRequirements": offered});
    finish(2, request, &payload.payload, offered.clone())
}

fn from_v1(header: &str, route: &PricedRoute, url: &str) -> Carried {
    let raw: Value = match headers::decode(header) {
        Ok(raw) => raw,
        Err(err) => return Carried::Malformed(format!("{X_PAYMENT}: {err}")),
    };
    let payload: v1::PaymentPayload = match serde_json::from_value(raw.clone()) {
        Ok(payload) => payload,
        Err(err) => return Carried::Malformed(format!("{X_PAYMENT} is not a v1 payment: {err}")),
    };
    if payload.x402_version != 1 {
        return Carried::Malformed(format!("{X_PAYMENT} carries x402Version {}", payload.x402_version));
    }
    let Some((twin, offer)) = route.accepts.iter().find_map(|r| {
        let offer = route.in_v1(r, url)?;
        (offer.scheme == payload.scheme && offer.network == payload.network).then_some((r, offer))
    }) else {
        return Carried::Unmatched("the payment's scheme and network are not among this route's");
    };
    let request = json!({"x402Version": 1, "paymentPayload": raw, "paymentRequirements": offer});
    finish(1, request, &payload.payload, twin.clone())
}

fn voucher(offered: &v2::PaymentRequirements, payload: &Value) -> Carried {
    let voucher: ChannelPayload = match serde_json::from_value(payload.clone()) {
        Ok(voucher) => voucher,
        Err(err) => return Carried::Malformed(format!("the payload is not a channel voucher: {err}")),
    };
    let extra = offered.extra.clone().map(serde_json::from_value::<ChannelExtra>);
    let (Some(Ok(extra)), Ok(asset), Ok(pay_to)) =
        (extra, offered.asset.parse::<Address>(), offered.pay_to.parse::<Address>())
    else {
        return Carried::Unmatched("the route's channel requirement is not an EVM one");
    };
    let request = VoucherRequest {
        network: offered.network.clone(),
        extra,
        asset,
        pay_to,
        price: offered.amount.clone(),
        voucher,
    };
    Carried::Voucher(Box::new(Voucher { request, requirement: offered.clone() }))
}

fn finish(version: u8, request: Value, payload: &Value, requirement: v2::PaymentRequirements) -> Carried {
    let exact: ExactEvmPayload = match serde_json::from_value(payload.clone()) {
        Ok(exact) => exact,
        Err(err) => return Carried::Malformed(format!("the payload is not an exact EVM payment: {err}")),
    };
    let Some(window) = exact.authorization.numbers() else {
        return Carried::Malformed("the authorization's numbers are not decimal".to_owned());
    };
    let Ok(asset) = requirement.asset.parse::<Address>() else {
        return Carried::Unmatched("the requirement's asset is not an EVM address");
    };
    let key = PaymentKey { asset, payer: exact.authorization.from, nonce: exact.authorization.nonce };
    let valid_before = u64::try_from(window.valid_before).unwrap_or(u64::MAX);
    Carried::Payment(Box::new(Payment {
        version,
        request,
        requirement,
        key,
        amount: exact.authorization.value,
        valid_before,
    }))
}

/// The path of a URL (`https://host/a?b` -> `/a`), or the text itself if it is a path already.
fn path_of(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(at) => {
            let after = &url[at + 3..];
            after.find('/').map_or("/", |slash| &after[slash..])
        }
        None => url,
    };
    rest.split(['?', '#']).next().unwrap_or(rest)
}

/// The official servers' test: the core fields equal (addresses in any case), and every `extra` field offered
/// present with the same value in what the client accepted.
fn same_requirement(accepted: &v2::PaymentRequirements, offered: &v2::PaymentRequirements) -> bool {
    let extra_kept = match (&offered.extra, &accepted.extra) {
        (None, _) => true,
        (Some(Value::Object(want)), Some(Value::Object(got))) => {
            want.iter().all(|(key, value)| got.get(key) == Some(value))
        }
        (Some(want), got) => got.as_ref() == Some(want),
    };
    accepted.scheme == offered.scheme
        && accepted.network == offered.network
        && accepted.amount == offered.amount
        && accepted.asset.eq_ignore_ascii_case(&offered.asset)
        && accepted.pay_to.eq_ignore_ascii_case(&offered.pay_to)
        && accepted.max_timeout_seconds == offered.max_timeout_seconds
        && extra_kept
}

#[cfg(test)]
mod tests {
    use alloy_primitives::address;
    use x402_protocol::headers::encode;

    use super::*;
    use crate::config::{Asset, Config, Route};
    use x402_protocol::price::Price;

    const URL: &str = "http://api.test/weather";

    fn paywall() -> crate::config::Paywall {
        Config::default()
            .pay_to(address!("00000000000000000000000000000000000000aa"))
            .asset(Asset::usdc("eip155:84532"))
            .route(Route::new("GET /weather", Price::parse("$0.001").unwrap()))
            .build()
            .unwrap()
    }

    fn authorization() -> Value {
        json!({
            "signature": format!("0x{}", "11".repeat(65)),
            "authorization": {
                "from": "0x00000000000000000000000000000000000000Cc",
                "to": "0x00000000000000000000000000000000000000aA",
                "value": "1000", "validAfter": "0", "validBefore": "1900000000",
                "nonce": format!("0x{}", "22".repeat(32)),
            }
        })
    }

    fn headers(name: &str, value: &Value) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            encode(value).unwrap().parse().unwrap(),
        );
        map
    }

    fn v2_payment(accepted: &v2::PaymentRequirements, url: &str) -> Value {
        json!({"x402Version": 2, "resource": {"url": url}, "accepted": accepted, "payload": authorization()})
    }

    #[test]
    fn a_v2_payment_of_the_offer_is_read_with_its_key() {
        let paywall = paywall();
        let route = paywall.route_for(&http::Method::GET, "/weather").unwrap();
        let mut accepted = route.accepts[0].clone();
        accepted.pay_to = accepted.pay_to.to_uppercase().replace("0X", "0x");
        let Carried::Payment(payment) =
            carried(&headers(PAYMENT_SIGNATURE, &v2_payment(&accepted, URL)), route, "/weather", URL)
        else {
            panic!("not read")
        };
        assert_eq!(payment.version, 2);
        assert_eq!(payment.key.payer, address!("00000000000000000000000000000000000000cc"));
        assert_eq!(payment.valid_before, 1_900_000_000);
        assert_eq!(
            payment.request["paymentRequirements"],
            json!(route.accepts[0]),
            "the offer is sent, as is"
        );
        assert_eq!(payment.request["paymentPayload"]["accepted"]["payTo"], json!(accepted.pay_to));
    }

    #[test]
    fn payments_for_other_terms_or_resources_are_unmatched() {
        let paywall = paywall();
        let route = paywall.route_for(&http::Method::GET, "/weather").unwrap();
        let read = |value: Value| carried(&headers(PAYMENT_SIGNATURE, &value), route, "/weather", URL);
        let offer = route.accepts[0].clone();
        let cheaper = v2::PaymentRequirements { amount: "1".into(), ..offer.clone() };
        assert!(matches!(read(v2_payment(&cheaper, URL)), Carried::Unmatched(_)));
        let no_extra = v2::PaymentRequirements { extra: None, ..offer.clone() };
        assert!(matches!(read(v2_payment(&no_extra, URL)), Carried::Unmatched(_)));
        let more_extra = v2::PaymentRequirements {
            extra: Some(json!({"name": "USDC", "version": "2", "more": 1})),
            ..offer.clone()
        };
        assert!(matches!(read(v2_payment(&more_extra, URL)), Carried::Payment(_)), "extra fields are kept");
        assert!(matches!(read(v2_payment(&offer, "http://api.test/other")), Carried::Unmatched(_)));
        assert!(matches!(read(v2_payment(&offer, "http://api.test/Weather/?q=1")), Carried::Payment(_)));
        assert!(matches!(read(json!({"x402Version": 2})), Carried::Malformed(_)));
        let mut v3 = v2_payment(&offer, URL);
        v3["x402Version"] = json!(3);
        assert!(matches!(read(v3), Carried::Malformed(_)));
        let mut not_exact = v2_payment(&offer, URL);
        not_exact["payload"] = json!({"transaction": "abc"});
        assert!(matches!(read(not_exact), Carried::Malformed(_)));
        let mut map = HeaderMap::new();
        map.insert(PAYMENT_SIGNATURE, "%%%".parse().unwrap());
        assert!(matches!(carried(&map, route, "/weather", URL), Carried::Malformed(_)));
        assert!(matches!(carried(&HeaderMap::new(), route, "/weather", URL), Carried::Nothing));
    }

    #[test]
    fn a_v1_payment_matches_by_scheme_and_network_name() {
        let paywall = paywall();
        let route = paywall.route_for(&http::Method::GET, "/weather").unwrap();
        let payment = |network: &str| json!({"x402Version": 1, "scheme": "exact", "network": network, "payload": authorization()});
        let Carried::Payment(read) =
            carried(&headers(X_PAYMENT, &payment("base-sepolia")), route, "/weather", URL)
        else {
            panic!("not read")
        };
        assert_eq!(read.version, 1);
        assert_eq!(read.requirement, route.accepts[0]);
        assert_eq!(read.request["paymentRequirements"]["maxAmountRequired"], "1000");
        assert_eq!(read.request["paymentRequirements"]["resource"], URL);
        let elsewhere = carried(&headers(X_PAYMENT, &payment("base")), route, "/weather", URL);
        assert!(matches!(elsewhere, Carried::Unmatched(_)));
    }

    #[test]
    fn paths_of_urls() {
        assert_eq!(path_of("https://h:1/a/b?c#d"), "/a/b");
        assert_eq!(path_of("https://h"), "/");
        assert_eq!(path_of("/a?x"), "/a");
    }
}
