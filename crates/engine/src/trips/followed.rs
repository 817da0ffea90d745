//! [`Followed`]: each follower's trips, by traveller and newest first, so that a
//! follower's page of a traveller's trips reads only the trips it follows. Its time then
//! tells nothing of the traveller's other trips, which a page found by walking all of them
//! (up to [`super::MAX_TRIPS_PER_TRAVELLER`]) did: it took longer the more trips the
//! follower could not see.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

/// A followed trip, ordered by traveller, then newest (latest start) first, then id: the
/// order of a traveller's page of trips.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    traveller: Box<str>,
    start: Reverse<i64>,
    id: Box<str>,
}

impl Key {
    fn new(traveller: &str, start: i64, id: &str) -> Self {
        Self {
            traveller: traveller.into(),
            start: Reverse(start),
            id: id.into(),
        }
    }
}

/// The trips each follower follows.
#[derive(Debug, Default)]
pub(super) struct Followed {
    by_viewer: HashMap<Box<str>, BTreeSet<Key>>,
}

impl Followed {
    /// Notes that `viewer` follows trip `id` of `traveller`, starting at `start`.
    pub(super) fn insert(&mut self, viewer: &str, traveller: &str, start: i64, id: &str) {
        self.by_viewer
            .entry(viewer.into())
            .or_default()
            .insert(Key::new(traveller, start, id));
    }

    /// Notes that `viewer` no longer follows trip `id` (as [`Followed::insert`] noted it).
    pub(super) fn remove(&mut self, viewer: &str, traveller: &str, start: i64, id: &str) {
        if let Some(trips) = self.by_viewer.get_mut(viewer) {
            trips.remove(&Key::new(traveller, start, id));
            if trips.is_empty() {
                self.by_viewer.remove(viewer);
            }
        }
    }

    /// The ids of up to `take` of `traveller`'s trips that `viewer` follows, newest first,
    /// after `after` (a page's last start and id).
    pub(super) fn page<'a>(
        &'a self,
        viewer: &str,
        traveller: &'a str,
        after: Option<(i64, &str)>,
        take: usize,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let lower = match after {
            Some((start, id)) => Bound::Excluded(Key::new(traveller, start, id)),
            // The least key of the traveller's: the latest start, the least id.
            None => Bound::Included(Key::new(traveller, i64::MAX, "")),
        };
        self.by_viewer
            .get(viewer)
            .into_iter()
            .flat_map(move |trips| trips.range((lower.clone(), Bound::Unbounded)))
            .take_while(move |key| &*key.traveller == traveller)
            .take(take)
            .map(|key| &*key.id)
    }

    /// How many follower entries there are (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_viewer.values().map(BTreeSet::len).sum()
    }
}
