//! The timing channel of roaming fences, in process (no HTTP): what a position report
//! costs near a private traveller with and without 3,000 roaming fences of 200 m around
//! it, put by an attacker while the traveller shared with it and left behind when it went
//! private. Before fences went dormant on losing sight of their traveller, the attacker's
//! own reports near the victim took 1.9 to 2.8 ms against 0.2 ms elsewhere: with 200 m
//! fences that located the victim to under a kilometre. Now each case should cost the same
//! with the fences as without, and the attacker the same near the victim as far away,
//! within noise. Both sides have one unrelated fence, so that reports are judged in both.
//!
//! The world: 50,000 public travellers within about 5 km of the victim, in Helsinki. The
//! fences are one owner's, with its quotas raised so that it can put all 3,000 (the default
//! quotas would refuse all but 8 around one traveller). Judging is inline, so that each
//! report's cost includes its judgement.
//!
//! `cargo bench --bench privacy`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use proxima::clock::{Clock, ManualClock};
use proxima::engine::{Engine, EngineConfig, LiveConfig};
use proxima::fences::{Fence, FenceKind, FenceQuotas};
use proxima::geometry::LatLon;
use proxima::geometry::area::Area;
use proxima::persist::wal::{FsyncMode, WalOptions};
use proxima::pois::CursorKey;
use proxima::travellers::{PositionUpdate, Sharing, TravellerConfig, Visibility};

const CROWD: usize = 50_000;
const FENCES: usize = 3_000;
const T0: i64 = 1_800_000_000_000;
const HOME: (f64, f64) = (60.17, 24.94);
/// Where the attacker reports from when it is far from the victim: Tampere.
const AWAY: (f64, f64) = (61.50, 23.76);

struct World {
    engine: Engine,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

fn report(id: &str, lat: f64, lon: f64, ts: i64) -> PositionUpdate {
    PositionUpdate::new(id.into(), lat, lon, ts, None, None).expect("valid")
}

fn sharing(visibility: Visibility, viewers: &[&str]) -> Sharing {
    Sharing::new(
        visibility,
        viewers.iter().map(|v| (*v).to_string()).collect(),
    )
    .expect("valid")
}

impl World {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let quotas = FenceQuotas {
            owner_fences: FENCES,
            roaming_per_traveller: FENCES,
            ..FenceQuotas::default()
        };
        let engine = Engine::new(EngineConfig {
            cursor_key: CursorKey::random(),
            clock: clock.clone(),
            travellers: TravellerConfig {
                trail_capacity: 32,
                ttl_ms: 3_600_000,
            },
            routes: Default::default(),
            live: LiveConfig {
                quotas,
                ..LiveConfig::default()
            },
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let options = WalOptions {
            fsync: FsyncMode::Never,
            ..WalOptions::default()
        };
        engine.recover(dir.path(), options).expect("fresh dir");
        let world = Self {
            engine,
            clock,
            _dir: dir,
        };
        let ids: Vec<String> = (0..CROWD).map(|i| format!("crowd:{i}")).collect();
        for chunk in ids.chunks(10_000) {
            let updates = chunk
                .iter()
                .map(|id| {
                    let i: usize = id[6..].parse().expect("a number");
                    let (lat, lon) = spread(i, CROWD);
                    report(id, lat, lon, T0 - 1)
                })
                .collect();
            world.apply(updates);
        }
        for id in &ids {
            world
                .engine
                .set_sharing(id, sharing(Visibility::Public, &[]))
                .expect("shared")
                .wait()
                .expect("durable");
        }
        world.apply(vec![report("victim", HOME.0, HOME.1, T0 - 1)]);
        world.apply(vec![report("attacker", AWAY.0, AWAY.1, T0 - 1)]);
        world
            .engine
            .set_sharing("victim", sharing(Visibility::Private, &[]))
            .expect("private")
            .wait()
            .expect("durable");
        world
    }

    fn apply(&self, updates: Vec<PositionUpdate>) {
        self.engine
            .update_positions(updates)
            .expect("applied")
            .wait()
            .expect("durable");
    }

    /// The attacker's fences: put while the victim shares with it, left as it goes private.
    fn put_fences(&self) {
        self.engine
            .set_sharing("victim", sharing(Visibility::Friends, &["attacker"]))
            .expect("shared")
            .wait()
            .expect("durable");
        for k in 0..FENCES {
            let fence = Fence::new(
                format!("around-{k}"),
                "traveller:attacker".into(),
                Some("attacker".into()),
                FenceKind::Roaming {
                    around: "victim".into(),
                    radius_m: 200.0,
                },
            )
            .expect("valid");
            self.engine
                .put_fence(fence, false)
                .expect("put")
                .wait()
                .expect("durable");
        }
        self.engine
            .set_sharing("victim", sharing(Visibility::Private, &[]))
            .expect("private")
            .wait()
            .expect("durable");
        assert_eq!(self.engine.fence_count(), FENCES + 1);
    }

    /// An unrelated fence: an admin key's, around Tampere's station, far from everyone
    /// here but the attacker when it is away.
    fn put_elsewhere(&self) {
        let area = Area::circle(
            LatLon {
                lat: AWAY.0 + 0.01,
                lon: AWAY.1,
            },
            300.0,
        )
        .expect("valid");
        let fence = Fence::new(
            "tampere".into(),
            "key:admin".into(),
            None,
            FenceKind::Static(area),
        )
        .expect("valid");
        self.engine
            .put_fence(fence, true)
            .expect("put")
            .wait()
            .expect("durable");
    }

    /// A report by `id` a few metres from `(lat, lon)`, newer than any before.
    fn moves(&self, id: &str, (lat, lon): (f64, f64), step: &mut u64) {
        *step += 1;
        self.clock.advance(1);
        let wobble = (*step % 7) as f64 * 1e-5;
        self.apply(vec![report(id, lat + wobble, lon, self.clock.now_ms())]);
    }
}

/// Traveller `i` of `n`, spread evenly over about 5 km around [`HOME`].
fn spread(i: usize, n: usize) -> (f64, f64) {
    let a = i as f64 * 2.399_963; // the golden angle
    let r = 0.045 * ((i as f64 + 0.5) / n as f64).sqrt();
    (HOME.0 + r * a.sin(), HOME.1 + 2.0 * r * a.cos())
}

fn bench(c: &mut Criterion) {
    let world = World::new();
    let near = (HOME.0 + 0.000_9, HOME.1); // 100 m from the victim
    let mut step = 0;
    let mut group = c.benchmark_group("privacy_timing");
    // One fence elsewhere in both cases, so that reports are judged in both: the first
    // fence anywhere turns judging on, which costs every report the same.
    world.put_elsewhere();
    for fences in ["one_fence_elsewhere", "3000_dormant_fences"] {
        if fences != "one_fence_elsewhere" {
            world.put_fences();
        }
        group.bench_function(format!("attacker_near_victim/{fences}"), |b| {
            b.iter(|| world.moves("attacker", near, &mut step));
        });
        group.bench_function(format!("attacker_far_away/{fences}"), |b| {
            b.iter(|| world.moves("attacker", AWAY, &mut step));
        });
        group.bench_function(format!("victim/{fences}"), |b| {
            b.iter(|| world.moves("victim", HOME, &mut step));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
