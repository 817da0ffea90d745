//! [`EventLog`]: the retained events and the subscribers, kept per fence owner.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::{
    Event, EventConfig, EventId, NewEvent, Place, ResetReason, Start, SubscribeError, Subscription,
};

/// The event log and its subscribers.
pub struct EventLog {
    pub(super) epoch: AtomicU32,
    pub(super) config: EventConfig,
    pub(super) inner: Mutex<Log>,
    /// In a cluster with `--cluster-events`: every event is also handed to this queue.
    pub(super) tap: std::sync::OnceLock<mpsc::Sender<Arc<Event>>>,
    /// Events the tap's queue had no room for.
    pub(super) tap_dropped: AtomicU64,
    /// Told whenever heads move, for a cluster client waiting for this node to reach the
    /// event it resumes from.
    pub(super) moved: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(super) struct Log {
    /// Each owner's events and subscribers.
    pub(super) owners: HashMap<Arc<str>, OwnerLog>,
    /// Every retained event's owner and time, oldest first: the retention order across
    /// owners (the count bound and the window are the server's, not each owner's).
    order: VecDeque<(i64, Arc<str>)>,
    /// In a cluster: a change's events, held back until it ends.
    pub(super) pending: Option<Vec<(i64, NewEvent)>>,
    /// In a cluster: events are numbered within intervals between clock ticks (see
    /// [`super::records`]); `None` on a single node.
    pub(super) interval: Option<u64>,
    /// Where a new owner's events begin on this node (in a cluster, where it began judging).
    pub(super) floor_place: Place,
    /// Subscribers in the tables.
    subscriber_count: usize,
    /// The id the next subscriber gets.
    next_subscriber: u64,
}

/// One owner's part of the log.
#[derive(Default)]
pub(super) struct OwnerLog {
    /// Events numbered so far: in all on a single node, in the current interval in a
    /// cluster.
    pub(super) count: u64,
    /// Events at or before this place are not available (trimmed, or from before this
    /// node judged the cluster's changes): resuming from before it is a gap.
    pub(super) floor: Place,
    /// Retained events, oldest first.
    retained: VecDeque<Arc<Event>>,
    /// Subscribers by fence id.
    subscribers: HashMap<Arc<str>, Vec<Arc<Subscriber>>>,
}

/// One subscriber's side of the log: its queue and its fences. Only the table holds it,
/// so dropping it from the table closes the queue: the subscription then ends with a
/// reset once it has taken what was queued.
struct Subscriber {
    id: u64,
    tx: mpsc::Sender<Arc<Event>>,
    fences: Vec<Arc<str>>,
}

impl Log {
    /// The place of `owner`'s newest event (or "before the first"), never before where this
    /// node's events of it begin.
    pub(super) fn head(&self, owner: &str) -> Place {
        let (count, floor) = self
            .owners
            .get(owner)
            .map_or((0, self.floor_place), |o| (o.count, o.floor));
        self.place(count).max(floor)
    }

    /// The place of an owner's event numbered `count` (in the current interval, in a
    /// cluster).
    pub(super) fn place(&self, count: u64) -> Place {
        match self.interval {
            None => Place::after(count),
            Some(interval) => Place {
                record: interval,
                // Four billion events of one owner within one second cannot be numbered
                // apart; they share the last index.
                index: u32::try_from(count)
                    .ok()
                    .filter(|&i| i != Place::WHOLE)
                    .unwrap_or(Place::WHOLE - 1),
            },
        }
    }

    /// `owner`'s log, made on first use (in a cluster, starting at the node's floor).
    pub(super) fn owner(&mut self, owner: &Arc<str>) -> &mut OwnerLog {
        let floor = self.floor_place;
        self.owners
            .entry(owner.clone())
            .or_insert_with(|| OwnerLog {
                floor,
                ..OwnerLog::default()
            })
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
            moved: tokio::sync::watch::channel(0).0,
            inner: Mutex::new(Log {
                owners: HashMap::new(),
                order: VecDeque::new(),
                pending: None,
                interval: None,
                floor_place: Place::after(0),
                subscriber_count: 0,
                next_subscriber: 0,
            }),
        }
    }

    /// The id of `owner`'s newest event (or of "before its first"): stream from there.
    pub fn head(&self, owner: &str) -> EventId {
        self.id_of(self.inner.lock().head(owner))
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
        if let Some(pending) = &mut log.pending {
            pending.extend(events.into_iter().map(|e| (at_ms, e)));
            return;
        }
        for event in events {
            self.append(&mut log, at_ms, event);
        }
        self.trim(&mut log, at_ms);
        drop(log);
        self.moved.send_modify(|n| *n += 1);
    }

