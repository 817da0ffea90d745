//! The k-nearest walk over the packed trees' k-d view ([`KdTree`]): nearby queries without
//! a category filter, or whose categories all have trees of their own.
//!
//! Each bucket's entries are ranked at once by their squared chord from `f32` unit vectors
//! (a loop the compiler vectorises), and only those that may still rank among the best are
//! looked at further. Their exact haversine distance is computed once, at the end, for the
//! few kept. That is exact because every chord is carried as an interval that surely holds
//! the exact one: an entry is dropped only when its lower bound is above the upper bounds
//! of `limit + 1` others that surely belong to the answer (inside the radius, after the
//! cursor, past the filters), so it ranks after all of them, whatever the tie-break.
//!
//! The best-first walk in [`super::nearby`] still answers filtered queries on the tree of
//! all POIs, where the nodes' category masks prune whole subtrees.

use std::collections::BinaryHeap;

use rstar::RTreeNode;

use super::nearby::{Ranked, delta_chord2};
use super::{Categories, NearbyHit, NearbyQuery, Page};
use crate::geometry::{HaversineFrom, LatLon, chord_of, haversine_m};
use crate::pois::index::{Entry, EntryData, PoiIndex};
use crate::pois::packed::kd::BUCKET;
use crate::pois::packed::{DEAD, PackedEntry, PackedTree};

/// How far an entry's chord computed in `f32` may be from its exact chord `c`:
/// `SLACK_ABSOLUTE + SLACK_RELATIVE * c`. Each unit vector is within `UNIT_ERROR` (1e-7) of
/// its `f32` rounding, and the `f32` arithmetic adds a few parts in 10⁷ of `c`; both taken
/// generously. (3e-7 of the unit sphere is 1.9 m.)
const SLACK_ABSOLUTE: f64 = 3e-7;
/// See [`SLACK_ABSOLUTE`].
const SLACK_RELATIVE: f64 = 2e-6;

#[inline]
fn slack(c: f64) -> f64 {
    SLACK_ABSOLUTE + SLACK_RELATIVE * c
}

/// Room for the rounding of haversine distances and of chords computed from them (6 mm).
const EXACT_SLACK: f64 = 1e-9;

/// A chord as `f64`, always comparable (chords are never NaN).
#[derive(Clone, Copy, PartialEq)]
struct Chord(f64);

impl Eq for Chord {}

impl PartialOrd for Chord {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Chord {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Where a candidate's record is: read only for the few that are kept to the end (a read
/// per candidate was a cache miss each, profiled).
#[derive(Clone, Copy)]
enum Source<'a> {
    Packed(&'a PackedEntry),
    Delta(&'a EntryData),
}

impl Source<'_> {
    #[inline]
    fn slot_and_position(self) -> (u32, LatLon) {
        match self {
            Self::Packed(e) => (e.slot, e.position),
            Self::Delta(d) => (d.slot, d.position),
        }
    }
}

/// A POI that belongs to the answer unless `want` others rank before it.
struct Kept<'a> {
    lower: f64,
    source: Source<'a>,
}

/// The candidates so far, and the bound they set on the rest of the walk.
struct Nearest<'a, 'q> {
    index: &'a PoiIndex,
    query: &'q NearbyQuery,
    want: usize,
    kept: Vec<Kept<'a>>,
    /// The upper bounds of the chords of the best `want` kept, largest on top.
    uppers: BinaryHeap<Chord>,
    /// The radius as a chord: `(surely within below, surely beyond above)`.
    radius: (f64, f64),
    /// The cursor's distance as a chord, likewise.
    after: Option<(f64, f64)>,
    /// A candidate whose chord's lower bound is above this ranks after `want` kept.
    bound: f64,
}

impl<'a, 'q> Nearest<'a, 'q> {
    fn new(index: &'a PoiIndex, query: &'q NearbyQuery) -> Self {
        let want = query.limit.saturating_add(1);
        let radius = query.radius_m.map_or((f64::INFINITY, f64::INFINITY), |r| {
            let c = chord_of(r);
            (c - EXACT_SLACK, c + EXACT_SLACK)
        });
        let after = query.after.as_ref().map(|(d, _)| {
            let c = chord_of(*d);
            (c - EXACT_SLACK, c + EXACT_SLACK)
        });
        Self {
            index,
            query,
            want,
            // Room up to where `offer` prunes it, so the list is never regrown.
            kept: Vec::with_capacity(4 * want.min(1024) + 64),
            uppers: BinaryHeap::with_capacity(want.min(1024) + 1),
            radius,
            after,
            bound: radius.1,
        }
    }

