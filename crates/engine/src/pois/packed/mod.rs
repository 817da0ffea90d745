//! [`PackedTree`]: a static R-tree over POIs, bulk-built once and then only read (or
//! tombstoned), laid out in flat arrays for memory and for cache misses.
//!
//! Why not rstar for the bulk of the POIs: rstar stores every child of a node in a 72-byte
//! enum slot, so a node of 16 children spans 18 cache lines, and the second tree per
//! category doubled that per POI (~160 bytes a POI in trees alone). Here:
//! - entries are 40 bytes (position, `f32` unit vector, slot, category, `f32` rating),
//!   ordered by k-d cuts of their unit vectors (see [`pack`]), so that neighbours on the
//!   sphere are neighbours in memory and every run of 16 is a compact leaf;
//! - each group of [`NODE`] entries has a node: an `f32` box of their unit vectors, rounded
//!   outwards so it still contains them, and a 128-bit mask of their categories
//!   (`category % 128`), which lets a filtered query skip subtrees without the category
//!   instead of keeping one tree per category;
//! - upper levels group [`NODE`] nodes of the level below the same way, implicitly: the
//!   children of node `i` are nodes `NODE * i ..` of the level below, no pointers.
//!
//! Beside the boxes, the same order is a k-d tree ([`kd`]): the cuts [`pack`] made, recorded
//! as split planes over leaf buckets of up to [`kd::BUCKET`] entries, with the entries' unit
//! vectors also stored as structure-of-arrays, for the k-nearest walk.
//!
//! The tree never changes shape after the build. [`PackedTree::kill`] marks an entry dead
//! (its slot becomes [`DEAD`]); its node boxes and masks stay as they were, which keeps them
//! valid bounds. The index keeps newer entries in a small rstar tree beside this one and
//! rebuilds this one when that grows.

pub(crate) mod kd;

use rayon::prelude::*;

use crate::geometry::{LatLon, chord2_to_envelope};

/// Children per node, and entries per leaf group.
pub(crate) const NODE: usize = 16;

/// The slot of a dead entry.
pub(crate) const DEAD: u32 = u32::MAX;

/// A POI as the tree holds it: what a query needs to filter and rank it without reading its
/// record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PackedEntry {
    /// The exact position, for the exact distance.
    pub(crate) position: LatLon,
    /// The unit vector, rounded to `f32`: within [`UNIT_ERROR`] of the exact one, which is
    /// close enough to order and prune candidates before computing any haversine (each costs
    /// four `sin` calls, and a leaf has 16 entries).
    pub(crate) unit: [f32; 3],
    /// The record's slot, or [`DEAD`].
    pub(crate) slot: u32,
    pub(crate) category: u32,
    /// The rating rounded down to `f32`, or NaN for none. A query reads the exact rating
    /// from the record only when the minimum falls between this and the next `f32`.
    pub(crate) rating: f32,
}

const _: () = assert!(size_of::<PackedEntry>() == 40);

/// The largest distance between a unit vector and its `f32` rounding: half an `f32` ulp
/// (at most `2^-25` for components below 1) on each of three axes, rounded up generously.
pub(crate) const UNIT_ERROR: f64 = 1e-7;

impl PackedEntry {
    pub(crate) fn new(slot: u32, position: LatLon, category: u32, rating: Option<f64>) -> Self {
        Self {
            position,
            unit: position.to_unit().map(|x| x as f32),
            slot,
            category,
            rating: rating.map_or(f32::NAN, round_down),
        }
    }

    /// The unit vector as `f64`.
    #[inline]
    pub(crate) fn unit(&self) -> [f64; 3] {
        self.unit.map(f64::from)
    }

    /// A lower bound of the squared chord from `q` to this entry's exact unit vector.
    #[inline]
    pub(crate) fn chord2_lower(&self, q: &[f64; 3]) -> f64 {
        let chord = crate::geometry::dist2(self.unit(), *q).sqrt() - UNIT_ERROR;
        if chord > 0.0 { chord * chord } else { 0.0 }
    }
}

/// A node: the box of everything under it and the categories present there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PackedNode {
    pub(crate) lo: [f32; 3],
    pub(crate) hi: [f32; 3],
    categories: [u64; 2],
}

impl PackedNode {
    const EMPTY: Self = Self {
        lo: [f32::INFINITY; 3],
        hi: [f32::NEG_INFINITY; 3],
        categories: [0; 2],
    };

