//! Route handlers: parse the request into a typed query or value, make one engine call, and
//! write the answer. No index logic lives here.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::AppState;
use super::body;
use super::dto::{ImportOut, PageOut, PoiIn, PoiOut};
use super::params::Params;
use super::problem::ApiError;
use crate::engine::{EngineError, ImportMode};
use crate::geometry::{BBox, LatLon, MAX_RADIUS_M};
use crate::ids::{IdError, validate_id, validate_record_id};
use crate::import::{ImportFormat, read_osm_pbf, read_pois};
use crate::persist::wal::Ticket;
use crate::pois::{NearbyQuery, Poi, PoiFilter, WithinQuery, is_valid_category};

type ApiResult = Result<Response, ApiError>;

pub(super) fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    json_bytes_response(status, json_bytes(value))
}

/// `value` as JSON bytes, written into one buffer sized for a typical page of results (so
/// that a page of 20 travellers does not grow it five times over). Pages of POIs, the
/// hottest answers, are written by hand instead ([`PageOut::to_json`]).
fn json_bytes(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4096);
    serde_json::to_writer(&mut bytes, value).expect("response types always serialize");
    bytes
}

/// A JSON response from bytes already written.
pub(super) fn json_bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    json_body_response(status, Body::from(bytes))
}

/// A JSON response whose body is a constant: no serializing and no copy.
pub(super) fn json_static_response(status: StatusCode, json: &'static str) -> Response {
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

/// Waits until a change is durable; only then may the client hear it was made.
pub(super) async fn durable(ticket: Ticket) -> Result<(), ApiError> {
    ticket
        .wait_async()
        .await
        .map_err(|e| EngineError::from(e).into())
}

/// The answer to a delete, once it is durable: 204, or 404 with `missing` if there was
/// nothing to delete.
pub(super) async fn deleted(existed: bool, ticket: Ticket, missing: String) -> ApiResult {
    durable(ticket).await?;
    if existed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(missing))
    }
}

/// The `{id}` of a path, held to the rule for ids a client chooses.
pub(super) fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path_id_by(path, validate_id)
}

/// The `{id}` of a path naming a stored POI, which may hold a `/` (sent as `%2F`) if it was
/// imported (`osm:node/42`).
fn stored_poi_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path_id_by(path, validate_record_id)
}

fn path_id_by(
    path: Result<Path<String>, PathRejection>,
    rule: fn(&str) -> Result<(), IdError>,
) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_parameter(format!("id: {e}")))?;
    rule(&id).map_err(|e| ApiError::bad_parameter(format!("id: {e}")))?;
    Ok(id)
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Response {
    json_static_response(StatusCode::OK, r#"{"status":"ok"}"#)
}

/// `GET /readyz`: startup loading has finished.
pub async fn readyz(State(state): State<AppState>) -> ApiResult {
    if state.ready.load(Ordering::Acquire) {
        Ok(json_static_response(
            StatusCode::OK,
            r#"{"status":"ready"}"#,
        ))
    } else {
        Err(ApiError::not_ready())
    }
}

/// `GET /openapi.json`: the API contract.
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::OPENAPI_JSON,
    )
        .into_response()
}

/// `PUT /v1/pois/{id}`: create or replace.
pub async fn put_poi(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = path_id(path)?;
    let input: PoiIn = body::json_object(&headers, body, state.limits.max_body_bytes).await?;
    if input.id.as_ref().is_some_and(|body_id| *body_id != id) {
        return Err(ApiError::bad_body(
            "id: must be left out or equal the id in the path",
        ));
    }
    let poi = Poi::new(
        id,
        input.lat,
        input.lon,
        input.name,
        input.category,
        input.tags,
        input.rating,
    )
    .map_err(|e| ApiError::bad_body(e.to_string()))?;
    let (created, ticket) = state.engine.upsert_poi(poi.clone())?;
    durable(ticket).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &PoiOut::from(&poi)))
}

/// `GET /v1/pois/{id}`.
pub async fn get_poi(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = stored_poi_id(path)?;
    match state.engine.get_poi(&id) {
        Some(poi) => Ok(json_response(StatusCode::OK, &PoiOut::from(&poi))),
        None => Err(ApiError::not_found(format!("id: no POI with id {id:?}"))),
    }
}

/// `DELETE /v1/pois/{id}`.
pub async fn delete_poi(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = stored_poi_id(path)?;
    let (existed, ticket) = state.engine.delete_poi(&id)?;
    deleted(existed, ticket, format!("id: no POI with id {id:?}")).await
}

fn filter(params: &mut Params) -> Result<PoiFilter, ApiError> {
    let categories = params.all("category");
    if let Some(bad) = categories.iter().find(|c| !is_valid_category(c)) {
        return Err(ApiError::bad_parameter(format!(
            "category: {bad:?} is not a category (lowercase letters, digits, '_' or '-', at most 64 bytes)"
        )));
    }
    let min_rating = params.finite("min_rating")?;
    Ok(PoiFilter {
        categories,
        min_rating,
    })
}

