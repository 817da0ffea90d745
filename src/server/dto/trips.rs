//! Trip wire types: the trip body, the trip with its figures, stays, links and followers.
//! Answers keep their fields in alphabetical order (see the [module doc](super)).

use serde::{Deserialize, Serialize};

use crate::engine::StayAt;
use crate::routes::{RoutePoint, TripFigures};
use crate::trips::{Link, Trip, TripRecord};

/// The body of `PUT /v1/trips/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripIn {
    /// Whose trip it is.
    pub traveller: String,
    /// Its title.
    pub title: String,
    /// When it starts, Unix ms (default: now, or as stored for a trip replaced).
    #[serde(default)]
    pub started_at: Option<i64>,
    /// When it ends, Unix ms (absent or null: it goes on).
    #[serde(default)]
    pub ended_at: Option<i64>,
}

/// The latest instant a trip or an imported point may name, Unix ms: the last of the year
/// 9999, the last a GPX or GeoJSON time (RFC 3339) can write.
pub const LATEST_TIME_MS: i64 = 253_402_300_799_999;

impl TripIn {
    /// Refuses times before 1970 or past [`LATEST_TIME_MS`], naming the field: a route's
    /// durations and its GPX are computed from them.
    pub fn check_times(&self) -> Result<(), String> {
        for (field, value) in [("started_at", self.started_at), ("ended_at", self.ended_at)] {
            if let Some(v) = value
                && !(0..=LATEST_TIME_MS).contains(&v)
            {
                return Err(format!(
                    "{field}: {v} is outside 0 to {LATEST_TIME_MS} (Unix ms, from 1970 to the end of 9999)"
                ));
            }
        }
        Ok(())
    }
}

/// The body of `POST /v1/trips/{id}/links`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkIn {
    /// When the link stops working, Unix ms.
    pub expires_at: i64,
    /// The earliest point it shows.
    #[serde(default)]
    pub show_from: Option<i64>,
    /// The latest point it shows.
    #[serde(default)]
    pub show_to: Option<i64>,
}

/// A trip as stored: the answer to `PUT /v1/trips/{id}`.
#[derive(Debug, Serialize)]
pub struct TripOut<'a> {
    ended_at: Option<i64>,
    id: &'a str,
    started_at: i64,
    title: &'a str,
    traveller: &'a str,
}

impl<'a> From<&'a Trip> for TripOut<'a> {
    fn from(t: &'a Trip) -> Self {
        Self {
            ended_at: t.ended_at(),
            id: t.id(),
            started_at: t.started_at(),
            title: t.title(),
            traveller: t.traveller(),
        }
    }
}

/// A point of a route on the wire.
#[derive(Debug, Serialize)]
pub struct PointOut {
    lat: f64,
    lon: f64,
    ts: i64,
}

impl From<&RoutePoint> for PointOut {
    fn from(p: &RoutePoint) -> Self {
        Self {
            lat: p.lat,
            lon: p.lon,
            ts: p.ts,
        }
    }
}

/// A trip and its figures: `GET /v1/trips/{id}`.
#[derive(Debug, Serialize)]
pub struct TripFiguresOut<'a> {
    bbox: Option<[f64; 4]>,
    countries: Vec<&'a str>,
    distance_m: f64,
    duration_s: f64,
    ended_at: Option<i64>,
    explored_km2: f64,
    id: &'a str,
    last: Option<PointOut>,
    points: u64,
    started_at: i64,
    title: &'a str,
    traveller: &'a str,
}

impl<'a> TripFiguresOut<'a> {
    /// `trip` with `figures`.
    pub fn new(trip: &'a Trip, figures: &'a TripFigures) -> Self {
        Self {
            bbox: figures.bbox(),
            countries: figures.countries(),
            distance_m: figures.distance_m,
            duration_s: figures.duration_s(),
            ended_at: trip.ended_at(),
            explored_km2: figures.explored_km2,
            id: trip.id(),
            last: figures.last.as_ref().map(PointOut::from),
            points: figures.points,
            started_at: trip.started_at(),
            title: trip.title(),
            traveller: trip.traveller(),
        }
    }
}

/// A page of trips: `GET /v1/travellers/{id}/trips`.
#[derive(Debug, Serialize)]
pub struct TripPageOut<'a> {
    next_cursor: Option<String>,
    results: Vec<TripOut<'a>>,
}

impl<'a> TripPageOut<'a> {
    /// One page, and the cursor to the next.
    pub fn new(trips: &'a [TripRecord], next_cursor: Option<String>) -> Self {
        Self {
            next_cursor,
            results: trips.iter().map(|r| TripOut::from(&r.trip)).collect(),
        }
    }
}

