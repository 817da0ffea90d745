//! Trackers' routes: `/v1/ingest/owntracks`, `/v1/ingest/overland` and
//! `/v1/ingest/osmand`, where the apps people already run send positions with a device
//! token. Each protocol is read by its own module ([`crate::server::trackers`]); here the
//! token is checked, the report held to its device's traveller and rate, and the positions
//! handed to the one write path. Nothing is acknowledged before it is durable, as with
//! `POST /v1/positions`.
//!
//! The checks, each refusing before anything is stored: a token that opens no device is a
//! 401 (revoked ones at once); a device past `--device-rate` is a 429 with `Retry-After`;
//! a report naming another traveller than the token's is a 403. A device token reads
//! nothing but OwnTracks' friends answer, as its traveller. A body that cannot be read is a
//! 400; a fix that reads but is no valid report (off the globe, too far in the future) is
//! counted and answered as taken, since the apps would send it again for ever.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::engine::PositionCounts;
use crate::geometry::LatLon;
use crate::server::AppState;
use crate::server::auth::{basic, bearer};
use crate::server::body::{self, content_type_essence};
use crate::server::dto::OverlandOut;
use crate::server::problem::ApiError;
use crate::server::response::{ApiResult, json_response};
use crate::server::trackers::{Fix, osmand, overland, owntracks};
use crate::travellers::PositionUpdate;

/// The largest OwnTracks or OsmAnd request body (one message; OwnTracks' biggest, a list
/// of waypoints, is a few kilobytes).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How far around the traveller OwnTracks' friends answer looks, metres.
const FRIENDS_RADIUS_M: f64 = 100_000.0;
/// The most travellers the friends answer looks at, nearest first (public ones are
/// skipped: they are not friends).
const FRIENDS_SCANNED: usize = 500;
/// The most friends it names.
const FRIENDS_MAX: usize = 50;
/// The most points an Overland batch may hold (the app sends at most 1,000, its largest
/// "Points per Batch").
const MAX_OVERLAND_POINTS: usize = 1_000;
/// The largest Overland body: 1,000 of the app's points are about 600 kB.
const MAX_OVERLAND_BYTES: usize = 2 * 1024 * 1024;

/// The traveller a device token reports for, and the device's id: the token must open a
/// device (401), and the device must be within its rate (429).
fn open_device(state: &AppState, token: Option<&str>) -> Result<(String, String), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::unauthorized(
            "authorization: send the device token made by POST /v1/travellers/{id}/devices",
        ));
    };
    let Some((traveller, device)) = state.engine.open_device(token) else {
        metrics::counter!("proxima_tokens_refused_total").increment(1);
        return Err(ApiError::unauthorized(
            "authorization: the device token is not valid (it may have been revoked)",
        ));
    };
    if let Err(wait) = state.device_rate.take(device.clone()) {
        metrics::counter!("proxima_rate_limited_total").increment(1);
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Err(ApiError::rate_limited(format!(
            "this device may report {} times a second; retry in {secs} s",
            state.device_rate.per_second
        )));
    }
    Ok((traveller, device))
}

/// Refuses a report naming another traveller than its device's (403), before anything is
/// stored.
fn held_to(traveller: &str, named: &str) -> Result<(), ApiError> {
    if named != traveller {
        return Err(ApiError::forbidden(
            "id: a device token reports only its own traveller's positions",
        ));
    }
    Ok(())
}

/// Stores one fix an app sent alone (OwnTracks, OsmAnd). A fix that reads but is no valid
/// report (a place off the globe, a clock further ahead than `--max-clock-skew`) is
/// counted and answered as taken: these apps send a report again until it is taken, and
/// this one never would be.
async fn store_one(state: &AppState, traveller: &str, fix: Fix) -> Result<(), ApiError> {
    let mut rejected = Vec::new();
    store(state, traveller, [(0, fix)], &mut rejected).await?;
    if let Some((_, why)) = rejected.pop() {
        metrics::counter!("proxima_tracker_reports_refused_total").increment(1);
        tracing::debug!(traveller, why, "a tracker's report was refused");
    }
    Ok(())
}

/// Stores `fixes` (each with its index in the request) as `traveller`'s reports, durably;
/// a fix that is not a valid report is added to `rejected` instead.
async fn store(
    state: &AppState,
    traveller: &str,
    fixes: impl IntoIterator<Item = (usize, Fix)>,
    rejected: &mut Vec<(usize, String)>,
) -> Result<PositionCounts, ApiError> {
    let horizon = state.horizon();
    let mut updates = Vec::new();
    for (i, fix) in fixes {
        let update = PositionUpdate::new(
            traveller.to_owned(),
            fix.lat,
            fix.lon,
            fix.ts,
            fix.accuracy_m,
            None,
        )
        .map_err(|e| e.to_string())
        .and_then(|u| horizon.check(&u).map(|()| u));
        match update {
            Ok(u) => updates.push(u),
            Err(why) => rejected.push((i, why)),
        }
    }
    if updates.is_empty() {
        return Ok(PositionCounts::default());
    }
    let counts = state.engine.update_positions(updates)?.durable().await?;
    metrics::counter!("proxima_position_updates_applied_total").increment(counts.applied as u64);
    Ok(counts)
}

