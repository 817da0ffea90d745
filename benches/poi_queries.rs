//! POI query latency on 1,000,000 POIs around the world's cities, in both of the harness's
//! data shapes (`population` and `sqrt-population`, see `proxima_bench::data`), with
//! 100,000 distinct random query points drawn the same way (a fixed small set would warm
//! the cache), against two baselines on the same points and queries:
//! - `kiddo` 6's `ImmutableKdTree` over the same unit vectors: `nearest_n`, and
//!   `nearest_n(..).within(..)` with the radius as a chord;
//! - `rstar` 0.12's `nearest_neighbor_iter` over the same unit vectors.
//!
//! The baselines return the nearest by straight-line chord, ties in any order, and nothing
//! else; Proxima returns exact haversine distances, ties by id, and filters. So a third,
//! fair baseline (`kiddo-exact`) does what Proxima must with kiddo's answer: the query's
//! unit vector worked out per query, the exact haversine distance of each of its `k`
//! results from their positions, and the results sorted by distance, then id.
//!
//! The bench runs on mimalloc, as the server does (`src/main.rs`).
//!
//! `cargo bench --bench poi_queries`; `scripts/poi-bench-ratios.sh` runs it several times
//! and prints each case's median against kiddo's, per run.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::collections::BTreeMap;
use std::hint::black_box;
use std::num::NonZero;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use proxima::geometry::area::{Area, MAX_AREA_VERTICES};
use proxima::geometry::{BBox, HaversineFrom, LatLon, chord_of};
use proxima::pois::{AreaQuery, NearbyQuery, Poi, PoiFilter, PoiIndex, WithinQuery};
use proxima_bench::data::{Distribution, Places};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POIS: usize = 1_000_000;
const QUERIES: usize = 100_000;
const K: usize = 20;

/// The POIs of a shape: one in a thousand of a rare category, a third rated 1 to 5.
fn pois(distribution: Distribution) -> Vec<Poi> {
    let mut places = Places::with_distribution(1, distribution);
    (0..POIS)
        .map(|i| {
            let p = places.next(0.1);
            let category = if i % 1000 == 0 {
                "rare"
            } else {
                ["cafe", "restaurant", "museum", "hotel", "shop"][i % 5]
            };
            let rating = (i % 3 == 0).then(|| 1.0 + places.unit() * 4.0);
            Poi::new(
                format!("poi:{i}"),
                p.lat,
                p.lon,
                format!("POI {i}"),
                category.into(),
                BTreeMap::new(),
                rating,
            )
            .expect("valid")
        })
        .collect()
}

fn queries(distribution: Distribution) -> Vec<LatLon> {
    let mut places = Places::with_distribution(2, distribution);
    (0..QUERIES).map(|_| places.next(0.1)).collect()
}

