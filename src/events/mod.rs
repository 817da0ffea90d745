//! Fence events and their delivery: every event gets a sequence number, is retained for a
//! window (`--event-retention`, bounded also in count), and is handed to each subscriber of
//! its fence through that subscriber's own bounded queue, never waiting for it.
//!
//! The stream contract is Kubernetes' list-then-watch: a client lists who is inside a fence
//! (which also gives the id of the newest event), then streams the events after it. A
//! client that resumes with an id inside the retained window gets every later event of its
//! fences, in order, none twice. One that resumes from before the window, from another run
//! of the server (ids carry a per-run epoch), or that falls behind so far that its queue
//! fills, is told to list again: its subscription ends with a reset. Nothing is dropped
//! silently, and a slow subscriber never slows a writer or another subscriber.
//!
//! Locking: one mutex holds the retained events and the subscriber table. A publisher
//! takes it once per batch of events (while holding its fence's lock, so a fence's events
//! enter the log in the order its state changed); a subscriber takes it to join and leave.
//!
//! In a cluster every node judges every change from the stream, and an event's id must be
//! the same on every node ([`EventId`]). A change's events are therefore held back while
//! it is applied ([`EventLog::begin_record`]) and numbered when it ends
//! ([`EventLog::end_record`]), in an order that does not depend on the order this node
//! happened to judge them in: by fence, then traveller, then as they happened (each
//! traveller's changes within a fence are judged in stream order on every node).

mod id;
mod records;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc;

pub use id::{EventId, EventIdError, Place};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// A position report moved the traveller (or, for a roaming fence, the traveller it
    /// is around).
    Moved,
    /// The traveller's newest position passed the time-to-live.
    Expired,
    /// The traveller was deleted.
    Deleted,
    /// Who may see the traveller changed.
    Sharing,
    /// The fence was created or changed.
    Fence,
}

/// An event as published: everything but its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The fence.
    pub fence: Arc<str>,
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
    /// Its place in the log, rising from event to event.
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

/// The event log and its subscribers.
pub struct EventLog {
    epoch: AtomicU32,
    config: EventConfig,
    inner: Mutex<Log>,
    /// In a cluster with `--cluster-events`: every event is also handed to this queue.
    tap: std::sync::OnceLock<mpsc::Sender<Arc<Event>>>,
    /// Events the tap's queue had no room for.
    tap_dropped: AtomicU64,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Log {
    /// The record number the next event gets on a single node (the first is 1).
    next_seq: u64,
    /// The newest place published: events after it are still to come.
    head: Place,
    /// Events at or before this place are not available (trimmed, or from before this
    /// node judged the cluster's changes): resuming from before it is a gap.
    floor: Place,
    /// In a cluster, the change being applied and its events, held back until it ends.
    pending: Option<(u64, Vec<(i64, NewEvent)>)>,
    /// Retained events, oldest first.
    retained: VecDeque<Arc<Event>>,
    /// Subscribers by fence.
    subscribers: HashMap<Arc<str>, Vec<Arc<Subscriber>>>,
    /// Subscribers in the table.
    subscriber_count: usize,
    /// The id the next subscriber gets.
    next_subscriber: u64,
}

/// One subscriber's side of the log: its queue and its fences. Only the table holds it,
/// so dropping it from the table closes the queue: the subscription then ends with a
/// reset once it has taken what was queued.
struct Subscriber {
    id: u64,
    tx: mpsc::Sender<Arc<Event>>,
    fences: Vec<Arc<str>>,
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
            Self::FellBehind => {
                "this stream fell too far behind and was ended; list the fence again"
            }
        }
    }
}

/// A subscription to the events of some fences: where it starts, then its live queue.
pub struct Subscription {
    /// Retained events to deliver first, or a reset.
    pub start: Start,
    rx: mpsc::Receiver<Arc<Event>>,
    id: u64,
    fences: Vec<Arc<str>>,
    log: Arc<EventLog>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
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
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.log.unsubscribe(&self.fences, self.id);
    }
}

impl EventLog {
    /// An empty log with a fresh epoch.
    pub fn new(config: EventConfig) -> Self {
        let mut epoch = [0u8; 4];
        getrandom::fill(&mut epoch).expect("the operating system provides randomness");
        Self {
            epoch: AtomicU32::new(u32::from_le_bytes(epoch)),
            config,
            tap: std::sync::OnceLock::new(),
            tap_dropped: AtomicU64::new(0),
            inner: Mutex::new(Log {
                next_seq: 1,
                head: Place::after(0),
                floor: Place::after(0),
                pending: None,
                retained: VecDeque::new(),
                subscribers: HashMap::new(),
                subscriber_count: 0,
                next_subscriber: 0,
            }),
        }
    }

    /// The id of the newest event published (or of "before the first"): in a cluster,
    /// "after every event of the last change applied".
    pub fn head(&self) -> EventId {
        self.id_of(self.inner.lock().head)
    }

    /// The id of the event at `place`.
    pub fn id_of(&self, place: Place) -> EventId {
        EventId {
            epoch: self.epoch.load(Ordering::Relaxed),
            place,
        }
    }

