//! POI wire types: the body of `PUT /v1/pois/{id}`, POIs and pages of them as answered
//! (pages written by hand, byte for byte what `serde_json` writes), and import summaries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AreaIn;
use crate::engine::ImportSummary;
use crate::import::{Location, RecordError};
use crate::pois::{NearbyHit, Poi, PoiRef};
use crate::server::json_writer;

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
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        json_writer::string(out, self.id);
        out.extend_from_slice(b",\"lat\":");
        json_writer::number(out, self.lat);
        out.extend_from_slice(b",\"lon\":");
        json_writer::number(out, self.lon);
        out.extend_from_slice(b",\"name\":");
        json_writer::string(out, self.name);
        out.extend_from_slice(b",\"category\":");
        json_writer::string(out, self.category);
        out.extend_from_slice(b",\"tags\":{");
        let mut first = true;
        self.tags.each(|key, value| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            json_writer::string(out, key);
            out.push(b':');
            json_writer::string(out, value);
        });
        out.push(b'}');
        if let Some(rating) = self.rating {
            out.extend_from_slice(b",\"rating\":");
            json_writer::number(out, rating);
        }
        if let Some(distance_m) = self.distance_m {
            out.extend_from_slice(b",\"distance_m\":");
            json_writer::number(out, distance_m);
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
}

impl PageOut<'_> {
    /// The page as JSON: what `serde_json::to_vec` gives, written by hand because this is
    /// every nearby and within answer (see [`crate::server::json_writer`]). One buffer, sized for a
    /// typical page of 20 POIs, so that it is not grown five times over.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(b"{\"results\":[");
        for (i, poi) in self.results.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            poi.write_json(&mut out);
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
        };
        prop_assert_eq!(
            String::from_utf8(owned.to_json()).expect("UTF-8"),
            serde_json::to_string(&owned).expect("serializes")
        );

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
        };
        prop_assert_eq!(
            String::from_utf8(borrowed.to_json()).expect("UTF-8"),
            serde_json::to_string(&borrowed).expect("serializes")
        );
        Ok(())
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
