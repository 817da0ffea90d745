//! Recorded tracks' files, read into a trip's route (`POST /v1/trips/{id}/import`): GPX 1.0
//! and 1.1 ([`gpx`]), GeoJSON points and lines with times ([`geojson`]), and Google
//! Takeout's location history, the old `Records.json` and the newer on-device timeline
//! export ([`takeout`]).
//!
//! Each reader hands its points one at a time to a [`TrackSink`], with where each was in
//! the file ([`PointAt`]), so that the caller stores them in chunks as they come and a
//! file of any size is read in constant memory (GPX excepted: the `gpx` crate reads a
//! document whole, so a GPX file's size is bounded by the import's byte limit). A point
//! that cannot be read (no time, a latitude off the globe) is rejected by position and the
//! reading goes on; only a file that is not of its format at all is an error.

mod bounded;
pub mod geojson;
pub mod gpx;
pub mod takeout;

use std::fmt;
use std::io::Read;

use crate::geometry::LatLon;
use crate::import::ImportError;
use crate::routes::RoutePoint;

/// A recorded track's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackFormat {
    /// GPX 1.0 or 1.1: track and route points with times.
    Gpx,
    /// A GeoJSON FeatureCollection (or one Feature) of points and lines with times.
    GeoJson,
    /// Google Takeout location history.
    GoogleTakeout,
}

impl std::str::FromStr for TrackFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gpx" => Ok(Self::Gpx),
            "geojson" => Ok(Self::GeoJson),
            "google-takeout" => Ok(Self::GoogleTakeout),
            other => Err(format!(
                "unsupported format {other:?}; supported: gpx, geojson, google-takeout"
            )),
        }
    }
}

/// Where a point was in its file, cheap to keep beside each point until its chunk is
/// stored, and written out only for a point that is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointAt {
    /// GPX `trk[track].trkseg[segment].trkpt[point]` (0-based, in document order).
    GpxTrack {
        /// The track.
        track: u32,
        /// The segment.
        segment: u32,
        /// The point.
        point: u32,
    },
    /// GPX `rte[route].rtept[point]`.
    GpxRoute {
        /// The route.
        route: u32,
        /// The point.
        point: u32,
    },
    /// GeoJSON `features[feature]`, and the position in its line, for a line.
    Feature {
        /// The feature.
        feature: u64,
        /// The position in a line (in a MultiLineString, counted across its lines).
        position: Option<u32>,
    },
    /// Takeout `<list>[index]`, and the point in its path, for a timeline segment.
    Takeout {
        /// The list: `locations`, `semanticSegments`, `rawSignals`.
        list: &'static str,
        /// The entry.
        index: u64,
        /// What in the entry: a path's point, a visit's or activity's end.
        part: Option<(&'static str, u32)>,
    },
}

impl fmt::Display for PointAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GpxTrack {
                track,
                segment,
                point,
            } => write!(f, "trk[{track}].trkseg[{segment}].trkpt[{point}]"),
            Self::GpxRoute { route, point } => write!(f, "rte[{route}].rtept[{point}]"),
            Self::Feature {
                feature,
                position: None,
            } => write!(f, "features[{feature}]"),
            Self::Feature {
                feature,
                position: Some(p),
            } => write!(f, "features[{feature}].geometry.coordinates[{p}]"),
            Self::Takeout {
                list,
                index,
                part: None,
            } => write!(f, "{list}[{index}]"),
            Self::Takeout {
                list,
                index,
                part: Some((name, i)),
            } => write!(f, "{list}[{index}].{name}[{i}]"),
        }
    }
}

/// Where a reader puts what it reads.
pub trait TrackSink {
    /// A point read; `false` stops the reading (the sink failed, and says why itself).
    fn point(&mut self, at: PointAt, point: RoutePoint) -> bool;
    /// A point that could not be read, and why (naming the field).
    fn reject(&mut self, at: PointAt, reason: String);
}

/// Reads `input` as `format` into `sink`.
pub fn read_track(
    format: TrackFormat,
    input: impl Read,
    sink: &mut impl TrackSink,
) -> Result<(), ImportError> {
    match format {
        TrackFormat::Gpx => gpx::read(input, sink),
        TrackFormat::GeoJson => geojson::read(input, sink),
        TrackFormat::GoogleTakeout => takeout::read(input, sink),
    }
}

/// A point from its parts, checked: the field at fault named.
pub fn route_point(lat: f64, lon: f64, ts: Option<i64>) -> Result<RoutePoint, String> {
    let at = LatLon::new(lat, lon).map_err(|e| e.to_string())?;
    let ts = ts.ok_or("time: missing; a route point needs one")?;
    Ok(RoutePoint {
        ts,
        lat: at.lat,
        lon: at.lon,
    })
}

/// The `serde_json` reader of a JSON track file.
type JsonReader<'a, R> = serde_json::Deserializer<
    serde_json::de::IoRead<&'a mut crate::import::KeepIoError<std::io::BufReader<R>>>,
>;

/// Reads `input` as JSON with `read` (which drives the deserializer), to its end: a
/// failure of the body itself (its size limit) is reported as such, any other as the
/// file not being `format`.
fn read_json<R: Read>(
    input: R,
    format: &str,
    read: impl FnOnce(&mut JsonReader<'_, R>) -> Result<(), serde_json::Error>,
) -> Result<(), ImportError> {
    let mut reader =
        crate::import::KeepIoError::new(std::io::BufReader::with_capacity(1 << 16, input));
    let mut de = serde_json::Deserializer::from_reader(&mut reader);
    let result = read(&mut de).and_then(|()| de.end());
    if let Err(e) = result {
        return Err(reader
            .take_error()
            .unwrap_or_else(|| ImportError::Malformed(format!("{format}: {e}"))));
    }
    Ok(())
}

/// Hands a point or its rejection to `sink`; `false` when the sink stops the reading.
fn give(sink: &mut impl TrackSink, at: PointAt, point: Result<RoutePoint, String>) -> bool {
    match point {
        Ok(p) => sink.point(at, p),
        Err(reason) => {
            sink.reject(at, reason);
            true
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A sink that keeps everything, for tests.
    #[derive(Debug, Default)]
    pub struct Kept {
        pub points: Vec<(PointAt, RoutePoint)>,
        pub rejected: Vec<(String, String)>,
    }

    impl TrackSink for Kept {
        fn point(&mut self, at: PointAt, point: RoutePoint) -> bool {
            self.points.push((at, point));
            true
        }

        fn reject(&mut self, at: PointAt, reason: String) {
            self.rejected.push((at.to_string(), reason));
        }
    }
}
