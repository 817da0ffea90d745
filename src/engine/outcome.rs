//! What the engine's writes report: each kind of change has its own outcome type, handed
//! back with the [`Ticket`] that completes once the change is durable.

use super::EngineError;
use crate::import::RecordError;
use crate::persist::wal::Ticket;

/// A change made in memory (visible to readers at once) and the ticket that completes once
/// it is durable. Tell the client only after [`Written::durable`] (or [`Written::wait`]).
#[derive(Debug)]
#[must_use = "a change is acknowledged only once it is durable"]
pub struct Written<T> {
    /// What the change did.
    pub outcome: T,
    /// Completes when the change is as durable as the log's fsync mode promises.
    pub ticket: Ticket,
}

impl<T> Written<T> {
    /// The same write, its outcome mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Written<U> {
        Written {
            outcome: f(self.outcome),
            ticket: self.ticket,
        }
    }

    /// Waits without blocking the thread until the change is durable, then gives its outcome.
    pub async fn durable(self) -> Result<T, EngineError> {
        self.ticket.wait_async().await?;
        Ok(self.outcome)
    }

    /// Waits, blocking the thread, until the change is durable, then gives its outcome. Not
    /// for async tasks: use [`Written::durable`].
    pub fn wait(self) -> Result<T, EngineError> {
        self.ticket.wait()?;
        Ok(self.outcome)
    }
}

/// What storing a POI did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Whether the id was new (`false`: an existing POI was replaced).
    pub created: bool,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Whether there was anything a reader could see to delete.
    pub existed: bool,
}

/// What a batch of position reports did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PositionCounts {
    /// Reports that became their traveller's newest position.
    pub applied: usize,
    /// Reports that were not newer (kept in the trail where there was room).
    pub stale: usize,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// POIs written.
    pub imported: u64,
    /// Records left out.
    pub skipped: u64,
    /// The first bad records.
    pub errors: Vec<RecordError>,
}
