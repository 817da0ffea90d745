//! GPX 1.0 and 1.1 (<https://www.topografix.com/GPX/1/1/>): every track point
//! (`trk/trkseg/trkpt`) and route point (`rte/rtept`) with a `time`, read with the `gpx`
//! crate. Waypoints (`wpt`) are places, not a route, and are left out. The crate reads a
//! document whole: its size is bounded by the import's byte limit.

use std::io::Read;

use super::{PointAt, TrackSink, give, route_point};
use crate::import::ImportError;

/// Reads a GPX document into `sink`.
pub fn read(input: impl Read, sink: &mut impl TrackSink) -> Result<(), ImportError> {
    let mut input = crate::import::KeepIoError::new(input);
    let document = match gpx::read(&mut input) {
        Ok(document) => document,
        Err(e) => {
            return Err(input
                .take_error()
                .unwrap_or_else(|| ImportError::Malformed(format!("GPX: {e}"))));
        }
    };
    let ts = |w: &gpx::Waypoint| {
        w.time.map(|t| {
            let at: time::OffsetDateTime = t.into();
            i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
        })
    };
    for (track, trk) in (0u32..).zip(&document.tracks) {
        for (segment, seg) in (0u32..).zip(&trk.segments) {
            for (point, w) in (0u32..).zip(&seg.points) {
                let at = PointAt::GpxTrack {
                    track,
                    segment,
                    point,
                };
                let p = w.point();
                if !give(sink, at, route_point(p.y(), p.x(), ts(w))) {
                    return Ok(());
                }
            }
        }
    }
    for (route, rte) in (0u32..).zip(&document.routes) {
        for (point, w) in (0u32..).zip(&rte.points) {
            let p = w.point();
            if !give(
                sink,
                PointAt::GpxRoute { route, point },
                route_point(p.y(), p.x(), ts(w)),
            ) {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::Kept;
    use super::*;

    #[test]
    fn track_and_route_points_with_times_are_read_and_the_rest_rejected_by_position() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="1" lon="1"><time>2024-05-01T10:00:00Z</time></wpt>
  <trk><name>Walk</name>
    <trkseg>
      <trkpt lat="60.1" lon="24.9"><ele>10</ele><time>2024-05-01T10:00:00Z</time></trkpt>
      <trkpt lat="60.2" lon="24.9"><time>2024-05-01T10:00:01.500Z</time></trkpt>
    </trkseg>
    <trkseg>
      <trkpt lat="60.3" lon="24.9"></trkpt>
    </trkseg>
  </trk>
  <rte><rtept lat="-33.9" lon="151.2"><time>2024-05-02T00:00:00+10:00</time></rtept></rte>
</gpx>"#;
        let mut kept = Kept::default();
        read(doc.as_bytes(), &mut kept).expect("reads");
        let ts: Vec<i64> = kept.points.iter().map(|(_, p)| p.ts).collect();
        assert_eq!(
            ts,
            [1_714_557_600_000, 1_714_557_601_500, 1_714_572_000_000]
        );
        assert_eq!(kept.points[1].1.lat, 60.2);
        assert_eq!(
            kept.rejected,
            [(
                "trk[0].trkseg[1].trkpt[0]".to_string(),
                "time: missing; a route point needs one".to_string()
            )]
        );
    }

    #[test]
    fn gpx_1_0_is_read_and_a_document_that_is_not_gpx_is_refused() {
        let doc = r#"<?xml version="1.0"?>
<gpx version="1.0" creator="test" xmlns="http://www.topografix.com/GPX/1/0">
  <trk><trkseg><trkpt lat="10" lon="20"><time>2020-01-01T00:00:00Z</time><speed>3</speed></trkpt></trkseg></trk>
</gpx>"#;
        let mut kept = Kept::default();
        read(doc.as_bytes(), &mut kept).expect("reads");
        assert_eq!(kept.points.len(), 1);
        let err = read(
            &b"{\"type\": \"FeatureCollection\"}"[..],
            &mut Kept::default(),
        )
        .expect_err("not GPX");
        assert!(err.to_string().starts_with("GPX: "), "{err}");
    }
}
