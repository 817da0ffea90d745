//! The two POI queries, answered exactly.
//!
//! **Nearby** walks the R-tree best first, in chord order, and keeps the best `limit` POIs by
//! `(haversine distance, id)` in a bounded heap. It stops as soon as the next node or point is
//! beyond the bound of the current worst kept distance (or of the radius), widened by
//! [`chord2_bound`]'s tolerance so that ties and rounding can never cut off a POI the oracle
//! would return. A query with a radius is the same walk with a cap, so a 10 km query in a
//! dense centre touches about `limit` points, not every point in the circle. Category filters
//! walk only the trees of those categories.
//!
//! The walk is written here over rstar's public nodes rather than with rstar's
//! `nearest_neighbor_iter`: that iterator queues every child of every node it opens, however
//! far, and allocates as it grows. Ours queues only children within the current bound, which
//! shrinks as results come in, and allocates one queue per query (profiled: the iterator's
//! heap work was a third of a 1M-POI kNN query).
//!
//! Results borrow from the index ([`PoiRef`]): no string is copied to answer a query.
//!
//! **Within** asks the trees for the unit vectors inside the 3-D envelope of the box, keeps
//! those truly inside the box (in degrees), and returns the `limit` smallest ids after the
//! cursor: the page order is by id, which is stable while POIs come and go.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rstar::{AABB, Envelope, RTreeNode};

use super::index::{Entry, PoiIndex, PoiRecord, PoiRef, Tree};
use crate::geometry::{BBox, LatLon, chord2_bound, dist2, haversine_m};

/// Filters shared by both queries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoiFilter {
    /// Any of these categories; empty means every category.
    pub categories: Vec<String>,
    /// Only POIs with a rating at least this high (POIs without a rating are left out).
    pub min_rating: Option<f64>,
}

/// A nearby query. `radius_m: None` means the `limit` nearest anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct NearbyQuery {
    /// The place to measure from.
    pub center: LatLon,
    /// Only POIs at most this far, in metres.
    pub radius_m: Option<f64>,
    /// How many results at most.
    pub limit: usize,
    /// Category and rating filters.
    pub filter: PoiFilter,
    /// Continue after this `(distance, id)`: only results ranked strictly after it.
    pub after: Option<(f64, String)>,
}

/// A bounding-box query.
#[derive(Debug, Clone, PartialEq)]
pub struct WithinQuery {
    /// The box.
    pub bbox: BBox,
    /// How many results at most.
    pub limit: usize,
    /// Category and rating filters.
    pub filter: PoiFilter,
    /// Continue after this id: only ids strictly greater.
    pub after: Option<String>,
}

/// A POI found by a nearby query, with its distance from the centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearbyHit<'a> {
    /// The POI.
    pub poi: PoiRef<'a>,
    /// Great-circle distance from the query centre, metres.
    pub distance_m: f64,
}

/// One page of results and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The results, in ranking order.
    pub items: Vec<T>,
    /// Whether at least one more result ranks after the last one here.
    pub more: bool,
}

/// A kept candidate: ordered by `(distance, id)`, the ranking of nearby results. The id is
/// looked up only when two distances tie: reading it for every candidate was a cache miss
/// on the record vector per candidate, the largest cost of a kNN query on 1M POIs.
struct Ranked<'a> {
    distance: f64,
    slot: u32,
    index: &'a PoiIndex,
}

impl<'a> Ranked<'a> {
    fn id(&self) -> &'a str {
        self.index.record(self.slot).id()
    }

    /// Whether this ranks at or before `(distance, id)`.
    fn at_or_before(&self, (distance, id): (f64, &str)) -> bool {
        match self.distance.total_cmp(&distance) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => self.id() <= id,
        }
    }
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked<'_> {}
impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then_with(|| self.id().cmp(other.id()))
    }
}

/// A node or point waiting in the best-first queue, ordered so that the smallest squared
/// chord (a lower bound for everything under a node) comes out first.
struct Pending<'t> {
    chord2: f64,
    node: &'t RTreeNode<Entry>,
}

impl PartialEq for Pending<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending<'_> {}
impl PartialOrd for Pending<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.chord2.total_cmp(&self.chord2)
    }
}

/// Queues the children of a node that may hold something within `bound`.
#[inline]
fn queue_children<'t>(
    children: &'t [RTreeNode<Entry>],
    q: &[f64; 3],
    bound: f64,
    queue: &mut BinaryHeap<Pending<'t>>,
) {
    for node in children {
        let chord2 = match node {
            RTreeNode::Leaf(entry) => dist2(*entry.geom(), *q),
            RTreeNode::Parent(parent) => parent.envelope().distance_2(q),
        };
        if chord2 <= bound {
            queue.push(Pending { chord2, node });
        }
    }
}

