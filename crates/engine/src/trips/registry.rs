//! [`Trips`]: every trip, found by id, by traveller (each traveller's trips in time order)
//! and by link, with the instants at which something about a trip changes by itself.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{
    Link, MAX_FOLLOWERS, MAX_LINKS, MAX_TRIPS_PER_TRAVELLER, Trip, TripError, TripRecord,
    split_token,
};
use crate::ids::validate_id;
use crate::travellers::TripShare;

/// A trip's window in its traveller's list.
#[derive(Debug, Clone)]
struct Window {
    started_at: i64,
    until: i64,
    id: Arc<str>,
}

/// One trip as kept: small, because a node keeps millions (each field that most trips
/// leave empty is behind one pointer, and the map holds a pointer to it: a hash map of a
/// million entries has up to two million slots, so a slot's size counts twice).
#[derive(Debug, Clone)]
struct Entry {
    traveller: Arc<str>,
    title: Box<str>,
    started_at: i64,
    ended_at: Option<i64>,
    audience: Option<Box<Audience>>,
}

/// Who besides its traveller reads a trip.
#[derive(Debug, Clone, Default)]
struct Audience {
    /// Sorted, each once.
    followers: Vec<String>,
    links: Vec<Link>,
}

impl Entry {
    fn followers(&self) -> &[String] {
        self.audience.as_ref().map_or(&[], |a| &a.followers)
    }

    fn links(&self) -> &[Link] {
        self.audience.as_ref().map_or(&[], |a| &a.links)
    }

    fn audience_mut(&mut self) -> &mut Audience {
        self.audience.get_or_insert_with(Box::default)
    }

    /// Drops the audience once it is empty.
    fn tidy(&mut self) {
        if self
            .audience
            .as_ref()
            .is_some_and(|a| a.followers.is_empty() && a.links.is_empty())
        {
            self.audience = None;
        }
    }

    fn until(&self) -> i64 {
        self.ended_at.unwrap_or(i64::MAX)
    }

    fn runs_at(&self, now_ms: i64) -> bool {
        self.started_at <= now_ms && self.ended_at.is_none_or(|end| now_ms < end)
    }

