//! Areas: polygons in longitude/latitude degrees (edges straight in degrees, as in GeoJSON;
//! an area crossing the antimeridian is a MultiPolygon cut at ±180) and circles on the
//! sphere. [`Area`] is validated once, when made, with errors naming the ring and position
//! at fault ([`validate`]); it then answers "is this point inside" exactly (the boundary
//! counts as inside) and fast, with its polygons' edges bucketed by latitude
//! ([`bands`]), and says how it meets a cell, so that callers find candidates from a cell
//! covering of the area and test only those.
//!
//! Candidates come from geohash cells (the travellers' and the fences' grids) or, for POIs,
//! from the R-tree walk of the area's bounding boxes, and each candidate is tested exactly.
//! A cell wholly inside a polygon needs no test at all. Cells were chosen over `s2`'s
//! coverer (which has no polygon) and `h3o`'s tiler (hexagons do not nest into the grid the
//! travellers are already indexed by): the geohash cells are longitude/latitude rectangles,
//! which geo compares with a polygon exactly in the same planar degrees the contract uses.
//!
//! Two conventions make points "places on Earth" rather than pairs of numbers, as
//! [`BBox::contains`](super::BBox::contains) does: longitudes -180 and 180 are one meridian,
//! so a point there is inside if either spelling is; and a pole is one place, inside a
//! polygon that reaches it (has a position at that latitude), whatever its longitude.

mod bands;
mod status;
mod sweep;
#[cfg(test)]
mod sweep_tests;
pub mod validate;

use std::sync::Arc;

use super::{BBox, LatLon, MAX_RADIUS_M, cap_bounds, haversine_m};
use bands::Bands;
pub use validate::{RawPolygons, Rings};

/// The most positions an area may have, whatever `--max-area-vertices` says: what the log
/// and snapshots accept back.
pub const MAX_AREA_VERTICES: usize = 100_000;

/// Why an area was refused: where (`coordinates[0][3]`, `radius_m`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct AreaError {
    /// The member at fault, as a path inside the area.
    pub at: String,
    /// What is wrong with it.
    pub reason: String,
}

/// An area as a client gave it, validated: what is stored and shown back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Shape {
    /// One polygon: its rings, the outline first.
    Polygon(Vec<Vec<[f64; 2]>>),
    /// Several polygons.
    MultiPolygon(Vec<Vec<Vec<[f64; 2]>>>),
    /// Every point within `radius_m` of `center` (great-circle).
    Circle {
        /// The centre.
        center: LatLon,
        /// The radius, metres.
        radius_m: f64,
    },
}

/// How an area meets a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// No point of the cell is in the area.
    Outside,
    /// Some points may be: test each.
    Partly,
    /// Every point of the cell is in the area.
    Inside,
}

/// A validated area, ready for repeated tests. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Area(Arc<Prepared>);

#[derive(Debug)]
struct Prepared {
    shape: Shape,
    form: Form,
}

#[derive(Debug)]
enum Form {
    Polygons {
        bands: Bands,
        /// Per polygon, its bounding box (no polygon crosses the antimeridian).
        bounds: Vec<BBox>,
        /// Whether some position lies on the north (south) pole.
        north_pole: bool,
        south_pole: bool,
        vertices: usize,
    },
    Circle {
        center: LatLon,
        radius_m: f64,
    },
}

impl PartialEq for Area {
    fn eq(&self, other: &Self) -> bool {
        self.0.shape == other.0.shape
    }
}

impl Area {
    /// A polygon from its rings as parsed (`coordinates` of a GeoJSON Polygon).
    pub fn polygon(rings: Vec<Vec<Vec<f64>>>, max_vertices: usize) -> Result<Self, AreaError> {
        let mut polygons = validate::polygons(vec![rings], false, max_vertices)?;
        let rings = polygons.pop().expect("one polygon in, one out");
        Ok(Self::prepare(Shape::Polygon(rings)))
    }

    /// A multipolygon from its polygons as parsed (`coordinates` of a GeoJSON MultiPolygon).
    pub fn multi_polygon(polygons: RawPolygons, max_vertices: usize) -> Result<Self, AreaError> {
        let polygons = validate::polygons(polygons, true, max_vertices)?;
        Ok(Self::prepare(Shape::MultiPolygon(polygons)))
    }

    /// The points within `radius_m` metres of `center`.
    pub fn circle(center: LatLon, radius_m: f64) -> Result<Self, AreaError> {
        if !(radius_m.is_finite() && (0.0..=MAX_RADIUS_M).contains(&radius_m)) {
            return Err(AreaError {
                at: "radius_m".into(),
                reason: format!("must be a number from 0 to {MAX_RADIUS_M}, got {radius_m}"),
            });
        }
        Ok(Self::prepare(Shape::Circle { center, radius_m }))
    }

