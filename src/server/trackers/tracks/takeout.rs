//! Google Takeout location history, in its two shapes:
//! - the old `Records.json` (`{"locations": [{"latitudeE7", "longitudeE7", "timestamp"
//!   or "timestampMs", "accuracy", ...}]}`), which can be gigabytes: streamed record by
//!   record, each read into a small struct (the rest of a record, its activity guesses
//!   and Wi-Fi scans, skipped unread). Coordinates that overflowed a signed 32-bit number
//!   in Google's export (a latitude E7 above 900,000,000) are wrapped back, as the tools
//!   that read these files do;
//! - the newer on-device timeline export: Android's `{"semanticSegments": [...],
//!   "rawSignals": [...]}` and iOS's top-level array of segments. A segment's
//!   `timelinePath` points are route points (at their `time`, or at `startTime` plus
//!   `durationMinutesOffsetFromStartTime`); a `visit` is its place at its start and end
//!   time; an `activity` is its start at `startTime` and its end at `endTime`; a raw
//!   signal's `position` is a point. Places are written `"48.8566°, 2.3522°"` or
//!   `"geo:48.8566,2.3522"`.
//!
//! Streaming the old file at the rate the target asks (≥ 200,000 points/s) is why
//! records are read into a struct rather than a `serde_json::Value` each.

use std::fmt;
use std::io::Read;

use serde::Deserializer as _;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::bounded::{Bounded, MAX_RECORD_VALUES};
use super::{PointAt, TrackSink, give, read_json, route_point};
use crate::import::ImportError;
use crate::server::trackers::time::{from_epoch_number, from_iso};

/// Reads a Takeout location history into `sink`.
pub fn read(input: impl Read, sink: &mut impl TrackSink) -> Result<(), ImportError> {
    read_json(input, "Google Takeout", |de| {
        de.deserialize_any(Top { sink })
    })
}

struct Top<'a, S> {
    sink: &'a mut S,
}

