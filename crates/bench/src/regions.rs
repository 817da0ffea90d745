//! A simulation for planet-scale sharding (docs/planet-scale.md): if each node
//! owned the travellers and POIs of some H3 cells, what share of nearby queries would have
//! to ask more than one owner? Query centres are the harness's (places near cities, by
//! population); a query touches more than one region when its circle reaches outside the
//! centre's cell, judged from 72 points around the circle.

use h3o::{LatLng, Resolution};

use super::data::Places;
use proxima_engine::geometry::{EARTH_RADIUS_M, LatLon};

/// Points sampled around each query's circle.
const RIM_POINTS: usize = 72;

/// What one region size gives.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionRow {
    /// The H3 resolution of the regions.
    pub resolution: u8,
    /// A region's mean area, km².
    pub region_km2: f64,
    /// Per query radius in metres: the share of queries touching more than one region, and
    /// the mean number of regions a query touches.
    pub radii: Vec<RadiusRow>,
}

/// One query radius's figures in a [`RegionRow`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RadiusRow {
    /// The query radius, metres.
    pub radius_m: f64,
    /// Share of queries whose circle reaches into another region.
    pub multi_region: f64,
    /// Mean number of regions a query's circle touches.
    pub mean_regions: f64,
}

/// Runs the simulation: `queries` query centres from `seed`, for each resolution and radius.
pub fn simulate(queries: usize, seed: u64, resolutions: &[u8], radii_m: &[f64]) -> Vec<RegionRow> {
    let mut places = Places::new(seed);
    let centres: Vec<LatLon> = (0..queries).map(|_| places.next(0.1)).collect();
    resolutions
        .iter()
        .map(|&resolution| {
            let res = Resolution::try_from(resolution).expect("a resolution from 0 to 15");
            let radii = radii_m
                .iter()
                .map(|&radius_m| {
                    let mut multi = 0usize;
                    let mut regions = 0usize;
                    let mut touched = Vec::with_capacity(RIM_POINTS + 1);
                    for &centre in &centres {
                        touched.clear();
                        touched.push(cell(centre, res));
                        for k in 0..RIM_POINTS {
                            let bearing = (k as f64) * std::f64::consts::TAU / RIM_POINTS as f64;
                            touched.push(cell(destination(centre, bearing, radius_m), res));
                        }
                        touched.sort_unstable();
                        touched.dedup();
                        multi += usize::from(touched.len() > 1);
                        regions += touched.len();
                    }
                    RadiusRow {
                        radius_m,
                        multi_region: multi as f64 / centres.len().max(1) as f64,
                        mean_regions: regions as f64 / centres.len().max(1) as f64,
                    }
                })
                .collect();
            RegionRow {
                resolution,
                region_km2: res.area_km2(),
                radii,
            }
        })
        .collect()
}

fn cell(p: LatLon, res: Resolution) -> u64 {
    LatLng::new(p.lat, p.lon)
        .map(|ll| u64::from(ll.to_cell(res)))
        .unwrap_or(0)
}

/// The point `distance_m` from `from` along `bearing` (radians from north), on the sphere.
fn destination(from: LatLon, bearing: f64, distance_m: f64) -> LatLon {
    let (lat1, lon1) = (from.lat.to_radians(), from.lon.to_radians());
    let d = distance_m / EARTH_RADIUS_M;
    let lat2 = (lat1.sin() * d.cos() + lat1.cos() * d.sin() * bearing.cos()).asin();
    let lon2 =
        lon1 + (bearing.sin() * d.sin() * lat1.cos()).atan2(d.cos() - lat1.sin() * lat2.sin());
    let lon = (lon2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    LatLon::new(lat2.to_degrees().clamp(-90.0, 90.0), lon).expect("on the sphere")
}

/// The simulation as a table.
pub fn table(rows: &[RegionRow]) -> String {
    let mut out = String::from("| H3 res | region km² |");
    if let Some(first) = rows.first() {
        for r in &first.radii {
            out.push_str(&format!(
                " {} km: > 1 region | mean regions |",
                r.radius_m / 1000.0
            ));
        }
    }
    out.push_str("\n|---|---|");
    if let Some(first) = rows.first() {
        for _ in &first.radii {
            out.push_str("---|---|");
        }
    }
    for row in rows {
        out.push_str(&format!("\n| {} | {:.0} |", row.resolution, row.region_km2));
        for r in &row.radii {
            out.push_str(&format!(
                " {:.2} % | {:.2} |",
                r.multi_region * 100.0,
                r.mean_regions
            ));
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proxima_engine::geometry::haversine_m;

    #[test]
    fn destinations_are_at_the_distance_asked_even_across_the_antimeridian() {
        for (lat, lon) in [(60.17, 24.94), (-16.5, 179.99), (89.0, 0.0), (0.0, -179.9)] {
            let from = LatLon::new(lat, lon).expect("valid");
            for bearing in [0.0, 1.0, 2.5, 4.0] {
                let to = destination(from, bearing, 200_000.0);
                assert!(
                    (haversine_m(from, to) - 200_000.0).abs() < 1.0,
                    "{from:?} {to:?}"
                );
            }
        }
    }

    #[test]
    fn larger_queries_and_smaller_regions_cross_more_borders() {
        let rows = simulate(2_000, 7, &[2, 5], &[2_000.0, 200_000.0]);
        let share = |row: usize, radius: usize| rows[row].radii[radius].multi_region;
        assert!(share(0, 0) < share(0, 1), "200 km crosses more than 2 km");
        assert!(
            share(0, 0) < share(1, 0),
            "smaller regions are crossed more"
        );
        assert!(share(0, 1) > 0.5 && share(1, 1) == 1.0, "{rows:?}");
        assert!(
            rows.iter()
                .all(|r| r.radii.iter().all(|x| x.mean_regions >= 1.0))
        );
    }
}
