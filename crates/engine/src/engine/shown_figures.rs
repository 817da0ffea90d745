//! [`ShownFigures`]: a trip's figures as readers who may not see all of its route see
//! them (a share link's window, the traveller's privacy zones), kept from one read to the
//! next while the route has not changed.
//!
//! Those figures are worked out from the points the reader may see, reading the whole
//! window (up to two million points under a window, every point under zones), where the
//! figures kept with the route cost one lookup. Without this, every `GET /v1/shared/{token}`
//! of a long trip, which anyone holding the link may send twenty times a second from each
//! address, folded the route again. Now the route is folded once for each change the
//! traveller makes to it (and each window and set of zones): how often it is done is the
//! traveller's doing, not the readers'.
//!
//! An entry is keyed by the trip, the window and the zones' shrouds (held, so that a
//! change to the zones, which makes new shrouds, never matches an old entry), and is good
//! only while the figures kept with the route, read just before the fold, are the same:
//! their count of points, first and last points and distance change with any change to
//! the route (points added, late or not, erased or trimmed).

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::routes::TripFigures;
use crate::zones::Shrouds;

/// Slots: trips' shown figures kept at once (each a few hundred bytes).
const SLOTS: usize = 512;

/// What the shown figures were worked out from.
#[derive(Debug, Clone)]
pub(super) struct ShownKey {
    trip: Box<str>,
    window: (i64, i64),
    shrouds: Option<Arc<Shrouds>>,
    route: RouteState,
}

/// The route as the figures kept with it describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RouteState {
    points: u64,
    first: Option<i64>,
    last: Option<i64>,
    distance_bits: u64,
}

impl ShownKey {
    /// The key of trip `trip`'s figures over `window` under `shrouds`, with `kept` the
    /// figures kept with its route now.
    pub(super) fn new(
        trip: &str,
        window: (i64, i64),
        shrouds: Option<Arc<Shrouds>>,
        kept: &TripFigures,
    ) -> Self {
        Self {
            trip: trip.into(),
            window,
            shrouds,
            route: RouteState {
                points: kept.points,
                first: kept.first.map(|p| p.ts),
                last: kept.last.map(|p| p.ts),
                distance_bits: kept.distance_m.to_bits(),
            },
        }
    }

    fn same(&self, other: &Self) -> bool {
        self.trip == other.trip
            && self.window == other.window
            && self.route == other.route
            && match (&self.shrouds, &other.shrouds) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// One slot: the figures kept last for a trip and window hashed to it.
type Slot = Mutex<Option<(ShownKey, TripFigures)>>;

/// Shown figures by a hash of trip and window, one entry a slot.
pub(super) struct ShownFigures {
    hasher: RandomState,
    slots: Box<[Slot]>,
    /// Figures kept so far (tests: how often they were worked out).
    #[cfg(test)]
    pub(super) puts: std::sync::atomic::AtomicU64,
}

impl Default for ShownFigures {
    fn default() -> Self {
        Self {
            hasher: RandomState::default(),
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
            #[cfg(test)]
            puts: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl ShownFigures {
    fn slot(&self, key: &ShownKey) -> &Slot {
        let mut h = self.hasher.build_hasher();
        key.trip.hash(&mut h);
        key.window.hash(&mut h);
        &self.slots[(h.finish() % SLOTS as u64) as usize]
    }

    /// The figures kept for `key`, if they were worked out from the same route, window
    /// and zones.
    pub(super) fn get(&self, key: &ShownKey) -> Option<TripFigures> {
        let slot = self.slot(key).lock();
        slot.as_ref()
            .filter(|(k, _)| k.same(key))
            .map(|(_, figures)| figures.clone())
    }

    /// Keeps `figures`, worked out for `key`.
    pub(super) fn put(&self, key: ShownKey, figures: TripFigures) {
        #[cfg(test)]
        self.puts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slot = self.slot(&key);
        *slot.lock() = Some((key, figures));
    }
}