    /// Widens the node to hold an entry's exact unit vector: its `f32` rounding is within
    /// half an ulp, so one `f32` step either side holds the exact value.
    fn add_entry(&mut self, e: &PackedEntry) {
        for (k, x) in e.unit.into_iter().enumerate() {
            self.lo[k] = self.lo[k].min(x.next_down());
            self.hi[k] = self.hi[k].max(x.next_up());
        }
        let category = e.category;
        let mask = CategoryMask::of(category);
        self.categories[0] |= mask.0[0];
        self.categories[1] |= mask.0[1];
    }

    fn add_node(&mut self, other: &Self) {
        for k in 0..3 {
            self.lo[k] = self.lo[k].min(other.lo[k]);
            self.hi[k] = self.hi[k].max(other.hi[k]);
        }
        self.categories[0] |= other.categories[0];
        self.categories[1] |= other.categories[1];
    }

    /// Whether any POI of these categories may be under this node.
    #[inline]
    pub(crate) fn may_hold(&self, mask: &CategoryMask) -> bool {
        (self.categories[0] & mask.0[0]) | (self.categories[1] & mask.0[1]) != 0
    }

    /// Squared chord from `q` to the box: a lower bound of the squared chord to anything
    /// under the node.
    #[inline]
    pub(crate) fn chord2(&self, q: &[f64; 3]) -> f64 {
        chord2_to_envelope(*q, (self.lo.map(f64::from), self.hi.map(f64::from)))
    }

    /// Whether the box meets the 3-D envelope `[lo, hi]`.
    #[inline]
    pub(crate) fn meets(&self, (lo, hi): &([f64; 3], [f64; 3])) -> bool {
        (0..3).all(|k| f64::from(self.lo[k]) <= hi[k] && f64::from(self.hi[k]) >= lo[k])
    }

    #[inline]
    fn contains(&self, p: &[f64; 3]) -> bool {
        (0..3).all(|k| f64::from(self.lo[k]) <= p[k] && p[k] <= f64::from(self.hi[k]))
    }
}

/// A set of categories as node masks see it: bit `category % 128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CategoryMask([u64; 2]);

impl CategoryMask {
    /// Every category.
    pub(crate) const ALL: Self = Self([u64::MAX; 2]);

    fn of(category: u32) -> Self {
        let bit = category % 128;
        let mut mask = [0; 2];
        mask[(bit / 64) as usize] = 1 << (bit % 64);
        Self(mask)
    }

    /// The mask of these categories.
    pub(crate) fn of_all(categories: &[u32]) -> Self {
        categories.iter().fold(Self([0; 2]), |acc, &c| {
            let m = Self::of(c);
            Self([acc.0[0] | m.0[0], acc.0[1] | m.0[1]])
        })
    }
}

/// The run length [`pack`] starts cutting `len` entries into: the largest power of [`NODE`]
/// (at least [`NODE`]) whose next power is still short of `len`.
pub(crate) fn top_cap(len: usize) -> usize {
    let mut top = NODE;
    while top * NODE < len {
        top *= NODE;
    }
    top
}

/// The axis along which `[lo, hi]` is widest (the last of equals): where [`split`] cuts.
pub(crate) fn widest_axis(lo: [f32; 3], hi: [f32; 3]) -> usize {
    (0..3)
        .max_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b])))
        .expect("three axes")
}

/// How [`split`] cuts `len` entries into runs of `cap`: the number of runs, and where the
/// first half ends (the multiple of `cap` nearest the middle, rounded down).
pub(crate) fn cut(len: usize, cap: usize) -> (usize, usize) {
    let groups = len.div_ceil(cap);
    (groups, groups / 2 * cap)
}

/// The largest `f32` at most `x`.
fn round_down(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) > x { f.next_down() } else { f }
}

/// The static tree. See the module documentation.
#[derive(Debug, Clone, Default)]
pub(crate) struct PackedTree {
    entries: Vec<PackedEntry>,
    /// The k-d view of the same order: split planes and the unit vectors as columns.
    pub(crate) kd: kd::KdTree,
    /// `levels[0]` has a node per [`NODE`] entries; `levels[i + 1]` a node per [`NODE`]
    /// nodes of `levels[i]`; the last level has at most [`NODE`] nodes. Empty when there
    /// are no entries.
    levels: Vec<Vec<PackedNode>>,
    dead: usize,
}

