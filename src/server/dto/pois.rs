//! POI wire types: the body of `PUT /v1/pois/{id}`, POIs and pages of them as answered
//! (pages written by hand, byte for byte what `serde_json` writes), and import summaries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AreaIn;
use crate::engine::ImportSummary;
use crate::import::{Location, RecordError};
use crate::pois::{NearbyHit, Poi, PoiRef};
use crate::server::json_writer;

pub use super::fields::ResponseFields;

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

/// Body of `POST /v1/pois/within`: an area, the filters of `GET /v1/pois/within`, and a page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoiAreaQueryIn {
    /// The area.
    pub area: AreaIn,
    /// Any of these categories.
    #[serde(default)]
    pub category: Vec<String>,
    /// Only POIs rated at least this.
    #[serde(default)]
    pub min_rating: Option<f64>,
    /// Page size.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Continues a previous page.
    #[serde(default)]
    pub cursor: Option<String>,
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

impl TagsOut<'_> {
    /// Calls `f` with each tag, in the order they serialize.
    fn each(&self, mut f: impl FnMut(&str, &str)) {
        match self {
            Self::Owned(map) => map.iter().for_each(|(k, v)| f(k, v)),
            Self::Borrowed(poi) => poi.tags().for_each(|(k, v)| f(k, v)),
        }
    }
}

impl PoiOut<'_> {
    /// Appends the POI as JSON: what `serde_json` writes for it, faster (see
    /// [`crate::server::json_writer`]).
    fn write_json(&self, out: &mut Vec<u8>, fields: ResponseFields) {
        // Each field after the first is preceded by a comma.
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, key: &[u8]| {
            out.extend_from_slice(if std::mem::take(&mut first) {
                b"{"
            } else {
                b","
            });
            out.extend_from_slice(key);
        };
        if fields.has(ResponseFields::ID) {
            key(out, b"\"id\":");
            json_writer::string(out, self.id);
        }
        if fields.has(ResponseFields::LAT) {
            key(out, b"\"lat\":");
            json_writer::number(out, self.lat);
        }
        if fields.has(ResponseFields::LON) {
            key(out, b"\"lon\":");
            json_writer::number(out, self.lon);
        }
        if fields.has(ResponseFields::NAME) {
            key(out, b"\"name\":");
            json_writer::string(out, self.name);
        }
        if fields.has(ResponseFields::CATEGORY) {
            key(out, b"\"category\":");
            json_writer::string(out, self.category);
        }
        if fields.has(ResponseFields::TAGS) {
            key(out, b"\"tags\":{");
            let mut first_tag = true;
            self.tags.each(|k, v| {
                if !std::mem::take(&mut first_tag) {
                    out.push(b',');
                }
                json_writer::string(out, k);
                out.push(b':');
                json_writer::string(out, v);
            });
            out.push(b'}');
        }
        if let Some(rating) = self.rating.filter(|_| fields.has(ResponseFields::RATING)) {
            key(out, b"\"rating\":");
            json_writer::number(out, rating);
        }
        if let Some(distance_m) = self
            .distance_m
            .filter(|_| fields.has(ResponseFields::DISTANCE_M))
        {
            key(out, b"\"distance_m\":");
            json_writer::number(out, distance_m);
        }
        if first {
            out.push(b'{');
        }
        out.push(b'}');
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
    /// The fields of each result written ([`PageOut::to_json`] only).
    #[serde(skip)]
    pub fields: ResponseFields,
}

