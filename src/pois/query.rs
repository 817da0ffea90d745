//! The two POI queries, answered exactly.
//!
//! **Nearby** walks the R-tree in chord order (rstar's best-first nearest-neighbour iterator)
//! and keeps the best `limit` POIs by `(haversine distance, id)` in a bounded heap. It stops as
//! soon as the next candidate's chord is beyond the bound of the current worst kept distance
//! (or of the radius), widened by [`chord2_bound`]'s tolerance so that ties and rounding can
//! never cut off a POI the oracle would return. A query with a radius is the same walk with a
//! cap, so a 10 km query in a dense centre touches about `limit` points, not every point in
//! the circle. Category filters walk only the trees of those categories.
//!
//! **Within** asks the trees for the unit vectors inside the 3-D envelope of the box, keeps
//! those truly inside the box (in degrees), and returns the `limit` smallest ids after the
//! cursor: the page order is by id, which is stable while POIs come and go.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rstar::{AABB, Envelope};

use super::Poi;
use super::index::{PoiIndex, PoiRecord, Tree};
use crate::geometry::{BBox, LatLon, chord2_bound, haversine_m};

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
#[derive(Debug, Clone, PartialEq)]
pub struct NearbyHit {
    /// The POI.
    pub poi: Poi,
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

/// A kept candidate: ordered by `(distance, id)`, the ranking of nearby results.
struct Ranked<'a> {
    distance: f64,
    id: &'a str,
    slot: u32,
}

impl Ranked<'_> {
    fn key(&self) -> (f64, &str) {
        (self.distance, self.id)
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
            .then_with(|| self.id.cmp(other.id))
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

    fn passes(filter: &PoiFilter, record: &PoiRecord) -> bool {
        match filter.min_rating {
            Some(min) => record.rating.is_some_and(|r| r >= min),
            None => true,
        }
    }

    /// POIs nearest to the centre, nearest first, ties broken by id.
    pub fn nearby(&self, query: &NearbyQuery) -> Page<NearbyHit> {
        // One more than asked, to know whether another page follows.
        let want = query.limit.saturating_add(1);
        let center = query.center;
        let q = center.to_unit();
        let radius_bound = query.radius_m.map_or(f64::INFINITY, chord2_bound);
        let after = query.after.as_ref().map(|(d, id)| (*d, id.as_str()));
        let mut heap: BinaryHeap<Ranked<'_>> = BinaryHeap::with_capacity(want.min(1024) + 1);
        let mut bound = radius_bound;

        for tree in self.trees_for(&query.filter) {
            for (entry, chord2) in tree.nearest_neighbor_iter_with_distance_2(&q) {
                if chord2 > bound {
                    break;
                }
                let record = self.record(entry.data);
                if !Self::passes(&query.filter, record) {
                    continue;
                }
                let distance = haversine_m(center, record.position);
                if query.radius_m.is_some_and(|r| distance > r) {
                    continue;
                }
                let candidate = Ranked {
                    distance,
                    id: &record.id,
                    slot: entry.data,
                };
                if after.is_some_and(|a| candidate.key() <= a) {
                    continue;
                }
                if heap.len() < want {
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
                poi: self.poi_at(r.slot),
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
                    let record = self.record(entry.data);
                    if bbox.contains(record.position) && Self::passes(filter, record) {
                        f(entry.data, record);
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
    pub fn within(&self, query: &WithinQuery) -> Page<Poi> {
        let want = query.limit.saturating_add(1);
        let after = query.after.as_deref();
        // Max-heap on id: the top is the largest kept id, the first to give way.
        let mut heap: BinaryHeap<(&str, u32)> = BinaryHeap::with_capacity(want.min(1024) + 1);
        self.for_each_in_box(&query.bbox, &query.filter, |slot, record| {
            if after.is_some_and(|a| &*record.id <= a) {
                return;
            }
            let candidate = (&*record.id, slot);
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
        let items = ids.into_iter().map(|(_, slot)| self.poi_at(slot)).collect();
        Page { items, more }
    }
}
