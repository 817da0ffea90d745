//! The engine: Proxima's one state and the only way to change it.
//!
//! It owns the [`PoiIndex`] and the [`TravellerIndex`], the clock, the write-ahead log and
//! the locking policy. Every change is a [`Mutation`]: it is checked, written to the log,
//! applied to memory, and acknowledged once the log says it is durable (the returned
//! [`Written`] carries its outcome and the log's ticket). Recovery replays the log through
//! the same `apply`.
//!
//! Locking policy, chosen so that the log's order is the order changes were applied:
//! - **POI writes** take the writer mutex (one at a time, as Meilisearch's single writer),
//!   then log and apply. Readers share the index's read lock and only ever wait for a short
//!   write: an upsert or delete holds the write lock for microseconds, an upsert import of
//!   up to 16,384 POIs (and an eighth of the index) for some milliseconds; a larger import
//!   is built *beside* the live index (readers keep reading it) and swapped in with a
//!   pointer-sized move, the old index freed after the lock is released. When single
//!   writes have piled up in the index's delta, its packed trees are rebuilt the same way,
//!   under the read lock, and swapped in under the write lock. A query sees the state
//!   before or after a write, never half of it.
//! - **Position batches** take the traveller-order lock *shared*: they commute (the newest
//!   `ts` wins in any order), so many connections log and apply them in parallel, and the
//!   sharded traveller index serializes updates per traveller.
//! - **Sharing changes and traveller deletes** take it *exclusive*, so a position report
//!   and a delete of the same traveller are applied in the order they are logged.
//! - **Snapshots** take both briefly to read the log position, then copy the state a piece
//!   at a time while writes continue; replaying the log from that position (every mutation
//!   is idempotent given the log order) makes the copy exact.
//!
//! The engine knows nothing of HTTP; the server calls these methods.

mod apply;
#[cfg(test)]
mod cluster_events_tests;
mod devices;
#[cfg(test)]
mod devices_tests;
mod durability;
#[cfg(test)]
mod fence_model_tests;
mod fences;
mod heatmap;
mod judging;
#[cfg(test)]
mod judging_tests;
mod log;
mod mutation;
mod outcome;
mod pois;
mod routes;
mod shown_figures;
mod track_import;
mod travellers;
mod trip_reads;
mod trips;
#[cfg(test)]
mod trips_tests;
mod zones;
#[cfg(test)]
mod zones_tests;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

pub use durability::{DamagedState, RecoveryReport, SnapshotInfo};
pub use fences::SubscribeFailure;
pub use heatmap::{HeatCell, HeatmapError, HeatmapLayer, MAX_HEATMAP_CELLS, MAX_OUTLINED_CELLS};
pub use log::{Appended, ChangeLog, ClusterError, PendingApply};
pub use mutation::{
    CreateLink, DeleteFence, DeleteFollower, DeleteLegacyFence, DeletePoi, DeleteTraveller,
    DeleteTrip, ExpireFences, ImportMode, ImportPois, Mutation, Outcome, Positions, PutFence,
    PutFollower, PutLegacyFence, PutTrip, RevokeLink, SetSharing, TickTrips, UpsertPoi,
};
pub use outcome::{ImportSummary, PositionCounts, Removed, Stored, Written};
pub use pois::{NearbyPage, Page, WithinPage};
pub use routes::{MAX_FRESH_PIECES, ROUTES_FILE, RouteConfig};
pub use track_import::{TRACK_CHUNK_POINTS, TrackChunk};
pub use travellers::TravellerAreaPage;
pub use trip_reads::{MAX_WHOLE_ROUTE_POINTS, StayAt, StayPoi};
pub use trips::RouteBacklog;

use self::mutation::{Change, Logged, Order, Reported};
use crate::clock::Clock;
use crate::events::{EventConfig, EventLog};
use crate::fences::{FenceLimitError, FenceQuotas, Fences, FencesConfig};
use crate::import::RecordError;
use crate::persist::PersistError;
use crate::persist::wal::{Ticket, Wal};
use crate::pois::{CategoryLimitError, CursorError, CursorKey, PoiIndex};
use crate::travellers::{TravellerConfig, TravellerIndex};

