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
use crate::devices::Device;
use crate::fences::{Fence, LegacyFence};
use crate::persist::snapshot::{self, SnapshotWriter};
use crate::persist::wal::{self, Wal, WalOptions};
use crate::persist::{BoxError, PersistError, decode};
use crate::pois::{Poi, PoiIndex};
use crate::travellers::{LegacyTravellerRecord, TravellerRecord};
use crate::trips::TripRecord;
use crate::zones::PrivacyZone;

/// POIs copied per read-lock hold while writing a snapshot (about a millisecond's work).
const SNAPSHOT_CHUNK: usize = 4_096;
/// Snapshots kept; the log is kept from the oldest of them on.
const SNAPSHOTS_KEPT: usize = 2;

/// What a snapshot holds, item by item: POIs, then travellers, then fences, then the
/// interval of event numbers (a cluster's), then trips, devices and privacy zones. The variants are the format: new ones are
/// appended, and the first three keep format version 1's layout so that its snapshots read.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum SnapshotItem {
    Poi(Poi),
    /// Format version 1: a traveller without viewers' thresholds.
    LegacyTraveller(LegacyTravellerRecord),
    /// Format version 1: a fence without an owner (the open owner's).
    LegacyFence(LegacyFence),
    Traveller(TravellerRecord),
    Fence(Fence),
    EventInterval(u64),
    /// Format version 3: a trip with its followers and links.
    Trip(TripRecord),
    /// Format version 4: a device that reports a traveller's positions (its token's
    /// hash).
    Device(Device),
    /// Format version 5: a traveller's privacy zone, with its shroud's secret.
    PrivacyZone(PrivacyZone),
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
    /// so that every later change is logged. Call once, before serving writes. A directory
    /// whose snapshots are all unreadable is refused (see [`Engine::recover_with`]).
    pub fn recover(&self, dir: &Path, options: WalOptions) -> Result<RecoveryReport, EngineError> {
        self.recover_with(dir, options, DamagedState::Refuse)
    }

    /// [`Engine::recover`], saying what to do with a directory that holds snapshots of which
    /// none can be read and a log that does not hold the state from its first record: refuse
    /// to start, naming the files, or move them (and the log) aside and start empty. Such a
    /// directory never counts as fresh: the bundled sample is not loaded over it.
    pub fn recover_with(
        &self,
        dir: &Path,
        options: WalOptions,
        damaged: DamagedState,
    ) -> Result<RecoveryReport, EngineError> {
        let started = Instant::now();
        fs_err::create_dir_all(dir).map_err(PersistError::from)?;
        let lock = lock_dir(dir)?;
        let wal_dir = dir.join("wal");
        let snapshot_dir = dir.join("snapshots");
        let routes_hold = self.routes.open(&dir.join(super::routes::ROUTES_FILE))?;

        // Fences are restored and the log replayed without judging anyone: who is inside
        // each fence is worked out once, from the state as recovered.
        self.fences.set_quiet(true);
        let snapshots = snapshot::list(&snapshot_dir)?;
        let mut unreadable: Vec<PathBuf> = Vec::new();
        let (loaded, replayed, had_log) = loop {
            let loaded = self.load_newest_snapshot(&snapshots, &mut unreadable)?;
            let segments = wal::list_segments(&wal_dir)?;
            if loaded.is_none() && !unreadable.is_empty() {
                // Without a snapshot only a log from its first record holds the whole state.
                let whole_log = segments.first().is_some_and(|(first, _)| *first <= 1);
                if !whole_log {
                    match damaged {
                        DamagedState::Refuse => {
                            return Err(EngineError::UnreadableSnapshots {
                                dir: snapshot_dir,
                                files: unreadable,
                            });
                        }
                        DamagedState::MoveAsideAndStartEmpty => {
                            move_aside(dir, &unreadable, &segments, self.now_ms())?;
                        }
                    }
                }
            }
            let had_log = !wal::list_segments(&wal_dir)?.is_empty();
            let after = loaded.as_ref().map_or(0, |(seq, _)| *seq);
            let mut progress = Progress::new();
            let replayed = wal::replay(&wal_dir, after, |seq, body| -> Result<(), BoxError> {
                let mutation = decode::<Mutation>(body)?;
                mutation.check_ids()?;
                // The route store already holds what it made durable: only the tail is
                // stored again.
                self.routes.set_skip(seq <= routes_hold);
                mutation.redo(self)?;
                progress.tick(seq);
                Ok(())
            });
            self.routes.set_skip(false);
            let replayed = replayed?;
            match &loaded {
                // A snapshot past the log's end claims records that were never written (its
                // header is damaged, checksums and all): the log would be reopened after
                // them, with a gap. It counts as damaged; try the one before.
                Some((seq, path)) if replayed.end.is_some_and(|end| end < *seq) => {
                    tracing::warn!(
                        path = %path.display(),
                        seq,
                        log_end = ?replayed.end,
                        "snapshot claims log records that were never written; treating it as damaged"
                    );
                    unreadable.push(path.clone());
                    self.forget_state();
                }
                _ => break (loaded, replayed, had_log),
            }
        };
        if replayed.torn_bytes > 0 {
            tracing::warn!(
                bytes = replayed.torn_bytes,
                "dropped a torn last log record (a crash mid-write)"
            );
        }
        self.refresh_all_trip_shares(self.now_ms());
        self.fences.recompute(&self.travellers, self.now_ms());
        self.fences.set_quiet(false);
        let next_seq = replayed
            .last_seq
            .checked_add(1)
            .ok_or_else(|| PersistError::Corrupt {
                path: wal_dir.clone(),
                offset: 0,
                reason: format!(
                    "the log ends at record {}, the last number there is",
                    replayed.last_seq
                ),
            })?;
        let wal = Wal::open(&wal_dir, next_seq, options)?;
        let fresh = loaded.is_none() && !had_log && unreadable.is_empty();
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
        self.routes.open(&dir.join(super::routes::ROUTES_FILE))?;
        self.fences.set_quiet(true);
        let snapshots = snapshot::list(&dir.join("snapshots"))?;
        let loaded = self.load_newest_snapshot(&snapshots, &mut Vec::new());
        self.refresh_all_trip_shares(self.now_ms());
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

    /// Loads the newest of `snapshots` that is not damaged and not in `unreadable`, falling
    /// back to older ones; the damaged ones it meets are added to `unreadable`.
    fn load_newest_snapshot(
        &self,
        snapshots: &[(u64, PathBuf)],
        unreadable: &mut Vec<PathBuf>,
    ) -> Result<Option<(u64, PathBuf)>, EngineError> {
        for (seq, path) in snapshots {
            if unreadable.contains(path) {
                continue;
            }
            match self.load_snapshot(path) {
                Ok(()) => return Ok(Some((*seq, path.clone()))),
                Err(EngineError::Storage(damage)) if damage.is_damage() => {
                    tracing::warn!(error = %damage, "snapshot damaged; trying the previous one");
                    unreadable.push(path.clone());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Forgets everything loaded (a recovery that found its snapshot impossible starts
    /// again from an older one).
    fn forget_state(&self) {
        *self.pois.write() = PoiIndex::new();
        self.travellers.clear();
        self.fences.clear();
        self.trips.clear();
        self.devices.clear();
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
                    SnapshotItem::LegacyTraveller(record) => {
                        let record = TravellerRecord::from(record);
                        record.check_ids()?;
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(std::mem::take(&mut batch));
                        }
                        self.travellers.restore(record);
                    }
                    SnapshotItem::Fence(fence) => {
                        self.fences.put(fence, &self.travellers, self.now_ms());
                    }
                    SnapshotItem::LegacyFence(fence) => {
                        let fence = Fence::try_from(fence)?;
                        self.fences.put(fence, &self.travellers, self.now_ms());
                    }
                    SnapshotItem::EventInterval(interval) => {
                        self.events().restore_interval(interval);
                    }
                    SnapshotItem::Trip(record) => {
                        self.trips.restore(record, self.now_ms());
                    }
                    SnapshotItem::Device(device) => {
                        self.devices.add(device);
                    }
                    SnapshotItem::PrivacyZone(zone) => {
                        self.restore_privacy_zone(zone);
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
                self.trips.clear();
                self.devices.clear();
                self.zones.clear();
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
        let (seq, interval) = {
            let _writer = self.writer.lock();
            let _order = self.traveller_order.write();
            let interval = self.events().interval();
            let seq = match &storage.wal {
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
            };
            (seq, interval)
        };
        // Every change up to `seq` is applied: the route store holds them once durable, so
        // a recovery from this snapshot replays only later route points, and the log below
        // it may go.
        self.routes.make_durable(seq)?;
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
        writer.item(&SnapshotItem::EventInterval(interval))?;
        self.trips
            .export(|trip| writer.item(&SnapshotItem::Trip(trip.clone())))?;
        for device in self.devices.export() {
            writer.item(&SnapshotItem::Device(device))?;
        }
        for zone in self.export_privacy_zones() {
            writer.item(&SnapshotItem::PrivacyZone(zone))?;
        }
        let file = writer.finish()?;

        // Keep the newest two snapshots, and the log from the older one on.
        let snapshots = snapshot::list(&snapshot_dir)?;
        for (_, old) in snapshots.iter().skip(SNAPSHOTS_KEPT) {
            fs_err::remove_file(old).map_err(PersistError::from)?;
        }
        let keep_from = snapshots.get(SNAPSHOTS_KEPT - 1).map_or(seq, |(s, _)| *s);
        if let Some(wal) = &storage.wal {
            wal.remove_segments_before(keep_from.saturating_add(1))?;
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
        let mut trips = Vec::new();
        let _ = self.trips.export(|t| {
            trips.push(t.clone());
            Ok::<(), ()>(())
        });
        trips.sort_by(|a, b| a.trip.id().cmp(b.trip.id()));
        hasher.update(b"trips");
        for trip in &trips {
            hasher.update(crate::persist::encode(trip)?);
        }
        hasher.update(b"devices");
        for device in self.devices.export() {
            hasher.update(crate::persist::encode(&device)?);
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

/// What recovery does with a data directory whose snapshots are all unreadable and whose
/// log does not start at its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DamagedState {
    /// Refuse to start, naming the files (`proxima serve`'s default).
    #[default]
    Refuse,
    /// Move the snapshots and the log into `damaged-<ms>/` in the data directory, never
    /// deleting them, and start empty (`--start-empty-if-damaged`).
    MoveAsideAndStartEmpty,
}

/// Moves unreadable snapshots and every log segment into `<dir>/damaged-<now_ms>/`.
fn move_aside(
    dir: &Path,
    snapshots: &[PathBuf],
    segments: &[(u64, PathBuf)],
    now_ms: i64,
) -> Result<(), EngineError> {
    let aside = dir.join(format!("damaged-{now_ms}"));
    fs_err::create_dir_all(&aside).map_err(PersistError::from)?;
    for path in snapshots.iter().chain(segments.iter().map(|(_, p)| p)) {
        if let Some(name) = path.file_name() {
            fs_err::rename(path, aside.join(name)).map_err(PersistError::from)?;
        }
    }
    crate::persist::sync_dir(dir)?;
    tracing::warn!(
        to = %aside.display(),
        snapshots = snapshots.len(),
        segments = segments.len(),
        "every snapshot was unreadable: moved them and the log aside, starting empty"
    );
    Ok(())
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
