//! Event stream routes: one fence's events, several fences' events, each resuming after the
//! client's last event (`Last-Event-ID`, or `?after=`).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName};

use crate::events::{EventId, SubscribeError};
use crate::server::AppState;
use crate::server::admission::Caller;
use crate::server::params::{Params, PathId};
use crate::server::problem::ApiError;
use crate::server::response::ApiResult;
use crate::server::sse;

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// `GET /v1/fences/{id}/events`: the fence's events.
pub async fn fence_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathId(id): PathId,
    headers: HeaderMap,
    mut params: Params,
) -> ApiResult {
    let after = resume_point(&headers, &mut params)?;
    params.finish()?;
    open(&state, caller, vec![id], after)
}

/// `GET /v1/events?fence=a&fence=b`: the events of several fences in one stream.
pub async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    mut params: Params,
) -> ApiResult {
    let mut fences = params.all("fence");
    let after = resume_point(&headers, &mut params)?;
    params.finish()?;
    if fences.is_empty() {
        return Err(ApiError::bad_parameter(
            "fence: required: the fences to follow, the parameter repeated",
        ));
    }
    let max = state.limits.max_fences_per_stream;
    if fences.len() > max {
        return Err(ApiError::bad_parameter(format!(
            "fence: a stream may follow at most {max} fences, got {}",
            fences.len()
        )));
    }
    fences.sort_unstable();
    fences.dedup();
    open(&state, caller, fences, after)
}

/// Where the client resumes: `?after=` if given, else the `Last-Event-ID` header.
fn resume_point(headers: &HeaderMap, params: &mut Params) -> Result<Option<EventId>, ApiError> {
    if let Some(after) = params.raw("after")? {
        return after
            .parse()
            .map(Some)
            .map_err(|e| ApiError::bad_parameter(format!("after: {e}")));
    }
    match headers.get(LAST_EVENT_ID) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map_err(|_| ApiError::bad_parameter("Last-Event-ID: not text"))?
            .parse()
            .map(Some)
            .map_err(|e| ApiError::bad_parameter(format!("Last-Event-ID: {e}"))),
    }
}

fn open(
    state: &AppState,
    caller: Caller,
    fences: Vec<String>,
    after: Option<EventId>,
) -> ApiResult {
    if let Some(missing) = state.engine.missing_fences(&fences).first() {
        return Err(ApiError::not_found(format!("fence: no fence {missing:?}")));
    }
    let slot = state.streams.acquire(caller.key).map_err(|max| {
        ApiError::too_many_streams(format!(
            "this key already holds {max} event streams, its limit; close one first"
        ))
    })?;
    let log = state.engine.events().clone();
    let subscription = log
        .subscribe(
            fences.iter().map(|f| Arc::from(f.as_str())).collect(),
            after,
        )
        .map_err(|e| match e {
            SubscribeError::TooManySubscribers(_) => ApiError::busy(e.to_string()),
        })?;
    Ok(sse::fence_stream(
        subscription,
        log,
        slot,
        state.stopping.clone(),
    ))
}