impl PoiIndex {
    /// The trees a filter needs: the whole set, or one per named category that exists.
    fn trees_for(&self, filter: &PoiFilter) -> Vec<&Tree> {
        if filter.categories.is_empty() {
            return vec![&self.all];
        }
        let mut ids: Vec<u32> = filter
            .categories
            .iter()
            .filter_map(|c| self.category_id(c))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|c| &self.by_category[c as usize])
            .collect()
    }

    fn passes(filter: &PoiFilter, rating: Option<f64>) -> bool {
        match filter.min_rating {
            Some(min) => rating.is_some_and(|r| r >= min),
            None => true,
        }
    }

    /// POIs nearest to the centre, nearest first, ties broken by id.
    pub fn nearby(&self, query: &NearbyQuery) -> Page<NearbyHit<'_>> {
        // One more than asked, to know whether another page follows.
        let want = query.limit.saturating_add(1);
        let center = query.center;
        let q = center.to_unit();
        let radius_bound = query.radius_m.map_or(f64::INFINITY, chord2_bound);
        let after = query.after.as_ref().map(|(d, id)| (*d, id.as_str()));
        let mut heap: BinaryHeap<Ranked<'_>> = BinaryHeap::with_capacity(want.min(1024) + 1);
        let mut bound = radius_bound;

        let mut queue: BinaryHeap<Pending<'_>> = BinaryHeap::with_capacity(128);
        for tree in self.trees_for(&query.filter) {
            queue.clear();
            queue_children(tree.root().children(), &q, bound, &mut queue);
            while let Some(Pending { chord2, node }) = queue.pop() {
                if chord2 > bound {
                    break;
                }
                let entry = match node {
                    RTreeNode::Parent(parent) => {
                        queue_children(parent.children(), &q, bound, &mut queue);
                        continue;
                    }
                    RTreeNode::Leaf(entry) => entry,
                };
                let data = &entry.data;
                if !Self::passes(&query.filter, data.rating) {
                    continue;
                }
                let distance = haversine_m(center, data.position);
                if query.radius_m.is_some_and(|r| distance > r) {
                    continue;
                }
                // Rank by distance first; only a tie needs the id, which is in the record.
                let full = heap.len() == want;
                if full && heap.peek().is_some_and(|worst| distance > worst.distance) {
                    continue;
                }
                let candidate = Ranked {
                    distance,
                    slot: data.slot,
                    index: self,
                };
                if after.is_some_and(|a| candidate.at_or_before(a)) {
                    continue;
                }
                if !full {
                    heap.push(candidate);
                } else if heap.peek().is_some_and(|worst| candidate < *worst) {
                    heap.pop();
                    heap.push(candidate);
                } else {
                    continue;
                }
                if heap.len() == want {
                    let worst = heap.peek().expect("heap is full").distance;
                    bound = radius_bound.min(chord2_bound(worst));
                }
            }
        }
        let mut ranked = heap.into_sorted_vec();
        let more = ranked.len() > query.limit;
        ranked.truncate(query.limit);
        let items = ranked
            .into_iter()
            .map(|r| NearbyHit {
                poi: self.poi_ref(r.slot),
                distance_m: r.distance,
            })
            .collect();
        Page { items, more }
    }

    /// Calls `f` with every POI record inside the box that passes the filter.
    pub(crate) fn for_each_in_box<'a>(
        &'a self,
        bbox: &BBox,
        filter: &PoiFilter,
        mut f: impl FnMut(u32, &'a PoiRecord),
    ) {
        let envelopes: Vec<AABB<[f64; 3]>> = bbox
            .unit_envelopes()
            .map(|(lo, hi)| AABB::from_corners(lo, hi))
            .collect();
        for tree in self.trees_for(filter) {
            for (i, envelope) in envelopes.iter().enumerate() {
                for entry in tree.locate_in_envelope(envelope) {
                    // A point on the antimeridian lies in both halves of a crossing box:
                    // count it in the first only.
                    if envelopes[..i]
                        .iter()
                        .any(|e| e.contains_point(entry.geom()))
                    {
                        continue;
                    }
                    let data = &entry.data;
                    if bbox.contains(data.position) && Self::passes(filter, data.rating) {
                        f(data.slot, self.record(data.slot));
                    }
                }
            }
        }
    }

    /// Positions of every POI inside the box.
    pub fn positions_in(&self, bbox: &BBox, mut f: impl FnMut(LatLon)) {
        self.for_each_in_box(bbox, &PoiFilter::default(), |_, record| f(record.position));
    }

    /// POIs inside the box, in id order.
    pub fn within(&self, query: &WithinQuery) -> Page<PoiRef<'_>> {
        let want = query.limit.saturating_add(1);
        let after = query.after.as_deref();
        // Max-heap on id: the top is the largest kept id, the first to give way.
        let mut heap: BinaryHeap<(&str, u32)> = BinaryHeap::with_capacity(want.min(1024) + 1);
        self.for_each_in_box(&query.bbox, &query.filter, |slot, record| {
            if after.is_some_and(|a| record.id() <= a) {
                return;
            }
            let candidate = (record.id(), slot);
            if heap.len() < want {
                heap.push(candidate);
            } else if heap.peek().is_some_and(|worst| candidate.0 < worst.0) {
                heap.pop();
                heap.push(candidate);
            }
        });
        let mut ids = heap.into_sorted_vec();
        let more = ids.len() > query.limit;
        ids.truncate(query.limit);
        let items = ids
            .into_iter()
            .map(|(_, slot)| self.poi_ref(slot))
            .collect();
        Page { items, more }
    }
}
