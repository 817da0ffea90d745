//! Judging: whether a traveller is inside a fence now, and the event when that changed.
//!
//! Every change of who is inside goes through [`Fences::judge`], under the fence's lock:
//! it compares the traveller as it is now (its record read-locked by the caller) with the
//! fence's member list, updates the list, and publishes `enter`/`exit` (static) or
//! `nearby`/`faraway` (roaming) with the cause. A traveller that is no longer visible or
//! no longer live leaves with the position it was last seen inside at, never a newer one.

use std::sync::Arc;

use super::registry::{Member, Owner, Subject};
use super::{FenceKind, Fences};
use crate::events::{Cause, EventKind, NewEvent};
use crate::geometry::haversine_m;
use crate::travellers::{Seen, TravellerAt, TravellerHandle, TravellerId, TravellerIndex};

impl Fences {
    /// Judges a traveller that a position report just moved, against the fences near its
    /// new position and those it was inside. Call with its record still locked. Returns the
    /// roaming fences around it, which moved with it: judge them with
    /// [`Fences::reevaluate`] once its record is unlocked.
    pub fn on_moved(&self, seen: Seen<'_>, now_ms: i64) -> Vec<Arc<Subject>> {
        self.on_traveller(seen, now_ms, Cause::Moved)
    }

    /// Judges a traveller whose sharing changed (cause `sharing`), like [`Fences::on_moved`].
    pub fn on_sharing(&self, seen: Seen<'_>, now_ms: i64) -> Vec<Arc<Subject>> {
        self.on_traveller(seen, now_ms, Cause::Sharing)
    }

    fn on_traveller(&self, seen: Seen<'_>, now_ms: i64, cause: Cause) -> Vec<Arc<Subject>> {
        if self.is_quiet() {
            return Vec::new();
        }
        self.watches.on_traveller(seen, now_ms);
        // The fences it was inside first, so that leaving one is told before entering the
        // next; then those whose cells hold where it is now.
        let mut candidates: Vec<(Arc<Subject>, bool)> = self
            .members_of
            .get(seen.id())
            .map(|inside| inside.iter().map(|s| (s.clone(), false)).collect())
            .unwrap_or_default();
        if let Some(p) = seen.position() {
            // A fence whose viewer may not see it has nothing to say unless it is inside
            // (those are candidates already): skipped without its lock. (Its membership
            // cannot change meanwhile: that takes this traveller's record, which is locked.)
            let live = seen.live(now_ms);
            let inside = candidates.len();
            let found = self.cells.at_where(p, |subject| {
                (live && subject.fence.sees(seen))
                    || candidates[..inside]
                        .iter()
                        .any(|(s, _)| std::ptr::eq(&**s, subject))
            });
            for found in found {
                match candidates
                    .iter_mut()
                    .find(|(s, _)| Arc::ptr_eq(s, &found.subject))
                {
                    Some(known) => known.1 |= found.interior,
                    None => candidates.push((found.subject, found.interior)),
                }
            }
        }
        for (subject, interior) in &candidates {
            self.judge(subject, seen, now_ms, cause, *interior, true);
        }
        let Some(owned) = self.owners.get(seen.id()).map(|list| list.clone()) else {
            return Vec::new();
        };
        for subject in &owned {
            let owner = seen.position().map(|at| Owner {
                at,
                ts: seen.ts(),
                seen_ms: seen.seen_ms(),
                visible: subject.fence.sees(seen),
            });
            self.move_owner(subject, owner);
        }
        owned
    }

    /// A traveller was deleted: it leaves every fence it was inside (cause `deleted`), and
    /// the roaming fences around it lose their centre. Returns those roaming fences: judge
    /// them with [`Fences::reevaluate`].
    pub fn on_deleted(&self, id: &str, now_ms: i64) -> Vec<Arc<Subject>> {
        if self.is_quiet() {
            return Vec::new();
        }
        self.watches.on_deleted(id);
        let inside = self
            .members_of
            .remove(id)
            .map(|(_, list)| list)
            .unwrap_or_default();
        for subject in &inside {
            let mut state = subject.state.lock();
            if let Some(member) = state.members.remove(id) {
                let owner = state.owner;
                self.publish_exit(subject, id, member, owner, Cause::Deleted, now_ms, true);
            }
        }
        let owned = self
            .owners
            .get(id)
            .map(|list| list.clone())
            .unwrap_or_default();
        for subject in &owned {
            self.move_owner(subject, None);
        }
        owned
    }

    /// Records where a roaming fence's traveller is now (`None`: nowhere) and moves the
    /// fence's cells with it.
    fn move_owner(&self, subject: &Arc<Subject>, owner: Option<Owner>) {
        let mut state = subject.state.lock();
        if state.gone {
            return;
        }
        let covering = self.covering_of(&subject.fence, owner.as_ref());
        self.cells.replace(subject, &state.covering, &covering);
        state.covering = covering;
        state.owner = owner;
    }

