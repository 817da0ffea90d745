//! Where a traveller stayed: runs of route points that all lie within a radius of their
//! centre, for at least a minimum time.
//!
//! The rule, left to right: from the first point not yet in a stay, the run grows point by
//! point while every point of it lies within `radius_m` of the run's centre (the
//! normalised mean of its unit vectors, so that it is right across the antimeridian and at
//! the poles), and ends before the first point that does not fit; the run is a stay if it
//! lasts `min_ms` or more, and the next run starts after it; otherwise the next run starts
//! one point later.
//!
//! Checking every point of a run against the centre each time a point joins is quadratic
//! in the run's length (a night in a hotel, reported every 5 s, is 8,640 points). So the
//! check is skipped while it cannot fail: `far` bounds every point's distance to the centre
//! as it was when all were last checked (a point that joined since counts with its distance
//! to the centre then plus how far that had moved), and the centre has since moved `drift`
//! metres; by the triangle inequality every point is within `far + drift` of the centre
//! now, and only when that passes `radius_m` are they all checked again. And after a run
//! too short to be a stay, the starts whose runs cannot reach past it are skipped
//! ([`next_start`]): running the rule from each made a long route's stays quadratic. And a
//! start whose points up to `min_ms` later spread too wide to fit any circle of the radius
//! is passed with no run grown from it ([`spread_limit`]): where no stay can be, as along a
//! walk, that is a comparison a point. The result is the rule's, which a brute-force
//! detector checks in the tests.

use super::RoutePoint;
use super::sphere::{add, angle, to_latlon};
use crate::geometry::{EARTH_RADIUS_M, LatLon, haversine_m};

/// A stay: where, when, and how many points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stay {
    /// The centre of its points.
    pub centre: LatLon,
    /// Its first point's `ts`.
    pub arrived: i64,
    /// Its last point's `ts`.
    pub left: i64,
    /// Points in it.
    pub points: usize,
}

/// The stays of a route (points in `ts` order).
pub fn stays(points: &[RoutePoint], radius_m: f64, min_ms: i64) -> Vec<Stay> {
    let units: Vec<[f64; 3]> = points.iter().map(RoutePoint::unit).collect();
    let mut out = Vec::new();
    let mut start = 0;
    // The first point at least `min_ms` after `start`, and the extent of the points from
    // `start` to it (see `spread_limit`).
    let mut reach = 0;
    let mut extent = Extent::default();
    let limit = spread_limit(radius_m);
    while start < points.len() {
        reach = reach.max(start);
        while reach < points.len() && points[reach].ts.saturating_sub(points[start].ts) < min_ms {
            reach += 1;
        }
        if reach == points.len() {
            // No run from here, or from any later start, lasts long enough.
            break;
        }
        if extent.spread(&units, start, reach) > limit {
            // A stay from `start` would hold every point up to `reach`, and they do not
            // fit in its circle: the rule's next run starts one point later.
            start += 1;
            continue;
        }
        let end = longest_run(&units, start, radius_m);
        let (first, last) = (points[start], points[end]);
        if last.ts.saturating_sub(first.ts) >= min_ms {
            let sum = sum_of(&units[start..=end]);
            out.push(Stay {
                centre: to_latlon(sum),
                arrived: first.ts,
                left: last.ts,
                points: end - start + 1,
            });
            start = end + 1;
        } else if end + 1 == points.len() {
            // Every later run ends by the route's end too, and so lasts less than this one.
            break;
        } else {
            start = next_start(&units, start, end, radius_m);
        }
    }
    out
}

/// The most any coordinate of the unit vectors of points within `radius_m` of one centre
/// may differ, with slack: two such points are at most twice that angle apart, so their
/// chord, and each coordinate's difference, is at most twice its sine. `INFINITY` when the
/// radius reaches a quarter of the way round, where that no longer bounds anything.
///
/// This is what keeps the stays of a long route linear where no stay can be: a start whose
/// points up to `min_ms` later spread wider than this cannot start a stay, and is passed
/// with no run grown from it. Growing a run from every start made a walk's stays cost
/// the length of a run a point: a million-point walk asked for stays of a week within
/// 10 km (runs of some 1,400 points, none a stay) took minutes of a heavy-work slot.
fn spread_limit(radius_m: f64) -> f64 {
    let angle = radius_m / EARTH_RADIUS_M;
    if angle >= std::f64::consts::FRAC_PI_2 {
        f64::INFINITY
    } else {
        2.0 * angle.sin() + SPREAD_SLACK
    }
}

/// Slack on [`spread_limit`], in unit-sphere units (about 6 m): far above the rounding of
/// the unit vectors, so that only starts sure to fail are passed.
const SPREAD_SLACK: f64 = 1e-6;

