//! [`Seen`]: a traveller as an observer (a fence, a live map) sees it, read while its record
//! is locked, so that what the observer decides and the traveller's state cannot drift
//! apart. Also the walks that hand observers every traveller of an area or a cap.

use super::TravellerAt;
use super::cells::{Cover, FINE};
use super::index::TravellerIndex;
use super::record::Record;
use super::shard::{Handle, split};
use super::sharing::TripShare;
use crate::geometry::LatLon;
use crate::geometry::area::{Area, Overlap};

/// A traveller as it is now, borrowed from its locked record.
#[derive(Clone, Copy)]
pub struct Seen<'a> {
    pub(super) record: &'a Record,
    pub(super) handle: Handle,
    pub(super) ttl_ms: i64,
}

/// Where a traveller's record lies, to read it again without looking its id up
/// ([`TravellerIndex::with_seen_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TravellerHandle(pub(super) Handle);

impl std::fmt::Debug for Seen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field("id", &self.id())
            .field("position", &self.position())
            .field("ts", &self.ts())
            .finish_non_exhaustive()
    }
}

impl<'a> Seen<'a> {
    /// The traveller's id.
    pub fn id(&self) -> &'a str {
        &self.record.id
    }

    /// Its newest position, if it has one (it may have expired: see [`Seen::live`]).
    pub fn position(&self) -> Option<LatLon> {
        self.record.has_current().then_some(self.record.position)
    }

    /// The timestamp of its newest position.
    pub fn ts(&self) -> i64 {
        self.record.ts
    }

    /// When its newest position's age counts from.
    pub fn seen_ms(&self) -> i64 {
        self.record.seen_ms()
    }

    /// Whether it has a position younger than the time-to-live at `now_ms`.
    pub fn live(&self, now_ms: i64) -> bool {
        self.record.has_current() && now_ms.saturating_sub(self.record.seen_ms()) <= self.ttl_ms
    }

    /// Whether `viewer` may see it (`None`: an anonymous viewer, public travellers only).
    pub fn allows(&self, viewer: Option<&str>) -> bool {
        self.record.allows(viewer)
    }

    /// Whether one of its privacy zones hides where it is now from everyone but itself
    /// (a fence or live map with no viewer still must not see it).
    pub fn in_privacy_zone(&self) -> bool {
        self.record.in_privacy_zone()
    }

    /// Whether it has privacy zones.
    pub fn has_privacy_zones(&self) -> bool {
        self.record.shrouds().is_some()
    }

    /// Whether everyone may see it.
    pub fn is_public(&self) -> bool {
        self.record.visibility() == super::Visibility::Public
    }

    /// The viewers it shares with by name (besides itself): its friends, when its sharing
    /// is `friends`, and the followers of its running trip (who may see it only once it
    /// reports a position within the trip: ask [`Seen::allows`]). A viewer may be named
    /// twice.
    pub fn viewers(&self) -> impl Iterator<Item = &'a str> + 'a {
        let record = self.record;
        let friends = record.visibility() == super::Visibility::Friends;
        record
            .viewer_list()
            .iter()
            .take(if friends { usize::MAX } else { 0 })
            .map(|v| &**v)
            .chain(
                record
                    .trip_share()
                    .into_iter()
                    .flat_map(TripShare::followers),
            )
    }

    /// Where its record lies.
    pub fn handle(&self) -> TravellerHandle {
        TravellerHandle(self.handle)
    }

    /// An owned copy of where it is, if it has a position.
    pub fn at(&self) -> Option<TravellerAt> {
        self.position().map(|position| TravellerAt {
            id: self.id().to_string(),
            position,
            ts: self.ts(),
        })
    }
}

impl TravellerIndex {
    /// Calls `f` with every traveller with a position in a cell that may hold a point of
    /// `area`, and how the area meets that cell (a traveller may still be outside a cell
    /// the area meets `Partly`). Each record is read-locked while `f` runs.
    pub fn for_each_seen_in(&self, area: &Area, mut f: impl FnMut(Seen<'_>, Overlap)) {
        let mut handles = Vec::new();
        for (cell, known) in self.cells_of(area) {
            handles.clear();
            self.cells.ids_in(cell, &mut handles);
            if handles.is_empty() {
                continue;
            }
            let overlap = known.unwrap_or_else(|| {
                let (w, s, e, n) = FINE.cell_bounds(cell);
                area.overlap(w, s, e, n)
            });
            if overlap == Overlap::Outside {
                continue;
            }
            self.visit(cell, &handles, |seen| f(seen, overlap));
        }
    }

    /// Calls `f` with every traveller with a position in a cell that may hold a point within
    /// `radius_m` of `center`. Each record is read-locked while `f` runs.
    pub fn for_each_seen_near(&self, center: LatLon, radius_m: f64, mut f: impl FnMut(Seen<'_>)) {
        let cells = match self.cells.cover_cap(center, radius_m) {
            Cover::Fine(cells) => cells,
            Cover::Coarse(ranked) => ranked
                .into_iter()
                .flat_map(|(_, coarse)| self.cells.children(coarse))
                .collect(),
        };
        let mut handles = Vec::new();
        for cell in cells {
            handles.clear();
            self.cells.ids_in(cell, &mut handles);
            self.visit(cell, &handles, &mut f);
        }
    }

    /// Calls `f` with each of `handles` whose record still names `cell`.
    fn visit(&self, cell: u64, handles: &[u32], mut f: impl FnMut(Seen<'_>)) {
        for &h in handles {
            let (s, slot) = split(h);
            let shard = self.shards[s].read();
            let t = shard.record(slot);
            if u64::from(t.cell) == cell {
                f(self.seen(h, t));
            }
        }
    }

    /// Like [`TravellerIndex::with_seen`], from where the record of `id` was: no id lookup
    /// (a fence judging the travellers near it reads each twice: to choose, then to judge).
    /// `None` if the record there is no longer `id`'s.
    pub fn with_seen_at<R>(
        &self,
        at: TravellerHandle,
        id: &str,
        f: impl FnOnce(Seen<'_>) -> R,
    ) -> Option<R> {
        let (s, slot) = split(at.0);
        let shard = self.shards.get(s)?.read();
        if slot >= shard.used {
            return None;
        }
        let t = shard.record(slot);
        (t.id == id).then(|| f(self.seen(at.0, t)))
    }
}
