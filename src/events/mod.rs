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

mod id;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

pub use id::{EventId, EventIdError};

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
    /// Its place in the log, rising by one from event to event.
    pub seq: u64,
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
    epoch: u32,
    config: EventConfig,
    inner: Mutex<Log>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("epoch", &self.epoch)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Log {
    /// The sequence number the next event gets (the first is 1).
    next_seq: u64,
    /// Retained events, oldest first, their sequence numbers consecutive.
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
                "the last event id is from an earlier run of the server; list the fence again"
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
            epoch: u32::from_le_bytes(epoch),
            config,
            inner: Mutex::new(Log {
                next_seq: 1,
                retained: VecDeque::new(),
                subscribers: HashMap::new(),
                subscriber_count: 0,
                next_subscriber: 0,
            }),
        }
    }

    /// The id of the newest event published (or of "before the first").
    pub fn head(&self) -> EventId {
        EventId {
            epoch: self.epoch,
            seq: self.inner.lock().next_seq - 1,
        }
    }

    /// The id of the event with sequence number `seq` in this run.
    pub fn id_of(&self, seq: u64) -> EventId {
        EventId {
            epoch: self.epoch,
            seq,
        }
    }

    /// Appends events (published at `at_ms`), in order, and hands each to the subscribers of
    /// its fence. A subscriber whose queue is full is dropped from the table and ends with
    /// a reset; no one is waited for. Returns the sequence number of the last event.
    pub fn publish(&self, at_ms: i64, events: impl IntoIterator<Item = NewEvent>) -> u64 {
        let mut log = self.inner.lock();
        for event in events {
            let event = Arc::new(Event {
                seq: log.next_seq,
                at_ms,
                event,
            });
            log.next_seq += 1;
            log.retained.push_back(event.clone());
            self.deliver(&mut log, &event);
        }
        self.trim(&mut log, at_ms);
        log.next_seq - 1
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
            log.retained.pop_front();
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
            Some(id) if id.epoch != self.epoch || id.seq >= log.next_seq => {
                Start::Reset(ResetReason::OtherRun)
            }
            Some(id) => {
                let first = log.retained.front().map_or(log.next_seq, |e| e.seq);
                if id.seq + 1 < first {
                    Start::Reset(ResetReason::Gap)
                } else {
                    let skip = usize::try_from(id.seq + 1 - first).unwrap_or(usize::MAX);
                    Start::Events(
                        log.retained
                            .iter()
                            .skip(skip)
                            .filter(|e| fences.contains(&e.event.fence))
                            .cloned()
                            .collect(),
                    )
                }
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