/// The least and greatest of each coordinate of a window of unit vectors that slides
/// forward (both ends only grow): monotonic queues of indices, so that each index joins
/// and leaves each queue once.
#[derive(Debug, Default)]
struct Extent {
    /// For each axis, indices whose values decrease (the greatest first) and increase
    /// (the least first).
    greatest: [std::collections::VecDeque<usize>; 3],
    least: [std::collections::VecDeque<usize>; 3],
    /// The next index to join.
    next: usize,
}

impl Extent {
    /// The largest spread of one coordinate over `units[from..=to]` (`from` and `to` never
    /// less than at the last call).
    fn spread(&mut self, units: &[[f64; 3]], from: usize, to: usize) -> f64 {
        self.next = self.next.max(from);
        while self.next <= to {
            let i = self.next;
            let queues = self.greatest.iter_mut().zip(self.least.iter_mut());
            for (axis, (greatest, least)) in queues.enumerate() {
                let v = units[i][axis];
                while greatest.back().is_some_and(|&j| units[j][axis] <= v) {
                    greatest.pop_back();
                }
                greatest.push_back(i);
                while least.back().is_some_and(|&j| units[j][axis] >= v) {
                    least.pop_back();
                }
                least.push_back(i);
            }
            self.next += 1;
        }
        let mut spread = 0.0f64;
        let queues = self.greatest.iter_mut().zip(self.least.iter_mut());
        for (axis, (greatest, least)) in queues.enumerate() {
            for queue in [&mut *greatest, &mut *least] {
                while queue.front().is_some_and(|&j| j < from) {
                    queue.pop_front();
                }
            }
            if let (Some(&hi), Some(&lo)) = (greatest.front(), least.front()) {
                spread = spread.max(units[hi][axis] - units[lo][axis]);
            }
        }
        spread
    }
}

/// Slack on the skip below, metres: some million times the rounding of the sums, so that
/// only runs sure to fail are skipped.
const SKIP_SLACK_M: f64 = 1.0;

