//! The write path's share of trips: finding, for each report of a batch of 1,000, the trip
//! whose window holds it, among a million travellers each on a trip (what
//! `scripts/trips-bench.sh` sends), with the reports' travellers drawn at random.
//!
//! `cargo bench --bench trip_lookup`: 139 µs a batch (medians of 3 on the 2-core machine),
//! against 335 µs when each report was looked up alone.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use proxima::trips::{Trip, Trips};

const TRAVELLERS: usize = 1_000_000;
const BATCH: usize = 1_000;

fn bench(c: &mut Criterion) {
    let trips = Trips::new();
    for i in 0..TRAVELLERS {
        let trip = Trip::new(
            format!("bench:trip:{i}"),
            format!("bench:t:{i}"),
            format!("Bench trip {i}"),
            1_700_000_000_000,
            None,
        )
        .expect("a valid trip");
        trips.put(trip, 1_700_000_000_000);
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let batches: Vec<Vec<(String, i64)>> = (0..64)
        .map(|_| {
            (0..BATCH)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (
                        format!("bench:t:{}", rng % TRAVELLERS as u64),
                        1_800_000_000_000,
                    )
                })
                .collect()
        })
        .collect();
    let mut next = 0;
    c.bench_function("trips_holding_a_batch_of_1000_among_1m", |b| {
        b.iter(|| {
            let batch = &batches[next % batches.len()];
            next += 1;
            let mut found = 0usize;
            trips.for_each_holding(batch.iter().map(|(t, ts)| (t.as_str(), *ts)), |_, id| {
                found += id.len()
            });
            assert!(found > 0);
            found
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
