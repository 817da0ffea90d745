//! [`TripFigures`]: what a trip's route adds up to, kept as its points are stored, so that
//! reading a trip never scans its route.
//!
//! The figures live beside the chunks in the route store and change in the same
//! transaction as they do, so they always describe exactly the points stored (replaying a
//! change that adds nothing leaves them as they are). Points may arrive late: a point
//! stored between two others replaces one leg by two, so the store hands over the region
//! of the route it rewrote, before and after, and the point after it, and the distance is
//! corrected by the difference of their legs ([`TripFigures::replace_region`]): exact, and
//! in proportion to the region, never to the route.

use super::RoutePoint;
use crate::geometry::haversine_m;

/// What a route's points add up to.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TripFigures {
    /// Points stored.
    pub points: u64,
    /// The sum of the great-circle legs between consecutive points (in `ts` order), metres.
    pub distance_m: f64,
    /// The earliest point.
    pub first: Option<RoutePoint>,
    /// The latest point.
    pub last: Option<RoutePoint>,
    /// The latitudes' and both longitude framings' extents (see [`TripFigures::bbox`]).
    extent: Option<Extent>,
    /// Countries (ISO 3166-1 alpha-2) with the `ts` of their earliest point.
    countries: Vec<(String, i64)>,
    /// Distinct level-13 cells holding points.
    pub cells: u64,
    /// Their area, km².
    pub explored_km2: f64,
    /// The cell of the last point counted (0: none; no cell has id 0), so that the store
    /// looks a cell up once in a row of points in it.
    pub(super) last_cell: u64,
}

/// The extents of the points: latitudes, longitudes in [-180, 180] and in [0, 360).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Extent {
    lat: (f64, f64),
    lon: (f64, f64),
    lon360: (f64, f64),
}

fn widen(range: &mut (f64, f64), v: f64) {
    range.0 = range.0.min(v);
    range.1 = range.1.max(v);
}

impl TripFigures {
    /// The figures of `points` (in `ts` order, each `ts` once), from nothing: for a part of
    /// a route (a share link's window), where the kept figures do not apply.
    pub fn of(points: &[RoutePoint]) -> Self {
        let mut fold = FiguresFold::default();
        for p in points {
            fold.add(*p);
        }
        fold.finish()
    }

    /// From the first point's `ts` to the last's, seconds.
    pub fn duration_s(&self) -> f64 {
        match (self.first, self.last) {
            (Some(first), Some(last)) => (last.ts - first.ts) as f64 / 1000.0,
            _ => 0.0,
        }
    }

    /// The countries visited, in the order first visited (by `ts`).
    pub fn countries(&self) -> Vec<&str> {
        let mut by_time: Vec<&(String, i64)> = self.countries.iter().collect();
        by_time.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        by_time.into_iter().map(|(code, _)| code.as_str()).collect()
    }

    /// `[west, south, east, north]` around every point, `west > east` when the narrower box
    /// crosses the antimeridian; `None` without points.
    pub fn bbox(&self) -> Option<[f64; 4]> {
        let e = self.extent?;
        let plain = e.lon.1 - e.lon.0;
        let shifted = e.lon360.1 - e.lon360.0;
        let unshift = |lon: f64| if lon > 180.0 { lon - 360.0 } else { lon };
        Some(if shifted < plain {
            [unshift(e.lon360.0), e.lat.0, unshift(e.lon360.1), e.lat.1]
        } else {
            [e.lon.0, e.lat.0, e.lon.1, e.lat.1]
        })
    }

    /// Counts a point stored for the first time (all but the distance, which
    /// [`TripFigures::replace_region`] keeps), in `country`.
    pub fn count(&mut self, p: RoutePoint, country: Option<&str>) {
        self.points += 1;
        if self.first.is_none_or(|f| p.ts < f.ts) {
            self.first = Some(p);
        }
        if self.last.is_none_or(|l| p.ts > l.ts) {
            self.last = Some(p);
        }
        let lon360 = if p.lon < 0.0 { p.lon + 360.0 } else { p.lon };
        match &mut self.extent {
            None => {
                self.extent = Some(Extent {
                    lat: (p.lat, p.lat),
                    lon: (p.lon, p.lon),
                    lon360: (lon360, lon360),
                });
            }
            Some(e) => {
                widen(&mut e.lat, p.lat);
                widen(&mut e.lon, p.lon);
                widen(&mut e.lon360, lon360);
            }
        }
        if let Some(code) = country {
            match self.countries.iter_mut().find(|(c, _)| c == code) {
                Some((_, first)) => *first = (*first).min(p.ts),
                None => self.countries.push((code.to_owned(), p.ts)),
            }
        }
    }

    /// Counts a level-13 cell of `km2` that held none of the route's points before.
    pub fn count_cell(&mut self, km2: f64) {
        self.cells += 1;
        self.explored_km2 += km2;
    }