fn bench(c: &mut Criterion) {
    for distribution in Distribution::ALL {
        let pois = pois(distribution);
        let units: Vec<[f64; 3]> = pois.iter().map(|p| p.position.to_unit()).collect();
        // What the fair baseline reads of kiddo's results: position and id by item.
        let positions: Vec<LatLon> = pois.iter().map(|p| p.position).collect();
        let ids: Vec<Box<str>> = pois.iter().map(|p| p.id.as_str().into()).collect();
        let index = PoiIndex::from_pois(pois).expect("few categories");
        let kiddo: ImmutableKdTree<f64, 3> =
            ImmutableKdTree::new_from_slice(&units).expect("builds");
        let rstar = rstar::RTree::bulk_load(units);
        let centres = queries(distribution);
        let units_of_centres: Vec<[f64; 3]> = centres.iter().map(|c| c.to_unit()).collect();
        let mut group = c.benchmark_group(format!("pois_1m_{}", distribution.name()));
        let k = NonZero::new(K).expect("non-zero");

        // (name, radius, categories, minimum rating)
        type Case = (&'static str, Option<f64>, Vec<String>, Option<f64>);
        let cases: [Case; 5] = [
            ("knn_k20", None, vec![], None),
            ("radius_2km_k20", Some(2_000.0), vec![], None),
            ("radius_10km_k20", Some(10_000.0), vec![], None),
            (
                "knn_k20_rare_category",
                None,
                vec!["rare".to_string()],
                None,
            ),
            ("knn_k20_min_rating_4", None, vec![], Some(4.0)),
        ];
        for (name, radius_m, categories, min_rating) in cases {
            let mut i = 0;
            group.bench_function(format!("{name}/proxima"), |b| {
                b.iter(|| {
                    i = (i + 1) % centres.len();
                    let query = NearbyQuery {
                        center: centres[i],
                        radius_m,
                        limit: K,
                        filter: PoiFilter {
                            categories: categories.clone(),
                            min_rating,
                        },
                        after: None,
                    };
                    black_box(index.nearby(&query))
                });
            });
            if !categories.is_empty() || min_rating.is_some() {
                continue;
            }
            let mut i = 0;
            group.bench_function(format!("{name}/kiddo"), |b| {
                b.iter(|| {
                    i = (i + 1) % centres.len();
                    let query = kiddo.query(&units_of_centres[i]);
                    let nearest = query.nearest_n::<SquaredEuclidean<f64>>(k);
                    match radius_m {
                        None => black_box(nearest.execute()),
                        Some(r) => black_box(nearest.within(chord_of(r).powi(2)).execute()),
                    }
                });
            });
            let mut i = 0;
            // Named with a hyphen: poi-bench-ratios.sh splits a name at its last '_'.
            group.bench_function(format!("{name}/kiddo-exact"), |b| {
                b.iter(|| {
                    i = (i + 1) % centres.len();
                    let centre = centres[i];
                    let from = HaversineFrom::new(centre);
                    let unit = centre.to_unit();
                    let query = kiddo.query(&unit);
                    let nearest = query.nearest_n::<SquaredEuclidean<f64>>(k);
                    let nearest = match radius_m {
                        None => nearest.execute(),
                        Some(r) => nearest.within(chord_of(r).powi(2)).execute(),
                    };
                    let mut hits: Vec<(f64, usize)> = nearest
                        .iter()
                        .map(|n| {
                            let item = n.item as usize;
                            (from.to(positions[item]), item)
                        })
                        .filter(|(d, _)| radius_m.is_none_or(|r| *d <= r))
                        .collect();
                    hits.sort_unstable_by(|a, b| {
                        a.0.total_cmp(&b.0).then_with(|| ids[a.1].cmp(&ids[b.1]))
                    });
                    black_box(hits)
                });
            });
            if radius_m.is_none() {
                let mut i = 0;
                group.bench_function(format!("{name}/rstar"), |b| {
                    b.iter(|| {
                        i = (i + 1) % centres.len();
                        let nearest: Vec<&[f64; 3]> = rstar
                            .nearest_neighbor_iter(&units_of_centres[i])
                            .take(K)
                            .collect();
                        black_box(nearest)
                    });
                });
            }
        }
        // What a server does next with a page: read each result's id and name to write them.
        let mut i = 0;
        group.bench_function("radius_2km_k20_read/proxima", |b| {
            b.iter(|| {
                i = (i + 1) % centres.len();
                let query = NearbyQuery {
                    center: centres[i],
                    radius_m: Some(2_000.0),
                    limit: K,
                    filter: PoiFilter::default(),
                    after: None,
                };
                let page = index.nearby(&query);
                let bytes: usize = page
                    .items
                    .iter()
                    .map(|hit| hit.poi.id().len() + hit.poi.name().len())
                    .sum();
                black_box(bytes)
            });
        });
        if distribution == Distribution::Population {
            polygons(&mut group, &index, &centres);
        }
        group.finish();
    }
}

/// City polygons of 1 km² and 25 km² with 50 vertices (stars of random radii), against the
/// box of their bounds: the polygon within 2x the box.
fn polygons(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    index: &PoiIndex,
    centres: &[LatLon],
) {
    for km2 in [1.0, 25.0] {
        let polygons: Vec<(Area, BBox)> = centres
            .iter()
            .take(1024)
            .enumerate()
            .map(|(i, c)| city_polygon(*c, km2, i))
            .collect();
        let mut i = 0;
        group.bench_function(format!("bbox_of_{km2}km2_polygon_limit100"), |b| {
            b.iter(|| {
                i = (i + 1) % polygons.len();
                let query = WithinQuery {
                    bbox: polygons[i].1,
                    limit: 100,
                    filter: PoiFilter::default(),
                    after: None,
                };
                black_box(index.within(&query).items.len())
            });
        });
        let mut i = 0;
        group.bench_function(format!("polygon_{km2}km2_50_vertices_limit100"), |b| {
            b.iter(|| {
                i = (i + 1) % polygons.len();
                let query = AreaQuery {
                    area: polygons[i].0.clone(),
                    limit: 100,
                    filter: PoiFilter::default(),
                    after: None,
                };
                black_box(index.within_area(&query).items.len())
            });
        });
    }
}

/// A star-shaped polygon of 50 vertices around `c` whose area is about `km2`, and the box of
/// its bounds.
fn city_polygon(c: LatLon, km2: f64, seed: usize) -> (Area, BBox) {
    const VERTICES: usize = 50;
    // Radii between 0.7 and 1.3 of the mean, from a cheap deterministic sequence.
    let radii: Vec<f64> = (0..VERTICES)
        .map(|k| 0.7 + 0.6 * (((seed * 7919 + k * 104_729) % 1000) as f64 / 1000.0))
        .collect();
    // The area of a star with radii r_k is ½ Σ r_k r_{k+1} sin(2π/n); scale it to 1 km².
    let step = std::f64::consts::TAU / VERTICES as f64;
    let unit_area: f64 = (0..VERTICES)
        .map(|k| 0.5 * radii[k] * radii[(k + 1) % VERTICES] * step.sin())
        .sum();
    let scale_m = (km2 * 1_000_000.0 / unit_area).sqrt();
    let m_per_lat = 111_195.0;
    let m_per_lon = m_per_lat * c.lat.to_radians().cos().max(0.01);
    let mut ring: Vec<Vec<f64>> = radii
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let a = k as f64 * step;
            vec![
                (c.lon + scale_m * r * a.cos() / m_per_lon).clamp(-180.0, 180.0),
                (c.lat + scale_m * r * a.sin() / m_per_lat).clamp(-90.0, 90.0),
            ]
        })
        .collect();
    ring.push(ring[0].clone());
    let area = Area::polygon(vec![ring], MAX_AREA_VERTICES).expect("a simple star");
    let bounds = area.bounds();
    assert_eq!(bounds.len(), 1, "no city polygon crosses the antimeridian");
    (area, bounds[0])
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
