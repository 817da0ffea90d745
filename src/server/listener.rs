//! The accept loop: HTTP/1.1 connections served by hyper with the limits a public server
//! needs, which `axum::serve` does not expose.
//!
//! - **Connections**: at most `max_connections` at once; one more is answered `503` with a
//!   problem+json body and closed, so an overloaded server says so instead of stalling.
//! - **Slow clients**: a connection must deliver a request's headers within
//!   `header_read_timeout` (hyper's timer), so a client trickling bytes cannot hold a
//!   connection; bodies are bounded by the request timeout (imports stream, with an idle
//!   timeout per chunk, see the `body` module).
//! - **Header size**: hyper's read buffer is capped at `max_header_bytes`; larger headers
//!   are refused by hyper with `431`.
//! - **Shutdown**: when the signal fires, the listener closes, connections finish their
//!   request in flight, and [`serve`] returns (bounded by a grace period).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a connection has to deliver a request's headers.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
}

/// How long connections get to finish after shutdown begins.
const GRACE: Duration = Duration::from_secs(30);

const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 139\r\n\r\n{\"type\":\"/problems/overloaded\",\"title\":\"Too many connections\",\"status\":503,\"detail\":\"the server is at its connection limit; retry shortly\"}";

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: super::App,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    loop {
        let (mut stream, _) = tokio::select! {
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
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("proxima_connections_refused_total").increment(1);
            tokio::spawn(async move {
                let _ = stream.write_all(OVERLOADED).await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
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
    fn the_overload_answer_is_a_well_formed_problem() {
        let text = std::str::from_utf8(OVERLOADED).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.parse().ok())
            .expect("a content length");
        assert_eq!(body.len(), length);
        let problem: serde_json::Value = serde_json::from_str(body.trim_end()).expect("JSON");
        assert_eq!(problem["status"], 503);
    }
}
