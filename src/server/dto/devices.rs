//! Devices and trackers' answers: the bodies of `/v1/travellers/{id}/devices` and of the
//! Overland route (OwnTracks' and OsmAnd's answers are their own protocols').

use serde::{Deserialize, Serialize};

use super::travellers::RejectionOut;
use crate::devices::Device;

/// The body of `POST /v1/travellers/{id}/devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceIn {
    /// What the traveller calls it.
    pub name: String,
}

/// A device, without its token: `GET /v1/travellers/{id}/devices`.
#[derive(Debug, Serialize)]
pub struct DeviceOut<'a> {
    created_at: i64,
    id: &'a str,
    name: &'a str,
}

impl<'a> From<&'a Device> for DeviceOut<'a> {
    fn from(d: &'a Device) -> Self {
        Self {
            created_at: d.created_at(),
            id: d.id(),
            name: d.name(),
        }
    }
}

/// A device just made, with its token (shown this once).
#[derive(Debug, Serialize)]
pub struct DeviceCreatedOut<'a> {
    created_at: i64,
    id: &'a str,
    name: &'a str,
    token: &'a str,
}

impl<'a> DeviceCreatedOut<'a> {
    /// `device`, opened by `token`.
    pub fn new(device: &'a Device, token: &'a str) -> Self {
        Self {
            created_at: device.created_at(),
            id: device.id(),
            name: device.name(),
            token,
        }
    }
}

/// A traveller's devices.
#[derive(Debug, Serialize)]
pub struct DevicesOut<'a> {
    /// Oldest first.
    pub results: Vec<DeviceOut<'a>>,
}

/// The answer Overland deletes its batch on: `{"result": "ok"}`, with what was stored
/// and what was refused (the app reads only `result`).
#[derive(Debug, Serialize)]
pub struct OverlandOut<'a> {
    accepted: usize,
    rejected: Vec<RejectionOut<'a>>,
    rejected_count: usize,
    result: &'static str,
}

impl<'a> OverlandOut<'a> {
    /// `accepted` points stored, and the points refused `(index, reason)`.
    pub fn ok(accepted: usize, rejected: &'a [(usize, String)]) -> Self {
        Self {
            accepted,
            rejected: rejected
                .iter()
                .take(crate::server::positions::MAX_LISTED_REJECTIONS)
                .map(|(index, reason)| RejectionOut {
                    index: *index,
                    reason,
                })
                .collect(),
            rejected_count: rejected.len(),
            result: "ok",
        }
    }
}
