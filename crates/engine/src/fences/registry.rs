//! [`Fences`]: every fence by owner and id, with its cells, its state (who is inside), the
//! roaming fences by the traveller they follow, the fences by viewer, and the fences each
//! traveller is inside; adding, replacing, deleting and listing them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dashmap::DashMap;
use foldhash::fast::RandomState;
use parking_lot::{Mutex, RwLock};

use super::cells::{Cells, Covering};
use super::members::{Members, SeenAt};
use super::usage::{FenceLimitError, FenceQuotas, Usage};
use super::watch::Watches;
use super::{Fence, FenceKey, FenceKind};
use crate::events::{Around, Cause, EventId, EventKind, EventLog, NewEvent, Place};
use crate::geometry::LatLon;
use crate::travellers::{Seen, TravellerAt, TravellerId, TravellerIndex};

/// Tunables of [`Fences`].
#[derive(Debug, Clone, Copy)]
pub struct FencesConfig {
    /// A traveller whose newest position is older than this is no longer inside anything.
    pub ttl_ms: i64,
    /// The limits on fences.
    pub quotas: FenceQuotas,
}

/// Sizes, for metrics and the memory figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FenceCounts {
    /// Fences.
    pub fences: usize,
    /// Of which roaming.
    pub roaming: usize,
    /// Roaming fences following nobody: their viewer may not see their traveller now.
    pub dormant: usize,
    /// Travellers inside a fence, counted once per fence.
    pub memberships: usize,
    /// Cell entries of the fence index.
    pub cell_entries: usize,
}

/// A list of fences, under one key of a concurrent map.
pub(super) type SubjectList = Vec<Arc<Subject>>;

/// Every fence and its state.
pub struct Fences {
    pub(super) config: FencesConfig,
    pub(super) events: Arc<EventLog>,
    pub(super) by_key: RwLock<BTreeMap<FenceKey, Arc<Subject>>>,
    /// What the fences cost, per owner and in all.
    usage: Mutex<Usage>,
    /// How many fences there are (read on every position report: no lock).
    count: AtomicUsize,
    /// Roaming fences following the traveller they are around (their viewer may see it).
    pub(super) following: DashMap<TravellerId, SubjectList, RandomState>,
    /// Roaming fences whose viewer may not see their traveller now: they follow nobody,
    /// and that traveller's moves never look at them; a sharing change looks.
    pub(super) dormant: DashMap<TravellerId, SubjectList, RandomState>,
    /// Every fence by its cells: a public traveller, whom every fence may see, is judged
    /// against these.
    pub(super) cells: Cells<Subject>,
    /// The fences that see everyone (no viewer) by their cells: with `by_viewer`, what a
    /// traveller that is not public is judged against.
    pub(super) all_seeing: Cells<Subject>,
    /// The fences that have a viewer by their cells, under their viewer's name: a traveller
    /// that is not public is judged against those of its own viewers near it (and the
    /// all-seeing ones), never against anyone else's, and dormant fences (no cells) cost
    /// it nothing.
    pub(super) by_viewer: Cells<Subject, Arc<str>>,
    /// The fences each traveller is inside.
    pub(super) members_of: DashMap<TravellerId, SubjectList, RandomState>,
    /// Set while recovery replays the log: nothing is judged (memberships are computed
    /// afresh once the state is whole) and nothing published.
    pub(super) quiet: AtomicBool,
    /// Live maps, judged with the fences.
    pub(super) watches: Arc<Watches>,
}

impl std::fmt::Debug for Fences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fences")
            .field("fences", &self.by_key.read().len())
            .finish_non_exhaustive()
    }
}

/// One fence: its definition and its state. A replaced fence is a new subject; the old one
/// is marked gone, so that a judgement that found it a moment before does nothing.
pub struct Subject {
    pub(super) key: FenceKey,
    pub(super) fence: Fence,
    /// Where its owner's events stood when this incarnation of the fence was created (a
    /// replacement keeps it): a stream resuming from before it is told to list again,
    /// never given the events of a fence that had the id before.
    pub(super) born: Place,
    pub(super) state: Mutex<State>,
}

