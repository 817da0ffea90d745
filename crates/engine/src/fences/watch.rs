//! Live maps: a watch over a box, for one viewer, told who comes into the box, moves in it
//! and leaves it, judged like fences as travellers change.
//!
//! Unlike a fence's, a watch's events are not retained: a map that reconnects starts again
//! from a fresh snapshot. What a watch has not yet delivered is kept as the latest state
//! per traveller (in the box at this position, or gone), so a map that lags gets the newest
//! position of each traveller rather than every step: moves coalesce, and the backlog is
//! bounded by the travellers in the box, never by the rate of updates. A watch whose
//! backlog passes its bound is ended (the map starts again).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use foldhash::fast::RandomState;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use super::ByTraveller;
use super::cells::{Cells, Covering};
use super::members::{Members, SeenAt};
use crate::geometry::BBox;
use crate::geometry::area::Area;
use crate::travellers::{Seen, TravellerAt, TravellerId, TravellerIndex};

/// A watch covers cells when it needs at most this many, else it is checked on every
/// update (a handful of world-sized maps cost less than their cells would).
const MAX_WATCH_CELLS: usize = 4_096;

/// A live map's subscription.
pub struct Watch {
    /// Numbers maps in the order they opened: lists of maps are kept sorted by it.
    number: u64,
    bbox: BBox,
    viewer: Option<String>,
    state: Mutex<WatchState>,
    ready: Notify,
    max_pending: usize,
}

/// A traveller on a map: where, when, and when its age counts from.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shown {
    at: crate::geometry::LatLon,
    ts: i64,
    seen_ms: i64,
}

impl SeenAt for Shown {
    fn seen_ms(&self) -> i64 {
        self.seen_ms
    }
}

struct WatchState {
    /// Who the map shows now, as last judged.
    members: Members<Shown>,
    /// Changes not yet delivered: travellers in the order they first changed, each with
    /// its latest position and whether it is still on the map.
    order: VecDeque<TravellerId>,
    latest: ByTraveller<(Shown, bool)>,
    covering: Covering,
    global: bool,
    gone: bool,
    overflowed: bool,
}

/// What a live map is told next.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchNext {
    /// A traveller came onto the map.
    Entered(TravellerAt),
    /// A traveller on the map moved.
    Moved(TravellerAt),
    /// A traveller left the map (shown where it was last).
    Left(TravellerAt),
    /// The map fell too far behind and is ended.
    Reset,
}

/// Why a live map was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The box holds more visible travellers than a snapshot may list.
    #[error("the box holds more than {0} travellers the viewer may see; ask for a smaller box")]
    TooMany(usize),
}

/// Every live map.
#[derive(Default)]
pub struct Watches {
    cells: Cells<Watch>,
    /// Maps too large for cells, checked on every update.
    global: RwLock<Vec<Arc<Watch>>>,
    /// Every map, for the expiry scan.
    all: RwLock<Vec<Arc<Watch>>>,
    /// Maps by their viewer: a traveller that is not public is shown only on these (its
    /// own, and its viewers'), never looked for on anyone else's.
    by_viewer: DashMap<Arc<str>, Vec<Arc<Watch>>, RandomState>,
    /// The maps each traveller is shown on, sorted by number: a map is added and removed
    /// by a binary search, so closing a map costs its members a search each, not a scan of
    /// every map that shows them (a thousand whole-world maps closing took seconds).
    members_of: DashMap<TravellerId, Vec<Arc<Watch>>, RandomState>,
    /// The next map's number.
    numbered: std::sync::atomic::AtomicU64,
    /// Maps open (counted up before one is registered, down after it is gone): while
    /// there are none, an update costs nothing here.
    open: AtomicUsize,
}

/// A live map's handle: its changes, and its end (dropping it unregisters the watch).
pub struct WatchHandle {
    watch: Arc<Watch>,
    watches: Arc<Watches>,
    /// Who the map has been shown and not told left.
    shown: HashSet<String>,
}

fn at(id: &str, shown: Shown) -> TravellerAt {
    TravellerAt {
        id: id.to_string(),
        position: shown.at,
        ts: shown.ts,
    }
}

