//! Fence wire types: the body of `PUT /v1/fences/{id}`, fences and pages of them as
//! answered, who is inside, and the data line of a fence event.

use serde::{Deserialize, Deserializer, Serialize};

use super::{AreaIn, AreaOut, TravellerAtOut};
use crate::events::{Cause, Event, EventId, EventKind};
use crate::fences::{Fence, FenceKind};
use crate::travellers::TravellerAt;

/// Body of `PUT /v1/fences/{id}`: an `area` (a static fence) or `roaming`, and `viewer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FenceIn {
    /// Must equal the path id if present.
    #[serde(default)]
    pub id: Option<String>,
    /// A static fence's area.
    #[serde(default)]
    pub area: Option<AreaIn>,
    /// A roaming fence's circle.
    #[serde(default)]
    pub roaming: Option<RoamingIn>,
    /// Whose view the fence has: a traveller id, or `null` for everyone. Required, so that
    /// `null` is never an accident: absent is `None`, null is `Some(None)`.
    #[serde(default, deserialize_with = "present")]
    pub viewer: Option<Option<String>>,
}

/// A member given, even as `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `{"around", "radius_m"}` of a roaming fence.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoamingIn {
    /// The traveller it is around.
    pub around: String,
    /// Metres.
    pub radius_m: f64,
}

/// A fence as answered.
#[derive(Debug, Serialize)]
pub struct FenceOut<'a> {
    id: &'a str,
    viewer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    area: Option<AreaOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roaming: Option<RoamingOut<'a>>,
}

#[derive(Debug, Serialize)]
struct RoamingOut<'a> {
    around: &'a str,
    radius_m: f64,
}

impl<'a> From<&'a Fence> for FenceOut<'a> {
    fn from(f: &'a Fence) -> Self {
        let (area, roaming) = match &f.kind {
            FenceKind::Static(area) => (Some(AreaOut::from(area)), None),
            FenceKind::Roaming { around, radius_m } => (
                None,
                Some(RoamingOut {
                    around,
                    radius_m: *radius_m,
                }),
            ),
        };
        Self {
            id: &f.id,
            viewer: f.viewer.as_deref(),
            area,
            roaming,
        }
    }
}

/// A page of fences.
#[derive(Debug, Serialize)]
pub struct FencePageOut<'a> {
    results: Vec<FenceOut<'a>>,
    next_cursor: Option<&'a str>,
}

impl<'a> FencePageOut<'a> {
    /// A page of `fences`, with the cursor to the next.
    pub fn new(fences: &'a [Fence], next_cursor: Option<&'a str>) -> Self {
        Self {
            results: fences.iter().map(FenceOut::from).collect(),
            next_cursor,
        }
    }
}

/// Who is inside a fence: `{"results", "next_cursor", "last_event_id"}`.
#[derive(Debug, Serialize)]
pub struct InsideOut<'a> {
    results: Vec<TravellerAtOut<'a>>,
    next_cursor: Option<&'a str>,
    last_event_id: String,
}

impl<'a> InsideOut<'a> {
    /// A page of the travellers inside, the cursor to the next, and the newest event.
    pub fn new(
        travellers: &'a [TravellerAt],
        next_cursor: Option<&'a str>,
        last_event: EventId,
    ) -> Self {
        Self {
            results: travellers.iter().map(TravellerAtOut::from).collect(),
            next_cursor,
            last_event_id: last_event.to_string(),
        }
    }
}

/// The data line of a fence event: `{"fence", "traveller", "lat", "lon", "ts", "cause",
/// "distance_m"?, "around"?}`; for `deleted`, `{"fence"}`. `around` (roaming fences) is
/// where the traveller the fence is around was: `{"lat", "lon", "ts"}`.
#[derive(Debug, Serialize)]
pub struct EventDataOut<'a> {
    fence: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    traveller: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    around: Option<AroundOut>,
}

/// Where a roaming fence's traveller was: `{"lat", "lon", "ts"}`.
#[derive(Debug, Serialize)]
pub struct AroundOut {
    lat: f64,
    lon: f64,
    ts: i64,
}

impl<'a> From<&'a Event> for EventDataOut<'a> {
    fn from(e: &'a Event) -> Self {
        let t = e.event.traveller.as_ref();
        Self {
            fence: &e.event.fence.id,
            traveller: t.map(|t| t.id.as_str()),
            lat: t.map(|t| t.position.lat),
            lon: t.map(|t| t.position.lon),
            ts: t.map(|t| t.ts),
            cause: e.event.cause,
            distance_m: e.event.distance_m,
            around: e.event.around.map(|a| AroundOut {
                lat: a.position.lat,
                lon: a.position.lon,
                ts: a.ts,
            }),
        }
    }
}

/// The SSE `event:` name of a kind.
pub fn event_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Enter => "enter",
        EventKind::Exit => "exit",
        EventKind::Nearby => "nearby",
        EventKind::Faraway => "faraway",
        EventKind::Deleted => "deleted",
    }
}
