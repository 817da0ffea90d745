//! POI query latency on 1,000,000 POIs clustered around the world's cities (the bundled
//! GeoNames file, weighted by population), as a travel app's POIs are.
//!
//! `cargo bench --bench poi_queries`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use proxima::bench::data::Places;
use proxima::geometry::area::{Area, MAX_AREA_VERTICES};
use proxima::geometry::{BBox, LatLon};
use proxima::pois::{AreaQuery, NearbyQuery, Poi, PoiFilter, PoiIndex, WithinQuery};

const POIS: usize = 1_000_000;

fn index() -> PoiIndex {
    let mut places = Places::new(1);
    let pois = (0..POIS).map(|i| {
        let p = places.next(0.1);
        // One POI in a thousand is of a rare category.
        let category = if i % 1000 == 0 {
            "rare"
        } else {
            ["cafe", "restaurant", "museum", "hotel", "shop"][i % 5]
        };
        Poi::new(
            format!("poi:{i}"),
            p.lat,
            p.lon,
            format!("POI {i}"),
            category.into(),
            BTreeMap::new(),
            None,
        )
        .expect("valid")
    });
    PoiIndex::from_pois(pois).expect("few categories")
}

fn queries(n: usize) -> Vec<LatLon> {
    let mut places = Places::new(2);
    (0..n).map(|_| places.next(0.1)).collect()
}

fn bench(c: &mut Criterion) {
    let index = index();
    let centres = queries(4096);
    let mut group = c.benchmark_group("pois_1m");
    let cases: [(&str, Option<f64>, Vec<String>); 4] = [
        ("knn_k20", None, vec![]),
        ("radius_2km_k20", Some(2_000.0), vec![]),
        ("radius_10km_k20", Some(10_000.0), vec![]),
        ("knn_k20_rare_category", None, vec!["rare".to_string()]),
    ];
    for (name, radius_m, categories) in cases {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % centres.len();
                let query = NearbyQuery {
                    center: centres[i],
                    radius_m,
                    limit: 20,
                    filter: PoiFilter {
                        categories: categories.clone(),
                        min_rating: None,
                    },
                    after: None,
                };
                black_box(index.nearby(&query))
            });
        });
    }
    // What a server does next with a page: read each result's id and name to write them.
    let mut i = 0;
    group.bench_function("radius_2km_k20_read", |b| {
        b.iter(|| {
            i = (i + 1) % centres.len();
            let query = NearbyQuery {
                center: centres[i],
                radius_m: Some(2_000.0),
                limit: 20,
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
    // City polygons of 1 km² and 25 km² with 50 vertices (stars of random radii), against
    // the box of their bounds: the target is the polygon within 2x the box.
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
    group.finish();
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
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
