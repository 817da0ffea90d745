//! Any sequence of changes, snapshotted at any point, recovers to exactly the state that was
//! live: the snapshot plus the log after it replay to the same POIs and travellers.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proxima::clock::ManualClock;
use proxima::engine::{Engine, EngineConfig, EngineError, ImportMode, LiveConfig, Written};
use proxima::import::ParsedPois;
use proxima::persist::wal::{FsyncMode, WalOptions};
use proxima::pois::{CursorKey, Poi};
use proxima::travellers::{PositionUpdate, Sharing, TravellerConfig, Visibility};

#[derive(Debug, Clone)]
enum Op {
    Upsert(u8, f64, f64, u8),
    Delete(u8),
    Import(ImportMode, Vec<(u8, f64)>),
    Position(u8, f64, f64, i64),
    Share(u8, u8),
    Forget(u8),
    Advance(i64),
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..20, -89.0..89.0f64, -179.0..179.0f64, 0u8..3).prop_map(|(i, a, b, c)| Op::Upsert(i, a, b, c)),
        2 => (0u8..20).prop_map(Op::Delete),
        1 => (prop::sample::select(vec![ImportMode::Upsert, ImportMode::Replace]), prop::collection::vec((0u8..30, -80.0..80.0f64), 0..8))
            .prop_map(|(m, v)| Op::Import(m, v)),
        4 => (0u8..10, -89.0..89.0f64, -179.0..179.0f64, -5_000i64..5_000).prop_map(|(i, a, b, t)| Op::Position(i, a, b, t)),
        1 => (0u8..10, 0u8..3).prop_map(|(i, v)| Op::Share(i, v)),
        1 => (0u8..10).prop_map(Op::Forget),
        1 => (0i64..20_000).prop_map(Op::Advance),
        1 => Just(Op::Snapshot),
    ]
}

fn engine(clock: Arc<ManualClock>) -> Engine {
    Engine::new(EngineConfig {
        cursor_key: CursorKey::random(),
        clock,
        travellers: TravellerConfig {
            trail_capacity: 4,
            ttl_ms: 30_000,
        },
        routes: Default::default(),
        live: LiveConfig::default(),
    })
}

fn poi(id: String, lat: f64, lon: f64, category: u8) -> Poi {
    Poi::new(
        id,
        lat,
        lon,
        "n".into(),
        ["cafe", "museum", "park"][category as usize].into(),
        BTreeMap::new(),
        None,
    )
    .expect("valid")
}

/// Waits until an accepted change is durable.
fn durable<T: 'static>(written: Result<Written<T>, EngineError>) {
    written.expect("accepted").wait().expect("durable");
}

fn run(engine: &Engine, clock: &ManualClock, op: Op) {
    match op {
        Op::Upsert(i, lat, lon, c) => durable(engine.upsert_poi(poi(format!("p{i}"), lat, lon, c))),
        Op::Delete(i) => durable(engine.delete_poi(&format!("p{i}"))),
        Op::Import(mode, rows) => {
            let pois = rows
                .into_iter()
                .map(|(i, lat)| poi(format!("p{i}"), lat, 10.0, 1))
                .collect();
            let parsed = ParsedPois {
                pois,
                ..ParsedPois::default()
            };
            durable(engine.import_pois(parsed, mode, true));
        }
        Op::Position(i, lat, lon, dt) => {
            let u = PositionUpdate::new(format!("t{i}"), lat, lon, clock.now() + dt, None, None)
                .expect("valid");
            durable(engine.update_position(u));
        }
        Op::Share(i, v) => {
            let visibility =
                [Visibility::Private, Visibility::Friends, Visibility::Public][v as usize];
            let sharing = Sharing::new(visibility, vec!["mum".into()]).expect("valid");
            durable(engine.set_sharing(&format!("t{i}"), sharing));
        }
        Op::Forget(i) => durable(engine.delete_traveller(&format!("t{i}"))),
        Op::Advance(ms) => clock.advance(ms),
        Op::Snapshot => {
            engine.snapshot().expect("snapshot");
        }
    }
}

trait Now {
    fn now(&self) -> i64;
}

impl Now for ManualClock {
    fn now(&self) -> i64 {
        proxima::clock::Clock::now_ms(self)
    }
}

proptest! {
    #![proptest_config(crate::common::proptest_config(48))]

    #[test]
    fn snapshot_plus_log_replays_to_the_live_state(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = WalOptions { fsync: FsyncMode::Never, segment_bytes: 512 };
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let live = engine(clock.clone());
        let report = live.recover(dir.path(), options).expect("fresh dir");
        prop_assert!(report.fresh);
        for op in ops {
            run(&live, &clock, op);
        }
        let expected = live.dump();
        drop(live); // closes the log (no final snapshot) and releases the directory

        let recovered = engine(clock.clone());
        recovered.recover(dir.path(), options).expect("recovery");
        prop_assert_eq!(recovered.dump(), expected);
    }
}
