//! The accept loop: hyper's HTTP/1.1 connection with a timer, so that a connection that does
//! not finish a request's headers in time is closed, and a cap on open connections.
//!
//! `axum::serve` builds hyper without a timer: a client that sends half a header (or opens a
//! connection and says nothing) kept its connection, and its descriptor, for ever. Here one
//! deadline covers both: it starts when the connection opens or a response is finished, and a
//! request's headers must be complete before it (so it is the idle keep-alive timeout too).

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Limits on connections (not requests: see `ServerConfig` for those).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnLimits {
    /// Time a connection may take to send a request's complete headers, counted from its
    /// opening or from the end of the previous response (so also the idle keep-alive timeout).
    pub header_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in progress.
    pub shutdown_grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Connection counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Closed at once because the cap was reached.
    pub refused: AtomicU64,
}

/// Binds `addr` with a listen backlog of `backlog` (the kernel caps it at `somaxconn`). Tokio's
/// default is 1,024: a burst of more connections overflowed it, and a client whose handshake
/// the kernel had completed waited outside the queue for seconds before the server saw it.
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits up to
/// `limits.shutdown_grace` for connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    stats: Arc<ConnStats>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let last_warning: Mutex<Option<Instant>> = Mutex::new(None);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept: wait a
                    // little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            let mut last = last_warning.lock().expect("warning lock");
            if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                *last = Some(Instant::now());
                tracing::warn!(
                    max_connections = limits.max_connections,
                    refused_so_far = stats.refused.load(Ordering::Relaxed),
                    "connection cap reached: closing new connections at once until some close \
                     (raise --max-connections if this is real traffic)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let stats = stats.clone();
        tokio::spawn(async move {
            // Errors here are the client's (reset, timeout, malformed head): nothing to do.
            let _ = conn.await;
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("connections still open after the shutdown grace; closing them");
        }
    }
}

/// `SocketAddr` of the peer, as the handlers see it (set by [`serve`] on every request).
pub fn peer_of<B>(req: &axum::http::Request<B>) -> Option<SocketAddr> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
