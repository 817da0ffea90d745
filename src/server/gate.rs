//! What every request passes before its handler: the URL length limit, the key and its
//! scope (when keys are configured), the key's rate, and readiness. [`super::guard`] runs
//! it for every routed request.
//!
//! `/healthz` and `/readyz` need no key. Everything else does when keys are set: `GET` and
//! `HEAD` need `read`, other methods `write`, and `/v1/admin/` routes `admin`. A missing or
//! unknown key is a 401, a key without the scope a 403, a key past its rate a 429 with
//! `Retry-After` and `RateLimit-*` headers.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use tokio::time::error::Elapsed;

use super::AppState;
use super::auth::Scope;
use super::problem::ApiError;

/// Sent with every answer to a rate-limited key (a constant: a header named by a string is
/// parsed again on every insert).
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");

/// The longest request target (path and query) accepted, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The scope a request needs, or `None` for the routes anyone may call.
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    match path {
        "/healthz" | "/readyz" => None,
        p if p.starts_with("/v1/admin/") => Some(Scope::Admin),
        _ if method == Method::GET || method == Method::HEAD => Some(Scope::Read),
        _ => Some(Scope::Write),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// What the gate decided for a request it let through.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    /// The key's rate, echoed in `RateLimit-Limit` on the answer.
    pub rate_limit: Option<u32>,
    /// How long the handler may take, if it gets a deadline at all.
    pub deadline: Option<Duration>,
}

/// Decides whether `request` may reach its handler: `Err` is the answer to send instead
/// (boxed: refusals are rare, and the admitted path should not carry a whole response).
pub fn admit(state: &AppState, request: &Request) -> Result<Admitted, Box<Response>> {
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target_len > MAX_URI_BYTES {
        return Err(Box::new(
            ApiError::uri_too_long(MAX_URI_BYTES).into_response(),
        ));
    }
    let mut rate_limit = None;
    if let (Some(keys), Some(scope)) = (
        &state.keys,
        required_scope(request.method(), request.uri().path()),
    ) {
        let Some(token) = bearer(request.headers()) else {
            return Err(challenge(ApiError::unauthorized(
                "authorization: send `Authorization: Bearer <key>`",
            )));
        };
        let Some(key) = keys.lookup(token) else {
            return Err(challenge(ApiError::unauthorized(
                "authorization: the key is not valid",
            )));
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
    if request.uri().path().starts_with("/v1/")
        && !state.ready.load(std::sync::atomic::Ordering::Acquire)
    {
        return Err(Box::new(ApiError::not_ready().into_response()));
    }
    // Only a request with a body can stall on its client, so only those get a deadline (an
    // import's body has its own idle timeout). A read makes no network I/O after its head
    // has arrived, and a timer could not interrupt its computation anyway; arming and
    // cancelling one per read was measurable at tens of thousands of requests a second.
    let is_import = request.uri().path() == "/v1/pois/import";
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    Ok(Admitted {
        rate_limit,
        deadline: (!is_import && !is_read).then_some(state.limits.request_timeout),
    })
}

/// The handler's answer as sent: a missed deadline becomes `503 timed-out`, and a limited
/// key's rate is echoed.
pub fn finish(admitted: Admitted, handled: Result<Response, Elapsed>) -> Response {
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
    }
}
