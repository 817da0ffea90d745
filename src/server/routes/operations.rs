//! Map and operations routes: health and readiness, the API description, metrics and
//! stats, the heatmap, snapshots on demand, and the answers for unknown routes and methods.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::engine::{HeatmapLayer, MAX_HEATMAP_CELLS, MAX_OUTLINED_CELLS};
use crate::server::admission::over_url_limit;
use crate::server::dto::{
    ClusterOut, EventsOut, HeatmapOut, LastSnapshotOut, MemoryOut, SnapshotOut, StatsOut, WalOut,
};
use crate::server::params::{NoParams, Params};
use crate::server::problem::ApiError;
use crate::server::response::{ApiResult, json_response, json_static_response};
use crate::server::{AppState, OPENAPI_JSON, observe};

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Response {
    json_static_response(StatusCode::OK, r#"{"status":"ok"}"#)
}

/// `GET /readyz`: startup loading has finished, and a cluster node is not behind the
/// stream by more than `--max-lag`.
pub async fn readyz(State(state): State<AppState>) -> ApiResult {
    if let Some(replicator) = state.replicator() {
        replicator.lag().map_err(ApiError::lagging)?;
    }
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
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        observe::render(&state.engine),
    )
        .into_response()
}

/// `GET /v1/stats`: counts, memory, uptime, the last snapshot.
pub async fn stats(State(state): State<AppState>, mut params: Params) -> ApiResult {
    let with_digest = params.optional::<bool>("digest")?.unwrap_or(false);
    params.finish()?;
    let digest = if with_digest {
        let engine = state.engine.clone();
        Some(
            tokio::task::spawn_blocking(move || engine.state_digest())
                .await
                .map_err(|e| ApiError::internal("the state digest panicked", &e))??,
        )
    } else {
        None
    };
    let engine = &state.engine;
    let events = engine.events();
    let counts = engine.fence_counts();
    let stats = StatsOut {
        cluster: state.replicator().map(|r| ClusterOut {
            applied_seq: r.applied_seq(),
            judging_fences: engine.check_judging().is_ok(),
            events_exported: r.exported_events(),
            events_not_exported: events.tap_dropped(),
        }),
        digest,
        events: EventsOut {
            retained: events.retained(),
            subscribers: events.subscribers(),
        },
        fences: counts.fences,
        dormant_fences: counts.dormant,
        judging_backlog: engine.judging_backlog(),
        judging_coalesced: engine.judging_coalesced(),
        last_snapshot: engine.last_snapshot().as_ref().map(LastSnapshotOut::from),
        memory: MemoryOut {
            rss_bytes: rss_bytes(),
        },
        pois: engine.poi_count(),
        travellers: engine.traveller_count(),
        privacy_zones: engine.privacy_zone_count(),
        track_imports_running: state.imports.tracks.running.load(Ordering::Relaxed),
        track_import_points: state.imports.tracks.points.load(Ordering::Relaxed),
        uptime_s: state.started.elapsed().as_secs(),
        wal: engine.wal_stats().map(WalOut::from),
    };
    Ok(json_response(StatusCode::OK, &stats))
}

/// The process's resident memory, from `/proc/self/statm` (Linux); `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// `GET /v1/heatmap?bbox=&resolution=&layer=&outline=`.
pub async fn heatmap(State(state): State<AppState>, mut params: Params) -> ApiResult {
    let bbox = params.bbox()?;
    let resolution = params.required::<u8>("resolution")?;
    let layer = params
        .choice::<HeatmapLayer>("layer")?
        .unwrap_or(HeatmapLayer::Pois);
    let outline = params.optional::<bool>("outline")?.unwrap_or(false);
    params.finish()?;
    let max_cells = if outline {
        MAX_OUTLINED_CELLS
    } else {
        MAX_HEATMAP_CELLS
    };
    let engine = state.engine.clone();
    let cells =
        tokio::task::spawn_blocking(move || engine.heatmap(layer, &bbox, resolution, max_cells))
            .await
            .map_err(|e| ApiError::internal("heatmap panicked", &e))??;
    Ok(json_response(
        StatusCode::OK,
        &HeatmapOut::new(&cells, outline),
    ))
}

/// `POST /v1/admin/snapshot`: write a snapshot now.
pub async fn snapshot(State(state): State<AppState>, _: NoParams) -> ApiResult {
    let engine = state.engine.clone();
    let info = tokio::task::spawn_blocking(move || engine.snapshot())
        .await
        .map_err(|e| ApiError::internal("snapshot panicked", &e))??;
    Ok(json_response(StatusCode::OK, &SnapshotOut::from(&info)))
}

/// Fallback for unknown paths. The URL limit holds here too (admission guards only the
/// routes), and the answer echoes at most the start of the path.
pub async fn no_route(uri: Uri) -> ApiError {
    if let Some(refused) = over_url_limit(&uri) {
        return refused;
    }
    ApiError::not_found(format!("no route for {}", echoed(uri.path())))
}

/// Fallback for known paths with an unsupported method.
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    if let Some(refused) = over_url_limit(&uri) {
        return refused;
    }
    ApiError::method_not_allowed(format!(
        "{} is not supported on {}",
        echoed_method(method.as_str()),
        echoed(uri.path())
    ))
}

/// The most of a method an error repeats: every method the API knows is shorter.
const ECHOED_METHOD_BYTES: usize = 16;

/// `method`, cut to [`ECHOED_METHOD_BYTES`] with `…` when longer (a method is ASCII).
fn echoed_method(method: &str) -> std::borrow::Cow<'_, str> {
    match method.get(..ECHOED_METHOD_BYTES) {
        Some(head) if method.len() > ECHOED_METHOD_BYTES => format!("{head}…").into(),
        _ => method.into(),
    }
}

/// The most of a path an error repeats.
const ECHOED_PATH_BYTES: usize = 256;

/// `path`, cut to [`ECHOED_PATH_BYTES`] (at a character boundary) with `…` when longer.
fn echoed(path: &str) -> std::borrow::Cow<'_, str> {
    if path.len() <= ECHOED_PATH_BYTES {
        return path.into();
    }
    let mut end = ECHOED_PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end]).into()
}
