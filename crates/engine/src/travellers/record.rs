//! [`Record`]: one traveller's state packed into 72 bytes, with the rare parts behind one
//! pointer.

use super::TravellerId;
use super::sharing::{self, Sharing, Since, TripShare, Visibility};
use super::trail::Trail;
use crate::geometry::LatLon;
use crate::zones::Shrouds;
use std::sync::Arc;

/// `Record::cell` of a traveller without a current position.
pub(super) const NO_CELL: u32 = u32::MAX;

/// One traveller's record: 72 bytes. The current position, its timestamps and fine cell,
/// and the visibility are inline, because every update and every query reads them; the
/// rare parts (accuracy, trip, a friends list) are behind one pointer that most travellers
/// leave empty.
#[derive(Debug)]
pub(super) struct Record {
    /// Empty for a free slot (ids are never empty).
    pub(super) id: TravellerId,
    pub(super) position: LatLon,
    pub(super) ts: i64,
    /// The fine cell of `position`, or [`NO_CELL`] when there is no current position.
    pub(super) cell: u32,
    /// The visibility (low 2 bits) and how long before `ts` the position's age counts from
    /// (`ts - seen_ms`, in ms, the upper 30 bits: 0 unless the device clock runs ahead of
    /// the server's). A lag that does not fit (12 days ahead) is [`LAG_IN_EXTRA`], and the
    /// exact moment is in `extra`. Packed so that the record is 72 bytes, not 80.
    packed: u32,
    pub(super) trail: Trail,
    extra: Option<Box<Extra>>,
}

/// The lag value meaning "`seen_ms` is in `extra`".
const LAG_IN_EXTRA: u32 = (1 << 30) - 1;

/// The parts of a record most travellers do not have.
#[derive(Debug, Default, Clone, PartialEq)]
struct Extra {
    accuracy_m: Option<f64>,
    trip_id: Option<Box<str>>,
    /// Sorted (see [`Sharing`]).
    viewers: Box<[Box<str>]>,
    /// The moment the position's age counts from, when it is too far before `ts` to pack.
    seen_ms: Option<i64>,
    /// Since when its viewers may see its history, unless they all see everything kept.
    since: Option<Box<Since>>,
    /// Who follows its running trip, if one runs and has followers.
    trip_share: Option<Box<TripShare>>,
    /// Its privacy zones' shrouds, if it has zones.
    shrouds: Option<Arc<Shrouds>>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        self.accuracy_m.is_none()
            && self.trip_id.is_none()
            && self.viewers.is_empty()
            && self.seen_ms.is_none()
            && self.since.is_none()
            && self.trip_share.is_none()
            && self.shrouds.is_none()
    }
}

impl Default for Record {
    /// A free slot.
    fn default() -> Self {
        Self {
            id: TravellerId::default(),
            position: LatLon::default(),
            ts: 0,
            cell: NO_CELL,
            packed: visibility_bits(Visibility::Private),
            trail: Trail::default(),
            extra: None,
        }
    }
}

fn visibility_bits(visibility: Visibility) -> u32 {
    match visibility {
        Visibility::Private => 0,
        Visibility::Friends => 1,
        Visibility::Public => 2,
    }
}

impl Record {
    /// A copy of everything an observer reads (all but the trail), to judge it with no
    /// lock held.
    pub(super) fn observed_copy(&self) -> Self {
        Self {
            id: self.id.clone(),
            position: self.position,
            ts: self.ts,
            cell: self.cell,
            packed: self.packed,
            trail: super::trail::Trail::default(),
            extra: self.extra.clone(),
        }
    }

    /// The record of a traveller with no position yet and the default sharing.
    pub(super) fn new(id: &str) -> Self {
        Self {
            id: TravellerId::from(id),
            ..Self::default()
        }
    }

    pub(super) fn has_current(&self) -> bool {
        self.cell != NO_CELL
    }

    pub(super) fn visibility(&self) -> Visibility {
        match self.packed & 3 {
            0 => Visibility::Private,
            1 => Visibility::Friends,
            _ => Visibility::Public,
        }
    }

    fn set_visibility(&mut self, visibility: Visibility) {
        self.packed = (self.packed & !3) | visibility_bits(visibility);
    }

    /// The moment the current position's age counts from.
    pub(super) fn seen_ms(&self) -> i64 {
        match self.packed >> 2 {
            LAG_IN_EXTRA => self
                .extra
                .as_ref()
                .and_then(|e| e.seen_ms)
                .expect("a lag in extra is there"),
            lag => self.ts - i64::from(lag),
        }
    }

    /// Sets the current position's timestamp and the moment its age counts from.
    pub(super) fn set_times(&mut self, ts: i64, seen_ms: i64) {
        self.ts = ts;
        let lag = ts
            .checked_sub(seen_ms)
            .and_then(|lag| u32::try_from(lag).ok())
            .filter(|&lag| lag < LAG_IN_EXTRA);
        self.packed = (self.packed & 3) | (lag.unwrap_or(LAG_IN_EXTRA) << 2);
        self.edit_extra(lag.is_none(), |extra| {
            extra.seen_ms = lag.is_none().then_some(seen_ms);
        });
    }

    /// The viewers list as stored (whatever the visibility).
    pub(super) fn viewer_list(&self) -> &[Box<str>] {
        self.viewers()
    }

    fn viewers(&self) -> &[Box<str>] {
        self.extra.as_ref().map_or(&[], |e| &e.viewers)
    }

