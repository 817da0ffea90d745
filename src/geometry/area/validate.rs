//! Checking polygons as a client wrote them, so that every refusal names the ring and the
//! position at fault: positions, ring sizes, closure, longitude span, crossings (found with
//! geo's sweep, which reports which edges meet), holes outside their outline, and last
//! geo's own `Validation` for whatever the rest did not catch.

use geo::algorithm::sweep::{Cross, Intersections};
use geo::algorithm::validation::{RingRole, Validation};
use geo::{Coord, Line, LineIntersection, LineString, Polygon};

use super::AreaError;
use super::bands::Bands;

/// Polygons as parsed: polygon, ring, position, numbers.
pub type RawPolygons = Vec<Vec<Vec<Vec<f64>>>>;

/// Validated polygons: polygon, ring (exterior first), `[lon, lat]` positions, each ring
/// closed and free of repeated consecutive positions.
pub type Rings = Vec<Vec<Vec<[f64; 2]>>>;

/// Where a position is, for messages: `coordinates[k][r][p]` in a MultiPolygon,
/// `coordinates[r][p]` in a Polygon.
#[derive(Debug, Clone, Copy)]
struct Namer {
    multi: bool,
}

impl Namer {
    fn ring(self, polygon: usize, ring: usize) -> String {
        if self.multi {
            format!("coordinates[{polygon}][{ring}]")
        } else {
            format!("coordinates[{ring}]")
        }
    }

    fn position(self, polygon: usize, ring: usize, position: usize) -> String {
        format!("{}[{position}]", self.ring(polygon, ring))
    }

    fn error(self, polygon: usize, ring: usize, reason: String) -> AreaError {
        AreaError {
            at: self.ring(polygon, ring),
            reason,
        }
    }
}

/// Checks polygons and returns them as rings of `[lon, lat]`. `multi` names positions as a
/// MultiPolygon's; `max_vertices` bounds the positions of all rings together.
pub fn polygons(raw: RawPolygons, multi: bool, max_vertices: usize) -> Result<Rings, AreaError> {
    let names = Namer { multi };
    let total: usize = raw.iter().flatten().map(Vec::len).sum();
    if total > max_vertices {
        return Err(AreaError {
            at: "coordinates".into(),
            reason: format!("{total} positions; an area may have at most {max_vertices}"),
        });
    }
    if raw.is_empty() {
        return Err(AreaError {
            at: "coordinates".into(),
            reason: "a MultiPolygon needs at least one polygon".into(),
        });
    }
    let mut out = Vec::with_capacity(raw.len());
    for (k, polygon) in raw.into_iter().enumerate() {
        if polygon.is_empty() {
            return Err(AreaError {
                at: if multi {
                    format!("coordinates[{k}]")
                } else {
                    "coordinates".into()
                },
                reason: "a polygon needs its outline ring".into(),
            });
        }
        let mut rings = Vec::with_capacity(polygon.len());
        for (r, ring) in polygon.into_iter().enumerate() {
            rings.push(ring_positions(names, k, r, ring)?);
        }
        check_crossings(names, k, &rings)?;
        check_holes_inside(names, k, &rings)?;
        check_with_geo(names, k, &rings)?;
        out.push(rings.into_iter().map(|r| r.positions).collect());
    }
    Ok(out)
}

/// A ring's positions, and for each the index it had as written (repeated consecutive
/// positions are dropped).
struct CheckedRing {
    positions: Vec<[f64; 2]>,
    written_at: Vec<usize>,
}

fn ring_positions(
    names: Namer,
    k: usize,
    r: usize,
    ring: Vec<Vec<f64>>,
) -> Result<CheckedRing, AreaError> {
    let mut positions: Vec<[f64; 2]> = Vec::with_capacity(ring.len());
    let mut written_at = Vec::with_capacity(ring.len());
    let written = ring.len();
    for (p, numbers) in ring.iter().enumerate() {
        let at = || names.position(k, r, p);
        let (lon, lat) = match numbers.as_slice() {
            [lon, lat] | [lon, lat, _] => (*lon, *lat),
            other => {
                return Err(AreaError {
                    at: at(),
                    reason: format!(
                        "a position is [lon, lat] (or [lon, lat, altitude]), got {} number(s)",
                        other.len()
                    ),
                });
            }
        };
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            return Err(AreaError {
                at: at(),
                reason: format!("longitude must be a finite number in [-180, 180], got {lon}"),
            });
        }
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(AreaError {
                at: at(),
                reason: format!("latitude must be a finite number in [-90, 90], got {lat}"),
            });
        }
        if positions.last() != Some(&[lon, lat]) {
            positions.push([lon, lat]);
            written_at.push(p);
        }
    }
    if written < 4 {
        return Err(names.error(
            k,
            r,
            format!(
                "a ring needs at least 4 positions, the last repeating the first; got {written}"
            ),
        ));
    }
    let (first, last) = (&ring[0], &ring[written - 1]);
    if first[..2] != last[..2] {
        return Err(names.error(
            k,
            r,
            format!(
                "the ring is not closed: its last position {:?} differs from its first {:?}",
                &last[..2],
                &first[..2]
            ),
        ));
    }
    // Closed, and with repeats dropped the first position is also the last.
    if positions.len() < 4 {
        return Err(names.error(
            k,
            r,
            "a ring needs at least 3 distinct positions".to_string(),
        ));
    }
    let (west, east) = positions
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(w, e), p| {
            (w.min(p[0]), e.max(p[0]))
        });
    if east - west > 180.0 {
        return Err(names.error(
            k,
            r,
            format!(
                "the ring spans {}° of longitude; an area crossing the antimeridian must be a MultiPolygon cut at ±180",
                east - west
            ),
        ));
    }
    Ok(CheckedRing {
        positions,
        written_at,
    })
}

