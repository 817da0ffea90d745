//! The engine on disk: recovery at start, snapshots, and a clean close.
//!
//! A data directory holds `LOCK` (held for the process's lifetime, so two servers never
//! share one), `wal/` (the log, see [`crate::persist::wal`]) and `snapshots/`. Recovery loads
//! the newest valid snapshot (falling back to the one before if the newest is damaged), then
//! replays the log after it. Two snapshots are kept, and the log from the older one on, so
//! that the fallback loses nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Engine, EngineError, Mutation};
use crate::fences::Fence;
use crate::persist::snapshot::{self, SnapshotWriter};
use crate::persist::wal::{self, Wal, WalOptions};
use crate::persist::{BoxError, PersistError, decode};
use crate::pois::{Poi, PoiIndex};
use crate::travellers::TravellerRecord;

/// POIs copied per read-lock hold while writing a snapshot (about a millisecond's work).
const SNAPSHOT_CHUNK: usize = 4_096;
/// Snapshots kept; the log is kept from the oldest of them on.
const SNAPSHOTS_KEPT: usize = 2;

/// What a snapshot holds, item by item: POIs, then travellers, then fences.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum SnapshotItem {
    Poi(Poi),
    Traveller(TravellerRecord),
    Fence(Fence),
}

/// The engine's open data directory.
pub(super) struct Storage {
    /// The local log; `None` on a cluster node, whose log is the cluster's stream.
    pub(super) wal: Option<Wal>,
    dir: PathBuf,
    _lock: std::fs::File,
}

/// What recovery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The snapshot loaded, if any.
    pub snapshot: Option<PathBuf>,
    /// Log records replayed after it.
    pub replayed: u64,
    /// Bytes of a torn last log record that were cut off.
    pub torn_bytes: u64,
    /// Whether the directory held no state at all.
    pub fresh: bool,
    /// How long recovery took.
    pub millis: u64,
}

/// A snapshot just written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Where.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// How long it took to write.
    pub millis: u64,
    /// The log position it covers.
    pub seq: u64,
    /// When it finished, Unix ms.
    pub at_ms: i64,
}

impl Engine {
    /// Loads the state kept in `dir` (creating the directory if needed) and attaches its log,
    /// so that every later change is logged. Call once, before serving writes.
    pub fn recover(&self, dir: &Path, options: WalOptions) -> Result<RecoveryReport, EngineError> {
        let started = Instant::now();
        fs_err::create_dir_all(dir).map_err(PersistError::from)?;
        let lock = lock_dir(dir)?;
        let wal_dir = dir.join("wal");
        let snapshot_dir = dir.join("snapshots");

        // Fences are restored and the log replayed without judging anyone: who is inside
        // each fence is worked out once, from the state as recovered.
        self.fences.set_quiet(true);
        let loaded = self.load_newest_snapshot(&snapshot_dir)?;
        let after = loaded.as_ref().map_or(0, |(seq, _)| *seq);
        let had_log = !wal::list_segments(&wal_dir)?.is_empty();
        let mut progress = Progress::new();
        let replayed = wal::replay(&wal_dir, after, |seq, body| -> Result<(), BoxError> {
            let mutation = decode::<Mutation>(body)?;
            mutation.check_ids()?;
            mutation.redo(self)?;
            progress.tick(seq);
            Ok(())
        })?;
        if replayed.torn_bytes > 0 {
            tracing::warn!(
                bytes = replayed.torn_bytes,
                "dropped a torn last log record (a crash mid-write)"
            );
        }
        self.fences.recompute(&self.travellers, self.now_ms());
        self.fences.set_quiet(false);
        let wal = Wal::open(&wal_dir, replayed.last_seq + 1, options)?;
        let fresh = loaded.is_none() && !had_log;
        let _ = self.storage.set(Storage {
            wal: Some(wal),
            dir: dir.to_path_buf(),
            _lock: lock,
        });
        let report = RecoveryReport {
            snapshot: loaded.map(|(_, path)| path),
            replayed: replayed.records,
            torn_bytes: replayed.torn_bytes,
            fresh,
            millis: started.elapsed().as_millis() as u64,
        };
        tracing::info!(
            snapshot = ?report.snapshot,
            replayed = report.replayed,
            pois = self.poi_count(),
            travellers = self.traveller_count(),
            millis = report.millis,
            "recovered"
        );
        Ok(report)
    }

