//! [`RouteStore`]: routes on disk, in `redb`.
//!
//! Why `redb` rather than `fjall` (both embedded, pure Rust, well kept): measured on this
//! workload, through the same keys and chunks, by `cargo bench --bench route_store` (2,000
//! trips, 500 batches of 1,000 points with one in twenty late, medians of 3 rounds, on a
//! 2-core machine):
//!
//! | | redb | fjall | this store (on redb) |
//! |---|---|---|---|
//! | appends (read, merge, write a chunk a point; a commit a batch) | 241,000 points/s | 41,700 points/s | 258,700 points/s |
//! | range reads of whole routes | 87.0 M points/s | 51.4 M points/s | 57.7 M points/s |
//! | whole-trip erasures | 41,000 trips/s | 59,000 trips/s | 23,100 trips/s |
//! | bytes on disk a point, after the appends / after compacting | 18.6 / 5.9 | 267.1 / 151.1 | 18.6 / 6.75 |
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
//! - The cost of `redb`'s copy-on-write is space freed and kept for later commits, and
//!   pages left part full; it is given back by [`RouteStore::compact`], which the engine's
//!   route thread runs when the file has doubled and writes are light (`engine::routes`).
//!
//! Two levels, both in the one file, so that one commit holds them and the applied
//! sequence together:
//! - **Fresh pieces** ([`RouteStore::add_fresh`]): points as they arrive, many trips in one
//!   piece, sorted by trip and written as a run of small blobs ([`super::pieces`]) at the
//!   end of the key space. Writing a piece touches a few thousand keys in order, whatever
//!   the number of trips in it.
//! - **Settled chunks**: each trip's points in chunks of at most
//!   [`MAX_CHUNK_BYTES`](super::codec::MAX_CHUNK_BYTES), keyed by (trip, first `ts`) and
//!   delta-encoded ([`super::codec`]), with the trip's figures and explored cells beside
//!   them. Settling reads the chunks the new points' times fall in, merges (each `ts`
//!   once: the point that reached the store first wins, so applying a change twice is a
//!   no-op), writes them back and corrects the figures ([`merge`]).
//!
//! Why two: a chunk is a B-tree entry, and a batch from a million travellers touches a
//! million of them, each on its own page, each page copied on write. Measured with
//! `cargo run --release -p proxima-engine --example route_pieces` (a million trips, three
//! rounds of pieces of 250,000 random points): stored straight into the chunks, a piece a
//! transaction, 7.4–14.5 µs a point (8 pieces a round); as fresh pieces 0.2–0.4 µs a
//! point, then settled 2.8–4.1 µs a point with 32 pieces a settling (eight points a trip)
//! and 3.5–5.3 µs with 8 (two): settling touches each trip's chunks once for all its
//! points in the pieces ([`RouteStore::settle_some`], in parts of a few thousand trips).
//!
//! A reader of a trip settles that trip first ([`RouteStore::settle_trip`]: its entries in
//! each piece, one blob a piece), so the chunks and figures it reads hold every point the
//! store has. Erasing a trip strips its entries from every piece as well as its chunks.
//!
//! A late point rewrites the chunks from its own to the newest of the points settled with
//! it: cheap for the usual few minutes late, in proportion to the route since then for a
//! point days late.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::codec::{self, CodecError};
use super::keys::{chunk_key, trip_prefix};
use super::{RoutePoint, TripFigures};

mod figures_cache;
mod fresh;
mod merge;
mod rewrite;
#[cfg(test)]
mod tests;

pub use fresh::Settling;
use merge::{Tables, cell_key, start_of_chunk_holding};
pub use rewrite::{REWRITE_STEP, Rewrite};

/// Chunks of points by (trip, first `ts`).
const CHUNKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("chunks");
/// Each trip's [`TripFigures`], by trip prefix.
const FIGURES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("figures");
/// The level-13 cells each trip's points fell in: (trip prefix, cell id big-endian).
const CELLS: TableDefinition<&[u8], ()> = TableDefinition::new("cells");
/// The store's own facts: the last log sequence applied.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const APPLIED_SEQ: &str = "applied_seq";
/// The next fresh piece's number.
const NEXT_PIECE: &str = "next_piece";
/// Fresh pieces' blobs: (piece number big-endian, the blob's first trip prefix).
const FRESH: TableDefinition<&[u8], &[u8]> = TableDefinition::new("fresh");
/// The numbers of the fresh pieces not yet settled.
const PIECES: TableDefinition<u64, ()> = TableDefinition::new("pieces");

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
    /// A narrowed trip's route is part rewritten: a write failed on the way, and the rest
    /// waits for the next trim (or the next start, which replays the log).
    #[error("route store: the trip's route is part rewritten after a failed write")]
    PartRewritten,
    /// A write to the store failed: it is behind the log until the next start, which
    /// replays it, so it must not claim to hold the log (nor the log be trimmed).
    #[error("route store: behind the log after a failed write, until the next start")]
    Behind,
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

