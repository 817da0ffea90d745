//! POI routes: one POI by id, nearby and within queries, and bulk imports.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::engine::{ImportMode, Page};
use crate::import::{ImportFormat, read_osm_pbf, read_pois};
use crate::pois::{AreaQuery, NearbyQuery, Poi, PoiFilter, WithinQuery};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::body;
use crate::server::body::JsonObject;
use crate::server::dto::{
    CategoriesOut, ImportOut, PageOut, PoiAreaQueryIn, PoiIn, PoiOut, ResponseFields,
};
use crate::server::params::{NoParams, Params, PathId, StoredPoiId, check_categories, limit};
use crate::server::problem::ApiError;
use crate::server::request_id::PeerAddr;
use crate::server::response::{ApiResult, deleted, json_bytes_response, json_response};

/// `PUT /v1/pois/{id}`: create or replace.
pub async fn put_poi(
    State(state): State<AppState>,
    _: NoParams,
    PathId(id): PathId,
    JsonObject(input): JsonObject<PoiIn>,
) -> ApiResult {
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
    let stored = state.engine.upsert_poi(poi.clone())?.durable().await?;
    let status = if stored.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &PoiOut::from(&poi)))
}

/// `GET /v1/pois/{id}`.
pub async fn get_poi(
    State(state): State<AppState>,
    _: NoParams,
    StoredPoiId(id): StoredPoiId,
) -> ApiResult {
    match state.engine.get_poi(&id) {
        Some(poi) => Ok(json_response(StatusCode::OK, &PoiOut::from(&poi))),
        None => Err(ApiError::not_found(format!("id: no POI with id {id:?}"))),
    }
}

/// `DELETE /v1/pois/{id}`.
pub async fn delete_poi(
    State(state): State<AppState>,
    _: NoParams,
    StoredPoiId(id): StoredPoiId,
) -> ApiResult {
    let written = state.engine.delete_poi(&id)?;
    deleted(written, format!("id: no POI with id {id:?}")).await
}

/// `GET /v1/pois/nearby`.
pub async fn nearby(State(state): State<AppState>, mut params: Params) -> ApiResult {
    let center = params.center()?;
    let radius_m = params.radius()?;
    let limit = params.limit()?;
    let filter = params.poi_filter()?;
    let cursor = params.raw("cursor")?;
    let fields = params.fields(true)?;
    params.finish()?;
    let query = NearbyQuery {
        center,
        radius_m,
        limit,
        filter,
        after: None,
    };
    let bytes = state
        .engine
        .nearby_pois(query, cursor.as_deref(), |page| page_json(page, fields))?;
    Ok(json_bytes_response(StatusCode::OK, bytes))
}

/// `GET /v1/pois/within`.
pub async fn within(State(state): State<AppState>, mut params: Params) -> ApiResult {
    let bbox = params.bbox()?;
    let limit = params.limit()?;
    let filter = params.poi_filter()?;
    let cursor = params.raw("cursor")?;
    let fields = params.fields(false)?;
    params.finish()?;
    let query = WithinQuery {
        bbox,
        limit,
        filter,
        after: None,
    };
    let bytes = state
        .engine
        .within_pois(query, cursor.as_deref(), |page| page_json(page, fields))?;
    Ok(json_bytes_response(StatusCode::OK, bytes))
}

/// `POST /v1/pois/within`: POIs inside an area, in id order, paged like `GET /v1/pois/within`.
pub async fn within_area(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
    _: NoParams,
    JsonObject(input): JsonObject<PoiAreaQueryIn>,
) -> ApiResult {
    check_categories(&input.category).map_err(ApiError::bad_body)?;
    let limit = limit(input.limit).map_err(ApiError::bad_body)?;
    // Checking a large area, and a query over it, are work in proportion to its size: off
    // the async workers.
    let engine = state.engine.clone();
    let max_vertices = state.limits.max_area_vertices;
    let (holder, _) = super::streams::holder_of(&state, &caller, peer.map(|p| p.0));
    let bytes = crate::server::work::off_the_workers(&holder, move || {
        let area = input
            .area
            .into_area(max_vertices)
            .map_err(|e| ApiError::bad_body(format!("area.{e}")))?;
        let query = AreaQuery {
            area,
            limit,
            filter: PoiFilter {
                categories: input.category,
                min_rating: input.min_rating,
            },
            after: None,
        };
        Ok(
            engine.within_area_pois(query, input.cursor.as_deref(), |page| {
                page_json(page, ResponseFields::ALL)
            })?,
        )
    })
    .await?;
    Ok(json_bytes_response(StatusCode::OK, bytes))
}

/// A page of POIs as JSON, with the `fields` asked for: every paged POI answer.
fn page_json<'a, T>(page: Page<'a, T>, fields: ResponseFields) -> Vec<u8>
where
    PoiOut<'a>: From<&'a T>,
{
    PageOut {
        results: page.items.iter().map(PoiOut::from).collect(),
        next_cursor: page.next_cursor,
        fields,
    }
    .to_json()
}

/// `POST /v1/pois/import`: the body is streamed through the format's reader on the
/// imports' pool, then applied there as one mutation (see [`crate::server::imports`]).
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    mut params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let format = params
        .choice::<ImportFormat>("format")?
        .ok_or_else(|| ApiError::bad_parameter("format: required parameter is missing"))?;
    let mode = params.choice::<ImportMode>("mode")?.unwrap_or_default();
    let strict = params.optional::<bool>("strict")?.unwrap_or(false);
    params.finish()?;

    let limit = state.limits.max_import_bytes;
    body::check_declared_length(&headers, limit)?;
    let _slot = state.imports.take(&caller.owner)?;
    let stream = body::limited_stream(body, limit);
    let parsed = if format == ImportFormat::OsmPbf {
        // Two passes over the file: spool the body to disk first.
        let spool = body::spool(stream, &state.tmp_dir).await?;
        state
            .imports
            .run(move || read_osm_pbf(|| std::fs::File::open(spool.path())))
            .await??
    } else {
        let reader = SyncIoBridge::new(StreamReader::new(stream));
        state
            .imports
            .run(move || read_pois(format, reader))
            .await??
    };
    let engine = state.engine.clone();
    // Applied on the imports' pool; waited for here, in the request's task, so that a
    // cluster write's sequence reaches the answer's `x-proxima-seq`.
    let written = state
        .imports
        .run(move || engine.import_pois(parsed, mode, strict))
        .await??;
    let summary = written.durable().await?;
    Ok(json_response(StatusCode::OK, &ImportOut::from(&summary)))
}

/// `GET /v1/categories?limit=`: the categories the POIs hold, most common first.
pub async fn categories(State(state): State<AppState>, mut params: Params) -> ApiResult {
    let limit = params.limit()?;
    params.finish()?;
    let engine = state.engine.clone();
    let held = tokio::task::spawn_blocking(move || engine.poi_categories(limit))
        .await
        .map_err(|e| ApiError::internal("listing categories panicked", &e))?;
    Ok(json_response(
        StatusCode::OK,
        &CategoriesOut::from(held.as_slice()),
    ))
}