impl PackedTree {
    /// Builds the tree over `entries`, in any order.
    pub(crate) fn build(mut entries: Vec<PackedEntry>) -> Self {
        let top = top_cap(entries.len());
        pack(&mut entries, top);
        let leaves: Vec<PackedNode> = entries
            .par_chunks(NODE)
            .map(|group| {
                let mut node = PackedNode::EMPTY;
                for e in group {
                    node.add_entry(e);
                }
                node
            })
            .collect();
        let mut levels = Vec::new();
        if !leaves.is_empty() {
            levels.push(leaves);
        }
        while levels.last().is_some_and(|l| l.len() > NODE) {
            let below = levels.last().expect("checked");
            let above = below
                .chunks(NODE)
                .map(|group| {
                    let mut node = PackedNode::EMPTY;
                    for child in group {
                        node.add_node(child);
                    }
                    node
                })
                .collect();
            levels.push(above);
        }
        let kd = kd::KdTree::build(&entries);
        Self {
            entries,
            kd,
            levels,
            dead: 0,
        }
    }

    /// Entries that are not dead.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.entries.len() - self.dead
    }

    /// Entries marked dead since the build.
    pub(crate) fn dead(&self) -> usize {
        self.dead
    }

    /// The top level's number and its node count (0 when empty).
    pub(crate) fn top(&self) -> (usize, usize) {
        match self.levels.len() {
            0 => (0, 0),
            n => (n - 1, self.levels[n - 1].len()),
        }
    }

    /// Node `index` of `level`.
    #[inline]
    pub(crate) fn node(&self, level: usize, index: usize) -> &PackedNode {
        &self.levels[level][index]
    }

    /// The index range of the children of node `index` of `level`: nodes of `level - 1`, or
    /// entries for level 0.
    #[inline]
    pub(crate) fn children(&self, level: usize, index: usize) -> std::ops::Range<usize> {
        let len = if level == 0 {
            self.entries.len()
        } else {
            self.levels[level - 1].len()
        };
        NODE * index..(NODE * (index + 1)).min(len)
    }

    /// The entries in `range`.
    #[inline]
    pub(crate) fn entries(&self, range: std::ops::Range<usize>) -> &[PackedEntry] {
        &self.entries[range]
    }

    /// Every entry, dead ones included.
    pub(crate) fn all_entries(&self) -> &[PackedEntry] {
        &self.entries
    }

    /// Marks dead the entry of `slot`, at `position`. Returns whether it was here.
    pub(crate) fn kill(&mut self, slot: u32, position: LatLon) -> bool {
        let Some(at) = self.find(slot, position) else {
            return false;
        };
        self.entries[at].slot = DEAD;
        self.kd.kill(at);
        self.dead += 1;
        true
    }

    /// Where the live entry of `slot` at `position` is: a descent through the nodes whose
    /// boxes hold the point.
    fn find(&self, slot: u32, position: LatLon) -> Option<usize> {
        let p = position.to_unit();
        let (top, count) = self.top();
        let mut stack: Vec<(usize, usize)> = (0..count).map(|i| (top, i)).collect();
        while let Some((level, index)) = stack.pop() {
            if !self.node(level, index).contains(&p) {
                continue;
            }
            let children = self.children(level, index);
            if level == 0 {
                if let Some(i) = children.clone().find(|&i| self.entries[i].slot == slot) {
                    return Some(i);
                }
            } else {
                stack.extend(children.map(|i| (level - 1, i)));
            }
        }
        None
    }
}

/// Orders `entries` so that every aligned run of `cap`, `cap / NODE`, ... `NODE` entries is
/// a compact group, each run full except the last of its parent's: the implicit layout of
/// [`PackedTree`] then makes each run one subtree. The groups are cut like a k-d tree: the
/// widest axis of the unit vectors, at the multiple of the group size nearest the middle,
/// until every group has `cap` entries; then each group the same way with `cap / NODE`.
///
/// Written here because the packing decides the tree's shape: a first version sorted the
/// entries along a Hilbert curve, whose runs of 16 can bend or jump, and its leaves spanned
/// more ground (a k-nearest query opened ~5 leaves; a sparse category's tree far more).
fn pack(entries: &mut [PackedEntry], cap: usize) {
    split(entries, cap);
    if cap > NODE {
        entries
            .par_chunks_mut(cap)
            .for_each(|group| pack(group, cap / NODE));
    }
}

