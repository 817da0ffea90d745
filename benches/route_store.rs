//! `redb` against `fjall` on the route store's workload, through the same chunk keys and
//! delta-encoded chunks the route store writes (`proxima::routes`), and the route store
//! itself (`RouteStore`, on `redb`, which merges a batch's points per trip):
//! - appends: 500 batches, each one point of each of 1,000 trips (2,000 trips in all, one
//!   in twenty points late); each point reads its trip's chunk at or before it, merges and
//!   writes it back, one transaction (or write batch) a batch, unsynced, then one sync;
//! - range reads: every trip's whole route;
//! - deletes: every other trip erased;
//! - bytes on disk after the appends and a sync.
//!
//! `cargo bench --bench route_store [-- ROUNDS]` prints the medians of ROUNDS (default 3)
//! rounds, each on fresh stores.

#![allow(missing_docs)]

use std::path::Path;
use std::time::Instant;

use proxima::routes::RoutePoint;
use proxima::routes::codec;
use proxima::routes::keys::{chunk_key, trip_prefix};

const TRIPS: usize = 2_000;
const PER_BATCH: usize = 1_000;
const POINTS_PER_TRIP: usize = 250;

/// The operations the route store needs of a sorted key-value store.
trait Kv {
    /// Applies one batch: for each (trip, point), merge into the chunk at or before it.
    fn append_batch(&self, batch: &[(String, RoutePoint)]);
    fn sync(&self);
    /// Gives back the space of rewritten chunks (redb: `compact`; fjall: a major
    /// compaction, after flushing its journal).
    fn compact(&mut self);
    /// Reads `trip`'s whole route; gives its point count.
    fn read(&self, trip: &str) -> usize;
    fn erase(&self, trip: &str);
}

/// Merges `p` into `stored` (sorted), the stored point winning on equal `ts`.
fn merge(stored: &mut Vec<RoutePoint>, p: RoutePoint) {
    match stored.binary_search_by_key(&p.ts, |s| s.ts) {
        Ok(_) => {}
        Err(at) => stored.insert(at, p),
    }
}

struct Redb(redb::Database);

const CHUNKS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("chunks");

impl Kv for Redb {
    fn append_batch(&self, batch: &[(String, RoutePoint)]) {
        use redb::ReadableTable;
        let mut txn = self.0.begin_write().expect("txn");
        txn.set_durability(redb::Durability::None)
            .expect("durability");
        {
            let mut table = txn.open_table(CHUNKS).expect("table");
            let mut points = Vec::new();
            let mut bytes = Vec::new();
            for (trip, p) in batch {
                let prefix = trip_prefix(trip);
                let found = table
                    .range(
                        chunk_key(&prefix, i64::MIN).as_slice()
                            ..=chunk_key(&prefix, p.ts).as_slice(),
                    )
                    .expect("range")
                    .next_back()
                    .map(|e| {
                        let (k, v) = e.expect("entry");
                        (k.value().to_vec(), v.value().to_vec())
                    });
                points.clear();
                if let Some((key, value)) = &found {
                    codec::decode(value, &mut points).expect("decodes");
                    table.remove(key.as_slice()).expect("remove");
                }
                merge(&mut points, *p);
                for part in codec::split(&points) {
                    bytes.clear();
                    codec::encode(part, &mut bytes);
                    table
                        .insert(chunk_key(&prefix, part[0].ts).as_slice(), bytes.as_slice())
                        .expect("insert");
                }
            }
        }
        txn.commit().expect("commit");
    }

    fn sync(&self) {
        let mut txn = self.0.begin_write().expect("txn");
        txn.set_durability(redb::Durability::Immediate)
            .expect("durability");
        txn.commit().expect("commit");
    }

    fn compact(&mut self) {
        self.0
            .compact(redb::CompactionMode::Maximum)
            .expect("compact");
    }

    fn read(&self, trip: &str) -> usize {
        use redb::{ReadableDatabase, ReadableTable};
        let prefix = trip_prefix(trip);
        let txn = self.0.begin_read().expect("txn");
        let table = txn.open_table(CHUNKS).expect("table");
        let mut points = Vec::new();
        for e in table
            .range(
                chunk_key(&prefix, i64::MIN).as_slice()..=chunk_key(&prefix, i64::MAX).as_slice(),
            )
            .expect("range")
        {
            let (_, v) = e.expect("entry");
            codec::decode(v.value(), &mut points).expect("decodes");
        }
        points.len()
    }

