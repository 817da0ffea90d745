//! [`KdTree`]: the packed tree's entry order seen as a k-d tree, for the k-nearest walk.
//!
//! [`pack`](super::pack) orders the entries by k-d cuts: each range is cut in two on the
//! widest axis of its unit vectors. This records those cuts as split planes, down to leaf
//! buckets of at most [`BUCKET`] entries, and keeps the entries' `f32` unit vectors again as
//! three columns. A nearest walk then reads, per step, one small stem (16 bytes; a million
//! POIs have ~60,000, under 1 MB, so the stems stay in cache) instead of sixteen boxes, and
//! per bucket three runs of floats that it ranks in one pass the compiler vectorises.
//!
//! Written here rather than taken from `kiddo`, whose `ImmutableKdTree` this follows (stems
//! apart from leaf buckets of 32 points as structure-of-arrays, each bucket ranked at once):
//! Proxima's tree must keep its own order, its dead marks, its category masks and its rare
//! categories' trees, and rank by exact haversine distance with ties by id. Measured in
//! `benches/poi_queries.rs` against kiddo on the same points and queries.

use super::{PackedEntry, UNIT_ERROR, cut, top_cap, widest_axis};
use crate::pois::packed::NODE;

/// The most entries in a leaf bucket.
pub(crate) const BUCKET: usize = 32;

/// A node of the k-d tree, in preorder: a stem's left child follows it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KdNode {
    /// A cut: everything on the left has `unit[axis] <= left_max`, everything on the right
    /// `unit[axis] >= right_min` (as `f32`; the exact vectors are within [`UNIT_ERROR`]).
    Stem {
        axis: u8,
        left_max: f32,
        right_min: f32,
        right: u32,
    },
    /// Entries `start .. start + len`.
    Leaf { start: u32, len: u32 },
}

/// The k-d view of a packed tree's entries.
#[derive(Debug, Clone, Default)]
pub(crate) struct KdTree {
    nodes: Vec<KdNode>,
    /// The entries' `f32` unit vectors, by axis, in entry order.
    columns: [Vec<f32>; 3],
}

impl KdTree {
    /// The k-d view of `entries`, which [`pack`](super::pack) has ordered.
    pub(crate) fn build(entries: &[PackedEntry]) -> Self {
        let columns = [0, 1, 2].map(|k| entries.iter().map(|e| e.unit[k]).collect());
        let mut nodes = Vec::with_capacity(2 * entries.len().div_ceil(BUCKET / 2));
        if !entries.is_empty() {
            build_node(entries, 0, top_cap(entries.len()), &mut nodes);
        }
        Self { nodes, columns }
    }

    /// Marks entry `at` dead: its vector becomes NaN, which no distance test passes.
    pub(crate) fn kill(&mut self, at: usize) {
        for column in &mut self.columns {
            column[at] = f32::NAN;
        }
    }

    /// Walks the buckets nearest `q` first, skipping every subtree whose lower bound of the
    /// squared chord (to the exact unit vectors) exceeds the bound; `visit` ranks a bucket's
    /// entries (by index) and returns the bound, which may only shrink.
    pub(crate) fn nearest_first(
        &self,
        q: &[f64; 3],
        bound: f64,
        visit: &mut impl FnMut(std::ops::Range<usize>, &[Vec<f32>; 3]) -> f64,
    ) {
        if self.nodes.is_empty() {
            return;
        }
        let mut bound = bound;
        self.walk(0, q, [0.0; 3], 0.0, &mut bound, visit);
    }

    /// The walk below node `at`, whose region lies at least `offsets[k]` from `q` along
    /// each axis, `rd` (their squares summed) in all.
    fn walk(
        &self,
        at: usize,
        q: &[f64; 3],
        offsets: [f64; 3],
        rd: f64,
        bound: &mut f64,
        visit: &mut impl FnMut(std::ops::Range<usize>, &[Vec<f32>; 3]) -> f64,
    ) {
        match self.nodes[at] {
            KdNode::Leaf { start, len } => {
                let start = start as usize;
                *bound = visit(start..start + len as usize, &self.columns);
            }
            KdNode::Stem {
                axis,
                left_max,
                right_min,
                right,
            } => {
                let axis = axis as usize;
                let x = q[axis];
                let to_left = (x - (f64::from(left_max) + UNIT_ERROR)).max(0.0);
                let to_right = ((f64::from(right_min) - UNIT_ERROR) - x).max(0.0);
                let (near, near_off, far, far_off) = if to_left <= to_right {
                    (at + 1, to_left, right as usize, to_right)
                } else {
                    (right as usize, to_right, at + 1, to_left)
                };
                let step = |off: f64| {
                    let mut offsets = offsets;
                    let before = offsets[axis];
                    offsets[axis] = before.max(off);
                    let rd = rd - before * before + offsets[axis] * offsets[axis];
                    (offsets, rd)
                };
                let (near_offsets, near_rd) = step(near_off);
                if near_rd <= *bound {
                    self.walk(near, q, near_offsets, near_rd, bound, visit);
                }
                let (far_offsets, far_rd) = step(far_off);
                if far_rd <= *bound {
                    self.walk(far, q, far_offsets, far_rd, bound, visit);
                }
            }
        }
    }
}

