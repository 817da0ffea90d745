//! Snapshot write and read (recovery) of 100,000 POIs and 100,000 travellers, through the
//! engine, to a temporary data directory.
//!
//! `cargo bench --bench snapshot`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use proxima::clock::ManualClock;
use proxima::engine::{Engine, EngineConfig, ImportMode, LiveConfig};
use proxima::import::ParsedPois;
use proxima::persist::wal::{FsyncMode, WalOptions};
use proxima::pois::{CursorKey, Poi};
use proxima::travellers::{PositionUpdate, TravellerConfig};
use proxima_bench::data::Places;

const N: usize = 100_000;
const NOW: i64 = 1_800_000_000_000;

fn engine() -> Engine {
    Engine::new(EngineConfig {
        cursor_key: CursorKey::random(),
        clock: Arc::new(ManualClock::new(NOW)),
        travellers: TravellerConfig {
            trail_capacity: 32,
            ttl_ms: 3_600_000,
        },
        routes: Default::default(),
        live: LiveConfig::default(),
    })
}

fn options() -> WalOptions {
    WalOptions {
        fsync: FsyncMode::Never,
        ..WalOptions::default()
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let live = engine();
    live.recover(dir.path(), options()).expect("fresh dir");
    let mut places = Places::new(5);
    let pois = (0..N)
        .map(|i| {
            let p = places.next(0.1);
            Poi::new(
                format!("poi:{i}"),
                p.lat,
                p.lon,
                format!("POI {i}"),
                "cafe".into(),
                BTreeMap::new(),
                None,
            )
            .expect("valid")
        })
        .collect();
    live.import_pois(
        ParsedPois {
            pois,
            ..ParsedPois::default()
        },
        ImportMode::Replace,
        true,
    )
    .expect("import")
    .wait()
    .expect("durable");
    let updates = (0..N)
        .map(|i| {
            let p = places.next(0.1);
            PositionUpdate::new(format!("t:{i}"), p.lat, p.lon, NOW, None, None).expect("valid")
        })
        .collect();
    live.update_positions(updates)
        .expect("update")
        .wait()
        .expect("durable");

    let mut group = c.benchmark_group("snapshot_100k_pois_100k_travellers");
    group.sample_size(10);
    group.bench_function("write", |b| b.iter(|| live.snapshot().expect("snapshot")));
    drop(live); // releases the data directory
    group.bench_function("recover", |b| {
        b.iter(|| {
            let engine = engine();
            engine.recover(dir.path(), options()).expect("recovers");
            engine
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
