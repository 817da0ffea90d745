//! GeoJSON tracks (RFC 7946): a FeatureCollection, read feature by feature as it streams
//! in, or one Feature. A `Point` feature is one point, its time in `properties.timestamp`
//! (or `time`: ISO 8601, or Unix seconds or milliseconds); a `LineString` or
//! `MultiLineString` is its positions, their times in `properties.coordTimes` (or
//! `times`), as `togeojson` writes GPX tracks (one list a line for a MultiLineString).
//! Features of other geometries are rejected by position.

use std::fmt;
use std::io::Read;

use serde::Deserializer as _;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::bounded::{Bounded, Budgeted, MAX_RECORD_VALUES};
use super::{PointAt, TrackSink, give, read_json, route_point};
use crate::import::ImportError;
use crate::server::trackers::time::{from_epoch_number, from_iso};

/// Reads a GeoJSON FeatureCollection (or Feature) into `sink`.
pub fn read(input: impl Read, sink: &mut impl TrackSink) -> Result<(), ImportError> {
    read_json(input, "GeoJSON", |de| de.deserialize_map(Top { sink }))
}

struct Top<'a, S> {
    sink: &'a mut S,
}

impl<'de, S: TrackSink> Visitor<'de> for Top<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GeoJSON FeatureCollection or Feature object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut kind: Option<String> = None;
        let mut rest = Map::new();
        let mut stopped = false;
        // A file that is one Feature: its geometry and properties share one record's bound.
        let mut left = MAX_RECORD_VALUES;
        let mut too_big = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => kind = Some(map.next_value()?),
                "features" => {
                    stopped = map.next_value_seed(Features {
                        sink: &mut *self.sink,
                    })?;
                }
                "geometry" | "properties" => {
                    match map.next_value_seed(Budgeted::new(&mut left))? {
                        Some(value) => {
                            rest.insert(key, value);
                        }
                        None => too_big = true,
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match kind.as_deref() {
            Some("FeatureCollection") => Ok(()),
            Some("Feature") if too_big => {
                let at = PointAt::Feature {
                    feature: 0,
                    position: None,
                };
                self.sink.reject(at, self::too_big());
                Ok(())
            }
            Some("Feature") if !stopped => {
                feature(Value::Object(rest), 0, self.sink);
                Ok(())
            }
            Some("Feature") => Ok(()),
            Some(other) => Err(serde::de::Error::custom(format!(
                "type is {other:?}, expected \"FeatureCollection\" or \"Feature\""
            ))),
            None => Err(serde::de::Error::custom(
                "missing \"type\": \"FeatureCollection\"",
            )),
        }
    }
}

/// Why a feature past [`MAX_RECORD_VALUES`] is refused.
fn too_big() -> String {
    format!(
        "a feature of more than {MAX_RECORD_VALUES} values (numbers, strings, arrays); split the track into features"
    )
}

struct Features<'a, S> {
    sink: &'a mut S,
}

impl<'de, S: TrackSink> DeserializeSeed<'de> for Features<'_, S> {
    /// Whether the sink stopped the reading.
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S: TrackSink> Visitor<'de> for Features<'_, S> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut index = 0u64;
        // One feature in memory at a time, and a bounded one.
        while let Some(value) = seq.next_element_seed(Bounded::RECORD)? {
            let Some(value) = value else {
                let at = PointAt::Feature {
                    feature: index,
                    position: None,
                };
                self.sink.reject(at, too_big());
                index += 1;
                continue;
            };
            if !feature(value, index, self.sink) {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(true);
            }
            index += 1;
        }
        Ok(false)
    }
}

