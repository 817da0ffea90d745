//! The seam between the engine and where its changes become durable: a [`ChangeLog`].
//!
//! Two logs implement it. The local write-ahead log ([`crate::persist::wal::Wal`]) keeps a
//! single node's changes in order on its disk: the engine applies a change as soon as it
//! is appended, and the change is durable once its [`Ticket`] completes (fsynced). A
//! cluster's stream (the server crate's JetStream replicator) is shared by every node:
//! the engine only publishes the change there, and applies it when this node reads it back
//! in stream order, like every other node ([`super::Engine::apply_replicated`]); the
//! writer is answered with that apply's [`Outcome`].
//!
//! The engine knows nothing of NATS: only this trait, and the errors a shared log may
//! report ([`ClusterError`]), which the HTTP edge maps to statuses.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::EngineError;
use super::mutation::Outcome;
use crate::persist::wal::{Ticket, Wal};

/// A change published to a shared log, resolving with the outcome of its apply on this
/// node (or why it was not applied in time).
pub type PendingApply = Pin<Box<dyn Future<Output = Result<Outcome, EngineError>> + Send>>;

/// What a log did with a change's record.
pub enum Appended {
    /// Appended to this process's log: apply the change now; it is durable once the
    /// ticket completes.
    Local(Ticket),
    /// Published to a log shared by several nodes: the change is applied when this node
    /// reads it back, and the future gives that apply's outcome.
    Shared(PendingApply),
}

/// Where the engine's changes go to become durable, in order.
pub trait ChangeLog: Send + Sync {
    /// Takes one change's record (a [`super::Mutation`] as bincode), in the order of the
    /// caller's lock.
    fn append(&self, record: Vec<u8>) -> Result<Appended, EngineError>;

    /// The largest record this log takes; an import larger than that is split into parts.
    fn max_record_bytes(&self) -> usize {
        usize::MAX
    }
}

impl ChangeLog for Wal {
    fn append(&self, record: Vec<u8>) -> Result<Appended, EngineError> {
        Ok(Appended::Local(Wal::append(self, record).1))
    }
}

/// Why a cluster's shared log did not take a change, or a read could not wait for one.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The stream did not acknowledge the change in time (NATS unreachable, or no
    /// quorum of its replicas). The change may have been stored; it was not acknowledged.
    #[error(
        "cluster: the stream did not acknowledge the write within {0:?} ({1}); it was not acknowledged, and may or may not be applied later: retrying the same write is safe"
    )]
    Unavailable(Duration, String),
    /// The stream took the change, but this node had not applied it in time.
    #[error(
        "cluster: the write was stored at stream sequence {0} but this node had not applied it within {1:?}; every node applies it in stream order"
    )]
    NotApplied(u64, Duration),
    /// The change does not fit in one NATS message.
    #[error(
        "cluster: this write is {size} bytes as a log record, more than the NATS server's max_payload of {max}; send it in smaller parts"
    )]
    TooLarge {
        /// The record's size.
        size: usize,
        /// The server's limit.
        max: usize,
    },
    /// Too many writes are already waiting for the stream.
    #[error("cluster: {0} writes are already waiting for the stream, this node's limit")]
    Busy(usize),
    /// A write sent again with its `Idempotency-Key` reached the stream, which already held
    /// it (stored once), and this node had applied it before the retry came: its answer is
    /// kept once the first attempt is done.
    #[error(
        "cluster: a write with this Idempotency-Key was already applied at stream sequence {0}; retry to get its answer"
    )]
    AlreadyApplied(u64),
    /// A read asked for a sequence this node had not applied in time.
    #[error(
        "min_seq: this node has applied the stream up to {applied}, not yet {wanted}, after waiting {waited:?}"
    )]
    Behind {
        /// What the read asked for.
        wanted: u64,
        /// What this node had applied.
        applied: u64,
        /// How long it waited.
        waited: Duration,
    },
}