    fn erase(&self, trip: &str) {
        let prefix = trip_prefix(trip);
        let mut txn = self.0.begin_write().expect("txn");
        txn.set_durability(redb::Durability::None)
            .expect("durability");
        {
            let mut table = txn.open_table(CHUNKS).expect("table");
            table
                .retain_in(
                    chunk_key(&prefix, i64::MIN).as_slice()
                        ..=chunk_key(&prefix, i64::MAX).as_slice(),
                    |_, _| false,
                )
                .expect("erase");
        }
        txn.commit().expect("commit");
    }
}

/// The route store itself.
struct Store(proxima::routes::RouteStore, std::cell::Cell<u64>);

impl Kv for Store {
    fn append_batch(&self, batch: &[(String, RoutePoint)]) {
        let points: Vec<(&str, RoutePoint)> = batch.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        self.1.set(self.1.get() + 1);
        self.0.append(&points).expect("appends");
    }

    fn sync(&self) {
        self.0.make_durable(self.1.get()).expect("durable");
    }

    fn compact(&mut self) {
        self.0.compact().expect("compacts");
    }

    fn read(&self, trip: &str) -> usize {
        let (points, _) = self
            .0
            .read(trip, i64::MIN, i64::MAX, None, usize::MAX)
            .expect("reads");
        points.len()
    }

    fn erase(&self, trip: &str) {
        self.1.set(self.1.get() + 1);
        self.0.erase(trip).expect("erases");
    }
}

struct Fjall {
    db: fjall::Database,
    chunks: fjall::Keyspace,
}

impl Kv for Fjall {
    fn append_batch(&self, batch: &[(String, RoutePoint)]) {
        // A write batch is atomic but reads do not see it: merge the batch's own points
        // per trip first (as the route store does), then read, merge and write.
        let mut by_trip: std::collections::BTreeMap<&str, Vec<RoutePoint>> = Default::default();
        for (trip, p) in batch {
            by_trip.entry(trip).or_default().push(*p);
        }
        let mut write = self.db.batch();
        let mut points = Vec::new();
        let mut bytes = Vec::new();
        for (trip, new) in by_trip {
            let prefix = trip_prefix(trip);
            for p in new {
                let found = self
                    .chunks
                    .range(chunk_key(&prefix, i64::MIN)..=chunk_key(&prefix, p.ts))
                    .next_back()
                    .map(|g| g.into_inner().expect("entry"));
                points.clear();
                if let Some((key, value)) = &found {
                    codec::decode(value, &mut points).expect("decodes");
                    write.remove(&self.chunks, key.to_vec());
                }
                merge(&mut points, p);
                for part in codec::split(&points) {
                    bytes.clear();
                    codec::encode(part, &mut bytes);
                    write.insert(&self.chunks, chunk_key(&prefix, part[0].ts), bytes.clone());
                }
            }
        }
        write.commit().expect("commit");
    }

    fn sync(&self) {
        self.db.persist(fjall::PersistMode::SyncAll).expect("sync");
    }

    fn compact(&mut self) {
        self.db.persist(fjall::PersistMode::SyncAll).expect("sync");
        self.chunks.rotate_memtable_and_wait().expect("flush");
        self.chunks.major_compact().expect("compact");
    }

    fn read(&self, trip: &str) -> usize {
        let prefix = trip_prefix(trip);
        let mut points = Vec::new();
        for g in self
            .chunks
            .range(chunk_key(&prefix, i64::MIN)..=chunk_key(&prefix, i64::MAX))
        {
            let (_, v) = g.into_inner().expect("entry");
            codec::decode(&v, &mut points).expect("decodes");
        }
        points.len()
    }

    fn erase(&self, trip: &str) {
        let prefix = trip_prefix(trip);
        let mut write = self.db.batch();
        for g in self
            .chunks
            .range(chunk_key(&prefix, i64::MIN)..=chunk_key(&prefix, i64::MAX))
        {
            let (key, _) = g.into_inner_if(|_| false).expect("key");
            write.remove(&self.chunks, key.to_vec());
        }
        write.commit().expect("commit");
    }
}

fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in walk(dir) {
        total += entry;
    }
    total
}

fn walk(dir: &Path) -> Vec<u64> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else if let Ok(m) = e.metadata() {
                out.push(m.len());
            }
        }
    }
    out
}

