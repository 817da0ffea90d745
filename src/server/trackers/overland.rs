//! Overland: the app POSTs batches of GeoJSON `Point` features under `locations`, each
//! with `properties.timestamp` (ISO 8601; the app writes offsets as `-0700`) and
//! `properties.horizontal_accuracy` (metres; negative when invalid), and deletes what it
//! sent only when the answer is `{"result": "ok"}`. Any other answer makes it send the
//! batch again later, so a batch with a bad point must still be answered `ok` (the good
//! points stored, the bad ones counted), or the app would send it forever.
//!
//! Source: Overland's README, <https://github.com/aaronpk/Overland-iOS#api>.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Fix, accuracy};

/// A batch as read: its points and, by index, those refused and why.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    /// The points read, each with its index in `locations`.
    pub fixes: Vec<(usize, Fix)>,
    /// `(index, reason)` of each point refused.
    pub rejected: Vec<(usize, String)>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    locations: Vec<&'a RawValue>,
}

/// The whole batch read in one pass, when every point is good (the usual case).
#[derive(Deserialize)]
struct TypedBody<'a> {
    #[serde(borrow)]
    locations: Vec<Feature<'a>>,
}

#[derive(Deserialize)]
struct Feature<'a> {
    #[serde(borrow)]
    geometry: Geometry<'a>,
    #[serde(borrow)]
    properties: Properties<'a>,
}

#[derive(Deserialize)]
struct Geometry<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    coordinates: Coordinates,
}

/// A point's coordinates: `[lon, lat]`, or `[lon, lat, altitude]` as GeoJSON allows;
/// `None` for any other count. Read without a vector or serde's buffering of an untagged
/// enum.
struct Coordinates(Option<(f64, f64)>);

impl<'de> Deserialize<'de> for Coordinates {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Numbers;
        impl<'de> serde::de::Visitor<'de> for Numbers {
            type Value = Coordinates;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of numbers")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Coordinates, A::Error> {
                let mut read = [0.0; 3];
                let mut count = 0;
                while let Some(x) = seq.next_element::<f64>()? {
                    if count < read.len() {
                        read[count] = x;
                    }
                    count += 1;
                }
                Ok(Coordinates(
                    matches!(count, 2 | 3).then_some((read[0], read[1])),
                ))
            }
        }
        deserializer.deserialize_seq(Numbers)
    }
}

#[derive(Deserialize)]
struct Properties<'a> {
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(default)]
    horizontal_accuracy: Option<f64>,
}

/// Reads a batch of at most `max` points; `Err` names what makes the whole body unreadable.
///
/// A batch is read in one typed pass; only when that fails is it read again a point at a
/// time, to store the good points and name each bad one. (Each point first as raw JSON,
/// then typed, was two passes over every batch: with batches of 100, the parsing was
/// about a third of the server's time, and Overland batches ran at 0.67 of `POST
/// /v1/positions` batches; see `scripts/trackers-bench.sh` in `docs/performance.md`.)
pub fn parse(body: &[u8], max: usize) -> Result<Batch, String> {
    // UTF-8 checked once, for the whole body, rather than by `serde_json` string by string:
    // a batch of 100 points holds over a thousand strings (keys included), and their
    // checks were 4 % of the server's time under Overland batches (profiled with `perf`).
    let body = std::str::from_utf8(body)
        .map_err(|e| format!("body: not UTF-8 text (byte {}): {e}", e.valid_up_to()))?;
    if let Ok(typed) = serde_json::from_str::<TypedBody>(body)
        && typed.locations.len() <= max
    {
        let mut batch = Batch::default();
        for (i, feature) in typed.locations.iter().enumerate() {
            match point(feature) {
                Ok(fix) => batch.fixes.push((i, fix)),
                Err(why) => batch.rejected.push((i, format!("locations[{i}].{why}"))),
            }
        }
        return Ok(batch);
    }
    let body: Body = serde_json::from_str(body).map_err(|e| {
        format!("body: not an Overland batch (an object with a `locations` array): {e}")
    })?;
    if body.locations.len() > max {
        return Err(format!(
            "locations: at most {max} points a batch, got {}; lower the app's Points per Batch",
            body.locations.len()
        ));
    }
    let mut batch = Batch::default();
    for (i, raw) in body.locations.iter().enumerate() {
        let read = crate::json::from_slice_named::<Feature>(raw.get().as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|feature| point(&feature));
        match read {
            Ok(fix) => batch.fixes.push((i, fix)),
            Err(why) => batch.rejected.push((i, format!("locations[{i}].{why}"))),
        }
    }
    Ok(batch)
}

