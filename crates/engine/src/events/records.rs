//! The event log in a cluster: its epoch is the cluster's; a change's events are held back
//! while it is applied and numbered when it ends, in an order every node agrees on; and
//! the tap `--cluster-events` reads every event from.
//!
//! An event's id must be the same on every node, and must tell a watcher nothing about
//! other owners' events (nor, through a global sequence, about everyone's writes). So each
//! owner's events are numbered within **intervals** that every node agrees on: an interval
//! begins at each clock tick of the stream ([`crate::engine::ExpireFences`], once a second
//! while there are fences) and when the first fence is created after there were none. An
//! event's id is `<epoch>-<interval>.<n>`: the interval's number (the tick's second, kept
//! increasing) and the event's place among its owner's events in that interval. A node
//! that catches up with the stream quietly starts judging at a tick, where every owner's
//! count starts again, so from there on it numbers exactly as the nodes that judged all
//! along. Within a change, events are ordered by fence, then traveller, then as they
//! happened, which does not depend on the order a node judged them in.
//!
//! The interval is part of a node's state: snapshots carry it, so a node started from one
//! numbers as the others do.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::{Event, EventId, EventKind, EventLog, NewEvent, Place};

impl EventLog {
    /// Makes this log a cluster's: its ids carry the cluster's epoch, the same on every
    /// node, and are numbered in intervals. Call before the first change from the stream.
    pub fn join_cluster(&self, epoch: u32) {
        self.epoch.store(epoch, Ordering::Relaxed);
        let mut log = self.inner.lock();
        if log.interval.is_none() {
            log.interval = Some(0);
        }
    }

    /// The interval events are numbered in now (0 on a single node).
    pub fn interval(&self) -> u64 {
        self.inner.lock().interval.unwrap_or(0)
    }

    /// Restores the interval a snapshot recorded (a cluster node starting from it).
    pub fn restore_interval(&self, interval: u64) {
        let mut log = self.inner.lock();
        if let Some(current) = &mut log.interval {
            *current = interval;
        }
    }

    /// A cluster node judges every change from now on: events from before are not here (a
    /// resume from there is a gap). `at_tick`: it starts at a clock tick, where every node
    /// begins a new interval, so it has every event of this one; else (it starts at once,
    /// there being no fences) other nodes may have numbered events earlier in this
    /// interval, and it has none of this interval's (no event comes before the first fence
    /// begins the next).
    pub fn start_here(&self, at_tick: bool) {
        let mut log = self.inner.lock();
        let interval = log.interval.unwrap_or(0);
        let floor = Place {
            record: interval,
            index: if at_tick { 0 } else { Place::WHOLE },
        };
        log.floor_place = floor;
        for owner in log.owners.values_mut() {
            owner.count = 0;
            owner.floor = floor;
        }
        drop(log);
        self.moved.send_modify(|n| *n += 1);
    }

    /// Where this node's events of `owner` begin: a resume from before is a gap.
    pub fn floor(&self, owner: &str) -> EventId {
        let log = self.inner.lock();
        let floor = log.owners.get(owner).map_or(log.floor_place, |o| o.floor);
        drop(log);
        self.id_of(floor)
    }

    /// A new interval begins (a clock tick of `second`, or the first fence created at
    /// `second` after there were none): numbers go on from the greater of the next
    /// interval and `second`, every owner counting from 0 again.
    pub fn new_interval(&self, second: u64) {
        let mut log = self.inner.lock();
        let Some(current) = log.interval else {
            return;
        };
        let next = current.saturating_add(1).max(second);
        log.interval = Some(next);
        for owner in log.owners.values_mut() {
            owner.count = 0;
        }
        drop(log);
        self.moved.send_modify(|n| *n += 1);
    }

    /// Whether this node has numbered every event of `owner` up to `place`: its interval
    /// is past `place`'s, or in it with at least as many events.
    pub fn reached(&self, owner: &str, place: Place) -> bool {
        self.inner.lock().head(owner) >= place
    }

    /// Waits (at most `wait`) until [`EventLog::reached`]; whether it did.
    pub async fn wait_to_reach(
        &self,
        owner: &str,
        place: Place,
        wait: std::time::Duration,
    ) -> bool {
        let mut moved = self.moved.subscribe();
        let reached = tokio::time::timeout(wait, async {
            loop {
                if self.reached(owner, place) {
                    return;
                }
                if moved.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        reached.is_ok() && self.reached(owner, place)
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

    /// Holds back the events of the cluster change being applied until
    /// [`EventLog::end_record`].
    pub fn begin_record(&self) {
        self.inner.lock().pending = Some(Vec::new());
    }

    /// Numbers the held-back events of the change begun with [`EventLog::begin_record`],
    /// in an order every node gives them (by fence, then traveller, then as they
    /// happened), and publishes them.
    pub fn end_record(&self) {
        let mut log = self.inner.lock();
        let Some(mut events) = log.pending.take() else {
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
        for (at_ms, event) in events {
            self.append(&mut log, at_ms, event);
        }
        if let Some(at) = last_at {
            self.trim(&mut log, at);
        }
        drop(log);
        self.moved.send_modify(|n| *n += 1);
    }
}
