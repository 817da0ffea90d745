//! Fence routes: store, read, delete and list the caller's fences, and who is inside one.
//!
//! Fences are named per owner (the caller: a key, a traveller token, or everyone on an
//! open server), so the same id names a different fence for each caller and no answer
//! tells one caller whether another has a fence of that id. An admin-scope key may act on
//! another owner's fences by naming it in `owner=` (an operator removing a token's fences,
//! or those stored before fences had owners, which belong to `open`).

use axum::extract::State;
use axum::http::StatusCode;

use crate::fences::{Fence, FenceKey, FenceKind};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::body::JsonObject;
use crate::server::dto::{FenceIn, FenceOut, FencePageOut, InsideOut};
use crate::server::params::{Params, PathId};
use crate::server::problem::ApiError;
use crate::server::request_id::PeerAddr;
use crate::server::response::{ApiResult, deleted, json_response};

fn no_fence(id: &str) -> ApiError {
    ApiError::not_found(format!("id: no fence {id:?}"))
}

/// How long a listing of who is inside waits for the travellers changed before it to be
/// judged, so that a caller sees its own writes.
const JUDGED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whose fences a request is about: the caller's, or with `owner=` (admin scope only)
/// another owner's.
fn owner_of(caller: &Caller, params: &mut Params) -> Result<std::sync::Arc<str>, ApiError> {
    match params.raw("owner")? {
        None => Ok(caller.owner.clone()),
        Some(_) if !caller.privileged() => Err(ApiError::forbidden(
            "owner: naming another owner's fences needs an admin-scope key",
        )),
        Some(owner) => {
            crate::ids::validate_owner(&owner)
                .map_err(|e| ApiError::bad_parameter(format!("owner: {e}")))?;
            Ok(owner.into())
        }
    }
}

/// `PUT /v1/fences/{id}`: create or replace one of the caller's fences, a static fence
/// (`area`) or a roaming one (`roaming`); everyone it concerns is judged at once.
pub async fn put_fence(
    State(state): State<AppState>,
    caller: Caller,
    peer: Option<axum::Extension<PeerAddr>>,
    PathId(id): PathId,
    mut params: Params,
    JsonObject(input): JsonObject<FenceIn>,
) -> ApiResult {
    let owner = owner_of(&caller, &mut params)?;
    params.finish()?;
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
    if caller.traveller.is_some() && viewer.as_deref() != caller.traveller.as_deref() {
        return Err(ApiError::forbidden(
            "viewer: a traveller token's fences see as its own traveller; leave viewer out or set it to the token's sub",
        ));
    }
    if viewer.is_none() && !caller.admin {
        return Err(ApiError::forbidden(
            "viewer: null sees every traveller and needs the admin scope",
        ));
    }
    let max_vertices = state.limits.max_area_vertices;
    let (area, roaming) = match (input.area, input.roaming) {
        (Some(area), None) => (Some(area), None),
        (None, Some(roaming)) => (None, Some(roaming)),
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
    // Validating an area and judging everyone a new fence concerns are work in proportion
    // to its size: off the async workers, validation within its time budget.
    let engine = state.engine.clone();
    let privileged = caller.privileged();
    let (holder, _) = super::streams::holder_of(&state, &caller, peer.map(|p| p.0));
    let written = crate::server::work::off_the_workers(&holder, move || {
        let kind = match (area, roaming) {
            (Some(area), _) => FenceKind::Static(
                area.into_area(max_vertices)
                    .map_err(|e| ApiError::bad_body(format!("area.{e}")))?,
            ),
            (None, Some(roaming)) => FenceKind::Roaming {
                around: roaming.around,
                radius_m: roaming.radius_m,
            },
            (None, None) => unreachable!("one of them was given"),
        };
        let fence = Fence::new(id, owner.to_string(), viewer, kind)
            .map_err(|e| ApiError::bad_body(e.to_string()))?;
        let written = engine.put_fence(fence.clone(), privileged)?;
        Ok::<_, ApiError>((fence, written))
    })
    .await?;
    let (fence, written) = written;
    let stored = written.durable().await?;
    let status = if stored.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &FenceOut::from(&fence)))
}

/// `GET /v1/fences/{id}`: one of the caller's fences.
pub async fn get_fence(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let owner = owner_of(&caller, &mut params)?;
    params.finish()?;
    let fence = state
        .engine
        .fence(&FenceKey::new(&owner, &id))
        .ok_or_else(|| no_fence(&id))?;
    Ok(json_response(StatusCode::OK, &FenceOut::from(&fence)))
}

/// `DELETE /v1/fences/{id}`: its streams get a `deleted` event and end.
pub async fn delete_fence(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let owner = owner_of(&caller, &mut params)?;
    params.finish()?;
    let written = state.engine.delete_fence(&FenceKey::new(&owner, &id))?;
    deleted(written, format!("id: no fence {id:?}")).await
}

/// `GET /v1/fences?limit=&cursor=`: the caller's fences by id.
pub async fn list_fences(
    State(state): State<AppState>,
    caller: Caller,
    mut params: Params,
) -> ApiResult {
    let owner = owner_of(&caller, &mut params)?;
    let limit = params.limit()?;
    let cursor = params.raw("cursor")?;
    params.finish()?;
    let (fences, next) = state.engine.fence_page(&owner, limit, cursor.as_deref())?;
    Ok(json_response(
        StatusCode::OK,
        &FencePageOut::new(&fences, next.as_deref()),
    ))
}

/// `GET /v1/fences/{id}/inside?limit=&cursor=`: who is inside now, and the id of the newest
/// event of the fence's owner, to stream from.
pub async fn inside(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    mut params: Params,
) -> ApiResult {
    let owner = owner_of(&caller, &mut params)?;
    let limit = params.limit()?;
    let cursor = params.raw("cursor")?;
    params.finish()?;
    state.engine.judged(JUDGED_WAIT).await;
    let (page, next) = state
        .engine
        .fence_inside(&FenceKey::new(&owner, &id), limit, cursor.as_deref())?
        .ok_or_else(|| no_fence(&id))?;
    Ok(json_response(
        StatusCode::OK,
        &InsideOut::new(&page.travellers, next.as_deref(), page.last_event),
    ))
}