impl Watches {
    /// Opens a live map over `bbox` for `viewer` (`None`: public travellers only):
    /// registered first, so that no change is missed, then filled with who is in the box
    /// now, returned as the snapshot (at most `max_snapshot` travellers, by id).
    pub fn open(
        self: &Arc<Self>,
        bbox: BBox,
        viewer: Option<String>,
        travellers: &TravellerIndex,
        now_ms: i64,
        max_snapshot: usize,
        max_pending: usize,
    ) -> Result<(WatchHandle, Vec<TravellerAt>), WatchError> {
        let area = Area::from_bbox(&bbox);
        let covering = Covering::of_area(&area);
        let global = covering.len() > MAX_WATCH_CELLS;
        self.open.fetch_add(1, Ordering::SeqCst);
        let watch = Arc::new(Watch {
            number: self.numbered.fetch_add(1, Ordering::Relaxed),
            bbox,
            viewer,
            state: Mutex::new(WatchState {
                members: Members::default(),
                order: VecDeque::new(),
                latest: ByTraveller::default(),
                covering: covering.clone(),
                global,
                gone: false,
                overflowed: false,
            }),
            ready: Notify::new(),
            max_pending,
        });
        if global {
            self.global.write().push(watch.clone());
        } else {
            self.cells.insert(&watch, &covering);
        }
        if let Some(viewer) = &watch.viewer {
            self.by_viewer
                .entry(viewer.as_str().into())
                .or_default()
                .push(watch.clone());
        }
        self.all.write().push(watch.clone());
        let mut handle = WatchHandle {
            watch: watch.clone(),
            watches: self.clone(),
            shown: HashSet::new(),
        };
        let mut count = 0usize;
        travellers.for_each_seen_in(&area, |seen, _| {
            if count <= max_snapshot && self.judge(&watch, seen, now_ms, false) {
                count += 1;
            }
        });
        if count > max_snapshot {
            return Err(WatchError::TooMany(max_snapshot));
        }
        let mut snapshot: Vec<TravellerAt> = watch
            .state
            .lock()
            .members
            .iter()
            .map(|(id, shown)| at(id, *shown))
            .collect();
        snapshot.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        handle.shown.extend(snapshot.iter().map(|t| t.id.clone()));
        Ok((handle, snapshot))
    }

    /// Judges a traveller against the maps that show it and those that may: for a public
    /// traveller the maps near it, for any other only its own viewers' maps.
    pub(super) fn on_traveller(&self, seen: Seen<'_>, now_ms: i64) {
        if self.open.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut candidates: Vec<Arc<Watch>> = self
            .members_of
            .get(seen.id())
            .map(|list| list.clone())
            .unwrap_or_default();
        match seen.position() {
            Some(p) if seen.is_public() => {
                candidates.extend(self.cells.at(p).into_iter().map(|found| found.subject));
                candidates.extend(self.global.read().iter().cloned());
            }
            Some(_) => {
                for viewer in std::iter::once(seen.id()).chain(seen.viewers()) {
                    if let Some(list) = self.by_viewer.get(viewer) {
                        candidates.extend(list.iter().cloned());
                    }
                }
            }
            None => {}
        }
        // Each map once: sorted and deduplicated, n log n however many maps there are (a
        // scan for each one was quadratic in the maps over one place).
        candidates.sort_unstable_by_key(|w| w.number);
        candidates.dedup_by_key(|w| w.number);
        for watch in &candidates {
            self.judge(watch, seen, now_ms, true);
        }
    }

    /// A traveller was deleted: every map showing it is told it left.
    pub(super) fn on_deleted(&self, id: &str) {
        let showing = self
            .members_of
            .remove(id)
            .map(|(_, list)| list)
            .unwrap_or_default();
        for watch in showing {
            let mut state = watch.state.lock();
            if let Some(shown) = state.members.remove(id) {
                Self::queue(&watch, &mut state, id.into(), shown, false);
            }
        }
    }

