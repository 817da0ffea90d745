//! Trip routes: trips, their followers and share links, and what a follower reads (through
//! [`super::trip_views`]).
//!
//! A trip is changed only by its traveller (its token) or a key with the `write` scope. A
//! token for another traveller gets the same 404 as for a trip that does not exist, so the
//! answer never tells whether someone else's trip id is taken by reading or changing it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;

use super::trip_views::{self, Readable, Reader, no_trip};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::body::JsonObject;
use crate::server::dto::{
    FollowersOut, LinkCreatedOut, LinkIn, LinksOut, TripIn, TripOut, TripPageOut,
};
use crate::server::params::{NoParams, Params, PathId, check_path_ids};
use crate::server::problem::ApiError;
use crate::server::request_id::PeerAddr;
use crate::server::response::{ApiResult, deleted, json_response};
use crate::trips::{Trip, TripRecord};

/// The longest a share link may last: a year.
const MAX_LINK_MS: i64 = 366 * 86_400_000;
/// The most trips a page of a traveller's trips may hold.
const MAX_TRIP_PAGE: usize = 1_000;

/// The trip `id` for a change by `caller`: its traveller's token or a key. Anyone else, and
/// a trip that does not exist, get the same 404.
pub(super) fn trip_for_change(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<TripRecord, ApiError> {
    state
        .engine
        .trip_of(id, caller.traveller.as_deref())
        .ok_or_else(|| no_trip(id))
}

/// `PUT /v1/trips/{id}`.
pub async fn put_trip(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
    JsonObject(input): JsonObject<TripIn>,
) -> ApiResult {
    caller.may_change(&input.traveller, "traveller")?;
    input.check_times().map_err(ApiError::bad_body)?;
    // A trip replaced without `started_at` keeps its start; a new one starts now.
    let existing = state.engine.trip_of(&id, Some(&input.traveller));
    let started_at = input
        .started_at
        .or(existing.map(|r| r.trip.started_at()))
        .unwrap_or_else(|| state.engine.now_ms());
    let trip = Trip::new(id, input.traveller, input.title, started_at, input.ended_at)
        .map_err(|e| ApiError::bad_body(e.to_string()))?;
    let stored = state.engine.put_trip(trip.clone())?.durable().await?;
    let status = if stored.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &TripOut::from(&trip)))
}

/// `GET /v1/trips/{id}?viewer=`.
pub async fn get_trip(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let readable = readable(&state, &caller, &id, &mut params)?;
    params.finish()?;
    let (holder, _) = super::streams::holder_of(&state, &caller, peer.map(|p| p.0));
    trip_views::trip_answer(&state, readable, holder).await
}

/// The trip as the caller's viewer may read it, or 404.
fn readable(
    state: &AppState,
    caller: &Caller,
    id: &str,
    params: &mut Params,
) -> Result<Readable, ApiError> {
    let viewer = caller.viewer(params.viewer()?, "viewer")?;
    Readable::open(&state.engine, id, Reader::Viewer(viewer)).ok_or_else(|| no_trip(id))
}

/// `DELETE /v1/trips/{id}`.
pub async fn delete_trip(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult {
    trip_for_change(&state, &caller, &id)?;
    let written = state.engine.delete_trip(&id)?;
    deleted(written, format!("id: no trip {id:?}")).await
}

/// `GET /v1/travellers/{id}/trips?viewer=&limit=&cursor=`: newest first.
pub async fn traveller_trips(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let viewer = caller.viewer(params.viewer()?, "viewer")?;
    let limit = params
        .optional::<usize>("limit")?
        .unwrap_or(crate::server::params::DEFAULT_LIMIT);
    if !(1..=MAX_TRIP_PAGE).contains(&limit) {
        return Err(ApiError::bad_parameter(format!(
            "limit: between 1 and {MAX_TRIP_PAGE}, got {limit}"
        )));
    }
    let after = params
        .raw("cursor")?
        .map(|c| parse_cursor(&c))
        .transpose()?;
    params.finish()?;
    let visible: Vec<TripRecord> = state.engine.trips_page_of(
        &id,
        viewer.as_deref(),
        after.as_ref().map(|(start, id)| (*start, id.as_str())),
        limit + 1,
    );
    let more = visible.len() > limit;
    let page = &visible[..visible.len().min(limit)];
    let next = more
        .then(|| page.last().map(|r| trip_cursor(&r.trip)))
        .flatten();
    Ok(json_response(StatusCode::OK, &TripPageOut::new(page, next)))
}

/// A page's place in a traveller's trips (newest first): the last trip's start and id.
fn trip_cursor(trip: &Trip) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}:{}",
        trip.started_at(),
        trip.id()
    ))
}