    /// The area of a box (two rectangles when it crosses the antimeridian). Not validated
    /// as a client's polygon: a box of zero width or height is still a box.
    pub fn from_bbox(bbox: &BBox) -> Self {
        let rect = |w: f64, e: f64| {
            vec![vec![
                [w, bbox.min_lat],
                [e, bbox.min_lat],
                [e, bbox.max_lat],
                [w, bbox.max_lat],
                [w, bbox.min_lat],
            ]]
        };
        if bbox.crosses_antimeridian() {
            Self::prepare(Shape::MultiPolygon(vec![
                rect(bbox.min_lon, 180.0),
                rect(-180.0, bbox.max_lon),
            ]))
        } else {
            Self::prepare(Shape::Polygon(rect(bbox.min_lon, bbox.max_lon)))
        }
    }

    /// An area stored earlier (log, snapshot), checked again as a client's would be.
    pub fn from_shape(shape: Shape) -> Result<Self, AreaError> {
        let raw = |rings: Vec<Vec<[f64; 2]>>| -> Vec<Vec<Vec<f64>>> {
            rings
                .into_iter()
                .map(|ring| ring.into_iter().map(|p| p.to_vec()).collect())
                .collect()
        };
        match shape {
            Shape::Polygon(rings) => Self::polygon(raw(rings), MAX_AREA_VERTICES),
            Shape::MultiPolygon(polygons) => {
                Self::multi_polygon(polygons.into_iter().map(raw).collect(), MAX_AREA_VERTICES)
            }
            Shape::Circle { center, radius_m } => {
                let center = LatLon::new(center.lat, center.lon).map_err(|e| AreaError {
                    at: "center".into(),
                    reason: e.to_string(),
                })?;
                Self::circle(center, radius_m)
            }
        }
    }

    fn prepare(shape: Shape) -> Self {
        let form = match &shape {
            Shape::Circle { center, radius_m } => Form::Circle {
                center: *center,
                radius_m: *radius_m,
            },
            Shape::Polygon(rings) => Self::polygons_form(std::slice::from_ref(rings)),
            Shape::MultiPolygon(polygons) => Self::polygons_form(polygons),
        };
        Self(Arc::new(Prepared { shape, form }))
    }

    fn polygons_form(polygons: &[Vec<Vec<[f64; 2]>>]) -> Form {
        let bounds = polygons
            .iter()
            .map(|rings| {
                let (mut w, mut s, mut e, mut n) = (
                    f64::INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NEG_INFINITY,
                );
                for p in &rings[0] {
                    (w, s, e, n) = (w.min(p[0]), s.min(p[1]), e.max(p[0]), n.max(p[1]));
                }
                BBox::new(w, s, e, n).expect("validated positions make a valid box")
            })
            .collect();
        let positions = || polygons.iter().flatten().flatten();
        Form::Polygons {
            bands: Bands::new(polygons),
            bounds,
            north_pole: positions().any(|p| p[1] == 90.0),
            south_pole: positions().any(|p| p[1] == -90.0),
            vertices: positions().count(),
        }
    }