/// A trip's followers: `GET /v1/trips/{id}/followers`.
#[derive(Debug, Serialize)]
pub struct FollowersOut<'a> {
    results: &'a [String],
}

impl<'a> FollowersOut<'a> {
    /// The followers, sorted.
    pub fn new(followers: &'a [String]) -> Self {
        Self { results: followers }
    }
}

/// A link as listed (never its token).
#[derive(Debug, Serialize)]
pub struct LinkOut<'a> {
    expires_at: i64,
    id: &'a str,
    show_from: Option<i64>,
    show_to: Option<i64>,
}

impl<'a> From<&'a Link> for LinkOut<'a> {
    fn from(l: &'a Link) -> Self {
        Self {
            expires_at: l.expires_at,
            id: &l.id,
            show_from: l.show_from,
            show_to: l.show_to,
        }
    }
}

/// A trip's links: `GET /v1/trips/{id}/links`.
#[derive(Debug, Serialize)]
pub struct LinksOut<'a> {
    results: Vec<LinkOut<'a>>,
}

impl<'a> LinksOut<'a> {
    /// The links, as kept.
    pub fn new(links: &'a [Link]) -> Self {
        Self {
            results: links.iter().map(LinkOut::from).collect(),
        }
    }
}

/// A link just created, with its token (shown this once): `POST /v1/trips/{id}/links`.
#[derive(Debug, Serialize)]
pub struct LinkCreatedOut<'a> {
    expires_at: i64,
    id: &'a str,
    show_from: Option<i64>,
    show_to: Option<i64>,
    token: &'a str,
    url: String,
}

impl<'a> LinkCreatedOut<'a> {
    /// `link`, opened by `token`.
    pub fn new(link: &'a Link, token: &'a str) -> Self {
        Self {
            expires_at: link.expires_at,
            id: &link.id,
            show_from: link.show_from,
            show_to: link.show_to,
            token,
            url: format!("/t/{token}"),
        }
    }
}

/// The POI nearest a stay.
#[derive(Debug, Serialize)]
struct StayPoiOut<'a> {
    category: &'a str,
    distance_m: f64,
    id: &'a str,
    name: &'a str,
}

/// A stay.
#[derive(Debug, Serialize)]
struct StayOut<'a> {
    arrived: i64,
    lat: f64,
    left: i64,
    lon: f64,
    poi: Option<StayPoiOut<'a>>,
    points: usize,
}

/// A trip's stays: `GET /v1/trips/{id}/stays`.
#[derive(Debug, Serialize)]
pub struct StaysOut<'a> {
    results: Vec<StayOut<'a>>,
}

impl<'a> StaysOut<'a> {
    /// The stays, in time order.
    pub fn new(stays: &'a [StayAt]) -> Self {
        Self {
            results: stays
                .iter()
                .map(|s| StayOut {
                    arrived: s.stay.arrived,
                    lat: s.stay.centre.lat,
                    left: s.stay.left,
                    lon: s.stay.centre.lon,
                    poi: s.poi.as_ref().map(|p| StayPoiOut {
                        category: &p.category,
                        distance_m: p.distance_m,
                        id: &p.id,
                        name: &p.name,
                    }),
                    points: s.stay.points,
                })
                .collect(),
        }
    }
}

/// A route point as a `point` event's data.
pub fn point_event_data(p: &RoutePoint, cut: bool) -> String {
    /// A point, and whether the route was cut just before it (a privacy zone hid the
    /// points between: the reader starts a new line).
    #[derive(Serialize)]
    struct StreamedPoint {
        #[serde(flatten)]
        point: PointOut,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        cut: bool,
    }
    serde_json::to_string(&StreamedPoint {
        point: PointOut::from(p),
        cut,
    })
    .expect("a point serializes")
}

/// A point of a track import that was not stored: where it was in the file, and why.
#[derive(Debug, Serialize)]
pub struct TrackRejected {
    /// Its position in the file (`trk[0].trkseg[1].trkpt[37]`, `locations[12]`,
    /// `features[3].geometry.coordinates[5]`).
    pub at: String,
    /// Why, naming the field.
    pub reason: String,
}

/// The answer to `POST /v1/trips/{id}/import`.
#[derive(Debug, Serialize)]
pub struct TrackImportOut {
    /// Points stored.
    pub imported: u64,
    /// Points left out.
    pub skipped: u64,
    /// The first of them.
    pub errors: Vec<TrackRejected>,
}
