//! [`RouteStore`]: routes on disk, in `redb`.
//!
//! Why `redb` rather than `fjall` (both embedded, pure Rust, well kept): measured on this
//! workload, through the same keys and chunks, by `cargo bench --bench route_store` (2,000
//! trips, 500 batches of 1,000 points with one in twenty late, medians of 3 rounds, on a
//! 2-core machine):
//!
//! | | redb | fjall | this store (on redb) |
//! |---|---|---|---|
//! | appends (read, merge, write a chunk a point; a commit a batch) | 241,000 points/s | 41,700 points/s | 184,000 points/s |
//! | range reads of whole routes | 87.0 M points/s | 51.4 M points/s | 60.8 M points/s |
//! | whole-trip erasures | 41,000 trips/s | 59,000 trips/s | 34,700 trips/s |
//! | bytes on disk a point, after the appends / after compacting | 18.6 / 5.9 | 267.1 / 151.1 | 18.6 / 5.9 |
//!
//! (The first two columns are the bare stores doing the same work through the same keys
//! and chunks; the third is [`RouteStore`] itself, which also sorts each batch by trip
//! and time and merges a trip's points chunk by chunk.)
//!
//! - Appends decide: every batch of positions touches a chunk of each trip it holds, and
//!   `redb` takes them 6 times faster. An LSM tree answers the read half of each
//!   read-merge-write from several levels, and its journal and compactions write every
//!   chunk version again.
//! - `redb` is one file of copy-on-write B-trees: a commit is atomic, including the
//!   applied log sequence kept beside the chunks, readers never wait for the writer, and
//!   no background threads compete with requests. Its commits can be left unsynced
//!   ([`Durability::None`]) and made durable together later, which is what a store derived
//!   from the log needs: the log is the record, and it is trimmed only below the sequence
//!   the store has made durable ([`RouteStore::make_durable`]).
//! - `fjall` erases faster (a range of tombstones), but erasures are rare, and an erased
//!   trip's bytes stay on its disk until a compaction reaches them.
//! - The cost of `redb`'s copy-on-write is space freed and kept for later commits; it is
//!   given back by [`RouteStore::compact`].
//!
//! Chunks: each trip's points are kept in chunks of at most
//! [`MAX_CHUNK_POINTS`](super::codec::MAX_CHUNK_POINTS), keyed by (trip, first `ts`) and
//! delta-encoded ([`super::codec`]). Adding points reads the chunks their times fall in,
//! merges (each `ts` once: a point already stored wins, so applying a change twice is a
//! no-op) and writes them back. A late point rewrites the chunks from its own to the
//! newest of the batch's points for that trip: cheap for the usual few minutes late, in
//! proportion to the route since then for a point days late.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::codec::{self, CodecError, MAX_CHUNK_POINTS};
use super::keys::{chunk_key, chunk_start, trip_prefix};
use super::places;
use super::{RoutePoint, TripFigures};

/// Chunks of points by (trip, first `ts`).
const CHUNKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("chunks");
/// Each trip's [`TripFigures`], by trip prefix.
const FIGURES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("figures");
/// The level-13 cells each trip's points fell in: (trip prefix, cell id big-endian).
const CELLS: TableDefinition<&[u8], ()> = TableDefinition::new("cells");
/// The store's own facts: the last log sequence applied.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const APPLIED_SEQ: &str = "applied_seq";