fn parse_cursor(cursor: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::bad_parameter("cursor: not a cursor this list gave");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (start, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((start.parse().map_err(|_| bad())?, id.to_owned()))
}

/// `PUT /v1/trips/{id}/followers/{viewer}`.
pub async fn put_follower(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    Path((id, viewer)): Path<(String, String)>,
) -> ApiResult {
    check_path_ids(&id, ("path", &viewer))?;
    trip_for_change(&state, &caller, &id)?;
    state.engine.add_follower(&id, &viewer)?.durable().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1/trips/{id}/followers/{viewer}`.
pub async fn delete_follower(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    Path((id, viewer)): Path<(String, String)>,
) -> ApiResult {
    check_path_ids(&id, ("path", &viewer))?;
    trip_for_change(&state, &caller, &id)?;
    let written = state.engine.remove_follower(&id, &viewer)?;
    deleted(
        written,
        format!("viewer: {viewer:?} does not follow trip {id:?}"),
    )
    .await
}

/// `GET /v1/trips/{id}/followers`: for the trip's traveller (or a key).
pub async fn followers(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult {
    let record = trip_for_change(&state, &caller, &id)?;
    Ok(json_response(
        StatusCode::OK,
        &FollowersOut::new(&record.followers),
    ))
}

/// `POST /v1/trips/{id}/links`.
pub async fn create_link(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
    JsonObject(input): JsonObject<LinkIn>,
) -> ApiResult {
    trip_for_change(&state, &caller, &id)?;
    if !caller.reads {
        // A link reads the trip, the traveller's live position with it: a write-only
        // credential may not make itself one that reads (as with devices' tokens).
        return Err(ApiError::forbidden(
            "authorization: making a share link needs the read scope as well as write, since its token reads the trip",
        ));
    }
    let now = state.engine.now_ms();
    if input.expires_at <= now {
        return Err(ApiError::bad_body(format!(
            "expires_at: {} is not in the future (now is {now})",
            input.expires_at
        )));
    }
    if input.expires_at - now > MAX_LINK_MS {
        return Err(ApiError::bad_body(format!(
            "expires_at: a link may last at most {} days",
            MAX_LINK_MS / 86_400_000
        )));
    }
    if let (Some(from), Some(to)) = (input.show_from, input.show_to)
        && from > to
    {
        return Err(ApiError::bad_body(format!(
            "show_from: {from} is after show_to {to}"
        )));
    }
    let (written, link, token) =
        state
            .engine
            .create_link(&id, input.expires_at, input.show_from, input.show_to)?;
    written.durable().await?;
    Ok(json_response(
        StatusCode::CREATED,
        &LinkCreatedOut::new(&link, &token),
    ))
}

/// `GET /v1/trips/{id}/links`: never the tokens.
pub async fn links(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult {
    let record = trip_for_change(&state, &caller, &id)?;
    Ok(json_response(StatusCode::OK, &LinksOut::new(&record.links)))
}

/// `DELETE /v1/trips/{id}/links/{link}`.
pub async fn revoke_link(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    Path((id, link)): Path<(String, String)>,
) -> ApiResult {
    check_path_ids(&id, ("path", &link))?;
    trip_for_change(&state, &caller, &id)?;
    let written = state.engine.revoke_link(&id, &link)?;
    deleted(written, format!("link: no link {link:?} of trip {id:?}")).await
}

/// `GET /v1/trips/{id}/route?viewer=&format=&simplify_m=&gap_s=&from=&to=&limit=&cursor=`.
pub async fn route(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let readable = readable(&state, &caller, &id, &mut params)?;
    let (holder, _) = super::streams::holder_of(&state, &caller, peer.map(|p| p.0));
    trip_views::route_answer(&state, readable, holder, params).await
}

/// `GET /v1/trips/{id}/stays?viewer=&radius_m=&min_minutes=`.
pub async fn stays(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let readable = readable(&state, &caller, &id, &mut params)?;
    let (holder, _) = super::streams::holder_of(&state, &caller, peer.map(|p| p.0));
    trip_views::stays_answer(&state, readable, holder, params).await
}

/// `GET /v1/trips/{id}/watch?viewer=`.
pub async fn watch(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
    PathId(id): PathId,
    headers: HeaderMap,
    mut params: Params,
) -> ApiResult {
    let readable = readable(&state, &caller, &id, &mut params)?;
    let slot = super::streams::acquire(&state, &caller, peer.map(|p| p.0), false)?;
    trip_views::watch_answer(&state, readable, &headers, params, slot)
}
