//! Read-your-writes across a cluster's nodes: a request carrying `x-proxima-min-seq` (or
//! `min_seq=`) waits until this node has applied that stream sequence (the
//! `x-proxima-seq` of the client's last write), at most `--max-wait`, then is answered, or
//! gets a 503 with `Retry-After`. On a single node every acknowledged write is applied
//! already, so the wait is nil.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::params::{MIN_SEQ_PARAM, Params};
use super::problem::ApiError;

/// The header naming the sequence to wait for.
const MIN_SEQ_HEADER: &str = "x-proxima-min-seq";

/// What a routed request passes after admission and before its handler: the wait for its
/// `min_seq`, if any. (A write's `Idempotency-Key` is looked at next, by a layer on the
/// write methods themselves: see [`super::idempotency`].)
pub async fn before_handler(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match min_seq(&request) {
        Ok(None) => {}
        Ok(Some(seq)) => {
            if let Some(replicator) = state.replicator()
                && let Err(e) = replicator.wait_for(seq).await
            {
                return ApiError::from(e).into_response();
            }
        }
        Err(problem) => return problem.into_response(),
    }
    next.run(request).await
}

/// The sequence the request asks for, from its header or its query string.
fn min_seq(request: &Request) -> Result<Option<u64>, ApiError> {
    let rule = |text: &str| {
        text.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_parameter(format!(
                "min_seq: expected a non-negative integer (a stream sequence), got {text:?}"
            ))
        })
    };
    if let Some(value) = request.headers().get(MIN_SEQ_HEADER) {
        return rule(value.to_str().unwrap_or("")).map(Some);
    }
    match request.uri().query() {
        Some(query) if query.contains(MIN_SEQ_PARAM) => {
            let mut params = Params::parse(Some(query));
            match params.raw(MIN_SEQ_PARAM)? {
                Some(text) => rule(&text).map(Some),
                None => Ok(None),
            }
        }
        _ => Ok(None),
    }
}
