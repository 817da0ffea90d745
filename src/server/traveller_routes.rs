//! Traveller and heatmap route handlers: parse, one engine call, answer.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::body;
use super::params::Params;
use super::positions::{self, PositionIn};
use super::problem::ApiError;
use super::routes::{deleted, durable, json_response, json_static_response, parse_bbox, path_id};
use crate::engine::HeatmapLayer;
use crate::geometry::{LatLon, MAX_RADIUS_M};
use crate::ids::validate_id;
use crate::travellers::{PositionUpdate, Sharing, Visibility};

type ApiResult = Result<Response, ApiError>;

/// Batches larger than this are applied on a blocking thread, so that one large batch does
/// not hold up an async worker.
const INLINE_BATCH_MAX: usize = 4_096;

fn viewer(params: &mut Params) -> Result<Option<String>, ApiError> {
    let viewer = params.raw("viewer")?;
    if let Some(v) = &viewer {
        validate_id(v).map_err(|e| ApiError::bad_parameter(format!("viewer: {e}")))?;
    }
    Ok(viewer)
}

fn not_visible(id: &str) -> ApiError {
    ApiError::not_found(format!("id: no traveller {id:?} visible to this viewer"))
}

/// `PUT /v1/travellers/{id}/position`.
pub async fn put_position(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = path_id(path)?;
    let input: PositionIn = body::json_object(&headers, body, state.limits.max_body_bytes).await?;
    let update = PositionUpdate::new(
        id,
        input.lat,
        input.lon,
        input.ts,
        input.accuracy_m,
        input.trip_id,
    )
    .map_err(|e| ApiError::bad_body(e.to_string()))?;
    let ((applied, _), ticket) = state.engine.update_positions(vec![update])?;
    metrics::counter!("proxima_position_updates_applied_total").increment(applied as u64);
    durable(ticket).await?;
    Ok(json_static_response(
        StatusCode::OK,
        if applied == 1 {
            r#"{"applied":true}"#
        } else {
            r#"{"applied":false}"#
        },
    ))
}

#[derive(Serialize)]
struct Rejection<'a> {
    index: usize,
    reason: &'a str,
}

/// `POST /v1/positions`: a batch, NDJSON or a JSON array.
pub async fn post_positions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let format = positions::format_of(&headers)?;
    let limit = state.limits.max_batch_bytes;
    body::check_declared_length(&headers, limit as u64)?;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit as u64))?;
    let batch = positions::parse(&bytes, format)?;
    drop(bytes);
    let engine = state.engine.clone();
    let updates = batch.updates;
    let ((accepted, stale), ticket) = if updates.len() <= INLINE_BATCH_MAX {
        engine.update_positions(updates)?
    } else {
        tokio::task::spawn_blocking(move || engine.update_positions(updates))
            .await
            .map_err(|e| ApiError::internal("position batch panicked", &e))??
    };
    durable(ticket).await?;
    metrics::counter!("proxima_position_updates_applied_total").increment(accepted as u64);
    let rejected: Vec<Rejection<'_>> = batch
        .rejected
        .iter()
        .map(|(index, reason)| Rejection {
            index: *index,
            reason,
        })
        .collect();
    let body = json!({
        "accepted": accepted,
        "stale": stale,
        "rejected": rejected,
        "rejected_count": batch.rejected_total,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /v1/travellers/{id}?viewer=`.
pub async fn get_traveller(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let id = path_id(path)?;
    let mut params = Params::parse(query.as_deref());
    let viewer = viewer(&mut params)?;
    params.finish()?;
    let t = state
        .engine
        .traveller(&id, viewer.as_deref())
        .ok_or_else(|| not_visible(&id))?;
    let mut body = json!({"id": t.id, "lat": t.position.lat, "lon": t.position.lon, "ts": t.ts});
    if let Some(trip) = t.trip_id {
        body["trip_id"] = trip.into();
    }
    if let Some(accuracy) = t.accuracy_m {
        body["accuracy_m"] = accuracy.into();
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /v1/travellers/{id}/trail?viewer=&since=`.
pub async fn trail(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let id = path_id(path)?;
    let mut params = Params::parse(query.as_deref());
    let viewer = viewer(&mut params)?;
    let since = params.optional::<i64>("since")?.unwrap_or(i64::MIN);
    params.finish()?;
    let points = state
        .engine
        .trail(&id, viewer.as_deref(), since)
        .ok_or_else(|| not_visible(&id))?;
    let trail: Vec<_> = points
        .iter()
        .map(|p| json!({"lat": p.position.lat, "lon": p.position.lon, "ts": p.ts}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"id": id, "trail": trail}),
    ))
}

