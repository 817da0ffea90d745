//! Traveller routes: position reports (one or a batch), lookups, trails, nearby, sharing
//! and deletes.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use crate::geometry::MAX_RADIUS_M;
use crate::ids::validate_id;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::body;
use crate::server::body::JsonObject;
use crate::server::dto::{
    BatchOut, NearbyTravellersOut, PositionIn, SharingIn, SharingOut, TrailOut,
    TravellerAreaQueryIn, TravellerAtPageOut, TravellerOut,
};
use crate::server::params::{NoParams, Params, PathId, limit};
use crate::server::positions;
use crate::server::problem::ApiError;
use crate::server::request_id::PeerAddr;
use crate::server::response::{ApiResult, deleted, json_response, json_static_response};
use crate::travellers::{PositionUpdate, Sharing, UpdateOutcome};

/// Batches larger than this are applied on a blocking thread, so that one large batch does
/// not hold up an async worker.
const INLINE_BATCH_MAX: usize = 4_096;

fn not_visible(id: &str) -> ApiError {
    ApiError::not_found(format!("id: no traveller {id:?} visible to this viewer"))
}

/// `PUT /v1/travellers/{id}/position`.
pub async fn put_position(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
    JsonObject(input): JsonObject<PositionIn>,
) -> ApiResult {
    caller.may_change(&id, "id")?;
    let update = PositionUpdate::new(
        id,
        input.lat,
        input.lon,
        input.ts,
        input.accuracy_m,
        input.trip_id,
    )
    .map_err(|e| ApiError::bad_body(e.to_string()))?;
    state.horizon().check(&update).map_err(ApiError::bad_body)?;
    let applied = state.engine.update_position(update)?.durable().await? == UpdateOutcome::Applied;
    metrics::counter!("proxima_position_updates_applied_total").increment(u64::from(applied));
    Ok(json_static_response(
        StatusCode::OK,
        if applied {
            r#"{"applied":true}"#
        } else {
            r#"{"applied":false}"#
        },
    ))
}

/// `POST /v1/positions`: a batch, NDJSON or a JSON array.
pub async fn post_positions(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let format = positions::format_of(&headers)?;
    let limit = state.limits.max_batch_bytes;
    body::check_declared_length(&headers, limit as u64)?;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit as u64))?;
    let batch = positions::parse(&bytes, format, state.horizon())?;
    drop(bytes);
    // A traveller token reports for its own traveller only: one report for another refuses
    // the whole batch, before any of it is applied.
    for update in &batch.updates {
        caller.may_change(&update.id, "id")?;
    }
    let engine = state.engine.clone();
    let updates = batch.updates;
    let written = if updates.len() <= INLINE_BATCH_MAX {
        engine.update_positions(updates)?
    } else {
        tokio::task::spawn_blocking(move || engine.update_positions(updates))
            .await
            .map_err(|e| ApiError::internal("position batch panicked", &e))??
    };
    let counts = written.durable().await?;
    metrics::counter!("proxima_position_updates_applied_total").increment(counts.applied as u64);
    let out = BatchOut::new(
        counts.applied,
        counts.stale,
        &batch.rejected,
        batch.rejected_total,
    );
    Ok(json_response(StatusCode::OK, &out))
}

/// `GET /v1/travellers/{id}?viewer=`.
pub async fn get_traveller(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let viewer = caller.viewer(params.viewer()?, "viewer")?;
    params.finish()?;
    let traveller = state
        .engine
        .traveller(&id, viewer.as_deref())
        .ok_or_else(|| not_visible(&id))?;
    Ok(json_response(
        StatusCode::OK,
        &TravellerOut::from(&traveller),
    ))
}

/// `GET /v1/travellers/{id}/trail?viewer=&since=`.
pub async fn trail(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let viewer = caller.viewer(params.viewer()?, "viewer")?;
    let since = params.optional::<i64>("since")?.unwrap_or(i64::MIN);
    params.finish()?;
    let points = state
        .engine
        .trail(&id, viewer.as_deref(), since)
        .ok_or_else(|| not_visible(&id))?;
    Ok(json_response(StatusCode::OK, &TrailOut::new(&id, &points)))
}

/// `GET /v1/travellers/nearby?lat=&lon=&radius_m=&limit=&viewer=`.
pub async fn nearby(
    State(state): State<AppState>,
    caller: Caller,
    mut params: Params,
) -> ApiResult {
    let center = params.center()?;
    let radius_m = params.radius()?.unwrap_or(MAX_RADIUS_M);
    let limit = params.limit()?;
    let viewer = caller.viewer(params.viewer()?, "viewer")?;
    params.finish()?;
    let hits = state
        .engine
        .nearby_travellers(center, radius_m, limit, viewer.as_deref());
    Ok(json_response(
        StatusCode::OK,
        &NearbyTravellersOut::from(hits.as_slice()),
    ))
}

/// `PUT /v1/travellers/{id}/sharing`.
pub async fn put_sharing(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
    JsonObject(input): JsonObject<SharingIn>,
) -> ApiResult {
    caller.may_change(&id, "id")?;
    let sharing = Sharing::new(input.visibility, input.viewers)
        .map_err(|e| ApiError::bad_body(e.to_string()))?;
    let body = json_response(StatusCode::OK, &SharingOut::new(&id, &sharing));
    state.engine.set_sharing(&id, sharing)?.durable().await?;
    Ok(body)
}

/// `DELETE /v1/travellers/{id}`.
pub async fn delete_traveller(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult {
    caller.may_change(&id, "id")?;
    let written = state.engine.delete_traveller(&id)?;
    deleted(written, format!("id: no traveller {id:?}")).await
}

/// `POST /v1/travellers/within`: live travellers inside an area that `viewer` may see, by id.
pub async fn within_area(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
    JsonObject(input): JsonObject<TravellerAreaQueryIn>,
) -> ApiResult {
    if let Some(v) = &input.viewer {
        validate_id(v).map_err(|e| ApiError::bad_body(format!("viewer: {e}")))?;
    }
    let viewer = caller.viewer(input.viewer, "viewer")?;
    let limit = limit(input.limit).map_err(ApiError::bad_body)?;
    // Checking a large area, and a query over it, are work in proportion to its size: off
    // the async workers.
    let engine = state.engine.clone();
    let max_vertices = state.limits.max_area_vertices;
    let (holder, _) = super::streams::holder_of(&state, &caller, peer.map(|p| p.0));
    let page = crate::server::work::off_the_workers(&holder, move || {
        let area = input
            .area
            .into_area(max_vertices)
            .map_err(|e| ApiError::bad_body(format!("area.{e}")))?;
        Ok(engine.travellers_within(&area, viewer.as_deref(), limit, input.cursor.as_deref())?)
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &TravellerAtPageOut::new(&page.travellers, page.next_cursor.as_deref()),
    ))
}
