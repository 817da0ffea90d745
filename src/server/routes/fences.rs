//! Fence routes: store, read, delete and list fences, and who is inside one.

use axum::extract::State;
use axum::http::StatusCode;

use crate::fences::{Fence, FenceKind};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::body::JsonObject;
use crate::server::dto::{FenceIn, FenceOut, FencePageOut, InsideOut};
use crate::server::params::{Params, PathId};
use crate::server::problem::ApiError;
use crate::server::response::{ApiResult, deleted, json_response};

fn no_fence(id: &str) -> ApiError {
    ApiError::not_found(format!("id: no fence {id:?}"))
}

/// `PUT /v1/fences/{id}`: create or replace a static fence (`area`) or a roaming one
/// (`roaming`); everyone it concerns is judged at once.
pub async fn put_fence(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    JsonObject(input): JsonObject<FenceIn>,
) -> ApiResult {
    if input.id.as_ref().is_some_and(|body_id| *body_id != id) {
        return Err(ApiError::bad_body(
            "id: must be left out or equal the id in the path",
        ));
    }
    let viewer = match (input.viewer, &caller.traveller) {
        // A traveller token's fence is its own: it may leave the viewer out.
        (None, Some(me)) => Some(me.to_string()),
        (None, None) => {
            return Err(ApiError::bad_body(
                "viewer: required: a traveller id, or null for a fence that sees every traveller (admin scope)",
            ));
        }
        (Some(viewer), _) => viewer,
    };
    if caller.traveller.is_some() {
        if viewer.as_deref() != caller.traveller.as_deref() {
            return Err(ApiError::forbidden(
                "viewer: a traveller token's fences see as its own traveller; leave viewer out or set it to the token's sub",
            ));
        }
        if state.engine.fence(&id).is_some_and(|f| !caller.owns(&f)) {
            return Err(ApiError::forbidden(
                "id: a traveller token may change only its own fences",
            ));
        }
    }
    let kind = match (input.area, input.roaming) {
        (Some(area), None) => FenceKind::Static(
            area.into_area(state.limits.max_area_vertices)
                .map_err(|e| ApiError::bad_body(format!("area.{e}")))?,
        ),
        (None, Some(roaming)) => FenceKind::Roaming {
            around: roaming.around,
            radius_m: roaming.radius_m,
        },
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_body(
                "area, roaming: a fence is one or the other, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_body(
                "area: required for a static fence (or roaming, for a roaming fence)",
            ));
        }
    };
    let fence = Fence::new(id, viewer, kind).map_err(|e| ApiError::bad_body(e.to_string()))?;
    if fence.viewer.is_none() && !caller.admin {
        return Err(ApiError::forbidden(
            "viewer: null sees every traveller and needs the admin scope",
        ));
    }
    // Judging everyone a new fence concerns can take a while for a large area.
    let engine = state.engine.clone();
    let stored_fence = fence.clone();
    let written = tokio::task::spawn_blocking(move || engine.put_fence(stored_fence))
        .await
        .map_err(|e| ApiError::internal("storing a fence panicked", &e))??;
    let stored = written.durable().await?;
    let status = if stored.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &FenceOut::from(&fence)))
}

/// The fence `id`, if there is one the caller may see (a traveller token sees its own).
fn own_fence(state: &AppState, caller: &Caller, id: &str) -> Result<Fence, ApiError> {
    state
        .engine
        .fence(id)
        .filter(|f| caller.owns(f))
        .ok_or_else(|| no_fence(id))
}

/// `GET /v1/fences/{id}`.
pub async fn get_fence(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult {
    let fence = own_fence(&state, &caller, &id)?;
    Ok(json_response(StatusCode::OK, &FenceOut::from(&fence)))
}

/// `DELETE /v1/fences/{id}`: its streams get a `deleted` event and end.
pub async fn delete_fence(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult {
    if caller.traveller.is_some() {
        own_fence(&state, &caller, &id)?;
    }
    let written = state.engine.delete_fence(&id)?;
    deleted(written, format!("id: no fence {id:?}")).await
}

/// `GET /v1/fences?limit=&cursor=`: fences by id (a traveller token's own).
pub async fn list_fences(
    State(state): State<AppState>,
    caller: Caller,
    mut params: Params,
) -> ApiResult {
    let limit = params.limit()?;
    let cursor = params.raw("cursor")?;
    params.finish()?;
    let (fences, next) =
        state
            .engine
            .fence_page(limit, cursor.as_deref(), caller.traveller.as_deref())?;
    Ok(json_response(
        StatusCode::OK,
        &FencePageOut::new(&fences, next.as_deref()),
    ))
}

/// `GET /v1/fences/{id}/inside?limit=&cursor=`: who is inside now, and the id of the newest
/// event, to stream from.
pub async fn inside(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let limit = params.limit()?;
    let cursor = params.raw("cursor")?;
    params.finish()?;
    if caller.traveller.is_some() {
        own_fence(&state, &caller, &id)?;
    }
    let (page, next) = state
        .engine
        .fence_inside(&id, limit, cursor.as_deref())?
        .ok_or_else(|| no_fence(&id))?;
    Ok(json_response(
        StatusCode::OK,
        &InsideOut::new(&page.travellers, next.as_deref(), page.last_event),
    ))
}