/// Why the route store failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteStoreError {
    /// The store's file could not be opened, read or written.
    #[error("route store: {0}")]
    Store(#[from] redb::Error),
    /// A chunk's bytes are damaged.
    #[error("route store: {0}")]
    Chunk(#[from] CodecError),
    /// A trip's figures are damaged.
    #[error("route store: a trip's figures: {0}")]
    Figures(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for RouteStoreError {
            fn from(e: $t) -> Self {
                Self::Store(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// What adding points did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Appended {
    /// Points stored for the first time.
    pub added: u64,
    /// Points whose `ts` was already stored for their trip (left as they were).
    pub already: u64,
}

/// The routes of every trip, in one file.
pub struct RouteStore {
    db: Database,
}

impl std::fmt::Debug for RouteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteStore").finish_non_exhaustive()
    }
}

impl RouteStore {
    /// Opens the store at `path`, creating it if there is none.
    pub fn open(path: &Path) -> Result<Self, RouteStoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(CHUNKS)?;
        txn.open_table(FIGURES)?;
        txn.open_table(CELLS)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(Self { db })
    }

    /// The log sequence up to which every change is applied and durable (0 for none):
    /// replay the log after it.
    pub fn applied_seq(&self) -> Result<u64, RouteStoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(APPLIED_SEQ)?.map_or(0, |v| v.value()))
    }

    /// Adds `points` of their trips (any order; repeats and points already stored are
    /// left as they are), in one transaction. Not yet durable: see
    /// [`RouteStore::make_durable`].
    pub fn append(&self, points: &[(&str, RoutePoint)]) -> Result<Appended, RouteStoreError> {
        let mut sorted: Vec<(&str, RoutePoint)> = points.to_vec();
        // By trip in the keys' order (the id's length, then the id), then time; the first
        // report of a `ts` in the batch wins (the sort is stable).
        sorted.sort_by(|a, b| {
            (a.0.len(), a.0)
                .cmp(&(b.0.len(), b.0))
                .then(a.1.ts.cmp(&b.1.ts))
        });
        let mut counts = Appended::default();
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        {
            let mut tables = Tables {
                chunks: txn.open_table(CHUNKS)?,
                figures: txn.open_table(FIGURES)?,
                cells: txn.open_table(CELLS)?,
            };
            for group in sorted.chunk_by(|a, b| a.0 == b.0) {
                let trip = group[0].0;
                // As the chunks will hold them, so that the figures count what is stored.
                let mut new: Vec<RoutePoint> = group
                    .iter()
                    .map(|(_, p)| RoutePoint {
                        ts: p.ts,
                        lat: codec::from_units(codec::to_units(p.lat)),
                        lon: codec::from_units(codec::to_units(p.lon)),
                    })
                    .collect();
                let reported = new.len();
                new.dedup_by_key(|p| p.ts);
                let stored_already = tables.merge(trip, &new)?;
                counts.added += new.len() as u64 - stored_already;
                counts.already += (reported - new.len()) as u64 + stored_already;
            }
        }
        txn.commit()?;
        Ok(counts)
    }

    /// Erases every point of `trip`, its figures and cells; gives how many points there
    /// were.
    pub fn erase(&self, trip: &str) -> Result<u64, RouteStoreError> {
        let prefix = trip_prefix(trip);
        let (start, end) = (chunk_key(&prefix, i64::MIN), chunk_key(&prefix, i64::MAX));
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        let mut erased = 0u64;
        {
            let mut chunks = txn.open_table(CHUNKS)?;
            let mut points = Vec::new();
            chunks.retain_in(start.as_slice()..=end.as_slice(), |_, bytes| {
                points.clear();
                if codec::decode(bytes, &mut points).is_ok() {
                    erased += points.len() as u64;
                }
                false
            })?;
            txn.open_table(FIGURES)?.remove(prefix.as_slice())?;
            let (first_cell, last_cell) = (cell_key(&prefix, 0), cell_key(&prefix, u64::MAX));
            txn.open_table(CELLS)?
                .retain_in(first_cell.as_slice()..=last_cell.as_slice(), |_, ()| false)?;
        }
        txn.commit()?;
        Ok(erased)
    }

    /// Makes every change applied so far durable (one fsync) and records that they hold the
    /// log up to `seq` (every change at or before it is applied; later ones may be too,
    /// which replaying them again leaves as they are). The log may then be trimmed up to
    /// `seq`.
    pub fn make_durable(&self, seq: u64) -> Result<(), RouteStoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let mut meta = txn.open_table(META)?;
            let applied = meta.get(APPLIED_SEQ)?.map_or(0, |v| v.value());
            meta.insert(APPLIED_SEQ, applied.max(seq))?;
        }
        txn.commit()?;
        Ok(())
    }

    /// `trip`'s figures, without reading its route (`None`: no point stored).
    pub fn figures(&self, trip: &str) -> Result<Option<TripFigures>, RouteStoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(FIGURES)?;
        let Some(bytes) = table.get(trip_prefix(trip).as_slice())? else {
            return Ok(None);
        };
        crate::persist::decode(bytes.value())
            .map(Some)
            .map_err(|e| RouteStoreError::Figures(e.to_string()))
    }

    /// Keeps only `trip`'s points with `from <= ts <= to` (a trip whose times were
    /// narrowed), its figures worked out again from them.
    pub fn retain_window(&self, trip: &str, from: i64, to: i64) -> Result<(), RouteStoreError> {
        let (kept, _) = self.read(trip, from, to, None, usize::MAX)?;
        if u64::try_from(kept.len()).ok() == self.figures(trip)?.map(|f| f.points) {
            return Ok(());
        }
        self.erase(trip)?;
        let points: Vec<(&str, RoutePoint)> = kept.iter().map(|p| (trip, *p)).collect();
        self.append(&points)?;
        Ok(())
    }

    /// Gives back the space of rewritten chunks: a commit copies the pages it changes, and
    /// the file keeps the freed ones for later commits, and pages are left part full.
    /// Measured by the route-store bench: 18.6 bytes on disk a point after 500 batches, 5.9
    /// after compacting with entries packed into full pages (`Maximum`: slower inserts
    /// until pages split again, which is why it runs rarely, beside a snapshot). Needs no
    /// other transaction open (hence `&mut`).
    pub fn compact(&mut self) -> Result<(), RouteStoreError> {
        self.db
            .compact(redb::CompactionMode::Maximum)
            .map_err(|e| RouteStoreError::Store(e.into()))?;
        Ok(())
    }

    /// `trip`'s points with `from <= ts <= to`, after `after` (a page's last `ts`), at
    /// most `limit`, in `ts` order; and whether more follow.
    pub fn read(
        &self,
        trip: &str,
        from: i64,
        to: i64,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<RoutePoint>, bool), RouteStoreError> {
        let from = match after {
            Some(a) => match a.checked_add(1) {
                Some(next) => from.max(next),
                // Nothing comes after the last instant.
                None => return Ok((Vec::new(), false)),
            },
            None => from,
        };
        let mut out = Vec::new();
        if from > to {
            return Ok((out, false));
        }
        let prefix = trip_prefix(trip);
        let txn = self.db.begin_read()?;
        let chunks = txn.open_table(CHUNKS)?;
        let first = start_of_chunk_holding(&chunks, &prefix, from)?;
        let mut points = Vec::new();
        for entry in chunks
            .range(chunk_key(&prefix, first).as_slice()..=chunk_key(&prefix, to).as_slice())?
        {
            let (_, bytes) = entry?;
            points.clear();
            codec::decode(bytes.value(), &mut points)?;
            for p in points.iter().filter(|p| p.ts >= from && p.ts <= to) {
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(*p);
            }
        }
        Ok((out, false))
    }

    /// How many points `trip` holds.
    pub fn count(&self, trip: &str) -> Result<u64, RouteStoreError> {
        let prefix = trip_prefix(trip);
        let txn = self.db.begin_read()?;
        let chunks = txn.open_table(CHUNKS)?;
        let mut n = 0u64;
        let mut points = Vec::new();
        for entry in chunks.range(
            chunk_key(&prefix, i64::MIN).as_slice()..=chunk_key(&prefix, i64::MAX).as_slice(),
        )? {
            let (_, bytes) = entry?;
            points.clear();
            codec::decode(bytes.value(), &mut points)?;
            n += points.len() as u64;
        }
        Ok(n)
    }
}

