//! Trips: a traveller's trips, who follows each, and the links that share them.
//!
//! [`Trips`] owns every trip's record ([`TripRecord`]: the [`Trip`], its followers and its
//! [`Link`]s), found by id, by traveller (each traveller's trips in time order, never
//! overlapping, so a position's `ts` falls in at most one), and by link. It also keeps the
//! instants at which something about a trip changes by itself (it starts, it ends, a link
//! expires), for the engine's clock tick.
//!
//! Who may see a trip, and a running trip's traveller, is decided by
//! [`crate::travellers::sharing`], the one place visibility is decided; this module only
//! hands it the followers ([`Trips::share_at`]). Routes themselves are in
//! [`crate::routes`], on disk.

mod links;
mod trip;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

pub use links::{Link, split_token};
pub use trip::{MAX_TITLE_BYTES, Trip, TripFieldError};

use crate::ids::{IdError, validate_id};
use crate::travellers::TripShare;

/// The most followers a trip may have.
pub const MAX_FOLLOWERS: usize = 1_000;
/// The most links a trip may have at once.
pub const MAX_LINKS: usize = 100;
/// The most trips a traveller may have.
pub const MAX_TRIPS_PER_TRAVELLER: usize = 10_000;

/// One trip and who may read it: as kept, snapshotted and listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TripRecord {
    /// The trip.
    pub trip: Trip,
    /// Its followers, sorted, each once.
    pub followers: Vec<String>,
    /// Its share links.
    pub links: Vec<Link>,
}

impl TripRecord {
    /// Whether `viewer` may see the trip, its route and stays (see
    /// [`crate::travellers::sharing::follows`]).
    pub fn visible_to(&self, viewer: Option<&str>) -> bool {
        crate::travellers::sharing::follows(
            self.trip.traveller(),
            self.followers.as_slice(),
            viewer,
        )
    }
}

/// Why a change to trips was refused. A refused change changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TripError {
    /// No such trip (or one the caller may not see: the same answer).
    #[error("no trip {0:?}")]
    NotFound(String),
    /// The trip's window shares an instant with another trip of its traveller.
    #[error(
        "started_at, ended_at: the trip overlaps the traveller's trip {other:?}; a traveller's trips never overlap in time"
    )]
    Overlap {
        /// The other trip's id.
        other: String,
    },
    /// The id is another traveller's trip.
    #[error(
        "traveller: trip {id:?} belongs to another traveller, and a trip's traveller never changes; choose another id"
    )]
    OtherTraveller {
        /// The trip's id.
        id: String,
    },
    /// A limit would be passed.
    #[error("{what}: at most {limit} are allowed")]
    Limit {
        /// What is counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A follower's id is malformed.
    #[error("viewer: {0}")]
    Follower(IdError),
}

/// A trip's window in its traveller's list.
#[derive(Debug, Clone)]
struct Window {
    started_at: i64,
    until: i64,
    id: Arc<str>,
}

#[derive(Debug, Default)]
struct State {
    by_id: HashMap<Arc<str>, TripRecord>,
    /// Each traveller's trips by `started_at`.
    by_traveller: HashMap<Box<str>, Vec<Window>>,
    /// Links by id (the tokens' selectors), to their trips.
    links: HashMap<Box<str>, Arc<str>>,
    /// Instants at which a trip starts or ends or a link expires, with the trip.
    due: BTreeSet<(i64, Arc<str>)>,
}

/// What [`Trips::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TripPut {
    /// Whether the trip is new.
    pub created: bool,
    /// Whether its window shrank, so points outside it must leave its route.
    pub narrowed: bool,
}

/// Every trip.
#[derive(Debug, Default)]
pub struct Trips {
    state: RwLock<State>,
}

