//! Share-link routes: a trip read with no key, by whoever holds a link's token, limited to
//! the link's window (`/v1/shared/{token}`, `/route`, `/stays`, `/watch`), and the
//! follower's page (`/t/{token}`).
//!
//! An unknown, expired or revoked token gets 404, at once (a revoked link's streams end).
//! The token travels in the path, so the page is sent with `Referrer-Policy: no-referrer`:
//! a map tile server it loads never learns the token.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::trip_views::{self, Readable, Reader};
use crate::server::AppState;
use crate::server::params::{NoParams, Params};
use crate::server::problem::ApiError;
use crate::server::request_id::PeerAddr;
use crate::server::response::ApiResult;
use crate::server::sse::StreamHolder;

fn no_link() -> ApiError {
    ApiError::not_found("token: no such link, or it has expired or been revoked")
}

fn open(state: &AppState, token: String) -> Result<Readable, ApiError> {
    let id = state
        .engine
        .open_link(&token)
        .map(|(record, _)| record.trip.id().to_owned())
        .ok_or_else(no_link)?;
    Readable::open(&state.engine, &id, Reader::Link(token)).ok_or_else(no_link)
}

/// Who a link's reader is counted as, for its streams and heavy work: its address where
/// known, else the link (a family of followers).
fn holder(peer: Option<axum::Extension<PeerAddr>>, token: &str) -> StreamHolder {
    match peer {
        Some(peer) => StreamHolder::address(peer.0.0),
        // The token's first characters (any token: this runs before it is checked).
        None => StreamHolder::Owner(
            format!("link:{}", token.chars().take(11).collect::<String>()).into(),
        ),
    }
}

/// `GET /v1/shared/{token}`: the trip and its figures over the link's window.
pub async fn trip(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerAddr>>,
    _: NoParams,
    Path(token): Path<String>,
) -> ApiResult {
    let holder = holder(peer, &token);
    let readable = open(&state, token)?;
    trip_views::trip_answer(&state, readable, holder).await
}

/// `GET /v1/shared/{token}/route`.
pub async fn route(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerAddr>>,
    Path(token): Path<String>,
    params: Params,
) -> ApiResult {
    let holder = holder(peer, &token);
    let readable = open(&state, token)?;
    trip_views::route_answer(&state, readable, holder, params).await
}

/// `GET /v1/shared/{token}/stays`.
pub async fn stays(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerAddr>>,
    Path(token): Path<String>,
    params: Params,
) -> ApiResult {
    let holder = holder(peer, &token);
    let readable = open(&state, token)?;
    trip_views::stays_answer(&state, readable, holder, params).await
}

/// `GET /v1/shared/{token}/watch`: streams are counted per link (a family of followers),
/// within the server's limit.
pub async fn watch(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerAddr>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> ApiResult {
    let readable = open(&state, token.clone())?;
    let holder = holder(peer, &token);
    let slot = super::streams::acquire_as(&state, holder, "this address", false)?;
    trip_views::watch_answer(&state, readable, &headers, params, slot)
}

/// `GET /t/{token}`: the follower's page, or 404 for a link that does not open.
pub async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    if state.engine.open_link(&token).is_none() {
        let mut response = (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><meta charset=utf-8><title>Link not found</title><p>This link does not exist, has expired, or was revoked.</p>",
        )
            .into_response();
        private(&mut response);
        return response;
    }
    let mut response = crate::server::ui::file_response("trip.html", &headers);
    private(&mut response);
    response
}

/// Keeps the token out of referrers and caches.
fn private(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