impl<'de, S: TrackSink> Visitor<'de> for Top<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Takeout location history: Records.json or a timeline export")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut known = false;
        let mut going = true;
        while let Some(key) = map.next_key::<String>()? {
            let list = match key.as_str() {
                "locations" => List::Records,
                "semanticSegments" => List::Segments("semanticSegments"),
                "rawSignals" => List::RawSignals,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            known = true;
            if going {
                going = map.next_value_seed(Entries {
                    sink: &mut *self.sink,
                    list,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !known {
            return Err(serde::de::Error::custom(
                "no \"locations\" (Records.json) nor \"semanticSegments\" or \"rawSignals\" (a timeline export)",
            ));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        // iOS's timeline export: a list of segments.
        Entries {
            sink: self.sink,
            list: List::Segments(""),
        }
        .visit_seq(seq)
        .map(drop)
    }
}

#[derive(Clone, Copy)]
enum List {
    Records,
    Segments(&'static str),
    RawSignals,
}

struct Entries<'a, S> {
    sink: &'a mut S,
    list: List,
}

impl<'de, S: TrackSink> DeserializeSeed<'de> for Entries<'_, S> {
    /// Whether to go on (the sink did not stop the reading).
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S: TrackSink> Visitor<'de> for Entries<'_, S> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut index = 0u64;
        let mut going = true;
        macro_rules! each {
            ($ty:ty, $handle:expr) => {
                while let Some(entry) = seq.next_element::<$ty>()? {
                    if going {
                        going = $handle(entry, index, &mut *self.sink);
                    }
                    index += 1;
                }
            };
        }
        // A segment or signal is read into a `Value`, within a bound: a segment's
        // `timelinePath` is as long as its file lets it be.
        macro_rules! each_bounded {
            ($list:expr, $handle:expr) => {
                while let Some(entry) = seq.next_element_seed(Bounded::RECORD)? {
                    if going {
                        going = match entry {
                            Some(v) => $handle(v, index, &mut *self.sink),
                            None => {
                                let at = PointAt::Takeout {
                                    list: $list,
                                    index,
                                    part: None,
                                };
                                self.sink.reject(
                                    at,
                                    format!("an entry of more than {MAX_RECORD_VALUES} values (numbers, strings, arrays)"),
                                );
                                true
                            }
                        };
                    }
                    index += 1;
                }
            };
        }
        match self.list {
            List::Records => each!(Record, record),
            List::Segments(list) => {
                each_bounded!(list, |v: Value, i, sink| segment(&v, list, i, sink))
            }
            List::RawSignals => each_bounded!("rawSignals", raw_signal),
        }
        Ok(going)
    }
}

/// One entry of `Records.json` (what a point needs; the rest is skipped unread).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    latitude_e7: Option<i64>,
    longitude_e7: Option<i64>,
    timestamp: Option<String>,
    timestamp_ms: Option<StringOrNumber>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Number(i64),
    String(String),
}

/// An E7 coordinate, wrapped back if Google's export overflowed it past `limit` degrees.
fn e7(value: i64, limit: i64) -> f64 {
    let value = if value > limit * 10_000_000 {
        value - (1i64 << 32)
    } else {
        value
    };
    value as f64 / 1e7
}

fn record(r: Record, index: u64, sink: &mut impl TrackSink) -> bool {
    let at = PointAt::Takeout {
        list: "locations",
        index,
        part: None,
    };
    let ts = match (&r.timestamp, &r.timestamp_ms) {
        (Some(iso), _) => from_iso(iso),
        (None, Some(StringOrNumber::Number(ms))) => Some(*ms),
        (None, Some(StringOrNumber::String(ms))) => ms.trim().parse().ok(),
        (None, None) => None,
    };
    let point = match (r.latitude_e7, r.longitude_e7) {
        (Some(lat), Some(lon)) => match ts {
            Some(ts) => route_point(e7(lat, 90), e7(lon, 180), Some(ts)),
            None if r.timestamp.is_some() || r.timestamp_ms.is_some() => {
                Err("timestamp: not an ISO 8601 instant (or timestampMs not milliseconds)".into())
            }
            None => Err("timestamp: missing".into()),
        },
        (None, _) => Err("latitudeE7: missing".into()),
        (_, None) => Err("longitudeE7: missing".into()),
    };
    give(sink, at, point)
}

/// A place as the timeline export writes it: `"48.8566°, 2.3522°"` or
/// `"geo:48.8566,2.3522"`, or an object holding one (`{"latLng": ...}`).
fn place(value: &Value) -> Option<(f64, f64)> {
    let text = match value {
        Value::String(s) => s.as_str(),
        Value::Object(o) => {
            return ["latLng", "LatLng", "placeLocation"]
                .iter()
                .find_map(|k| o.get(*k))
                .and_then(place);
        }
        _ => return None,
    };
    let text = text.trim();
    let text = text.strip_prefix("geo:").unwrap_or(text);
    let (lat, lon) = text.split_once(',')?;
    let number = |s: &str| s.trim().trim_end_matches('°').trim().parse::<f64>().ok();
    Some((number(lat)?, number(lon)?))
}

fn text_instant(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::String(s) => from_iso(s),
        Value::Number(n) => n.as_i64().and_then(from_epoch_number),
        _ => None,
    }
}

