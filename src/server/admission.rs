//! Admission: what every routed request passes before its handler, as one tower service
//! around each route. The request must have a URL within the length limit, the key and
//! scope its route needs (when keys are configured), room in the key's rate, and a ready
//! server; then its handler runs (under a deadline when it has a body), and the answer is
//! counted and timed ([`super::observe`]).
//!
//! `/healthz` and `/readyz` need no key. Everything else does when keys or tokens are set:
//! `GET` and `HEAD` need `read`, other methods `write`, and `/v1/admin/` routes `admin`. A
//! missing or unknown key or token is a 401, a key or token without the scope a 403, a key
//! past its rate a 429 with `Retry-After` and `RateLimit-*` headers. A traveller token may
//! not write POIs, import, read the server's metrics and stats, or administer (403); what
//! it may do on the other routes, the handlers decide with its [`Caller`].
//!
//! A request let in that asks for a stream sequence (`min_seq`, [`super::consistency`])
//! waits, on a cluster node, until the node has applied it, before its handler runs.
//!
//! The service is written by hand rather than with `axum::middleware::from_fn`, which boxes
//! a future and clones the inner service for every request and every middleware, and each
//! router layer adds one more boxed route around every handler. With it and
//! [`super::request_id`] in place of three `from_fn` layers, a `healthz` request went from
//! 30,124 to 21,529 instructions under callgrind (`scripts/callgrind-requests.sh`); the
//! `min_seq` wait, a fourth `from_fn` layer until then, moved in here too.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tokio::time::Timeout;
use tokio::time::error::Elapsed;
use tower::{Layer, Service, ServiceExt};

use super::AppState;
use super::auth::{Caller, Scope, bearer};
use super::observe;
use super::problem::ApiError;

/// Wraps each route in an [`Admission`].
#[derive(Clone)]
pub struct AdmissionLayer {
    state: AppState,
}

impl AdmissionLayer {
    /// A layer checking requests against `state`'s keys, limits and readiness.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            state: self.state.clone(),
        }
    }
}

/// One route, admitted, counted and timed.
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    state: AppState,
}

/// A handler's answer that waits for the node to apply a sequence first (rare: only a
/// cluster node's requests that name one), boxed, under the deadline if any.
type Waiting = Pin<Box<dyn Future<Output = Result<Response, Elapsed>> + Send>>;

impl<S> Service<Request> for Admission<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AdmissionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = observe::method_label(request.method());
        let stage = match admit(&self.state, &request) {
            Err(refused) => Stage::Refused {
                response: Some(*refused),
            },
            Ok((admitted, caller)) => {
                let mut request = request;
                // Only the routes that ask who is calling get told (an extension costs an
                // allocation on every request), and every request with a traveller token:
                // the handlers hold it to its traveller.
                if caller.traveller.is_some()
                    || needs_caller(request.uri().path())
                    || request.headers().contains_key(super::idempotency::HEADER)
                {
                    request.extensions_mut().insert(caller);
                }
                // On a single node every acknowledged write is applied already: no wait.
                let wait = super::consistency::min_seq(&request)
                    .map(|seq| seq.and_then(|seq| Some((seq, self.state.replicator()?.clone()))));
                match wait {
                    Err(problem) => Stage::Answered {
                        admitted,
                        response: Some(problem.into_response()),
                    },
                    Ok(Some((seq, replicator))) => Stage::Waiting {
                        admitted,
                        handler: self.wait_then_call(replicator, seq, request, admitted.deadline),
                    },
                    Ok(None) => {
                        let handler = self.inner.call(request);
                        match admitted.deadline {
                            None => Stage::Handling { admitted, handler },
                            Some(deadline) => Stage::HandlingByDeadline {
                                admitted,
                                handler: tokio::time::timeout(deadline, handler),
                            },
                        }
                    }
                }
            }
        };
        AdmissionFuture {
            stage,
            started,
            route,
            method,
        }
    }
}

