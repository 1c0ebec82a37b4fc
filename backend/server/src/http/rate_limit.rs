//! Per-client token buckets for `/api/`. The client address is hashed with a random
//! per-process salt and only the hash is kept in memory; addresses are never stored or logged.
//!
//! Which address is the client's: behind proxies (`--trusted-proxy-hops N`), the one the
//! outermost trusted proxy saw, read from `X-Forwarded-For`; but only when the connection comes
//! from a trusted proxy's address (`--trusted-proxies`, private networks by default). A client
//! that reaches the port directly from elsewhere is keyed by its own address, whatever
//! `X-Forwarded-For` it sends, so it cannot choose its key.

use super::{AppError, AppState};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Requests per minute per client, with a burst allowance; `per_minute == 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_minute: 120, burst: 30 }
    }
}

/// Most buckets kept before idle ones are swept.
const MAX_BUCKETS: usize = 100_000;

pub(crate) struct Limiter {
    limit: RateLimit,
    salt: [u8; 32],
    buckets: Mutex<HashMap<u64, (f64, Instant)>>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Limiter { limit, salt: rand::random(), buckets: Mutex::new(HashMap::new()) }
    }

    fn key(&self, client: &str) -> u64 {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(self.salt);
        h.update(client.as_bytes());
        u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
    }

    /// `Ok` if the client may go on, else seconds until a token is back.
    fn check(&self, client: &str) -> Result<(), u64> {
        if self.limit.per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(self.limit.per_minute) / 60.0;
        let cap = f64::from(self.limit.burst.max(1));
        let now = Instant::now();
        let key = self.key(client);
        let mut buckets = self.buckets.lock().expect("limiter lock");
        if buckets.len() >= MAX_BUCKETS {
            // Drop buckets that have refilled completely: they carry no state.
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < cap);
        }
        let (tokens, at) = buckets.entry(key).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// Networks a proxy in front of the server may connect from, by default: loopback, the
/// private ranges (RFC 1918, RFC 4193), carrier-grade NAT and link-local. A platform's proxy
/// (a Space's) reaches the container from one of these; a client on the internet never does.
pub const DEFAULT_TRUSTED_PROXIES: [&str; 9] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

/// Parsed [`DEFAULT_TRUSTED_PROXIES`].
pub fn default_trusted_proxies() -> Vec<IpNet> {
    DEFAULT_TRUSTED_PROXIES.iter().map(|n| n.parse().expect("valid network")).collect()
}

/// Which address identifies the client: with `hops` trusted proxies in front and a connection
/// from one of the `trusted` networks, the `hops`-th entry from the right of `X-Forwarded-For`
/// (the one the outermost trusted proxy saw); otherwise, or when the header is short, the peer
/// address.
pub fn client_key_source(headers: &HeaderMap, peer: Option<SocketAddr>, hops: usize, trusted: &[IpNet]) -> String {
    let from_proxy = peer.is_some_and(|p| trusted.iter().any(|n| n.contains(&p.ip().to_canonical())));
    if hops > 0 && from_proxy {
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if entries.len() >= hops {
            return entries[entries.len() - hops].to_owned();
        }
    }
    peer.map(|p| p.ip().to_canonical().to_string()).unwrap_or_else(|| "unknown".to_owned())
}

/// Middleware on the API routes.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/api/") {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let cfg = &state.inner.config;
        let client = client_key_source(req.headers(), peer, cfg.trusted_proxy_hops, &cfg.trusted_proxies);
        if let Err(retry) = state.inner.limiter.check(&client) {
            return AppError::RateLimited(retry).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_respects_trusted_hops() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.1".parse().unwrap());
        let t = default_trusted_proxies();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(client_key_source(&h, Some(peer), 0, &t), "127.0.0.1");
        assert_eq!(client_key_source(&h, Some(peer), 1, &t), "10.0.0.1");
        assert_eq!(client_key_source(&h, Some(peer), 2, &t), "1.2.3.4");
        assert_eq!(client_key_source(&h, Some(peer), 4, &t), "127.0.0.1");
        let proxy: SocketAddr = "[::ffff:10.1.2.3]:9".parse().unwrap();
        assert_eq!(client_key_source(&h, Some(proxy), 1, &t), "10.0.0.1");
        // A client on the internet that reaches the port directly: its header is ignored.
        let direct: SocketAddr = "203.0.113.9:9".parse().unwrap();
        assert_eq!(client_key_source(&h, Some(direct), 1, &t), "203.0.113.9");
        assert_eq!(client_key_source(&h, None, 1, &t), "unknown");
    }

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let l = Limiter::new(RateLimit { per_minute: 60, burst: 3 });
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
        }
        assert_eq!(l.check("a"), Err(1));
        assert!(l.check("b").is_ok());
        assert!(Limiter::new(RateLimit { per_minute: 0, burst: 0 }).check("a").is_ok());
    }
}
