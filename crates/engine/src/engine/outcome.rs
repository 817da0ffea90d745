//! What the engine's writes report: each kind of change has its own outcome type, handed
//! back in a [`Written`] that completes once the change is durable: in the local log (a
//! [`Ticket`]), or, in a cluster, on the stream's replicas and applied on this node (a
//! [`PendingApply`] giving the apply's [`Outcome`]).

use super::EngineError;
use super::log::PendingApply;
use super::mutation::{Outcome, Reported};
use crate::import::RecordError;
use crate::persist::wal::Ticket;

/// A change on its way to being durable. Tell the client only after [`Written::durable`]
/// (or [`Written::wait`]), which gives the change's outcome.
#[must_use = "a change is acknowledged only once it is durable"]
pub struct Written<T> {
    state: State<T>,
}

enum State<T> {
    /// Applied in memory (visible to readers at once); durable when the ticket completes.
    Local { outcome: T, ticket: Ticket },
    /// Not yet applied: published to the cluster's stream, applied when this node reads it
    /// back in stream order; the outcome is what that apply reported.
    Replicated {
        pending: PendingApply,
        outcome: Box<dyn FnOnce(Outcome) -> Result<T, EngineError> + Send>,
    },
    /// Several changes published in order (an import in parts); durable once all are.
    Parts {
        parts: Vec<PendingApply>,
        outcome: Box<dyn FnOnce() -> T + Send>,
    },
}

impl Written<()> {
    /// Changes published in order, durable once every one is applied here.
    pub(crate) fn replicated_parts(parts: Vec<PendingApply>) -> Self {
        Self {
            state: State::Parts {
                parts,
                outcome: Box::new(|| ()),
            },
        }
    }
}

impl<T> std::fmt::Debug for Written<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            State::Local { ticket, .. } => f
                .debug_struct("Written")
                .field("ticket", ticket)
                .finish_non_exhaustive(),
            State::Replicated { .. } => f
                .debug_struct("Written")
                .field("pending", &"published")
                .finish_non_exhaustive(),
            State::Parts { parts, .. } => f
                .debug_struct("Written")
                .field("parts", &parts.len())
                .finish_non_exhaustive(),
        }
    }
}

impl<T: 'static> Written<T> {
    /// A change applied here, durable when `ticket` completes.
    pub(crate) fn local(outcome: T, ticket: Ticket) -> Self {
        Self {
            state: State::Local { outcome, ticket },
        }
    }

    /// A change of kind `C` published to a shared log, whose apply reports `C`'s outcome.
    pub(super) fn replicated<C: Reported<Outcome = T>>(pending: PendingApply) -> Self {
        Self {
            state: State::Replicated {
                pending,
                outcome: Box::new(|applied| {
                    C::reported(applied).ok_or_else(|| {
                        EngineError::Replicated(
                            "the apply reported the outcome of another kind of change".into(),
                        )
                    })
                }),
            },
        }
    }

    /// The same write, its outcome mapped.
    pub fn map<U: 'static>(self, f: impl FnOnce(T) -> U + Send + 'static) -> Written<U> {
        Written {
            state: match self.state {
                State::Local { outcome, ticket } => State::Local {
                    outcome: f(outcome),
                    ticket,
                },
                State::Replicated { pending, outcome } => State::Replicated {
                    pending,
                    outcome: Box::new(move |applied| outcome(applied).map(f)),
                },
                State::Parts { parts, outcome } => State::Parts {
                    parts,
                    outcome: Box::new(move || f(outcome())),
                },
            },
        }
    }

    /// Waits without blocking the thread until the change is durable, then gives its outcome.
    pub async fn durable(self) -> Result<T, EngineError> {
        match self.state {
            State::Local { outcome, ticket } => {
                ticket.wait_async().await?;
                Ok(outcome)
            }
            State::Replicated { pending, outcome } => outcome(pending.await?),
            State::Parts { parts, outcome } => {
                // In order: a later part may replace an earlier part's POI.
                for part in parts {
                    part.await?;
                }
                Ok(outcome())
            }
        }
    }

    /// Waits, blocking the thread, until the change is durable, then gives its outcome. Not
    /// for async tasks: use [`Written::durable`].
    pub fn wait(self) -> Result<T, EngineError> {
        match self.state {
            State::Local { outcome, ticket } => {
                ticket.wait()?;
                Ok(outcome)
            }
            State::Replicated { .. } | State::Parts { .. } => {
                tokio::runtime::Handle::current().block_on(self.durable())
            }
        }
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