    /// Numbers an event in its owner's sequence, retains it, and delivers it.
    pub(super) fn append(&self, log: &mut Log, at_ms: i64, event: NewEvent) {
        let owner = event.fence.owner.clone();
        let count = log.owner(&owner).count + 1;
        let place = log.place(count);
        let event = Arc::new(Event {
            place,
            at_ms,
            event,
        });
        log.order.push_back((at_ms, owner.clone()));
        let owner_log = log.owner(&owner);
        owner_log.count = count;
        owner_log.retained.push_back(event.clone());
        let dropped = Self::deliver(owner_log, &event);
        log.subscriber_count -= dropped;
        if let Some(tap) = self.tap.get()
            && tap.try_send(event).is_err()
        {
            self.tap_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands `event` to its fence's subscribers; returns how many were dropped for being
    /// full.
    fn deliver(owner: &mut OwnerLog, event: &Arc<Event>) -> usize {
        let Some(subscribers) = owner.subscribers.get_mut(&event.event.fence.id) else {
            return 0;
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
        behind
            .iter()
            .filter(|subscriber| Self::remove(owner, &subscriber.fences, subscriber.id))
            .count()
    }

    /// Takes subscriber `id` out of `owner`'s table (from every fence it follows); returns
    /// whether it was there.
    fn remove(owner: &mut OwnerLog, fences: &[Arc<str>], id: u64) -> bool {
        let mut found = false;
        for fence in fences {
            if let Some(list) = owner.subscribers.get_mut(fence) {
                let before = list.len();
                list.retain(|s| s.id != id);
                found |= list.len() != before;
                if list.is_empty() {
                    owner.subscribers.remove(fence);
                }
            }
        }
        found
    }

    /// Drops the oldest events while there are more than the count bound or they are past
    /// the window.
    pub(super) fn trim(&self, log: &mut Log, now_ms: i64) {
        let total = log.order.len();
        let mut dropped = 0;
        while let Some((at_ms, owner)) = log.order.front() {
            let too_many = total - dropped > self.config.max_retained;
            let too_old = now_ms.saturating_sub(*at_ms) > self.config.retention_ms;
            if !(too_many || too_old) {
                break;
            }
            let owner = owner.clone();
            log.order.pop_front();
            dropped += 1;
            if let Some(owner_log) = log.owners.get_mut(&owner)
                && let Some(gone) = owner_log.retained.pop_front()
            {
                owner_log.floor = owner_log.floor.max(gone.place);
            }
        }
    }

    /// Drops events past the retention window (for quiet logs, which no publish trims).
    pub fn expire(&self, now_ms: i64) {
        let mut log = self.inner.lock();
        self.trim(&mut log, now_ms);
    }

    /// Subscribes to the events of `owner`'s `fences` after `after` (or from now on, with
    /// `None`), as of `now_ms` (events past the window then are not resumed from).
    /// `born`: where each of the fences was created, in the order of `fences`: a resume
    /// from before any of them is told to list again.
    pub fn subscribe(
        self: &Arc<Self>,
        owner: &str,
        fences: Vec<Arc<str>>,
        born: &[Place],
        after: Option<EventId>,
        now_ms: i64,
    ) -> Result<Subscription, SubscribeError> {
        let mut log = self.inner.lock();
        self.trim(&mut log, now_ms);
        if log.subscriber_count >= self.config.max_subscribers {
            return Err(SubscribeError::TooManySubscribers(
                self.config.max_subscribers,
            ));
        }
        let owner: Arc<str> = owner.into();
        let head = log.head(&owner);
        let epoch = self.epoch.load(Ordering::Relaxed);
        let owner_log = log.owner(&owner);
        let start = match after {
            None => Start::Events(Vec::new()),
            Some(id) if id.epoch != epoch || id.place > head => Start::Reset(ResetReason::OtherRun),
            Some(id) if id.place < owner_log.floor => Start::Reset(ResetReason::Gap),
            Some(id) if born.iter().any(|b| *b > id.place) => Start::Reset(ResetReason::Recreated),
            Some(id) => {
                let skip = owner_log.retained.partition_point(|e| e.place <= id.place);
                Start::Events(
                    owner_log
                        .retained
                        .iter()
                        .skip(skip)
                        .filter(|e| fences.contains(&e.event.fence.id))
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
            let owner_log = log.owner(&owner);
            for fence in &fences {
                owner_log
                    .subscribers
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
            owner,
            fences,
            log: self.clone(),
        })
    }

    pub(super) fn unsubscribe(&self, owner: &str, fences: &[Arc<str>], id: u64) {
        let mut log = self.inner.lock();
        let removed = log
            .owners
            .get_mut(owner)
            .is_some_and(|o| Self::remove(o, fences, id));
        if removed {
            log.subscriber_count -= 1;
        }
    }

    /// Subscribers now.
    pub fn subscribers(&self) -> usize {
        self.inner.lock().subscriber_count
    }

    /// Events retained now.
    pub fn retained(&self) -> usize {
        self.inner.lock().order.len()
    }
}
