//! Nearby: the `limit` nearest POIs, exactly.
//!
//! The walk goes through both trees of the index (the packed tree and the rstar delta, see
//! [`PoiIndex`]) best first, in chord order, in one queue, and keeps the best `limit` POIs
//! by `(haversine distance, id)` in a bounded heap. It stops as soon as the next node or
//! point is beyond the bound of the current worst kept distance (or of the radius), widened
//! by [`chord2_bound`]'s tolerance so that ties and rounding can never cut off a POI the
//! oracle would return. A query with a radius is the same walk with a cap, so a 10 km query
//! in a dense centre touches about `limit` points, not every point in the circle. Category
//! filters walk the rare categories' own packed trees when every asked category has one;
//! otherwise they skip the nodes whose category mask lacks every asked category.
//!
//! The walk is written here rather than with rstar's `nearest_neighbor_iter`: that iterator
//! queues every child of every node it opens, however far, and allocates as it grows. Ours
//! queues only children within the current bound, which shrinks as results come in, and
//! allocates one queue per query (profiled: the iterator's heap work was a third of a
//! 1M-POI kNN query). A packed leaf's entries are queued by a lower bound of their chord
//! (from their `f32` unit vectors), so that a haversine is computed only for an entry that
//! comes out of the queue within the bound (profiled: ranking every entry of an opened leaf
//! by haversine made a kNN query 20 % slower and a rare-category one twice as slow).
//!
//! Results borrow from the index ([`PoiRef`](crate::pois::PoiRef)): no string is copied
//! to answer a query.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rstar::RTreeNode;

use super::{Categories, NearbyHit, NearbyQuery, Page};
use crate::geometry::{LatLon, chord2_bound, dist2, haversine_m};
use crate::pois::index::{Entry, PoiIndex};
use crate::pois::packed::{DEAD, PackedEntry, PackedTree};

/// A kept candidate: ordered by `(distance, id)`, the ranking of nearby results. The id is
/// looked up only when two distances tie: reading it for every candidate was a cache miss
/// on the record vector per candidate, the largest cost of a kNN query on 1M POIs.
pub(super) struct Ranked<'a> {
    pub(super) distance: f64,
    pub(super) slot: u32,
    index: &'a PoiIndex,
}

impl<'a> Ranked<'a> {
    /// The POI in `slot` of `index`, at `distance`.
    pub(super) fn new(distance: f64, slot: u32, index: &'a PoiIndex) -> Self {
        Self {
            distance,
            slot,
            index,
        }
    }

