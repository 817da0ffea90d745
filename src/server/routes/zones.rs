//! A traveller's privacy zones: only the traveller itself (its token) or a key may put,
//! read, list and delete them; a token for another traveller gets a 403 before anything is
//! looked up, so nobody learns whether someone else has a zone, let alone where.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::body::JsonObject;
use crate::server::dto::{PrivacyZoneIn, PrivacyZoneOut, PrivacyZonesOut};
use crate::server::params::{NoParams, PathId, check_path_ids};
use crate::server::problem::ApiError;
use crate::server::response::{ApiResult, deleted, json_response};
use crate::zones::MAX_ZONE_VERTICES;

/// Both ids well formed, and the caller the traveller itself or a key.
fn owned(caller: &Caller, id: &str, zone: &str) -> Result<(), ApiError> {
    check_path_ids(id, ("zone", zone))?;
    caller.may_change(id, "id")
}

fn no_zone_detail(id: &str, zone: &str) -> String {
    format!("zone: no privacy zone {zone:?} of traveller {id:?}")
}

fn no_zone(id: &str, zone: &str) -> ApiError {
    ApiError::not_found(no_zone_detail(id, zone))
}

/// `PUT /v1/travellers/{id}/privacy-zones/{zone}`: 201 when made, 200 when replaced. What
/// the traveller has stored already is hidden by it from now on.
pub async fn put_zone(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    Path((id, zone)): Path<(String, String)>,
    JsonObject(input): JsonObject<PrivacyZoneIn>,
) -> ApiResult {
    owned(&caller, &id, &zone)?;
    let max_vertices = state.limits.max_area_vertices.min(MAX_ZONE_VERTICES);
    let area = input
        .area
        .into_area(max_vertices)
        .map_err(|e| ApiError::bad_body(format!("area.{e}")))?;
    let written = state.engine.put_privacy_zone(&id, &zone, area)?;
    let created = written.durable().await?.created;
    let stored = state
        .engine
        .privacy_zone(&id, &zone)
        .ok_or_else(|| no_zone(&id, &zone))?;
    Ok(json_response(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &PrivacyZoneOut::from(&stored),
    ))
}

/// `GET /v1/travellers/{id}/privacy-zones/{zone}`.
pub async fn get_zone(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    Path((id, zone)): Path<(String, String)>,
) -> ApiResult {
    owned(&caller, &id, &zone)?;
    let stored = state
        .engine
        .privacy_zone(&id, &zone)
        .ok_or_else(|| no_zone(&id, &zone))?;
    Ok(json_response(
        StatusCode::OK,
        &PrivacyZoneOut::from(&stored),
    ))
}

/// `GET /v1/travellers/{id}/privacy-zones`: by id.
pub async fn zones(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult {
    caller.may_change(&id, "id")?;
    let zones = state.engine.privacy_zones_of(&id);
    Ok(json_response(
        StatusCode::OK,
        &PrivacyZonesOut {
            results: zones.iter().map(PrivacyZoneOut::from).collect(),
        },
    ))
}

/// `DELETE /v1/travellers/{id}/privacy-zones/{zone}`.
pub async fn delete_zone(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    Path((id, zone)): Path<(String, String)>,
) -> ApiResult {
    owned(&caller, &id, &zone)?;
    let written = state.engine.delete_privacy_zone(&id, &zone)?;
    deleted(written, no_zone_detail(&id, &zone)).await
}
