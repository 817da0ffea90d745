//! Fences on the update path, in process (no HTTP): batches of 20,000 position updates into
//! 1,000,000 travellers laid out as `proxima bench` lays them out (groups of ten near
//! cities, each moving up to ~100 m from where it started), with no fence, with the `fences`
//! workload's 10,000 static fences, and with the `roaming` workload's 100,000 roaming fences
//! (each among the nine travellers after its own, who share with it). It also prints the
//! resident memory each kind of fence takes: the process's before and after putting them,
//! over their number.
//!
//! `cargo bench --bench fences`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use proxima::clock::{Clock, ManualClock};
use proxima::engine::{Engine, EngineConfig, LiveConfig};
use proxima::fences::{Fence, FenceKey, FenceKind};
use proxima::geometry::LatLon;
use proxima::geometry::area::{Area, MAX_AREA_VERTICES};
use proxima::persist::wal::{FsyncMode, WalOptions};
use proxima::pois::CursorKey;
use proxima::travellers::{PositionUpdate, Sharing, TravellerConfig, Visibility};
use proxima_bench::data::Places;
use proxima_bench::fences::{ROAMING_EVERY, ROAMING_RADIUS_M, grouped, static_fence};

const TRAVELLERS: usize = 1_000_000;
const STATIC_FENCES: usize = 10_000;
const BATCH: usize = 20_000;
const T0: i64 = 1_800_000_000_000;
/// The owner of every fence here: an admin key, as the `fences` workload's.
const OWNER: &str = "key:bench";

struct World {
    engine: Engine,
    clock: Arc<ManualClock>,
    starts: Vec<LatLon>,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::new(EngineConfig {
            cursor_key: CursorKey::random(),
            clock: clock.clone(),
            travellers: TravellerConfig {
                trail_capacity: 32,
                ttl_ms: 3_600_000,
            },
            routes: Default::default(),
            live: LiveConfig::default(),
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let options = WalOptions {
            fsync: FsyncMode::Never,
            ..WalOptions::default()
        };
        engine.recover(dir.path(), options).expect("fresh dir");
        let starts = grouped(&mut Places::new(2), TRAVELLERS);
        for chunk in starts.chunks(BATCH).enumerate() {
            let (c, places) = chunk;
            let updates = places
                .iter()
                .enumerate()
                .map(|(i, p)| update(c * BATCH + i, p.lat, p.lon, T0 - 1))
                .collect();
            engine
                .update_positions(updates)
                .expect("applied")
                .wait()
                .expect("durable");
        }
        let public = Sharing::new(Visibility::Public, vec![]).expect("valid");
        for i in (0..TRAVELLERS).step_by(ROAMING_EVERY) {
            engine
                .set_sharing(&id(i), public.clone())
                .expect("shared")
                .wait()
                .expect("durable");
        }
        Self {
            engine,
            clock,
            starts,
            _dir: dir,
        }
    }

    /// A batch moving random travellers by up to ~100 m from where they started, newer
    /// than anything before.
    fn batch(&self, seed: &mut u64) -> Vec<PositionUpdate> {
        self.clock.advance(1);
        let ts = self.clock.now_ms();
        (0..BATCH)
            .map(|_| {
                *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let i = (*seed >> 33) as usize % TRAVELLERS;
                let step = ((*seed >> 20) % 200) as f64 * 1e-5 - 1e-3;
                let p = self.starts[i];
                update(i, (p.lat + step).clamp(-90.0, 90.0), p.lon, ts)
            })
            .collect()
    }

    fn resident(&self) -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
            * 4096
    }

    /// Puts `fences`, printing the resident memory they took each.
    fn put(&self, kind: &str, fences: Vec<Fence>) {
        let n = fences.len();
        let before = self.resident();
        for fence in fences {
            self.engine
                .put_fence(fence, true)
                .expect("put")
                .wait()
                .expect("durable");
        }
        let after = self.resident();
        println!(
            "memory: {n} {kind} fences, {:.0} resident bytes each",
            (after as f64 - before as f64) / n as f64
        );
    }
}

fn id(i: usize) -> String {
    format!("bench:t:{i}")
}

fn update(i: usize, lat: f64, lon: f64, ts: i64) -> PositionUpdate {
    PositionUpdate::new(id(i), lat, lon, ts, None, None).expect("valid")
}

/// The `fences` workload's fence `k`, from its JSON body.
fn static_fences(centres: &[LatLon], keep: impl Fn(&serde_json::Value) -> bool) -> Vec<Fence> {
    (0..STATIC_FENCES)
        .filter_map(|k| {
            let centre = centres[k % centres.len()];
            let body: serde_json::Value =
                serde_json::from_str(&static_fence(centre, k, 1)).expect("JSON");
            let a = &body["area"];
            if !keep(a) {
                return None;
            }
            let area = match a["type"].as_str() {
                Some("Circle") => {
                    Area::circle(centre, a["radius_m"].as_f64().expect("a radius")).expect("valid")
                }
                _ => Area::polygon(
                    serde_json::from_value(a["coordinates"].clone()).expect("rings"),
                    MAX_AREA_VERTICES,
                )
                .expect("valid"),
            };
            Some(
                Fence::new(
                    format!("bench:fence:{k}"),
                    OWNER.into(),
                    None,
                    FenceKind::Static(area),
                )
                .expect("valid"),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let world = World::new();
    let mut group = c.benchmark_group("fences_1m_travellers");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    let mut seed = 1u64;
    let mut run = |group: &mut criterion::BenchmarkGroup<'_, _>, name: &str| {
        group.bench_function(name, |b| {
            b.iter_batched(
                || world.batch(&mut seed),
                |updates| {
                    world
                        .engine
                        .update_positions(updates)
                        .expect("applied")
                        .wait()
                        .expect("durable")
                },
                BatchSize::LargeInput,
            );
        });
    };
    run(&mut group, "batch_no_fences");

    let mut places = Places::new(1);
    let centres: Vec<LatLon> = (0..10_000).map(|_| places.next(0.05)).collect();
    world.put(
        "static polygon (50 vertices)",
        static_fences(&centres, |a| a["type"] == "Polygon"),
    );
    world.put(
        "static circle",
        static_fences(&centres, |a| a["type"] == "Circle"),
    );
    run(&mut group, "batch_10k_static_fences");
    for k in 0..STATIC_FENCES {
        let _ = world
            .engine
            .delete_fence(&FenceKey::new(OWNER, &format!("bench:fence:{k}")));
    }

    for j in 0..TRAVELLERS {
        if !j.is_multiple_of(ROAMING_EVERY) {
            let owner = id(j - j % ROAMING_EVERY);
            let friends = Sharing::new(Visibility::Friends, vec![owner]).expect("valid");
            world
                .engine
                .set_sharing(&id(j), friends)
                .expect("shared")
                .wait()
                .expect("durable");
        }
    }
    let roaming = (0..TRAVELLERS)
        .step_by(ROAMING_EVERY)
        .map(|i| {
            let kind = FenceKind::Roaming {
                around: id(i),
                radius_m: ROAMING_RADIUS_M,
            };
            Fence::new(format!("bench:roam:{i}"), OWNER.into(), Some(id(i)), kind).expect("valid")
        })
        .collect();
    world.put("roaming (500 m)", roaming);
    run(&mut group, "batch_100k_roaming_fences");
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