/// Who is inside a fence, and for a roaming fence where its traveller is.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) members: Members<Member>,
    pub(super) centre: Option<Centre>,
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

impl SeenAt for Member {
    fn seen_ms(&self) -> i64 {
        self.seen_ms
    }
}

/// The traveller a roaming fence is around, as last seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Centre {
    pub(super) at: LatLon,
    /// The timestamp of the report that put it at `at`.
    pub(super) ts: i64,
    pub(super) seen_ms: i64,
    /// Whether the fence's viewer may see it.
    pub(super) visible: bool,
}

impl Centre {
    /// Where `seen` is, as `fence`'s centre, if it has a position.
    pub(super) fn of(fence: &Fence, seen: Seen<'_>) -> Option<Self> {
        seen.position().map(|at| Self {
            at,
            ts: seen.ts(),
            seen_ms: seen.seen_ms(),
            visible: fence.sees(seen),
        })
    }

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
    /// The newest event of the fence's owner when the page was read: stream the events
    /// after it.
    pub last_event: EventId,
}

/// Takes `subject` out of the list under `key` of `map`, dropping the list once empty.
pub(super) fn unlist<K>(
    map: &DashMap<K, SubjectList, RandomState>,
    key: &str,
    subject: &Arc<Subject>,
) where
    K: std::hash::Hash + Eq + std::borrow::Borrow<str>,
{
    map.remove_if_mut(key, |_, list| {
        list.retain(|s| !Arc::ptr_eq(s, subject));
        list.is_empty()
    });
}

impl Fences {
    /// No fences.
    pub fn new(config: FencesConfig, events: Arc<EventLog>) -> Self {
        Self {
            config,
            events,
            by_key: RwLock::new(BTreeMap::new()),
            usage: Mutex::new(Usage::default()),
            count: AtomicUsize::new(0),
            following: DashMap::default(),
            dormant: DashMap::default(),
            cells: Cells::default(),
            all_seeing: Cells::default(),
            by_viewer: Cells::default(),
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

    /// The limits on fences.
    pub fn quotas(&self) -> &FenceQuotas {
        &self.config.quotas
    }

    /// The fence named `key`.
    pub fn get(&self, key: &FenceKey) -> Option<Fence> {
        self.by_key.read().get(key).map(|s| s.fence.clone())
    }

    /// Where each of `ids` (fences of `owner`) was born, in order; `Err` with the first id
    /// that names no fence.
    pub fn births<'a>(&self, owner: &str, ids: &'a [String]) -> Result<Vec<Place>, &'a str> {
        let by_key = self.by_key.read();
        ids.iter()
            .map(|id| {
                by_key
                    .get(&FenceKey::new(owner, id))
                    .map(|s| s.born)
                    .ok_or(id.as_str())
            })
            .collect()
    }