fn segment(v: &Value, list: &'static str, index: u64, sink: &mut impl TrackSink) -> bool {
    let start = text_instant(v.get("startTime"));
    let end = text_instant(v.get("endTime"));
    let at = |part: Option<(&'static str, u32)>| PointAt::Takeout { list, index, part };
    let mut any = false;
    if let Some(path) = v.get("timelinePath").and_then(Value::as_array) {
        any = true;
        for (i, p) in (0u32..).zip(path) {
            let ts = text_instant(p.get("time")).or_else(|| {
                let offset = match p.get("durationMinutesOffsetFromStartTime")? {
                    Value::String(s) => s.parse::<f64>().ok()?,
                    Value::Number(n) => n.as_f64()?,
                    _ => return None,
                };
                Some(start? + (offset * 60_000.0) as i64)
            });
            let point = match p.get("point").and_then(place) {
                Some((lat, lon)) => route_point(lat, lon, ts),
                None => Err("point: not a place (\"lat°, lon°\" or \"geo:lat,lon\")".into()),
            };
            if !give(sink, at(Some(("timelinePath", i))), point) {
                return false;
            }
        }
    }
    let visit = v
        .get("visit")
        .and_then(|visit| visit.get("topCandidate"))
        .and_then(|c| c.get("placeLocation"));
    if let Some(location) = visit {
        any = true;
        for (i, ts) in (0u32..).zip([start, end]) {
            let point = match place(location) {
                Some((lat, lon)) => route_point(lat, lon, ts),
                None => Err("visit.topCandidate.placeLocation: not a place".into()),
            };
            if !give(sink, at(Some(("visit", i))), point) {
                return false;
            }
        }
    }
    if let Some(activity) = v.get("activity") {
        any = true;
        for (i, (key, ts)) in (0u32..).zip([("start", start), ("end", end)]) {
            let point = match activity.get(key).and_then(place) {
                Some((lat, lon)) => route_point(lat, lon, ts),
                None => Err(format!("activity.{key}: not a place")),
            };
            if !give(sink, at(Some(("activity", i))), point) {
                return false;
            }
        }
    }
    if !any {
        sink.reject(
            at(None),
            "a segment with no timelinePath, visit or activity".into(),
        );
    }
    true
}

fn raw_signal(v: Value, index: u64, sink: &mut impl TrackSink) -> bool {
    // Wi-Fi scans and activity records carry no position: not points, and not errors.
    let Some(position) = v.get("position") else {
        return true;
    };
    let at = PointAt::Takeout {
        list: "rawSignals",
        index,
        part: None,
    };
    let point = match position
        .get("LatLng")
        .or_else(|| position.get("latLng"))
        .and_then(place)
    {
        Some((lat, lon)) => route_point(lat, lon, text_instant(position.get("timestamp"))),
        None => Err("position.LatLng: not a place".into()),
    };
    give(sink, at, point)
}

#[cfg(test)]
mod tests {
    use super::super::testing::Kept;
    use super::*;

    #[test]
    fn records_json_in_both_of_its_time_fields_and_with_overflowed_coordinates() {
        let doc = r#"{"locations": [
            {"latitudeE7": 414216106, "longitudeE7": 21684775, "accuracy": 10,
             "activity": [{"activity": [{"type": "STILL", "confidence": 100}], "timestamp": "x"}],
             "source": "WIFI", "timestamp": "2022-01-12T17:18:24.190Z"},
            {"timestampMs": "1493193240000", "latitudeE7": 4204967296, "longitudeE7": -1, "accuracy": 5},
            {"latitudeE7": 1, "timestamp": "2022-01-12T17:18:25Z"},
            {"latitudeE7": 1, "longitudeE7": 1, "timestamp": "yesterday"}
        ]}"#;
        let mut kept = Kept::default();
        read(doc.as_bytes(), &mut kept).expect("reads");
        assert_eq!(kept.points.len(), 2);
        let (_, first) = kept.points[0];
        assert_eq!(first.ts, 1_642_007_904_190);
        assert!((first.lat - 41.4216106).abs() < 1e-9 && (first.lon - 2.1684775).abs() < 1e-9);
        let (_, second) = kept.points[1];
        assert_eq!(second.ts, 1_493_193_240_000);
        assert!((second.lat - -9.0).abs() < 1e-9, "wrapped back: {second:?}");
        let rejected: Vec<&str> = kept.rejected.iter().map(|(at, _)| at.as_str()).collect();
        assert_eq!(rejected, ["locations[2]", "locations[3]"]);
        assert!(kept.rejected[0].1.starts_with("longitudeE7"));
        assert!(kept.rejected[1].1.starts_with("timestamp"));
    }

    #[test]
    fn the_android_and_ios_timeline_exports() {
        let android = r#"{"semanticSegments": [
            {"startTime": "2024-01-01T08:00:00.000+01:00", "endTime": "2024-01-01T09:00:00.000+01:00",
             "timelinePath": [{"point": "48.8566°, 2.3522°", "time": "2024-01-01T08:05:00.000+01:00"}]},
            {"startTime": "2024-01-01T09:00:00.000+01:00", "endTime": "2024-01-01T10:00:00.000+01:00",
             "visit": {"hierarchyLevel": 0, "topCandidate": {"semanticType": "HOME", "placeLocation": {"latLng": "48.85°, 2.35°"}}}},
            {"startTime": "2024-01-01T10:00:00.000+01:00", "endTime": "2024-01-01T10:30:00.000+01:00",
             "activity": {"start": {"latLng": "48.85°, 2.35°"}, "end": {"latLng": "48.86°, 2.36°"}, "distanceMeters": 1500}}
          ],
          "rawSignals": [{"wifiScan": {}}, {"position": {"LatLng": "48.87°, 2.37°", "accuracyMeters": 13, "timestamp": "2024-01-01T11:00:00.000+01:00"}}],
          "userLocationProfile": {"frequentPlaces": []}}"#;
        let mut kept = Kept::default();
        read(android.as_bytes(), &mut kept).expect("reads");
        let at: Vec<String> = kept.points.iter().map(|(at, _)| at.to_string()).collect();
        assert_eq!(
            at,
            [
                "semanticSegments[0].timelinePath[0]",
                "semanticSegments[1].visit[0]",
                "semanticSegments[1].visit[1]",
                "semanticSegments[2].activity[0]",
                "semanticSegments[2].activity[1]",
                "rawSignals[1]"
            ]
        );
        let base = 1_704_092_400_000; // 2024-01-01T08:00:00+01:00
        let ts: Vec<i64> = kept
            .points
            .iter()
            .map(|(_, p)| (p.ts - base) / 60_000)
            .collect();
        assert_eq!(ts, [5, 60, 120, 120, 150, 180]);
        assert!(kept.rejected.is_empty(), "{:?}", kept.rejected);

        let ios = r#"[
            {"startTime": "2024-01-01T08:00:00.000+01:00", "endTime": "2024-01-01T09:00:00.000+01:00",
             "timelinePath": [{"point": "geo:48.856600,2.352200", "durationMinutesOffsetFromStartTime": "12"},
                              {"point": "nowhere", "durationMinutesOffsetFromStartTime": "13"}]},
            {"startTime": "2024-01-01T09:00:00.000+01:00", "endTime": "2024-01-01T10:00:00.000+01:00",
             "visit": {"topCandidate": {"placeLocation": "geo:48.85,2.35"}}}
        ]"#;
        let mut kept = Kept::default();
        read(ios.as_bytes(), &mut kept).expect("reads");
        assert_eq!(kept.points.len(), 3);
        assert_eq!(kept.points[0].1.ts, base + 12 * 60_000);
        assert_eq!(kept.rejected.len(), 1);
        assert_eq!(kept.rejected[0].0, "[0].timelinePath[1]");
    }

    #[test]
    fn json_that_is_no_location_history_is_refused() {
        for bad in [
            r#"{"type": "FeatureCollection"}"#,
            "3",
            r#"{"locations": [}"#,
        ] {
            let err = read(bad.as_bytes(), &mut Kept::default()).expect_err("refused");
            assert!(err.to_string().starts_with("Google Takeout: "), "{err}");
        }
    }
}
