//! Areas against brute force: every point test equals geo's plain point-in-polygon over the
//! same polygons (with the two place conventions: one antimeridian, one pole), or the
//! haversine for circles; a cell said to be inside or outside holds no point that says
//! otherwise; and the bounds hold every point inside. Polygons are random stars (simple by
//! construction) with holes, pairs, halves cut at the antimeridian, caps on a pole, and
//! sizes from a ten-centimetre speck to a continent.

use proptest::prelude::*;

use super::*;
use crate::geometry::LatLon;
use crate::testing::areas::{area_case, oracle, points};

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    #[test]
    fn polygon_tests_equal_geo_with_the_place_conventions(
        case in area_case(),
        unit in prop::collection::vec((0.0..=1.0f64, 0.0..=1.0f64), 64),
    ) {
        let area = case.area();
        let rings = case.rings();
        for p in points(&rings, &unit) {
            prop_assert_eq!(area.contains(p), oracle(&rings, p), "{:?} at {:?}", case, p);
        }
    }

    #[test]
    fn cells_said_inside_or_outside_hold_no_point_that_says_otherwise(
        case in area_case(),
        cells in prop::collection::vec((0.0..=1.0f64, 0.0..=1.0f64, 0.0..0.6f64, 0.0..0.6f64), 16),
    ) {
        let area = case.area();
        let rings = case.rings();
        let all: Vec<[f64; 2]> = rings.iter().flatten().flatten().copied().collect();
        let (w, s, e, n) = all.iter().fold((180f64, 90f64, -180f64, -90f64), |(w, s, e, n), p| {
            (w.min(p[0]), s.min(p[1]), e.max(p[0]), n.max(p[1]))
        });
        for (u, v, du, dv) in cells {
            let west = w + u * (e - w);
            let south = s + v * (n - s);
            let east = (west + du * (e - w)).min(180.0);
            let north = (south + dv * (n - s)).min(90.0);
            let overlap = area.overlap(west, south, east, north);
            if overlap == Overlap::Partly {
                continue;
            }
            for i in 0..=6 {
                for j in 0..=6 {
                    let p = LatLon {
                        lon: west + (east - west) * f64::from(i) / 6.0,
                        lat: south + (north - south) * f64::from(j) / 6.0,
                    };
                    prop_assert_eq!(
                        oracle(&rings, p),
                        overlap == Overlap::Inside,
                        "{:?}: cell {:?} said {:?}, point {:?}",
                        case, (west, south, east, north), overlap, p
                    );
                }
            }
        }
    }

    #[test]
    fn the_bounds_hold_every_point_inside(
        case in area_case(),
        unit in prop::collection::vec((0.0..=1.0f64, 0.0..=1.0f64), 64),
    ) {
        let area = case.area();
        let rings = case.rings();
        let bounds = area.bounds();
        for p in points(&rings, &unit) {
            if area.contains(p) {
                prop_assert!(bounds.iter().any(|b| b.contains(p)), "{:?} outside {:?}", p, bounds);
            }
        }
    }

    #[test]
    fn circles_hold_exactly_the_points_within_their_radius(
        lat in -90.0..=90.0f64,
        lon in -180.0..=180.0f64,
        radius_m in prop_oneof![Just(0.0), 0.0..1_000.0f64, 1_000.0..2e6f64, Just(MAX_RADIUS_M)],
        probes in prop::collection::vec((-90.0..=90.0f64, -180.0..=180.0f64), 32),
        near in prop::collection::vec((-1.0..=1.0f64, -1.0..=1.0f64), 32),
    ) {
        let center = LatLon { lat, lon };
        let area = Area::circle(center, radius_m).expect("valid");
        let bounds = area.bounds();
        let reach = (radius_m / crate::geometry::EARTH_RADIUS_M).to_degrees() * 1.2;
        let close = near.iter().map(|(a, b)| LatLon {
            lat: (lat + a * reach).clamp(-90.0, 90.0),
            lon: (lon + b * reach).clamp(-180.0, 180.0),
        });
        for p in probes.iter().map(|&(lat, lon)| LatLon { lat, lon }).chain(close).chain([center]) {
            let inside = haversine_m(center, p) <= radius_m;
            prop_assert_eq!(area.contains(p), inside);
            if inside {
                prop_assert!(bounds.iter().any(|b| b.contains(p)), "{:?} outside {:?}", p, bounds);
            }
        }
    }
}
