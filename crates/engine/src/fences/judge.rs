//! Judging: whether a traveller is inside a fence now, and the event when that changed.
//!
//! Every change of who is inside goes through [`Fences::judge`], under the fence's lock:
//! it compares the traveller as it is now (its record read-locked by the caller) with the
//! fence's member list, updates the list, and publishes `enter`/`exit` (static) or
//! `nearby`/`faraway` (roaming) with the cause. A traveller that is no longer visible or
//! no longer live leaves with the position it was last seen inside at, never a newer one.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use super::registry::{Centre, Member, Subject, unlist};
use super::{FenceKind, Fences};
use crate::events::{Cause, EventKind, NewEvent};
use crate::geometry::haversine_m;
use crate::travellers::{Seen, TravellerAt, TravellerHandle, TravellerId, TravellerIndex};

/// A traveller crossing a fence's edge, as its event tells it.
#[derive(Clone, Copy)]
struct Crossing {
    /// In (`enter`, `nearby`) or out (`exit`, `faraway`).
    inwards: bool,
    /// A roaming fence's centre when it was crossed.
    centre: Option<Centre>,
    /// The distance from that centre, if any.
    distance_m: Option<f64>,
    /// What made it cross.
    cause: Cause,
}

impl Fences {
    /// Judges a traveller that changed (`cause`: it moved, or its sharing changed) against
    /// the fences it was inside and those near it that may see it. Call with its record
    /// read-locked. Returns the roaming fences around it whose circle moved, stopped or
    /// started following it: judge them with [`Fences::reevaluate`] once its record is
    /// unlocked.
    ///
    /// Which fences near it are looked at depends only on who may see it: for a public
    /// traveller every fence whose cells hold it (all may see it); for any other, the
    /// fences that see everyone and the fences of its own viewers (itself and those it
    /// shares with). A fence set up by a caller who may not see it is never looked at, so
    /// such fences cannot make its updates slower.
    pub fn on_traveller(&self, seen: Seen<'_>, now_ms: i64, cause: Cause) -> Vec<Arc<Subject>> {
        if self.is_quiet() {
            return Vec::new();
        }
        self.watches.on_traveller(seen, now_ms);
        self.judge_fences(seen, now_ms, cause);
        self.follow(seen, cause)
    }

    /// Judges a traveller where it was at a change it has since moved on from (a judging
    /// thread catching up): against the fences alone. The roaming fences that follow it
    /// and the live maps are left to the judgement of its newest change.
    pub fn judge_passing(&self, seen: Seen<'_>, now_ms: i64, cause: Cause) {
        if !self.is_quiet() {
            self.judge_fences(seen, now_ms, cause);
        }
    }

    /// Judges `seen` against the fences it was inside and those near it that may see it.
    fn judge_fences(&self, seen: Seen<'_>, now_ms: i64, cause: Cause) {
        // The fences it was inside first, so that leaving one is told before entering the
        // next; then those near where it is now that may see it.
        let mut candidates: Vec<(Arc<Subject>, bool)> = self
            .members_of
            .get(seen.id())
            .map(|inside| inside.iter().map(|s| (s.clone(), false)).collect())
            .unwrap_or_default();
        if let Some(p) = seen.position().filter(|_| seen.live(now_ms)) {
            // Where each candidate is in the list, by address: each found fence is merged
            // in one lookup (a scan of the list for each was quadratic: 1.4 ms a report
            // among 3,000 of its viewer's fences).
            let mut at: HashMap<*const Subject, usize, foldhash::fast::RandomState> =
                HashMap::default();
            at.extend(
                candidates
                    .iter()
                    .enumerate()
                    .map(|(i, (s, _))| (Arc::as_ptr(s), i)),
            );
            let mut found = if seen.is_public() {
                self.cells.at(p)
            } else {
                let mut found = self.all_seeing.at(p);
                for viewer in std::iter::once(seen.id()).chain(seen.viewers()) {
                    self.by_viewer
                        .extend_at_under(&viewer.into(), p, |_| true, &mut found);
                }
                found
            };
            for found in found.drain(..) {
                match at.entry(Arc::as_ptr(&found.subject)) {
                    Entry::Occupied(i) => candidates[*i.get()].1 |= found.interior,
                    Entry::Vacant(slot) => {
                        slot.insert(candidates.len());
                        candidates.push((found.subject, found.interior));
                    }
                }
            }
        }
        for (subject, interior) in &candidates {
            self.judge(subject, seen, now_ms, cause, *interior, true);
        }
    }