async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    body::check_declared_length(headers, limit as u64)?;
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit as u64))
}

/// `POST /v1/ingest/owntracks`: one OwnTracks message; the answer names the traveller's
/// friends, at most once every [`crate::server::FRIENDS_EVERY`] a device (otherwise `[]`).
/// A refusal for want of credentials asks for Basic auth.
pub async fn owntracks(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match owntracks_answer(&state, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            let mut response = e.into_response();
            if response.status() == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"proxima\""),
                );
            }
            response
        }
    }
}

async fn owntracks_answer(state: &AppState, headers: &HeaderMap, body: Body) -> ApiResult {
    let credentials = basic(headers);
    let (traveller, device) = open_device(
        state,
        credentials.as_ref().map(|(_, password)| password.as_str()),
    )?;
    if let Some((user, _)) = &credentials {
        held_to(&traveller, user)?;
    }
    let bytes = read_body(headers, body, MAX_MESSAGE_BYTES).await?;
    let message = owntracks::parse(&bytes).map_err(|e| ApiError::bad_body(e.to_string()))?;
    let mut at = None;
    if let owntracks::Message::Location(fix) = message {
        store_one(state, &traveller, fix).await?;
        at = LatLon::new(fix.lat, fix.lon).ok();
    }
    let friends = if state.friends_rate.take(device).is_ok() {
        let at = at.or_else(|| {
            state
                .engine
                .traveller(&traveller, Some(&traveller))
                .map(|t| t.at.position)
        });
        at.map_or_else(Vec::new, |at| friends(state, &traveller, at))
    } else {
        Vec::new()
    };
    let mut response = (StatusCode::OK, owntracks::answer(&friends)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// The travellers near `at` whom `traveller` may see and the public may not: those who
/// share with it (as friends, or on a trip it follows). Decided by the one visibility rule,
/// asked twice: as the traveller, and as nobody.
fn friends(state: &AppState, traveller: &str, at: LatLon) -> Vec<owntracks::Friend> {
    state
        .engine
        .nearby_travellers(at, FRIENDS_RADIUS_M, FRIENDS_SCANNED, Some(traveller))
        .into_iter()
        .filter(|hit| hit.at.id != traveller)
        .filter(|hit| state.engine.traveller(&hit.at.id, None).is_none())
        .take(FRIENDS_MAX)
        .map(|hit| owntracks::Friend {
            lat: hit.at.position.lat,
            lon: hit.at.position.lon,
            ts: hit.at.ts,
            id: hit.at.id,
        })
        .collect()
}

/// `POST /v1/ingest/overland`: a batch; `{"result": "ok"}` once it is durable.
pub async fn overland(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult {
    let (traveller, _) = open_device(&state, bearer(&headers))?;
    let limit = state.limits.max_batch_bytes.min(MAX_OVERLAND_BYTES);
    let bytes = read_body(&headers, body, limit).await?;
    let batch = overland::parse(&bytes, MAX_OVERLAND_POINTS).map_err(ApiError::bad_body)?;
    drop(bytes);
    let mut rejected = batch.rejected;
    let counts = store(&state, &traveller, batch.fixes, &mut rejected).await?;
    rejected.sort_unstable_by_key(|(i, _)| *i);
    Ok(json_response(
        StatusCode::OK,
        &OverlandOut::ok(counts.applied + counts.stale, &rejected),
    ))
}

/// `GET` or `POST /v1/ingest/osmand`: one position as parameters (query or form) or as
/// Traccar Client's JSON; 200 with no body once it is durable. The token (a parameter of
/// the URL or the form, or an `Authorization` header) is checked before the report is read.
pub async fn osmand(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let query = query.unwrap_or_default();
    let bytes = read_body(&headers, body, MAX_MESSAGE_BYTES).await?;
    let json = content_type_essence(&headers).as_deref() == Some("application/json");
    let params = || {
        let form: &[u8] = if json { &[] } else { &bytes };
        form_urlencoded::parse(query.as_bytes()).chain(form_urlencoded::parse(form))
    };
    let token = params()
        .find(|(name, _)| name == "token")
        .map(|(_, v)| v.into_owned())
        .or_else(|| bearer(&headers).map(str::to_owned));
    let (traveller, _) = open_device(&state, token.as_deref())?;
    let report = if json {
        osmand::from_json(&bytes, token)
    } else {
        osmand::from_params(params(), state.engine.now_ms())
    }
    .map_err(ApiError::bad_body)?;
    held_to(&traveller, &report.traveller)?;
    if let Some(fix) = report.fix {
        store_one(&state, &traveller, fix).await?;
    }
    Ok(StatusCode::OK.into_response())
}
