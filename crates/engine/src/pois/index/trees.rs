//! The index's trees: the entry each keeps for a record (the delta's rstar entries carry
//! what a query ranks and filters by), and when and how the packed trees are rebuilt
//! beside the live ones.

use rstar::primitives::GeomWithData;
use rstar::{RStarInsertionStrategy, RTree, RTreeParams};

use super::{PoiIndex, PoiRecord};
use crate::geometry::LatLon;
use crate::pois::packed::{PackedEntry, PackedTree};

/// Node sizes of the R-trees. Larger nodes than rstar's default (6) make shallower trees
/// whose nodes fill cache lines, which is faster for point queries on millions of entries.
pub(crate) struct TreeParams;

impl RTreeParams for TreeParams {
    const MIN_SIZE: usize = 6;
    const MAX_SIZE: usize = 16;
    const REINSERTION_COUNT: usize = 4;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// What a delta entry carries besides its unit vector: the slot, and the fields a query
/// needs to rank and filter a candidate (its category, exact position and rating). With
/// them a query touches a record only for a POI it keeps; without them every candidate cost
/// a cache miss on the record vector (40 % of a kNN query on 1M POIs, profiled). rstar
/// stores each entry in a node-sized enum slot (72 bytes), so these fields cost no memory:
/// the entry is 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EntryData {
    pub(crate) slot: u32,
    pub(crate) category: u32,
    pub(crate) position: LatLon,
    pub(crate) rating: Option<f64>,
}

/// A delta entry: a POI's unit vector, slot, category, position and rating.
pub(crate) type Entry = GeomWithData<[f64; 3], EntryData>;

/// The delta entry of the record in `slot`.
pub(super) fn entry_of(record: &PoiRecord, slot: u32) -> Entry {
    Entry::new(
        record.position.to_unit(),
        EntryData {
            slot,
            category: record.category,
            position: record.position,
            rating: record.rating(),
        },
    )
}

/// The packed-tree entry of the record in `slot`.
pub(super) fn packed_entry_of(record: &PoiRecord, slot: u32) -> PackedEntry {
    PackedEntry::new(slot, record.position, record.category, record.rating())
}

/// The rstar tree type of the delta.
pub(crate) type Tree = RTree<Entry, TreeParams>;

/// The fewest delta-plus-dead entries that trigger a rebuild of the packed tree (below it,
/// an eighth of a small index would rebuild on nearly every write).
pub(super) const REBUILD_FLOOR: usize = 4096;

/// Packed trees built beside an index (see [`PoiIndex::build_trees`]).
pub struct PackedTrees {
    base: PackedTree,
    rare: hashbrown::HashMap<u32, PackedTree, foldhash::fast::FixedState>,
    writes: u64,
}

impl std::fmt::Debug for PackedTrees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedTrees")
            .field("entries", &self.base.all_entries().len())
            .field("rare_categories", &self.rare.len())
            .finish_non_exhaustive()
    }
}

impl PoiIndex {
    pub(super) fn insert_entry(&mut self, slot: u32) {
        let entry = entry_of(self.record(slot), slot);
        self.delta.insert(entry);
    }

    /// Takes the entry of `record` (in `slot`) out of whichever tree holds it.
    pub(super) fn unindex(&mut self, slot: u32, record: &PoiRecord) {
        if self.delta.remove(&entry_of(record, slot)).is_none() {
            let found = self.base.kill(slot, record.position);
            debug_assert!(found, "every live record has an entry");
            if let Some(tree) = self.rare.get_mut(&record.category) {
                let found = tree.kill(slot, record.position);
                debug_assert!(found, "a rare category's tree has its POIs");
            }
        }
    }

    /// Whether the packed trees are due a rebuild: once the delta and the dead entries reach
    /// an eighth of the index (and at least the floor). Each rebuild costs a sort of every
    /// POI, so the eighth amortises it to a few sort steps per write, and keeps queries
    /// walking mostly the compact tree.
    pub fn rebuild_due(&self) -> bool {
        let stale = self.delta.size() + self.base.dead();
        stale > self.rebuild_floor.max(self.len() / 8)
    }

    /// Rebuilds the packed trees in place if they are due.
    pub fn rebuild_if_due(&mut self) {
        if self.rebuild_due() {
            self.rebuild_trees();
        }
    }

    /// Builds packed trees over the records as they are, without changing the index: the
    /// caller (the engine) builds them under a read lock, so queries go on meanwhile, and
    /// installs them with [`PoiIndex::install_trees`] under a short write lock.
    pub fn build_trees(&self) -> PackedTrees {
        let entries: Vec<PackedEntry> = self
            .records
            .iter()
            .enumerate()
            .filter_map(|(slot, r)| r.as_ref().map(|r| packed_entry_of(r, slot as u32)))
            .collect();
        // The rarest categories, while they hold an eighth of the POIs at most.
        let mut counts = vec![0usize; self.category_names.len()];
        for e in &entries {
            counts[e.category as usize] += 1;
        }
        let mut by_count: Vec<u32> = (0..counts.len() as u32)
            .filter(|&c| counts[c as usize] > 0)
            .collect();
        by_count.sort_unstable_by_key(|&c| counts[c as usize]);
        let mut budget = entries.len() / 8;
        let mut rare = vec![false; counts.len()];
        for c in by_count {
            let Some(left) = budget.checked_sub(counts[c as usize]) else {
                break;
            };
            budget = left;
            rare[c as usize] = true;
        }
        let mut per_rare: hashbrown::HashMap<u32, Vec<PackedEntry>, foldhash::fast::FixedState> =
            Default::default();
        for e in entries.iter().filter(|e| rare[e.category as usize]) {
            per_rare.entry(e.category).or_insert_with(Vec::new).push(*e);
        }
        let (base, rare) = rayon::join(
            || PackedTree::build(entries),
            || {
                per_rare
                    .into_iter()
                    .map(|(c, entries)| (c, PackedTree::build(entries)))
                    .collect()
            },
        );
        PackedTrees {
            base,
            rare,
            writes: self.writes,
        }
    }

    /// Puts in trees from [`PoiIndex::build_trees`] and empties the delta. Returns `false`,
    /// changing nothing, if the index was written since they were built (they would miss
    /// that write).
    pub fn install_trees(&mut self, trees: PackedTrees) -> bool {
        if trees.writes != self.writes {
            return false;
        }
        self.base = trees.base;
        self.rare = trees.rare;
        self.delta = Tree::new_with_params();
        true
    }

    pub(super) fn rebuild_trees(&mut self) {
        let trees = self.build_trees();
        let installed = self.install_trees(trees);
        debug_assert!(installed, "nothing wrote in between");
    }

    /// Lowers the rebuild floor, so that tests see rebuilds on small indexes.
    #[cfg(test)]
    pub(crate) fn set_rebuild_floor(&mut self, floor: usize) {
        self.rebuild_floor = floor;
    }
}