impl<S> Admission<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    /// The handler's answer once this cluster node has applied stream sequence `seq` (a
    /// 503 with `Retry-After` if it has not within `--max-wait`).
    fn wait_then_call(
        &self,
        replicator: Arc<crate::cluster::Replicator>,
        seq: u64,
        request: Request,
        deadline: Option<Duration>,
    ) -> Waiting {
        let inner = self.inner.clone();
        let answer = async move {
            if let Err(e) = replicator.wait_for(seq).await {
                return ApiError::from(e).into_response();
            }
            let Ok(response) = inner.oneshot(request).await;
            response
        };
        match deadline {
            None => Box::pin(async move { Ok(answer.await) }),
            Some(deadline) => Box::pin(tokio::time::timeout(deadline, answer)),
        }
    }
}

pin_project! {
    /// The answer of an [`Admission`].
    pub struct AdmissionFuture<F> {
        #[pin]
        stage: Stage<F>,
        started: Instant,
        route: Option<MatchedPath>,
        method: &'static str,
    }
}

pin_project! {
    #[project = StageProjection]
    enum Stage<F> {
        Refused { response: Option<Response> },
        Answered { admitted: Admitted, response: Option<Response> },
        Handling { admitted: Admitted, #[pin] handler: F },
        Waiting { admitted: Admitted, handler: Waiting },
        HandlingByDeadline { admitted: Admitted, #[pin] handler: Timeout<F> },
    }
}

impl<F> Future for AdmissionFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.stage.project() {
            StageProjection::Refused { response } => response
                .take()
                .expect("an admission future is not polled after it is done"),
            StageProjection::Answered { admitted, response } => {
                let response = response
                    .take()
                    .expect("an admission future is not polled after it is done");
                finish(*admitted, Ok(response))
            }
            StageProjection::Waiting { admitted, handler } => {
                let handled = ready!(handler.as_mut().poll(cx));
                finish(*admitted, handled)
            }
            StageProjection::Handling { admitted, handler } => {
                let Ok(response) = ready!(handler.poll(cx));
                finish(*admitted, Ok(response))
            }
            StageProjection::HandlingByDeadline { admitted, handler } => {
                let handled = ready!(handler.poll(cx)).map(|Ok(response)| response);
                finish(*admitted, handled)
            }
        };
        let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        observe::record(
            route,
            this.method,
            response.status(),
            this.started.elapsed(),
        );
        Poll::Ready(Ok(response))
    }
}

/// Sent with every answer to a rate-limited key (a constant: a header named by a string is
/// parsed again on every insert).
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");

/// The longest request target (path and query) accepted, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The refusal of a request target (path and query) over [`MAX_URI_BYTES`], if it is: for
/// every route here, and for the fallbacks of unknown paths and methods.
pub fn over_url_limit(uri: &axum::http::Uri) -> Option<ApiError> {
    let target_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    (target_len > MAX_URI_BYTES).then(|| ApiError::uri_too_long(MAX_URI_BYTES))
}

/// Whether a route's handler asks who is calling.
fn needs_caller(path: &str) -> bool {
    path.starts_with("/v1/fences")
        || path.starts_with("/v1/trips/")
        || path.ends_with("/trips")
        || path.contains("/devices")
        || path.contains("/privacy-zones")
        || path == "/v1/events"
        || path == "/v1/travellers/watch"
        || path == "/v1/pois/import"
        || super::work::is_heavy_work_path(path)
}

/// The scope a request needs, or `None` for the routes anyone may call.
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    match path {
        "/healthz" | "/readyz" => None,
        // The viewer's files hold no data; the page sends its user's key with each call.
        "/" | "/ui" => None,
        p if p.starts_with("/ui/") => None,
        // A share link's token is the capability: no key (only reads are routed there).
        p if p.starts_with("/v1/shared/") || p.starts_with("/t/") => None,
        // Trackers send a device token, each protocol in its own place: the routes check it
        // (see `routes::ingest`).
        p if p.starts_with("/v1/ingest/") => None,
        p if p.starts_with("/v1/admin/") => Some(Scope::Admin),
        _ if method == Method::GET || method == Method::HEAD => Some(Scope::Read),
        // Queries whose area is too large for a URL: reads, sent with POST.
        "/v1/pois/within" | "/v1/travellers/within" if method == Method::POST => Some(Scope::Read),
        _ => Some(Scope::Write),
    }
}

/// What admission decided for a request it let through.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    /// The key's rate, echoed in `RateLimit-Limit` on the answer.
    pub rate_limit: Option<u32>,
    /// How long the handler may take, if it gets a deadline at all.
    pub deadline: Option<Duration>,
}