    /// Moves the roaming fences that follow `seen` with it; those whose viewer may no
    /// longer see it stop following it, and after a sharing change those whose viewer may
    /// see it again start. Returns every fence whose circle changed.
    fn follow(&self, seen: Seen<'_>, cause: Cause) -> Vec<Arc<Subject>> {
        let mut moved: Vec<Arc<Subject>> = self
            .following
            .get(seen.id())
            .map(|list| list.clone())
            .unwrap_or_default();
        // A sharing change may wake a dormant fence, and so may a move of a traveller with
        // privacy zones, out of one (nobody but the traveller itself gives it zones, so no
        // one else can make its moves look at dormant fences).
        if (cause == Cause::Sharing || seen.has_privacy_zones())
            && let Some(waking) = self.dormant.get(seen.id()).map(|list| list.clone())
        {
            moved.extend(waking.into_iter().filter(|s| s.fence.sees(seen)));
        }
        for subject in &moved {
            self.place_centre(subject, Centre::of(&subject.fence, seen));
        }
        moved
    }

    /// Records where a roaming fence's traveller is now (`None`: nowhere) and moves the
    /// fence's cells with it; a centre its viewer may not see makes the fence dormant (no
    /// cells, in the dormant list), a visible one (or none) makes it follow again.
    pub(super) fn place_centre(&self, subject: &Arc<Subject>, centre: Option<Centre>) {
        let mut state = subject.state.lock();
        if state.gone {
            return;
        }
        let was_dormant = state.centre.is_some_and(|c| !c.visible);
        let dormant = centre.is_some_and(|c| !c.visible);
        let covering = self.covering_of(&subject.fence, centre.as_ref());
        self.move_cells(subject, &mut state, covering);
        state.centre = centre;
        if was_dormant != dormant
            && let Some(around) = subject.fence.around()
        {
            let (from, to) = if dormant {
                (&self.following, &self.dormant)
            } else {
                (&self.dormant, &self.following)
            };
            unlist(from, around, subject);
            to.entry(TravellerId::from(around))
                .or_default()
                .push(subject.clone());
        }
    }

