//! The tower service around the whole router that gives every request an id and a tracing
//! span, returns the id in `x-request-id`, and logs each answer: at WARN for a server
//! error nobody expected, at debug otherwise. In a cluster it also returns the stream
//! sequence of what the request wrote, in `x-proxima-seq`.
//!
//! The id is the client's `x-request-id` if it is short and printable, so that a request can
//! be followed across services; otherwise a counter, in hex. It wraps the router from
//! outside (see [`super::router`]) rather than as a router layer, which axum would box and
//! clone again on every route for every request.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use axum::http::{HeaderName, HeaderValue, Request};
use axum::response::Response;
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tower::Service;
use tracing::Instrument;
use tracing::instrument::Instrumented;

use super::problem::ExpectedUnavailable;
use crate::cluster::WRITE_SEQ;

/// The header that carries the stream sequence of a cluster write.
const SEQ_HEADER: HeaderName = HeaderName::from_static("x-proxima-seq");
/// The header that carries the id, both ways.
const HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// The longest client id kept; a longer one is replaced by a generated one.
const MAX_CLIENT_ID_BYTES: usize = 64;

/// `inner`, with a request id and span for every request.
#[derive(Clone)]
pub struct RequestId<S> {
    inner: S,
    /// The client's address, on a connection's own copy.
    peer: Option<std::net::IpAddr>,
}

/// The client's address, told to the routes that count streams by it (on an open server,
/// where there is no key to count them by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::IpAddr);

impl<S> RequestId<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner, peer: None }
    }

    /// This service for a connection from `peer`.
    pub fn for_peer(mut self, peer: std::net::IpAddr) -> Self {
        self.peer = Some(peer);
        self
    }
}

/// Whether a path opens an event stream or a live map.
pub fn is_stream_path(path: &str) -> bool {
    path == "/v1/events"
        || path == "/v1/travellers/watch"
        || (path.starts_with("/v1/fences/") && path.ends_with("/events"))
        || (path.starts_with("/v1/trips/") && path.ends_with("/watch"))
}

/// Whether a path's route counts its client by address: the streams (on an open server),
/// the share-link reads, which need no key (see [`super::link_rate`]), and the routes of
/// heavy work (on an open server; see [`super::work`]).
fn is_counted_by_address(path: &str) -> bool {
    is_stream_path(path)
        || path.starts_with("/v1/shared/")
        || path.starts_with("/t/")
        || super::work::is_heavy_work_path(path)
}

impl<S, B> Service<Request<B>> for RequestId<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Only the routes that count by address are told it (an extension costs an
        // allocation).
        if let Some(peer) = self.peer
            && is_counted_by_address(request.uri().path())
        {
            request.extensions_mut().insert(PeerAddr(peer));
        }
        let id = request
            .headers()
            .get(&HEADER)
            .filter(|v| is_usable_client_id(v.as_bytes()))
            .cloned()
            .unwrap_or_else(generated_id);
        let span = tracing::debug_span!(
            "request",
            id = id.to_str().unwrap_or_default(),
            method = %request.method(),
            path = %request.uri().path(),
        );
        RequestIdFuture {
            inner: WRITE_SEQ.scope(
                Cell::new(0),
                self.inner.call(request).instrument(span.clone()),
            ),
            span,
            id: Some(id),
        }
    }
}

pin_project! {
    /// The answer of a [`RequestId`].
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: TaskLocalFuture<Cell<u64>, Instrumented<F>>,
        span: tracing::Span,
        id: Option<HeaderValue>,
    }
}

impl<F> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(mut response) = ready!(self.as_mut().project().inner.poll(cx));
        let status = response.status();
        let expected = response.extensions().get::<ExpectedUnavailable>().is_some();
        let seq = self
            .as_mut()
            .project()
            .inner
            .take_value()
            .map_or(0, |seq| seq.get());
        if seq > 0 {
            response
                .headers_mut()
                .insert(SEQ_HEADER, HeaderValue::from(seq));
        }
        self.span.in_scope(|| {
            if status.is_server_error() && !expected {
                tracing::warn!(%status, "request failed");
            } else {
                tracing::debug!(%status, "request done");
            }
        });
        if let Some(id) = self.project().id.take() {
            response.headers_mut().insert(HEADER, id);
        }
        Poll::Ready(Ok(response))
    }
}

/// Whether a client's id is kept: 1 to 64 visible ASCII characters.
fn is_usable_client_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_CLIENT_ID_BYTES && id.iter().all(u8::is_ascii_graphic)
}

/// The next id of this process, in lower-case hex.
fn generated_id() -> HeaderValue {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    HeaderValue::from_bytes(&digits[start..]).expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_hex() {
        let a = generated_id();
        let b = generated_id();
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit), "{id:?}");
        }
    }

    #[test]
    fn only_short_printable_client_ids_are_kept() {
        assert!(is_usable_client_id(b"abc-123"));
        assert!(is_usable_client_id(&[b'x'; 64]));
        assert!(!is_usable_client_id(&[b'x'; 65]));
        assert!(!is_usable_client_id(b""));
        assert!(!is_usable_client_id(b"has space"));
        assert!(!is_usable_client_id("caf\u{e9}".as_bytes()));
    }
}
