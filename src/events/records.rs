//! The event log in a cluster: its epoch is the cluster's; a change's events are held back
//! while it is applied and numbered when it ends, in an order every node agrees on (see the
//! module documentation of [`super`]); and the tap `--cluster-events` reads every event from.

use std::sync::atomic::Ordering;

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Event, EventKind, EventLog, NewEvent, Place};

impl EventLog {
    /// Makes this log a cluster's: its ids carry the cluster's epoch, the same on every
    /// node. Call before the first change from the stream.
    pub fn join_cluster(&self, epoch: u32) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// A cluster node judges every change after stream sequence `record` from now on:
    /// events from before it are not here (a resume from there is a gap).
    pub fn start_at(&self, record: u64) {
        let mut log = self.inner.lock();
        log.retained.clear();
        log.head = Place::after(record);
        log.floor = log.head;
    }

    /// Hands every event published from now on also to `tap` (a bounded queue that is never
    /// waited for: an event it has no room for is counted in [`EventLog::tap_dropped`]).
    /// Set once; a second tap is ignored.
    pub fn set_tap(&self, tap: mpsc::Sender<Arc<Event>>) {
        let _ = self.tap.set(tap);
    }

    /// Events the tap had no room for.
    pub fn tap_dropped(&self) -> u64 {
        self.tap_dropped.load(Ordering::Relaxed)
    }

    /// Holds back the events of the cluster change at stream sequence `record` until
    /// [`EventLog::end_record`].
    pub fn begin_record(&self, record: u64) {
        self.inner.lock().pending = Some((record, Vec::new()));
    }

    /// Numbers the held-back events of the change begun with [`EventLog::begin_record`],
    /// in an order every node gives them (by fence, then traveller, then as they
    /// happened), and publishes them; the head moves past the change.
    pub fn end_record(&self) {
        let mut log = self.inner.lock();
        let Some((record, mut events)) = log.pending.take() else {
            return;
        };
        // Stable: a traveller's events within a fence keep the order they happened in. A
        // fence's `deleted` comes last.
        events.sort_by(|(_, a), (_, b)| {
            fn traveller(e: &NewEvent) -> Option<&str> {
                e.traveller.as_ref().map(|t| t.id.as_str())
            }
            a.fence
                .cmp(&b.fence)
                .then((a.kind == EventKind::Deleted).cmp(&(b.kind == EventKind::Deleted)))
                .then_with(|| traveller(a).cmp(&traveller(b)))
        });
        let last_at = events.last().map(|(at, _)| *at);
        for (index, (at_ms, event)) in events.into_iter().enumerate() {
            // More events than an index holds from one change cannot be numbered apart:
            // they would need 4 billion memberships to change at once.
            let index = u32::try_from(index)
                .ok()
                .filter(|&i| i != Place::WHOLE)
                .unwrap_or(Place::WHOLE - 1);
            self.append(&mut log, Place { record, index }, at_ms, event);
        }
        log.head = log.head.max(Place::after(record));
        if let Some(at) = last_at {
            self.trim(&mut log, at);
        }
    }
}