/// `GET /v1/pois/nearby`.
pub async fn nearby_pois(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult {
    let mut params = Params::parse(query.as_deref());
    let lat = params.required::<f64>("lat")?;
    let lon = params.required::<f64>("lon")?;
    let center = LatLon::new(lat, lon).map_err(|e| ApiError::bad_parameter(e.to_string()))?;
    let radius_m = params.finite("radius_m")?;
    if let Some(r) = radius_m
        && !(0.0..=MAX_RADIUS_M).contains(&r)
    {
        return Err(ApiError::bad_parameter(format!(
            "radius_m: must be from 0 to {MAX_RADIUS_M}, got {r}"
        )));
    }
    let limit = params.limit()?;
    let filter = filter(&mut params)?;
    let cursor = params.raw("cursor")?;
    params.finish()?;
    let query = NearbyQuery {
        center,
        radius_m,
        limit,
        filter,
        after: None,
    };
    let bytes = state.engine.nearby_pois(query, cursor.as_deref(), |page| {
        PageOut {
            results: page.hits.iter().map(PoiOut::from).collect(),
            next_cursor: page.next_cursor,
        }
        .to_json()
    })?;
    Ok(json_bytes_response(StatusCode::OK, bytes))
}

pub(super) fn parse_bbox(text: &str) -> Result<BBox, ApiError> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let numbers: Option<Vec<f64>> = parts.iter().map(|p| p.parse::<f64>().ok()).collect();
    match numbers.as_deref() {
        Some(&[min_lon, min_lat, max_lon, max_lat]) => {
            BBox::new(min_lon, min_lat, max_lon, max_lat)
                .map_err(|e| ApiError::bad_parameter(format!("bbox: {e}")))
        }
        _ => Err(ApiError::bad_parameter(format!(
            "bbox: expected four numbers minLon,minLat,maxLon,maxLat, got {text:?}"
        ))),
    }
}

/// `GET /v1/pois/within`.
pub async fn within_pois(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult {
    let mut params = Params::parse(query.as_deref());
    let bbox = params
        .raw("bbox")?
        .ok_or_else(|| ApiError::bad_parameter("bbox: required parameter is missing"))?;
    let bbox = parse_bbox(&bbox)?;
    let limit = params.limit()?;
    let filter = filter(&mut params)?;
    let cursor = params.raw("cursor")?;
    params.finish()?;
    let query = WithinQuery {
        bbox,
        limit,
        filter,
        after: None,
    };
    let bytes = state.engine.within_pois(query, cursor.as_deref(), |page| {
        PageOut {
            results: page.pois.iter().map(PoiOut::from).collect(),
            next_cursor: page.next_cursor,
        }
        .to_json()
    })?;
    Ok(json_bytes_response(StatusCode::OK, bytes))
}

/// `POST /v1/pois/import`: the body is streamed through the format's reader on a blocking
/// thread, then applied as one mutation.
pub async fn import_pois(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let mut params = Params::parse(query.as_deref());
    let format = params
        .raw("format")?
        .ok_or_else(|| ApiError::bad_parameter("format: required parameter is missing"))?
        .parse::<ImportFormat>()
        .map_err(|e| ApiError::bad_parameter(format!("format: {e}")))?;
    let mode = params
        .raw("mode")?
        .map(|m| m.parse::<ImportMode>())
        .transpose()
        .map_err(|e| ApiError::bad_parameter(format!("mode: {e}")))?
        .unwrap_or_default();
    let strict = params.optional::<bool>("strict")?.unwrap_or(false);
    params.finish()?;

    let limit = state.limits.max_import_bytes;
    body::check_declared_length(&headers, limit)?;
    let stream = body::limited_stream(body, limit);
    let parsed = if format == ImportFormat::OsmPbf {
        // Two passes over the file: spool the body to disk first.
        let spool = body::spool(stream, &state.tmp_dir).await?;
        tokio::task::spawn_blocking(move || read_osm_pbf(|| std::fs::File::open(spool.path())))
            .await
            .map_err(|e| ApiError::internal("import reader panicked", &e))??
    } else {
        let reader = SyncIoBridge::new(StreamReader::new(stream));
        tokio::task::spawn_blocking(move || read_pois(format, reader))
            .await
            .map_err(|e| ApiError::internal("import reader panicked", &e))??
    };
    let engine = state.engine.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let (summary, ticket) = engine.import_pois(parsed, mode, strict)?;
        ticket.wait().map_err(EngineError::from)?;
        Ok::<_, EngineError>(summary)
    })
    .await
    .map_err(|e| ApiError::internal("import apply panicked", &e))??;
    Ok(json_response(StatusCode::OK, &ImportOut::from(&summary)))
}

/// `POST /v1/admin/snapshot`: write a snapshot now.
pub async fn snapshot(State(state): State<AppState>) -> ApiResult {
    let engine = state.engine.clone();
    let info = tokio::task::spawn_blocking(move || engine.snapshot())
        .await
        .map_err(|e| ApiError::internal("snapshot panicked", &e))??;
    let body = serde_json::json!({"path": info.path.display().to_string(), "bytes": info.bytes, "millis": info.millis});
    Ok(json_response(StatusCode::OK, &body))
}

/// Fallback for unknown paths.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

/// Fallback for known paths with an unsupported method.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::method_not_allowed(format!("{method} is not supported on {}", uri.path()))
}