    /// Travellers whose position passed the time-to-live leave every map.
    pub(super) fn expire(&self, now_ms: i64, ttl_ms: i64) {
        let watches = self.all.read().clone();
        for watch in watches {
            let mut state = watch.state.lock();
            let expired = state.members.take_expired(now_ms, ttl_ms, false);
            for (id, shown) in expired {
                self.forget(&id, &watch);
                Self::queue(&watch, &mut state, id, shown, false);
            }
        }
    }

    /// Whether `seen` is on `watch`'s map now; records the change, and queues it for the
    /// map if `queue`. Returns whether it is on the map.
    fn judge(&self, watch: &Arc<Watch>, seen: Seen<'_>, now_ms: i64, queue: bool) -> bool {
        let mut state = watch.state.lock();
        if state.gone {
            return false;
        }
        let now = seen
            .position()
            .filter(|p| {
                seen.live(now_ms) && seen.allows(watch.viewer.as_deref()) && watch.bbox.contains(*p)
            })
            .map(|p| Shown {
                at: p,
                ts: seen.ts(),
                seen_ms: seen.seen_ms(),
            });
        let id = seen.id();
        match (state.members.get(id).copied(), now) {
            (None, None) => false,
            (Some(before), None) => {
                state.members.remove(id);
                self.forget(id, watch);
                if queue {
                    Self::queue(watch, &mut state, id.into(), before, false);
                }
                false
            }
            (before, Some(shown)) => {
                state.members.insert(id.into(), shown);
                if before.is_none() {
                    let mut list = self.members_of.entry(id.into()).or_default();
                    if let Err(at) = list.binary_search_by_key(&watch.number, |w| w.number) {
                        list.insert(at, watch.clone());
                    }
                }
                if queue && before.is_none_or(|b| b.at != shown.at || b.ts != shown.ts) {
                    Self::queue(watch, &mut state, id.into(), shown, true);
                }
                true
            }
        }
    }

    fn forget(&self, id: &str, watch: &Arc<Watch>) {
        self.members_of.remove_if_mut(id, |_, list| {
            if let Ok(at) = list.binary_search_by_key(&watch.number, |w| w.number) {
                list.remove(at);
            }
            list.is_empty()
        });
    }

    /// Records a traveller's latest state for the map to take; past the bound, the map is
    /// ended. The map is woken when its first change waits (it takes them all at once).
    fn queue(watch: &Watch, state: &mut WatchState, id: TravellerId, shown: Shown, on_map: bool) {
        if state.overflowed {
            return;
        }
        if state.latest.insert(id.clone(), (shown, on_map)).is_none() {
            state.order.push_back(id);
            if state.order.len() > watch.max_pending {
                state.overflowed = true;
                state.order.clear();
                state.latest.clear();
                watch.ready.notify_one();
            } else if state.order.len() == 1 {
                watch.ready.notify_one();
            }
        }
    }

    fn close(&self, watch: &Arc<Watch>) {
        let (covering, global, members) = {
            let mut state = watch.state.lock();
            state.gone = true;
            (
                state.covering.clone(),
                state.global,
                state.members.drain().map(|(id, _)| id).collect::<Vec<_>>(),
            )
        };
        if global {
            self.global.write().retain(|w| !Arc::ptr_eq(w, watch));
        } else {
            self.cells.remove(watch, &covering);
        }
        if let Some(viewer) = &watch.viewer {
            self.by_viewer.remove_if_mut(viewer.as_str(), |_, list| {
                list.retain(|w| !Arc::ptr_eq(w, watch));
                list.is_empty()
            });
        }
        self.all.write().retain(|w| !Arc::ptr_eq(w, watch));
        for id in members {
            self.forget(&id, watch);
        }
        self.open.fetch_sub(1, Ordering::SeqCst);
    }

