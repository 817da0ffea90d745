//! Where a route has been, kept as its points arrive: the countries it visited (ISO 3166-1
//! alpha-2, in the order first visited) and the "world explored", the level-13 S2 cells
//! (about 1 km² each) that hold its points.
//!
//! Countries come from `country-boundaries`, built from OpenStreetMap's borders and
//! embedded in the binary (its 360 × 180 raster, ODbL): nothing is fetched at run time.
//! Cells come from the `s2` crate; the explored area is the exact area of the distinct
//! cells on the sphere of radius 6,371,008.8 m.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use country_boundaries::{BOUNDARIES_ODBL_360X180, CountryBoundaries};
use s2::cell::Cell;
use s2::cellid::CellID;
use s2::cellunion::CellUnion;
use s2::latlng::LatLng;

use super::RoutePoint;
use crate::geometry::EARTH_RADIUS_M;

/// The level of the cells counted as explored: about 1 km² each.
pub const EXPLORED_LEVEL: u64 = 13;

/// The borders, read once from the embedded data.
static BORDERS: LazyLock<Option<CountryBoundaries>> = LazyLock::new(|| {
    CountryBoundaries::from_reader(BOUNDARIES_ODBL_360X180)
        .map_err(|e| tracing::error!(error = %e, "the embedded country borders are unreadable"))
        .ok()
});

/// The ISO 3166-1 alpha-2 code of the country at a place, if it is in one.
pub fn country_at(lat: f64, lon: f64) -> Option<&'static str> {
    let borders = BORDERS.as_ref()?;
    let at = country_boundaries::LatLon::new(lat, lon).ok()?;
    // Ids are countries ("FI") and their subdivisions ("US-TX"): the country's has no dash.
    borders.ids(at).into_iter().find(|id| !id.contains('-'))
}

/// The country every place in a box is in, when the borders' raster says so without
/// looking at the places one by one: `Some(Some(code))` when that country holds the
/// box's raster cells whole and no other country touches them, `Some(None)` when no
/// region touches them, and `None` when the places must be looked up one by one
/// ([`country_at`]). A trip's points between two settlings mostly lie a few kilometres
/// apart, inside one country: one lookup for all of them instead of one each.
pub fn sole_country_in(
    south: f64,
    west: f64,
    north: f64,
    east: f64,
) -> Option<Option<&'static str>> {
    // The borders' raster wraps lon 180 to -180: a box reaching either edge, or wide
    // enough to be mistaken for one across the antimeridian, is looked up point by point.
    if !(west > -180.0 && east < 180.0 && east - west < 90.0) {
        return None;
    }
    let borders = BORDERS.as_ref()?;
    let bounds = country_boundaries::BoundingBox::new(south, west, north, east).ok()?;
    let touching = borders.intersecting_ids(bounds);
    if touching.is_empty() {
        return Some(None);
    }
    let mut countries = touching.into_iter().filter(|id| !id.contains('-'));
    let only = countries.next()?;
    if countries.next().is_some() {
        return None;
    }
    borders
        .containing_ids(bounds)
        .contains(only)
        .then_some(Some(only))
}

/// The level-13 cell holding a place.
pub fn explored_cell(lat: f64, lon: f64) -> u64 {
    CellID::from(LatLng::from_degrees(lat, lon))
        .parent(EXPLORED_LEVEL)
        .0
}

/// The area of a cell on the sphere of radius 6,371,008.8 m, km².
pub fn cell_km2(cell: u64) -> f64 {
    Cell::from(CellID(cell)).exact_area() * EARTH_RADIUS_M * EARTH_RADIUS_M / 1e6
}

/// Countries visited and cells explored, as points arrive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Places {
    /// Countries in the order first visited.
    countries: Vec<&'static str>,
    /// Distinct level-13 cells.
    cells: BTreeSet<u64>,
}

impl Places {
    /// Counts a point.
    pub fn add(&mut self, p: RoutePoint) {
        // Every point is looked up (a raster cell, then its few borders): a walk across a
        // border and back inside one 1 km² cell still visits the other country.
        self.cells.insert(explored_cell(p.lat, p.lon));
        if let Some(code) = country_at(p.lat, p.lon)
            && !self.countries.contains(&code)
        {
            self.countries.push(code);
        }
    }

    /// The countries visited, in the order first visited.
    pub fn countries(&self) -> &[&'static str] {
        &self.countries
    }

    /// How many level-13 cells the points fell in.
    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// The cells as a normalised S2 cell union (complete sets of siblings merged into
    /// their parent), for drawing.
    pub fn cell_union(&self) -> CellUnion {
        let mut union = CellUnion(self.cells.iter().map(|&c| CellID(c)).collect());
        union.normalize();
        union
    }

    /// The area of the cells the points fell in, km².
    pub fn explored_km2(&self) -> f64 {
        let steradians: f64 = self
            .cells
            .iter()
            .map(|&c| Cell::from(CellID(c)).exact_area())
            .sum();
        steradians * EARTH_RADIUS_M * EARTH_RADIUS_M / 1e6
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_box_inside_one_country_needs_one_lookup_and_one_across_a_border_does_not() {
        // Central France, and the Franco-Swiss border at Geneva.
        assert_eq!(sole_country_in(46.5, 2.0, 46.6, 2.1), Some(Some("FR")));
        assert_eq!(sole_country_in(46.1, 6.0, 46.3, 6.3), None);
        // The middle of the Pacific.
        assert_eq!(sole_country_in(-30.0, -140.0, -29.9, -139.9), Some(None));
        // Across the antimeridian (Fiji's islands lie either side of it), or touching it:
        // point by point.
        assert_eq!(sole_country_in(-17.0, -180.0, -16.0, 180.0), None);
        assert_eq!(sole_country_in(-17.0, -179.9, -16.0, 180.0), None);
        assert_eq!(sole_country_in(-17.0, 179.0, -16.0, 180.0), None);
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(64))]

