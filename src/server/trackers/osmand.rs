//! The OsmAnd protocol, as OsmAnd and Traccar Client speak it: one position a request, as
//! query or form parameters (`id` or `deviceid` naming the device, here the traveller;
//! `lat` and `lon`, or `location=lat,lon`; `timestamp` in Unix seconds, milliseconds, ISO
//! 8601 or `yyyy-MM-dd HH:mm:ss`; `accuracy` in metres; `valid=false` for a fix the device
//! itself distrusts), or, from Traccar Client 9 on, as a JSON body
//! `{"device_id", "location": {"timestamp", "coords": {"latitude", "longitude",
//! "accuracy"}}}`. Proxima adds `token`, the device token, as a parameter of the URL the
//! app is given. The apps send it again until they get a 200.
//!
//! Source: Traccar's OsmAnd page, <https://www.traccar.org/osmand/>.

use std::borrow::Cow;

use serde::Deserialize;

use super::{Fix, accuracy};

/// The most parameters a request may carry (the apps send about a dozen).
pub const MAX_PARAMS: usize = 64;

/// One request as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The traveller it names (`id`, `deviceid` or `device_id`).
    pub traveller: String,
    /// The device token, when it came as a parameter.
    pub token: Option<String>,
    /// The position, or `None` when the device marked it invalid.
    pub fix: Option<Fix>,
}

/// Reads query or form parameters (a name given twice: its first value); `now_ms` is
/// the time of a report without a `timestamp`.
pub fn from_params<'a>(
    pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    now_ms: i64,
) -> Result<Report, String> {
    let mut params: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
    for (name, value) in pairs {
        if params.len() == MAX_PARAMS {
            return Err(format!("parameters: at most {MAX_PARAMS} are read"));
        }
        params.push((name, value));
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    };
    let traveller = get("id")
        .or_else(|| get("deviceid"))
        .ok_or("id: missing; the app's device identifier must be the traveller's id")?
        .to_owned();
    let token = get("token").map(str::to_owned);
    if get("valid").is_some_and(|v| v == "false" || v == "0") {
        return Ok(Report {
            traveller,
            token,
            fix: None,
        });
    }
    let number = |name: &str, text: &str| {
        text.trim()
            .parse::<f64>()
            .map_err(|_| format!("{name}: {text:?} is not a number"))
    };
    let (lat, lon) = match (get("lat"), get("lon"), get("location")) {
        (Some(lat), Some(lon), _) => (number("lat", lat)?, number("lon", lon)?),
        (_, _, Some(location)) => {
            let (lat, lon) = location
                .split_once(',')
                .ok_or_else(|| format!("location: {location:?} is not \"lat,lon\""))?;
            (number("location", lat)?, number("location", lon)?)
        }
        _ => return Err("lat, lon: missing; send lat and lon, or location=lat,lon".into()),
    };
    let ts = match get("timestamp") {
        None => now_ms,
        Some(text) => super::time::from_any(text).ok_or_else(|| {
            format!("timestamp: {text:?} is not Unix seconds or milliseconds, or ISO 8601")
        })?,
    };
    let accuracy_m = get("accuracy").map(|a| number("accuracy", a)).transpose()?;
    Ok(Report {
        traveller,
        token,
        fix: Some(Fix {
            lat,
            lon,
            ts,
            accuracy_m: accuracy(accuracy_m),
        }),
    })
}

#[derive(Deserialize)]
struct JsonBody {
    device_id: String,
    location: JsonLocation,
}

#[derive(Deserialize)]
struct JsonLocation {
    timestamp: String,
    coords: Coords,
}

#[derive(Deserialize)]
struct Coords {
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    accuracy: Option<f64>,
}

