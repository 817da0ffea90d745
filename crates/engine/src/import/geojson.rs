//! GeoJSON reader: a FeatureCollection of Point features, streamed feature by feature.
//!
//! The collection is walked with a serde visitor that takes each feature as raw JSON text
//! (`RawValue`) and hands it to the `geojson` crate on its own, so memory holds one feature
//! at a time and a malformed feature is a record error with its index, not the end of the
//! import. The id comes from the feature's `id` or `properties.id`; `name`, `category` and
//! `rating` from properties of those names; every other property becomes a tag.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{ImportError, KeepIoError, Location, ParsedPois, tag_value};
use crate::pois::Poi;

/// Reads a GeoJSON FeatureCollection.
pub fn read_geojson(input: impl Read) -> Result<ParsedPois, ImportError> {
    let mut parsed = ParsedPois::default();
    let mut reader = KeepIoError::new(std::io::BufReader::with_capacity(1 << 16, input));
    let mut de = serde_json::Deserializer::from_reader(&mut reader);
    let result = Collection {
        parsed: &mut parsed,
        seen_type: false,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Err(e) = result {
        return Err(reader
            .take_error()
            .unwrap_or_else(|| ImportError::Malformed(format!("GeoJSON: {e}"))));
    }
    Ok(parsed)
}

struct Collection<'a> {
    parsed: &'a mut ParsedPois,
    seen_type: bool,
}

impl<'de> DeserializeSeed<'de> for Collection<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Collection<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GeoJSON FeatureCollection object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => {
                    let kind: String = map.next_value()?;
                    if kind != "FeatureCollection" {
                        return Err(serde::de::Error::custom(format!(
                            "type is {kind:?}, expected \"FeatureCollection\""
                        )));
                    }
                    self.seen_type = true;
                }
                "features" => map.next_value_seed(Features(self.parsed))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !self.seen_type {
            return Err(serde::de::Error::custom(
                "missing \"type\": \"FeatureCollection\"",
            ));
        }
        Ok(())
    }
}

struct Features<'a>(&'a mut ParsedPois);

impl<'de> DeserializeSeed<'de> for Features<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Features<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0u64;
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            match feature_to_poi(raw.get()) {
                Ok(poi) => self.0.accept(poi),
                Err(reason) => self.0.reject(Location::Feature(index), reason),
            }
            index += 1;
        }
        Ok(())
    }
}

fn feature_to_poi(raw: &str) -> Result<Poi, String> {
    let feature: geojson::Feature =
        serde_json::from_str(raw).map_err(|e| format!("not a GeoJSON feature: {e}"))?;
    let geometry = feature
        .geometry
        .as_ref()
        .ok_or("geometry is missing (null)")?;
    let (lon, lat) = match &geometry.value {
        geojson::GeometryValue::Point { coordinates } if coordinates.len() >= 2 => {
            (coordinates[0], coordinates[1])
        }
        geojson::GeometryValue::Point { .. } => {
            return Err("geometry: a Point needs two coordinates".to_string());
        }
        other => {
            return Err(format!(
                "skipped: geometry is a {}, only Point features are imported",
                other.type_name()
            ));
        }
    };
    let mut properties = feature.properties.unwrap_or_default();
    let id = match (&feature.id, properties.remove("id")) {
        (Some(geojson::feature::Id::String(s)), _) => s.clone(),
        (Some(geojson::feature::Id::Number(n)), _) => n.to_string(),
        (None, Some(serde_json::Value::String(s))) => s,
        (None, Some(serde_json::Value::Number(n))) => n.to_string(),
        (None, _) => return Err("id: the feature has no id and no properties.id".to_string()),
    };
    let text = |value: Option<serde_json::Value>, field: &str| -> Result<Option<String>, String> {
        match value {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "properties.{field}: expected a string, got {other}"
            )),
        }
    };
    let name = text(properties.remove("name"), "name")?.unwrap_or_default();
    let category =
        text(properties.remove("category"), "category")?.ok_or("properties.category is missing")?;
    let rating = match properties.remove("rating") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(other) => return Err(format!("properties.rating: expected a number, got {other}")),
    };
    let tags: BTreeMap<String, String> = properties
        .iter()
        .filter_map(|(k, v)| tag_value(v).map(|v| (k.clone(), v)))
        .collect();
    Poi::new(id, lat, lon, name, category, tags, rating).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::malformed;

    #[test]
    fn point_features_become_pois_and_others_are_listed_by_index() {
        let input = r#"{"type": "FeatureCollection", "name": "test", "features": [
            {"type": "Feature", "id": "a", "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
             "properties": {"name": "Café", "category": "cafe", "rating": 4.5, "cuisine": "coffee", "seats": 12, "wifi": true, "note": null}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "properties": {"id": "b", "category": "road"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.9, 95]}, "properties": {"id": "c", "category": "cafe"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": ["x", 1]}, "properties": {"id": "d", "category": "cafe"}},
            {"type": "Feature", "geometry": null, "properties": {"id": "e", "category": "cafe"}},
            {"type": "Feature", "id": 7, "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"category": "park"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"id": "g", "category": 5}}
        ]}"#;
        let parsed = read_geojson(input.as_bytes()).expect("readable");
        let ids: Vec<&str> = parsed.pois.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "7"]);
        let a = &parsed.pois[0];
        assert_eq!(
            (a.position.lat, a.position.lon),
            (60.17, 24.94),
            "GeoJSON is lon, lat"
        );
        assert_eq!(a.tags.get("seats").map(String::as_str), Some("12"));
        assert_eq!(a.tags.get("wifi").map(String::as_str), Some("true"));
        assert!(!a.tags.contains_key("note") && !a.tags.contains_key("category"));
        let at: Vec<String> = parsed
            .errors
            .iter()
            .map(|e| e.location.to_string())
            .collect();
        assert_eq!(
            at,
            [
                "feature 1",
                "feature 2",
                "feature 3",
                "feature 4",
                "feature 6"
            ]
        );
        assert!(
            parsed.errors[0].reason.contains("LineString"),
            "{}",
            parsed.errors[0].reason
        );
        assert!(
            parsed.errors[1].reason.starts_with("lat"),
            "{}",
            parsed.errors[1].reason
        );
    }

    #[test]
    fn truncated_or_foreign_documents_are_clear_errors() {
        let truncated =
            r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry""#;
        assert_eq!(
            malformed(read_geojson(truncated.as_bytes())),
            "GeoJSON: EOF while parsing an object at line 1 column 73"
        );
        let wrong = r#"{"type": "Feature", "geometry": null, "properties": {}}"#;
        assert_eq!(
            malformed(read_geojson(wrong.as_bytes())),
            r#"GeoJSON: type is "Feature", expected "FeatureCollection" at line 1 column 19"#
        );
        assert_eq!(
            malformed(read_geojson(&b"\xff\xfe"[..])),
            "GeoJSON: expected value at line 1 column 1"
        );
    }
}