/// Decides whether `request` may reach its handler: `Err` is the answer to send instead
/// (boxed: refusals are rare, and the admitted path should not carry a whole response).
fn admit(state: &AppState, request: &Request) -> Result<(Admitted, Caller), Box<Response>> {
    if let Some(refused) = over_url_limit(request.uri()) {
        return Err(Box::new(refused.into_response()));
    }
    let mut rate_limit = None;
    let mut caller = Caller::open();
    let secured = state.keys.is_some() || state.tokens.is_some();
    if let (true, Some(scope)) = (
        secured,
        required_scope(request.method(), request.uri().path()),
    ) {
        let Some(presented) = bearer(request.headers()) else {
            return Err(challenge(ApiError::unauthorized(
                "authorization: send `Authorization: Bearer <key or token>`",
            )));
        };
        let key = state.keys.as_ref().and_then(|keys| keys.lookup(presented));
        if key.is_none() && crate::devices::is_device_token(presented) {
            return Err(device_token_elsewhere(state, presented));
        }
        let Some(key) = key else {
            return admit_token(state, request, presented, scope).map(|caller| {
                let admitted = Admitted {
                    rate_limit: None,
                    deadline: deadline(state, request),
                };
                (admitted, caller)
            });
        };
        caller = Caller {
            key: Some(key.line),
            admin: key.allows(Scope::Admin),
            reads: key.allows(Scope::Read),
            traveller: None,
            owner: key.owner.clone(),
        };
        if !key.allows(scope) {
            let problem =
                ApiError::forbidden(format!("authorization: this key lacks the {scope} scope"));
            return Err(Box::new(problem.into_response()));
        }
        if let Some(rate) = key.rate {
            if let Err(wait) = key.take() {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                metrics::counter!("proxima_rate_limited_total").increment(1);
                let mut response = ApiError::rate_limited(format!(
                    "this key allows {rate} requests per second; retry in {secs} s"
                ))
                .into_response();
                let headers = response.headers_mut();
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                headers.insert(RATELIMIT_LIMIT, HeaderValue::from(rate.get()));
                headers.insert("ratelimit-remaining", HeaderValue::from(0));
                headers.insert("ratelimit-reset", HeaderValue::from(secs));
                return Err(Box::new(response));
            }
            rate_limit = Some(rate.get());
        }
    }
    ready(state, request)?;
    link_rate(state, request)?;
    Ok((
        Admitted {
            rate_limit,
            deadline: deadline(state, request),
        },
        caller,
    ))
}

/// Admits a request whose bearer is not a service key: a traveller token, if tokens are
/// configured, allowed `scope` on this route.
fn admit_token(
    state: &AppState,
    request: &Request,
    presented: &str,
    scope: Scope,
) -> Result<Caller, Box<Response>> {
    let Some(tokens) = &state.tokens else {
        return Err(challenge(ApiError::unauthorized(
            "authorization: the key is not valid",
        )));
    };
    let token = tokens.verify(presented).map_err(|refused| {
        metrics::counter!("proxima_tokens_refused_total").increment(1);
        challenge(ApiError::unauthorized(format!("authorization: {refused}")))
    })?;
    if let Err(why) = token_may_use(request.method(), request.uri().path()) {
        return Err(Box::new(
            ApiError::forbidden(format!("authorization: {why}")).into_response(),
        ));
    }
    if !token.scopes.contains(&scope) {
        return Err(Box::new(
            ApiError::forbidden(format!("authorization: this token's scope lacks {scope}"))
                .into_response(),
        ));
    }
    ready(state, request)?;
    Ok(Caller {
        reads: token.scopes.contains(&Scope::Read),
        ..Caller::traveller(token.traveller)
    })
}

/// The answer to a device token sent to a route other than the trackers': a device token
/// reports positions at `/v1/ingest/…` and reads nothing (403), and one that opens no
/// device is refused as any unknown credential is (401).
fn device_token_elsewhere(state: &AppState, presented: &str) -> Box<Response> {
    if state.engine.open_device(presented).is_none() {
        metrics::counter!("proxima_tokens_refused_total").increment(1);
        return challenge(ApiError::unauthorized(
            "authorization: the device token is not valid (it may have been revoked)",
        ));
    }
    Box::new(
        ApiError::forbidden(
            "authorization: a device token only reports its traveller's positions, at /v1/ingest/owntracks, /v1/ingest/overland or /v1/ingest/osmand",
        )
        .into_response(),
    )
}