/// Where the rule's next run may be a stay, after the run from `start` ended at `end`
/// (before the route's end) too short: the first later start whose run can reach past
/// `end`, or `end + 1`.
///
/// A run from `s` in `start + 1..=end` that ends by `end` lasts less than the one from
/// `start` (its times are a part of that run's), so it is no stay; and it ends by `end`
/// unless the points `s..=end + 1` all fit around their centre. Where `s` or `end + 1`
/// itself lies farther than the radius from that centre they do not, and `s` is skipped
/// without running the rule from it. Running the rule from each `s` instead made the
/// stays of a long route quadratic in a run's length: a week's city break at one point
/// every 5 s, asked for stays of a week within 10 km, is some 10^10 distances.
fn next_start(units: &[[f64; 3]], start: usize, end: usize, radius_m: f64) -> usize {
    let past = end + 1;
    let reach = radius_m + SKIP_SLACK_M;
    // The sum of `s..=past`, slid along as `s` grows, and summed afresh each time what is
    // left of it halves: points taken off the front of a long run's sum would otherwise
    // carry its rounding into the sum of the last few, whose direction it is.
    let mut sum = sum_of(&units[start + 1..=past]);
    let mut summed = past - start;
    for s in start + 1..=end {
        let left = past - s + 1;
        if 2 * left <= summed {
            sum = sum_of(&units[s..=past]);
            summed = left;
        }
        if distance_m(units[s], sum) <= reach && distance_m(units[past], sum) <= reach {
            return s;
        }
        sum = sub(sum, units[s]);
    }
    past
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// The last index of the longest run from `start` whose points all lie within `radius_m`
/// of their centre.
fn longest_run(units: &[[f64; 3]], start: usize, radius_m: f64) -> usize {
    let mut sum = units[start];
    // The centre when every point was last checked, and the farthest point from it then.
    let (mut checked_centre, mut far) = (sum, 0.0f64);
    let mut end = start;
    for (next, unit) in units.iter().enumerate().skip(start + 1) {
        let grown = add(sum, *unit);
        let centre = grown;
        let own = distance_m(*unit, centre);
        let drift = distance_m(checked_centre, centre);
        let fits = if own > radius_m {
            false
        } else if far + drift <= radius_m {
            // `far` bounds every point's distance to `checked_centre`, the new one's too.
            far = far.max(own + drift);
            true
        } else {
            // Check them all, and start bounding again from this centre.
            let worst = units[start..=next]
                .iter()
                .map(|u| distance_m(*u, centre))
                .fold(0.0, f64::max);
            checked_centre = centre;
            far = worst;
            worst <= radius_m
        };
        if !fits {
            break;
        }
        sum = grown;
        end = next;
    }
    end
}

fn sum_of(units: &[[f64; 3]]) -> [f64; 3] {
    units.iter().fold([0.0; 3], |s, u| add(s, *u))
}

/// The great-circle distance between the directions of two vectors, metres.
fn distance_m(a: [f64; 3], b: [f64; 3]) -> f64 {
    angle(a, b) * EARTH_RADIUS_M
}

/// The haversine distance from a route point to a place, metres (for callers joining a
/// stay to what is near its centre).
pub fn distance_from(p: RoutePoint, place: LatLon) -> f64 {
    haversine_m(p.latlon(), place)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The rule, by brute force: each candidate run's centre computed afresh and every
    /// point measured with the haversine.
    fn brute_force(points: &[RoutePoint], radius_m: f64, min_ms: i64) -> Vec<(i64, i64, usize)> {
        let fits = |run: &[RoutePoint]| {
            let sum = run.iter().fold([0.0; 3], |s, p| add(s, p.unit()));
            let centre = to_latlon(sum);
            run.iter()
                .all(|p| distance_from(*p, centre) <= radius_m + 1e-6)
        };
        let mut out = Vec::new();
        let mut start = 0;
        while start < points.len() {
            let mut end = start;
            while end + 1 < points.len() && fits(&points[start..=end + 1]) {
                end += 1;
            }
            if points[end].ts - points[start].ts >= min_ms {
                out.push((points[start].ts, points[end].ts, end - start + 1));
                start = end + 1;
            } else {
                start += 1;
            }
        }
        out
    }

    /// The stays found, as the brute-force detector gives them.
    fn found(points: &[RoutePoint], radius_m: f64, min_ms: i64) -> Vec<(i64, i64, usize)> {
        stays(points, radius_m, min_ms)
            .iter()
            .map(|s| (s.arrived, s.left, s.points))
            .collect()
    }

    /// A day out: walks between places, with pauses of random lengths at each, anywhere
    /// (the antimeridian and the poles included).
    fn day() -> impl Strategy<Value = Vec<RoutePoint>> {
        (
            -89.9f64..89.9,
            -180.0f64..180.0,
            proptest::collection::vec((0usize..40, 0usize..40, -1.0f64..1.0, -1.0f64..1.0), 1..8),
        )
            .prop_map(|(lat0, lon0, legs)| {
                let mut out = Vec::new();
                let (mut lat, mut lon, mut ts) = (lat0, lon0, 0i64);
                for (pause, walk, dlat, dlon) in legs {
                    for i in 0..pause {
                        // Jitter of a few metres while staying.
                        let j = ((i * 7919) % 11) as f64 * 1e-5;
                        out.push(RoutePoint {
                            ts,
                            lat: (lat + j).clamp(-90.0, 90.0),
                            lon: lon + j,
                        });
                        ts += 60_000;
                    }
                    for _ in 0..walk {
                        lat = (lat + dlat * 1e-3).clamp(-90.0, 90.0);
                        lon += dlon * 1e-3;
                        if lon > 180.0 {
                            lon -= 360.0;
                        } else if lon < -180.0 {
                            lon += 360.0;
                        }
                        out.push(RoutePoint { ts, lat, lon });
                        ts += 60_000;
                    }
                }
                out
            })
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(128))]

        /// Radii of kilometres and minimums of hours over walks of a few kilometres: runs
        /// that reach far and fall short, where later starts are skipped.
        #[test]
        fn long_reaching_runs_too_short_to_be_stays_equal_the_brute_force_detector(
            points in day().prop_map(|mut p| { p.truncate(160); p }),
            radius_m in 300.0f64..20_000.0,
            min_minutes in 0i64..400,
        ) {
            let min_ms = min_minutes * 60_000;
            prop_assert_eq!(found(&points, radius_m, min_ms), brute_force(&points, radius_m, min_ms));
        }

        #[test]
        fn stays_equal_the_brute_force_detector(
            points in day(),
            radius_m in prop_oneof![Just(0.0), 10.0f64..300.0],
            min_minutes in 0i64..30,
        ) {
            let min_ms = min_minutes * 60_000;
            prop_assert_eq!(found(&points, radius_m, min_ms), brute_force(&points, radius_m, min_ms));
        }
    }

    #[test]
    fn a_night_in_one_place_is_one_stay_and_the_walk_before_it_none() {
        let mut points = Vec::new();
        for i in 0..30 {
            points.push(RoutePoint {
                ts: i * 60_000,
                lat: 60.0 + i as f64 * 1e-3,
                lon: 24.0,
            });
        }
        for i in 30..(30 + 8_640) {
            let j = (i % 5) as f64 * 2e-5;
            points.push(RoutePoint {
                ts: i * 5_000 + 1_800_000,
                lat: 60.03 + j,
                lon: 24.0 + j,
            });
        }
        let found = stays(&points, 100.0, 20 * 60_000);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].points, 8_640,
            "the walk's last point is 111 m away"
        );
    }
}