    /// `owner`'s fences by id, after `after`, at most `limit`, and whether more follow.
    pub fn list(&self, owner: &str, after: Option<&str>, limit: usize) -> (Vec<Fence>, bool) {
        let by_key = self.by_key.read();
        let from = FenceKey::new(owner, after.unwrap_or(""));
        let lower = match after {
            Some(_) => std::ops::Bound::Excluded(from),
            None => std::ops::Bound::Included(from),
        };
        let mut page: Vec<Fence> = by_key
            .range((lower, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| *k.owner == *owner)
            .take(limit + 1)
            .map(|(_, s)| s.fence.clone())
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        (page, more)
    }

    /// The travellers inside fence `key`, by id, after `after`, at most `limit`.
    pub fn inside(&self, key: &FenceKey, after: Option<&str>, limit: usize) -> Option<InsidePage> {
        let subject = self.by_key.read().get(key).cloned()?;
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
            last_event: self.events.head(&key.owner),
        })
    }

    /// Passes every fence to `f`, by key.
    pub fn export<E>(&self, mut f: impl FnMut(&Fence) -> Result<(), E>) -> Result<(), E> {
        let subjects: Vec<Arc<Subject>> = self.by_key.read().values().cloned().collect();
        subjects.iter().try_for_each(|s| f(&s.fence))
    }

    /// Sizes now.
    pub fn counts(&self) -> FenceCounts {
        let subjects: Vec<Arc<Subject>> = self.by_key.read().values().cloned().collect();
        FenceCounts {
            fences: subjects.len(),
            roaming: subjects.iter().filter(|s| s.fence.is_roaming()).count(),
            dormant: self.dormant.iter().map(|list| list.len()).sum(),
            memberships: subjects.iter().map(|s| s.state.lock().members.len()).sum(),
            cell_entries: self.cells.entries()
                + self.all_seeing.entries()
                + self.by_viewer.entries(),
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
        self.count.load(Ordering::Acquire)
    }

    /// Refuses `fence` if storing it (replacing the fence with its key, if any) would pass
    /// a limit. `privileged`: an admin-scope owner (see [`FenceQuotas`]).
    pub fn check_room(&self, fence: &Fence, privileged: bool) -> Result<(), FenceLimitError> {
        let old = self.get(&fence.key());
        self.usage
            .lock()
            .check(&self.config.quotas, fence, old.as_ref(), privileged)
    }

    /// Stores a fence, replacing any with its key, and judges every traveller it concerns:
    /// those inside the new one enter, those inside the old one only leave (cause `fence`).
    /// Returns whether the key was new. The limits are the caller's to check (recovery
    /// restores every fence there was, whatever the limits are now).
    pub fn put(&self, fence: Fence, travellers: &TravellerIndex, now_ms: i64) -> bool {
        let key = fence.key();
        let old = self.by_key.read().get(&key).cloned();
        // The new fence starts with the old one's members, so that travellers still inside
        // neither leave nor enter; then everyone concerned is judged against it.
        let (members, was_roaming) = match &old {
            Some(old) => {
                let mut state = old.state.lock();
                state.gone = true;
                (std::mem::take(&mut state.members), old.fence.is_roaming())
            }
            None => (Members::default(), false),
        };
        let centre = fence
            .around()
            .and_then(|around| travellers.with_seen(around, |seen| Centre::of(&fence, seen)))
            .flatten();
        let covering = self.covering_of(&fence, centre.as_ref());
        let born = match &old {
            Some(old) => old.born,
            None => self.events.head(&key.owner).place,
        };
        let subject = Arc::new(Subject {
            key: key.clone(),
            state: Mutex::new(State {
                members,
                centre,
                covering: covering.clone(),
                gone: false,
            }),
            born,
            fence,
        });
        // A kind change keeps no one: the members left the old kind of fence.
        if was_roaming != subject.fence.is_roaming() {
            let left: Vec<(TravellerId, Member)> = subject.state.lock().members.drain().collect();
            if let Some(old) = &old {
                self.publish_exits(old, left, now_ms);
            }
        }
        {
            let mut usage = self.usage.lock();
            if let Some(old) = &old {
                usage.remove(&old.fence);
            }
            usage.add(&subject.fence);
            self.count.store(usage.fences(), Ordering::Release);
        }
        if let Some(old) = &old {
            self.unregister(old);
        }
        self.by_key.write().insert(key, subject.clone());
        self.register(&subject, &covering);
        let carried: Vec<TravellerId> = subject.state.lock().members.keys().cloned().collect();
        for t in &carried {
            self.replace_membership(t, old.as_ref(), Some(&subject));
        }
        // Recovery judges every fence once the state is whole.
        if !self.is_quiet() {
            self.judge_all(&subject, travellers, now_ms, Cause::Fence, true);
        }
        old.is_none()
    }

    /// Deletes fence `key`: its streams get a `deleted` event and end. Returns whether it
    /// existed.
    pub fn delete(&self, key: &FenceKey, now_ms: i64) -> bool {
        let Some(subject) = self.by_key.write().remove(key) else {
            return false;
        };
        {
            let mut usage = self.usage.lock();
            usage.remove(&subject.fence);
            self.count.store(usage.fences(), Ordering::Release);
        }
        let members: Vec<TravellerId> = {
            let mut state = subject.state.lock();
            state.gone = true;
            if !self.is_quiet() {
                self.events.publish(
                    now_ms,
                    [NewEvent {
                        fence: subject.key.clone(),
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
        let subjects = std::mem::take(&mut *self.by_key.write());
        for subject in subjects.values() {
            subject.state.lock().gone = true;
            self.unregister(subject);
        }
        *self.usage.lock() = Usage::default();
        self.count.store(0, Ordering::Release);
        self.members_of.clear();
    }

    /// Lists a new subject in the cells of `covering` and the maps that find it.
    fn register(&self, subject: &Arc<Subject>, covering: &Covering) {
        self.cells.insert(subject, covering);
        match &subject.fence.viewer {
            None => self.all_seeing.insert(subject, covering),
            Some(viewer) => self
                .by_viewer
                .insert_under(&viewer.as_str().into(), subject, covering),
        }
        if let Some(around) = subject.fence.around() {
            // Dormant while its viewer may not see its traveller; following otherwise (a
            // traveller with no position yet is followed from its first).
            let dormant = subject.state.lock().centre.is_some_and(|c| !c.visible);
            let list = if dormant {
                &self.dormant
            } else {
                &self.following
            };
            list.entry(TravellerId::from(around))
                .or_default()
                .push(subject.clone());
        }
    }

    /// Takes a subject out of the cells and every map that finds it.
    fn unregister(&self, subject: &Arc<Subject>) {
        let covering = std::mem::take(&mut subject.state.lock().covering);
        self.cells.remove(subject, &covering);
        match &subject.fence.viewer {
            None => self.all_seeing.remove(subject, &covering),
            Some(viewer) => {
                self.by_viewer
                    .remove_under(&viewer.as_str().into(), subject, &covering)
            }
        }
        if let Some(around) = subject.fence.around() {
            unlist(&self.following, around, subject);
            unlist(&self.dormant, around, subject);
        }
    }

    /// Moves a subject's cells from its covering to `covering`, in every cell index it is
    /// listed in. The caller holds its state.
    pub(super) fn move_cells(&self, subject: &Arc<Subject>, state: &mut State, covering: Covering) {
        self.cells.replace(subject, &state.covering, &covering);
        match &subject.fence.viewer {
            None => self.all_seeing.replace(subject, &state.covering, &covering),
            Some(viewer) => self.by_viewer.replace_under(
                &viewer.as_str().into(),
                subject,
                &state.covering,
                &covering,
            ),
        }
        state.covering = covering;
    }

    /// The cells a fence covers: its area's, or its circle's around where its traveller is
    /// (none while its viewer may not see it).
    pub(super) fn covering_of(&self, fence: &Fence, centre: Option<&Centre>) -> Covering {
        match (&fence.kind, centre) {
            (FenceKind::Static(area), _) => Covering::of_area(area),
            (FenceKind::Roaming { radius_m, .. }, Some(centre)) if centre.visible => {
                Covering::of_cap(centre.at, *radius_m)
            }
            (FenceKind::Roaming { .. }, _) => Covering::default(),
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
            unlist(&self.members_of, t.as_str(), old);
        }
        if let Some(new) = new {
            let mut list = self.members_of.entry(t.clone()).or_default();
            if !list.iter().any(|s| Arc::ptr_eq(s, new)) {
                list.push(new.clone());
            }
        }
    }
}
