//! The accept loop: HTTP/1.1 connections, and HTTP/2 over cleartext for clients that
//! speak it from the first byte (h2c with prior knowledge: the connection's preface says
//! which), served by hyper with the limits a public server needs, which `axum::serve` does
//! not expose.
//!
//! - **Connections**: at most `max_connections` at once; one more is answered `503` with a
//!   problem+json body and closed, so an overloaded server says so instead of stalling.
//! - **Per address**: at most `max_connections_per_address` from one client address; one
//!   more is answered `429` and closed, so that one client re-opening sockets as fast as
//!   they are cut cannot hold every slot.
//! - **Slow clients**: a connection must deliver a request's headers within
//!   `header_read_timeout` (hyper's timer), so a client trickling bytes cannot hold a
//!   connection; bodies are bounded by the request timeout (imports stream, with an idle
//!   timeout per chunk, see the `body` module).
//! - **Header size**: hyper's read buffer is capped at `max_header_bytes`; larger headers
//!   are refused by hyper with `431` (as problem+json, like every request hyper cannot
//!   parse: see [`super::malformed`]); HTTP/2's header lists are capped at the same size.
//! - **HTTP/2**: at most [`H2_MAX_STREAMS`] requests at once on one connection, each
//!   admitted, limited and timed as an HTTP/1.1 request is.
//! - **Shutdown**: when the signal fires, the listener closes, connections finish their
//!   request in flight, and [`serve`] returns (bounded by a grace period).

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::quota::Quota;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections one client address may hold at once.
    pub max_connections_per_address: usize,
    /// Time a connection has to deliver a request's headers.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
}

/// Requests one HTTP/2 connection may have in flight at once.
pub const H2_MAX_STREAMS: u32 = 128;

/// How long connections get to finish after shutdown begins.
const GRACE: Duration = Duration::from_secs(30);

const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 139\r\n\r\n{\"type\":\"/problems/overloaded\",\"title\":\"Too many connections\",\"status\":503,\"detail\":\"the server is at its connection limit; retry shortly\"}";

const TOO_MANY_FROM_ADDRESS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 152\r\n\r\n{\"type\":\"/problems/too-many-connections\",\"title\":\"Too many connections\",\"status\":429,\"detail\":\"this address holds the most connections one address may\"}";

/// Answers `refusal` on `stream` and closes it, without holding the accept loop.
fn refuse(mut stream: tokio::net::TcpStream, refusal: &'static [u8]) {
    tokio::spawn(async move {
        let _ = stream.write_all(refusal).await;
        let _ = stream.shutdown().await;
    });
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: super::App,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(Quota::<IpAddr>::new(limits.max_connections_per_address));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    // Each connection's task borrows the builder.
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = per_address.take(peer.ip()) else {
            metrics::counter!("proxima_connections_refused_total", "why" => "address").increment(1);
            refuse(stream, TOO_MANY_FROM_ADDRESS);
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("proxima_connections_refused_total", "why" => "limit").increment(1);
            refuse(stream, OVERLOADED);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let service = TowerToHyperService::new(app.clone().for_peer(peer.ip()));
        tokio::spawn(async move {
            let connection = builder.serve_connection(
                TokioIo::new(super::malformed::ProblemOnParseError::new(stream)),
                service,
            );
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusals_are_well_formed_problems() {
        for (refusal, status) in [(OVERLOADED, 503), (TOO_MANY_FROM_ADDRESS, 429)] {
            well_formed(refusal, status);
        }
    }

    fn well_formed(refusal: &[u8], status: u16) {
        let text = std::str::from_utf8(refusal).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.parse().ok())
            .expect("a content length");
        assert_eq!(body.len(), length);
        let problem: serde_json::Value = serde_json::from_str(body.trim_end()).expect("JSON");
        assert_eq!(problem["status"], status);
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
    }
}
