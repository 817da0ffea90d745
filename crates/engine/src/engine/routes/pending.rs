//! [`PendingPoints`]: route points waiting for the store, in the order they arrived, each
//! beside a copy of its trip's id in one shared buffer.
//!
//! This is the write path's share of every trip's point, so it is laid out to cost a copy
//! and nothing else: a map of trips to vectors of points (an `Arc<str>` made for each
//! point, hashed with SipHash, a vector grown for each trip after every piece) took about
//! a fifth of the server's time in the trips workload, more than the route thread's
//! writing of the pieces (`perf`, a million travellers on trips, batches of 1,000). Grouping
//! by trip happens once, on the route thread, when a piece is written
//! ([`PendingPoints::by_trip`]).
//!
//! A narrowing of a trip cuts the trip's points waiting here lazily ([`PendingPoints::cut_trip`]):
//! it records the cut, which whoever takes points out next applies, all cuts in one scan.
//! Cut at once, each narrowing scanned every waiting point under the lock every write
//! waits for: four callers narrowing trips of their own back to back (about 1,200
//! narrowings a second) put 20 % of the server's time in that scan and held the victim's
//! trip batches to 0.36–0.41 of their rate (`proxima attack --attack narrowings`).

use std::collections::HashMap;

use crate::routes::{RoutePoint, keys};

/// One waiting point and where its trip's id lies in the buffer.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    id_at: u32,
    id_len: u8,
    point: RoutePoint,
}

/// The bytes of a trip's id that [`PendingPoints::by_trip`] sorts as numbers.
const INLINE_ID: usize = keys::ID_HEAD_BYTES;

/// What [`PendingPoints::by_trip`] sorts a point by: its id's length, the id's first
/// [`INLINE_ID`] bytes (zero-padded), then the order it arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    id_len: u8,
    head: u128,
    tail: u128,
    arrival: u32,
}

impl SortKey {
    /// The id's first [`INLINE_ID`] bytes, zero-padded.
    fn inline_bytes(&self) -> [u8; INLINE_ID] {
        let mut bytes = [0u8; INLINE_ID];
        bytes[..16].copy_from_slice(&self.head.to_be_bytes());
        bytes[16..].copy_from_slice(&self.tail.to_be_bytes());
        bytes
    }

    /// Whether the two ids are equal as far as the key holds them.
    fn same_inline_id(&self, other: &SortKey) -> bool {
        (self.id_len, self.head, self.tail) == (other.id_len, other.head, other.tail)
    }
}

/// The most cuts that wait to be applied ([`PendingPoints::cut_trip`]): past it, they are
/// applied at once, one scan for all of them.
const MAX_CUTS: usize = 256;

/// A narrowing's cut of a trip's waiting points, not yet applied: the trip's points among
/// the first `before` keep only those with `from <= ts <= to` (later ones came after the
/// narrowing, and may lie outside its window if the trip's window was widened since).
#[derive(Debug, Clone)]
struct Cut {
    trip: Box<str>,
    before: usize,
    from: i64,
    to: i64,
}

/// Points waiting for the store, oldest first.
#[derive(Debug, Default, Clone)]
pub(crate) struct PendingPoints {
    /// The trips' ids, back to back (some may be of points taken out already).
    ids: Vec<u8>,
    points: Vec<Waiting>,
    /// The bytes of `ids` that waiting points use: the buffer is compacted when less than
    /// half of it is.
    live: usize,
    /// Narrowings' cuts not applied yet, oldest first: every way points leave applies them
    /// first.
    cuts: Vec<Cut>,
    /// Points the cuts applied have dropped, not yet told ([`PendingPoints::take_cut_away`]).
    cut_away: usize,
}

