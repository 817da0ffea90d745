//! Writes while queries run: a query sees a write wholly or not at all, and readers keep
//! answering while a large import is built.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proxima::engine::{Engine, ImportMode};
use proxima::geometry::LatLon;
use proxima::import::ParsedPois;
use proxima::pois::{CursorKey, NearbyQuery, Poi, PoiFilter};

/// The same `n` places, all named after `generation`.
fn generation(n: usize, generation: u32) -> ParsedPois {
    let pois = (0..n)
        .map(|i| {
            let lat = (i % 100) as f64 * 0.01;
            let lon = (i / 100) as f64 * 0.01;
            Poi::new(
                format!("p{i}"),
                lat,
                lon,
                format!("gen{generation}"),
                "cafe".into(),
                BTreeMap::new(),
                None,
            )
            .expect("valid")
        })
        .collect();
    ParsedPois {
        pois,
        ..ParsedPois::default()
    }
}

fn assert_imports_are_atomic(size: usize, mode: ImportMode) {
    let engine = Arc::new(Engine::new(CursorKey::random()));
    engine
        .import_pois(generation(size, 0), ImportMode::Replace, true)
        .expect("import");
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let engine = engine.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let query = NearbyQuery {
                    center: LatLon::new(0.5, 0.5).expect("valid"),
                    radius_m: None,
                    limit: 1000,
                    filter: PoiFilter::default(),
                    after: None,
                };
                let mut checked = 0u64;
                while !done.load(Ordering::Acquire) || checked == 0 {
                    let page = engine.nearby_pois(query.clone(), None).expect("query");
                    assert_eq!(page.hits.len(), 1000.min(size));
                    let first = &page.hits[0].poi.name;
                    assert!(
                        page.hits.iter().all(|h| &h.poi.name == first),
                        "a query saw two generations"
                    );
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    for g in 1..=6 {
        engine
            .import_pois(generation(size, g), mode, true)
            .expect("import");
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().expect("reader did not panic") > 0);
    }
    assert_eq!(engine.poi_count(), size);
}

#[test]
fn a_query_never_sees_half_of_a_large_replace() {
    assert_imports_are_atomic(20_000, ImportMode::Replace);
}

#[test]
fn a_query_never_sees_half_of_a_large_upsert() {
    assert_imports_are_atomic(20_000, ImportMode::Upsert);
}

#[test]
fn a_query_never_sees_half_of_a_small_upsert() {
    assert_imports_are_atomic(1_500, ImportMode::Upsert);
}