impl PageOut<'_> {
    /// The page as JSON: what `serde_json::to_vec` gives, written by hand because this is
    /// every nearby and within answer (see [`crate::server::json_writer`]). One buffer, sized
    /// for the page's POIs at a typical ~200 bytes each, so that it is seldom grown (and a
    /// page of a few POIs does not take 4 KiB).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 256 * self.results.len());
        out.extend_from_slice(b"{\"results\":[");
        for (i, poi) in self.results.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            poi.write_json(&mut out, self.fields);
        }
        out.extend_from_slice(b"],\"next_cursor\":");
        match self.next_cursor {
            Some(cursor) => json_writer::string(&mut out, cursor),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        out
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::LatLon;
    use crate::pois::{NearbyQuery, PoiFilter, PoiIndex};
    use proptest::prelude::*;

    fn poi() -> impl Strategy<Value = Poi> {
        (
            "[a-z0-9:]{1,12}",
            -90.0..=90.0f64,
            -180.0..=180.0f64,
            any::<String>(),
            "[a-z]{1,8}",
            proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4),
            proptest::option::of(0.0..=10.0f64),
        )
            .prop_map(|(id, lat, lon, name, category, tags, rating)| Poi {
                id,
                position: LatLon { lat, lon },
                name,
                category,
                tags,
                rating,
            })
    }

    /// The page written by hand and by `serde_json`, owned and borrowed from an index.
    fn assert_written_as_serde_json_writes_it(
        pois: &[Poi],
        distances: &[Option<f64>],
        cursor: Option<&str>,
    ) -> Result<(), TestCaseError> {
        let owned = PageOut {
            results: pois
                .iter()
                .zip(distances)
                .map(|(p, d)| PoiOut {
                    distance_m: *d,
                    ..PoiOut::from(p)
                })
                .collect(),
            next_cursor: cursor,
            fields: ResponseFields::ALL,
        };
        prop_assert_eq!(
            String::from_utf8(owned.to_json()).expect("UTF-8"),
            serde_json::to_string(&owned).expect("serializes")
        );
        // Any choice of fields: the full page less the others, in the same order.
        for chosen in 0..=u8::MAX {
            let names: Vec<&str> = ResponseFields::NAMES
                .iter()
                .filter(|(_, bit)| chosen & bit != 0)
                .map(|(n, _)| *n)
                .collect();
            if names.is_empty() {
                continue;
            }
            let fields = ResponseFields::parse(&names.join(","), true).expect("known fields");
            let partial = PageOut {
                results: pois
                    .iter()
                    .zip(distances)
                    .map(|(p, d)| PoiOut {
                        distance_m: *d,
                        ..PoiOut::from(p)
                    })
                    .collect(),
                next_cursor: cursor,
                fields,
            };
            let mut expected: serde_json::Value =
                serde_json::from_str(&serde_json::to_string(&owned).expect("serializes"))
                    .expect("JSON");
            for result in expected["results"].as_array_mut().expect("results") {
                result
                    .as_object_mut()
                    .expect("an object")
                    .retain(|k, _| names.contains(&k.as_str()));
            }
            let written = String::from_utf8(partial.to_json()).expect("UTF-8");
            prop_assert_eq!(
                serde_json::from_str::<serde_json::Value>(&written).expect("valid JSON"),
                expected.clone()
            );
        }

        // The same POIs found by a query: borrowed from the index, with distances.
        let mut index = PoiIndex::new();
        for p in pois {
            index.upsert(p.clone()).expect("few categories");
        }
        let page = index.nearby(&NearbyQuery {
            center: LatLon { lat: 0.0, lon: 0.0 },
            radius_m: None,
            limit: pois.len(),
            filter: PoiFilter::default(),
            after: None,
        });
        let borrowed = PageOut {
            results: page.items.iter().map(PoiOut::from).collect(),
            next_cursor: None,
            fields: ResponseFields::ALL,
        };
        prop_assert_eq!(
            String::from_utf8(borrowed.to_json()).expect("UTF-8"),
            serde_json::to_string(&borrowed).expect("serializes")
        );
        Ok(())
    }

    #[test]
    fn chosen_fields_come_in_their_usual_order_and_unknown_ones_are_named() {
        let poi = Poi {
            id: "cafe-1".into(),
            position: LatLon { lat: 1.5, lon: 2.5 },
            name: "Café".into(),
            category: "cafe".into(),
            tags: BTreeMap::new(),
            rating: Some(4.5),
        };
        let page = |fields: &str| {
            let page = PageOut {
                results: vec![PoiOut {
                    distance_m: Some(12.0),
                    ..PoiOut::from(&poi)
                }],
                next_cursor: None,
                fields: ResponseFields::parse(fields, true).expect("known fields"),
            };
            String::from_utf8(page.to_json()).expect("UTF-8")
        };
        assert_eq!(
            page("distance_m,id"),
            r#"{"results":[{"id":"cafe-1","distance_m":12.0}],"next_cursor":null}"#
        );
        assert_eq!(
            page("distance_m, lon,lat,id"),
            r#"{"results":[{"id":"cafe-1","lat":1.5,"lon":2.5,"distance_m":12.0}],"next_cursor":null}"#
        );
        assert_eq!(
            ResponseFields::parse("id,distance", true).expect_err("unknown"),
            "unknown field \"distance\"; the fields are id, lat, lon, name, category, tags, rating, distance_m"
        );
        assert!(
            ResponseFields::parse("id,distance_m", false)
                .expect_err("no distances in a within page")
                .contains("the fields are id, lat, lon, name, category, tags, rating")
        );
        assert!(
            ResponseFields::parse("", true).is_err(),
            "an empty list names no field"
        );
    }

    /// The case proptest once shrank a failure to: a rating of exactly zero.
    #[test]
    fn a_zero_rating_is_written_as_serde_json_writes_it() {
        let poi = Poi {
            id: "0".into(),
            position: LatLon { lat: 0.0, lon: 0.0 },
            name: String::new(),
            category: "a".into(),
            tags: BTreeMap::new(),
            rating: Some(0.0),
        };
        assert_written_as_serde_json_writes_it(&[poi], &[None; 5], None).expect("the same bytes");
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(256))]

        #[test]
        fn a_page_is_written_as_serde_json_writes_it(
            pois in proptest::collection::vec(poi(), 0..5),
            distances in proptest::collection::vec(proptest::option::of(0.0..2e7f64), 5),
            cursor in proptest::option::of(any::<String>()),
        ) {
            assert_written_as_serde_json_writes_it(&pois, &distances, cursor.as_deref())?;
        }
    }
}

/// The categories the POIs hold: `GET /v1/categories`.
#[derive(Debug, Serialize)]
pub struct CategoriesOut<'a> {
    categories: Vec<CategoryOut<'a>>,
}

impl<'a> From<&'a [(String, u64)]> for CategoriesOut<'a> {
    fn from(held: &'a [(String, u64)]) -> Self {
        Self {
            categories: held
                .iter()
                .map(|(name, count)| CategoryOut {
                    count: *count,
                    name,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct CategoryOut<'a> {
    count: u64,
    name: &'a str,
}