    /// A traveller is gone (deleted, or swept after it expired): it leaves every fence it
    /// was inside, with `cause`, and the roaming fences around it lose their centre.
    /// Returns those roaming fences: judge them with [`Fences::reevaluate`].
    pub fn on_gone(&self, id: &str, now_ms: i64, cause: Cause) -> Vec<Arc<Subject>> {
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
                let centre = state.centre;
                self.publish_exit(subject, id, member, centre, cause, now_ms, true);
            }
        }
        let mut around: Vec<Arc<Subject>> = self
            .following
            .get(id)
            .map(|list| list.clone())
            .unwrap_or_default();
        around.extend(
            self.dormant
                .get(id)
                .map(|list| list.clone())
                .unwrap_or_default(),
        );
        for subject in &around {
            self.place_centre(subject, None);
        }
        around
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
                let centre = subject.state.lock().centre.filter(|c| c.visible);
                if let Some(centre) = centre {
                    // The distance first: it reads the record already at hand, while the
                    // sharing test may read another allocation.
                    travellers.for_each_seen_near(centre.at, *radius_m, |seen| {
                        if seen
                            .position()
                            .is_some_and(|at| haversine_m(centre.at, at) <= *radius_m)
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
                    let centre = state.centre;
                    self.publish_exit(subject, &id, member, centre, Cause::Expired, now_ms, emit);
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
                .centre
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
        match inside {
            None => {
                let Some(member) = state.members.remove(id) else {
                    return;
                };
                // Gone from sight: it leaves where it was last seen inside.
                let (left, cause) = if !seen.live(now_ms) {
                    (member, Cause::Expired)
                } else if !visible {
                    // Moving into a privacy zone hides it: told as a change of who may
                    // see it, where it was last seen.
                    let cause = if seen.in_privacy_zone() {
                        Cause::Sharing
                    } else {
                        cause
                    };
                    (member, cause)
                } else {
                    let left = Member {
                        at: seen.position().unwrap_or(member.at),
                        ts: seen.ts(),
                        seen_ms: seen.seen_ms(),
                    };
                    (left, cause)
                };
                let centre = state.centre;
                self.publish_exit(subject, id, left, centre, cause, now_ms, emit);
            }
            Some((at, distance_m)) => {
                let member = Member {
                    at,
                    ts: seen.ts(),
                    seen_ms: seen.seen_ms(),
                };
                // Still inside, the usual case: updated where it is kept (one lookup, no
                // key made).
                if state.members.replace(id, member) {
                    return;
                }
                state.members.insert(id.into(), member);
                self.replace_membership(&id.into(), None, Some(subject));
                if emit && !self.is_quiet() {
                    let crossing = Crossing {
                        inwards: true,
                        centre: state.centre,
                        distance_m,
                        cause,
                    };
                    self.publish_crossing(subject, id, &member, crossing, now_ms);
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
        centre: Option<Centre>,
        cause: Cause,
        now_ms: i64,
        emit: bool,
    ) {
        self.replace_membership(&id.into(), Some(subject), None);
        if !emit || self.is_quiet() {
            return;
        }
        // A centre the fence's viewer may not see (its traveller stopped sharing, or is in
        // a privacy zone) is neither told nor measured from.
        let centre = centre.filter(|c| c.visible);
        let crossing = Crossing {
            inwards: false,
            centre,
            distance_m: centre.map(|o| haversine_m(o.at, left.at)),
            cause,
        };
        self.publish_crossing(subject, id, &left, crossing, now_ms);
    }

    /// Publishes that traveller `id`, where `member` says, crossed `subject`'s edge: an
    /// `enter` or `exit` for a static fence, `nearby` or `faraway` for a roaming one.
    fn publish_crossing(
        &self,
        subject: &Subject,
        id: &str,
        member: &Member,
        crossing: Crossing,
        now_ms: i64,
    ) {
        let kind = match (crossing.inwards, subject.fence.is_roaming()) {
            (true, false) => EventKind::Enter,
            (true, true) => EventKind::Nearby,
            (false, false) => EventKind::Exit,
            (false, true) => EventKind::Faraway,
        };
        self.events.publish(
            now_ms,
            [NewEvent {
                fence: subject.key.clone(),
                kind,
                traveller: Some(TravellerAt {
                    id: id.to_string(),
                    position: member.at,
                    ts: member.ts,
                }),
                cause: Some(crossing.cause),
                distance_m: crossing.distance_m,
                around: crossing.centre.map(Centre::around),
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
        let subjects: Vec<Arc<Subject>> = self.by_key.read().values().cloned().collect();
        for subject in subjects {
            let mut state = subject.state.lock();
            if state.gone || state.members.is_empty() {
                continue;
            }
            let centre_gone = subject.fence.is_roaming()
                && state
                    .centre
                    .is_none_or(|o| now_ms.saturating_sub(o.seen_ms) > ttl);
            let expired = state.members.take_expired(now_ms, ttl, centre_gone);
            for (id, member) in expired {
                let centre = state.centre;
                self.publish_exit(&subject, &id, member, centre, Cause::Expired, now_ms, true);
            }
        }
    }

    /// Works out who is inside every fence afresh from the travellers as they are, without
    /// publishing anything: after recovery, when the log replayed without judging.
    pub fn recompute(&self, travellers: &TravellerIndex, now_ms: i64) {
        let subjects: Vec<Arc<Subject>> = self.by_key.read().values().cloned().collect();
        for subject in &subjects {
            if let Some(around) = subject.fence.around() {
                let centre = travellers
                    .with_seen(around, |seen| Centre::of(&subject.fence, seen))
                    .flatten();
                self.place_centre(subject, centre);
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
        let centre = subject.state.lock().centre;
        for (id, member) in left {
            self.publish_exit(subject, &id, member, centre, Cause::Fence, now_ms, true);
        }
    }
}
