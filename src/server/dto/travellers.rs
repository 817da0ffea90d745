//! Traveller wire types: position and sharing bodies, and the answers about travellers.
//! Answers keep their fields in alphabetical order (see the [module doc](super)).

use serde::{Deserialize, Serialize};

use super::AreaIn;
use crate::travellers::{
    Sharing, TrailPoint, TravellerAt, TravellerHit, TravellerView, Visibility,
};

/// The body of `PUT /v1/travellers/{id}/position`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionIn {
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Unix milliseconds.
    pub ts: i64,
    /// Accuracy radius, metres.
    #[serde(default)]
    pub accuracy_m: Option<f64>,
    /// Trip id.
    #[serde(default)]
    pub trip_id: Option<String>,
}

/// The body of `PUT /v1/travellers/{id}/sharing`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharingIn {
    /// Who may see the traveller.
    pub visibility: Visibility,
    /// With `friends`: exactly who.
    #[serde(default)]
    pub viewers: Vec<String>,
}

/// A traveller: `GET /v1/travellers/{id}`.
#[derive(Debug, Serialize)]
pub struct TravellerOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy_m: Option<f64>,
    id: &'a str,
    lat: f64,
    lon: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    trip_id: Option<&'a str>,
    ts: i64,
}

impl<'a> From<&'a TravellerView> for TravellerOut<'a> {
    fn from(t: &'a TravellerView) -> Self {
        Self {
            accuracy_m: t.accuracy_m,
            id: &t.at.id,
            lat: t.at.position.lat,
            lon: t.at.position.lon,
            trip_id: t.trip_id.as_deref(),
            ts: t.at.ts,
        }
    }
}

/// A traveller's trail: `GET /v1/travellers/{id}/trail`.
#[derive(Debug, Serialize)]
pub struct TrailOut<'a> {
    id: &'a str,
    trail: Vec<TrailPointOut>,
}

impl<'a> TrailOut<'a> {
    /// The trail of `id`, oldest point first.
    pub fn new(id: &'a str, points: &[TrailPoint]) -> Self {
        Self {
            id,
            trail: points
                .iter()
                .map(|p| TrailPointOut {
                    lat: p.position.lat,
                    lon: p.position.lon,
                    ts: p.ts,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct TrailPointOut {
    lat: f64,
    lon: f64,
    ts: i64,
}

/// Travellers near a place: `GET /v1/travellers/nearby`.
#[derive(Debug, Serialize)]
pub struct NearbyTravellersOut<'a> {
    results: Vec<TravellerHitOut<'a>>,
}

impl<'a> From<&'a [TravellerHit]> for NearbyTravellersOut<'a> {
    fn from(hits: &'a [TravellerHit]) -> Self {
        Self {
            results: hits
                .iter()
                .map(|h| TravellerHitOut {
                    distance_m: h.distance_m,
                    id: &h.at.id,
                    lat: h.at.position.lat,
                    lon: h.at.position.lon,
                    ts: h.at.ts,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct TravellerHitOut<'a> {
    distance_m: f64,
    id: &'a str,
    lat: f64,
    lon: f64,
    ts: i64,
}

/// What a batch did: `POST /v1/positions`.
#[derive(Debug, Serialize)]
pub struct BatchOut<'a> {
    accepted: usize,
    rejected: Vec<RejectionOut<'a>>,
    rejected_count: usize,
    stale: usize,
}

impl<'a> BatchOut<'a> {
    /// `accepted` and `stale` updates, the listed rejections `(index, reason)`, and how many
    /// were rejected in all.
    pub fn new(
        accepted: usize,
        stale: usize,
        rejected: &'a [(usize, String)],
        rejected_count: usize,
    ) -> Self {
        Self {
            accepted,
            rejected: rejected
                .iter()
                .map(|(index, reason)| RejectionOut {
                    index: *index,
                    reason,
                })
                .collect(),
            rejected_count,
            stale,
        }
    }
}

/// A batch's update refused: its index and why.
#[derive(Debug, Serialize)]
pub(super) struct RejectionOut<'a> {
    pub(super) index: usize,
    pub(super) reason: &'a str,
}

/// A sharing setting as stored: `PUT /v1/travellers/{id}/sharing`.
#[derive(Debug, Serialize)]
pub struct SharingOut<'a> {
    id: &'a str,
    viewers: Vec<&'a str>,
    visibility: Visibility,
}

impl<'a> SharingOut<'a> {
    /// `id`'s setting.
    pub fn new(id: &'a str, sharing: &'a Sharing) -> Self {
        Self {
            id,
            viewers: sharing.viewers().collect(),
            visibility: sharing.visibility(),
        }
    }
}

/// Body of `POST /v1/travellers/within`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravellerAreaQueryIn {
    /// The area.
    pub area: AreaIn,
    /// Who is looking: only travellers this viewer may see are listed (absent or null:
    /// public travellers only).
    #[serde(default)]
    pub viewer: Option<String>,
    /// Page size.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Continues a previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A traveller where it is now: `{"id", "lat", "lon", "ts"}`.
#[derive(Debug, Serialize)]
pub struct TravellerAtOut<'a> {
    id: &'a str,
    lat: f64,
    lon: f64,
    ts: i64,
}

impl<'a> From<&'a TravellerAt> for TravellerAtOut<'a> {
    fn from(t: &'a TravellerAt) -> Self {
        Self {
            id: &t.id,
            lat: t.position.lat,
            lon: t.position.lon,
            ts: t.ts,
        }
    }
}

/// A page of travellers: `{"results", "next_cursor"}`.
#[derive(Debug, Serialize)]
pub struct TravellerAtPageOut<'a> {
    results: Vec<TravellerAtOut<'a>>,
    next_cursor: Option<&'a str>,
}

impl<'a> TravellerAtPageOut<'a> {
    /// A page of `travellers`, with the cursor to the next.
    pub fn new(travellers: &'a [TravellerAt], next_cursor: Option<&'a str>) -> Self {
        Self {
            results: travellers.iter().map(TravellerAtOut::from).collect(),
            next_cursor,
        }
    }
}
