//! A route as it is read: split into parts at gaps, simplified to a tolerance in metres on
//! the sphere, and its figures (distance, duration, bounding box).
//!
//! Simplification runs `geo`'s Douglas–Peucker on a local projection (metres east and
//! north of the part's first point), which is fast but measures in the projection, not on
//! the sphere. So a second pass checks every dropped point's great-circle distance to the
//! arc of the simplified line that spans it, and where one lies farther than the tolerance,
//! keeps the farthest and checks both halves again. That pass is what makes the guarantee
//! hold everywhere, across the antimeridian and near the poles: no point of the route lies
//! farther than the tolerance from the simplified line.

use geo::{LineString, SimplifyIdx};

use super::RoutePoint;
use super::sphere::{angle, cross, dot};
use crate::geometry::{EARTH_RADIUS_M, haversine_m};

/// The route split into parts: a new part starts after a gap of more than `gap_ms` between
/// two consecutive points. Points in `ts` order.
pub fn parts(points: &[RoutePoint], gap_ms: i64) -> Vec<&[RoutePoint]> {
    if points.is_empty() {
        return Vec::new();
    }
    points
        .chunk_by(|a, b| b.ts.saturating_sub(a.ts) <= gap_ms)
        .collect()
}

/// The indices of the points of `part` kept by simplifying it to `tolerance_m`: the first
/// and the last always, and enough between them that no point of the part lies farther
/// than `tolerance_m` (great-circle metres) from the line through the kept ones.
pub fn simplify(part: &[RoutePoint], tolerance_m: f64) -> Vec<usize> {
    if part.len() <= 2 {
        return (0..part.len()).collect();
    }
    let origin = part[0];
    let line: LineString<f64> = part.iter().map(|p| project(origin, *p)).collect();
    let mut kept = line.simplify_idx(tolerance_m.max(0.0));
    // On the sphere, between each two kept points.
    let units: Vec<[f64; 3]> = part.iter().map(RoutePoint::unit).collect();
    let mut checked = Vec::with_capacity(kept.len());
    kept.dedup();
    for pair in kept.windows(2) {
        checked.push(pair[0]);
        refine(&units, pair[0], pair[1], tolerance_m, &mut checked);
    }
    if let Some(&last) = kept.last() {
        checked.push(last);
    }
    checked
}

/// Pushes, in order, the indices strictly between `a` and `b` that must be kept for every
/// point between them to lie within `tolerance_m` of the arcs through the kept ones.
fn refine(units: &[[f64; 3]], a: usize, b: usize, tolerance_m: f64, out: &mut Vec<usize>) {
    if b <= a + 1 {
        return;
    }
    let (mut farthest, mut worst) = (a, -1.0f64);
    for (i, p) in units.iter().enumerate().take(b).skip(a + 1) {
        let d = distance_to_arc_m(*p, units[a], units[b]);
        if d > worst {
            (farthest, worst) = (i, d);
        }
    }
    if worst > tolerance_m {
        refine(units, a, farthest, tolerance_m, out);
        out.push(farthest);
        refine(units, farthest, b, tolerance_m, out);
    }
}

/// What a route's points add up to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Points.
    pub points: u64,
    /// The sum of the great-circle legs between consecutive points, metres.
    pub distance_m: f64,
    /// From the first point's `ts` to the last's, seconds.
    pub duration_s: f64,
    /// The first point.
    pub first: Option<RoutePoint>,
    /// The last point.
    pub last: Option<RoutePoint>,
}

impl Figures {
    /// No points yet.
    pub const EMPTY: Self = Self {
        points: 0,
        distance_m: 0.0,
        duration_s: 0.0,
        first: None,
        last: None,
    };

    /// The figures of `points` (in `ts` order), from nothing.
    pub fn of(points: &[RoutePoint]) -> Self {
        let mut figures = Self::EMPTY;
        for p in points {
            figures.extend(*p);
        }
        figures
    }

    /// Adds a point later than every point counted so far: the figures kept as points
    /// arrive, never by reading the route again.
    pub fn extend(&mut self, p: RoutePoint) {
        if let Some(last) = self.last {
            self.distance_m += haversine_m(last.latlon(), p.latlon());
        }
        self.first.get_or_insert(p);
        self.last = Some(p);
        self.points += 1;
        if let (Some(first), Some(last)) = (self.first, self.last) {
            self.duration_s = (last.ts - first.ts) as f64 / 1000.0;
        }
    }
}

/// Metres east and north of `origin` (longitudes unwrapped across the antimeridian), the
/// plane `geo` simplifies in.
fn project(origin: RoutePoint, p: RoutePoint) -> (f64, f64) {
    let mut dlon = p.lon - origin.lon;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let metres_a_degree = EARTH_RADIUS_M.to_radians();
    (
        dlon * metres_a_degree * origin.lat.to_radians().cos(),
        (p.lat - origin.lat) * metres_a_degree,
    )
}

/// The great-circle distance from `p` to the shorter arc from `a` to `b`, metres.
pub(super) fn distance_to_arc_m(p: [f64; 3], a: [f64; 3], b: [f64; 3]) -> f64 {
    let ends = angle(p, a).min(angle(p, b));
    let n = cross(a, b);
    let norm = dot(n, n).sqrt();
    if norm < 1e-15 {
        // `a` and `b` coincide (or are antipodes, which a route's legs are not).
        return ends * EARTH_RADIUS_M;
    }
    let n = [n[0] / norm, n[1] / norm, n[2] / norm];
    // The foot of the perpendicular from `p` on the great circle through `a` and `b`.
    let off = dot(p, n);
    let foot = [p[0] - off * n[0], p[1] - off * n[1], p[2] - off * n[2]];
    let within = dot(cross(a, foot), n) >= 0.0 && dot(cross(foot, b), n) >= 0.0;
    if within && dot(foot, foot) > 0.0 {
        off.abs().clamp(0.0, 1.0).asin().min(ends) * EARTH_RADIUS_M
    } else {
        ends * EARTH_RADIUS_M
    }
}

#[cfg(test)]
mod tests;
