//! Parts, simplification and figures against brute force: the simplification bound is
//! checked point by point with the haversine against points sampled densely along the
//! kept arcs (an oracle that shares no code with the distance the simplifier uses), on
//! random walks anywhere, across the antimeridian and over the poles.

use proptest::prelude::*;

use super::*;
use crate::geometry::LatLon;

/// A walk: a start anywhere, then steps of up to `step_deg` degrees, `ts` 1 s apart.
fn walk(step_deg: f64) -> impl Strategy<Value = Vec<RoutePoint>> {
    (
        -89.0f64..89.0,
        -180.0f64..180.0,
        proptest::collection::vec((-step_deg..step_deg, -step_deg..step_deg), 1..300),
    )
        .prop_map(|(lat, lon, steps)| {
            let mut p = RoutePoint { ts: 0, lat, lon };
            let mut out = vec![p];
            for (dlat, dlon) in steps {
                p.ts += 1_000;
                p.lat = (p.lat + dlat).clamp(-90.0, 90.0);
                p.lon += dlon;
                if p.lon > 180.0 {
                    p.lon -= 360.0;
                } else if p.lon < -180.0 {
                    p.lon += 360.0;
                }
                out.push(p);
            }
            out
        })
}

/// Points along the great-circle arc from `a` to `b`, at most `step_m` metres apart.
fn along(a: RoutePoint, b: RoutePoint, step_m: f64) -> Vec<LatLon> {
    let (ua, ub) = (a.unit(), b.unit());
    let theta = angle(ua, ub);
    let n = ((theta * EARTH_RADIUS_M / step_m).ceil() as usize).max(1);
    (0..=n)
        .map(|i| {
            let t = i as f64 / n as f64;
            // Spherical linear interpolation.
            let (wa, wb) = if theta < 1e-12 {
                (1.0 - t, t)
            } else {
                (
                    ((1.0 - t) * theta).sin() / theta.sin(),
                    (t * theta).sin() / theta.sin(),
                )
            };
            let v = [
                wa * ua[0] + wb * ub[0],
                wa * ua[1] + wb * ub[1],
                wa * ua[2] + wb * ub[2],
            ];
            super::super::sphere::to_latlon(v)
        })
        .collect()
}

/// The largest haversine distance from a dropped point to the line through the kept ones,
/// against arcs sampled every `step_m` metres.
fn worst_m(part: &[RoutePoint], kept: &[usize], step_m: f64) -> f64 {
    let mut worst = 0.0f64;
    for pair in kept.windows(2) {
        let samples = along(part[pair[0]], part[pair[1]], step_m);
        for p in &part[pair[0]..=pair[1]] {
            let d = samples
                .iter()
                .map(|s| haversine_m(p.latlon(), *s))
                .fold(f64::INFINITY, f64::min);
            worst = worst.max(d);
        }
    }
    worst
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(64))]

    /// No point lies farther than the tolerance from the simplified line (plus the
    /// oracle's sampling step), the ends are kept, and the indices rise.
    #[test]
    fn no_point_lies_farther_than_the_tolerance_from_the_simplified_line(
        points in walk(0.01),
        tolerance_m in prop_oneof![Just(0.0), 1.0f64..50.0, 50.0f64..2_000.0],
    ) {
        let kept = simplify(&points, tolerance_m);
        prop_assert_eq!(kept.first(), Some(&0));
        prop_assert_eq!(kept.last(), Some(&(points.len() - 1)));
        prop_assert!(kept.windows(2).all(|w| w[0] < w[1]));
        let step_m = (tolerance_m / 10.0).max(1.0);
        prop_assert!(worst_m(&points, &kept, step_m) <= tolerance_m + step_m);
    }

    /// Long legs: the projection is far off, the spherical pass keeps the bound.
    #[test]
    fn the_bound_holds_for_long_legs_near_the_poles_and_across_the_antimeridian(
        points in walk(3.0).prop_map(|mut p| { p.truncate(40); p }),
        tolerance_m in 5_000.0f64..50_000.0,
    ) {
        let kept = simplify(&points, tolerance_m);
        let step_m = tolerance_m / 10.0;
        prop_assert!(worst_m(&points, &kept, step_m) <= tolerance_m + step_m);
    }

    /// Parts split exactly at the gaps longer than the threshold, and hold every point.
    #[test]
    fn parts_split_at_gaps_and_hold_every_point(
        gaps in proptest::collection::vec(0i64..5_000, 0..200),
        gap_ms in 0i64..5_000,
    ) {
        let mut ts = 0;
        let points: Vec<RoutePoint> = gaps
            .iter()
            .map(|g| {
                ts += g;
                RoutePoint { ts, lat: 0.0, lon: 0.0 }
            })
            .collect();
        let got = parts(&points, gap_ms);
        prop_assert_eq!(got.iter().map(|p| p.len()).sum::<usize>(), points.len());
        let breaks = points.windows(2).filter(|w| w[1].ts - w[0].ts > gap_ms).count();
        prop_assert_eq!(got.len(), if points.is_empty() { 0 } else { breaks + 1 });
        for part in &got {
            prop_assert!(part.windows(2).all(|w| w[1].ts - w[0].ts <= gap_ms));
        }
    }

    /// Figures kept point by point equal the brute-force sums.
    #[test]
    fn figures_kept_as_points_arrive_equal_brute_force(points in walk(0.5)) {
        let mut kept = Figures::EMPTY;
        for p in &points {
            kept.extend(*p);
        }
        let distance: f64 = points
            .windows(2)
            .map(|w| haversine_m(w[0].latlon(), w[1].latlon()))
            .sum();
        prop_assert_eq!(kept.points, points.len() as u64);
        prop_assert!((kept.distance_m - distance).abs() <= 1e-6 * distance.max(1.0));
        let span = points.last().map_or(0, |l| l.ts) - points.first().map_or(0, |f| f.ts);
        prop_assert_eq!(kept.duration_s, span as f64 / 1000.0);
        prop_assert_eq!(kept, Figures::of(&points));
    }
}

#[test]
fn a_straight_walk_simplifies_to_its_ends_and_a_zigzag_does_not() {
    let straight: Vec<RoutePoint> = (0..1_000)
        .map(|i| RoutePoint {
            ts: i * 1_000,
            lat: 60.0,
            lon: 24.0 + i as f64 * 1e-4,
        })
        .collect();
    // A parallel of latitude is not a great circle: over 5.5 km at 60° N it bows ~6 m from
    // the chord, so 10 m keeps only the ends.
    assert_eq!(simplify(&straight, 10.0), vec![0, 999]);
    let zigzag: Vec<RoutePoint> = (0..100)
        .map(|i| RoutePoint {
            ts: i * 1_000,
            lat: 60.0 + if i % 2 == 0 { 0.0 } else { 0.001 },
            lon: 24.0 + i as f64 * 1e-3,
        })
        .collect();
    assert_eq!(
        simplify(&zigzag, 10.0).len(),
        100,
        "every turn is 111 m off"
    );
}