/// Reads Traccar Client's JSON body; `token` is the device token from the URL.
pub fn from_json(body: &[u8], token: Option<String>) -> Result<Report, String> {
    let body: JsonBody = crate::json::from_slice_named(body).map_err(|e| e.to_string())?;
    let ts = super::time::from_any(&body.location.timestamp).ok_or_else(|| {
        format!(
            "location.timestamp: {:?} is not an ISO 8601 instant",
            body.location.timestamp
        )
    })?;
    Ok(Report {
        traveller: body.device_id,
        token,
        fix: Some(Fix {
            lat: body.location.coords.latitude,
            lon: body.location.coords.longitude,
            ts,
            accuracy_m: accuracy(body.location.coords.accuracy),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Result<Report, String> {
        from_params(form_urlencoded::parse(q.as_bytes()), 42)
    }

    #[test]
    fn traccars_examples_read_as_positions() {
        // Traccar's OsmAnd page: `?id=123456&lat={0}&lon={1}&timestamp={2}&hdop={3}
        // &altitude={4}&speed={5}`, filled in.
        assert_eq!(
            query(
                "id=123456&lat=34.0522&lon=-118.2437&timestamp=1722349800&hdop=1.2&altitude=100&speed=50"
            ),
            Ok(Report {
                traveller: "123456".into(),
                token: None,
                fix: Some(Fix {
                    lat: 34.0522,
                    lon: -118.2437,
                    ts: 1_722_349_800_000,
                    accuracy_m: None
                }),
            })
        );
        // The same instant in each form the page allows, `location=` and `deviceid`.
        for stamp in [
            "1722349800000",
            "2024-07-30T14:30:00Z",
            "2024-07-30%2014:30:00",
        ] {
            let r = query(&format!(
                "deviceid=ann&location=34.0522,-118.2437&timestamp={stamp}&accuracy=12.5&token=pxd_x"
            ))
            .expect(stamp);
            assert_eq!(r.traveller, "ann");
            assert_eq!(r.token.as_deref(), Some("pxd_x"));
            assert_eq!(
                r.fix,
                Some(Fix {
                    lat: 34.0522,
                    lon: -118.2437,
                    ts: 1_722_349_800_000,
                    accuracy_m: Some(12.5)
                })
            );
        }
        assert_eq!(
            query("id=a&lat=1&lon=2")
                .expect("no time")
                .fix
                .map(|f| f.ts),
            Some(42)
        );
        assert_eq!(query("id=a&valid=false").expect("invalid fix").fix, None);
    }

    #[test]
    fn traccar_clients_json_body_reads_as_its_position() {
        // Traccar's OsmAnd page, JSON format (Traccar Client 9 and later), filled in.
        let body = br#"{
          "location": {
            "timestamp": "2024-07-30T14:30:00.000Z",
            "coords": {"latitude": 34.0522, "longitude": -118.2437, "accuracy": 5, "speed": 0, "heading": 0, "altitude": 0},
            "is_moving": false, "odometer": 0, "event": "motionchange",
            "battery": {"level": 1, "is_charging": false},
            "activity": {"type": "still"}, "extras": {}
          },
          "device_id": "48241179"
        }"#;
        assert_eq!(
            from_json(body, Some("t".into())),
            Ok(Report {
                traveller: "48241179".into(),
                token: Some("t".into()),
                fix: Some(Fix {
                    lat: 34.0522,
                    lon: -118.2437,
                    ts: 1_722_349_800_000,
                    accuracy_m: Some(5.0)
                }),
            })
        );
        let e = from_json(br#"{"location": {"timestamp": "x", "coords": {"latitude": 1, "longitude": 2}}, "device_id": "a"}"#, None)
            .expect_err("bad time");
        assert!(e.starts_with("location.timestamp"), "{e}");
        let e = from_json(
            br#"{"location": {"timestamp": "2024-07-30T14:30:00Z"}, "device_id": "a"}"#,
            None,
        )
        .expect_err("no coords");
        assert!(e.contains("coords"), "{e}");
    }

    #[test]
    fn missing_and_malformed_parameters_are_named() {
        for (q, field) in [
            ("lat=1&lon=2", "id"),
            ("id=a&lat=1", "lat, lon"),
            ("id=a&lat=north&lon=2", "lat"),
            ("id=a&location=12", "location"),
            ("id=a&lat=1&lon=2&timestamp=tomorrow", "timestamp"),
            ("id=a&lat=1&lon=2&accuracy=good", "accuracy"),
        ] {
            let e = query(q).expect_err(q);
            assert!(e.starts_with(field), "{q}: {e}");
        }
        let many: String = (0..=MAX_PARAMS).map(|i| format!("p{i}=1&")).collect();
        assert!(
            query(&many)
                .expect_err("too many")
                .starts_with("parameters")
        );
    }
}
