//! The x402 headers: each carries base64 (standard alphabet, padded) of a JSON document. v1: `X-PAYMENT` (client
//! to server, a payment) and `X-PAYMENT-RESPONSE` (the settlement); v2: `PAYMENT-REQUIRED` (server to client),
//! `PAYMENT-SIGNATURE` (client to server) and `PAYMENT-RESPONSE`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// v1: the client's payment.
pub const X_PAYMENT: &str = "X-PAYMENT";
/// v1: the settlement the server reports.
pub const X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";
/// v2: what the server requires.
pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// v2: the client's payment.
pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// v2: the settlement the server reports.
pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";

/// The longest header value [`decode`] reads (64 KiB): a payment is a few hundred bytes.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Why a header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// Longer than [`MAX_HEADER_BYTES`].
    #[error("the header is {0} bytes, more than {MAX_HEADER_BYTES}")]
    TooLong(usize),
    /// Not base64.
    #[error("the header is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not the JSON expected.
    #[error("the header's JSON is not what was expected: {0}")]
    Json(#[from] serde_json::Error),
}

/// `value` as a header: base64 of its JSON.
pub fn encode<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    Ok(STANDARD.encode(serde_json::to_vec(value)?))
}

/// A header's JSON document. Surrounding whitespace is ignored.
pub fn decode<T: DeserializeOwned>(header: &str) -> Result<T, HeaderError> {
    let header = header.trim();
    if header.len() > MAX_HEADER_BYTES {
        return Err(HeaderError::TooLong(header.len()));
    }
    let bytes = STANDARD.decode(header)?;
    Ok(serde_json::from_slice(&bytes)?)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_say_why() {
        let value = json!({"x402Version": 2, "accepts": []});
        let header = encode(&value).unwrap();
        assert_eq!(decode::<Value>(&header).unwrap(), value);
        assert_eq!(decode::<Value>(&format!(" {header}\n")).unwrap(), value);
        assert!(matches!(decode::<Value>("not base64!"), Err(HeaderError::Base64(_))));
        assert!(matches!(decode::<Value>(&STANDARD.encode("{")), Err(HeaderError::Json(_))));
        let long = "A".repeat(MAX_HEADER_BYTES + 1);
        assert!(matches!(decode::<Value>(&long), Err(HeaderError::TooLong(_))));
    }
}