/// An edge of a polygon, for the sweep: its ring and its first position.
#[derive(Debug, Clone, Copy)]
struct RingEdge {
    ring: usize,
    index: usize,
    line: Line<f64>,
}

impl Cross for RingEdge {
    type Scalar = f64;

    fn line(&self) -> Line<f64> {
        self.line
    }
}

/// Refuses a ring that crosses or touches itself (other than where consecutive edges
/// meet) and two rings that cross or share a stretch of edge. Rings may touch at a point.
fn check_crossings(names: Namer, k: usize, rings: &[CheckedRing]) -> Result<(), AreaError> {
    let edges = rings.iter().enumerate().flat_map(|(ring, r)| {
        r.positions
            .windows(2)
            .enumerate()
            .map(move |(index, w)| RingEdge {
                ring,
                index,
                line: Line::new(
                    Coord {
                        x: w[0][0],
                        y: w[0][1],
                    },
                    Coord {
                        x: w[1][0],
                        y: w[1][1],
                    },
                ),
            })
    });
    let mut worst: Option<(RingEdge, RingEdge)> = None;
    for (a, b, meeting) in Intersections::from_iter(edges) {
        let (a, b) = if (a.ring, a.index) <= (b.ring, b.index) {
            (a, b)
        } else {
            (b, a)
        };
        let edges_in_ring = rings[a.ring].positions.len() - 1;
        let adjacent = a.ring == b.ring
            && (b.index == a.index + 1 || (a.index == 0 && b.index == edges_in_ring - 1));
        let fault = match meeting {
            LineIntersection::Collinear { .. } => true,
            LineIntersection::SinglePoint { is_proper, .. } => {
                if a.ring == b.ring {
                    !adjacent
                } else {
                    is_proper
                }
            }
        };
        if fault
            && worst.is_none_or(|w| {
                (a.ring, a.index, b.ring, b.index) < (w.0.ring, w.0.index, w.1.ring, w.1.index)
            })
        {
            worst = Some((a, b));
        }
    }
    let Some((a, b)) = worst else {
        return Ok(());
    };
    let edge = |e: RingEdge| {
        let at = &rings[e.ring].written_at;
        let next = at.get(e.index + 1).copied().unwrap_or(at[0]);
        format!("the edge from position {} to {next}", at[e.index])
    };
    let reason = if a.ring == b.ring {
        format!(
            "the ring crosses or touches itself: {} meets {}",
            edge(a),
            edge(b)
        )
    } else {
        format!(
            "the ring crosses ring {} of the same polygon: its {} meets that ring's {}",
            a.ring,
            edge(b),
            edge(a)
        )
    };
    Err(names.error(k, b.ring, reason))
}

/// Refuses a hole that lies outside its polygon's outline (the rings do not cross, so one
/// position of the hole off the outline's boundary decides).
fn check_holes_inside(names: Namer, k: usize, rings: &[CheckedRing]) -> Result<(), AreaError> {
    let Some((exterior, holes)) = rings.split_first() else {
        return Ok(());
    };
    if holes.is_empty() {
        return Ok(());
    }
    let outline = Bands::new(&[vec![exterior.positions.clone()]]);
    for (h, hole) in holes.iter().enumerate() {
        // A position strictly inside the outline's closed region or on it: inside unless the
        // hole wanders out, which a midpoint of an edge off the outline would show.
        let outside = hole.positions.windows(2).any(|w| {
            let mid = [(w[0][0] + w[1][0]) / 2.0, (w[0][1] + w[1][1]) / 2.0];
            !outline.contains(mid[0], mid[1])
        });
        if outside {
            return Err(names.error(
                k,
                h + 1,
                "the hole is not inside the polygon's outline (ring 0)".to_string(),
            ));
        }
    }
    Ok(())
}

/// geo's validation of the polygon, for what the checks above do not cover (nested or
/// overlapping holes, among others).
fn check_with_geo(names: Namer, k: usize, rings: &[CheckedRing]) -> Result<(), AreaError> {
    let ring = |r: &CheckedRing| {
        LineString::new(
            r.positions
                .iter()
                .map(|p| Coord { x: p[0], y: p[1] })
                .collect(),
        )
    };
    let polygon = Polygon::new(ring(&rings[0]), rings[1..].iter().map(ring).collect());
    match polygon.check_validation() {
        Ok(()) => Ok(()),
        Err(invalid) => {
            let role = match &invalid {
                geo::algorithm::validation::InvalidPolygon::TooFewPointsInRing(role)
                | geo::algorithm::validation::InvalidPolygon::SelfIntersection(role)
                | geo::algorithm::validation::InvalidPolygon::NonFiniteCoord(role, _)
                | geo::algorithm::validation::InvalidPolygon::InteriorRingNotContainedInExteriorRing(role)
                | geo::algorithm::validation::InvalidPolygon::IntersectingRingsOnALine(_, role)
                | geo::algorithm::validation::InvalidPolygon::IntersectingRingsOnAnArea(_, role) => *role,
            };
            let r = match role {
                RingRole::Exterior => 0,
                RingRole::Interior(i) => i + 1,
            };
            Err(names.error(k, r, format!("invalid polygon: {invalid}")))
        }
    }
}