/// Where a table's bytes go, from `redb`'s own count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableSpace {
    /// Keys and values as written.
    pub stored: u64,
    /// Branch pages' keys and other metadata.
    pub metadata: u64,
    /// Pages' unused room.
    pub fragmented: u64,
}

/// The store's space, table by table, and the file's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreSpace {
    /// Each table's name and space.
    pub tables: Vec<(&'static str, TableSpace)>,
    /// Pages allocated to anything, times the page size.
    pub allocated: u64,
}

/// The routes of every trip, in one file.
pub struct RouteStore {
    db: Database,
    path: std::path::PathBuf,
    figures_cache: figures_cache::FiguresCache,
}

impl std::fmt::Debug for RouteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteStore").finish_non_exhaustive()
    }
}

/// The memory `redb` may keep pages of the store's file in, by default: 256 MiB, a quarter
/// of `redb`'s own default. Measured with a million travellers on trips
/// (`late-positions`, `trips` and `routes` of `proxima bench`, 30 s each, a fresh server a
/// run, alternating with `redb`'s 1 GiB, 2 rounds of each of two sets): the trips' rate
/// the same (527, 518, 538, 517 batches a second with 1 GiB; 530, 516, 572, 508 with
/// 256 MiB), route reads no different within their spread (879 and 3,250 a second against
/// 2,059 and 2,153), and the server's resident memory right after `trips` 1.19–1.20 GB
/// against 2.09–2.19 GB: the file's pages the cache held are pages the kernel's page cache
/// holds anyway. `--route-cache-mb` sets it.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

