//! Overland: the app POSTs batches of GeoJSON `Point` features under `locations`, each
//! with `properties.timestamp` (ISO 8601; the app writes offsets as `-0700`) and
//! `properties.horizontal_accuracy` (metres; negative when invalid), and deletes what it
//! sent only when the answer is `{"result": "ok"}`. Any other answer makes it send the
//! batch again later, so a batch with a bad point must still be answered `ok` (the good
//! points stored, the bad ones counted), or the app would send it forever.
//!
//! Source: Overland's README, <https://github.com/aaronpk/Overland-iOS#api>.

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

#[derive(Deserialize)]
struct Feature {
    geometry: Geometry,
    properties: Properties,
}

#[derive(Deserialize)]
struct Geometry {
    #[serde(rename = "type")]
    kind: String,
    coordinates: Vec<f64>,
}

#[derive(Deserialize)]
struct Properties {
    timestamp: String,
    #[serde(default)]
    horizontal_accuracy: Option<f64>,
}

/// Reads a batch of at most `max` points; `Err` names what makes the whole body unreadable.
pub fn parse(body: &[u8], max: usize) -> Result<Batch, String> {
    let body: Body = serde_json::from_slice(body).map_err(|e| {
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
        match point(raw.get().as_bytes()) {
            Ok(fix) => batch.fixes.push((i, fix)),
            Err(why) => batch.rejected.push((i, format!("locations[{i}].{why}"))),
        }
    }
    Ok(batch)
}

fn point(raw: &[u8]) -> Result<Fix, String> {
    let feature: Feature = crate::json::from_slice_named(raw).map_err(|e| e.to_string())?;
    if feature.geometry.kind != "Point" {
        return Err(format!(
            "geometry.type: expected Point, got {:?}",
            feature.geometry.kind
        ));
    }
    // GeoJSON allows a third coordinate, the altitude.
    let (lon, lat) = match feature.geometry.coordinates[..] {
        [lon, lat] | [lon, lat, _] => (lon, lat),
        _ => {
            return Err("geometry.coordinates: expected [lon, lat] or [lon, lat, altitude]".into());
        }
    };
    finish(lon, lat, &feature.properties)
}

fn finish(lon: f64, lat: f64, properties: &Properties) -> Result<Fix, String> {
    let ts = super::time::from_iso(&properties.timestamp).ok_or_else(|| {
        format!(
            "properties.timestamp: {:?} is not an ISO 8601 instant with a zone",
            properties.timestamp
        )
    })?;
    Ok(Fix {
        lat,
        lon,
        ts,
        accuracy_m: accuracy(properties.horizontal_accuracy),
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