        /// A box's sole country, when one lookup tells it, is every point's own: boxes of
        /// a few metres to a few degrees anywhere, borders, coasts and poles included.
        #[test]
        fn a_boxs_sole_country_is_each_of_its_points_country(
            lat in -90.0f64..=90.0,
            lon in -180.0f64..=180.0,
            size in prop_oneof![0.0f64..0.01, 0.0f64..0.5, 0.0f64..6.0, 0.0f64..360.0],
            at in proptest::collection::vec((0.0f64..=1.0, 0.0f64..=1.0), 2..24),
        ) {
            let (south, north) = (lat, (lat + size).min(90.0));
            let (west, east) = if size > 6.0 {
                (-180.0, 180.0) // a boat across the antimeridian: points either side
            } else {
                (lon, (lon + size).min(180.0))
            };
            let points: Vec<(f64, f64)> = at
                .iter()
                .map(|(a, b)| (south + a * (north - south), west + b * (east - west)))
                .collect();
            if let Some(sole) = sole_country_in(south, west, north, east) {
                for (lat, lon) in points {
                    prop_assert_eq!(country_at(lat, lon), sole, "at {}, {}", lat, lon);
                }
            }
        }

        /// Countries and cells kept point by point equal brute force over the whole walk,
        /// on walks along borders (around Basel, where three countries meet) and anywhere.
        #[test]
        fn places_kept_as_points_arrive_equal_brute_force(
            start in prop_oneof![
                (47.4f64..47.7, 7.4f64..7.8),
                (-80.0f64..80.0, -180.0f64..180.0),
            ],
            steps in proptest::collection::vec((-0.01f64..0.01, -0.01f64..0.01), 1..200),
        ) {
            let (mut lat, mut lon) = start;
            let mut points = Vec::new();
            for (dlat, dlon) in steps {
                lat = (lat + dlat).clamp(-89.0, 89.0);
                lon = (lon + dlon).clamp(-179.9, 179.9);
                points.push(at(lat, lon));
            }
            let mut places = Places::default();
            for p in &points {
                places.add(*p);
            }
            let mut countries: Vec<&str> = Vec::new();
            for p in &points {
                if let Some(c) = country_at(p.lat, p.lon)
                    && !countries.contains(&c)
                {
                    countries.push(c);
                }
            }
            prop_assert_eq!(places.countries(), countries.as_slice());
            let cells: BTreeSet<u64> = points.iter().map(|p| explored_cell(p.lat, p.lon)).collect();
            prop_assert_eq!(places.cell_count(), cells.len());
        }
    }

    fn at(lat: f64, lon: f64) -> RoutePoint {
        RoutePoint { ts: 0, lat, lon }
    }

    #[test]
    fn countries_are_listed_once_in_the_order_first_visited() {
        let mut places = Places::default();
        // Helsinki, Tallinn, Helsinki again, then the open Baltic.
        for p in [
            at(60.17, 24.94),
            at(59.44, 24.75),
            at(60.17, 24.95),
            at(59.8, 22.0),
        ] {
            places.add(p);
        }
        assert_eq!(places.countries(), ["FI", "EE"]);
        assert_eq!(country_at(33.0, -97.0), Some("US"), "Dallas: US, not US-TX");
        assert_eq!(
            country_at(-18.14, 178.43),
            Some("FJ"),
            "Suva, by the antimeridian"
        );
        assert_eq!(country_at(35.0, -40.0), None, "the North Atlantic");
    }

    #[test]
    fn explored_area_is_the_exact_area_of_the_distinct_cells() {
        let mut places = Places::default();
        assert_eq!(places.explored_km2(), 0.0);
        // The same cell twice: counted once, about 1 km² (level 13 is 0.76 to 1.6 km²).
        places.add(at(60.17, 24.94));
        places.add(at(60.17, 24.94));
        assert_eq!(places.cell_count(), 1);
        let one = places.explored_km2();
        assert!((0.5..2.0).contains(&one), "{one} km²");
        // A walk of 10 km east: about ten more cells.
        for i in 0..1_000 {
            places.add(at(60.17, 24.94 + i as f64 * 0.000_18));
        }
        assert!(
            (8..40).contains(&places.cell_count()),
            "{}",
            places.cell_count()
        );
        let union = places.cell_union();
        let area: f64 = union
            .0
            .iter()
            .map(|c| Cell::from(*c).exact_area())
            .sum::<f64>()
            * EARTH_RADIUS_M
            * EARTH_RADIUS_M
            / 1e6;
        assert!((area - places.explored_km2()).abs() < 1e-6 * area);
    }

    #[test]
    fn every_level_13_cell_has_the_area_the_whole_sphere_shares() {
        // The six level-0 faces at level 13 hold 6 × 4^13 cells; their mean area times that
        // count is the sphere's.
        let sphere_km2 = 4.0 * std::f64::consts::PI * EARTH_RADIUS_M * EARTH_RADIUS_M / 1e6;
        let mean = sphere_km2 / (6.0 * 4f64.powi(13));
        let mut places = Places::default();
        places.add(at(45.0, 45.0));
        let one = places.explored_km2();
        assert!(one / mean > 0.5 && one / mean < 2.0, "{one} vs mean {mean}");
    }
}