impl RouteStore {
    /// Opens the store at `path`, creating it if there is none, with a page cache of
    /// [`DEFAULT_CACHE_BYTES`].
    pub fn open(path: &Path) -> Result<Self, RouteStoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens the store at `path`, creating it if there is none; `redb` keeps at most
    /// `cache_bytes` of the file's pages in memory.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, RouteStoreError> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(CHUNKS)?;
        txn.open_table(FIGURES)?;
        txn.open_table(CELLS)?;
        txn.open_table(META)?;
        txn.open_table(FRESH)?;
        txn.open_table(PIECES)?;
        txn.commit()?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            figures_cache: figures_cache::FiguresCache::default(),
        })
    }

    /// The log sequence up to which every change is applied and durable (0 for none):
    /// replay the log after it.
    pub fn applied_seq(&self) -> Result<u64, RouteStoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(APPLIED_SEQ)?.map_or(0, |v| v.value()))
    }

    /// Settles `points` of their trips (any order; repeats and points already stored are
    /// left as they are) straight into their chunks, in one transaction: for few trips
    /// with many points each (fresh pieces are the way in for many trips with few). A
    /// trip's fresh points must be settled before it ([`RouteStore::settle_trip`]) for
    /// the first to arrive to win. Not yet durable: see [`RouteStore::make_durable`].
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
            let mut tables = Tables::open(&txn)?;
            for group in sorted.chunk_by(|a, b| a.0 == b.0) {
                let trip = group[0].0;
                // As the chunks will hold them, so that the figures count what is stored.
                let mut new: Vec<RoutePoint> =
                    group.iter().map(|(_, p)| codec::as_stored(*p)).collect();
                let reported = new.len();
                new.dedup_by_key(|p| p.ts);
                let stored_already = tables.merge(trip, &new)?;
                counts.added += new.len() as u64 - stored_already;
                counts.already += (reported - new.len()) as u64 + stored_already;
            }
        }
        txn.commit()?;
        self.figures_cache.committed();
        Ok(counts)
    }

    /// Erases every point of `trip`, settled and fresh, its figures and cells; gives how
    /// many points there were (a `ts` both settled and fresh counts twice).
    pub fn erase(&self, trip: &str) -> Result<u64, RouteStoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        let erased = erase_within(&txn, trip)?;
        txn.commit()?;
        self.figures_cache.committed();
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

    /// `trip`'s figures, without reading its route (`None`: no point settled). Of its
    /// settled points: settle it first ([`RouteStore::settle_trip`]) to count them all.
    pub fn figures(&self, trip: &str) -> Result<Option<TripFigures>, RouteStoreError> {
        self.figures_cache.get_or_read(trip, || {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(FIGURES)?;
            let Some(bytes) = table.get(trip_prefix(trip).as_slice())? else {
                return Ok(None);
            };
            crate::persist::decode(bytes.value())
                .map(Some)
                .map_err(|e| RouteStoreError::Figures(e.to_string()))
        })
    }

    /// Whether every settled point of `trip` lies in `from..=to`, as its figures (which
    /// describe exactly the points settled) tell, with no read of the route.
    fn settled_within(&self, trip: &str, from: i64, to: i64) -> Result<bool, RouteStoreError> {
        Ok(self.figures(trip)?.is_none_or(|f| {
            f.first.is_none_or(|p| p.ts >= from) && f.last.is_none_or(|p| p.ts <= to)
        }))
    }

    /// Keeps only `trip`'s settled points with `from <= ts <= to` (a trip whose times were
    /// narrowed), its figures worked out again from them, in one transaction (a reader sees
    /// the route before or after, never without its points). Its fresh points are left as
    /// they are ([`RouteStore::narrow_fresh`] narrows those). It reads and rewrites the
    /// whole route when a point lies outside; the engine does it in steps instead
    /// ([`RouteStore::rewrite`]).
    pub fn retain_window(&self, trip: &str, from: i64, to: i64) -> Result<(), RouteStoreError> {
        match self.rewrite(trip, from, to)? {
            Some(mut rewrite) => rewrite.step(self, usize::MAX).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Gives back the space of rewritten chunks: a commit copies the pages it changes, and
    /// the file keeps the freed ones for later commits, and pages are left part full.
    /// Measured with the `route_pieces` example (25,000 trips walking, 24M points): 14.2
    /// bytes on disk a point after the settlings, 6.9 after compacting with entries packed
    /// into full pages (`Maximum`: slower inserts until pages split again, which is why
    /// the engine runs it rarely: see `engine::routes::compaction`). Needs no other
    /// transaction open (hence `&mut`).
    pub fn compact(&mut self) -> Result<(), RouteStoreError> {
        self.db
            .compact(redb::CompactionMode::Maximum)
            .map_err(|e| RouteStoreError::Store(e.into()))?;
        Ok(())
    }

    /// The length of the store's file, bytes (free pages kept for later commits included).
    pub fn file_bytes(&self) -> std::io::Result<u64> {
        Ok(std::fs::metadata(&self.path)?.len())
    }

    /// Where the file's bytes go: each table's keys and values, metadata and unused room,
    /// and every allocated page (the rest of the file is free pages kept for later
    /// commits, which [`RouteStore::compact`] gives back).
    pub fn space(&self) -> Result<StoreSpace, RouteStoreError> {
        use redb::ReadableTableMetadata;
        fn of(stats: redb::TableStats) -> TableSpace {
            TableSpace {
                stored: stats.stored_bytes(),
                metadata: stats.metadata_bytes(),
                fragmented: stats.fragmented_bytes(),
            }
        }
        let txn = self.db.begin_write()?;
        let tables = vec![
            ("chunks", of(txn.open_table(CHUNKS)?.stats()?)),
            ("figures", of(txn.open_table(FIGURES)?.stats()?)),
            ("cells", of(txn.open_table(CELLS)?.stats()?)),
            ("fresh", of(txn.open_table(FRESH)?.stats()?)),
            ("pieces", of(txn.open_table(PIECES)?.stats()?)),
        ];
        let stats = txn.stats()?;
        txn.abort()?;
        Ok(StoreSpace {
            tables,
            allocated: stats.allocated_pages() * stats.page_size() as u64,
        })
    }

    /// `trip`'s points with `from <= ts <= to`, after `after` (a page's last `ts`), at
    /// most `limit`, in `ts` order; and whether more follow. Its settled points: settle it
    /// first ([`RouteStore::settle_trip`]) to read them all.
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

    /// How many settled points `trip` holds.
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

/// Erases every point of `trip` within `txn`, settled and fresh, its figures and cells;
/// gives how many points there were (a `ts` both settled and fresh counts twice).
fn erase_within(txn: &redb::WriteTransaction, trip: &str) -> Result<u64, RouteStoreError> {
    let erased = erase_settled(txn, trip)?;
    Ok(erased + fresh::strip(txn, &trip_prefix(trip))?)
}

/// Erases `trip`'s settled points within `txn`, its figures and cells; gives how many
/// points there were.
fn erase_settled(txn: &redb::WriteTransaction, trip: &str) -> Result<u64, RouteStoreError> {
    let prefix = trip_prefix(trip);
    let (start, end) = (chunk_key(&prefix, i64::MIN), chunk_key(&prefix, i64::MAX));
    let mut erased = 0u64;
    let mut chunks = txn.open_table(CHUNKS)?;
    let mut points = Vec::new();
    chunks.retain_in(start.as_slice()..=end.as_slice(), |_, bytes| {
        points.clear();
        if codec::decode(bytes, &mut points).is_ok() {
            erased += points.len() as u64;
        }
        false
    })?;
    drop(chunks);
    txn.open_table(FIGURES)?.remove(prefix.as_slice())?;
    let (first_cell, last_cell) = (cell_key(&prefix, 0), cell_key(&prefix, u64::MAX));
    txn.open_table(CELLS)?
        .retain_in(first_cell.as_slice()..=last_cell.as_slice(), |_, ()| false)?;
    Ok(erased)
}
