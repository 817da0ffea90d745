//! Areas on the wire: a GeoJSON `Polygon` or `MultiPolygon` (RFC 7946: `[lon, lat]`
//! positions, the outline ring first), or a `Circle` with a `center` and `radius_m`. A
//! GeoJSON `bbox` member is accepted and ignored.

use serde::{Deserialize, Serialize};

use crate::geometry::LatLon;
use crate::geometry::area::{Area, AreaError, Shape};

/// An area as a request gives it.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum AreaIn {
    /// Rings of positions, the outline first.
    Polygon {
        /// `[[[lon, lat], ...], ...]`.
        coordinates: Vec<Vec<Vec<f64>>>,
        /// A GeoJSON bounding box: ignored.
        #[serde(default, rename = "bbox")]
        _bbox: Option<serde::de::IgnoredAny>,
    },
    /// Polygons.
    MultiPolygon {
        /// `[[[[lon, lat], ...], ...], ...]`.
        coordinates: Vec<Vec<Vec<Vec<f64>>>>,
        /// A GeoJSON bounding box: ignored.
        #[serde(default, rename = "bbox")]
        _bbox: Option<serde::de::IgnoredAny>,
    },
    /// Every point within `radius_m` metres of `center`.
    Circle {
        /// `[lon, lat]`.
        center: Vec<f64>,
        /// Metres.
        radius_m: f64,
    },
}

impl AreaIn {
    /// The validated area; an error names the member at fault, inside the area.
    pub fn into_area(self, max_vertices: usize) -> Result<Area, AreaError> {
        match self {
            Self::Polygon { coordinates, .. } => Area::polygon(coordinates, max_vertices),
            Self::MultiPolygon { coordinates, .. } => {
                Area::multi_polygon(coordinates, max_vertices)
            }
            Self::Circle { center, radius_m } => {
                let bad = |reason: String| AreaError {
                    at: "center".into(),
                    reason,
                };
                let [lon, lat] = center[..] else {
                    return Err(bad(format!(
                        "a centre is [lon, lat], got {} number(s)",
                        center.len()
                    )));
                };
                let center = LatLon::new(lat, lon).map_err(|e| bad(e.to_string()))?;
                Area::circle(center, radius_m)
            }
        }
    }
}

/// An area as an answer shows it: as it was given (altitudes and `bbox` dropped).
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum AreaOut<'a> {
    /// Rings of `[lon, lat]`.
    Polygon {
        /// The rings.
        coordinates: &'a [Vec<[f64; 2]>],
    },
    /// Polygons.
    MultiPolygon {
        /// The polygons.
        coordinates: &'a [Vec<Vec<[f64; 2]>>],
    },
    /// A circle.
    Circle {
        /// `[lon, lat]`.
        center: [f64; 2],
        /// Metres.
        radius_m: f64,
    },
}

impl<'a> From<&'a Area> for AreaOut<'a> {
    fn from(area: &'a Area) -> Self {
        match area.shape() {
            Shape::Polygon(rings) => Self::Polygon { coordinates: rings },
            Shape::MultiPolygon(polygons) => Self::MultiPolygon {
                coordinates: polygons,
            },
            Shape::Circle { center, radius_m } => Self::Circle {
                center: [center.lon, center.lat],
                radius_m: *radius_m,
            },
        }
    }
}