/// Points grouped by trip in the store's key order (the id's length, then the id), each
/// trip's in the order they arrived.
///
/// Kept by the route thread and filled again for each piece ([`PendingPoints::by_trip`]):
/// allocating its buffers afresh for each piece of 250,000 points cost a page fault
/// (the kernel zeroing a fresh huge page) every 2 MiB, a fifth of the route thread's time
/// in the trips workload.
#[derive(Debug, Default)]
pub(crate) struct ByTrip {
    ids: Vec<u8>,
    /// Each trip's id (in `ids`) and points (in `points`).
    trips: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    points: Vec<RoutePoint>,
    /// The sort's scratch.
    order: Vec<SortKey>,
}

impl ByTrip {
    /// Each trip and its points, in key order.
    #[cfg(test)]
    pub(crate) fn trips(&self) -> impl Iterator<Item = (&str, &[RoutePoint])> {
        self.trips_in(0..self.trips.len())
    }

    /// How many points each trip has, in the order of [`ByTrip::trips`].
    pub(crate) fn points_each(&self) -> impl Iterator<Item = usize> {
        self.trips.iter().map(|(_, points)| points.len())
    }

    /// The trips at `range` of [`ByTrip::trips`], with their points.
    pub(crate) fn trips_in(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (&str, &[RoutePoint])> {
        self.trips[range].iter().map(|(id, points)| {
            let id = std::str::from_utf8(&self.ids[id.clone()]).expect("ids are copied whole");
            (id, &self.points[points.clone()])
        })
    }

    /// How many trips.
    pub(crate) fn len(&self) -> usize {
        self.trips.len()
    }

    /// Gives back its room when that is more than four times `points` points' (kept after
    /// a burst, it would hold memory for the bound on waiting points).
    pub(crate) fn keep_room(&mut self, points: usize) {
        if self.points.capacity() > 4 * points {
            *self = ByTrip::default();
        }
    }
}

impl PendingPoints {
    /// Files `point` of `trip` (an id of at most 255 bytes, as every id is).
    pub(crate) fn push(&mut self, trip: &str, point: RoutePoint) {
        let id_len = u8::try_from(trip.len()).expect("ids are checked to be short");
        let id_at = u32::try_from(self.ids.len()).expect("fewer than 4 GiB of waiting ids");
        self.ids.extend_from_slice(trip.as_bytes());
        self.live += trip.len();
        self.points.push(Waiting {
            id_at,
            id_len,
            point,
        });
    }

    /// How many points wait, counting those that cuts not yet applied will drop.
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether none waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    fn id(&self, w: &Waiting) -> &[u8] {
        &self.ids[w.id_at as usize..w.id_at as usize + usize::from(w.id_len)]
    }

    fn id_str(&self, w: &Waiting) -> &str {
        std::str::from_utf8(self.id(w)).expect("ids are copied whole")
    }

    /// Each point's trip id and point, oldest first (of a buffer with no cut waiting: a
    /// batch's own, or one whose cuts were applied).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, RoutePoint)> {
        debug_assert!(
            self.cuts.is_empty(),
            "cuts applied before the points are read"
        );
        self.points.iter().map(|w| (self.id_str(w), w.point))
    }

    /// Cuts `trip`'s points waiting now to those with `from <= ts <= to` (a narrowing of
    /// the trip): recorded, and applied by whoever takes points out next, or at once past
    /// [`MAX_CUTS`] cuts. A cut waiting for the same trip whose window holds this one's is
    /// dropped: this one cuts all its points, and more. Points filed later are not cut.
    pub(crate) fn cut_trip(&mut self, trip: &str, from: i64, to: i64) {
        // (An id too long to be filed has no point here.)
        if self.points.is_empty() || u8::try_from(trip.len()).is_err() {
            return;
        }
        self.cuts
            .retain(|c| !(&*c.trip == trip && c.from <= from && to <= c.to));
        self.cuts.push(Cut {
            trip: trip.into(),
            before: self.points.len(),
            from,
            to,
        });
        if self.cuts.len() > MAX_CUTS {
            self.apply_cuts();
        }
    }