    /// Considers the POI of `source`, whose exact chord from the centre lies in
    /// `[lower, upper]`.
    #[inline]
    fn offer(&mut self, lower: f64, upper: f64, source: Source<'a>) {
        if lower > self.bound {
            return;
        }
        // Near the radius or the cursor, the exact distance decides.
        let near_radius = upper > self.radius.0;
        let near_cursor = self
            .after
            .is_some_and(|(lo, hi)| upper >= lo && lower <= hi);
        if near_radius || near_cursor || self.after.is_some_and(|(lo, _)| upper < lo) {
            let (slot, position) = source.slot_and_position();
            let distance = haversine_m(self.query.center, position);
            if self.query.radius_m.is_some_and(|r| distance > r) {
                return;
            }
            if let Some((after_distance, after_id)) = &self.query.after {
                let ranked = Ranked::new(distance, slot, self.index);
                if ranked.at_or_before((*after_distance, after_id)) {
                    return;
                }
            }
        }
        self.kept.push(Kept { lower, source });
        let upper = Chord(upper);
        if self.uppers.len() < self.want {
            self.uppers.push(upper);
        } else if let Some(mut top) = self.uppers.peek_mut()
            && upper < *top
        {
            // One sift down, where a pop and a push took two.
            *top = upper;
        }
        if self.uppers.len() == self.want {
            let top = self.uppers.peek().expect("full").0;
            self.bound = self.radius.1.min(top + EXACT_SLACK);
            if self.kept.len() >= 4 * self.want + 64 {
                let bound = self.bound;
                self.kept.retain(|k| k.lower <= bound);
            }
        }
    }

    /// The answer: the kept ranked by exact distance, ties by id.
    fn finish(self) -> Page<NearbyHit<'a>> {
        let bound = self.bound;
        let from = HaversineFrom::new(self.query.center);
        let mut ranked: Vec<Ranked<'a>> = self
            .kept
            .into_iter()
            .filter(|k| k.lower <= bound)
            .map(|k| {
                let (slot, position) = k.source.slot_and_position();
                Ranked::new(from.to(position), slot, self.index)
            })
            .collect();
        // Only the best `want` need an order.
        if ranked.len() > self.want {
            ranked.select_nth_unstable(self.want - 1);
            ranked.truncate(self.want);
        }
        ranked.sort_unstable();
        let more = ranked.len() > self.query.limit;
        ranked.truncate(self.query.limit);
        let items = ranked
            .into_iter()
            .map(|r| NearbyHit {
                poi: self.index.poi_ref(r.slot),
                distance_m: r.distance,
            })
            .collect();
        Page { items, more }
    }
}

