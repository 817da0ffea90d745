//! Event stream routes: one fence's events, several fences' events, each resuming after the
//! client's last event (`Last-Event-ID`, or `?after=`); and live maps.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName};

use crate::events::{EventId, SubscribeError};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::params::{Params, PathId};
use crate::server::problem::ApiError;
use crate::server::response::ApiResult;
use crate::server::sse;

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// `GET /v1/fences/{id}/events`: the fence's events.
pub async fn fence_events(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    headers: HeaderMap,
    mut params: Params,
) -> ApiResult {
    let after = resume_point(&headers, &mut params)?;
    params.finish()?;
    caught_up_to(&state, after).await?;
    open(&state, caller, vec![id], after)
}

/// `GET /v1/events?fence=a&fence=b`: the events of several fences in one stream.
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    mut params: Params,
) -> ApiResult {
    let mut fences = params.all("fence")?;
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
    caught_up_to(&state, after).await?;
    open(&state, caller, fences, after)
}

/// On a cluster node: refuses while the node does not judge fences yet (catching up), and
/// waits (at most `--max-wait`) until it has applied the change the client resumes after,
/// which another node may have applied first.
async fn caught_up_to(state: &AppState, after: Option<EventId>) -> Result<(), ApiError> {
    let Some(replicator) = state.engine.replicator() else {
        return Ok(());
    };
    state.engine.check_judging()?;
    if let Some(after) = after {
        replicator.wait_for(after.place.record).await?;
    }
    Ok(())
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
    if caller.traveller.is_some() {
        // A traveller token follows its own fences; another's is as good as missing.
        let others = fences
            .iter()
            .find(|id| !state.engine.fence(id).is_some_and(|f| caller.owns(&f)));
        if let Some(other) = others {
            return Err(ApiError::not_found(format!("fence: no fence {other:?}")));
        }
    }
    let slot = acquire(state, &caller)?;
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

/// `GET /v1/travellers/watch?bbox=&viewer=`: a live map of the travellers `viewer` may see
/// in the box (no viewer: public travellers only).
pub async fn watch(State(state): State<AppState>, caller: Caller, mut params: Params) -> ApiResult {
    let bbox = params.bbox()?;
    let viewer = caller.viewer(params.viewer()?, "viewer")?;
    params.finish()?;
    let slot = acquire(&state, &caller)?;
    let max = state.limits.max_watch_snapshot;
    // A map's backlog is a state per traveller: bounded by the travellers in the box, which
    // may grow past the snapshot's size, but not without end.
    let engine = state.engine.clone();
    let opened = tokio::task::spawn_blocking(move || {
        engine.open_watch(bbox, viewer, max, max.saturating_mul(4))
    })
    .await
    .map_err(|e| ApiError::internal("opening a live map panicked", &e))?;
    let (handle, snapshot) = opened.map_err(|e| ApiError::bad_parameter(format!("bbox: {e}")))?;
    Ok(sse::map_stream(
        handle,
        snapshot,
        slot,
        state.stopping.clone(),
    ))
}

/// A place for one more stream of the caller's key or traveller, within the server's limit.
fn acquire(state: &AppState, caller: &Caller) -> Result<sse::StreamSlot, ApiError> {
    let open = state.engine.events().subscribers() + state.engine.watch_count();
    if open >= state.limits.max_subscribers {
        return Err(ApiError::busy(format!(
            "the server already has {open} event streams, its limit"
        )));
    }
    let holder = match (&caller.traveller, caller.key) {
        (Some(traveller), _) => Some(sse::StreamHolder::Traveller(traveller.clone())),
        (None, Some(line)) => Some(sse::StreamHolder::Key(line)),
        (None, None) => None,
    };
    let who = if caller.traveller.is_some() {
        "this traveller"
    } else {
        "this key"
    };
    let Some(holder) = holder else {
        return Ok(None);
    };
    state.streams.take(holder).map(Some).ok_or_else(|| {
        ApiError::too_many_streams(format!(
            "{who} already holds {} event streams, its limit; close one first",
            state.streams.max()
        ))
    })
}