/// `GET /v1/travellers/nearby?lat=&lon=&radius_m=&limit=&viewer=`.
pub async fn nearby(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult {
    let mut params = Params::parse(query.as_deref());
    let lat = params.required::<f64>("lat")?;
    let lon = params.required::<f64>("lon")?;
    let center = LatLon::new(lat, lon).map_err(|e| ApiError::bad_parameter(e.to_string()))?;
    let radius_m = params.finite("radius_m")?.unwrap_or(MAX_RADIUS_M);
    if !(0.0..=MAX_RADIUS_M).contains(&radius_m) {
        return Err(ApiError::bad_parameter(format!(
            "radius_m: must be from 0 to {MAX_RADIUS_M}, got {radius_m}"
        )));
    }
    let limit = params.limit()?;
    let viewer = viewer(&mut params)?;
    params.finish()?;
    let hits = state
        .engine
        .nearby_travellers(center, radius_m, limit, viewer.as_deref());
    let results: Vec<_> = hits
        .iter()
        .map(|h| json!({"id": h.id, "lat": h.position.lat, "lon": h.position.lon, "ts": h.ts, "distance_m": h.distance_m}))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"results": results})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharingIn {
    visibility: Visibility,
    #[serde(default)]
    viewers: Vec<String>,
}

/// `PUT /v1/travellers/{id}/sharing`.
pub async fn put_sharing(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = path_id(path)?;
    let input: SharingIn = body::json_object(&headers, body, state.limits.max_body_bytes).await?;
    let sharing = Sharing::new(input.visibility, input.viewers)
        .map_err(|e| ApiError::bad_body(e.to_string()))?;
    let body = json!({"id": id, "visibility": sharing.visibility(), "viewers": sharing.viewers().collect::<Vec<_>>()});
    durable(state.engine.set_sharing(&id, sharing)?).await?;
    Ok(json_response(StatusCode::OK, &body))
}

/// `DELETE /v1/travellers/{id}`.
pub async fn delete_traveller(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = path_id(path)?;
    let (existed, ticket) = state.engine.delete_traveller(&id)?;
    deleted(existed, ticket, format!("id: no traveller {id:?}")).await
}

/// `GET /v1/heatmap?bbox=&resolution=&layer=`.
pub async fn heatmap(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult {
    let mut params = Params::parse(query.as_deref());
    let bbox = params
        .raw("bbox")?
        .ok_or_else(|| ApiError::bad_parameter("bbox: required parameter is missing"))?;
    let bbox = parse_bbox(&bbox)?;
    let resolution = params.required::<u8>("resolution")?;
    let layer = params
        .raw("layer")?
        .map(|l| l.parse::<HeatmapLayer>())
        .transpose()
        .map_err(|e| ApiError::bad_parameter(format!("layer: {e}")))?
        .unwrap_or(HeatmapLayer::Pois);
    params.finish()?;
    let engine = state.engine.clone();
    let cells = tokio::task::spawn_blocking(move || engine.heatmap(layer, &bbox, resolution))
        .await
        .map_err(|e| ApiError::internal("heatmap panicked", &e))??;
    let cells: Vec<_> = cells
        .iter()
        .map(|(h3, count)| json!({"h3": h3, "count": count}))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"cells": cells})))
}
