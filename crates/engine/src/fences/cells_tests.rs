//! [`Cells`] against brute force: every point inside a subject's area (geo's own test, or
//! the haversine for a cap) finds the subject, a cell marked inside holds only points that
//! are, no covering lists more than the budget, and inserts, moves and removals leave the
//! maps as inserting the final coverings afresh would (empty, once all are gone).

use std::sync::Arc;

use proptest::prelude::*;

use super::cells::{CELL_BUDGET, Cells, Covering};
use crate::geometry::area::Area;
use crate::geometry::{LatLon, haversine_m};
use crate::testing::areas::{area_case, oracle, points};

fn found(cells: &Cells<u32>, subject: &Arc<u32>, p: LatLon) -> Option<bool> {
    cells
        .at(p)
        .into_iter()
        .find(|f| Arc::ptr_eq(&f.subject, subject))
        .map(|f| f.interior)
}

/// A centre anywhere, the poles and the antimeridian more often than chance would give.
fn center() -> impl Strategy<Value = LatLon> {
    let lat =
        prop_oneof![3 => -90.0..=90.0f64, 1 => Just(90.0), 1 => Just(-90.0), 1 => 89.9..90.0f64];
    let lon = prop_oneof![3 => -180.0..=180.0f64, 1 => Just(180.0), 1 => Just(-180.0), 1 => 179.99..180.0f64];
    (lat, lon).prop_map(|(lat, lon)| LatLon { lat, lon })
}

/// A radius from zero to the whole Earth, every scale as likely.
fn radius_m() -> impl Strategy<Value = f64> {
    prop_oneof![1 => Just(0.0), 1 => Just(20_037_509.0), 6 => -1.0..7.31f64].prop_map(|r| {
        if r < 0.0 {
            0.0
        } else if r > 7.3 {
            r
        } else {
            10f64.powf(r)
        }
    })
}

/// Points around `center` out to about twice `radius_m`, and some anywhere.
fn near(center: LatLon, radius_m: f64, unit: &[(f64, f64)]) -> Vec<LatLon> {
    let reach = (2.0 * radius_m / 111_195.0).max(1e-6);
    unit.iter()
        .enumerate()
        .map(|(i, &(u, v))| {
            if i % 8 == 0 {
                LatLon {
                    lat: v * 180.0 - 90.0,
                    lon: u * 360.0 - 180.0,
                }
            } else {
                let lat = (center.lat + (v * 2.0 - 1.0) * reach).clamp(-90.0, 90.0);
                let lon = center.lon + (u * 2.0 - 1.0) * reach;
                let lon = if lon > 180.0 {
                    lon - 360.0
                } else if lon < -180.0 {
                    lon + 360.0
                } else {
                    lon
                };
                LatLon {
                    lat,
                    lon: lon.clamp(-180.0, 180.0),
                }
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(crate::testing::proptest_config(256))]

    #[test]
    fn every_point_inside_an_area_finds_it_and_marked_cells_are_inside(
        case in area_case(),
        unit in prop::collection::vec((0.0..=1.0f64, 0.0..=1.0f64), 64),
    ) {
        let area = case.area();
        let rings = case.rings();
        let covering = Covering::of_area(&area);
        prop_assert!(covering.len() <= CELL_BUDGET);
        let cells = Cells::default();
        let subject = Arc::new(1);
        cells.insert(&subject, &covering);
        for p in points(&rings, &unit) {
            let inside = oracle(&rings, p);
            match found(&cells, &subject, p) {
                None => prop_assert!(!inside, "{:?}: {:?} is inside, not found", case, p),
                Some(true) => prop_assert!(inside, "{:?}: {:?} in a marked cell, outside", case, p),
                Some(false) => {}
            }
        }
        cells.remove(&subject, &covering);
        prop_assert_eq!(cells.entries(), 0);
    }

    #[test]
    fn every_point_within_a_cap_or_circle_finds_it(
        center in center(),
        radius_m in radius_m(),
        unit in prop::collection::vec((0.0..=1.0f64, 0.0..=1.0f64), 64),
    ) {
        let circle = Area::circle(center, radius_m).expect("a valid circle");
        let coverings = [Covering::of_cap(center, radius_m), Covering::of_area(&circle)];
        let cells = Cells::default();
        let subjects = [Arc::new(1), Arc::new(2)];
        for (subject, covering) in subjects.iter().zip(&coverings) {
            prop_assert!(covering.len() <= CELL_BUDGET);
            cells.insert(subject, covering);
        }
        for p in near(center, radius_m, &unit) {
            let within = haversine_m(center, p) <= radius_m;
            for subject in &subjects {
                match found(&cells, subject, p) {
                    None => prop_assert!(!within, "{:?} within {} of {:?}, not found", p, radius_m, center),
                    Some(true) => prop_assert!(circle.contains(p), "{:?} marked, outside", p),
                    Some(false) => {}
                }
            }
        }
        for (subject, covering) in subjects.iter().zip(&coverings) {
            cells.remove(subject, covering);
        }
        prop_assert_eq!(cells.entries(), 0);
    }

    #[test]
    fn moves_leave_the_maps_as_inserting_afresh_would(
        moves in prop::collection::vec((0..4usize, center(), radius_m()), 1..24),
        probes in prop::collection::vec(center(), 32),
    ) {
        let cells = Cells::default();
        let subjects: Vec<Arc<u32>> = (0..4).map(Arc::new).collect();
        let mut current: Vec<Covering> = vec![Covering::default(); 4];
        for (who, at, radius_m) in moves {
            let next = Covering::of_cap(at, radius_m);
            cells.replace(&subjects[who], &current[who], &next);
            current[who] = next;
        }
        let fresh = Cells::default();
        for (subject, covering) in subjects.iter().zip(&current) {
            fresh.insert(subject, covering);
        }
        prop_assert_eq!(cells.entries(), fresh.entries());
        for p in probes {
            let ids = |c: &Cells<u32>| {
                let mut ids: Vec<u32> = c.at(p).into_iter().map(|f| *f.subject).collect();
                ids.sort_unstable();
                ids
            };
            prop_assert_eq!(ids(&cells), ids(&fresh), "at {:?}", p);
        }
        for (subject, covering) in subjects.iter().zip(&current) {
            cells.remove(subject, covering);
        }
        prop_assert_eq!(cells.entries(), 0);
    }
}
