//! A traveller's devices: the tracking apps that report its positions, each with a token
//! shown once. Only the traveller itself (its token) or a key may make, list and revoke
//! them; a token for another traveller gets a 403 before anything is looked up. Making one
//! needs the read scope too (its token reads the traveller's friends), and its answer is
//! never kept for `Idempotency-Key` retries (the token is shown once and kept nowhere).

use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::body::JsonObject;
use crate::server::dto::{DeviceCreatedOut, DeviceIn, DeviceOut, DevicesOut};
use crate::server::params::{NoParams, PathId, check_path_ids};
use crate::server::problem::ApiError;
use crate::server::response::{ApiResult, deleted, json_response};

/// `POST /v1/travellers/{id}/devices`: 201 with the token, shown this once.
pub async fn create_device(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
    JsonObject(input): JsonObject<DeviceIn>,
) -> ApiResult {
    caller.may_change(&id, "id")?;
    if !caller.reads {
        // The token reads (OwnTracks' friends, as the traveller): a write-only credential
        // may not make itself one that reads, nor outlive its own expiry so.
        return Err(ApiError::forbidden(
            "authorization: making a device needs the read scope as well as write, since its token reads the traveller's friends",
        ));
    }
    let (written, device, token) = state.engine.create_device(&id, &input.name)?;
    written.durable().await?;
    Ok(json_response(
        StatusCode::CREATED,
        &DeviceCreatedOut::new(&device, &token),
    ))
}

/// `GET /v1/travellers/{id}/devices`: never the tokens.
pub async fn devices(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    PathId(id): PathId,
) -> ApiResult {
    caller.may_change(&id, "id")?;
    let devices = state.engine.devices_of(&id);
    Ok(json_response(
        StatusCode::OK,
        &DevicesOut {
            results: devices.iter().map(DeviceOut::from).collect(),
        },
    ))
}

/// `DELETE /v1/travellers/{id}/devices/{device}`: the token stops working at once.
pub async fn revoke_device(
    State(state): State<AppState>,
    _: NoParams,
    caller: Caller,
    Path((id, device)): Path<(String, String)>,
) -> ApiResult {
    check_path_ids(&id, ("device", &device))?;
    caller.may_change(&id, "id")?;
    let written = state.engine.revoke_device(&id, &device)?;
    deleted(
        written,
        format!("device: no device {device:?} of traveller {id:?}"),
    )
    .await
}