/// Cuts `entries` into runs of `cap` (the last one shorter), each spatially compact.
fn split(entries: &mut [PackedEntry], cap: usize) {
    if entries.len() <= cap {
        return;
    }
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    for e in entries.iter() {
        for k in 0..3 {
            lo[k] = lo[k].min(e.unit[k]);
            hi[k] = hi[k].max(e.unit[k]);
        }
    }
    let axis = widest_axis(lo, hi);
    let (_, middle) = cut(entries.len(), cap);
    entries.select_nth_unstable_by(middle, |a, b| a.unit[axis].total_cmp(&b.unit[axis]));
    let (left, right) = entries.split_at_mut(middle);
    if left.len() > 1 << 16 {
        rayon::join(|| split(left, cap), || split(right, cap));
    } else {
        split(left, cap);
        split(right, cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(slot: u32, lat: f64, lon: f64, category: u32) -> PackedEntry {
        PackedEntry::new(slot, LatLon::new(lat, lon).expect("valid"), category, None)
    }

    #[test]
    fn every_node_box_and_mask_covers_its_entries() {
        let entries: Vec<PackedEntry> = (0..5000u32)
            .map(|i| {
                let lat = f64::from(i % 181) - 90.0;
                let lon = f64::from((i * 7919) % 361) - 180.0;
                entry(i, lat, lon, i % 300)
            })
            .collect();
        let tree = PackedTree::build(entries);
        assert_eq!(tree.live(), 5000);
        let (top, count) = tree.top();
        assert!(count <= NODE);
        let mut stack: Vec<(usize, usize)> = (0..count).map(|i| (top, i)).collect();
        let mut seen = 0;
        while let Some((level, index)) = stack.pop() {
            let node = *tree.node(level, index);
            let children = tree.children(level, index);
            if level == 0 {
                for e in tree.entries(children) {
                    assert!(node.contains(&e.position.to_unit()));
                    assert!(node.may_hold(&CategoryMask::of(e.category)));
                    seen += 1;
                }
            } else {
                for i in children {
                    let child = tree.node(level - 1, i);
                    assert!((0..3).all(|k| node.lo[k] <= child.lo[k] && child.hi[k] <= node.hi[k]));
                    assert!(node.may_hold(&CategoryMask(child.categories)));
                    stack.push((level - 1, i));
                }
            }
        }
        assert_eq!(seen, 5000);
    }

    #[test]
    fn kill_marks_exactly_the_entry_of_its_slot() {
        let entries: Vec<PackedEntry> = (0..100u32)
            .map(|i| entry(i, 10.0, 20.0 + f64::from(i % 3), 0))
            .collect();
        let mut tree = PackedTree::build(entries);
        let at = LatLon::new(10.0, 21.0).expect("valid");
        assert!(tree.kill(4, at));
        assert!(!tree.kill(4, at), "already dead");
        assert!(!tree.kill(5, at), "slot 5 is elsewhere");
        assert_eq!(tree.live(), 99);
        let dead: Vec<_> = tree
            .all_entries()
            .iter()
            .filter(|e| e.slot == DEAD)
            .collect();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].position, at);
    }

    #[test]
    fn rounded_units_and_ratings_stay_within_their_bounds() {
        for x in [0.1, -0.1, 1.0 / 3.0, -0.999_999_999_9, 1e-300, 0.0, 9.7] {
            let down = round_down(x);
            assert!(f64::from(down) <= x && x < f64::from(down.next_up()));
        }
        for (lat, lon) in [
            (48.8566, 2.3522),
            (-89.999, 179.999),
            (0.0, -180.0),
            (33.3, 66.6),
        ] {
            let e = PackedEntry::new(0, LatLon::new(lat, lon).expect("valid"), 0, None);
            let exact = e.position.to_unit();
            assert!(crate::geometry::dist2(exact, e.unit()).sqrt() <= UNIT_ERROR);
            assert!(e.chord2_lower(&exact) == 0.0);
            let mut node = PackedNode::EMPTY;
            node.add_entry(&e);
            assert!(node.contains(&exact));
        }
    }

    #[test]
    fn packing_makes_compact_leaves_and_full_runs() {
        // A 100 x 100 grid of points 0.001 degrees apart (~110 m) in Paris. Packed in row
        // order a leaf would span 16 points of a row (~1.7 km); packed well it is a small
        // block of the grid.
        let entries: Vec<PackedEntry> = (0..10_000u32)
            .map(|i| {
                let (row, col) = (f64::from(i / 100), f64::from(i % 100));
                entry(i, 48.8 + row * 0.001, 2.3 + col * 0.001, 0)
            })
            .collect();
        let tree = PackedTree::build(entries);
        let leaves = tree.levels[0].len();
        let mean_diagonal_m: f64 = tree.levels[0]
            .iter()
            .map(|n| {
                let d2: f64 = (0..3).map(|k| f64::from(n.hi[k] - n.lo[k]).powi(2)).sum();
                d2.sqrt() * crate::geometry::EARTH_RADIUS_M
            })
            .sum::<f64>()
            / leaves as f64;
        assert!(
            mean_diagonal_m < 900.0,
            "mean leaf diagonal {mean_diagonal_m} m"
        );
    }
}
