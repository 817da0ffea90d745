//! Checking polygons as a client wrote them, so that every refusal names the ring and the
//! position at fault: positions, ring sizes, closure, longitude span, then one sweep of
//! each polygon's rings ([`super::sweep`], O(n log n) for any shape, within
//! [`CHECK_BUDGET`]) for edges that cross, touch or overlap where they must not and for
//! holes outside their outline or inside another hole.

use std::time::{Duration, Instant};

use super::AreaError;
use super::sweep::{Swept, sweep};

/// The most time checking one area may take. The sweep is O(n log n), so a valid area of the
/// largest size takes a few milliseconds; the budget only bounds what no valid area needs.
pub const CHECK_BUDGET: Duration = Duration::from_millis(500);

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
    let deadline = Instant::now() + CHECK_BUDGET;
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
        check_meetings_and_nesting(names, k, &rings, deadline)?;
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

/// Refuses a ring that crosses or touches itself (other than where consecutive edges
/// meet), two rings that cross or share a stretch of edge (rings may touch at a point), a
/// hole outside the outline, and a hole inside another hole.
fn check_meetings_and_nesting(
    names: Namer,
    k: usize,
    rings: &[CheckedRing],
    deadline: Instant,
) -> Result<(), AreaError> {
    let positions: Vec<Vec<[f64; 2]>> = rings.iter().map(|r| r.positions.clone()).collect();
    let mut seed = [0u8; 8];
    // Random tree priorities: no input can be built against them.
    getrandom::fill(&mut seed).expect("the operating system provides randomness");
    let parents = match sweep(&positions, deadline, u64::from_le_bytes(seed)) {
        Swept::Nested(parents) => parents,
        Swept::TooLong => {
            return Err(AreaError {
                at: "coordinates".into(),
                reason: format!(
                    "the area is too intricate to check within {} ms; send a simpler one",
                    CHECK_BUDGET.as_millis()
                ),
            });
        }
        Swept::Meet(((ar, ai), (br, bi))) => {
            let edge = |r: usize, i: usize| {
                let at = &rings[r].written_at;
                let next = at.get(i + 1).copied().unwrap_or(at[0]);
                format!("the edge from position {} to {next}", at[i])
            };
            let reason = if ar == br {
                format!(
                    "the ring crosses or touches itself: {} meets {}",
                    edge(ar, ai),
                    edge(br, bi)
                )
            } else {
                format!(
                    "the ring crosses ring {ar} of the same polygon: its {} meets that ring's {}",
                    edge(br, bi),
                    edge(ar, ai)
                )
            };
            return Err(names.error(k, br, reason));
        }
    };
    // The outline lies in no ring; each hole in the outline.
    if let Some(hole) = parents[0] {
        return Err(names.error(
            k,
            hole,
            "the hole is not inside the polygon's outline (ring 0)".to_string(),
        ));
    }
    for (h, parent) in parents.iter().enumerate().skip(1) {
        match parent {
            Some(0) => {}
            None => {
                return Err(names.error(
                    k,
                    h,
                    "the hole is not inside the polygon's outline (ring 0)".to_string(),
                ));
            }
            Some(g) => {
                return Err(names.error(
                    k,
                    h,
                    format!("the hole lies inside ring {g}, another hole of the same polygon"),
                ));
            }
        }
    }
    Ok(())
}
