//! Cluster mode: many Proxima nodes sharing one replicated log, a NATS JetStream stream,
//! in place of each node's local write-ahead log. Proxima invents no consensus: the stream
//! orders every change and keeps it on its replicas; each node applies every change, in
//! stream order, through the engine's one apply path, so all nodes reach the same state.
//!
//! A write on any node is checked, published with a unique `Nats-Msg-Id` (a retried
//! publish is stored once), acknowledged by JetStream once its replicas hold it, then
//! applied when this node reads it back; the answer carries its stream sequence in
//! `x-proxima-seq`. A read sent with `x-proxima-min-seq` waits until the node has applied
//! that sequence: read-your-writes across nodes behind a load balancer.
//!
//! - [`replicator`]: the writing side, shared with the engine: publish, wait for the ack
//!   and for this node's apply, hand the outcome back;
//! - [`follower`]: the reading side: one ordered consumer applying the stream, and the
//!   watch of how far behind the stream this node is;
//! - [`snapshots`]: snapshots tagged with the stream sequence, uploaded by one node at a
//!   time, a new node's start from them, and the stream trimmed below them;
//! - [`clock_tick`]: the once-a-second change that expires fence members at the same
//!   place in the stream on every node;
//! - [`event_export`]: `--cluster-events`, every fence event also published to JetStream.
//!
//! Fence events in a cluster: every node judges every change, and numbers its events by
//! the change's stream sequence, so an event has the same id on every node and a client
//! resumes on any of them (see [`crate::events`]).

mod applier;
mod buckets;
mod clock_tick;
mod event_export;
mod follower;
mod replicator;
mod snapshots;

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use crate::engine::ClusterError;
pub use event_export::fence_token;
pub use follower::{JoinError, follow};
pub use replicator::{MESSAGE_KEY, MessageKey, Pending, Replicator, WRITE_SEQ};

/// How this node joins its cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The NATS servers to connect to (`nats://host:port`), any of them.
    pub urls: Vec<String>,
    /// The cluster's name: the stream's name and its subjects' prefix.
    pub name: String,
    /// Copies of the stream JetStream keeps: 1, 3 or 5; `None`: what the stream has (1 for
    /// a new one).
    pub replicas: Option<usize>,
    /// How long a write waits for the stream and this node's apply, and a read for
    /// `x-proxima-min-seq`, before answering 503.
    pub max_wait: Duration,
    /// How long this node may go without being caught up with the stream before
    /// `/readyz` fails.
    pub max_lag: Duration,
    /// How often this node writes a snapshot (and, holding the lease, uploads it).
    pub snapshot_every: Option<Duration>,
    /// With `--cluster-events`: how events are written for JetStream, and how long the
    /// events stream keeps them.
    pub export_events: Option<(EventEncoder, Duration)>,
    /// How long answers to writes with an `Idempotency-Key` are kept, for any node.
    pub answers_for: Duration,
}

/// Writes an event for JetStream: its kind's name and its JSON.
pub type EncodeEvent = dyn Fn(&crate::events::Event) -> (&'static str, Vec<u8>) + Send + Sync;

/// Writes an event as its kind's name and its JSON (the data line of its SSE event).
#[derive(Clone)]
pub struct EventEncoder(pub Arc<EncodeEvent>);

impl std::fmt::Debug for EventEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventEncoder")
    }
}

/// The epoch of a cluster's event ids: from its stream's name and creation time, so the
/// same on every node (and every build), and new if the stream is ever created anew.
pub(crate) fn epoch_of(stream: &str, created_unix_ns: i128) -> u32 {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(stream.as_bytes())
        .chain_update(created_unix_ns.to_le_bytes())
        .finalize();
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

impl ClusterConfig {
    /// The stream's name: the cluster's name in upper case, as JetStream streams are
    /// usually named.
    pub fn stream_name(&self) -> String {
        self.name.to_ascii_uppercase()
    }

    /// The subject every change is published on.
    pub fn log_subject(&self) -> String {
        format!("{}.log", self.name)
    }
}

/// Tries `attempt` until it succeeds, `pause` apart, warning of each failure as `what`;
/// `None` if `stopping` comes first. For what a node needs from NATS before it can go on
/// (the stream, the snapshot store, the lease bucket), which may not answer yet.
pub(crate) async fn until_ok<T, E: Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    pause: Duration,
    stopping: &CancellationToken,
    mut attempt: impl FnMut() -> F,
) -> Option<T> {
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(e) => tracing::warn!(error = %e, "cluster: {what}; retrying"),
        }
        tokio::select! {
            () = stopping.cancelled() => return None,
            () = tokio::time::sleep(pause) => {}
        }
    }
}
