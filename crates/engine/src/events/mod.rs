//! Fence events and their delivery: every event gets a place in its fence owner's own
//! sequence, is retained for a window (`--event-retention`, bounded also in count), and is
//! handed to each subscriber of its fence through that subscriber's own bounded queue,
//! never waiting for it.
//!
//! Events are numbered **per owner** (the caller that made the fence): an id tells a
//! watcher how many events its owner's fences had, never anything about anyone else's.
//! A stream follows fences of one owner only.
//!
//! The stream contract is Kubernetes' list-then-watch: a client lists who is inside a fence
//! (which also gives the id of its owner's newest event), then streams the events after
//! it. A client that resumes with an id inside the retained window gets every later event
//! of its fences, in order, none twice. One that resumes from before the window, from
//! another run of the server (ids carry a per-run epoch), from before a fence it follows
//! was created (a fence deleted and made again is a new fence: the old one's events are
//! never its), or that falls behind so far that its queue fills, is told to list again:
//! its subscription ends with a reset. Nothing is dropped silently, and a slow subscriber
//! never slows a writer or another subscriber.
//!
//! Locking: one mutex holds the retained events and the subscriber tables. A publisher
//! takes it once per batch of events (while holding its fence's lock, so a fence's events
//! enter the log in the order its state changed); a subscriber takes it to join and leave.
//!
//! In a cluster every node judges every change from the stream, and an event's id must be
//! the same on every node ([`EventId`]); see [`records`] for how they are numbered.

mod id;
mod log;
mod records;

use std::sync::Arc;

use tokio::sync::mpsc;

pub use id::{EventId, EventIdError, Place};
pub use log::EventLog;

use crate::ids::FenceKey;
use crate::travellers::TravellerAt;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A traveller came inside a static fence.
    Enter,
    /// A traveller left a static fence.
    Exit,
    /// A traveller came within a roaming fence's radius.
    Nearby,
    /// A traveller left a roaming fence's radius.
    Faraway,
    /// The fence was deleted; its streams end.
    Deleted,
}

/// Why it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// A position report moved the traveller (or, for a roaming fence, the traveller it
    /// is around).
    Moved,
    /// The traveller's newest position passed the time-to-live.
    Expired,
    /// The fence was created or changed.
    Fence,
    /// Who may see the traveller changed.
    Sharing,
    /// The traveller was deleted.
    Deleted,
}

/// An event as published: everything but its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The fence.
    pub fence: FenceKey,
    /// What happened.
    pub kind: EventKind,
    /// The traveller and where it was (none for `Deleted`).
    pub traveller: Option<TravellerAt>,
    /// Why (none for `Deleted`).
    pub cause: Option<Cause>,
    /// For roaming fences: the distance from the traveller the fence is around.
    pub distance_m: Option<f64>,
    /// For roaming fences: where the traveller the fence is around was, as of its report
    /// of `ts`.
    pub around: Option<Around>,
}

/// Where a roaming fence's traveller was when an event was judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Around {
    /// Its position.
    pub position: crate::geometry::LatLon,
    /// The timestamp of the report that put it there, Unix ms.
    pub ts: i64,
}

/// An event in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its place in its owner's sequence, rising from event to event.
    pub place: Place,
    /// When it was published, Unix ms.
    pub at_ms: i64,
    /// What it says.
    pub event: NewEvent,
}

/// Limits of the log and of its subscribers.
#[derive(Debug, Clone, Copy)]
pub struct EventConfig {
    /// How long an event stays available to resume from, ms.
    pub retention_ms: i64,
    /// At most this many events are retained, whatever their age.
    pub max_retained: usize,
    /// Events a subscriber may have waiting before it is reset.
    pub subscriber_buffer: usize,
    /// Subscribers at once, in all.
    pub max_subscribers: usize,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The server already has `max_subscribers`.
    #[error("the server already has {0} event subscribers, its limit")]
    TooManySubscribers(usize),
}

/// Where a new subscription starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// With these retained events, then live ones.
    Events(Vec<Arc<Event>>),
    /// With a reset: the events after the given id are no longer all available.
    Reset(ResetReason),
}

/// Why a subscriber is told to list again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// The id it resumes from is from another run of the server.
    OtherRun,
    /// Events after the id it resumes from are past the retained window.
    Gap,
    /// A fence it follows was created (perhaps anew, under an old id) after that id.
    Recreated,
    /// It did not keep up: its queue filled.
    FellBehind,
}

impl ResetReason {
    /// A sentence for the client.
    pub fn describe(self) -> &'static str {
        match self {
            Self::OtherRun => {
                "the last event id is from an earlier run of the server, or from another cluster; list the fence again"
            }
            Self::Gap => {
                "events after the last event id are past the retained window; list the fence again"
            }
            Self::Recreated => {
                "a fence this stream follows was created after the last event id: it is not the fence that id was about; list the fence again"
            }
            Self::FellBehind => {
                "this stream fell too far behind and was ended; list the fence again"
            }
        }
    }
}

/// A subscription to the events of some fences of one owner: where it starts, then its
/// live queue.
pub struct Subscription {
    /// Retained events to deliver first, or a reset.
    pub start: Start,
    rx: mpsc::Receiver<Arc<Event>>,
    id: u64,
    owner: Arc<str>,
    fences: Vec<Arc<str>>,
    log: Arc<EventLog>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("owner", &self.owner)
            .field("fences", &self.fences)
            .finish_non_exhaustive()
    }
}

/// What a subscription's live queue gives next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// An event.
    Event(Arc<Event>),
    /// The subscriber fell behind and is ended.
    Reset,
}

impl Subscription {
    /// The next live event, waiting for one; `Reset` once the queue overflowed.
    pub async fn next(&mut self) -> Next {
        match self.rx.recv().await {
            Some(event) => Next::Event(event),
            None => Next::Reset,
        }
    }

    /// The next live event if one is waiting.
    pub fn try_next(&mut self) -> Option<Next> {
        match self.rx.try_recv() {
            Ok(event) => Some(Next::Event(event)),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Next::Reset),
        }
    }

    /// The owner whose fences it follows.
    pub fn owner(&self) -> &Arc<str> {
        &self.owner
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.log.unsubscribe(&self.owner, &self.fences, self.id);
    }
}

#[cfg(test)]
mod tests;
