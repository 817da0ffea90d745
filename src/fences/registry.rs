//! [`Fences`]: every fence, with its cells, its state (who is inside), the roaming fences
//! by the traveller they are around, and the fences each traveller is inside; adding,
//! replacing, deleting and listing them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dashmap::DashMap;
use foldhash::fast::RandomState;
use parking_lot::{Mutex, RwLock};

use super::cells::{Cells, Covering};
use super::watch::Watches;
use super::{ByTraveller, Fence, FenceKind};
use crate::events::{Around, Cause, EventId, EventKind, EventLog, NewEvent};
use crate::geometry::LatLon;
use crate::travellers::{TravellerAt, TravellerId, TravellerIndex};

/// Tunables of [`Fences`].
#[derive(Debug, Clone, Copy)]
pub struct FencesConfig {
    /// A traveller whose newest position is older than this is no longer inside anything.
    pub ttl_ms: i64,
    /// The most fences there may be.
    pub max_fences: usize,
}

/// Sizes, for metrics and the memory figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FenceCounts {
    /// Fences.
    pub fences: usize,
    /// Of which roaming.
    pub roaming: usize,
    /// Travellers inside a fence, counted once per fence.
    pub memberships: usize,
    /// Cell entries of the fence index.
    pub cell_entries: usize,
}

/// Every fence and its state.
pub struct Fences {
    pub(super) config: FencesConfig,
    pub(super) events: Arc<EventLog>,
    pub(super) by_id: RwLock<BTreeMap<Arc<str>, Arc<Subject>>>,
    /// Roaming fences by the traveller they are around.
    pub(super) owners: DashMap<TravellerId, Vec<Arc<Subject>>, RandomState>,
    pub(super) cells: Cells<Subject>,
    /// The fences each traveller is inside.
    pub(super) members_of: DashMap<TravellerId, Vec<Arc<Subject>>, RandomState>,
    /// Set while recovery replays the log: nothing is judged (memberships are computed
    /// afresh once the state is whole) and nothing published.
    pub(super) quiet: AtomicBool,
    /// Live maps, judged with the fences.
    pub(super) watches: Arc<Watches>,
}

impl std::fmt::Debug for Fences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fences")
            .field("fences", &self.by_id.read().len())
            .finish_non_exhaustive()
    }
}

/// One fence: its definition and its state. A replaced fence is a new subject; the old one
/// is marked gone, so that a judgement that found it a moment before does nothing.
pub struct Subject {
    pub(super) id: Arc<str>,
    pub(super) fence: Fence,
    pub(super) state: Mutex<State>,
}

/// Who is inside a fence, and for a roaming fence where its traveller is.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) members: ByTraveller<Member>,
    pub(super) owner: Option<Owner>,
    pub(super) covering: Covering,
    pub(super) gone: bool,
}

/// A traveller inside, as last judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Member {
    pub(super) at: LatLon,
    pub(super) ts: i64,
    pub(super) seen_ms: i64,
}

/// The traveller a roaming fence is around, as last seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Owner {
    pub(super) at: LatLon,
    /// The timestamp of the report that put it at `at`.
    pub(super) ts: i64,
    pub(super) seen_ms: i64,
    /// Whether the fence's viewer may see it.
    pub(super) visible: bool,
}

impl Owner {
    /// Where it is, for an event.
    pub(super) fn around(self) -> Around {
        Around {
            position: self.at,
            ts: self.ts,
        }
    }
}

/// One page of the travellers inside a fence.
#[derive(Debug, Clone, PartialEq)]
pub struct InsidePage {
    /// Travellers, by id, where they were last judged.
    pub travellers: Vec<TravellerAt>,
    /// Whether more follow.
    pub more: bool,
    /// The newest event when the page was read: stream the events after it.
    pub last_event: EventId,
}

/// Why a fence could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there are already {0} fences, the limit (--max-fences)")]
pub struct FenceLimitError(pub usize);

impl Fences {
    /// No fences.
    pub fn new(config: FencesConfig, events: Arc<EventLog>) -> Self {
        Self {
            config,
            events,
            by_id: RwLock::new(BTreeMap::new()),
            owners: DashMap::default(),
            cells: Cells::default(),
            members_of: DashMap::default(),
            quiet: AtomicBool::new(false),
            watches: Arc::default(),
        }
    }

    /// Live maps.
    pub fn watches(&self) -> &Arc<Watches> {
        &self.watches
    }

    /// The event log fences publish to.
    pub fn events(&self) -> &Arc<EventLog> {
        &self.events
    }

    /// The fence with this id.
    pub fn get(&self, id: &str) -> Option<Fence> {
        self.by_id.read().get(id).map(|s| s.fence.clone())
    }