fn point(feature: &Feature) -> Result<Fix, String> {
    if feature.geometry.kind != "Point" {
        return Err(format!(
            "geometry.type: expected Point, got {:?}",
            feature.geometry.kind
        ));
    }
    // GeoJSON allows a third coordinate, the altitude.
    let Coordinates(Some((lon, lat))) = feature.geometry.coordinates else {
        return Err("geometry.coordinates: expected [lon, lat] or [lon, lat, altitude]".into());
    };
    let stamp = &feature.properties.timestamp;
    let ts = super::time::from_iso(stamp).ok_or_else(|| {
        format!("properties.timestamp: {stamp:?} is not an ISO 8601 instant with a zone")
    })?;
    Ok(Fix {
        lat,
        lon,
        ts,
        accuracy_m: accuracy(feature.properties.horizontal_accuracy),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request of Overland's README (<https://github.com/aaronpk/Overland-iOS#api>),
    /// without its elided `current` and `trip`.
    const README_BATCH: &str = r#"{
      "locations": [
        {
          "type": "Feature",
          "geometry": {
            "type": "Point",
            "coordinates": [
              -122.030581,
              37.331800
            ]
          },
          "properties": {
            "timestamp": "2015-10-01T08:00:00-0700",
            "altitude": 0,
            "speed": 4,
            "horizontal_accuracy": 30,
            "vertical_accuracy": -1,
            "motion": ["driving","stationary"],
            "pauses": false,
            "activity": "other_navigation",
            "desired_accuracy": 100,
            "deferred": 1000,
            "significant_change": "disabled",
            "locations_in_payload": 1,
            "battery_state": "charging",
            "battery_level": 0.89,
            "device_id": "",
            "wifi": ""
          }
        }
      ]
    }"#;

    #[test]
    fn the_readmes_batch_reads_as_its_point() {
        assert_eq!(
            parse(README_BATCH.as_bytes(), 1_000),
            Ok(Batch {
                fixes: vec![(
                    0,
                    Fix {
                        lat: 37.3318,
                        lon: -122.030581,
                        ts: 1_443_711_600_000,
                        accuracy_m: Some(30.0),
                    }
                )],
                rejected: vec![],
            })
        );
    }

    #[test]
    fn a_bad_point_is_refused_alone_by_index_and_field() {
        let body = r#"{"locations": [
            {"type":"Feature","geometry":{"type":"Point","coordinates":[2,1,40]},"properties":{"timestamp":"2015-10-01T15:00:00Z","horizontal_accuracy":-1}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[2,1]},"properties":{"timestamp":"1443711600"}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[2,1]},"properties":{}},
            {"type":"Feature","geometry":{"type":"LineString","coordinates":[2,1]},"properties":{"timestamp":"2015-10-01T15:00:00Z"}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[2]},"properties":{"timestamp":"2015-10-01T15:00:00Z"}}
        ], "current": {"anything": true}, "trip": {}}"#;
        let batch = parse(body.as_bytes(), 1_000).expect("readable");
        assert_eq!(
            batch.fixes,
            vec![(
                0,
                Fix {
                    lat: 1.0,
                    lon: 2.0,
                    ts: 1_443_711_600_000,
                    accuracy_m: None
                }
            )]
        );
        let reasons: Vec<(usize, bool)> = batch
            .rejected
            .iter()
            .map(|(i, why)| (*i, why.starts_with(&format!("locations[{i}]."))))
            .collect();
        assert_eq!(reasons, [(1, true), (2, true), (3, true), (4, true)]);
        assert!(
            batch.rejected[0].1.contains("properties.timestamp"),
            "{:?}",
            batch.rejected
        );
        assert!(
            batch.rejected[1].1.contains("timestamp"),
            "{:?}",
            batch.rejected
        );
        assert!(batch.rejected[2].1.contains("geometry.type"));
        assert!(batch.rejected[3].1.contains("geometry.coordinates"));
        for unreadable in ["", "[]", r#"{"points": []}"#, r#"{"locations": {}}"#] {
            assert!(parse(unreadable.as_bytes(), 1_000).is_err(), "{unreadable}");
        }
        assert!(
            parse(br#"{"locations": [{}, {}]}"#, 1)
                .expect_err("too many")
                .contains("at most 1")
        );
    }
}