    /// Judges every traveller `subjects` may concern again (after their traveller moved,
    /// changed sharing or was deleted), with `cause`.
    pub fn reevaluate(
        &self,
        subjects: &[Arc<Subject>],
        travellers: &TravellerIndex,
        now_ms: i64,
        cause: Cause,
    ) {
        for subject in subjects {
            self.judge_all(subject, travellers, now_ms, cause, true);
        }
    }

    /// Judges every traveller a fence may concern, in id order: those in its cells and
    /// those inside it. `emit: false` updates who is inside without publishing (recovery).
    pub(super) fn judge_all(
        &self,
        subject: &Arc<Subject>,
        travellers: &TravellerIndex,
        now_ms: i64,
        cause: Cause,
        emit: bool,
    ) {
        // Those the fence may see now, with where their records lie, and (below) those
        // inside it: for anyone else there is nothing to judge. (In a crowd, most of those
        // near a roaming fence are strangers.)
        let mut ids: Vec<(TravellerId, Option<TravellerHandle>)> = Vec::new();
        let mut note = |seen: Seen<'_>| {
            if seen.live(now_ms) && subject.fence.sees(seen) {
                ids.push((seen.id().into(), Some(seen.handle())));
            }
        };
        match &subject.fence.kind {
            FenceKind::Static(area) => travellers.for_each_seen_in(area, |seen, _| note(seen)),
            FenceKind::Roaming { radius_m, .. } => {
                let owner = subject.state.lock().owner;
                if let Some(owner) = owner {
                    // The distance first: it reads the record already at hand, while the
                    // sharing test may read another allocation.
                    travellers.for_each_seen_near(owner.at, *radius_m, |seen| {
                        if seen
                            .position()
                            .is_some_and(|at| haversine_m(owner.at, at) <= *radius_m)
                        {
                            note(seen);
                        }
                    });
                }
            }
        }
        ids.extend(
            subject
                .state
                .lock()
                .members
                .keys()
                .map(|id| (id.clone(), None)),
        );
        // By id, those with a handle first; each once.
        ids.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.is_some().cmp(&a.1.is_some())));
        ids.dedup_by(|later, first| later.0 == first.0);
        let judge = |seen: Seen<'_>| self.judge(subject, seen, now_ms, cause, false, emit);
        for (id, at) in ids {
            let judged = at
                .and_then(|at| travellers.with_seen_at(at, &id, judge))
                .or_else(|| travellers.with_seen(&id, judge));
            if judged.is_none() {
                // No record any more: it expired and was swept.
                let mut state = subject.state.lock();
                if let Some(member) = state.members.remove(&id) {
                    let owner = state.owner;
                    self.publish_exit(subject, &id, member, owner, Cause::Expired, now_ms, emit);
                }
            }
        }
    }

    /// Whether `seen` is inside `subject` now, and if that changed, the event. The caller
    /// holds `seen`'s record locked. `interior`: its cell lies wholly inside the area.
    pub(super) fn judge(
        &self,
        subject: &Arc<Subject>,
        seen: Seen<'_>,
        now_ms: i64,
        cause: Cause,
        interior: bool,
        emit: bool,
    ) {
        let mut state = subject.state.lock();
        if state.gone {
            return;
        }
        let visible = seen.live(now_ms) && subject.fence.sees(seen);
        let inside = match (visible, seen.position(), &subject.fence.kind) {
            (false, _, _) | (_, None, _) => None,
            (true, Some(at), FenceKind::Static(area)) => {
                (interior || area.contains(at)).then_some((at, None))
            }
            (true, Some(at), FenceKind::Roaming { around, radius_m }) => state
                .owner
                .filter(|o| {
                    o.visible
                        && seen.id() != around.as_str()
                        && now_ms.saturating_sub(o.seen_ms) <= self.config.ttl_ms
                })
                .map(|o| haversine_m(o.at, at))
                .filter(|d| d <= radius_m)
                .map(|d| (at, Some(d))),
        };
        let id = seen.id();
        match (state.members.get(id).copied(), inside) {
            (None, None) => {}
            (Some(member), None) => {
                state.members.remove(id);
                // Gone from sight: it leaves where it was last seen inside.
                let (left, cause) = if !seen.live(now_ms) {
                    (member, Cause::Expired)
                } else if !visible {
                    (member, cause)
                } else {
                    let left = Member {
                        at: seen.position().unwrap_or(member.at),
                        ts: seen.ts(),
                        seen_ms: seen.seen_ms(),
                    };
                    (left, cause)
                };
                let owner = state.owner;
                self.publish_exit(subject, id, left, owner, cause, now_ms, emit);
            }
            (Some(_), Some((at, _))) => {
                if let Some(member) = state.members.get_mut(id) {
                    *member = Member {
                        at,
                        ts: seen.ts(),
                        seen_ms: seen.seen_ms(),
                    };
                }
            }
            (None, Some((at, distance_m))) => {
                state.members.insert(
                    id.into(),
                    Member {
                        at,
                        ts: seen.ts(),
                        seen_ms: seen.seen_ms(),
                    },
                );
                self.replace_membership(&id.into(), None, Some(subject));
                if emit && !self.is_quiet() {
                    let kind = if subject.fence.is_roaming() {
                        EventKind::Nearby
                    } else {
                        EventKind::Enter
                    };
                    self.events.publish(
                        now_ms,
                        [NewEvent {
                            fence: subject.id.clone(),
                            kind,
                            traveller: Some(TravellerAt {
                                id: id.to_string(),
                                position: at,
                                ts: seen.ts(),
                            }),
                            cause: Some(cause),
                            distance_m,
                            around: state.owner.map(Owner::around),
                        }],
                    );
                }
            }
        }
    }

    /// Publishes that `id` left `subject` (its member entry already removed by the caller,
    /// who holds the fence's lock), and forgets the membership.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn publish_exit(
        &self,
        subject: &Arc<Subject>,
        id: &str,
        left: Member,
        owner: Option<Owner>,
        cause: Cause,
        now_ms: i64,
        emit: bool,
    ) {
        self.replace_membership(&id.into(), Some(subject), None);
        if !emit || self.is_quiet() {
            return;
        }
        let kind = if subject.fence.is_roaming() {
            EventKind::Faraway
        } else {
            EventKind::Exit
        };
        self.events.publish(
            now_ms,
            [NewEvent {
                fence: subject.id.clone(),
                kind,
                traveller: Some(TravellerAt {
                    id: id.to_string(),
                    position: left.at,
                    ts: left.ts,
                }),
                cause: Some(cause),
                distance_m: owner.map(|o| haversine_m(o.at, left.at)),
                around: owner.map(Owner::around),
            }],
        );
    }

    /// Everyone whose newest position passed the time-to-live leaves the fences they were
    /// inside (cause `expired`), in id order per fence; a roaming fence whose traveller
    /// expired loses everyone. Run it often (every second): an exit is due the moment the
    /// age passes the time-to-live, not when the sweeper frees the memory.
    pub fn expire(&self, now_ms: i64) {
        if self.is_quiet() {
            return;
        }
        let ttl = self.config.ttl_ms;
        self.watches.expire(now_ms, ttl);
        self.expire_members(now_ms, ttl);
    }

    /// Live maps drop travellers whose position passed the time-to-live.
    pub fn expire_watches(&self, now_ms: i64) {
        self.watches.expire(now_ms, self.config.ttl_ms);
    }

    fn expire_members(&self, now_ms: i64, ttl: i64) {
        let subjects: Vec<Arc<Subject>> = self.by_id.read().values().cloned().collect();
        for subject in subjects {
            let mut state = subject.state.lock();
            if state.gone || state.members.is_empty() {
                continue;
            }
            let owner_gone = subject.fence.is_roaming()
                && state
                    .owner
                    .is_none_or(|o| now_ms.saturating_sub(o.seen_ms) > ttl);
            let mut expired: Vec<TravellerId> = state
                .members
                .iter()
                .filter(|(_, m)| owner_gone || now_ms.saturating_sub(m.seen_ms) > ttl)
                .map(|(id, _)| id.clone())
                .collect();
            expired.sort_unstable();
            for id in expired {
                if let Some(member) = state.members.remove(&id) {
                    let owner = state.owner;
                    self.publish_exit(&subject, &id, member, owner, Cause::Expired, now_ms, true);
                }
            }
        }
    }

    /// Works out who is inside every fence afresh from the travellers as they are, without
    /// publishing anything: after recovery, when the log replayed without judging.
    pub fn recompute(&self, travellers: &TravellerIndex, now_ms: i64) {
        let subjects: Vec<Arc<Subject>> = self.by_id.read().values().cloned().collect();
        for subject in &subjects {
            if let FenceKind::Roaming { around, .. } = &subject.fence.kind {
                let owner = travellers
                    .with_seen(around, |seen| {
                        seen.position().map(|at| Owner {
                            at,
                            ts: seen.ts(),
                            seen_ms: seen.seen_ms(),
                            visible: subject.fence.sees(seen),
                        })
                    })
                    .flatten();
                self.move_owner(subject, owner);
            }
            let members: Vec<TravellerId> = {
                let mut state = subject.state.lock();
                state.members.drain().map(|(id, _)| id).collect()
            };
            for id in &members {
                self.replace_membership(id, Some(subject), None);
            }
            self.judge_all(subject, travellers, now_ms, Cause::Fence, false);
        }
    }

    /// Publishes that every traveller in `left` left `subject` because the fence changed.
    pub(super) fn publish_exits(
        &self,
        subject: &Arc<Subject>,
        mut left: Vec<(TravellerId, Member)>,
        now_ms: i64,
    ) {
        left.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let owner = subject.state.lock().owner;
        for (id, member) in left {
            self.publish_exit(subject, &id, member, owner, Cause::Fence, now_ms, true);
        }
    }
}