    /// Applies every cut waiting, in one scan of the points they reach.
    pub(crate) fn apply_cuts(&mut self) {
        if self.cuts.is_empty() {
            return;
        }
        let cuts = std::mem::take(&mut self.cuts);
        // Each cut trip's cuts by id; most points are of other trips, told apart by their
        // ids' lengths before any hash.
        let mut by_trip: HashMap<&[u8], Vec<&Cut>, foldhash::fast::RandomState> =
            HashMap::default();
        let mut lengths = [false; 256];
        for cut in &cuts {
            lengths[cut.trip.len()] = true;
            by_trip.entry(cut.trip.as_bytes()).or_default().push(cut);
        }
        let reach = cuts.iter().map(|c| c.before).max().unwrap_or(0);
        let (ids, points) = (&self.ids, &mut self.points);
        let mut at = 0;
        let mut dropped_bytes = 0;
        points.retain(|w| {
            let i = at;
            at += 1;
            if i >= reach || !lengths[usize::from(w.id_len)] {
                return true;
            }
            let id = &ids[w.id_at as usize..w.id_at as usize + usize::from(w.id_len)];
            let Some(cuts) = by_trip.get(id) else {
                return true;
            };
            let ts = w.point.ts;
            let kept = cuts
                .iter()
                .all(|c| i >= c.before || (c.from..=c.to).contains(&ts));
            if !kept {
                dropped_bytes += id.len();
            }
            kept
        });
        self.cut_away += at - self.points.len();
        self.live -= dropped_bytes;
        self.compact_if_wasteful();
    }

    /// How many points the cuts applied since the last call dropped.
    pub(crate) fn take_cut_away(&mut self) -> usize {
        std::mem::take(&mut self.cut_away)
    }

    /// Empty, keeping its room unless that is more than four times `points` points' (after
    /// a burst), when it gets room for `points` (a fresh buffer: shrinking in place copies
    /// the room kept).
    pub(crate) fn emptied(mut self, points: usize) -> PendingPoints {
        if self.points.capacity() > 4 * points {
            let id_bytes = self.ids.len() / self.points.len().max(1) * points;
            self.points = Vec::with_capacity(points);
            self.ids = Vec::with_capacity(id_bytes);
        }
        self.points.clear();
        self.ids.clear();
        self.live = 0;
        self.cuts.clear();
        self.cut_away = 0;
        self
    }

    /// Moves every point of `other` after these (its cuts applied first: they reach its
    /// points alone).
    pub(crate) fn append(&mut self, other: &PendingPoints) {
        if !other.cuts.is_empty() {
            let mut cut = other.clone();
            cut.apply_cuts();
            // Told with these points' own, by whoever takes them next.
            self.cut_away += std::mem::take(&mut cut.cut_away);
            return self.append(&cut);
        }
        let base = u32::try_from(self.ids.len()).expect("fewer than 4 GiB of waiting ids");
        self.ids.extend_from_slice(&other.ids);
        self.live += other.live;
        self.points.extend(other.points.iter().map(|w| Waiting {
            id_at: w.id_at + base,
            ..*w
        }));
    }

    /// Takes out `trip`'s points, oldest first, the cuts applied first (a scan: readers of
    /// a trip under writes, and erasures, pay it, not the write path).
    pub(crate) fn take_trip(&mut self, trip: &str) -> Vec<RoutePoint> {
        self.apply_cuts();
        let wanted = trip.as_bytes();
        let (ids, points) = (&self.ids, &mut self.points);
        let id_of = |w: &Waiting| &ids[w.id_at as usize..w.id_at as usize + usize::from(w.id_len)];
        if !points.iter().any(|w| id_of(w) == wanted) {
            return Vec::new();
        }
        let mut taken = Vec::new();
        points.retain(|w| {
            let mine = id_of(w) == wanted;
            if mine {
                taken.push(w.point);
            }
            !mine
        });
        self.live -= taken.len() * trip.len();
        self.compact_if_wasteful();
        taken
    }