impl PoiIndex {
    /// Nearby through the k-d view of `categories`' trees, and the delta.
    pub(super) fn nearby_kd<'a>(
        &'a self,
        query: &NearbyQuery,
        categories: &Categories<'a>,
    ) -> Page<NearbyHit<'a>> {
        let mut nearest = Nearest::new(self, query);
        let q = query.center.to_unit();
        for tree in categories.trees() {
            self.walk_kd(tree, &q, categories, &mut nearest);
        }
        self.walk_delta(&q, categories, &mut nearest);
        nearest.finish()
    }

    fn walk_kd<'a>(
        &'a self,
        tree: &'a PackedTree,
        q: &[f64; 3],
        categories: &Categories<'_>,
        nearest: &mut Nearest<'a, '_>,
    ) {
        let qf = q.map(|x| x as f32);
        let min_rating = nearest.query.filter.min_rating;
        let entries = tree.all_entries();
        // Bounds square to squared chords (an infinite one stays infinite).
        let start = nearest.bound * nearest.bound;
        let mut visit = |range: std::ops::Range<usize>, columns: &[Vec<f32>; 3]| {
            // The squared `f32` chord past which an entry's lower bound is above the bound.
            let cut = ((nearest.bound + SLACK_ABSOLUTE) / (1.0 - SLACK_RELATIVE)).powi(2);
            let cut = if cut < f64::from(f32::MAX) {
                (cut as f32).next_up()
            } else {
                f32::INFINITY
            };
            let (xs, ys, zs) = (
                &columns[0][range.clone()],
                &columns[1][range.clone()],
                &columns[2][range.clone()],
            );
            let mut d2 = [0.0f32; BUCKET];
            for (((d, x), y), z) in d2.iter_mut().zip(xs).zip(ys).zip(zs) {
                let (dx, dy, dz) = (x - qf[0], y - qf[1], z - qf[2]);
                *d = dx * dx + dy * dy + dz * dz;
            }
            for (j, &d) in d2[..xs.len()].iter().enumerate() {
                // A dead entry's vector is NaN: never within the cut.
                if d.partial_cmp(&cut).is_none_or(|o| o.is_gt()) {
                    continue;
                }
                let e = &entries[range.start + j];
                // Only a rating filter reads the entry here: these trees hold only the
                // asked categories.
                if min_rating.is_some() && !self.rated_at_least(e, min_rating) {
                    continue;
                }
                debug_assert!(e.slot != DEAD && categories.admit(e.category));
                let c = f64::from(d).sqrt();
                let s = slack(c);
                nearest.offer((c - s).max(0.0), c + s, Source::Packed(e));
            }
            nearest.bound * nearest.bound
        };
        tree.kd.nearest_first(q, start, &mut visit);
    }

    /// The delta's entries (exact unit vectors), best first.
    fn walk_delta<'a>(
        &'a self,
        q: &[f64; 3],
        categories: &Categories<'_>,
        nearest: &mut Nearest<'a, '_>,
    ) {
        struct Pending<'t>(f64, &'t RTreeNode<Entry>);
        impl PartialEq for Pending<'_> {
            fn eq(&self, other: &Self) -> bool {
                self.0.total_cmp(&other.0).is_eq()
            }
        }
        impl Eq for Pending<'_> {}
        impl PartialOrd for Pending<'_> {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for Pending<'_> {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                other.0.total_cmp(&self.0)
            }
        }
        let children = self.delta.root().children();
        if children.is_empty() {
            return;
        }
        let mut queue: BinaryHeap<Pending<'_>> = children
            .iter()
            .map(|n| Pending(delta_chord2(n, q), n))
            .filter(|p| p.0 <= nearest.bound * nearest.bound)
            .collect();
        while let Some(Pending(d2, node)) = queue.pop() {
            if d2 > nearest.bound * nearest.bound {
                break;
            }
            match node {
                RTreeNode::Parent(parent) => {
                    for child in parent.children() {
                        let d2 = delta_chord2(child, q);
                        if d2 <= nearest.bound * nearest.bound {
                            queue.push(Pending(d2, child));
                        }
                    }
                }
                RTreeNode::Leaf(entry) => {
                    let data = &entry.data;
                    if categories.admit(data.category)
                        && Self::passes(&nearest.query.filter, data.rating)
                    {
                        let c = d2.sqrt();
                        let s = slack(c);
                        nearest.offer((c - s).max(0.0), c + s, Source::Delta(data));
                    }
                }
            }
        }
    }
}