/// The batches: one point of each of `PER_BATCH` trips a batch, trips taking turns; a
/// point in twenty comes late (up to 20 points behind), as phones back from a tunnel send.
fn batches() -> Vec<Vec<(String, RoutePoint)>> {
    let trips: Vec<String> = (0..TRIPS).map(|i| format!("trip-{i:05}")).collect();
    let rounds = TRIPS * POINTS_PER_TRIP / PER_BATCH;
    let mut out = Vec::with_capacity(rounds);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..rounds {
        let first = (round * PER_BATCH) % TRIPS;
        let step = (round * PER_BATCH) / TRIPS;
        let mut batch = Vec::with_capacity(PER_BATCH);
        for (t, trip) in trips.iter().enumerate().skip(first).take(PER_BATCH) {
            let late = if next() % 20 == 0 {
                (next() % 20) as i64
            } else {
                0
            };
            let i = step as i64 - late;
            let ts = 1_800_000_000_000 + i * 5_000 + (t as i64 % 7);
            batch.push((
                trip.clone(),
                RoutePoint {
                    ts,
                    lat: 60.17 + (t as f64) * 1e-3 + i as f64 * 3e-5,
                    lon: 24.94 + i as f64 * 2e-5,
                },
            ));
        }
        out.push(batch);
    }
    out
}

struct Round {
    append_s: f64,
    bytes_per_point: f64,
    compacted_bytes_per_point: f64,
    read_s: f64,
    erase_s: f64,
}

fn round(kv: &mut dyn Kv, dir: &Path, batches: &[Vec<(String, RoutePoint)>]) -> Round {
    let started = Instant::now();
    for batch in batches {
        kv.append_batch(batch);
    }
    kv.sync();
    let append_s = started.elapsed().as_secs_f64();
    let points: usize = (0..TRIPS).map(|i| kv.read(&format!("trip-{i:05}"))).sum();
    let bytes_per_point = disk_bytes(dir) as f64 / points as f64;
    kv.compact();
    let compacted_bytes_per_point = disk_bytes(dir) as f64 / points as f64;
    let started = Instant::now();
    let mut read = 0;
    for i in 0..TRIPS {
        read += kv.read(&format!("trip-{i:05}"));
    }
    let read_s = started.elapsed().as_secs_f64();
    assert_eq!(read, points);
    let started = Instant::now();
    for i in (0..TRIPS).step_by(2) {
        kv.erase(&format!("trip-{i:05}"));
    }
    kv.sync();
    let erase_s = started.elapsed().as_secs_f64();
    Round {
        append_s,
        bytes_per_point,
        compacted_bytes_per_point,
        read_s,
        erase_s,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let batches = batches();
    let points = (batches.len() * PER_BATCH) as f64;
    println!(
        "{rounds} rounds; {TRIPS} trips, {} batches of {PER_BATCH} points; medians",
        batches.len()
    );
    println!(
        "store      appends/s   read points/s  erased trips/s  bytes/point on disk  after compacting"
    );
    for which in ["redb", "fjall", "RouteStore"] {
        let mut results = Vec::new();
        for _ in 0..rounds {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut kv: Box<dyn Kv> = match which {
                "RouteStore" => Box::new(Store(
                    proxima::routes::RouteStore::open(&dir.path().join("routes.redb"))
                        .expect("opens"),
                    std::cell::Cell::new(0),
                )),
                "redb" => Box::new(Redb({
                    let db = redb::Database::create(dir.path().join("routes.redb")).expect("redb");
                    let txn = db.begin_write().expect("txn");
                    txn.open_table(CHUNKS).expect("table");
                    txn.commit().expect("commit");
                    db
                })),
                _ => {
                    let db = fjall::Database::builder(dir.path()).open().expect("fjall");
                    let chunks = db
                        .keyspace("chunks", fjall::KeyspaceCreateOptions::default)
                        .expect("keyspace");
                    Box::new(Fjall { db, chunks })
                }
            };
            results.push(round(kv.as_mut(), dir.path(), &batches));
        }
        println!(
            "{:<10} {:>10.0} {:>15.0} {:>15.0} {:>20.2} {:>17.2}",
            which,
            median(results.iter().map(|r| points / r.append_s).collect()),
            median(results.iter().map(|r| points / r.read_s).collect()),
            median(
                results
                    .iter()
                    .map(|r| (TRIPS / 2) as f64 / r.erase_s)
                    .collect()
            ),
            median(results.iter().map(|r| r.bytes_per_point).collect()),
            median(
                results
                    .iter()
                    .map(|r| r.compacted_bytes_per_point)
                    .collect()
            ),
        );
    }
}
