//! A route on the wire, in the three formats the route endpoints answer: GeoJSON (a
//! `Feature` whose geometry is a `MultiLineString`, a line a part, with the points' times
//! in `properties.ts`), GPX 1.1 (one `<trk>`, a `<trkseg>` a part, each `<trkpt>` with its
//! `<time>`; written by the `gpx` crate) and the encoded polyline format (precision 5, a
//! string a part; written by the `polyline` crate).

use serde_json::{Value, json};

use crate::routes::RoutePoint;

/// Why a route could not be written in a format.
#[derive(Debug, thiserror::Error)]
pub enum RouteFormatError {
    /// GPX writing failed.
    #[error("gpx: {0}")]
    Gpx(#[from] gpx::errors::GpxError),
    /// A point's time is outside what GPX can write.
    #[error("gpx: ts {0} is not a time GPX can write")]
    Time(i64),
    /// Polyline encoding failed (a coordinate off the globe).
    #[error("polyline: {0}")]
    Polyline(#[from] polyline::errors::PolylineError),
}

/// The route as a GeoJSON `Feature`: `geometry` a `MultiLineString` (`[lon, lat]`, a line a
/// part), `properties.points` how many points, `properties.ts` their times, a list a part.
pub fn route_geojson(parts: &[&[RoutePoint]]) -> Value {
    let lines: Vec<Vec<[f64; 2]>> = parts
        .iter()
        .map(|part| part.iter().map(|p| [p.lon, p.lat]).collect())
        .collect();
    let times: Vec<Vec<i64>> = parts
        .iter()
        .map(|part| part.iter().map(|p| p.ts).collect())
        .collect();
    let points: usize = parts.iter().map(|p| p.len()).sum();
    json!({
        "type": "Feature",
        "geometry": {"type": "MultiLineString", "coordinates": lines},
        "properties": {"points": points, "ts": times},
    })
}

/// The route as a GPX 1.1 document named `name`: one track, a segment a part.
pub fn route_gpx(name: &str, parts: &[&[RoutePoint]]) -> Result<Vec<u8>, RouteFormatError> {
    let mut track = gpx::Track::new();
    track.name = Some(name.to_string());
    for part in parts {
        let mut segment = gpx::TrackSegment::new();
        for p in *part {
            // GPX's longitudes are in [-180, 180): 180 is written as -180, the same meridian.
            let lon = if p.lon >= 180.0 { p.lon - 360.0 } else { p.lon };
            let mut point = gpx::Waypoint::new(geo_types::Point::new(lon, p.lat));
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(p.ts) * 1_000_000)
                .map_err(|_| RouteFormatError::Time(p.ts))?;
            point.time = Some(at.into());
            segment.points.push(point);
        }
        track.segments.push(segment);
    }
    let document = gpx::Gpx {
        version: gpx::GpxVersion::Gpx11,
        creator: Some("Proxima".into()),
        tracks: vec![track],
        ..gpx::Gpx::default()
    };
    let mut out = Vec::new();
    gpx::write(&document, &mut out)?;
    Ok(out)
}

/// The route in the encoded polyline format, precision 5: a string a part.
pub fn route_polylines(parts: &[&[RoutePoint]]) -> Result<Vec<String>, RouteFormatError> {
    parts
        .iter()
        .map(|part| {
            let coords = part
                .iter()
                .map(|p| geo_types::coord! { x: p.lon, y: p.lat });
            Ok(polyline::encode_coordinates(coords, 5)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> Vec<RoutePoint> {
        (0..50)
            .map(|i| RoutePoint {
                ts: 1_800_000_000_000 + i * 5_250,
                lat: 60.17 + i as f64 * 1e-4,
                // Across the antimeridian, and through 180 itself.
                lon: {
                    let lon = 179.998 + i as f64 * 1e-4;
                    if lon > 180.0 { lon - 360.0 } else { lon }
                },
            })
            .collect()
    }

    #[test]
    fn gpx_reads_back_with_every_point_and_time() {
        let points = points();
        let parts: Vec<&[RoutePoint]> = vec![&points[..20], &points[20..]];
        let bytes = route_gpx("a trip", &parts).expect("writes");
        let read = gpx::read(&bytes[..]).expect("valid GPX");
        assert_eq!(read.version, gpx::GpxVersion::Gpx11);
        let track = &read.tracks[0];
        assert_eq!(track.segments.len(), 2);
        let back: Vec<RoutePoint> = track
            .segments
            .iter()
            .flat_map(|s| &s.points)
            .map(|w| {
                let at: time::OffsetDateTime = w.time.expect("a time").into();
                RoutePoint {
                    ts: (at.unix_timestamp_nanos() / 1_000_000) as i64,
                    lat: w.point().y(),
                    lon: w.point().x(),
                }
            })
            .collect();
        let wrapped: Vec<RoutePoint> = points
            .iter()
            .map(|p| RoutePoint {
                lon: if p.lon >= 180.0 { p.lon - 360.0 } else { p.lon },
                ..*p
            })
            .collect();
        assert_eq!(back, wrapped);
    }

    #[test]
    fn polylines_decode_to_the_points_at_precision_5() {
        let points = points();
        let parts: Vec<&[RoutePoint]> = vec![&points[..20], &points[20..]];
        let lines = route_polylines(&parts).expect("encodes");
        assert_eq!(lines.len(), 2);
        for (line, part) in lines.iter().zip(&parts) {
            let decoded = polyline::decode_polyline(line, 5).expect("decodes");
            assert_eq!(decoded.0.len(), part.len());
            for (c, p) in decoded.0.iter().zip(part.iter()) {
                assert!((c.y - p.lat).abs() < 0.6e-5 && (c.x - p.lon).abs() < 0.6e-5);
            }
        }
    }

    #[test]
    fn geojson_is_a_multilinestring_feature_with_times_a_part() {
        let points = points();
        let parts: Vec<&[RoutePoint]> = vec![&points[..20], &points[20..]];
        let feature = route_geojson(&parts);
        assert_eq!(feature["geometry"]["type"], "MultiLineString");
        assert_eq!(feature["geometry"]["coordinates"][1][0][0], points[20].lon);
        assert_eq!(feature["properties"]["points"], 50);
        assert_eq!(feature["properties"]["ts"][1][0], points[20].ts);
    }
}
