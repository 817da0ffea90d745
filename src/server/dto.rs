//! Wire types: the JSON bodies the API reads and writes, kept apart from the core types so
//! that the core can change shape without changing the contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::ImportSummary;
use crate::import::{Location, RecordError};
use crate::pois::{NearbyHit, Poi, PoiRef};

/// Body of `PUT /v1/pois/{id}`: a POI without its id (an `id` equal to the path's is
/// tolerated, so clients may send back what they read).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoiIn {
    /// Must equal the path id if present.
    pub id: Option<String>,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Display name.
    pub name: String,
    /// Short lowercase word.
    pub category: String,
    /// Free-form attributes.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Optional rating.
    #[serde(default)]
    pub rating: Option<f64>,
}

/// A POI as the API shows it, optionally with its distance from a query centre.
#[derive(Debug, Serialize)]
pub struct PoiOut<'a> {
    id: &'a str,
    lat: f64,
    lon: f64,
    name: &'a str,
    category: &'a str,
    tags: TagsOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rating: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_m: Option<f64>,
}

/// Tags, from an owned POI or borrowed from the index; either way a JSON object.
#[derive(Debug, Clone, Copy)]
enum TagsOut<'a> {
    Owned(&'a BTreeMap<String, String>),
    Borrowed(PoiRef<'a>),
}

impl Serialize for TagsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Owned(map) => serializer.collect_map(map.iter()),
            Self::Borrowed(poi) => serializer.collect_map(poi.tags()),
        }
    }
}

impl<'a> From<&'a Poi> for PoiOut<'a> {
    fn from(p: &'a Poi) -> Self {
        Self {
            id: &p.id,
            lat: p.position.lat,
            lon: p.position.lon,
            name: &p.name,
            category: &p.category,
            tags: TagsOut::Owned(&p.tags),
            rating: p.rating,
            distance_m: None,
        }
    }
}

impl<'a> From<&PoiRef<'a>> for PoiOut<'a> {
    fn from(p: &PoiRef<'a>) -> Self {
        Self {
            id: p.id(),
            lat: p.position().lat,
            lon: p.position().lon,
            name: p.name(),
            category: p.category(),
            tags: TagsOut::Borrowed(*p),
            rating: p.rating(),
            distance_m: None,
        }
    }
}

impl<'a> From<&NearbyHit<'a>> for PoiOut<'a> {
    fn from(hit: &NearbyHit<'a>) -> Self {
        Self {
            distance_m: Some(hit.distance_m),
            ..Self::from(&hit.poi)
        }
    }
}

/// A page of results.
#[derive(Debug, Serialize)]
pub struct PageOut<'a> {
    /// The results.
    pub results: Vec<PoiOut<'a>>,
    /// The cursor to the next page, or null.
    pub next_cursor: Option<&'a str>,
}

/// One bad import record: `{"line"|"feature"|"element", "reason"}`.
#[derive(Debug, Serialize)]
pub struct RecordErrorOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    element: Option<&'a str>,
    reason: &'a str,
}

impl<'a> From<&'a RecordError> for RecordErrorOut<'a> {
    fn from(e: &'a RecordError) -> Self {
        let (mut line, mut feature, mut element) = (None, None, None);
        match &e.location {
            Location::Line(n) => line = Some(*n),
            Location::Feature(n) => feature = Some(*n),
            Location::Element(id) => element = Some(id.as_str()),
        }
        Self {
            line,
            feature,
            element,
            reason: &e.reason,
        }
    }
}

/// Result of an import.
#[derive(Debug, Serialize)]
pub struct ImportOut<'a> {
    imported: u64,
    skipped: u64,
    errors: Vec<RecordErrorOut<'a>>,
}

impl<'a> From<&'a ImportSummary> for ImportOut<'a> {
    fn from(s: &'a ImportSummary) -> Self {
        Self {
            imported: s.imported,
            skipped: s.skipped,
            errors: s.errors.iter().map(Into::into).collect(),
        }
    }
}