impl Trips {
    /// No trips.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many trips there are.
    pub fn len(&self) -> usize {
        self.state.read().by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The trip of `traveller` whose route a position of `ts` belongs to, if any: the hot
    /// path of every position report, one map lookup when the traveller has no trips.
    pub fn holding(&self, traveller: &str, ts: i64) -> Option<Arc<str>> {
        let state = self.state.read();
        if state.by_traveller.is_empty() {
            return None;
        }
        let windows = state.by_traveller.get(traveller)?;
        let after = windows.partition_point(|w| w.started_at <= ts);
        let w = windows.get(after.checked_sub(1)?)?;
        (ts <= w.until).then(|| w.id.clone())
    }

    /// A trip's record.
    pub fn get(&self, id: &str) -> Option<TripRecord> {
        self.state.read().by_id.get(id).cloned()
    }

    /// `traveller`'s trips, newest (latest start) first.
    pub fn of_traveller(&self, traveller: &str) -> Vec<TripRecord> {
        let state = self.state.read();
        state
            .by_traveller
            .get(traveller)
            .map(|windows| {
                windows
                    .iter()
                    .rev()
                    .filter_map(|w| state.by_id.get(&w.id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks that `trip` may be stored: its id is free or its traveller's, it overlaps none
    /// of the traveller's other trips, and the traveller has room.
    pub fn check_put(&self, trip: &Trip) -> Result<(), TripError> {
        let state = self.state.read();
        let existing = state.by_id.get(trip.id());
        if let Some(old) = existing
            && old.trip.traveller() != trip.traveller()
        {
            return Err(TripError::OtherTraveller {
                id: trip.id().to_owned(),
            });
        }
        let windows = state
            .by_traveller
            .get(trip.traveller())
            .map_or(&[][..], Vec::as_slice);
        for w in windows {
            if &*w.id != trip.id() && w.started_at <= trip.until() && trip.started_at() <= w.until {
                return Err(TripError::Overlap {
                    other: w.id.to_string(),
                });
            }
        }
        if existing.is_none() && windows.len() >= MAX_TRIPS_PER_TRAVELLER {
            return Err(TripError::Limit {
                what: "trips of a traveller",
                limit: MAX_TRIPS_PER_TRAVELLER,
            });
        }
        Ok(())
    }

    /// Stores `trip` (checked by [`Trips::check_put`]), keeping the followers and links of
    /// the trip it replaces.
    pub fn put(&self, trip: Trip) -> TripPut {
        let mut state = self.state.write();
        let id: Arc<str> = Arc::from(trip.id());
        let old = state.by_id.remove(&id);
        let narrowed = old.as_ref().is_some_and(|old| {
            trip.started_at() > old.trip.started_at() || trip.until() < old.trip.until()
        });
        if let Some(old) = &old {
            unlist(&mut state, &old.trip);
        }
        let windows = state
            .by_traveller
            .entry(trip.traveller().into())
            .or_default();
        let at = windows.partition_point(|w| w.started_at <= trip.started_at());
        windows.insert(
            at,
            Window {
                started_at: trip.started_at(),
                until: trip.until(),
                id: id.clone(),
            },
        );
        state.due.insert((trip.started_at(), id.clone()));
        if let Some(end) = trip.ended_at() {
            state.due.insert((end, id.clone()));
        }
        let created = old.is_none();
        let (followers, links) = old.map(|o| (o.followers, o.links)).unwrap_or_default();
        state.by_id.insert(
            id,
            TripRecord {
                trip,
                followers,
                links,
            },
        );
        TripPut { created, narrowed }
    }

    /// Forgets a trip, its followers and links; gives its record.
    pub fn remove(&self, id: &str) -> Option<TripRecord> {
        let mut state = self.state.write();
        let record = state.by_id.remove(id)?;
        unlist(&mut state, &record.trip);
        for link in &record.links {
            state.links.remove(link.id.as_str());
        }
        Some(record)
    }

    /// The ids of `traveller`'s trips.
    pub fn ids_of(&self, traveller: &str) -> Vec<Arc<str>> {
        self.state
            .read()
            .by_traveller
            .get(traveller)
            .map(|ws| ws.iter().map(|w| w.id.clone()).collect())
            .unwrap_or_default()
    }

    /// Checks that `viewer` may be added to trip `id`'s followers.
    pub fn check_follower(&self, id: &str, viewer: &str) -> Result<(), TripError> {
        validate_id(viewer).map_err(TripError::Follower)?;
        let state = self.state.read();
        let record = state
            .by_id
            .get(id)
            .ok_or_else(|| TripError::NotFound(id.to_owned()))?;
        if record.followers.len() >= MAX_FOLLOWERS
            && record
                .followers
                .binary_search_by(|f| f.as_str().cmp(viewer))
                .is_err()
        {
            return Err(TripError::Limit {
                what: "followers of a trip",
                limit: MAX_FOLLOWERS,
            });
        }
        Ok(())
    }

    /// Adds a follower; gives the trip's traveller if the trip exists.
    pub fn add_follower(&self, id: &str, viewer: &str) -> Option<String> {
        let mut state = self.state.write();
        let record = state.by_id.get_mut(id)?;
        if let Err(at) = record
            .followers
            .binary_search_by(|f| f.as_str().cmp(viewer))
        {
            record.followers.insert(at, viewer.to_owned());
        }
        Some(record.trip.traveller().to_owned())
    }

    /// Removes a follower; gives the trip's traveller if it was one.
    pub fn remove_follower(&self, id: &str, viewer: &str) -> Option<String> {
        let mut state = self.state.write();
        let record = state.by_id.get_mut(id)?;
        let at = record
            .followers
            .binary_search_by(|f| f.as_str().cmp(viewer))
            .ok()?;
        record.followers.remove(at);
        Some(record.trip.traveller().to_owned())
    }

    /// Checks that trip `id` exists and has room for a link.
    pub fn check_link(&self, id: &str) -> Result<(), TripError> {
        let state = self.state.read();
        let record = state
            .by_id
            .get(id)
            .ok_or_else(|| TripError::NotFound(id.to_owned()))?;
        if record.links.len() >= MAX_LINKS {
            return Err(TripError::Limit {
                what: "links of a trip",
                limit: MAX_LINKS,
            });
        }
        Ok(())
    }

    /// Adds a link to trip `id`; whether the trip exists.
    pub fn add_link(&self, id: &str, link: Link) -> bool {
        let mut state = self.state.write();
        let Some(key) = state.by_id.get_key_value(id).map(|(k, _)| k.clone()) else {
            return false;
        };
        let record = state.by_id.get_mut(&key).expect("just found");
        let (link_id, expires_at) = (link.id.clone(), link.expires_at);
        record.links.retain(|l| l.id != link.id);
        record.links.push(link);
        state.links.insert(link_id.into(), key.clone());
        state.due.insert((expires_at, key));
        true
    }

    /// Revokes a link of trip `id`; whether it was there.
    pub fn revoke_link(&self, id: &str, link_id: &str) -> bool {
        let mut state = self.state.write();
        let Some(record) = state.by_id.get_mut(id) else {
            return false;
        };
        let before = record.links.len();
        record.links.retain(|l| l.id != link_id);
        let revoked = record.links.len() < before;
        if revoked {
            state.links.remove(link_id);
        }
        revoked
    }

    /// The trip and link a token opens at `now_ms`, if it opens one: a link that exists,
    /// has not expired and whose secret matches (compared in constant time).
    pub fn open_link(&self, token: &str, now_ms: i64) -> Option<(TripRecord, Link)> {
        let (link_id, secret) = split_token(token)?;
        let state = self.state.read();
        let trip = state.links.get(link_id.as_str())?;
        let record = state.by_id.get(trip)?;
        let link = record.links.iter().find(|l| l.id == link_id)?;
        (link.opens(&secret) && link.live_at(now_ms)).then(|| (record.clone(), link.clone()))
    }

    /// Who follows `traveller`'s trip that runs at `now_ms`, if one does and it has
    /// followers: what its record carries for [`crate::travellers::sharing`].
    pub fn share_at(&self, traveller: &str, now_ms: i64) -> Option<TripShare> {
        let state = self.state.read();
        let windows = state.by_traveller.get(traveller)?;
        let w = windows.iter().rev().find(|w| w.started_at <= now_ms)?;
        let record = state.by_id.get(&w.id)?;
        (record.trip.runs_at(now_ms) && !record.followers.is_empty())
            .then(|| TripShare::new(record.trip.started_at(), &record.followers))
    }

    /// The earliest instant something is due, if any.
    pub fn next_due(&self) -> Option<i64> {
        self.state.read().due.first().map(|(at, _)| *at)
    }

    /// Takes what is due at or before `at_ms`: drops the links expired by then and gives
    /// the travellers whose trips started or ended (each once).
    pub fn take_due(&self, at_ms: i64) -> Vec<String> {
        let mut state = self.state.write();
        let mut travellers = Vec::new();
        while let Some((at, id)) = state.due.first().cloned() {
            if at > at_ms {
                break;
            }
            state.due.pop_first();
            let Some(record) = state.by_id.get_mut(&id) else {
                continue;
            };
            let mut expired = Vec::new();
            record.links.retain(|l| {
                let live = l.live_at(at_ms);
                if !live {
                    expired.push(l.id.clone());
                }
                live
            });
            let traveller = record.trip.traveller().to_owned();
            for link in expired {
                state.links.remove(link.as_str());
            }
            if !travellers.contains(&traveller) {
                travellers.push(traveller);
            }
        }
        travellers
    }

    /// Passes every trip's record to `f`.
    pub fn export<E>(&self, mut f: impl FnMut(&TripRecord) -> Result<(), E>) -> Result<(), E> {
        let records: Vec<TripRecord> = self.state.read().by_id.values().cloned().collect();
        records.iter().try_for_each(&mut f)
    }

    /// Puts back a trip as [`Trips::export`] gave it.
    pub fn restore(&self, record: TripRecord) {
        let TripRecord {
            trip,
            followers,
            links,
        } = record;
        let id = trip.id().to_owned();
        self.remove(&id);
        self.put(trip);
        let mut state = self.state.write();
        if let Some(r) = state.by_id.get_mut(id.as_str()) {
            r.followers = followers;
        }
        drop(state);
        for link in links {
            self.add_link(&id, link);
        }
    }

    /// Forgets every trip.
    pub fn clear(&self) {
        *self.state.write() = State::default();
    }
}

/// Takes `trip` out of its traveller's list (its `due` entries are skipped when met).
fn unlist(state: &mut State, trip: &Trip) {
    if let Some(windows) = state.by_traveller.get_mut(trip.traveller()) {
        windows.retain(|w| &*w.id != trip.id());
        if windows.is_empty() {
            state.by_traveller.remove(trip.traveller());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trip(id: &str, who: &str, start: i64, end: Option<i64>) -> Trip {
        Trip::new(id.into(), who.into(), "".into(), start, end).expect("valid")
    }

    #[test]
    fn positions_fall_in_the_one_trip_whose_window_holds_them() {
        let trips = Trips::new();
        assert_eq!(trips.holding("ann", 5), None);
        trips.put(trip("a", "ann", 10, Some(20)));
        trips.put(trip("b", "ann", 30, None));
        assert_eq!(trips.holding("ann", 9), None);
        assert_eq!(trips.holding("ann", 10).as_deref(), Some("a"));
        assert_eq!(trips.holding("ann", 20).as_deref(), Some("a"));
        assert_eq!(trips.holding("ann", 25), None);
        assert_eq!(trips.holding("ann", i64::MAX).as_deref(), Some("b"));
        assert_eq!(trips.holding("bob", 15), None);
        assert!(matches!(
            trips.check_put(&trip("c", "ann", 15, Some(35))),
            Err(TripError::Overlap { .. })
        ));
        assert!(trips.check_put(&trip("c", "ann", 21, Some(29))).is_ok());
        assert!(
            trips.check_put(&trip("a", "ann", 10, Some(25))).is_ok(),
            "itself"
        );
        assert!(matches!(
            trips.check_put(&trip("a", "bob", 10, None)),
            Err(TripError::OtherTraveller { .. })
        ));
        assert_eq!(
            trips
                .of_traveller("ann")
                .iter()
                .map(|r| r.trip.id())
                .collect::<Vec<_>>(),
            ["b", "a"]
        );
    }

    #[test]
    fn a_running_trip_shares_with_its_followers_until_it_ends() {
        let trips = Trips::new();
        trips.put(trip("a", "ann", 10, Some(20)));
        assert_eq!(trips.share_at("ann", 15), None, "no followers");
        trips.add_follower("a", "mum");
        let share = trips.share_at("ann", 15).expect("running");
        assert!(share.allows(Some("mum"), 12));
        assert!(!share.allows(Some("mum"), 9), "a position before the trip");
        assert!(!share.allows(Some("eve"), 12));
        assert_eq!(trips.share_at("ann", 20), None, "ended");
        assert_eq!(trips.share_at("ann", 9), None, "not started");
        assert_eq!(trips.take_due(10), ["ann"]);
        assert_eq!(trips.next_due(), Some(20));
    }

    #[test]
    fn links_open_until_they_expire_or_are_revoked() {
        let trips = Trips::new();
        trips.put(trip("a", "ann", 10, None));
        let (link, token) = Link::mint(100, None, None);
        let link_id = link.id.clone();
        assert!(trips.add_link("a", link));
        assert!(trips.open_link(&token, 99).is_some());
        assert!(trips.open_link(&token, 100).is_none(), "expired");
        assert!(trips.revoke_link("a", &link_id));
        assert!(trips.open_link(&token, 50).is_none(), "revoked");
        let (link, token) = Link::mint(100, None, None);
        trips.add_link("a", link);
        trips.take_due(100);
        assert!(trips.get("a").expect("there").links.is_empty());
        assert!(trips.open_link(&token, 50).is_none(), "dropped when due");
        let (link, token) = Link::mint(1_000, None, None);
        trips.add_link("a", link);
        trips.remove("a");
        assert!(trips.open_link(&token, 50).is_none(), "trip deleted");
    }
}
