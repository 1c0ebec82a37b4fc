//! Which browser origins may call the API: none (same origin only), any (`*`), or a list of
//! exact origins. Parsed once at start, so a wrong value stops the server with a message that
//! says what to write instead of being dropped (or panicking inside tower-http).

use axum::http::{header, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CorsError {
    #[error(
        "--cors-origins: {0:?} is not an origin; write scheme://host[:port] with no path, \
         e.g. https://owner-space.static.hf.space"
    )]
    NotAnOrigin(String),
    #[error("--cors-origins: '*' allows every origin and cannot be combined with a list")]
    StarInList,
}

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CorsOrigins {
    /// No CORS headers: only pages served from this server's own origin can call it.
    #[default]
    SameOrigin,
    /// `*`: any page may send feedback (no cookies are used, so this leaks nothing).
    Any,
    /// Exactly these origins (lower-cased scheme and host).
    List(Vec<String>),
}

impl CorsOrigins {
    /// Parses the values of `--cors-origins` (empty strings are ignored).
    pub fn parse(values: &[impl AsRef<str>]) -> Result<Self, CorsError> {
        let values: Vec<&str> = values.iter().map(|v| v.as_ref().trim()).filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return Ok(CorsOrigins::SameOrigin);
        }
        if values.contains(&"*") {
            return if values.len() == 1 { Ok(CorsOrigins::Any) } else { Err(CorsError::StarInList) };
        }
        values.iter().map(|v| normalize_origin(v)).collect::<Result<_, _>>().map(CorsOrigins::List)
    }

    pub fn layer(&self) -> CorsLayer {
        let allow = match self {
            CorsOrigins::SameOrigin => return CorsLayer::new(),
            CorsOrigins::Any => AllowOrigin::any(),
            CorsOrigins::List(list) => AllowOrigin::list(
                list.iter().map(|o| HeaderValue::from_str(o).expect("normalize_origin leaves a valid header value")),
            ),
        };
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE])
            .max_age(Duration::from_secs(3600))
    }

    /// For the start-up line.
    pub fn describe(&self) -> String {
        match self {
            CorsOrigins::SameOrigin => "same origin only".into(),
            CorsOrigins::Any => "any origin (*)".into(),
            CorsOrigins::List(l) => l.join(", "),
        }
    }
}

/// `Https://Me.hf.space` → `https://me.hf.space`; refuses paths, queries, credentials, spaces.
fn normalize_origin(v: &str) -> Result<String, CorsError> {
    let bad = || CorsError::NotAnOrigin(v.chars().take(200).collect());
    let (scheme, rest) = v.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
        None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')),
    };
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.parse::<u32>().is_ok_and(|n| n <= 65535));
    if !host_ok || !port_ok {
        return Err(bad());
    }
    Ok(format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_star_lists_and_refuses_what_is_not_an_origin() {
        assert_eq!(CorsOrigins::parse(&[] as &[&str]), Ok(CorsOrigins::SameOrigin));
        assert_eq!(CorsOrigins::parse(&["*"]), Ok(CorsOrigins::Any));
        assert_eq!(CorsOrigins::parse(&["*", "https://a.b"]), Err(CorsError::StarInList));
        assert_eq!(
            CorsOrigins::parse(&["Https://Me.HF.space", "http://127.0.0.1:8080", "http://[::1]:80"]),
            Ok(CorsOrigins::List(vec![
                "https://me.hf.space".into(),
                "http://127.0.0.1:8080".into(),
                "http://[::1]:80".into()
            ]))
        );
        for bad in [
            "me.hf.space",
            "https://me.hf.space/",
            "https://me.hf.space/page",
            "ftp://x.y",
            "https://",
            "https://a b",
            "https://x:99999999",
            "https://user@x",
            "https://x:",
            "https://[::1",
        ] {
            assert!(matches!(CorsOrigins::parse(&[bad]), Err(CorsError::NotAnOrigin(_))), "{bad}");
        }
        // Building the layer never panics, whatever was parsed.
        for o in [CorsOrigins::SameOrigin, CorsOrigins::Any, CorsOrigins::parse(&["https://a.b:1"]).unwrap()] {
            let _ = o.layer();
        }
    }
}