/// The routes a traveller token may not use at all, and why.
pub fn token_may_use(method: &Method, path: &str) -> Result<(), &'static str> {
    let is_read = matches!(*method, Method::GET | Method::HEAD);
    match path {
        p if p.starts_with("/v1/admin/") => Err("a traveller token cannot administer"),
        "/metrics" | "/v1/stats" => Err("a traveller token cannot read the server's metrics"),
        "/v1/pois/import" => Err("a traveller token cannot import POIs"),
        p if p.starts_with("/v1/pois/") && p != "/v1/pois/within" && !is_read => {
            Err("a traveller token cannot change POIs")
        }
        _ => Ok(()),
    }
}

/// Refuses a share-link read past its client address's rate (see
/// [`super::link_rate`]).
fn link_rate(state: &AppState, request: &Request) -> Result<(), Box<Response>> {
    let path = request.uri().path();
    if !(path.starts_with("/v1/shared/") || path.starts_with("/t/")) {
        return Ok(());
    }
    let Some(peer) = request.extensions().get::<super::request_id::PeerAddr>() else {
        return Ok(());
    };
    let Err(wait) = state.link_rate.take(peer.0) else {
        return Ok(());
    };
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    metrics::counter!("proxima_rate_limited_total").increment(1);
    let rate = state.link_rate.per_second;
    let mut response = ApiError::rate_limited(format!(
        "share links are read at most {rate} times a second from one address; retry in {secs} s"
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Err(Box::new(response))
}

/// Refuses a `/v1/` request while the data is still loading.
fn ready(state: &AppState, request: &Request) -> Result<(), Box<Response>> {
    if request.uri().path().starts_with("/v1/")
        && !state.ready.load(std::sync::atomic::Ordering::Acquire)
    {
        return Err(Box::new(ApiError::not_ready().into_response()));
    }
    Ok(())
}

/// How long a request's handler may take. Only a request with a body can stall on its
/// client, so only those get a deadline (an import's body has its own idle timeout). A read
/// makes no network I/O after its head has arrived, and a timer could not interrupt its
/// computation anyway; arming and cancelling one per read was measurable at tens of
/// thousands of requests a second.
fn deadline(state: &AppState, request: &Request) -> Option<Duration> {
    let is_import = request.uri().path() == "/v1/pois/import";
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    (!is_import && !is_read).then_some(state.limits.request_timeout)
}

/// The handler's answer as sent: a missed deadline becomes `503 timed-out`, and a limited
/// key's rate is echoed.
fn finish(admitted: Admitted, handled: Result<Response, Elapsed>) -> Response {
    let mut response = handled.unwrap_or_else(|_| {
        ApiError::timed_out(admitted.deadline.unwrap_or_default()).into_response()
    });
    if let Some(limit) = admitted.rate_limit {
        response
            .headers_mut()
            .insert(RATELIMIT_LIMIT, HeaderValue::from(limit));
    }
    response
}

fn challenge(problem: ApiError) -> Box<Response> {
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Box::new(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_the_scope_of_what_they_do() {
        assert_eq!(required_scope(&Method::GET, "/healthz"), None);
        assert_eq!(required_scope(&Method::GET, "/readyz"), None);
        assert_eq!(
            required_scope(&Method::GET, "/v1/pois/nearby"),
            Some(Scope::Read)
        );
        assert_eq!(required_scope(&Method::GET, "/metrics"), Some(Scope::Read));
        assert_eq!(
            required_scope(&Method::PUT, "/v1/pois/a"),
            Some(Scope::Write)
        );
        assert_eq!(
            required_scope(&Method::POST, "/v1/admin/snapshot"),
            Some(Scope::Admin)
        );
        assert_eq!(
            required_scope(&Method::POST, "/v1/pois/within"),
            Some(Scope::Read),
            "a polygon query is a read"
        );
        assert_eq!(
            required_scope(&Method::POST, "/v1/travellers/within"),
            Some(Scope::Read)
        );
    }
}