/// One feature's points into `sink`; `false` when the sink stopped the reading.
fn feature(value: Value, index: u64, sink: &mut impl TrackSink) -> bool {
    let whole = PointAt::Feature {
        feature: index,
        position: None,
    };
    let geometry = value.get("geometry").filter(|g| !g.is_null());
    let Some(geometry) = geometry else {
        sink.reject(whole, "geometry: missing".into());
        return true;
    };
    let properties = value.get("properties").and_then(Value::as_object);
    let kind = geometry.get("type").and_then(Value::as_str).unwrap_or("");
    let coordinates = geometry.get("coordinates");
    match kind {
        "Point" => {
            let ts = properties.and_then(|p| {
                ["timestamp", "time"]
                    .iter()
                    .find_map(|k| p.get(*k))
                    .and_then(instant)
            });
            let point = position(coordinates).and_then(|(lon, lat)| route_point(lat, lon, ts));
            give(sink, whole, point)
        }
        "LineString" | "MultiLineString" => {
            let lines: Vec<&Vec<Value>> = match (kind, coordinates.and_then(Value::as_array)) {
                ("LineString", Some(line)) => vec![line],
                (_, Some(lines)) => lines.iter().filter_map(Value::as_array).collect(),
                (_, None) => {
                    sink.reject(whole, "geometry.coordinates: missing".into());
                    return true;
                }
            };
            let times = properties.and_then(|p| p.get("coordTimes").or_else(|| p.get("times")));
            let Some(times) = times.and_then(Value::as_array) else {
                sink.reject(
                    whole,
                    "properties.coordTimes: missing; a line needs a time for each position".into(),
                );
                return true;
            };
            // One list of times a line for a MultiLineString, or one flat list.
            let flat: Vec<&Value> =
                if kind == "MultiLineString" && times.first().is_some_and(Value::is_array) {
                    times.iter().filter_map(Value::as_array).flatten().collect()
                } else {
                    times.iter().collect()
                };
            let mut n = 0u32;
            for line in lines {
                for p in line {
                    let at = PointAt::Feature {
                        feature: index,
                        position: Some(n),
                    };
                    let ts = flat.get(n as usize).and_then(|t| instant(t));
                    let point = position(Some(p)).and_then(|(lon, lat)| route_point(lat, lon, ts));
                    if !give(sink, at, point) {
                        return false;
                    }
                    n = n.saturating_add(1);
                }
            }
            true
        }
        other => {
            sink.reject(
                whole,
                format!("geometry.type: {other:?}; a track is Point, LineString or MultiLineString features"),
            );
            true
        }
    }
}

/// `[lon, lat, ...]`.
fn position(value: Option<&Value>) -> Result<(f64, f64), String> {
    let numbers = value
        .and_then(Value::as_array)
        .filter(|p| p.len() >= 2)
        .ok_or("coordinates: a position is [lon, lat]")?;
    match (numbers[0].as_f64(), numbers[1].as_f64()) {
        (Some(lon), Some(lat)) => Ok((lon, lat)),
        _ => Err("coordinates: a position is [lon, lat], numbers".into()),
    }
}

/// An instant: ISO 8601 text, or Unix seconds or milliseconds.
fn instant(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => {
            from_iso(s).or_else(|| s.parse::<i64>().ok().and_then(from_epoch_number))
        }
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .and_then(from_epoch_number),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Kept;
    use super::*;

    #[test]
    fn points_and_lines_with_times_are_read_and_the_rest_rejected_by_position() {
        let doc = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.9, 60.1]},
             "properties": {"timestamp": "2024-05-01T10:00:00Z"}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[24.9, 60.2], [24.9, 60.3]]},
             "properties": {"coordTimes": ["2024-05-01T10:00:01Z", "2024-05-01T10:00:02Z"]}},
            {"type": "Feature", "geometry": {"type": "MultiLineString", "coordinates": [[[1, 2]], [[3, 4], [5, 95]]]},
             "properties": {"coordTimes": [[1714557603000], [1714557604, "2024-05-01T10:00:05Z"]]}},
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []}, "properties": {}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}
        ]}"#;
        let mut kept = Kept::default();
        read(doc.as_bytes(), &mut kept).expect("reads");
        let ts: Vec<i64> = kept
            .points
            .iter()
            .map(|(_, p)| p.ts - 1_714_557_600_000)
            .collect();
        assert_eq!(ts, [0, 1_000, 2_000, 3_000, 4_000]);
        let rejected: Vec<&str> = kept.rejected.iter().map(|(at, _)| at.as_str()).collect();
        assert_eq!(
            rejected,
            [
                "features[2].geometry.coordinates[2]",
                "features[3]",
                "features[4]"
            ]
        );
        assert!(kept.rejected[0].1.starts_with("lat"), "{:?}", kept.rejected);
        assert!(
            kept.rejected[2].1.starts_with("time"),
            "{:?}",
            kept.rejected
        );
    }

    #[test]
    fn one_feature_is_read_and_other_json_is_refused() {
        let doc = r#"{"type": "Feature", "properties": {"coordTimes": ["2024-05-01T10:00:00Z"]},
            "geometry": {"type": "LineString", "coordinates": [[24.9, 60.2]]}}"#;
        let mut kept = Kept::default();
        read(doc.as_bytes(), &mut kept).expect("reads");
        assert_eq!(kept.points.len(), 1);
        for bad in [r#"{"type": "Topology"}"#, "[1, 2]", r#"{"features": []"#] {
            let err = read(bad.as_bytes(), &mut Kept::default()).expect_err("refused");
            assert!(err.to_string().starts_with("GeoJSON: "), "{err}");
        }
    }
}
