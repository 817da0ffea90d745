//! [`Trips`]: every trip, found by id, by traveller (each traveller's trips in time order)
//! and by link, with the instants at which something about a trip changes by itself.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

use super::followed::Followed;
use super::table::{Entry, TripTable};
use super::{
    Link, MAX_FOLLOWERS, MAX_LINKS, MAX_TRIPS_PER_TRAVELLER, Trip, TripError, TripRecord,
    split_token,
};
use crate::ids::validate_id;
use crate::travellers::TripShare;

/// Who besides its traveller reads a trip (most trips: nobody, and no allocation).
#[derive(Debug, Clone, Default)]
struct Audience {
    /// Sorted, each once.
    followers: Vec<String>,
    links: Vec<Link>,
}

type TripEntry = Entry<Audience>;

fn followers(entry: &TripEntry) -> &[String] {
    entry.extra.as_ref().map_or(&[], |a| &a.followers)
}

fn links(entry: &TripEntry) -> &[Link] {
    entry.extra.as_ref().map_or(&[], |a| &a.links)
}

fn audience_mut(entry: &mut TripEntry) -> &mut Audience {
    entry.extra.get_or_insert_with(Box::default)
}

/// Drops the audience once it is empty.
fn tidy(entry: &mut TripEntry) {
    if entry
        .extra
        .as_ref()
        .is_some_and(|a| a.followers.is_empty() && a.links.is_empty())
    {
        entry.extra = None;
    }
}

/// Every instant at which something of `entry` falls due: its start, its end, and each
/// link's expiry.
fn instants(entry: &TripEntry) -> impl Iterator<Item = i64> + '_ {
    std::iter::once(entry.started_at)
        .chain(entry.ended_at)
        .chain(links(entry).iter().map(|l| l.expires_at))
}

fn runs_at(entry: &TripEntry, now_ms: i64) -> bool {
    entry.started_at <= now_ms && entry.ended_at.is_none_or(|end| now_ms < end)
}

fn record(entry: &TripEntry) -> TripRecord {
    TripRecord {
        trip: Trip::from_checked_parts(
            entry.id().to_owned(),
            entry.traveller().to_owned(),
            entry.title().to_owned(),
            entry.started_at,
            entry.ended_at,
        ),
        followers: followers(entry).to_vec(),
        links: links(entry).to_vec(),
    }
}

#[derive(Debug, Default)]
struct State {
    trips: TripTable<Audience>,
    /// Links by id (the tokens' selectors), to their trips.
    links: HashMap<Box<str>, Box<str>>,
    /// Instants still to come, as of when they were set, at which a trip starts or ends or
    /// a link expires, with the trip. Only the instants of trips and links as they are: a
    /// trip replaced, removed or a link revoked takes its instants out, so that the set is
    /// bounded by the trips and their links (a caller putting one trip again and again
    /// with new times grew it for ever).
    due: BTreeSet<(i64, Box<str>)>,
    /// Each follower's trips, for its pages of a traveller's trips.
    followed: Followed,
}

impl State {
    /// Notes that `entry`'s followers follow it (`follow`) or no longer do.
    fn note_followers(&mut self, entry: &TripEntry, follow: bool) {
        for viewer in followers(entry) {
            if follow {
                self.followed
                    .insert(viewer, entry.traveller(), entry.started_at, entry.id());
            } else {
                self.followed
                    .remove(viewer, entry.traveller(), entry.started_at, entry.id());
            }
        }
    }