    /// Corrects the distance for a rewritten region of the route: `before` its points as
    /// they were, `after` as they are now (both in `ts` order, `after` a superset), `next`
    /// the point that follows the region, if any. The point before the region, if any, is
    /// the same before and after (a region starts at a stored chunk's first point, or no
    /// point comes before it).
    pub fn replace_region(
        &mut self,
        before: &[RoutePoint],
        after: &[RoutePoint],
        next: Option<RoutePoint>,
    ) {
        let legs = |points: &[RoutePoint]| -> f64 {
            points
                .windows(2)
                .map(|w| haversine_m(w[0].latlon(), w[1].latlon()))
                .sum()
        };
        let tail = |points: &[RoutePoint]| -> f64 {
            match (points.last(), next) {
                (Some(last), Some(next)) => haversine_m(last.latlon(), next.latlon()),
                _ => 0.0,
            }
        };
        let added = legs(after) + tail(after);
        let removed = legs(before) + tail(before);
        self.distance_m = (self.distance_m + added - removed).max(0.0);
    }
}

/// Figures worked out a point at a time, in `ts` order, without holding the points: for a
/// route read in pages (what a reader may see of a long one). Holds the explored cells met
/// so far, which a route has far fewer of than points.
#[derive(Debug, Default)]
pub struct FiguresFold {
    figures: TripFigures,
    previous: Option<RoutePoint>,
    cells: std::collections::HashSet<u64>,
}

impl FiguresFold {
    /// Adds the next point (later than every one added before).
    pub fn add(&mut self, p: RoutePoint) {
        let f = &mut self.figures;
        if let Some(previous) = self.previous {
            f.distance_m += haversine_m(previous.latlon(), p.latlon());
        }
        self.previous = Some(p);
        f.count(p, super::places::country_at(p.lat, p.lon));
        let cell = super::places::explored_cell(p.lat, p.lon);
        if self.cells.insert(cell) {
            f.count_cell(super::places::cell_km2(cell));
        }
        f.last_cell = cell;
    }

    /// The figures of every point added.
    pub fn finish(self) -> TripFigures {
        self.figures
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sum_of_legs(points: &[RoutePoint]) -> f64 {
        points
            .windows(2)
            .map(|w| haversine_m(w[0].latlon(), w[1].latlon()))
            .sum()
    }

    #[test]
    fn a_box_across_the_antimeridian_is_the_narrow_one() {
        let mut f = TripFigures::default();
        for (ts, lon) in [(1, 179.5), (2, -179.5), (3, 179.9)] {
            f.count(RoutePoint { ts, lat: 10.0, lon }, None);
        }
        assert_eq!(f.bbox(), Some([179.5, 10.0, -179.5, 10.0]));
        let mut g = TripFigures::default();
        for (ts, lon) in [(1, -10.0), (2, 20.0)] {
            g.count(RoutePoint { ts, lat: 0.0, lon }, None);
        }
        assert_eq!(g.bbox(), Some([-10.0, 0.0, 20.0, 0.0]));
    }

    #[test]
    fn countries_are_in_the_order_first_visited_even_when_told_late() {
        let mut f = TripFigures::default();
        f.count(
            RoutePoint {
                ts: 10,
                lat: 0.0,
                lon: 0.0,
            },
            Some("FI"),
        );
        f.count(
            RoutePoint {
                ts: 20,
                lat: 0.0,
                lon: 0.0,
            },
            Some("SE"),
        );
        f.count(
            RoutePoint {
                ts: 5,
                lat: 0.0,
                lon: 0.0,
            },
            Some("SE"),
        );
        assert_eq!(f.countries(), ["SE", "FI"]);
    }

    proptest! {
        /// However the points come, in batches, late and shuffled, each region correction
        /// keeps the distance equal to the sum of the legs of the whole route.
        #[test]
        fn the_distance_is_the_sum_of_the_legs_however_points_arrive(
            raw in prop::collection::vec((0i64..500, -80.0f64..80.0, -180.0f64..180.0), 1..60),
            cuts in prop::collection::vec(0usize..60, 0..6),
        ) {
            let mut route: Vec<RoutePoint> = Vec::new();
            let mut figures = TripFigures::default();
            let mut batches: Vec<&[(i64, f64, f64)]> = Vec::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(raw.len())).collect();
            cuts.sort_unstable();
            let mut start = 0;
            for c in cuts.into_iter().chain([raw.len()]) {
                batches.push(&raw[start..c.max(start)]);
                start = c.max(start);
            }
            for batch in batches {
                for &(ts, lat, lon) in batch {
                    let p = RoutePoint { ts, lat, lon };
                    if route.iter().any(|q| q.ts == ts) {
                        continue;
                    }
                    // The region: from the point before `p` (or `p` alone) to the end.
                    let at = route.partition_point(|q| q.ts < ts);
                    let from = at.saturating_sub(1);
                    let before = route[from..at.min(route.len())].to_vec();
                    let next = route.get(at).copied();
                    route.insert(at, p);
                    let after = route[from..=at].to_vec();
                    figures.replace_region(&before, &after, next);
                    figures.count(p, None);
                }
                let want = sum_of_legs(&route);
                prop_assert!((figures.distance_m - want).abs() <= 1e-6 * want.max(1.0),
                    "{} vs {want}", figures.distance_m);
                prop_assert_eq!(figures.points, route.len() as u64);
            }
        }
    }
}