    /// Whether `viewer` may see it where it is now: by its sharing, or as a follower of
    /// its running trip (a position reported within the trip); and never inside one of its
    /// privacy zones, unless it is the traveller itself.
    pub(super) fn allows(&self, viewer: Option<&str>) -> bool {
        (sharing::allows(self.visibility(), self.viewers(), &self.id, viewer)
            || self.trip_share().is_some_and(|s| s.allows(viewer, self.ts)))
            && sharing::zone_allows(self.shrouds(), &self.id, viewer, self.position)
    }

    /// Whether a privacy zone hides where it is now from everyone but itself.
    pub(super) fn in_privacy_zone(&self) -> bool {
        self.shrouds().is_some_and(|s| s.hide(self.position))
    }

    /// Its privacy zones' shrouds, if it has zones.
    pub(super) fn shrouds(&self) -> Option<&Shrouds> {
        self.extra.as_ref().and_then(|e| e.shrouds.as_deref())
    }

    /// Sets its privacy zones' shrouds (`None`: it has no zones).
    pub(super) fn set_shrouds(&mut self, shrouds: Option<Arc<Shrouds>>) {
        self.edit_extra(shrouds.is_some(), |extra| extra.shrouds = shrouds);
    }

    /// Who follows its running trip.
    pub(super) fn trip_share(&self) -> Option<&TripShare> {
        self.extra.as_ref().and_then(|e| e.trip_share.as_deref())
    }

    /// Sets who follows its running trip.
    pub(super) fn set_trip_share(&mut self, share: Option<TripShare>) {
        self.edit_extra(share.is_some(), |extra| {
            extra.trip_share = share.map(Box::new);
        });
    }

    /// Whether `viewer` may see this traveller's point of `ts` at `at` (see [`sharing`]).
    pub(super) fn allows_history(&self, viewer: Option<&str>, ts: i64, at: LatLon) -> bool {
        if !sharing::zone_allows(self.shrouds(), &self.id, viewer, at) {
            return false;
        }
        if self.trip_share().is_some_and(|s| s.allows(viewer, ts)) {
            return true;
        }
        let everything = Since::default();
        let since = self.extra.as_ref().and_then(|e| e.since.as_deref());
        sharing::allows_history(
            self.visibility(),
            self.viewers(),
            since.unwrap_or(&everything),
            &self.id,
            viewer,
            ts,
        )
    }

    /// Since when its viewers may see its history.
    pub(super) fn since(&self) -> Since {
        self.extra
            .as_ref()
            .and_then(|e| e.since.as_deref().cloned())
            .unwrap_or_default()
    }

    /// Whether nobody but itself may see it and it has no privacy zones, so that nothing
    /// but its position is worth keeping.
    pub(super) fn sharing_is_default(&self) -> bool {
        sharing::is_default(self.visibility(), self.viewers())
            && self.trip_share().is_none()
            && self.shrouds().is_none()
    }

    pub(super) fn accuracy_m(&self) -> Option<f64> {
        self.extra.as_ref().and_then(|e| e.accuracy_m)
    }

    pub(super) fn trip_id(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.trip_id.as_deref())
    }

    /// Sets the rare parts of the current position, allocating only if there are any.
    pub(super) fn set_position_extra(&mut self, accuracy_m: Option<f64>, trip_id: Option<&str>) {
        let needed = accuracy_m.is_some() || trip_id.is_some();
        self.edit_extra(needed, |extra| {
            extra.accuracy_m = accuracy_m;
            extra.trip_id = trip_id.map(Box::from);
        });
    }

    /// Sets who may see it. A viewer that may see it now and could not before sees none of
    /// the history kept so far (see [`sharing`]).
    pub(super) fn set_sharing(&mut self, sharing: Sharing) {
        let cut = self
            .trail
            .newest_ts()
            .map_or(i64::MIN, |ts| ts.saturating_add(1));
        let (visibility, viewers) = sharing.into_parts();
        let since = self.since().after_change(
            (self.visibility(), self.viewers()),
            (visibility, &viewers),
            cut,
        );
        self.restore_sharing(visibility, viewers, since);
    }

    /// Sets who may see it and since when, as a snapshot recorded them.
    pub(super) fn restore_sharing(
        &mut self,
        visibility: Visibility,
        viewers: Box<[Box<str>]>,
        since: Since,
    ) {
        self.set_visibility(visibility);
        let since = (!since.is_everything()).then(|| Box::new(since));
        self.edit_extra(!viewers.is_empty() || since.is_some(), |extra| {
            extra.viewers = viewers;
            extra.since = since;
        });
    }

    /// Applies `edit` to the rare parts, creating them only if `needed` (an update that sets
    /// nothing rare must not allocate) and dropping them once they are all empty.
    fn edit_extra(&mut self, needed: bool, edit: impl FnOnce(&mut Extra)) {
        if self.extra.is_none() && !needed {
            return;
        }
        let extra = self.extra.get_or_insert_with(Box::default);
        edit(extra);
        if extra.is_empty() {
            self.extra = None;
        }
    }

    pub(super) fn sharing(&self) -> Sharing {
        Sharing::from_parts(self.visibility(), self.viewers().into())
    }

    /// Forgets the current position and the trail.
    pub(super) fn clear_position(&mut self) {
        self.cell = NO_CELL;
        self.trail = Trail::default();
        self.packed &= 3;
        self.edit_extra(false, |extra| {
            extra.accuracy_m = None;
            extra.trip_id = None;
            extra.seen_ms = None;
        });
    }
}

const _: () = assert!(
    size_of::<Record>() == 72,
    "a traveller's record is 72 bytes"
);