    fn record(&self, id: &str) -> TripRecord {
        TripRecord {
            trip: Trip::from_checked_parts(
                id.to_owned(),
                self.traveller.to_string(),
                self.title.to_string(),
                self.started_at,
                self.ended_at,
            ),
            followers: self.followers().to_vec(),
            links: self.links().to_vec(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    by_id: HashMap<Arc<str>, Box<Entry>>,
    /// Each traveller's trips by `started_at`.
    by_traveller: HashMap<Arc<str>, Box<[Window]>>,
    /// Links by id (the tokens' selectors), to their trips.
    links: HashMap<Box<str>, Arc<str>>,
    /// Instants still to come, as of when they were set, at which a trip starts or ends or
    /// a link expires, with the trip.
    due: BTreeSet<(i64, Arc<str>)>,
}

impl State {
    fn windows(&self, traveller: &str) -> &[Window] {
        self.by_traveller.get(traveller).map_or(&[], |w| w)
    }

    /// Replaces `traveller`'s list of windows by `edit` of it.
    fn edit_windows(&mut self, traveller: &Arc<str>, edit: impl FnOnce(&mut Vec<Window>)) {
        let mut windows: Vec<Window> = self.windows(traveller).to_vec();
        edit(&mut windows);
        if windows.is_empty() {
            self.by_traveller.remove(&**traveller);
        } else {
            self.by_traveller
                .insert(traveller.clone(), windows.into_boxed_slice());
        }
    }

    /// The traveller's id as kept (shared by its trips), or a new one.
    fn traveller_key(&self, traveller: &str) -> Arc<str> {
        self.by_traveller
            .get_key_value(traveller)
            .map_or_else(|| Arc::from(traveller), |(k, _)| k.clone())
    }

    /// Takes `id` out of its traveller's list (its `due` entries are skipped when met).
    fn unlist(&mut self, id: &str, traveller: &Arc<str>) {
        self.edit_windows(traveller, |windows| windows.retain(|w| &*w.id != id));
    }
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
        self.state.read().by_id.get(id).map(|e| e.record(id))
    }

    /// `traveller`'s trips, newest (latest start) first.
    pub fn of_traveller(&self, traveller: &str) -> Vec<TripRecord> {
        let state = self.state.read();
        state
            .windows(traveller)
            .iter()
            .rev()
            .filter_map(|w| state.by_id.get(&w.id).map(|e| e.record(&w.id)))
            .collect()
    }

    /// Checks that `trip` may be stored: its id is free or its traveller's, it overlaps none
    /// of the traveller's other trips, and the traveller has room.
    pub fn check_put(&self, trip: &Trip) -> Result<(), TripError> {
        let state = self.state.read();
        let existing = state.by_id.get(trip.id());
        if let Some(old) = existing
            && &*old.traveller != trip.traveller()
        {
            return Err(TripError::OtherTraveller {
                id: trip.id().to_owned(),
            });
        }
        let windows = state.windows(trip.traveller());
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

    /// Stores `trip` (checked by [`Trips::check_put`]) as of `now_ms`, keeping the
    /// followers and links of the trip it replaces.
    pub fn put(&self, trip: Trip, now_ms: i64) -> TripPut {
        let mut state = self.state.write();
        let (id, traveller, title, started_at, ended_at) = trip.into_parts();
        let traveller = state.traveller_key(&traveller);
        let (id, old): (Arc<str>, Option<Box<Entry>>) = match state.by_id.remove_entry(id.as_str())
        {
            Some((key, old)) => (key, Some(old)),
            None => (Arc::from(id), None),
        };
        let until = ended_at.unwrap_or(i64::MAX);
        let narrowed = old
            .as_ref()
            .is_some_and(|old| started_at > old.started_at || until < old.until());
        if old.is_some() {
            state.unlist(&id, &traveller);
        }
        state.edit_windows(&traveller, |windows| {
            let at = windows.partition_point(|w| w.started_at <= started_at);
            windows.insert(
                at,
                Window {
                    started_at,
                    until,
                    id: id.clone(),
                },
            );
        });
        for instant in std::iter::once(started_at).chain(ended_at) {
            if instant > now_ms {
                state.due.insert((instant, id.clone()));
            }
        }
        let created = old.is_none();
        let audience = old.and_then(|o| o.audience);
        state.by_id.insert(
            id,
            Box::new(Entry {
                traveller,
                title: title.into_boxed_str(),
                started_at,
                ended_at,
                audience,
            }),
        );
        TripPut { created, narrowed }
    }

    /// Forgets a trip, its followers and links; gives its record.
    pub fn remove(&self, id: &str) -> Option<TripRecord> {
        let mut state = self.state.write();
        let (key, entry) = state.by_id.remove_entry(id)?;
        state.unlist(&key, &entry.traveller.clone());
        for link in entry.links() {
            state.links.remove(link.id.as_str());
        }
        Some(entry.record(&key))
    }

    /// The ids of `traveller`'s trips.
    pub fn ids_of(&self, traveller: &str) -> Vec<Arc<str>> {
        self.state
            .read()
            .windows(traveller)
            .iter()
            .map(|w| w.id.clone())
            .collect()
    }

    /// Checks that `viewer` may be added to trip `id`'s followers.
    pub fn check_follower(&self, id: &str, viewer: &str) -> Result<(), TripError> {
        validate_id(viewer).map_err(TripError::Follower)?;
        let state = self.state.read();
        let entry = state
            .by_id
            .get(id)
            .ok_or_else(|| TripError::NotFound(id.to_owned()))?;
        let followers = entry.followers();
        if followers.len() >= MAX_FOLLOWERS
            && followers
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
        let entry = state.by_id.get_mut(id)?;
        let followers = &mut entry.audience_mut().followers;
        if let Err(at) = followers.binary_search_by(|f| f.as_str().cmp(viewer)) {
            followers.insert(at, viewer.to_owned());
        }
        Some(entry.traveller.to_string())
    }

    /// Removes a follower; gives the trip's traveller if it was one.
    pub fn remove_follower(&self, id: &str, viewer: &str) -> Option<String> {
        let mut state = self.state.write();
        let entry = state.by_id.get_mut(id)?;
        let at = entry
            .followers()
            .binary_search_by(|f| f.as_str().cmp(viewer))
            .ok()?;
        entry.audience_mut().followers.remove(at);
        entry.tidy();
        Some(entry.traveller.to_string())
    }

    /// Checks that trip `id` exists and has room for a link.
    pub fn check_link(&self, id: &str) -> Result<(), TripError> {
        let state = self.state.read();
        let entry = state
            .by_id
            .get(id)
            .ok_or_else(|| TripError::NotFound(id.to_owned()))?;
        if entry.links().len() >= MAX_LINKS {
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
        let (link_id, expires_at) = (link.id.clone(), link.expires_at);
        let entry = state.by_id.get_mut(&key).expect("just found");
        let links = &mut entry.audience_mut().links;
        links.retain(|l| l.id != link.id);
        links.push(link);
        state.links.insert(link_id.into(), key.clone());
        state.due.insert((expires_at, key));
        true
    }

    /// Revokes a link of trip `id`; whether it was there.
    pub fn revoke_link(&self, id: &str, link_id: &str) -> bool {
        let mut state = self.state.write();
        let Some(entry) = state.by_id.get_mut(id) else {
            return false;
        };
        let before = entry.links().len();
        if before == 0 {
            return false;
        }
        entry.audience_mut().links.retain(|l| l.id != link_id);
        let revoked = entry.links().len() < before;
        entry.tidy();
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
        let entry = state.by_id.get(trip)?;
        let link = entry.links().iter().find(|l| l.id == link_id)?;
        (link.opens(&secret) && link.live_at(now_ms)).then(|| (entry.record(trip), link.clone()))
    }

    /// Who follows `traveller`'s trip that runs at `now_ms`, if one does and it has
    /// followers: what its record carries for [`crate::travellers::sharing`].
    pub fn share_at(&self, traveller: &str, now_ms: i64) -> Option<TripShare> {
        let state = self.state.read();
        let w = state
            .windows(traveller)
            .iter()
            .rev()
            .find(|w| w.started_at <= now_ms)?;
        let entry = state.by_id.get(&w.id)?;
        (entry.runs_at(now_ms) && !entry.followers().is_empty())
            .then(|| TripShare::new(entry.started_at, entry.followers()))
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
            let Some(entry) = state.by_id.get_mut(&id) else {
                continue;
            };
            let mut expired = Vec::new();
            if let Some(audience) = entry.audience.as_mut() {
                audience.links.retain(|l| {
                    let live = l.live_at(at_ms);
                    if !live {
                        expired.push(l.id.clone());
                    }
                    live
                });
            }
            entry.tidy();
            let traveller = entry.traveller.to_string();
            for link in expired {
                state.links.remove(link.as_str());
            }
            if !travellers.contains(&traveller) {
                travellers.push(traveller);
            }
        }
        travellers
    }

    /// Passes every trip's record to `f`, a few at a time (the lock is not held while `f`
    /// runs).
    pub fn export<E>(&self, mut f: impl FnMut(&TripRecord) -> Result<(), E>) -> Result<(), E> {
        let ids: Vec<Arc<str>> = self.state.read().by_id.keys().cloned().collect();
        for part in ids.chunks(4_096) {
            let records: Vec<TripRecord> = {
                let state = self.state.read();
                part.iter()
                    .filter_map(|id| state.by_id.get(id).map(|e| e.record(id)))
                    .collect()
            };
            records.iter().try_for_each(&mut f)?;
        }
        Ok(())
    }

    /// Puts back a trip as [`Trips::export`] gave it, as of `now_ms`.
    pub fn restore(&self, record: TripRecord, now_ms: i64) {
        let TripRecord {
            trip,
            followers,
            links,
        } = record;
        let id = trip.id().to_owned();
        self.remove(&id);
        self.put(trip, now_ms);
        let mut state = self.state.write();
        if let Some(entry) = state.by_id.get_mut(id.as_str())
            && !followers.is_empty()
        {
            entry.audience_mut().followers = followers;
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