/// Records the cuts of `entries` (at `start` in the tree), cut as [`pack`](super::pack)
/// cuts them with runs of `cap`.
fn build_node(entries: &[PackedEntry], start: usize, mut cap: usize, nodes: &mut Vec<KdNode>) {
    let len = entries.len();
    if len <= BUCKET {
        nodes.push(KdNode::Leaf {
            start: start as u32,
            len: len as u32,
        });
        return;
    }
    // A run of `cap` is cut next with runs of `cap / NODE`.
    while cap > NODE && len <= cap {
        cap /= NODE;
    }
    let (_, middle) = cut(len, cap);
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    for e in entries {
        for k in 0..3 {
            lo[k] = lo[k].min(e.unit[k]);
            hi[k] = hi[k].max(e.unit[k]);
        }
    }
    let axis = widest_axis(lo, hi);
    let (left, right) = entries.split_at(middle);
    let left_max = left
        .iter()
        .map(|e| e.unit[axis])
        .fold(f32::NEG_INFINITY, f32::max);
    let right_min = right
        .iter()
        .map(|e| e.unit[axis])
        .fold(f32::INFINITY, f32::min);
    let at = nodes.len();
    nodes.push(KdNode::Leaf { start: 0, len: 0 }); // the stem, once its right child is known
    build_node(left, start, cap, nodes);
    let right_at = nodes.len() as u32;
    build_node(right, start + middle, cap, nodes);
    nodes[at] = KdNode::Stem {
        axis: axis as u8,
        left_max,
        right_min,
        right: right_at,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::LatLon;
    use crate::pois::packed::PackedTree;

    #[test]
    fn every_leaf_bucket_is_small_and_every_cut_bounds_its_sides() {
        let entries: Vec<PackedEntry> = (0..20_000u32)
            .map(|i| {
                let lat = f64::from(i % 179) - 89.0 + f64::from(i % 7) * 0.01;
                let lon = f64::from((i * 7919) % 359) - 179.5;
                PackedEntry::new(i, LatLon::new(lat, lon).expect("valid"), 0, None)
            })
            .collect();
        let tree = PackedTree::build(entries);
        let kd = &tree.kd;
        let all = tree.all_entries();
        // Every entry in exactly one bucket, every bucket within its cuts.
        let mut covered = vec![0u8; all.len()];
        // A node and the cuts above it: (axis, on the left?, the cut's value).
        type Cuts = Vec<(usize, bool, f32)>;
        let mut stack: Vec<(usize, Cuts)> = vec![(0, vec![])];
        let mut separated = 0;
        let mut stems = 0;
        while let Some((at, cuts)) = stack.pop() {
            match kd.nodes[at] {
                KdNode::Leaf { start, len } => {
                    assert!(len as usize <= BUCKET);
                    for i in start as usize..(start + len) as usize {
                        covered[i] += 1;
                        for &(axis, left, bound) in &cuts {
                            let x: f32 = all[i].unit[axis];
                            assert!(if left { x <= bound } else { x >= bound });
                            assert_eq!(kd.columns[axis][i], x);
                        }
                    }
                }
                KdNode::Stem {
                    axis,
                    left_max,
                    right_min,
                    right,
                } => {
                    stems += 1;
                    if left_max <= right_min {
                        separated += 1;
                    }
                    let axis = axis as usize;
                    let mut l = cuts.clone();
                    l.push((axis, true, left_max));
                    let mut r = cuts;
                    r.push((axis, false, right_min));
                    stack.push((at + 1, l));
                    stack.push((right as usize, r));
                }
            }
        }
        assert!(covered.iter().all(|&c| c == 1));
        assert_eq!(separated, stems, "each cut is on the axis pack cut along");
    }
}
