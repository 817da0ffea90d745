//! Writing answers: JSON bodies (serialized, written by hand, or constant), and the answer
//! to a delete. Every handler's result type is [`ApiResult`].

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::problem::ApiError;
use crate::engine::{Removed, Written};

/// What every handler returns: an answer, or a problem.
pub type ApiResult = Result<Response, ApiError>;

/// `value` as a JSON answer.
pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    json_bytes_response(status, json_bytes(value))
}

/// `value` as JSON bytes, written into one buffer sized for a typical page of results (so
/// that a page of 20 travellers does not grow it five times over). Pages of POIs, the
/// hottest answers, are written by hand instead ([`super::dto::PageOut::to_json`]).
fn json_bytes(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4096);
    serde_json::to_writer(&mut bytes, value).expect("response types always serialize");
    bytes
}

/// A JSON answer from bytes already written.
pub fn json_bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    json_body_response(status, Body::from(bytes))
}

/// A JSON answer whose body is a constant: no serializing and no copy.
pub fn json_static_response(status: StatusCode, json: &'static str) -> Response {
    json_body_response(status, Body::from(json))
}

/// Built by hand: going through `IntoResponse` for a `(status, headers, body)` tuple
/// validated and copied the content type's value on every request.
fn json_body_response(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer to a delete, once it is durable: 204, or 404 with `missing` if there was
/// nothing to delete.
pub async fn deleted(written: Written<Removed>, missing: String) -> ApiResult {
    if written.durable().await?.existed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(missing))
    }
}