    /// Opens `dir` as a cluster node's: its newest valid snapshot (if any) is loaded and
    /// later snapshots are written there, but no log is kept (the cluster's stream is the
    /// log). Gives the stream sequence the loaded snapshot covers (0: none), from which
    /// the node reads the stream on.
    pub fn open_cluster_dir(&self, dir: &Path) -> Result<u64, EngineError> {
        fs_err::create_dir_all(dir).map_err(PersistError::from)?;
        let lock = lock_dir(dir)?;
        self.fences.set_quiet(true);
        let loaded = self.load_newest_snapshot(&dir.join("snapshots"));
        self.fences.recompute(&self.travellers, self.now_ms());
        self.fences.set_quiet(false);
        let seq = loaded?.map_or(0, |(seq, _)| seq);
        self.stream_applied
            .store(seq, std::sync::atomic::Ordering::Release);
        let _ = self.storage.set(Storage {
            wal: None,
            dir: dir.to_path_buf(),
            _lock: lock,
        });
        tracing::info!(
            seq,
            pois = self.poi_count(),
            travellers = self.traveller_count(),
            "cluster node: local state loaded"
        );
        Ok(seq)
    }

    /// Loads the newest snapshot of `dir` that is not damaged (falling back to older ones).
    fn load_newest_snapshot(&self, dir: &Path) -> Result<Option<(u64, PathBuf)>, EngineError> {
        for (seq, path) in snapshot::list(dir)? {
            match self.load_snapshot(&path) {
                Ok(()) => return Ok(Some((seq, path))),
                Err(EngineError::Storage(damage)) if damage.is_damage() => {
                    tracing::warn!(error = %damage, "snapshot damaged; trying the previous one");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Loads a snapshot. The POI index is built on its own thread as the POIs are read, so
    /// that building it (most of the time on 10M POIs) overlaps with decoding the rest of
    /// the file and restoring the travellers, which follow the POIs in a snapshot.
    fn load_snapshot(&self, path: &Path) -> Result<(), EngineError> {
        const BATCH: usize = 4096;
        let (result, built) = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Poi>>(8);
            let builder = scope.spawn(move || PoiIndex::from_pois(rx.into_iter().flatten()));
            let mut batch = Vec::with_capacity(BATCH);
            let mut tx = Some(tx);
            // Items are applied as they are read; on damage the partial state is discarded
            // below.
            let result = snapshot::read(path, |bytes| -> Result<(), BoxError> {
                match decode::<SnapshotItem>(bytes)? {
                    SnapshotItem::Poi(poi) => {
                        batch.push(poi);
                        if batch.len() == BATCH
                            && let Some(tx) = &tx
                        {
                            let _ =
                                tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                        }
                    }
                    SnapshotItem::Traveller(record) => {
                        record.check_ids()?;
                        // The POIs are all read: let the builder finish while travellers load.
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(std::mem::take(&mut batch));
                        }
                        self.travellers.restore(record);
                    }
                    SnapshotItem::Fence(fence) => {
                        self.fences.put(fence, &self.travellers, self.now_ms())?;
                    }
                }
                Ok(())
            });
            if let Some(tx) = tx.take() {
                let _ = tx.send(std::mem::take(&mut batch));
            }
            let built = builder
                .join()
                .expect("building the POI index does not panic");
            (result, built)
        });
        match result {
            Ok(_) => {
                *self.pois.write() = built?;
                Ok(())
            }
            Err(e) => {
                self.travellers.clear();
                self.fences.clear();
                Err(e.into())
            }
        }
    }

    /// Writes a snapshot of the whole state now. Queries and writes go on meanwhile: the
    /// locks are held only to read the log position and, per chunk, to copy POIs.
    pub fn snapshot(&self) -> Result<SnapshotInfo, EngineError> {
        let storage = self.storage.get().ok_or(EngineError::NotPersistent)?;
        let Some(_one_at_a_time) = self.snapshotting.try_lock() else {
            return Err(EngineError::SnapshotBusy);
        };
        let started = Instant::now();
        let seq = {
            let _writer = self.writer.lock();
            let _order = self.traveller_order.write();
            match &storage.wal {
                // Everything logged so far is applied; later records go to a new segment.
                Some(wal) => {
                    let seq = wal.last_seq();
                    let _ = wal.rotate();
                    seq
                }
                // A cluster node: the stream applied so far (applied under these locks).
                None => self
                    .stream_applied
                    .load(std::sync::atomic::Ordering::Acquire),
            }
        };
        let snapshot_dir = storage.dir.join("snapshots");
        let mut writer = SnapshotWriter::create(&snapshot_dir, seq)?;
        let mut next = 0;
        loop {
            let chunk = self.pois.read().chunk_from(&mut next, SNAPSHOT_CHUNK);
            if chunk.is_empty() {
                break;
            }
            for poi in chunk {
                writer.item(&SnapshotItem::Poi(poi))?;
            }
        }
        self.travellers
            .export(|record| writer.item(&SnapshotItem::Traveller(record)))?;
        self.fences
            .export(|fence| writer.item(&SnapshotItem::Fence(fence.clone())))?;
        let file = writer.finish()?;

        // Keep the newest two snapshots, and the log from the older one on.
        let snapshots = snapshot::list(&snapshot_dir)?;
        for (_, old) in snapshots.iter().skip(SNAPSHOTS_KEPT) {
            fs_err::remove_file(old).map_err(PersistError::from)?;
        }
        let keep_from = snapshots.get(SNAPSHOTS_KEPT - 1).map_or(seq, |(s, _)| *s);
        if let Some(wal) = &storage.wal {
            wal.remove_segments_before(keep_from + 1)?;
        }

        let info = SnapshotInfo {
            path: file.path,
            bytes: file.bytes,
            millis: started.elapsed().as_millis() as u64,
            seq,
            at_ms: self.now_ms(),
        };
        tracing::info!(path = %info.path.display(), bytes = info.bytes, millis = info.millis, "snapshot written");
        *self.last_snapshot.lock() = Some(info.clone());
        Ok(info)
    }

    /// The last snapshot this process wrote.
    pub fn last_snapshot(&self) -> Option<SnapshotInfo> {
        self.last_snapshot.lock().clone()
    }

    /// Log counters, if a data directory is attached.
    pub fn wal_stats(&self) -> Option<crate::persist::wal::WalStats> {
        self.wal().map(Wal::stats)
    }

    /// Writes a final snapshot and closes the log (on shutdown).
    pub fn close(&self) -> Result<(), EngineError> {
        let Some(storage) = self.storage.get() else {
            return Ok(());
        };
        let snapshot = self.snapshot();
        if let Some(wal) = &storage.wal {
            wal.close()?;
        }
        snapshot.map(|_| ())
    }

    /// A SHA-256 of the whole state, in hex: every POI, traveller and fence, sorted by
    /// id, as snapshots encode them. Two nodes of a cluster that applied the same stream
    /// prefix have equal digests (travellers past their TTL are swept by each node's own
    /// clock, so compare them when none is near its expiry). A full scan: for tests and
    /// operators, not for every request.
    pub fn state_digest(&self) -> Result<String, EngineError> {
        use sha2::Digest as _;
        let (pois, travellers) = self.dump();
        let mut fences = self.dump_fences();
        fences.sort_by(|a, b| a.id.cmp(&b.id));
        let mut hasher = sha2::Sha256::new();
        for poi in &pois {
            hasher.update(crate::persist::encode(poi)?);
        }
        hasher.update(b"travellers");
        for traveller in &travellers {
            hasher.update(crate::persist::encode(traveller)?);
        }
        hasher.update(b"fences");
        for fence in &fences {
            hasher.update(crate::persist::encode(fence)?);
        }
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// Every POI and traveller, sorted by id: for tests comparing whole states.
    #[doc(hidden)]
    pub fn dump(&self) -> (Vec<Poi>, Vec<TravellerRecord>) {
        let mut pois: Vec<Poi> = self.pois.read().iter().collect();
        pois.sort_by(|a, b| a.id.cmp(&b.id));
        let mut travellers = Vec::new();
        let _ = self.travellers.export(|r| {
            travellers.push(r);
            Ok::<(), ()>(())
        });
        travellers.sort_by(|a, b| a.id.cmp(&b.id));
        (pois, travellers)
    }
}

/// Takes the data directory's lock file, so a second process on the same directory stops
/// with a clear error instead of corrupting the log.
fn lock_dir(dir: &Path) -> Result<std::fs::File, EngineError> {
    let path = dir.join("LOCK");
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(PersistError::from)?;
    let file: std::fs::File = file.into();
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(EngineError::DataDirLocked(dir.to_path_buf()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(PersistError::Io(e).into()),
    }
}

/// Logs recovery progress every few seconds.
struct Progress {
    last: Instant,
    records: u64,
}

impl Progress {
    fn new() -> Self {
        Self {
            last: Instant::now(),
            records: 0,
        }
    }

    fn tick(&mut self, seq: u64) {
        self.records += 1;
        if self.last.elapsed() >= Duration::from_secs(5) {
            tracing::info!(records = self.records, seq, "replaying the log");
            self.last = Instant::now();
        }
    }
}