    /// The area as given.
    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }

    /// Positions of its polygons (0 for a circle).
    pub fn vertices(&self) -> usize {
        match &self.0.form {
            Form::Polygons { vertices, .. } => *vertices,
            Form::Circle { .. } => 0,
        }
    }

    /// Whether `p` is in the area; its boundary counts as inside.
    pub fn contains(&self, p: LatLon) -> bool {
        match &self.0.form {
            Form::Circle { center, radius_m } => haversine_m(*center, p) <= *radius_m,
            Form::Polygons {
                bands,
                north_pole,
                south_pole,
                ..
            } => {
                if p.lat == 90.0 {
                    return *north_pole;
                }
                if p.lat == -90.0 {
                    return *south_pole;
                }
                bands.contains(p.lon, p.lat)
                    || (p.lon == 180.0 && bands.contains(-180.0, p.lat))
                    || (p.lon == -180.0 && bands.contains(180.0, p.lat))
            }
        }
    }

    /// Boxes that together hold every point of the area, as numbers: a box a polygon, and
    /// for a polygon on the antimeridian the meridian under its other name, for one reaching
    /// a pole every longitude there; for a circle one box, or two across the antimeridian.
    pub fn bounds(&self) -> Vec<BBox> {
        match &self.0.form {
            Form::Polygons {
                bounds,
                north_pole,
                south_pole,
                ..
            } => {
                let mut out = bounds.clone();
                for b in bounds {
                    if b.min_lon == -180.0 {
                        out.push(BBox {
                            min_lon: 180.0,
                            max_lon: 180.0,
                            ..*b
                        });
                    }
                    if b.max_lon == 180.0 {
                        out.push(BBox {
                            min_lon: -180.0,
                            max_lon: -180.0,
                            ..*b
                        });
                    }
                }
                for (pole, lat) in [(*north_pole, 90.0), (*south_pole, -90.0)] {
                    if pole {
                        out.push(BBox {
                            min_lon: -180.0,
                            min_lat: lat,
                            max_lon: 180.0,
                            max_lat: lat,
                        });
                    }
                }
                out
            }
            Form::Circle { center, radius_m } => {
                let (south, north, lons) = cap_bounds(*center, *radius_m);
                lons.into_iter()
                    .map(|(west, east)| BBox {
                        min_lon: west.max(-180.0),
                        min_lat: south.max(-90.0),
                        max_lon: east.min(180.0),
                        max_lat: north.min(90.0),
                    })
                    .collect()
            }
        }
    }

    /// How the area meets the longitude/latitude rectangle `[west, east] × [south, north]`.
    /// Never `Inside` or `Outside` wrongly; `Partly` when unsure (a circle is always tested
    /// point by point, and a cell on the antimeridian or a pole is left to the points).
    pub fn overlap(&self, west: f64, south: f64, east: f64, north: f64) -> Overlap {
        let cell = BBox {
            min_lon: west,
            min_lat: south,
            max_lon: east,
            max_lat: north,
        };
        let reaches = |bounds: &[BBox]| {
            bounds.iter().any(|b| {
                boxes_meet(b, &cell)
                    // The same meridian under its other name.
                    || (east == 180.0 && b.min_lon == -180.0 && lat_ranges_meet(b, &cell))
                    || (west == -180.0 && b.max_lon == 180.0 && lat_ranges_meet(b, &cell))
            })
        };
        match &self.0.form {
            Form::Circle { .. } => {
                if reaches(&self.bounds()) {
                    Overlap::Partly
                } else {
                    Overlap::Outside
                }
            }
            Form::Polygons {
                bands,
                bounds,
                north_pole,
                south_pole,
                ..
            } => {
                let at_pole = (north == 90.0 && *north_pole) || (south == -90.0 && *south_pole);
                if !reaches(bounds) {
                    return if at_pole {
                        Overlap::Partly
                    } else {
                        Overlap::Outside
                    };
                }
                if at_pole
                    || east == 180.0
                    || west == -180.0
                    || bands.meets_rect(west, south, east, north)
                {
                    return Overlap::Partly;
                }
                // No edge meets the cell: it lies wholly inside or wholly outside.
                if bands.contains((west + east) / 2.0, (south + north) / 2.0) {
                    Overlap::Inside
                } else {
                    Overlap::Outside
                }
            }
        }
    }

    /// Bytes that identify the area, for binding page cursors to it.
    pub fn digest(&self, out: &mut Vec<u8>) {
        let numbers = |out: &mut Vec<u8>, xs: &[f64]| {
            for x in xs {
                out.extend_from_slice(&x.to_bits().to_le_bytes());
            }
        };
        match &self.0.shape {
            Shape::Circle { center, radius_m } => {
                out.push(0);
                numbers(out, &[center.lat, center.lon, *radius_m]);
            }
            Shape::Polygon(rings) => {
                out.push(1);
                digest_rings(out, rings);
            }
            Shape::MultiPolygon(polygons) => {
                out.push(2);
                for rings in polygons {
                    out.extend_from_slice(&(rings.len() as u64).to_le_bytes());
                    digest_rings(out, rings);
                }
            }
        }
    }

    /// Bytes of memory the prepared area holds, for the memory figures.
    pub fn heap_bytes(&self) -> usize {
        let shape = match &self.0.shape {
            Shape::Polygon(rings) => rings.iter().map(|r| r.len() * 16 + 24).sum(),
            Shape::MultiPolygon(polygons) => {
                polygons.iter().flatten().map(|r| r.len() * 16 + 24).sum()
            }
            Shape::Circle { .. } => 0,
        };
        let form = match &self.0.form {
            Form::Polygons { bands, bounds, .. } => bands.heap_bytes() + bounds.len() * 32,
            Form::Circle { .. } => 0,
        };
        size_of::<Prepared>() + shape + form
    }
}

fn digest_rings(out: &mut Vec<u8>, rings: &[Vec<[f64; 2]>]) {
    for ring in rings {
        out.extend_from_slice(&(ring.len() as u64).to_le_bytes());
        for p in ring {
            out.extend_from_slice(&p[0].to_bits().to_le_bytes());
            out.extend_from_slice(&p[1].to_bits().to_le_bytes());
        }
    }
}

/// Whether two boxes that do not cross the antimeridian share a point.
fn boxes_meet(a: &BBox, b: &BBox) -> bool {
    a.min_lon <= b.max_lon && b.min_lon <= a.max_lon && lat_ranges_meet(a, b)
}

fn lat_ranges_meet(a: &BBox, b: &BBox) -> bool {
    a.min_lat <= b.max_lat && b.min_lat <= a.max_lat
}

impl serde::Serialize for Area {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.shape.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Area {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let shape = Shape::deserialize(deserializer)?;
        Self::from_shape(shape).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod oracle_tests;
#[cfg(test)]
mod tests;
