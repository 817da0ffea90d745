//! Traveller hot paths on 1,000,000 travellers clustered around the world's cities:
//! position updates (1 and 2 threads; each update moves a traveller by up to ~100 m, so some
//! cross into another cell), batches of 1,000 scattered travellers applied one at a time and
//! with `update_each` (1.21–1.32 ms against 0.72 ms a batch, two runs on the 2-core
//! machine), and nearby queries (2 km and 200 km, k = 20).
//!
//! `cargo bench --bench travellers`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proxima::geometry::LatLon;
use proxima::travellers::{
    PositionUpdate, Sharing, TravellerConfig, TravellerIndex, UpdateOutcome, Visibility,
};
use proxima_bench::data::Places;

const TRAVELLERS: usize = 1_000_000;
/// Updates per measured iteration: large enough that starting threads costs ~1 %.
const BATCH: usize = 20_000;
/// Reports a request brings.
const REQUEST: usize = 1_000;
const T0: i64 = 1_800_000_000_000;

fn fill(places: &mut Places) -> (TravellerIndex, Vec<PositionUpdate>) {
    let index = TravellerIndex::new(TravellerConfig {
        trail_capacity: 32,
        ttl_ms: i64::MAX / 4,
    });
    let public = Sharing::new(Visibility::Public, vec![]).expect("valid");
    let mut updates = Vec::with_capacity(TRAVELLERS);
    for i in 0..TRAVELLERS {
        let p = places.next(0.1);
        let u = PositionUpdate::new(format!("traveller:{i}"), p.lat, p.lon, T0, None, None)
            .expect("valid");
        index.update(&u, T0);
        index.set_sharing(&u.id, public.clone());
        updates.push(u);
    }
    (index, updates)
}

/// Moves each traveller of `updates` in turn by a small step with a newer `ts`.
fn run(
    index: &TravellerIndex,
    updates: &mut [PositionUpdate],
    cursor: &mut usize,
    tick: &mut i64,
    n: usize,
) {
    for _ in 0..n {
        *cursor = (*cursor + 7919) % updates.len(); // a prime stride visits all, scattered
        let u = &mut updates[*cursor];
        *tick += 1;
        let step = ((*tick % 200) as f64 - 100.0) * 1e-5; // up to ~100 m
        u.position = LatLon::new((u.position.lat + step).clamp(-90.0, 90.0), u.position.lon)
            .expect("clamped");
        u.ts = T0 + *tick;
        black_box(index.update(u, u.ts));
    }
}

fn bench(c: &mut Criterion) {
    let mut places = Places::new(3);
    let (index, mut updates) = fill(&mut places);
    let mut group = c.benchmark_group("travellers_1m");
    group.throughput(Throughput::Elements(BATCH as u64));
    // Each thread owns half the travellers and keeps its place in them across iterations,
    // so the working set is the whole million, not a cache-warm few.
    let mut ticks = [0i64, 1 << 40];
    let mut cursors = [0usize; 2];
    for threads in [1usize, 2] {
        group.bench_function(
            BenchmarkId::new("updates", format!("{threads}_threads")),
            |b| {
                b.iter(|| {
                    let chunk = updates.len() / threads;
                    std::thread::scope(|scope| {
                        let parts = updates
                            .chunks_mut(chunk)
                            .zip(cursors.iter_mut())
                            .zip(ticks.iter_mut());
                        for ((part, cursor), tick) in parts.take(threads) {
                            let index = &index;
                            scope.spawn(move || run(index, part, cursor, tick, BATCH / threads));
                        }
                    });
                });
            },
        );
    }
    // Batches of 1,000 scattered travellers as a request brings them: applied one at a
    // time, and with `update_each` (shard by shard, records read in stages).
    group.throughput(Throughput::Elements(REQUEST as u64));
    let mut shuffled = updates.clone();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..shuffled.len()).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        shuffled.swap(i, (rng % (i as u64 + 1)) as usize);
    }
    let mut at = 0usize;
    let mut tick = 1i64 << 41;
    for each in [false, true] {
        let name = if each { "update_each" } else { "one_at_a_time" };
        group.bench_function(BenchmarkId::new("batch_of_1000", name), |b| {
            b.iter(|| {
                at = (at + REQUEST) % (shuffled.len() - REQUEST);
                let batch = &mut shuffled[at..at + REQUEST];
                for (n, u) in batch.iter_mut().enumerate() {
                    let step = ((n % 200) as f64 - 100.0) * 1e-5;
                    u.position =
                        LatLon::new((u.position.lat + step).clamp(-90.0, 90.0), u.position.lon)
                            .expect("clamped");
                    tick += 1;
                    u.ts = T0 + tick;
                }
                let mut applied = 0usize;
                if each {
                    index.update_each(batch, T0 + tick, |_, _| applied += 1);
                } else {
                    for u in batch.iter() {
                        applied +=
                            usize::from(index.update(u, T0 + tick) == UpdateOutcome::Applied);
                    }
                }
                assert_eq!(applied, REQUEST);
            });
        });
    }
    group.throughput(Throughput::Elements(1));
    let centres: Vec<LatLon> = (0..4096).map(|_| places.next(0.1)).collect();
    for radius_km in [2.0, 200.0] {
        let mut i = 0;
        group.bench_function(
            BenchmarkId::new("nearby_k20", format!("{radius_km}km")),
            |b| {
                b.iter(|| {
                    i = (i + 1) % centres.len();
                    black_box(index.nearby(centres[i], radius_km * 1000.0, 20, None, T0))
                });
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