/// Encodes `import` as stream records of at most `max` bytes, in order, halving any part too
/// large; a single POI too large is left to the shared log to refuse.
fn encode_in_parts(
    import: ImportPois,
    max: usize,
    records: &mut Vec<Vec<u8>>,
) -> Result<(), EngineError> {
    let record = crate::persist::encode(&Logged(&import))?;
    if record.len() <= max || import.pois.len() <= 1 {
        records.push(record);
        return Ok(());
    }
    let mut first = import.pois;
    let second = first.split_off(first.len() / 2);
    encode_in_parts(
        ImportPois {
            mode: import.mode,
            pois: first,
        },
        max,
        records,
    )?;
    encode_in_parts(
        ImportPois {
            mode: ImportMode::Upsert,
            pois: second,
        },
        max,
        records,
    )
}

/// Why the engine refused a request or failed. A refused request changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The write would create too many distinct categories.
    #[error(transparent)]
    CategoryLimit(#[from] CategoryLimitError),
    /// A page cursor did not verify.
    #[error(transparent)]
    Cursor(#[from] CursorError),
    /// The write would pass a limit on fences.
    #[error(transparent)]
    FenceLimit(#[from] FenceLimitError),
    /// A traveller named by the change does not exist, or its viewer may not see it: the
    /// same answer either way.
    #[error("{field}: no traveller {id:?} visible to this viewer")]
    NotVisible {
        /// The member naming it.
        field: &'static str,
        /// Its id.
        id: String,
    },
    /// A heatmap request was refused.
    #[error(transparent)]
    Heatmap(#[from] HeatmapError),
    /// A change to trips was refused.
    #[error(transparent)]
    Trip(#[from] crate::trips::TripError),
    /// A change to devices was refused.
    #[error(transparent)]
    Device(#[from] crate::devices::DeviceError),
    /// A change to privacy zones was refused.
    #[error(transparent)]
    Zone(#[from] crate::zones::ZoneError),
    /// The route store failed.
    #[error(transparent)]
    Routes(#[from] crate::routes::RouteStoreError),
    /// A whole-route read would take more points than it may.
    #[error(
        "the route holds more than {max} points in this window; narrow it with from and to, or read it in pages without simplify_m"
    )]
    RouteTooLong {
        /// The most points a whole-route read takes.
        max: usize,
    },
    /// The route store is behind its writes, so a write holding trip points was refused
    /// before it was logged (nothing of it applied); retrying after a moment succeeds.
    #[error(
        "the route store is behind its writes: positions on trips are refused until it catches up; nothing of this request was applied"
    )]
    RoutesBehind,
    /// A strict import found bad records, so none was imported.
    #[error("strict import refused: {skipped} bad record(s), nothing was imported; the first, at {}: {}", first.location, first.reason)]
    StrictImport {
        /// How many records were bad.
        skipped: u64,
        /// The first bad record.
        first: RecordError,
        /// The first bad records, at most [`crate::import::MAX_LISTED_ERRORS`].
        errors: Vec<RecordError>,
    },
    /// Storage failed: the log or a snapshot could not be written or read.
    #[error("storage: {0}")]
    Storage(#[from] PersistError),
    /// Another snapshot is being written.
    #[error("a snapshot is already being written")]
    SnapshotBusy,
    /// The cluster's stream could not take or apply the change (NATS unreachable, no
    /// acknowledgement in time, or this node not caught up in time); the change may or may
    /// not have been made.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A record read from the cluster's stream could not be applied.
    #[error("{0}")]
    Replicated(String),
    /// A cluster node still catching up with the stream has not started judging fences.
    #[error(
        "this node is catching up with the cluster's stream and does not judge fences yet; retry, or ask another node"
    )]
    FencesCatchingUp,
    /// The engine has no data directory (an in-memory engine).
    #[error("this engine keeps no data directory")]
    NotPersistent,
    /// Another process holds the data directory.
    #[error("data dir {0} is in use by another Proxima process")]
    DataDirLocked(PathBuf),
    /// The data directory holds snapshots, none of them readable, and a log that does not
    /// hold the state from its first record: starting would lose the state they held.
    #[error(
        "every snapshot in {} is unreadable ({}) and the log does not hold the state from its first record; refusing to start over them: restore a backup, or pass --start-empty-if-damaged to move them aside and start empty",
        dir.display(),
        files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    UnreadableSnapshots {
        /// The snapshots folder.
        dir: PathBuf,
        /// The snapshots that could not be read.
        files: Vec<PathBuf>,
    },
}

/// How an engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Signs page cursors.
    pub cursor_key: CursorKey,
    /// "Now", for ages and receive times.
    pub clock: Arc<dyn Clock>,
    /// Trail length and time-to-live of travellers.
    pub travellers: TravellerConfig,
    /// Limits of fences and of their events.
    pub live: LiveConfig,
    /// How the route store is set up.
    pub routes: RouteConfig,
}

/// Limits of fences and of their events.
#[derive(Debug, Clone, Copy)]
pub struct LiveConfig {
    /// The limits on fences, in all and per owner.
    pub quotas: FenceQuotas,
    /// The event log's retention and its subscribers' limits.
    pub events: EventConfig,
}

impl Default for LiveConfig {
    /// As `proxima serve` has them by default.
    fn default() -> Self {
        Self {
            quotas: FenceQuotas::default(),
            events: EventConfig {
                retention_ms: 3_600_000,
                max_retained: 1_000_000,
                subscriber_buffer: 1_024,
                max_subscribers: 10_000,
            },
        }
    }
}

/// Proxima's state.
pub struct Engine {
    pois: RwLock<PoiIndex>,
    writer: Mutex<()>,
    travellers: TravellerIndex,
    traveller_order: RwLock<()>,
    fences: Fences,
    cursor_key: CursorKey,
    clock: Arc<dyn Clock>,
    storage: OnceLock<durability::Storage>,
    /// Held while a snapshot is written: one at a time.
    snapshotting: Mutex<()>,
    /// The last snapshot written; its own lock, so readers never wait for a snapshot.
    last_snapshot: Mutex<Option<SnapshotInfo>>,
    /// In a cluster, the stream every change goes through instead of the local log.
    shared_log: OnceLock<Box<dyn ChangeLog>>,
    /// In a cluster, the last stream sequence applied; set under both order locks, so that
    /// a snapshot taken under them covers exactly the stream up to it.
    stream_applied: std::sync::atomic::AtomicU64,
    /// In a cluster, caught up and waiting for the next clock tick to start judging fences.
    fences_wait_for_tick: std::sync::atomic::AtomicBool,
    /// Travellers changed and not yet judged against fences and live maps.
    judging: judging::Judging,
    /// Every trip, its followers and links.
    trips: crate::trips::Trips,
    /// The devices that report travellers' positions.
    devices: crate::devices::Devices,
    /// Travellers' privacy zones.
    zones: crate::zones::PrivacyZones,
    /// The routes on disk, with who is watching them.
    routes: routes::Routes,
    /// Trips' figures as readers who may not see all of a route see them, kept between
    /// reads.
    shown_figures: shown_figures::ShownFigures,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pois", &self.poi_count())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An empty in-memory engine; [`Engine::recover`] attaches a data directory.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            pois: RwLock::new(PoiIndex::new()),
            writer: Mutex::new(()),
            travellers: TravellerIndex::new(config.travellers),
            traveller_order: RwLock::new(()),
            fences: Fences::new(
                FencesConfig {
                    ttl_ms: config.travellers.ttl_ms,
                    quotas: config.live.quotas,
                },
                Arc::new(EventLog::new(config.live.events)),
            ),
            cursor_key: config.cursor_key,
            clock: config.clock,
            storage: OnceLock::new(),
            snapshotting: Mutex::new(()),
            last_snapshot: Mutex::new(None),
            shared_log: OnceLock::new(),
            stream_applied: std::sync::atomic::AtomicU64::new(0),
            fences_wait_for_tick: std::sync::atomic::AtomicBool::new(false),
            judging: judging::Judging::default(),
            trips: crate::trips::Trips::new(),
            devices: crate::devices::Devices::new(),
            zones: crate::zones::PrivacyZones::default(),
            routes: routes::Routes::new(config.routes),
            shown_figures: shown_figures::ShownFigures::default(),
        }
    }

    /// Makes this engine a cluster node: every change from now on is published to `log`,
    /// the cluster's stream, and applied when read back from it
    /// ([`Engine::apply_replicated`]), instead of logged locally. Set once, before the
    /// first write.
    pub fn replicate_through(&self, log: Box<dyn ChangeLog>) {
        assert!(self.wal().is_none(), "a cluster node keeps no local log");
        let _ = self.shared_log.set(log);
    }

    /// Whether this engine is a cluster node, its changes going through a shared log.
    pub fn is_replicated(&self) -> bool {
        self.shared_log.get().is_some()
    }

    /// Applies one change read from the cluster's stream, in stream order, through the same
    /// `apply` as a local write and recovery; gives its outcome for a writer waiting on it.
    /// `stored_ms`: when the stream stored it, "now" for the change on every node.
    pub fn apply_replicated(
        &self,
        seq: u64,
        stored_ms: i64,
        record: &[u8],
    ) -> Result<Outcome, EngineError> {
        let decoded = crate::persist::decode::<Mutation>(record)
            .map_err(|e| EngineError::Replicated(format!("undecodable stream record: {e}")))
            .and_then(|m| {
                m.check_ids()
                    .map(|()| m)
                    .map_err(|e| EngineError::Replicated(format!("stream record: {e}")))
            });
        // The kind's own lock, as a local write takes it (a long import does not hold up
        // position reports). A snapshot takes both and reads the applied sequence under
        // them, so a change is in a snapshot exactly when its sequence is at most the
        // snapshot's.
        let order = decoded.as_ref().map_or(Order::PoiWriter, Mutation::order);
        let _writer = (order == Order::PoiWriter).then(|| self.writer.lock());
        let _order = (order != Order::PoiWriter).then(|| self.traveller_order.write());
        self.stream_applied
            .store(seq, std::sync::atomic::Ordering::Release);
        let mutation = decoded?;
        let tick = match &mutation {
            Mutation::ExpireFences(tick) => Some(tick.at_ms),
            _ => None,
        };
        // The change's events are numbered when it ends, the same on every node.
        let judging = self.fences.is_judging();
        if judging {
            self.events().begin_record();
        }
        let outcome = mutation.redo_reporting(self, stored_ms);
        if judging {
            self.events().end_record();
        }
        if let Some(at_ms) = tick {
            // A clock tick ends an interval of event numbers: its own events were numbered
            // in the one before (see `crate::events`).
            self.events()
                .new_interval(u64::try_from(at_ms.div_euclid(1000)).unwrap_or(0));
            if !judging {
                self.judge_fences_if_waiting(at_ms);
            }
        }
        outcome
    }

    /// The current time by the engine's clock, Unix ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn wal(&self) -> Option<&Wal> {
        self.storage.get().and_then(|s| s.wal.as_ref())
    }

    /// Checks, logs and applies one change: the single write path. The change is visible
    /// at once; answer the client only after it is durable.
    fn write<C: Reported>(&self, change: C) -> Result<Written<C::Outcome>, EngineError> {
        match C::ORDER {
            Order::PoiWriter => {
                let _writer = self.writer.lock();
                self.write_in_order(change)
            }
            Order::TravellersShared => {
                let _order = self.traveller_order.read();
                self.write_in_order(change)
            }
            Order::TravellersExclusive => {
                let _order = self.traveller_order.write();
                self.write_in_order(change)
            }
        }
    }

    /// A cluster's import: one stream record if it fits a NATS message, else several, in
    /// order, each half of a part too large (the first keeps the import's mode, the rest
    /// upsert). Each part is applied atomically on every node, the whole is not: a reader
    /// may see the first parts before the last, and a failure half way leaves the parts
    /// before it applied (retrying an import is safe: it upserts, or replaces again).
    fn write_import_in_parts(&self, import: ImportPois) -> Result<Written<()>, EngineError> {
        let log = self.shared_log.get().expect("called on a cluster node");
        let _writer = self.writer.lock();
        import.check(self)?;
        let mut records = Vec::new();
        encode_in_parts(import, log.max_record_bytes(), &mut records)?;
        let mut parts = Vec::with_capacity(records.len());
        for record in records {
            match log.append(record)? {
                Appended::Shared(part) => parts.push(part),
                Appended::Local(_) => {
                    return Err(EngineError::Replicated(
                        "the cluster's log appended an import part locally instead of publishing it"
                            .into(),
                    ));
                }
            }
        }
        Ok(Written::replicated_parts(parts))
    }

    /// [`Engine::write`] once the change's lock is held. In a cluster the change is only
    /// published here: it is applied when this node reads it back from the stream.
    fn write_in_order<C: Reported>(&self, change: C) -> Result<Written<C::Outcome>, EngineError> {
        change.check(self)?;
        let ticket = match self.change_log() {
            None => Ticket::done(),
            Some(log) => match log.append(crate::persist::encode(&Logged(&change))?)? {
                Appended::Local(ticket) => ticket,
                Appended::Shared(pending) => return Ok(Written::replicated::<C>(pending)),
            },
        };
        Ok(Written::local(change.apply(self, self.now_ms())?, ticket))
    }

    /// Where changes go to become durable: the cluster's stream, else the local log (an
    /// in-memory engine has neither).
    fn change_log(&self) -> Option<&dyn ChangeLog> {
        match self.shared_log.get() {
            Some(shared) => Some(shared.as_ref()),
            None => self.wal().map(|wal| wal as &dyn ChangeLog),
        }
    }
}
