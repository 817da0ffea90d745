//! Event stream routes: one fence's events, several fences' events, each resuming after the
//! client's last event (`Last-Event-ID`, or `?after=`); and live maps.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName};

use crate::engine::SubscribeFailure;
use crate::events::EventId;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::params::{Params, PathId};
use crate::server::problem::ApiError;
use crate::server::request_id::PeerAddr;
use crate::server::response::ApiResult;
use crate::server::sse;

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// `GET /v1/fences/{id}/events`: the fence's events.
pub async fn fence_events(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
    PathId(id): PathId,
    headers: HeaderMap,
    mut params: Params,
) -> ApiResult {
    let after = resume_point(&headers, &mut params)?;
    params.finish()?;
    caught_up_to(&state, &caller.owner, after).await?;
    open(&state, &caller, peer.map(|p| p.0), vec![id], after)
}

/// `GET /v1/events?fence=a&fence=b`: the events of several fences in one stream.
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
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
    caught_up_to(&state, &caller.owner, after).await?;
    open(&state, &caller, peer.map(|p| p.0), fences, after)
}

/// On a cluster node: refuses while the node does not judge fences yet (catching up), and
/// waits (at most `--max-wait`) until it has numbered the owner's events up to the one the
/// client resumes after, which another node may have numbered first.
async fn caught_up_to(
    state: &AppState,
    owner: &str,
    after: Option<EventId>,
) -> Result<(), ApiError> {
    let Some(replicator) = state.replicator() else {
        return Ok(());
    };
    state.engine.check_judging()?;
    if let Some(after) = after {
        let events = state.engine.events();
        if !events
            .wait_to_reach(owner, after.place, replicator.max_wait())
            .await
        {
            return Err(ApiError::busy(format!(
                "Last-Event-ID: this node has not yet numbered the events up to {after}; retry, or ask another node"
            )));
        }
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
    caller: &Caller,
    peer: Option<PeerAddr>,
    fences: Vec<String>,
    after: Option<EventId>,
) -> ApiResult {
    let slot = acquire(state, caller, peer, false)?;
    let subscription = state
        .engine
        .subscribe_fences(&caller.owner, &fences, after)
        .map_err(|e| match e {
            // Another owner's fence of that id is as good as missing: ids are per owner.
            SubscribeFailure::NoFence(_) => ApiError::not_found(e.to_string()),
            SubscribeFailure::Full(_) => ApiError::busy(e.to_string()),
        })?;
    Ok(sse::fence_stream(
        subscription,
        state.engine.events().clone(),
        slot,
        state.stopping.clone(),
    ))
}

/// `GET /v1/travellers/watch?bbox=&viewer=`: a live map of the travellers `viewer` may see
/// in the box (no viewer: public travellers only).
pub async fn watch(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
    mut params: Params,
) -> ApiResult {
    let bbox = params.bbox()?;
    let viewer = caller.viewer(params.viewer()?, "viewer")?;
    params.finish()?;
    let slot = acquire(&state, &caller, peer.map(|p| p.0), true)?;
    let max = state.limits.max_watch_snapshot;
    // A map's backlog is a state per traveller: bounded by the travellers in the box, which
    // may grow past the snapshot's size, but not without end.
    let engine = state.engine.clone();
    // Opening scans the box: work for the maps' pool, as their frames are.
    let opened = super::super::work::on_the_map_pool(move || {
        let (handle, snapshot) = engine.open_watch(bbox, viewer, max, max.saturating_mul(4))?;
        let mut frames = sse::MapFrames::new(handle);
        let first = frames.snapshot(&snapshot);
        Ok::<_, crate::fences::WatchError>((frames, first))
    })
    .await?;
    let (frames, first) = opened.map_err(|e| ApiError::bad_parameter(format!("bbox: {e}")))?;
    Ok(sse::map_stream(
        frames,
        first,
        slot,
        state.stopping.clone(),
        state.limits.map_frame,
    ))
}

/// A place for one more stream of the caller (its owner, or on an open server its address)
/// within its limits and the server's; a live map (`map`) takes a place among the
/// caller's maps too.
pub(super) fn acquire(
    state: &AppState,
    caller: &Caller,
    peer: Option<PeerAddr>,
    map: bool,
) -> Result<sse::StreamSlot, ApiError> {
    let (holder, who) = holder_of(state, caller, peer);
    acquire_as(state, holder, who, map)
}

/// Who a caller's streams and heavy work are counted for: its owner (a key or traveller
/// token), or on an open server its address; and how a refusal names it.
pub(crate) fn holder_of(
    state: &AppState,
    caller: &Caller,
    peer: Option<PeerAddr>,
) -> (sse::StreamHolder, &'static str) {
    match (state.keys.is_some() || state.tokens.is_some(), peer) {
        (false, Some(peer)) => (sse::StreamHolder::address(peer.0), "this address"),
        _ if caller.traveller.is_some() => (
            sse::StreamHolder::Owner(caller.owner.clone()),
            "this traveller",
        ),
        _ => (sse::StreamHolder::Owner(caller.owner.clone()), "this key"),
    }
}

/// A place for one more stream of `holder` (`who`, for the refusal) within its limits and
/// the server's.
pub(super) fn acquire_as(
    state: &AppState,
    holder: sse::StreamHolder,
    who: &str,
    map: bool,
) -> Result<sse::StreamSlot, ApiError> {
    let open = state.engine.events().subscribers()
        + state.engine.watch_count()
        + state.engine.route_watchers();
    if open >= state.limits.max_subscribers {
        return Err(ApiError::busy(format!(
            "the server already has {open} event streams, its limit"
        )));
    }
    let stream = state.streams.take(holder.clone()).ok_or_else(|| {
        ApiError::too_many_streams(format!(
            "{who} already holds {} event streams, its limit; close one first",
            state.streams.max()
        ))
    })?;
    let map = if map {
        Some(state.maps.take(holder).ok_or_else(|| {
            ApiError::too_many_streams(format!(
                "{who} already holds {} live maps, its limit; close one first",
                state.maps.max()
            ))
        })?)
    } else {
        None
    };
    Ok(sse::StreamSlot { stream, map })
}
