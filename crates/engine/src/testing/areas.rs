//! Random areas for the oracle tests, and the brute-force answer they are checked against:
//! geo's plain point-in-polygon over the same polygons, with the two place conventions
//! (one antimeridian, one pole). Polygons are random stars (simple by construction) with
//! holes, pairs, halves cut at the antimeridian, caps on a pole, and sizes from a
//! ten-centimetre speck to a continent.

use geo::{Coord, Intersects, LineString, MultiPolygon, Polygon};
use proptest::prelude::*;

use crate::geometry::LatLon;
use crate::geometry::area::{Area, MAX_AREA_VERTICES, RawPolygons};

/// A star-shaped ring around `(lon, lat)`: `radii` at evenly spread angles from `from` to
/// `to` (radians), closed. Star-shaped around its centre, so simple.
fn star(lon: f64, lat: f64, size: f64, radii: &[f64], from: f64, to: f64) -> Vec<[f64; 2]> {
    let n = radii.len();
    let mut ring: Vec<[f64; 2]> = radii
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let a = from + (to - from) * i as f64 / n as f64;
            [lon + size * r * a.cos(), lat + size * r * a.sin()]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

/// A half star whose straight side lies on the meridian `lon` (or the parallel `lat`, when
/// `on_parallel`): the half facing away from it, with the side's two ends on the line.
fn half(lon: f64, lat: f64, size: f64, radii: &[f64], facing: f64) -> Vec<[f64; 2]> {
    let n = radii.len();
    let start = facing - std::f64::consts::FRAC_PI_2;
    let mut ring: Vec<[f64; 2]> = (0..=n)
        .map(|i| {
            let a = start + std::f64::consts::PI * i as f64 / n as f64;
            let r = if i == 0 || i == n { 1.0 } else { radii[i - 1] };
            [lon + size * r * a.cos(), lat + size * r * a.sin()]
        })
        .collect();
    // The ends exactly on the line, then back to the start along it.
    if facing.cos().abs() > 0.5 {
        ring[0][0] = lon;
        ring[n][0] = lon;
    } else {
        ring[0][1] = lat;
        ring[n][1] = lat;
    }
    ring.push(ring[0]);
    ring
}

/// The kinds of polygon the oracle tests draw.
#[derive(Debug, Clone)]
pub(crate) enum Case {
    Star {
        lon: f64,
        lat: f64,
        size: f64,
        radii: Vec<f64>,
        hole: Option<f64>,
    },
    Pair {
        lat: f64,
        size: f64,
        radii: Vec<f64>,
    },
    Antimeridian {
        lat: f64,
        size: f64,
        radii: Vec<f64>,
    },
    Pole {
        north: bool,
        lon: f64,
        size: f64,
        radii: Vec<f64>,
    },
}

impl Case {
    /// The polygons, rings of `[lon, lat]`.
    pub(crate) fn rings(&self) -> Vec<Vec<Vec<[f64; 2]>>> {
        use std::f64::consts::{PI, TAU};
        match self {
            Case::Star {
                lon,
                lat,
                size,
                radii,
                hole,
            } => {
                let mut rings = vec![star(*lon, *lat, *size, radii, 0.0, TAU)];
                // With six or more outer vertices at radius 0.3 or more, every outer edge is
                // at least 0.3 cos 30° = 0.26 from the centre: a hole of radius 0.2 fits.
                if let Some(h) = hole.filter(|_| radii.len() >= 6) {
                    // Reversed, as holes usually are.
                    let mut inner = star(*lon, *lat, *size * 0.2 * h, &[1.0; 7], 0.3, 0.3 + TAU);
                    inner.reverse();
                    rings.push(inner);
                }
                vec![rings]
            }
            Case::Pair { lat, size, radii } => vec![
                vec![star(-20.0, *lat, *size, radii, 0.0, TAU)],
                vec![star(20.0, *lat, *size, radii, 0.0, TAU)],
            ],
            Case::Antimeridian { lat, size, radii } => vec![
                vec![half(180.0, *lat, *size, radii, PI)],
                vec![half(-180.0, *lat, *size, radii, 0.0)],
            ],
            Case::Pole {
                north,
                lon,
                size,
                radii,
            } => {
                let (lat, facing) = if *north {
                    (90.0, -PI / 2.0)
                } else {
                    (-90.0, PI / 2.0)
                };
                vec![vec![half(*lon, lat, *size, radii, facing)]]
            }
        }
    }

    /// The polygons as an [`Area`].
    pub(crate) fn area(&self) -> Area {
        let raw: RawPolygons = self
            .rings()
            .into_iter()
            .map(|rings| {
                rings
                    .into_iter()
                    .map(|r| r.into_iter().map(|p| p.to_vec()).collect())
                    .collect()
            })
            .collect();
        Area::multi_polygon(raw, MAX_AREA_VERTICES).unwrap_or_else(|e| panic!("{self:?}: {e}"))
    }
}

fn radii() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.3..1.0f64, 3..40)
}