    fn id(&self) -> &'a str {
        self.index.record(self.slot).id()
    }

    /// Whether this ranks at or before `(distance, id)`.
    pub(super) fn at_or_before(&self, (distance, id): (f64, &str)) -> bool {
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

/// Where the walk is: a node of a packed tree (level, index), a packed entry, or a node or
/// entry of the delta.
#[derive(Clone, Copy)]
enum Node<'t> {
    Packed(&'t PackedTree, u32, u32),
    PackedEntry(&'t PackedEntry),
    Delta(&'t RTreeNode<Entry>),
}

/// A node or point waiting in the best-first queue, ordered so that the smallest squared
/// chord (a lower bound for everything under a node) comes out first.
struct Pending<'t> {
    chord2: f64,
    node: Node<'t>,
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

/// The best `limit + 1` candidates so far, and the bound they set on the rest of the walk.
struct Best<'a, 'q> {
    index: &'a PoiIndex,
    query: &'q NearbyQuery,
    heap: BinaryHeap<Ranked<'a>>,
    want: usize,
    after: Option<(f64, &'q str)>,
    radius_bound: f64,
    /// Squared chord beyond which nothing can be kept.
    bound: f64,
}

impl<'a, 'q> Best<'a, 'q> {
    fn new(index: &'a PoiIndex, query: &'q NearbyQuery) -> Self {
        // One more than asked, to know whether another page follows.
        let want = query.limit.saturating_add(1);
        let radius_bound = query.radius_m.map_or(f64::INFINITY, chord2_bound);
        Self {
            index,
            query,
            heap: BinaryHeap::with_capacity(want.min(1024) + 1),
            want,
            after: query.after.as_ref().map(|(d, id)| (*d, id.as_str())),
            radius_bound,
            bound: radius_bound,
        }
    }

    /// Considers the POI in `slot` at `position`.
    #[inline]
    fn offer(&mut self, slot: u32, position: LatLon) {
        let distance = haversine_m(self.query.center, position);
        if self.query.radius_m.is_some_and(|r| distance > r) {
            return;
        }
        // Rank by distance first; only a tie needs the id, which is in the record.
        let full = self.heap.len() == self.want;
        if full
            && self
                .heap
                .peek()
                .is_some_and(|worst| distance > worst.distance)
        {
            return;
        }
        let candidate = Ranked {
            distance,
            slot,
            index: self.index,
        };
        if self.after.is_some_and(|a| candidate.at_or_before(a)) {
            return;
        }
        if !full {
            self.heap.push(candidate);
        } else if self.heap.peek().is_some_and(|worst| candidate < *worst) {
            self.heap.pop();
            self.heap.push(candidate);
        } else {
            return;
        }
        if self.heap.len() == self.want {
            let worst = self.heap.peek().expect("heap is full").distance;
            self.bound = self.radius_bound.min(chord2_bound(worst));
        }
    }
}

/// Queues the nodes `range` of `level` of a packed tree that may hold something of the
/// asked categories within `bound`.
#[inline]
fn queue_packed<'t>(
    tree: &'t PackedTree,
    level: usize,
    range: std::ops::Range<usize>,
    q: &[f64; 3],
    categories: &Categories<'_>,
    bound: f64,
    queue: &mut BinaryHeap<Pending<'t>>,
) {
    for i in range {
        let node = tree.node(level, i);
        if !node.may_hold(&categories.mask) {
            continue;
        }
        let chord2 = node.chord2(q);
        if chord2 <= bound {
            queue.push(Pending {
                chord2,
                node: Node::Packed(tree, level as u32, i as u32),
            });
        }
    }
}

/// The squared chord from `q` to a delta node: to its point, or a lower bound for
/// everything under it.
#[inline]
pub(super) fn delta_chord2(node: &RTreeNode<Entry>, q: &[f64; 3]) -> f64 {
    match node {
        RTreeNode::Leaf(entry) => dist2(*entry.geom(), *q),
        RTreeNode::Parent(parent) => parent.envelope().distance_2(q),
    }
}

/// Queues the children of a delta node that may hold something within `bound`.
#[inline]
fn queue_delta<'t>(
    children: &'t [RTreeNode<Entry>],
    q: &[f64; 3],
    bound: f64,
    queue: &mut BinaryHeap<Pending<'t>>,
) {
    for node in children {
        let chord2 = delta_chord2(node, q);
        if chord2 <= bound {
            queue.push(Pending {
                chord2,
                node: Node::Delta(node),
            });
        }
    }
}

impl PoiIndex {
    /// POIs nearest to the centre, nearest first, ties broken by id.
    pub fn nearby(&self, query: &NearbyQuery) -> Page<NearbyHit<'_>> {
        match self.categories_of(&query.filter) {
            Some(categories) if categories.ids.is_none() || categories.own_trees => {
                self.nearby_kd(query, &categories)
            }
            categories => self.nearby_best_first(query, categories.as_ref()),
        }
    }

    /// Nearby by the best-first walk: for category filters on the tree of all POIs, whose
    /// node masks prune (`None`: categories no POI has).
    fn nearby_best_first<'a>(
        &'a self,
        query: &NearbyQuery,
        categories: Option<&Categories<'a>>,
    ) -> Page<NearbyHit<'a>> {
        let mut best = Best::new(self, query);
        if let Some(categories) = categories {
            self.walk_nearby(categories, &mut best);
        }
        let mut ranked = best.heap.into_sorted_vec();
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

    fn walk_nearby<'a>(&'a self, categories: &Categories, best: &mut Best<'a, '_>) {
        let q = best.query.center.to_unit();
        let min_rating = best.query.filter.min_rating;
        let mut queue: BinaryHeap<Pending<'_>> = BinaryHeap::with_capacity(128);
        for tree in categories.trees() {
            let (top, count) = tree.top();
            queue_packed(tree, top, 0..count, &q, categories, best.bound, &mut queue);
        }
        queue_delta(self.delta.root().children(), &q, best.bound, &mut queue);

        while let Some(Pending { chord2, node }) = queue.pop() {
            if chord2 > best.bound {
                break;
            }
            match node {
                Node::Packed(tree, 0, index) => {
                    for e in tree.entries(tree.children(0, index as usize)) {
                        if e.slot == DEAD || !categories.admit(e.category) {
                            continue;
                        }
                        let chord2 = e.chord2_lower(&q);
                        if chord2 <= best.bound && self.rated_at_least(e, min_rating) {
                            queue.push(Pending {
                                chord2,
                                node: Node::PackedEntry(e),
                            });
                        }
                    }
                }
                Node::PackedEntry(e) => best.offer(e.slot, e.position),
                Node::Packed(tree, level, index) => {
                    let children = tree.children(level as usize, index as usize);
                    let below = level as usize - 1;
                    queue_packed(
                        tree, below, children, &q, categories, best.bound, &mut queue,
                    );
                }
                Node::Delta(RTreeNode::Parent(parent)) => {
                    queue_delta(parent.children(), &q, best.bound, &mut queue);
                }
                Node::Delta(RTreeNode::Leaf(entry)) => {
                    let data = &entry.data;
                    if categories.admit(data.category)
                        && Self::passes(&best.query.filter, data.rating)
                    {
                        best.offer(data.slot, data.position);
                    }
                }
            }
        }
    }
}