    /// Whether a fence has this id.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.read().contains_key(id)
    }

    /// The fence ids in `ids` that name no fence.
    pub fn missing<'a>(&self, ids: &'a [String]) -> Vec<&'a str> {
        let by_id = self.by_id.read();
        ids.iter()
            .filter(|id| !by_id.contains_key(id.as_str()))
            .map(String::as_str)
            .collect()
    }

    /// Fences by id, after `after`, at most `limit` (those `viewer` sees as, if given), and
    /// whether more follow.
    pub fn list(
        &self,
        after: Option<&str>,
        limit: usize,
        viewer: Option<&str>,
    ) -> (Vec<Fence>, bool) {
        let by_id = self.by_id.read();
        let range = match after {
            Some(a) => {
                by_id.range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
            }
            None => by_id.range::<str, _>(..),
        };
        let mut page: Vec<Fence> = range
            .filter(|(_, s)| viewer.is_none_or(|v| s.fence.viewer.as_deref() == Some(v)))
            .take(limit + 1)
            .map(|(_, s)| s.fence.clone())
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        (page, more)
    }

    /// The travellers inside fence `id`, by id, after `after`, at most `limit`.
    pub fn inside(&self, id: &str, after: Option<&str>, limit: usize) -> Option<InsidePage> {
        let subject = self.by_id.read().get(id).cloned()?;
        let state = subject.state.lock();
        let mut inside: Vec<(&TravellerId, &Member)> = state
            .members
            .iter()
            .filter(|(t, _)| after.is_none_or(|a| t.as_str() > a))
            .collect();
        inside.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let more = inside.len() > limit;
        inside.truncate(limit);
        Some(InsidePage {
            travellers: inside
                .into_iter()
                .map(|(t, m)| TravellerAt {
                    id: t.to_string(),
                    position: m.at,
                    ts: m.ts,
                })
                .collect(),
            more,
            // Read under the fence's lock: every later event of this fence comes after it.
            last_event: self.events.head(),
        })
    }

    /// Passes every fence to `f`, by id.
    pub fn export<E>(&self, mut f: impl FnMut(&Fence) -> Result<(), E>) -> Result<(), E> {
        let subjects: Vec<Arc<Subject>> = self.by_id.read().values().cloned().collect();
        subjects.iter().try_for_each(|s| f(&s.fence))
    }

    /// Sizes now.
    pub fn counts(&self) -> FenceCounts {
        let subjects: Vec<Arc<Subject>> = self.by_id.read().values().cloned().collect();
        FenceCounts {
            fences: subjects.len(),
            roaming: subjects.iter().filter(|s| s.fence.is_roaming()).count(),
            memberships: subjects.iter().map(|s| s.state.lock().members.len()).sum(),
            cell_entries: self.cells.entries(),
        }
    }

    /// While `quiet`, nothing is judged or published (recovery replays the log so).
    pub fn set_quiet(&self, quiet: bool) {
        self.quiet.store(quiet, Ordering::Release);
    }

    pub(super) fn is_quiet(&self) -> bool {
        self.quiet.load(Ordering::Acquire)
    }

    /// Whether changes are judged (not quiet).
    pub fn is_judging(&self) -> bool {
        !self.is_quiet()
    }

    /// How many fences there are.
    pub fn count(&self) -> usize {
        self.by_id.read().len()
    }

    /// Refuses a new fence beyond the limit (a fence replacing one with its id always fits).
    pub fn check_room(&self, id: &str) -> Result<(), FenceLimitError> {
        let by_id = self.by_id.read();
        if by_id.len() >= self.config.max_fences && !by_id.contains_key(id) {
            return Err(FenceLimitError(self.config.max_fences));
        }
        Ok(())
    }

    /// Stores a fence, replacing any with its id, and judges every traveller it concerns:
    /// those inside the new one enter, those inside the old one only leave (cause `fence`).
    /// Returns whether the id was new.
    pub fn put(
        &self,
        fence: Fence,
        travellers: &TravellerIndex,
        now_ms: i64,
    ) -> Result<bool, FenceLimitError> {
        let id: Arc<str> = fence.id.as_str().into();
        // Recovery restores every fence there was, whatever the limit is now.
        if !self.is_quiet() {
            self.check_room(&id)?;
        }
        let old = self.by_id.read().get(&id).cloned();
        // The new fence starts with the old one's members, so that travellers still inside
        // neither leave nor enter; then everyone concerned is judged against it.
        let (members, was_roaming) = match &old {
            Some(old) => {
                let mut state = old.state.lock();
                state.gone = true;
                (std::mem::take(&mut state.members), old.fence.is_roaming())
            }
            None => (ByTraveller::default(), false),
        };
        let owner = match &fence.kind {
            FenceKind::Roaming { around, .. } => travellers
                .with_seen(around, |seen| {
                    seen.position().map(|at| Owner {
                        at,
                        ts: seen.ts(),
                        seen_ms: seen.seen_ms(),
                        visible: fence.sees(seen),
                    })
                })
                .flatten(),
            FenceKind::Static(_) => None,
        };
        let covering = self.covering_of(&fence, owner.as_ref());
        let subject = Arc::new(Subject {
            id: id.clone(),
            state: Mutex::new(State {
                members,
                owner,
                covering: covering.clone(),
                gone: false,
            }),
            fence,
        });
        // A kind change keeps no one: the members left the old kind of fence.
        if was_roaming != subject.fence.is_roaming() {
            let left: Vec<(TravellerId, Member)> = subject.state.lock().members.drain().collect();
            if let Some(old) = &old {
                self.publish_exits(old, left, now_ms);
            }
        }
        if let Some(old) = &old {
            self.unregister(old);
        }
        self.by_id.write().insert(id, subject.clone());
        self.cells.insert(&subject, &covering);
        if let FenceKind::Roaming { around, .. } = &subject.fence.kind {
            self.owners
                .entry(TravellerId::from(around.as_str()))
                .or_default()
                .push(subject.clone());
        }
        let carried: Vec<TravellerId> = subject.state.lock().members.keys().cloned().collect();
        for t in &carried {
            self.replace_membership(t, old.as_ref(), Some(&subject));
        }
        // Recovery judges every fence once the state is whole.
        if !self.is_quiet() {
            self.judge_all(&subject, travellers, now_ms, Cause::Fence, true);
        }
        Ok(old.is_none())
    }

    /// Deletes fence `id`: its streams get a `deleted` event and end. Returns whether it
    /// existed.
    pub fn delete(&self, id: &str, now_ms: i64) -> bool {
        let Some(subject) = self.by_id.write().remove(id) else {
            return false;
        };
        let members: Vec<TravellerId> = {
            let mut state = subject.state.lock();
            state.gone = true;
            if !self.is_quiet() {
                self.events.publish(
                    now_ms,
                    [NewEvent {
                        fence: subject.id.clone(),
                        kind: EventKind::Deleted,
                        traveller: None,
                        cause: None,
                        distance_m: None,
                        around: None,
                    }],
                );
            }
            state.members.drain().map(|(t, _)| t).collect()
        };
        self.unregister(&subject);
        for t in &members {
            self.replace_membership(t, Some(&subject), None);
        }
        true
    }

    /// Forgets every fence (a recovery that fell back to an older snapshot starts again).
    pub fn clear(&self) {
        let subjects = std::mem::take(&mut *self.by_id.write());
        for subject in subjects.values() {
            subject.state.lock().gone = true;
            self.unregister(subject);
        }
        self.members_of.clear();
    }

    /// Takes a subject out of the cells and the owners' map.
    fn unregister(&self, subject: &Arc<Subject>) {
        let covering = subject.state.lock().covering.clone();
        self.cells.remove(subject, &covering);
        if let FenceKind::Roaming { around, .. } = &subject.fence.kind {
            self.owners.remove_if_mut(around.as_str(), |_, list| {
                list.retain(|s| !Arc::ptr_eq(s, subject));
                list.is_empty()
            });
        }
    }

    /// The cells a fence covers: its area's, or its circle's around where its traveller is.
    pub(super) fn covering_of(&self, fence: &Fence, owner: Option<&Owner>) -> Covering {
        match (&fence.kind, owner) {
            (FenceKind::Static(area), _) => Covering::of_area(area),
            (FenceKind::Roaming { radius_m, .. }, Some(owner)) => {
                Covering::of_cap(owner.at, *radius_m)
            }
            (FenceKind::Roaming { .. }, None) => Covering::default(),
        }
    }

    /// Swaps `old` for `new` among the fences traveller `t` is inside (either may be none).
    pub(super) fn replace_membership(
        &self,
        t: &TravellerId,
        old: Option<&Arc<Subject>>,
        new: Option<&Arc<Subject>>,
    ) {
        if let Some(old) = old {
            self.members_of.remove_if_mut(t, |_, list| {
                list.retain(|s| !Arc::ptr_eq(s, old));
                list.is_empty()
            });
        }
        if let Some(new) = new {
            let mut list = self.members_of.entry(t.clone()).or_default();
            if !list.iter().any(|s| Arc::ptr_eq(s, new)) {
                list.push(new.clone());
            }
        }
    }
}