    /// Live maps open now.
    pub fn count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl WatchHandle {
    /// The next change for the map, waiting for one.
    pub async fn next(&mut self) -> WatchNext {
        let watch = self.watch.clone();
        loop {
            // Registered before looking, so a change queued in between still wakes us.
            let notified = watch.ready.notified();
            if let Some(next) = self.take() {
                return next;
            }
            notified.await;
        }
    }

    /// Waits until a change is waiting for the map (or it fell behind).
    pub async fn changed(&self) {
        loop {
            // Registered before looking, so a change queued in between still wakes us.
            let notified = self.watch.ready.notified();
            {
                let state = self.watch.state.lock();
                if state.overflowed || !state.order.is_empty() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Every change waiting for the map, each traveller's newest state once: a frame. A
    /// `Reset` ends it.
    pub fn drain(&mut self) -> Vec<WatchNext> {
        let mut frame = Vec::new();
        while let Some(next) = self.take() {
            let reset = next == WatchNext::Reset;
            frame.push(next);
            if reset {
                break;
            }
        }
        frame
    }

    /// The next change if one is waiting, as the map should be told it: a traveller it has
    /// not been shown `entered`, one it has `moved`; one that left and was never shown is
    /// skipped.
    fn take(&mut self) -> Option<WatchNext> {
        loop {
            let mut state = self.watch.state.lock();
            if state.overflowed {
                return Some(WatchNext::Reset);
            }
            let id = state.order.pop_front()?;
            let (shown, on_map) = state.latest.remove(&id).expect("queued ids have a state");
            drop(state);
            let traveller = at(&id, shown);
            if on_map {
                return Some(if self.shown.insert(traveller.id.clone()) {
                    WatchNext::Entered(traveller)
                } else {
                    WatchNext::Moved(traveller)
                });
            }
            if self.shown.remove(&traveller.id) {
                return Some(WatchNext::Left(traveller));
            }
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.watches.close(&self.watch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::LatLon;
    use crate::travellers::{PositionUpdate, Sharing, TravellerConfig, Visibility};

    const NOW: i64 = 1_000_000;

    fn moved(index: &TravellerIndex, watches: &Watches, id: &str, lat: f64, ts: i64) {
        let u = PositionUpdate::new(id.into(), lat, 24.95, ts, None, None).expect("valid");
        index.update_then(&u, NOW, |seen| watches.on_traveller(seen, NOW));
    }

    fn setup() -> (TravellerIndex, Arc<Watches>, WatchHandle) {
        let index = TravellerIndex::new(TravellerConfig {
            trail_capacity: 4,
            ttl_ms: 60_000,
        });
        for id in ["a", "b"] {
            index.set_sharing(id, Sharing::new(Visibility::Public, vec![]).expect("valid"));
        }
        let watches = Arc::new(Watches::default());
        let bbox = BBox::new(24.9, 60.1, 25.0, 60.2).expect("valid");
        let (handle, snapshot) = watches.open(bbox, None, &index, NOW, 100, 1).expect("room");
        assert!(snapshot.is_empty());
        (index, watches, handle)
    }

    #[tokio::test]
    async fn a_map_that_lags_gets_each_travellers_newest_position_once() {
        let (index, watches, mut handle) = setup();
        for step in 0..100 {
            moved(
                &index,
                &watches,
                "a",
                60.11 + f64::from(step) * 0.0005,
                NOW - 1000 + i64::from(step),
            );
        }
        let next = handle.next().await;
        let WatchNext::Entered(a) = next else {
            panic!("entered, got {next:?}");
        };
        assert_eq!(
            a.position,
            LatLon {
                lat: 60.11 + 99.0 * 0.0005,
                lon: 24.95
            }
        );
        assert_eq!(handle.take(), None, "a hundred moves, one change");
        // Moved, then gone before the map looked: the map is told it left, once.
        moved(&index, &watches, "a", 60.15, NOW);
        moved(&index, &watches, "a", 61.0, NOW + 1);
        let WatchNext::Left(a) = handle.next().await else {
            panic!("left");
        };
        assert_eq!(a.id, "a");
        assert_eq!(handle.take(), None);
    }

    #[tokio::test]
    async fn a_map_whose_backlog_passes_its_bound_is_reset() {
        let (index, watches, mut handle) = setup();
        // The bound is one traveller waiting; a second one past it ends the map.
        moved(&index, &watches, "a", 60.15, NOW);
        moved(&index, &watches, "b", 60.16, NOW);
        assert_eq!(handle.next().await, WatchNext::Reset);
        drop(handle);
        assert_eq!(watches.count(), 0, "a dropped map is unregistered");
        assert!(watches.members_of.is_empty());
    }
}