/// A random area (see [`Case`]).
pub(crate) fn area_case() -> impl Strategy<Value = Case> {
    let size = prop_oneof![Just(1e-6), 0.001..0.1f64, 0.1..5.0f64, 5.0..40.0f64];
    prop_oneof![
        4 => (-130.0..130.0f64, -45.0..45.0f64, size.clone(), radii(), prop::option::of(0.2..1.0f64))
            .prop_map(|(lon, lat, size, radii, hole)| Case::Star { lon, lat, size, radii, hole }),
        1 => (-40.0..40.0f64, 0.01..15.0f64, radii()).prop_map(|(lat, size, radii)| Case::Pair { lat, size, radii }),
        2 => (-40.0..40.0f64, size.clone(), radii()).prop_map(|(lat, size, radii)| Case::Antimeridian { lat, size, radii }),
        2 => (any::<bool>(), -100.0..100.0f64, 0.001..30.0f64, radii())
            .prop_map(|(north, lon, size, radii)| Case::Pole { north, lon, size, radii }),
    ]
}

/// geo's plain test over the same polygons, with the place conventions.
pub(crate) fn oracle(rings: &[Vec<Vec<[f64; 2]>>], p: LatLon) -> bool {
    if p.lat.abs() == 90.0 {
        return rings.iter().flatten().flatten().any(|q| q[1] == p.lat);
    }
    let geometry = MultiPolygon::new(
        rings
            .iter()
            .map(|rings| {
                let ring = |r: &Vec<[f64; 2]>| {
                    LineString::new(r.iter().map(|q| Coord { x: q[0], y: q[1] }).collect())
                };
                Polygon::new(ring(&rings[0]), rings[1..].iter().map(ring).collect())
            })
            .collect(),
    );
    let at = |lon: f64| geometry.intersects(&Coord { x: lon, y: p.lat });
    at(p.lon) || (p.lon == 180.0 && at(-180.0)) || (p.lon == -180.0 && at(180.0))
}

/// Points to test: around the area, on its vertices and edge midpoints, on the antimeridian
/// and the poles.
pub(crate) fn points(rings: &[Vec<Vec<[f64; 2]>>], unit: &[(f64, f64)]) -> Vec<LatLon> {
    let all: Vec<[f64; 2]> = rings.iter().flatten().flatten().copied().collect();
    let (w, s, e, n) = all
        .iter()
        .fold((180f64, 90f64, -180f64, -90f64), |(w, s, e, n), p| {
            (w.min(p[0]), s.min(p[1]), e.max(p[0]), n.max(p[1]))
        });
    let (dw, dh) = ((e - w).max(1e-9) * 0.2, (n - s).max(1e-9) * 0.2);
    let mut out: Vec<LatLon> = unit
        .iter()
        .map(|(u, v)| {
            let lon = (w - dw + u * (e - w + 2.0 * dw)).clamp(-180.0, 180.0);
            let lat = (s - dh + v * (n - s + 2.0 * dh)).clamp(-90.0, 90.0);
            LatLon { lat, lon }
        })
        .collect();
    for ring in rings.iter().flatten() {
        for pair in ring.windows(2) {
            out.push(LatLon {
                lat: pair[0][1],
                lon: pair[0][0],
            });
            out.push(LatLon {
                lat: (pair[0][1] + pair[1][1]) / 2.0,
                lon: (pair[0][0] + pair[1][0]) / 2.0,
            });
        }
    }
    for (u, v) in unit.iter().take(8) {
        let lat = (s + v * (n - s)).clamp(-90.0, 90.0);
        out.push(LatLon { lat, lon: 180.0 });
        out.push(LatLon { lat, lon: -180.0 });
        out.push(LatLon {
            lat: 90.0,
            lon: -180.0 + u * 360.0,
        });
        out.push(LatLon {
            lat: -90.0,
            lon: -180.0 + u * 360.0,
        });
    }
    out.into_iter()
        .filter(|p| LatLon::new(p.lat, p.lon).is_ok())
        .collect()
}
