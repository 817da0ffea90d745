//! What every request passes before its handler: the URL length limit, the key and its
//! scope (when keys are configured), the key's rate, and readiness.
//!
//! `/healthz` and `/readyz` need no key. Everything else does when keys are set: `GET` and
//! `HEAD` need `read`, other methods `write`, and `/v1/admin/` routes `admin`. A missing or
//! unknown key is a 401, a key without the scope a 403, a key past its rate a 429 with
//! `Retry-After` and `RateLimit-*` headers.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::Scope;
use super::problem::ApiError;

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

/// The middleware.
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let target_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target_len > MAX_URI_BYTES {
        return ApiError::uri_too_long(MAX_URI_BYTES).into_response();
    }
    let mut rate_limit = None;
    if let (Some(keys), Some(scope)) = (
        &state.keys,
        required_scope(request.method(), request.uri().path()),
    ) {
        let Some(token) = bearer(request.headers()) else {
            return challenge(ApiError::unauthorized(
                "authorization: send `Authorization: Bearer <key>`",
            ));
        };
        let Some(key) = keys.lookup(token) else {
            return challenge(ApiError::unauthorized(
                "authorization: the key is not valid",
            ));
        };
        if !key.allows(scope) {
            return ApiError::forbidden(format!("authorization: this key lacks the {scope} scope"))
                .into_response();
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
                headers.insert("ratelimit-limit", HeaderValue::from(rate.get()));
                headers.insert("ratelimit-remaining", HeaderValue::from(0));
                headers.insert("ratelimit-reset", HeaderValue::from(secs));
                return response;
            }
            rate_limit = Some(rate.get());
        }
    }
    if request.uri().path().starts_with("/v1/")
        && !state.ready.load(std::sync::atomic::Ordering::Acquire)
    {
        return ApiError::not_ready().into_response();
    }
    // Only a request with a body can stall on its client, so only those get a timer (an
    // import's body has its own idle timeout). A read makes no network I/O after its head
    // has arrived, and a timer could not interrupt its computation anyway; arming and
    // cancelling one per read was measurable at tens of thousands of requests a second.
    let is_import = request.uri().path() == "/v1/pois/import";
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    let mut response = if is_import || is_read {
        next.run(request).await
    } else {
        match tokio::time::timeout(state.limits.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::timed_out(state.limits.request_timeout).into_response(),
        }
    };
    if let Some(limit) = rate_limit {
        response
            .headers_mut()
            .insert("ratelimit-limit", HeaderValue::from(limit));
    }
    response
}

fn challenge(problem: ApiError) -> Response {
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
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