    /// Copies the ids still used into a fresh buffer when less than half of it is.
    fn compact_if_wasteful(&mut self) {
        if self.points.is_empty() {
            self.ids.clear();
            self.live = 0;
            return;
        }
        if self.live * 2 >= self.ids.len() {
            return;
        }
        let old = std::mem::take(self);
        for w in &old.points {
            self.push(old.id_str(w), w.point);
        }
        // The points keep their places: the cuts still reach the same ones.
        self.cuts = old.cuts;
        self.cut_away = old.cut_away;
    }

    /// Takes out the oldest `count` points (all of them past the end), leaving the rest;
    /// the cuts applied first.
    pub(crate) fn take_oldest(&mut self, count: usize) -> PendingPoints {
        self.apply_cuts();
        if count >= self.points.len() {
            let mut all = std::mem::take(self);
            self.cut_away = std::mem::take(&mut all.cut_away);
            return all;
        }
        let rest: Vec<Waiting> = self.points.split_off(count);
        let oldest = std::mem::replace(&mut self.points, rest);
        let mut taken = PendingPoints::default();
        for w in &oldest {
            taken.push(self.id_str(w), w.point);
        }
        // The rest keep their offsets into the buffer, compacted when mostly unused.
        self.live -= taken.live;
        self.compact_if_wasteful();
        taken
    }

