//! Wire types of the map and operations routes: the heatmap, a snapshot just written, and
//! the stats. Fields in alphabetical order (see the [module doc](super)).

use serde::Serialize;

use crate::engine::{HeatCell, SnapshotInfo};
use crate::persist::wal::WalStats;

/// Counts per H3 cell: `GET /v1/heatmap`.
#[derive(Debug, Serialize)]
pub struct HeatmapOut {
    cells: Vec<HeatCellOut>,
}

impl HeatmapOut {
    /// The cells, each with its outline if `outline`.
    pub fn new(cells: &[HeatCell], outline: bool) -> Self {
        Self {
            cells: cells
                .iter()
                .map(|c| HeatCellOut {
                    count: c.count,
                    h3: c.h3(),
                    outline: outline.then(|| c.outline()),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct HeatCellOut {
    count: u64,
    h3: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    outline: Option<Vec<[f64; 2]>>,
}

/// A snapshot just written: `POST /v1/admin/snapshot`.
#[derive(Debug, Serialize)]
pub struct SnapshotOut {
    bytes: u64,
    millis: u64,
    path: String,
}

impl From<&SnapshotInfo> for SnapshotOut {
    fn from(info: &SnapshotInfo) -> Self {
        Self {
            bytes: info.bytes,
            millis: info.millis,
            path: info.path.display().to_string(),
        }
    }
}

/// `GET /v1/stats`.
#[derive(Debug, Serialize)]
pub struct StatsOut {
    /// In a cluster, how far this node has applied the stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterOut>,
    /// With `digest=true`, a SHA-256 of the whole state (POIs, travellers, fences).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Fence events: streams open and events retained.
    pub events: EventsOut,
    /// Fences.
    pub fences: usize,
    /// Roaming fences following nobody now: their viewer may not see their traveller.
    pub dormant_fences: usize,
    /// Travellers changed and not yet judged against fences and live maps.
    pub judging_backlog: usize,
    /// Moves dropped unjudged since start: a traveller's moves waiting past the bound.
    pub judging_coalesced: u64,
    /// The last snapshot this process wrote.
    pub last_snapshot: Option<LastSnapshotOut>,
    /// Memory.
    pub memory: MemoryOut,
    /// POIs stored.
    pub pois: usize,
    /// Travellers with state.
    pub travellers: usize,
    /// Privacy zones.
    pub privacy_zones: usize,
    /// Track imports running now.
    pub track_imports_running: usize,
    /// Points stored by track imports since start (it grows while one runs: its progress).
    pub track_import_points: u64,
    /// Seconds since start.
    pub uptime_s: u64,
    /// The log's counters, when there is a log.
    pub wal: Option<WalOut>,
}

/// A cluster node's place in the stream, in [`StatsOut`].
#[derive(Debug, Serialize)]
pub struct ClusterOut {
    /// The last stream sequence this node has applied.
    pub applied_seq: u64,
    /// Whether this node judges fences (false while it catches up with the stream).
    pub judging_fences: bool,
    /// Fence events this node published to JetStream (`--cluster-events`).
    pub events_exported: u64,
    /// Fence events the export's queue had no room for (the other nodes publish them).
    pub events_not_exported: u64,
}

/// Fence events, in [`StatsOut`].
#[derive(Debug, Serialize)]
pub struct EventsOut {
    /// Events retained for resuming streams.
    pub retained: usize,
    /// Streams subscribed now.
    pub subscribers: usize,
}

/// The last snapshot, in [`StatsOut`]: when it finished, and what [`SnapshotOut`] says.
#[derive(Debug, Serialize)]
pub struct LastSnapshotOut {
    at_ms: i64,
    #[serde(flatten)]
    snapshot: SnapshotOut,
}

impl From<&SnapshotInfo> for LastSnapshotOut {
    fn from(info: &SnapshotInfo) -> Self {
        Self {
            at_ms: info.at_ms,
            snapshot: SnapshotOut::from(info),
        }
    }
}

/// Memory, in [`StatsOut`].
#[derive(Debug, Serialize)]
pub struct MemoryOut {
    /// Resident set size, where the platform tells it.
    pub rss_bytes: Option<u64>,
}

/// The log's counters, in [`StatsOut`].
#[derive(Debug, Serialize)]
pub struct WalOut {
    bytes: u64,
    fsyncs: u64,
    records: u64,
}

impl From<WalStats> for WalOut {
    fn from(w: WalStats) -> Self {
        Self {
            bytes: w.bytes,
            fsyncs: w.fsyncs,
            records: w.records,
        }
    }
}