    /// Takes `entry`'s instants out of `due`.
    fn forget_due(&mut self, entry: &TripEntry) {
        for at in instants(entry) {
            self.due.remove(&(at, Box::from(entry.id())));
        }
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
        self.state.read().trips.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `found` with the index of each of `reports` that belongs to a trip's route,
    /// and that trip's id, under one lock: the hot path of every batch of positions, one
    /// table lookup a report when its traveller has no trips, and no allocation.
    pub fn for_each_holding<'a>(
        &self,
        reports: impl IntoIterator<Item = (&'a str, i64)>,
        mut found: impl FnMut(usize, &str),
    ) {
        let state = self.state.read();
        if state.trips.len() == 0 {
            return;
        }
        state
            .trips
            .holding_each(reports, |i, entry| found(i, entry.id()));
    }

    /// Whether any of `reports` (traveller, `ts`) falls in a trip.
    pub fn holds_any<'a>(&self, reports: impl IntoIterator<Item = (&'a str, i64)>) -> bool {
        let mut holds = false;
        self.for_each_holding(reports, |_, _| holds = true);
        holds
    }

    /// A trip's record.
    pub fn get(&self, id: &str) -> Option<TripRecord> {
        self.state.read().trips.get(id).map(record)
    }

    /// Trip `id`'s record, copied only when `keep` (given its traveller and followers)
    /// lets it through: a caller that may not see the trip costs no copy of its followers
    /// and links, so its answer takes what the answer for a missing trip takes.
    pub fn get_if(
        &self,
        id: &str,
        keep: impl FnOnce(&str, &[String]) -> bool,
    ) -> Option<TripRecord> {
        let state = self.state.read();
        let entry = state.trips.get(id)?;
        keep(entry.traveller(), followers(entry)).then(|| record(entry))
    }

    /// Up to `take` of `traveller`'s trips, newest (latest start) first, that `keep`
    /// (given each one's start, id and followers) lets through: only those are copied.
    pub fn page_of_traveller(
        &self,
        traveller: &str,
        take: usize,
        mut keep: impl FnMut(i64, &str, &[String]) -> bool,
    ) -> Vec<TripRecord> {
        let state = self.state.read();
        state
            .trips
            .of_traveller(traveller)
            .rev()
            .filter(|e| keep(e.started_at, e.id(), followers(e)))
            .take(take)
            .map(record)
            .collect()
    }

    /// Up to `take` of `traveller`'s trips that `viewer` follows, newest first, after
    /// `after` (a page's last start and id), found among the trips `viewer` follows only,
    /// and each let through by `keep` (given its followers) as well.
    pub fn page_followed(
        &self,
        traveller: &str,
        viewer: &str,
        after: Option<(i64, &str)>,
        take: usize,
        mut keep: impl FnMut(&[String]) -> bool,
    ) -> Vec<TripRecord> {
        let state = self.state.read();
        state
            .followed
            .page(viewer, traveller, after, take)
            .filter_map(|id| state.trips.get(id))
            .filter(|e| keep(followers(e)))
            .map(record)
            .collect()
    }

    /// How many (follower, trip) entries the followers' index holds (tests).
    #[cfg(test)]
    pub(super) fn followed_entries(&self) -> usize {
        self.state.read().followed.len()
    }

    /// `traveller`'s trips, newest (latest start) first.
    pub fn of_traveller(&self, traveller: &str) -> Vec<TripRecord> {
        let state = self.state.read();
        state
            .trips
            .of_traveller(traveller)
            .rev()
            .map(record)
            .collect()
    }

    /// Checks that `trip` may be stored: its id is free or its traveller's, it overlaps none
    /// of the traveller's other trips, and the traveller has room.
    pub fn check_put(&self, trip: &Trip) -> Result<(), TripError> {
        let state = self.state.read();
        let existing = state.trips.get(trip.id());
        if let Some(old) = existing
            && old.traveller() != trip.traveller()
        {
            return Err(TripError::OtherTraveller {
                id: trip.id().to_owned(),
            });
        }
        let theirs = state.trips.of_traveller(trip.traveller());
        let count = theirs.len();
        for other in theirs {
            if other.id() != trip.id()
                && other.started_at <= trip.until()
                && trip.started_at() <= other.until()
            {
                return Err(TripError::Overlap {
                    other: other.id().to_owned(),
                });
            }
        }
        if existing.is_none() && count >= MAX_TRIPS_PER_TRAVELLER {
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
        let old = state.trips.remove(trip.id());
        if let Some(old) = &old {
            state.note_followers(old, false);
        }
        let narrowed = old
            .as_ref()
            .is_some_and(|old| trip.started_at() > old.started_at || trip.until() < old.until());
        if let Some(old) = &old {
            state.forget_due(old);
            // The links stay, and so do their expiries (one passed but not yet taken
            // included: its tick drops the link and wakes its streams).
            for link in links(old) {
                state.due.insert((link.expires_at, trip.id().into()));
            }
        }
        for instant in std::iter::once(trip.started_at()).chain(trip.ended_at()) {
            if instant > now_ms {
                state.due.insert((instant, trip.id().into()));
            }
        }
        let created = old.is_none();
        let audience = old.and_then(|o| o.extra);
        let entry = Entry::new(
            trip.id(),
            trip.traveller(),
            trip.title(),
            trip.started_at(),
            trip.ended_at(),
            audience,
        );
        state.note_followers(&entry, true);
        state.trips.insert(entry);
        TripPut { created, narrowed }
    }

    /// Forgets a trip, its followers and links; gives its record.
    pub fn remove(&self, id: &str) -> Option<TripRecord> {
        let mut state = self.state.write();
        let entry = state.trips.remove(id)?;
        state.note_followers(&entry, false);
        for link in links(&entry) {
            state.links.remove(link.id.as_str());
        }
        state.forget_due(&entry);
        Some(record(&entry))
    }

    /// The ids of `traveller`'s trips.
    pub fn ids_of(&self, traveller: &str) -> Vec<Arc<str>> {
        self.state
            .read()
            .trips
            .of_traveller(traveller)
            .map(|e| Arc::from(e.id()))
            .collect()
    }

    /// Checks that `viewer` may be added to trip `id`'s followers.
    pub fn check_follower(&self, id: &str, viewer: &str) -> Result<(), TripError> {
        validate_id(viewer).map_err(TripError::Follower)?;
        let state = self.state.read();
        let entry = state
            .trips
            .get(id)
            .ok_or_else(|| TripError::NotFound(id.to_owned()))?;
        let followers = followers(entry);
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
        let State {
            trips, followed, ..
        } = &mut *state;
        let entry = trips.get_mut(id)?;
        let (traveller, start) = (entry.traveller().to_owned(), entry.started_at);
        let followers = &mut audience_mut(entry).followers;
        if let Err(at) = followers.binary_search_by(|f| f.as_str().cmp(viewer)) {
            followers.insert(at, viewer.to_owned());
            followed.insert(viewer, &traveller, start, id);
        }
        Some(traveller)
    }

    /// Removes a follower; gives the trip's traveller if it was one.
    pub fn remove_follower(&self, id: &str, viewer: &str) -> Option<String> {
        let mut state = self.state.write();
        let State {
            trips, followed, ..
        } = &mut *state;
        let entry = trips.get_mut(id)?;
        let at = followers(entry)
            .binary_search_by(|f| f.as_str().cmp(viewer))
            .ok()?;
        audience_mut(entry).followers.remove(at);
        tidy(entry);
        followed.remove(viewer, entry.traveller(), entry.started_at, id);
        Some(entry.traveller().to_owned())
    }

    /// Checks that trip `id` exists and has room for a link.
    pub fn check_link(&self, id: &str) -> Result<(), TripError> {
        let state = self.state.read();
        let entry = state
            .trips
            .get(id)
            .ok_or_else(|| TripError::NotFound(id.to_owned()))?;
        if links(entry).len() >= MAX_LINKS {
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
        let Some(entry) = state.trips.get_mut(id) else {
            return false;
        };
        let (link_id, expires_at) = (link.id.clone(), link.expires_at);
        let links = &mut audience_mut(entry).links;
        links.retain(|l| l.id != link.id);
        links.push(link);
        state.links.insert(link_id.into(), id.into());
        state.due.insert((expires_at, id.into()));
        true
    }

    /// Revokes a link of trip `id`; whether it was there.
    pub fn revoke_link(&self, id: &str, link_id: &str) -> bool {
        let mut state = self.state.write();
        let Some(entry) = state.trips.get_mut(id) else {
            return false;
        };
        let Some(expires_at) = links(entry)
            .iter()
            .find(|l| l.id == link_id)
            .map(|l| l.expires_at)
        else {
            return false;
        };
        audience_mut(entry).links.retain(|l| l.id != link_id);
        tidy(entry);
        // Its expiry leaves the instants due, unless something else of the trip falls due
        // at the same instant.
        let shared = instants(entry).any(|at| at == expires_at);
        state.links.remove(link_id);
        if !shared {
            state.due.remove(&(expires_at, Box::from(id)));
        }
        true
    }

    /// The trip and link a token opens at `now_ms`, if it opens one: a link that exists,
    /// has not expired and whose secret matches (compared in constant time).
    pub fn open_link(&self, token: &str, now_ms: i64) -> Option<(TripRecord, Link)> {
        let (link_id, secret) = split_token(token)?;
        let state = self.state.read();
        let trip = state.links.get(link_id.as_str())?;
        let entry = state.trips.get(trip)?;
        let link = links(entry).iter().find(|l| l.id == link_id)?;
        (link.opens(&secret) && link.live_at(now_ms)).then(|| (record(entry), link.clone()))
    }

    /// Who follows `traveller`'s trip that runs at `now_ms`, if one does and it has
    /// followers: what its record carries for [`crate::travellers::sharing`].
    pub fn share_at(&self, traveller: &str, now_ms: i64) -> Option<TripShare> {
        let state = self.state.read();
        let entry = state
            .trips
            .of_traveller(traveller)
            .rev()
            .find(|e| e.started_at <= now_ms)?;
        (runs_at(entry, now_ms) && !followers(entry).is_empty())
            .then(|| TripShare::new(entry.started_at, followers(entry)))
    }

    /// Every instant due, with its trip (tests).
    #[cfg(test)]
    pub(super) fn due_entries(&self) -> Vec<(i64, String)> {
        let state = self.state.read();
        state
            .due
            .iter()
            .map(|(at, id)| (*at, id.to_string()))
            .collect()
    }

    /// Every instant at which something of trip `id` falls due (tests).
    #[cfg(test)]
    pub(super) fn instants_of(&self, id: &str) -> Vec<i64> {
        let state = self.state.read();
        state
            .trips
            .get(id)
            .map_or_else(Vec::new, |e| instants(e).collect())
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
            let Some(entry) = state.trips.get_mut(&id) else {
                continue;
            };
            let mut expired = Vec::new();
            if let Some(audience) = entry.extra.as_mut() {
                audience.links.retain(|l| {
                    let live = l.live_at(at_ms);
                    if !live {
                        expired.push(l.id.clone());
                    }
                    live
                });
            }
            tidy(entry);
            let traveller = entry.traveller().to_owned();
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
        let ids: Vec<Box<str>> = self
            .state
            .read()
            .trips
            .iter()
            .map(|e| e.id().into())
            .collect();
        for part in ids.chunks(4_096) {
            let records: Vec<TripRecord> = {
                let state = self.state.read();
                part.iter()
                    .filter_map(|id| state.trips.get(id).map(record))
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
        let State {
            trips, followed, ..
        } = &mut *state;
        if let Some(entry) = trips.get_mut(id.as_str())
            && !followers.is_empty()
        {
            for viewer in &followers {
                followed.insert(viewer, entry.traveller(), entry.started_at, &id);
            }
            audience_mut(entry).followers = followers;
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