    /// The points grouped by trip, in the store's key order.
    ///
    /// Each id's length and first [`INLINE_ID`] bytes are sorted as numbers, the arrival
    /// index last, and only runs of longer ids tying on all of those are sorted again by
    /// the whole id. Comparing the ids where they lie cost a cache miss a comparison: with
    /// the first 16 bytes inline, the bench's ids (`bench:trip:<n>`, 17 bytes) tied in
    /// most of the sort's comparisons, and grouping took 41 % of the route thread's time
    /// in the trips workload (`perf`, a million travellers on trips, batches of 1,000).
    pub(crate) fn by_trip(&self, out: &mut ByTrip) {
        debug_assert!(
            self.cuts.is_empty(),
            "cuts applied before the points are grouped"
        );
        let ByTrip {
            ids,
            trips,
            points,
            order,
        } = out;
        ids.clear();
        trips.clear();
        points.clear();
        order.clear();
        order.extend(self.points.iter().enumerate().map(|(i, w)| {
            let [head, tail] = keys::id_head(self.id(w));
            SortKey {
                id_len: w.id_len,
                head,
                tail,
                arrival: u32::try_from(i).expect("fewer than 2^32 waiting points"),
            }
        }));
        order.sort_unstable();
        // Ids longer than the inline bytes that share them: the whole id decides.
        let mut run = 0;
        while run < order.len() {
            let first = order[run];
            let end = run
                + order[run..]
                    .iter()
                    .take_while(|k| k.same_inline_id(&first))
                    .count();
            if usize::from(first.id_len) > INLINE_ID && end - run > 1 {
                order[run..end].sort_unstable_by(|a, b| {
                    self.id(&self.points[a.arrival as usize])
                        .cmp(self.id(&self.points[b.arrival as usize]))
                        .then(a.arrival.cmp(&b.arrival))
                });
            }
            run = end;
        }
        ids.reserve(self.live);
        points.reserve(order.len());
        // Ids of at most the inline bytes are whole in their keys: neither the comparison
        // with the trip before nor the copy reads the waiting ids (in sorted order, a cache
        // miss a point).
        let mut last: Option<SortKey> = None;
        for key in order.iter() {
            let w = &self.points[key.arrival as usize];
            let same = last.is_some_and(|last| {
                last.same_inline_id(key)
                    && (usize::from(key.id_len) <= INLINE_ID
                        || trips
                            .last()
                            .is_some_and(|(id, _)| &ids[id.clone()] == self.id(w)))
            });
            if !same {
                let at = ids.len();
                if usize::from(key.id_len) <= INLINE_ID {
                    ids.extend_from_slice(&key.inline_bytes()[..usize::from(key.id_len)]);
                } else {
                    ids.extend_from_slice(self.id(w));
                }
                trips.push((at..ids.len(), points.len()..points.len()));
            }
            points.push(w.point);
            if let Some((_, of_trip)) = trips.last_mut() {
                of_trip.end = points.len();
            }
            last = Some(*key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ts: i64) -> RoutePoint {
        RoutePoint {
            ts,
            lat: 1.0,
            lon: 2.0,
        }
    }

    #[test]
    fn points_are_grouped_in_key_order_each_trip_in_arrival_order() {
        let mut pending = PendingPoints::default();
        for (trip, ts) in [
            ("bb", 3),
            ("a", 9),
            ("bb", 1),
            ("ab", 5),
            ("a", 2),
            ("bb", 2),
        ] {
            pending.push(trip, point(ts));
        }
        let mut grouped = ByTrip::default();
        pending.by_trip(&mut grouped);
        let got: Vec<(&str, Vec<i64>)> = grouped
            .trips()
            .map(|(t, p)| (t, p.iter().map(|p| p.ts).collect()))
            .collect();
        assert_eq!(
            got,
            vec![("a", vec![9, 2]), ("ab", vec![5]), ("bb", vec![3, 1, 2])]
        );
        assert_eq!(grouped.len(), 3);
    }

    #[test]
    fn long_ids_sharing_a_head_are_ordered_by_the_whole_id() {
        let mut pending = PendingPoints::default();
        let (x, y) = ("bench:trip:000000000002", "bench:trip:000000000001");
        pending.push(x, point(1));
        pending.push(y, point(2));
        let mut grouped = ByTrip::default();
        pending.by_trip(&mut grouped);
        let order: Vec<&str> = grouped.trips().map(|(t, _)| t).collect();
        assert_eq!(order, vec![y, x]);
    }

    proptest::proptest! {
        /// Grouping equals the model: trips by id length then id, each trip's points in
        /// arrival order. Ids are drawn from a few shared heads (short, just past the
        /// inline bytes, and long), so ties on the inline bytes are common.
        #[test]
        fn grouping_equals_a_stable_sort_by_the_store_key(
            picks in proptest::collection::vec((0usize..6, 0u32..40), 0..300),
        ) {
            let heads = ["", "t:", "bench:trip:", "0123456789abcdef0123456789abcde",
                "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef0123456789"];
            let mut pending = PendingPoints::default();
            let mut model: Vec<(String, i64)> = Vec::new();
            for (ts, (h, n)) in picks.into_iter().enumerate() {
                let id = format!("{}{n}", heads[h]);
                pending.push(&id, point(ts as i64));
                model.push((id, ts as i64));
            }
            model.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
            let mut grouped = ByTrip::default();
        pending.by_trip(&mut grouped);
            let got: Vec<(String, i64)> = grouped
                .trips()
                .flat_map(|(t, p)| p.iter().map(move |p| (t.to_owned(), p.ts)))
                .collect();
            proptest::prop_assert_eq!(&got, &model);
            let mut ids: Vec<&String> = model.iter().map(|(t, _)| t).collect();
            ids.dedup();
            proptest::prop_assert_eq!(grouped.len(), ids.len());
        }
    }

    /// What the cuts are checked against: the buffer as a list, each cut applied at once.
    #[derive(Debug, Clone)]
    enum Op {
        Push(usize, i64),
        Cut(usize, i64, i64),
        TakeTrip(usize),
        TakeOldest(usize),
        Apply,
        /// A batch's buffer of one point appended (as writes file theirs).
        Append(usize, i64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // Four trips, two of the same length (told apart past the length filter).
        prop_oneof![
            4 => (0usize..4, 0i64..50).prop_map(|(t, ts)| Op::Push(t, ts)),
            2 => (0usize..4, 0i64..50, 0i64..50).prop_map(|(t, a, b)| Op::Cut(t, a.min(b), a.max(b))),
            1 => (0usize..4).prop_map(Op::TakeTrip),
            1 => (0usize..8).prop_map(Op::TakeOldest),
            1 => Just(Op::Apply),
            1 => (0usize..4, 0i64..50).prop_map(|(t, ts)| Op::Append(t, ts)),
        ]
    }

    proptest::proptest! {
        /// Cuts applied lazily leave what cutting at once leaves: every way points leave
        /// (a trip taken, the oldest taken, the rest read) gives the model's points, in
        /// its order, and every point filed is told once, as taken, cut away or waiting.
        #[test]
        fn lazy_cuts_equal_cutting_at_once(ops in proptest::collection::vec(op(), 0..120)) {
            let trips = ["a", "bb", "cc", "a-long-trip-id-past-the-inline-bytes-0001"];
            let mut pending = PendingPoints::default();
            let mut model: Vec<(usize, i64)> = Vec::new();
            let (mut filed, mut taken, mut cut_away) = (0usize, 0usize, 0usize);
            for op in ops {
                match op {
                    Op::Push(t, ts) => {
                        pending.push(trips[t], point(ts));
                        model.push((t, ts));
                        filed += 1;
                    }
                    Op::Append(t, ts) => {
                        let mut batch = PendingPoints::default();
                        batch.push(trips[t], point(ts));
                        pending.append(&batch);
                        model.push((t, ts));
                        filed += 1;
                    }
                    Op::Cut(t, from, to) => {
                        pending.cut_trip(trips[t], from, to);
                        model.retain(|&(mt, ts)| mt != t || (from..=to).contains(&ts));
                    }
                    Op::TakeTrip(t) => {
                        let got: Vec<i64> = pending.take_trip(trips[t]).iter().map(|p| p.ts).collect();
                        let want: Vec<i64> = model.iter().filter(|m| m.0 == t).map(|m| m.1).collect();
                        model.retain(|m| m.0 != t);
                        taken += got.len();
                        proptest::prop_assert_eq!(got, want);
                    }
                    Op::TakeOldest(n) => {
                        let oldest = pending.take_oldest(n);
                        let got: Vec<(String, i64)> =
                            oldest.iter().map(|(t, p)| (t.to_owned(), p.ts)).collect();
                        let want: Vec<(String, i64)> = model
                            .drain(..n.min(model.len()))
                            .map(|(t, ts)| (trips[t].to_owned(), ts))
                            .collect();
                        taken += got.len();
                        proptest::prop_assert_eq!(got, want);
                    }
                    Op::Apply => pending.apply_cuts(),
                }
                cut_away += pending.take_cut_away();
                proptest::prop_assert_eq!(filed, taken + cut_away + pending.len());
            }
            pending.apply_cuts();
            cut_away += pending.take_cut_away();
            let rest: Vec<(String, i64)> = pending.iter().map(|(t, p)| (t.to_owned(), p.ts)).collect();
            let want: Vec<(String, i64)> = model.iter().map(|&(t, ts)| (trips[t].to_owned(), ts)).collect();
            proptest::prop_assert_eq!(rest, want);
            proptest::prop_assert_eq!(filed, taken + cut_away + pending.len());
            let live: usize = pending.iter().map(|(t, _)| t.len()).sum();
            proptest::prop_assert_eq!(live, pending.live);
        }
    }

    #[test]
    fn a_cut_reaches_the_points_filed_before_it_and_no_later_one() {
        let mut pending = PendingPoints::default();
        pending.push("a", point(1));
        pending.push("b", point(1));
        pending.cut_trip("a", 5, 9);
        // After the cut, outside its window: a widened window took it.
        pending.push("a", point(2));
        pending.push("a", point(6));
        assert_eq!(pending.len(), 4, "nothing is cut until points are taken");
        let got: Vec<i64> = pending.take_trip("a").iter().map(|p| p.ts).collect();
        assert_eq!(got, vec![2, 6]);
        assert_eq!(pending.take_cut_away(), 1);
        assert_eq!(pending.take_cut_away(), 0, "told once");
    }

    #[test]
    fn cuts_past_the_most_that_wait_are_applied_at_once() {
        let mut pending = PendingPoints::default();
        for i in 0..=MAX_CUTS {
            let trip = format!("t{i}");
            pending.push(&trip, point(0));
            pending.cut_trip(&trip, 1, 2);
        }
        assert!(pending.cuts.is_empty());
        assert_eq!(pending.take_cut_away(), MAX_CUTS + 1);
        assert!(pending.is_empty());
        // A trip narrowed again and again, its window shrinking, waits as one cut.
        pending.push("a", point(5));
        for from in 0..1_000 {
            pending.cut_trip("a", from, 10_000);
            pending.push("b", point(from));
        }
        assert_eq!(pending.cuts.len(), 1);
    }

    #[test]
    fn an_emptied_buffer_keeps_the_room_asked_for_and_no_more() {
        let mut pending = PendingPoints::default();
        for i in 0..1_000 {
            pending.push("trip-0001", point(i));
        }
        let emptied = pending.emptied(100);
        assert!(emptied.is_empty());
        assert_eq!(emptied.iter().count(), 0);
        assert!((100..1_000).contains(&emptied.points.capacity()));
        assert!((900..9_000).contains(&emptied.ids.capacity()));
    }

    #[test]
    fn a_trip_is_taken_out_and_the_rest_stay_in_order() {
        let mut pending = PendingPoints::default();
        let mut other = PendingPoints::default();
        pending.push("a", point(1));
        other.push("b", point(2));
        other.push("a", point(3));
        pending.append(&other);
        assert_eq!(
            pending
                .take_trip("a")
                .iter()
                .map(|p| p.ts)
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert!(pending.take_trip("a").is_empty());
        let rest: Vec<(&str, i64)> = pending.iter().map(|(t, p)| (t, p.ts)).collect();
        assert_eq!(rest, vec![("b", 2)]);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn the_oldest_points_are_taken_first() {
        let mut pending = PendingPoints::default();
        for (trip, ts) in [("a", 1), ("b", 2), ("a", 3)] {
            pending.push(trip, point(ts));
        }
        let oldest = pending.take_oldest(2);
        let taken: Vec<(&str, i64)> = oldest.iter().map(|(t, p)| (t, p.ts)).collect();
        assert_eq!(taken, vec![("a", 1), ("b", 2)]);
        let rest: Vec<(&str, i64)> = pending.iter().map(|(t, p)| (t, p.ts)).collect();
        assert_eq!(rest, vec![("a", 3)]);
        assert!(!pending.is_empty());
        assert_eq!(pending.take_oldest(5).len(), 1);
        assert!(pending.is_empty());
    }

    #[test]
    fn the_ids_buffer_does_not_grow_while_points_come_and_go() {
        let mut pending = PendingPoints::default();
        for round in 0..100 {
            for i in 0..100 {
                pending.push(&format!("trip-{i}"), point(round * 100 + i));
            }
            pending.take_oldest(95);
            pending.take_trip("trip-95");
        }
        // About 4 points a round stay (a growing queue), but never the ids of those gone.
        let live: usize = pending.iter().map(|(t, _)| t.len()).sum();
        assert_eq!(live, pending.live);
        assert!(
            pending.ids.len() <= 2 * live + 8,
            "{} bytes kept for {live}",
            pending.ids.len()
        );
        let mut last = -1;
        for (_, p) in pending.iter() {
            assert!(p.ts > last, "still oldest first");
            last = p.ts;
        }
    }
}