    /// Appends events (published at `at_ms`), in order, and hands each to the subscribers of
    /// its fence. A subscriber whose queue is full is dropped from the table and ends with
    /// a reset; no one is waited for. Within a cluster change, they are held back until it
    /// ends.
    pub fn publish(&self, at_ms: i64, events: impl IntoIterator<Item = NewEvent>) {
        let mut log = self.inner.lock();
        if let Some((_, pending)) = &mut log.pending {
            pending.extend(events.into_iter().map(|e| (at_ms, e)));
            return;
        }
        for event in events {
            let place = Place::after(log.next_seq);
            log.next_seq += 1;
            self.append(&mut log, place, at_ms, event);
        }
        self.trim(&mut log, at_ms);
    }

    fn append(&self, log: &mut Log, place: Place, at_ms: i64, event: NewEvent) {
        let event = Arc::new(Event {
            place,
            at_ms,
            event,
        });
        log.head = log.head.max(place);
        log.retained.push_back(event.clone());
        self.deliver(log, &event);
        if let Some(tap) = self.tap.get()
            && tap.try_send(event).is_err()
        {
            self.tap_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn deliver(&self, log: &mut Log, event: &Arc<Event>) {
        let Some(subscribers) = log.subscribers.get_mut(&event.event.fence) else {
            return;
        };
        // A full queue: the subscriber leaves the table, from every fence it follows. (A
        // closed one is a subscription ending, which leaves the table itself.)
        let behind: Vec<Arc<Subscriber>> = subscribers
            .iter()
            .filter(|s| {
                matches!(
                    s.tx.try_send(event.clone()),
                    Err(mpsc::error::TrySendError::Full(_))
                )
            })
            .cloned()
            .collect();
        for subscriber in behind {
            Self::remove(log, &subscriber.fences, subscriber.id);
        }
    }

    /// Takes subscriber `id` out of the table (from every fence it follows); returns
    /// whether it was there.
    fn remove(log: &mut Log, fences: &[Arc<str>], id: u64) -> bool {
        let mut found = false;
        for fence in fences {
            if let Some(list) = log.subscribers.get_mut(fence) {
                let before = list.len();
                list.retain(|s| s.id != id);
                found |= list.len() != before;
                if list.is_empty() {
                    log.subscribers.remove(fence);
                }
            }
        }
        if found {
            log.subscriber_count -= 1;
        }
        found
    }

    fn trim(&self, log: &mut Log, now_ms: i64) {
        while log.retained.len() > self.config.max_retained
            || log
                .retained
                .front()
                .is_some_and(|e| now_ms.saturating_sub(e.at_ms) > self.config.retention_ms)
        {
            if let Some(gone) = log.retained.pop_front() {
                log.floor = log.floor.max(gone.place);
            }
        }
    }

    /// Drops events past the retention window (for quiet logs, which no publish trims).
    pub fn expire(&self, now_ms: i64) {
        let mut log = self.inner.lock();
        self.trim(&mut log, now_ms);
    }

    /// Subscribes to the events of `fences` after `after` (or from now on, with `None`).
    pub fn subscribe(
        self: &Arc<Self>,
        fences: Vec<Arc<str>>,
        after: Option<EventId>,
    ) -> Result<Subscription, SubscribeError> {
        let mut log = self.inner.lock();
        if log.subscriber_count >= self.config.max_subscribers {
            return Err(SubscribeError::TooManySubscribers(
                self.config.max_subscribers,
            ));
        }
        let start = match after {
            None => Start::Events(Vec::new()),
            Some(id) if id.epoch != self.epoch.load(Ordering::Relaxed) || id.place > log.head => {
                Start::Reset(ResetReason::OtherRun)
            }
            Some(id) if id.place < log.floor => Start::Reset(ResetReason::Gap),
            Some(id) => {
                let skip = log.retained.partition_point(|e| e.place <= id.place);
                Start::Events(
                    log.retained
                        .iter()
                        .skip(skip)
                        .filter(|e| fences.contains(&e.event.fence))
                        .cloned()
                        .collect(),
                )
            }
        };
        let (tx, rx) = mpsc::channel(self.config.subscriber_buffer.max(1));
        let id = log.next_subscriber;
        log.next_subscriber += 1;
        if matches!(start, Start::Events(_)) {
            let subscriber = Arc::new(Subscriber {
                id,
                tx,
                fences: fences.clone(),
            });
            for fence in &fences {
                log.subscribers
                    .entry(fence.clone())
                    .or_default()
                    .push(subscriber.clone());
            }
            log.subscriber_count += 1;
        }
        Ok(Subscription {
            start,
            rx,
            id,
            fences,
            log: self.clone(),
        })
    }

    fn unsubscribe(&self, fences: &[Arc<str>], id: u64) {
        Self::remove(&mut self.inner.lock(), fences, id);
    }

    /// Subscribers now.
    pub fn subscribers(&self) -> usize {
        self.inner.lock().subscriber_count
    }

    /// Events retained now.
    pub fn retained(&self) -> usize {
        self.inner.lock().retained.len()
    }
}

#[cfg(test)]
mod tests;
