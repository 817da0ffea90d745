//! Writes while queries run: a query sees a write wholly or not at all, and readers keep
//! answering while a large import is built.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proxima::clock::SystemClock;
use proxima::engine::{Engine, EngineConfig, ImportMode, LiveConfig};
use proxima::geometry::LatLon;
use proxima::import::ParsedPois;
use proxima::pois::{CursorKey, NearbyQuery, Poi, PoiFilter};
use proxima::travellers::{PositionUpdate, Sharing, TravellerConfig, TravellerIndex, Visibility};

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
    let engine = Arc::new(Engine::new(EngineConfig {
        cursor_key: CursorKey::random(),
        clock: Arc::new(SystemClock),
        travellers: TravellerConfig {
            trail_capacity: 4,
            ttl_ms: 3_600_000,
        },
        routes: Default::default(),
        live: LiveConfig::default(),
    }));
    engine
        .import_pois(generation(size, 0), ImportMode::Replace, true)
        .expect("import")
        .wait()
        .expect("no log: done at once");
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
                    let names: Vec<String> = engine
                        .nearby_pois(query.clone(), None, |page| {
                            page.items
                                .iter()
                                .map(|h| h.poi.name().to_string())
                                .collect()
                        })
                        .expect("query");
                    assert_eq!(names.len(), 1000.min(size));
                    assert!(
                        names.iter().all(|n| n == &names[0]),
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
            .expect("import")
            .wait()
            .expect("no log: done at once");
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

/// A deterministic pseudo-random walk (xorshift), so each writer thread has its own stream.
struct Walk(u64);

impl Walk {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn concurrent_moves_leave_every_traveller_in_exactly_its_own_cell() {
    const TRAVELLERS: usize = 2_000;
    const WRITERS: u64 = 4;
    const MOVES_PER_WRITER: i64 = 25_000;
    let index = Arc::new(TravellerIndex::new(TravellerConfig {
        trail_capacity: 8,
        ttl_ms: i64::MAX / 4,
    }));
    // Every traveller is public and placed before the readers start (at ts 0; the writers'
    // updates are all newer), so every query has travellers to find.
    let mut walk = Walk(0x5eed);
    for i in 0..TRAVELLERS {
        let id = format!("t{i}");
        index.set_sharing(
            &id,
            Sharing::new(Visibility::Public, vec![]).expect("valid"),
        );
        let (lat, lon) = (60.1 + walk.next() * 0.1, 24.8 + walk.next() * 0.2);
        let u = PositionUpdate::new(id, lat, lon, 0, None, None).expect("valid");
        index.update(&u, 0);
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let index = index.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut walk = Walk(0x9e37_79b9 + r);
                let mut queries = 0u64;
                while !done.load(Ordering::Acquire) {
                    let center = LatLon::new(60.1 + walk.next() * 0.1, 24.8 + walk.next() * 0.2)
                        .expect("valid");
                    let hits = index.nearby(center, 3_000.0, 50, None, 0);
                    // 2,000 travellers over about 11 km by 11 km: a 3 km circle anywhere in
                    // it holds far more than 50, so a short page means some were missed.
                    assert_eq!(hits.len(), 50, "a full page at {center:?}");
                    assert!(
                        hits.windows(2).all(|w| w[0].distance_m <= w[1].distance_m),
                        "nearest first"
                    );
                    assert!(
                        hits.iter().all(|h| h.distance_m <= 3_000.0),
                        "within the radius"
                    );
                    let mut ids: Vec<&str> = hits.iter().map(|h| h.at.id.as_str()).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    assert_eq!(ids.len(), hits.len(), "no traveller twice in one answer");
                    queries += 1;
                }
                queries
            })
        })
        .collect();
    // Writers share travellers (t0..t1999 across all threads), so updates for one traveller
    // race; each carries a distinct ts, and the highest must win.
    let moves = |w: u64| {
        let mut walk = Walk(0x1234_5678 + w);
        (0..MOVES_PER_WRITER).map(move |n| {
            let i = (walk.next() * TRAVELLERS as f64) as usize;
            let ts = 1 + n * WRITERS as i64 + w as i64;
            let lat = 60.1 + walk.next() * 0.1;
            let lon = 24.8 + walk.next() * 0.2;
            PositionUpdate::new(format!("t{i}"), lat, lon, ts, None, None).expect("valid")
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let index = index.clone();
            let moves = moves(w);
            std::thread::spawn(move || {
                for u in moves {
                    index.update(&u, u.ts);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer did not panic");
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().expect("reader did not panic") > 0);
    }
    assert_eq!(index.check_invariants(), Ok(()));
    // Every traveller's position is its newest update, whichever writer sent it: the
    // highest ts of the same moves replayed in order, and its trail's last point.
    let mut newest: HashMap<String, PositionUpdate> = HashMap::new();
    for u in (0..WRITERS).flat_map(moves) {
        if newest.get(&u.id).is_none_or(|n| u.ts > n.ts) {
            newest.insert(u.id.clone(), u);
        }
    }
    for i in 0..TRAVELLERS {
        let id = format!("t{i}");
        let view = index
            .get(&id, None, 0)
            .unwrap_or_else(|| panic!("{id} has a position and is public"));
        match newest.get(&id) {
            Some(u) => assert_eq!((view.at.ts, view.at.position), (u.ts, u.position), "{id}"),
            None => assert_eq!(view.at.ts, 0, "{id} never moved"),
        }
        let trail = index.trail(&id, None, i64::MIN, 0).expect("visible");
        assert_eq!(
            trail.last().map(|p| (p.ts, p.position)),
            Some((view.at.ts, view.at.position))
        );
    }
}
