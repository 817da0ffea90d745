//! Read-your-writes across a cluster's nodes: a request carrying `x-proxima-min-seq` (or
//! `min_seq=`) waits until this node has applied that stream sequence (the
//! `x-proxima-seq` of the client's last write), at most `--max-wait`, then is answered, or
//! gets a 503 with `Retry-After`. On a single node every acknowledged write is applied
//! already, so the wait is nil.

use axum::extract::Request;
use axum::http::HeaderName;

use super::params::{MIN_SEQ_PARAM, Params};
use super::problem::ApiError;

/// The header naming the sequence to wait for (a constant: a header named by a string is
/// parsed again on every lookup).
const MIN_SEQ_HEADER: HeaderName = HeaderName::from_static("x-proxima-min-seq");

/// The sequence the request asks to wait for, from its header or its query string: taken
/// by [`super::admission`] once a request is let in, which waits for it on a cluster node
/// (on a single node every acknowledged write is applied already). A write's
/// `Idempotency-Key` is looked at next, by a layer on the write methods themselves: see
/// [`super::idempotency`].
pub fn min_seq(request: &Request) -> Result<Option<u64>, ApiError> {
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
