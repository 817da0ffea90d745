//! Who is inside a fence or on a live map, and a bound on how old their positions are, so
//! that the once-a-second expiry looks only where a position may have passed the
//! time-to-live.
//!
//! Scanning every member of every fence and map each second cost time in proportion to all
//! memberships (a thousand whole-world maps of 5,000 travellers each: 5 million a second,
//! 4.5 % of the server's time under that attack). The bound is the oldest `seen_ms` any
//! member had when it was put in (positions only get younger); while it is within the
//! time-to-live no member can have expired, so the scan is skipped, and after a scan the
//! bound is the oldest of those left. The answers are the same as a full scan's (a cluster
//! node expires at the same place as the others).

use std::ops::Deref;

use super::ByTraveller;
use crate::travellers::TravellerId;

/// What a member records of its traveller's last position: when its age counts from.
pub(super) trait SeenAt: Copy {
    /// When the member's position's age counts from, Unix ms.
    fn seen_ms(&self) -> i64;
}

/// Members by traveller, with the bound on their ages. Reads go through `Deref` to the map;
/// every change goes through the methods here, which keep the bound.
#[derive(Debug)]
pub(super) struct Members<M> {
    by_id: ByTraveller<M>,
    /// No member's `seen_ms` is below this (`i64::MAX`: none).
    oldest_ms: i64,
}

impl<M> Default for Members<M> {
    fn default() -> Self {
        Self {
            by_id: ByTraveller::default(),
            oldest_ms: i64::MAX,
        }
    }
}

impl<M> Deref for Members<M> {
    type Target = ByTraveller<M>;

    fn deref(&self) -> &ByTraveller<M> {
        &self.by_id
    }
}

impl<M: SeenAt> Members<M> {
    /// Puts `member` in as `id` (new, or in place of what it was).
    pub(super) fn insert(&mut self, id: TravellerId, member: M) -> Option<M> {
        self.oldest_ms = self.oldest_ms.min(member.seen_ms());
        self.by_id.insert(id, member)
    }

    /// Puts `member` in place of `id`'s, if `id` is a member; `false`, changing nothing,
    /// if not.
    pub(super) fn replace(&mut self, id: &str, member: M) -> bool {
        match self.by_id.get_mut(id) {
            Some(kept) => {
                self.oldest_ms = self.oldest_ms.min(member.seen_ms());
                *kept = member;
                true
            }
            None => false,
        }
    }

    /// Takes `id` out.
    pub(super) fn remove(&mut self, id: &str) -> Option<M> {
        self.by_id.remove(id)
    }

    /// Takes every member out.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = (TravellerId, M)> + '_ {
        self.oldest_ms = i64::MAX;
        self.by_id.drain()
    }

    /// Takes out the members whose position is more than `ttl_ms` old at `now_ms` (every
    /// member, if `all`), sorted by id.
    pub(super) fn take_expired(
        &mut self,
        now_ms: i64,
        ttl_ms: i64,
        all: bool,
    ) -> Vec<(TravellerId, M)> {
        let expired_at = |seen_ms: i64| now_ms.saturating_sub(seen_ms) > ttl_ms;
        if self.by_id.is_empty() || (!all && !expired_at(self.oldest_ms)) {
            return Vec::new();
        }
        let mut expired: Vec<(TravellerId, M)> = self
            .by_id
            .iter()
            .filter(|(_, m)| all || expired_at(m.seen_ms()))
            .map(|(id, m)| (id.clone(), *m))
            .collect();
        expired.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (id, _) in &expired {
            self.by_id.remove(id);
        }
        self.oldest_ms = self
            .by_id
            .values()
            .map(SeenAt::seen_ms)
            .min()
            .unwrap_or(i64::MAX);
        expired
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Seen(i64);

    impl SeenAt for Seen {
        fn seen_ms(&self) -> i64 {
            self.0
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i64),
        Replace(u8, i64),
        Remove(u8),
        Expire(i64, bool),
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..16, 0i64..1_000).prop_map(|(id, seen)| Op::Insert(id, seen)),
            2 => (0u8..16, 0i64..1_000).prop_map(|(id, seen)| Op::Replace(id, seen)),
            1 => (0u8..16).prop_map(Op::Remove),
            2 => (0i64..1_200, proptest::bool::weighted(0.1)).prop_map(|(now, all)| Op::Expire(now, all)),
            1 => Just(Op::Drain),
        ]
    }

    proptest! {
        /// Expiry with the bound takes out exactly what a full scan of a plain map does.
        #[test]
        fn expiry_matches_a_full_scan(ops in proptest::collection::vec(op(), 1..200)) {
            const TTL: i64 = 100;
            let mut members = Members::default();
            let mut model: std::collections::BTreeMap<String, Seen> = Default::default();
            for op in ops {
                match op {
                    Op::Insert(id, seen) => {
                        let id = format!("t{id}");
                        prop_assert_eq!(members.insert(id.as_str().into(), Seen(seen)), model.insert(id, Seen(seen)));
                    }
                    Op::Replace(id, seen) => {
                        let id = format!("t{id}");
                        let kept = model.get_mut(&id).map(|m| *m = Seen(seen)).is_some();
                        prop_assert_eq!(members.replace(&id, Seen(seen)), kept);
                    }
                    Op::Remove(id) => {
                        let id = format!("t{id}");
                        prop_assert_eq!(members.remove(&id), model.remove(&id));
                    }
                    Op::Expire(now, all) => {
                        let expired: Vec<(String, Seen)> = members
                            .take_expired(now, TTL, all)
                            .into_iter()
                            .map(|(id, m)| (id.to_string(), m))
                            .collect();
                        let want: Vec<(String, Seen)> = model
                            .iter()
                            .filter(|(_, m)| all || now - m.0 > TTL)
                            .map(|(id, m)| (id.clone(), *m))
                            .collect();
                        model.retain(|id, _| !want.iter().any(|(w, _)| w == id));
                        prop_assert_eq!(expired, want);
                    }
                    Op::Drain => {
                        let mut drained: Vec<String> = members.drain().map(|(id, _)| id.to_string()).collect();
                        drained.sort();
                        let want: Vec<String> = std::mem::take(&mut model).into_keys().collect();
                        prop_assert_eq!(drained, want);
                    }
                }
                prop_assert_eq!(members.len(), model.len());
            }
        }
    }
}
