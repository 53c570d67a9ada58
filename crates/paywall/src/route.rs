//! Route patterns (`GET /weather`, `/items/:id`, `/items/[id]`, `POST /api/*`) and the path normalization they are
//! matched against. A request path is percent-decoded, split at `/` and `\` (decoded ones too), `.` and `..`
//! resolved, empty segments dropped and compared without regard to case, so that `/%50remium/`,
//! `/free/..%2Fpremium` and `/PREMIUM` cost what `/premium` costs: an upstream that decodes or folds paths must not
//! serve a priced route for free. (The price of doubt is paid the other way: a path that only looks like a priced
//! one after decoding is priced.)

use http::Method;

/// A method (or any) and a path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePattern {
    method: Option<Method>,
    segments: Vec<Segment>,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Equal, ignoring case.
    Literal(String),
    /// Any one segment (`:id`, `[id]`, `*` before the end).
    One,
    /// Any number of segments, none included (`*` at the end).
    Rest,
}

/// A pattern that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("route pattern {pattern:?}: {why} (write \"GET /path\", \"/items/:id\" or \"/api/*\")")]
pub struct PatternError {
    pattern: String,
    why: &'static str,
}

impl RoutePattern {
    /// `text` as a pattern: an optional method, then a path starting with `/`.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let error = |why| PatternError { pattern: text.to_owned(), why };
        let mut words = text.split_whitespace();
        let (method, path) = match (words.next(), words.next(), words.next()) {
            (Some(path), None, None) => (None, path),
            (Some(method), Some(path), None) => {
                let method = if method == "*" {
                    None
                } else {
                    Some(
                        Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                            .map_err(|_| error("bad method"))?,
                    )
                };
                (method, path)
            }
            _ => return Err(error("expected a method and a path")),
        };
        if !path.starts_with('/') {
            return Err(error("the path must start with '/'"));
        }
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            segments.push(match *part {
                "*" if last => Segment::Rest,
                "*" => Segment::One,
                p if p.starts_with(':') && p.len() > 1 => Segment::One,
                p if p.starts_with('[') && p.ends_with(']') && p.len() > 2 => Segment::One,
                p if p.contains('*') => return Err(error("'*' must be a whole segment")),
                p => Segment::Literal(p.to_lowercase()),
            });
        }
        Ok(Self { method, segments, text: text.to_owned() })
    }

    /// Whether a request with `method` to the normalized `path` (see [`normalize`]) matches.
    pub fn matches(&self, method: &Method, path: &[String]) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method && !(m == Method::GET && method == Method::HEAD))
        {
            return false;
        }
        let mut segments = self.segments.iter();
        let mut parts = path.iter();
        loop {
            match (segments.next(), parts.next()) {
                (Some(Segment::Rest), _) => return true,
                (None, None) => return true,
                (Some(Segment::One), Some(_)) => {}
                (Some(Segment::Literal(want)), Some(got)) if want == got => {}
                _ => return false,
            }
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The segments of a request path (query and fragment dropped): percent-decoded, split at `/` and `\\`, each
/// segment's `;parameters` dropped (servlet containers serve `/premium;x` as `/premium`), `.` and `..` resolved,
/// empty segments dropped, lowercased.
pub fn normalize(path: &str) -> Vec<String> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(path).to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        let segment = segment.split(';').next().unwrap_or_default();
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(segment.to_owned()),
        }
    }
    out
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(pattern: &str, method: &Method, path: &str) -> bool {
        RoutePattern::parse(pattern).unwrap().matches(method, &normalize(path))
    }

    #[test]
    fn patterns_match_methods_params_and_the_rest() {
        assert!(hit("GET /weather", &Method::GET, "/weather"));
        assert!(hit("GET /weather", &Method::HEAD, "/weather"), "HEAD costs what GET costs");
        assert!(!hit("GET /weather", &Method::POST, "/weather"));
        assert!(hit("/weather", &Method::POST, "/weather?city=paris"));
        assert!(!hit("/weather", &Method::GET, "/weather/paris"));
        assert!(hit("/items/:id", &Method::GET, "/items/7"));
        assert!(hit("/items/[id]/price", &Method::GET, "/items/7/price"));
        assert!(!hit("/items/:id", &Method::GET, "/items"));
        assert!(hit("/api/*", &Method::GET, "/api"));
        assert!(hit("/api/*", &Method::GET, "/api/a/b/c"));
        assert!(!hit("/api/*", &Method::GET, "/apix"));
        assert!(hit("* /a/*/c", &Method::DELETE, "/a/b/c"));
        assert!(hit("/*", &Method::GET, "/"));
    }

    #[test]
    fn encoded_dotted_and_cased_paths_cost_the_same() {
        for path in [
            "/%70remium",
            "/free/../premium",
            "/free/..%2Fpremium",
            "/free%5C..%5Cpremium",
            "/PREMIUM",
            "//premium/",
            "/./premium",
            "/premium#x",
            "/premium;jsessionid=1",
            "/premium%3Bx",
            "/free;x/../premium",
        ] {
            assert!(hit("GET /premium", &Method::GET, path), "{path}");
        }
        assert!(hit("/api/*", &Method::GET, "/public%2F..%2Fapi%2Fkeys"));
        assert!(!hit("GET /premium", &Method::GET, "/premium/x"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in ["", "weather", "GET", "GET /a b", "G@T /a", "/a*b"] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