/// Where the chunk that may hold `ts` starts: the trip's last chunk starting at or before
/// it, or `ts` itself when none does.
fn start_of_chunk_holding(
    chunks: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
    ts: i64,
) -> Result<i64, RouteStoreError> {
    Ok(chunks
        .range(chunk_key(prefix, i64::MIN).as_slice()..=chunk_key(prefix, ts).as_slice())?
        .next_back()
        .transpose()?
        .map_or(ts, |(k, _)| chunk_start(k.value())))
}

/// The tables one append writes.
struct Tables<'txn> {
    chunks: redb::Table<'txn, &'static [u8], &'static [u8]>,
    figures: redb::Table<'txn, &'static [u8], &'static [u8]>,
    cells: redb::Table<'txn, &'static [u8], ()>,
}

/// A cell's key: the trip's prefix, then the cell id big-endian.
fn cell_key(prefix: &[u8], cell: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&cell.to_be_bytes());
    key
}

impl Tables<'_> {
    /// Merges `new` (sorted by `ts`, each once) into `trip`'s chunks: the chunks their
    /// times fall in are read, merged (a point already stored wins) and written back, split
    /// into chunks of at most [`MAX_CHUNK_POINTS`], and the trip's figures are corrected
    /// for the points added. Gives how many of `new` were stored already.
    fn merge(&mut self, trip: &str, new: &[RoutePoint]) -> Result<u64, RouteStoreError> {
        let (Some(lo), Some(hi)) = (new.first().map(|p| p.ts), new.last().map(|p| p.ts)) else {
            return Ok(0);
        };
        let prefix = trip_prefix(trip);
        let chunks = &mut self.chunks;
        // The chunk that may hold `lo`, then every chunk starting up to `hi`.
        let first = start_of_chunk_holding(chunks, &prefix, lo)?;
        let mut old_keys = Vec::new();
        let mut stored = Vec::new();
        for entry in chunks
            .range(chunk_key(&prefix, first).as_slice()..=chunk_key(&prefix, hi).as_slice())?
        {
            let (key, bytes) = entry?;
            old_keys.push(key.value().to_vec());
            codec::decode(bytes.value(), &mut stored)?;
        }
        // Merge two sorted runs; on equal `ts` the stored point wins.
        let mut merged = Vec::with_capacity(stored.len() + new.len());
        let mut added = Vec::with_capacity(new.len());
        let (mut i, mut j, mut already) = (0, 0, 0u64);
        while i < stored.len() || j < new.len() {
            match (stored.get(i), new.get(j)) {
                (Some(s), Some(n)) if s.ts == n.ts => {
                    merged.push(*s);
                    already += 1;
                    i += 1;
                    j += 1;
                }
                (Some(s), Some(n)) if s.ts < n.ts => {
                    merged.push(*s);
                    i += 1;
                }
                (Some(s), None) => {
                    merged.push(*s);
                    i += 1;
                }
                (_, Some(n)) => {
                    merged.push(*n);
                    added.push(*n);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        if added.is_empty() {
            return Ok(already);
        }
        let mut figures: TripFigures = match self.figures.get(prefix.as_slice())? {
            Some(bytes) => crate::persist::decode(bytes.value())
                .map_err(|e| RouteStoreError::Figures(e.to_string()))?,
            None => TripFigures::default(),
        };
        // The point after the region: the first of the next chunk, if any point lies past
        // the region (a route growing at its end, the usual case, has none: no lookup).
        let beyond = figures.last.is_some_and(|last| last.ts > hi);
        let next = match hi.checked_add(1).filter(|_| beyond) {
            None => None,
            Some(after) => match chunks
                .range(
                    chunk_key(&prefix, after).as_slice()..=chunk_key(&prefix, i64::MAX).as_slice(),
                )?
                .next()
            {
                Some(entry) => {
                    let (_, bytes) = entry?;
                    let mut points = Vec::new();
                    codec::decode(bytes.value(), &mut points)?;
                    points.first().copied()
                }
                None => None,
            },
        };
        for key in &old_keys {
            chunks.remove(key.as_slice())?;
        }
        let mut bytes = Vec::new();
        for part in merged.chunks(MAX_CHUNK_POINTS) {
            bytes.clear();
            codec::encode(part, &mut bytes);
            chunks.insert(chunk_key(&prefix, part[0].ts).as_slice(), bytes.as_slice())?;
        }

        figures.replace_region(&stored, &merged, next);
        for p in &added {
            figures.count(*p, places::country_at(p.lat, p.lon));
            let cell = places::explored_cell(p.lat, p.lon);
            // Consecutive points mostly share a cell: a cell is looked up once in a row,
            // across appends too (the figures remember the last one).
            if figures.last_cell != cell {
                figures.last_cell = cell;
                if self
                    .cells
                    .insert(cell_key(&prefix, cell).as_slice(), ())?
                    .is_none()
                {
                    figures.count_cell(places::cell_km2(cell));
                }
            }
        }
        let encoded = crate::persist::encode(&figures)
            .map_err(|e| RouteStoreError::Figures(e.to_string()))?;
        self.figures.insert(prefix.as_slice(), encoded.as_slice())?;
        Ok(already)
    }
}
