//! POI query latency on 1,000,000 POIs clustered around the world's cities (the bundled
//! GeoNames file, weighted by population), as a travel app's POIs are.
//!
//! `cargo bench --bench poi_queries`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use proxima::bench::data::Places;
use proxima::geometry::LatLon;
use proxima::pois::{NearbyQuery, Poi, PoiFilter, PoiIndex};

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
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
