//! Within: the POIs inside a box or an area, in id order.
//!
//! The walk goes through the nodes that meet the 3-D envelope of the box, keeps the POIs truly
//! inside the box (in degrees), and returns the `limit` smallest ids after the cursor: the
//! page order is by id, which is stable while POIs come and go. An area is walked as its
//! bounding boxes, and each POI found is tested against the area itself.

use std::collections::BinaryHeap;

use rstar::{AABB, Envelope};

use super::{AreaQuery, Page, PoiFilter, WithinQuery};
use crate::geometry::{BBox, LatLon};
use crate::pois::index::{PoiIndex, PoiRecord, PoiRef};
use crate::pois::packed::{DEAD, PackedTree};

impl PoiIndex {
    /// Calls `f` with every POI record inside the box that passes the filter.
    pub(crate) fn for_each_in_box<'a>(
        &'a self,
        bbox: &BBox,
        filter: &PoiFilter,
        mut f: impl FnMut(u32, &'a PoiRecord),
    ) {
        let Some(categories) = self.categories_of(filter) else {
            return;
        };
        let envelopes: Vec<([f64; 3], [f64; 3])> = bbox.unit_envelopes().collect();
        // The packed trees, each walked once for all envelopes: each entry is tested once,
        // so a point on the antimeridian (in both halves of a crossing box) is found once.
        let mut stack: Vec<(&PackedTree, usize, usize)> = Vec::new();
        for tree in categories.trees() {
            let (top, count) = tree.top();
            stack.extend((0..count).map(|i| (tree, top, i)));
        }
        while let Some((tree, level, index)) = stack.pop() {
            let node = tree.node(level, index);
            if !node.may_hold(&categories.mask) || !envelopes.iter().any(|e| node.meets(e)) {
                continue;
            }
            let children = tree.children(level, index);
            if level > 0 {
                stack.extend(children.map(|i| (tree, level - 1, i)));
                continue;
            }
            for e in tree.entries(children) {
                if e.slot != DEAD
                    && categories.admit(e.category)
                    && self.rated_at_least(e, filter.min_rating)
                    && bbox.contains(e.position)
                {
                    f(e.slot, self.record(e.slot));
                }
            }
        }
        // The delta, one envelope at a time.
        let envelopes: Vec<AABB<[f64; 3]>> = envelopes
            .into_iter()
            .map(|(lo, hi)| AABB::from_corners(lo, hi))
            .collect();
        for (i, envelope) in envelopes.iter().enumerate() {
            for entry in self.delta.locate_in_envelope(envelope) {
                // A point on the antimeridian lies in both halves of a crossing box: count
                // it in the first only.
                if envelopes[..i]
                    .iter()
                    .any(|e| e.contains_point(entry.geom()))
                {
                    continue;
                }
                let data = &entry.data;
                if categories.admit(data.category)
                    && bbox.contains(data.position)
                    && Self::passes(filter, data.rating)
                {
                    f(data.slot, self.record(data.slot));
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
        self.first_ids(query.limit, query.after.as_deref(), |keep| {
            self.for_each_in_box(&query.bbox, &query.filter, keep);
        })
    }

    /// POIs inside the area, in id order: the candidates of the area's bounding boxes, each
    /// tested against the area exactly (a candidate in two boxes counts in the first).
    pub fn within_area(&self, query: &AreaQuery) -> Page<PoiRef<'_>> {
        let bounds = query.area.bounds();
        self.first_ids(query.limit, query.after.as_deref(), |keep| {
            for (i, bbox) in bounds.iter().enumerate() {
                self.for_each_in_box(bbox, &query.filter, |slot, record| {
                    let p = record.position;
                    if !bounds[..i].iter().any(|b| b.contains(p)) && query.area.contains(p) {
                        keep(slot, record);
                    }
                });
            }
        })
    }

    /// The `limit` smallest ids after `after` among the POIs `visit` offers, and whether
    /// more follow.
    fn first_ids<'a>(
        &'a self,
        limit: usize,
        after: Option<&str>,
        visit: impl FnOnce(&mut dyn FnMut(u32, &'a PoiRecord)),
    ) -> Page<PoiRef<'a>> {
        let want = limit.saturating_add(1);
        // Max-heap on id: the top is the largest kept id, the first to give way.
        let mut heap: BinaryHeap<(&str, u32)> = BinaryHeap::with_capacity(want.min(1024) + 1);
        visit(&mut |slot, record| {
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
        let more = ids.len() > limit;
        ids.truncate(limit);
        let items = ids
            .into_iter()
            .map(|(_, slot)| self.poi_ref(slot))
            .collect();
        Page { items, more }
    }
}
