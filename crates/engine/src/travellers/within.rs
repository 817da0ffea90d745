//! Travellers inside an area, in id order: the fine cells covering the area's bounding
//! boxes, each classified against the area first (a cell outside is skipped, a cell wholly
//! inside needs no test), then the travellers of the remaining cells tested exactly. The
//! walk over the cells is [`TravellerIndex::for_each_seen_in`], the one fences use.

use std::collections::BinaryHeap;

use foldhash::fast::FixedState;
use hashbrown::HashSet;

use super::cells::{COARSE, Cover};
use super::index::TravellerIndex;
use super::{TravellerAt, TravellerId};
use crate::geometry::LatLon;
use crate::geometry::area::{Area, Overlap};

/// A page of travellers and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct TravellerPage {
    /// Travellers, by id.
    pub items: Vec<TravellerAt>,
    /// Whether at least one more follows the last.
    pub more: bool,
}

impl TravellerIndex {
    /// Live travellers inside `area` that `viewer` may see, by id, after `after`, at most
    /// `limit`. A traveller that moves while the query runs is answered at most once.
    pub fn within_area(
        &self,
        area: &Area,
        viewer: Option<&str>,
        after: Option<&str>,
        limit: usize,
        now_ms: i64,
    ) -> TravellerPage {
        let want = limit.saturating_add(1);
        // Max-heap on id: the top is the largest kept id, the first to give way.
        let mut heap: BinaryHeap<ById> = BinaryHeap::new();
        let mut kept: HashSet<TravellerId, FixedState> = HashSet::default();
        self.for_each_seen_in(area, |seen, overlap| {
            let Some(position) = seen.position() else {
                return;
            };
            if after.is_some_and(|a| seen.id() <= a)
                || !seen.live(now_ms)
                || !seen.allows(viewer)
                || (overlap == Overlap::Partly && !area.contains(position))
                || (heap.len() >= want
                    && heap.peek().is_some_and(|top| seen.id() >= top.id.as_str()))
            {
                return;
            }
            let candidate = ById {
                id: seen.record.id.clone(),
                position,
                ts: seen.ts(),
            };
            if !kept.insert(candidate.id.clone()) {
                // Met before, in a cell it has since left: keep this newer sighting.
                heap.retain(|c| c.id != candidate.id);
            }
            heap.push(candidate);
            if heap.len() > want {
                heap.pop();
            }
        });
        let mut items = heap.into_sorted_vec();
        let more = items.len() > limit;
        items.truncate(limit);
        TravellerPage {
            items: items
                .into_iter()
                .map(|c| TravellerAt {
                    id: c.id.to_string(),
                    position: c.position,
                    ts: c.ts,
                })
                .collect(),
            more,
        }
    }

    /// The fine cells that may hold a point of `area`, each once: with how the area meets
    /// it when a coarse cell already told, `None` when the cell is still to be classified
    /// (only if it holds anyone: classifying costs more than looking).
    pub(super) fn cells_of(&self, area: &Area) -> Vec<(u64, Option<Overlap>)> {
        let mut out = Vec::new();
        for bbox in area.bounds() {
            let lons = [(bbox.min_lon, bbox.max_lon)];
            match self.cells.cover_box(bbox.min_lat, bbox.max_lat, &lons) {
                Cover::Fine(cells) => out.extend(cells.into_iter().map(|c| (c, None))),
                Cover::Coarse(ranked) => {
                    for (_, coarse) in ranked {
                        let children = self.cells.children(coarse);
                        if children.is_empty() {
                            continue;
                        }
                        let (w, s, e, n) = COARSE.cell_bounds(coarse);
                        let known = match area.overlap(w, s, e, n) {
                            Overlap::Outside => continue,
                            Overlap::Inside => Some(Overlap::Inside),
                            Overlap::Partly => None,
                        };
                        out.extend(children.into_iter().map(|c| (c, known)));
                    }
                }
            }
        }
        // A cell covered by two boxes is kept once, as its surest overlap.
        out.sort_unstable_by_key(|&(c, known)| (c, known.is_none()));
        out.dedup_by_key(|(c, _)| *c);
        out
    }
}

/// A kept traveller, ordered by id alone.
struct ById {
    id: TravellerId,
    position: LatLon,
    ts: i64,
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for ById {}
impl PartialOrd for ById {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ById {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}
