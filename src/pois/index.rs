//! [`PoiIndex`]: the set of POIs, owning both the records and their spatial index (the
//! collection as the unit, as in Tile38).
//!
//! Layout, chosen for memory and for the hot query path:
//! - records live in a slot vector addressed by a dense `u32`; deleted slots are reused;
//! - the external id maps to its slot through a `hashbrown::HashTable<u32>` hashed on the
//!   record's own id, so every id string is stored once (a `HashMap<String, u32>` would store
//!   it twice);
//! - categories are interned to a dense `u32`;
//! - the spatial index is trees over unit vectors: a [`PackedTree`] bulk-built over every
//!   POI at load (40 bytes a POI, category masks in its nodes for filtered queries), and a
//!   small rstar tree, the *delta*, for POIs written since. A write to a POI in the packed
//!   tree marks its entry dead there and puts the new one in the delta. When the delta and
//!   the dead entries reach an eighth of the POIs, the packed tree is due a rebuild over
//!   everything, which empties the delta, so queries mostly walk the compact tree. Writes
//!   do not rebuild by themselves: the engine builds the new trees under its read lock
//!   ([`PoiIndex::build_trees`]) and swaps them in under a short write lock;
//! - the rarest categories also get a packed tree of their own, as long as these hold at
//!   most an eighth of the POIs in all (5 bytes a POI). Masks prune well for common
//!   categories, but a query for a category that one POI in a thousand has would otherwise
//!   open a leaf per result (profiled: 3.3 times slower than its own tree).

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rstar::primitives::GeomWithData;
use rstar::{RStarInsertionStrategy, RTree, RTreeParams};

use super::Poi;
use super::packed::{PackedEntry, PackedTree};
use crate::geometry::LatLon;

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
fn entry_of(record: &PoiRecord, slot: u32) -> Entry {
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
fn packed_entry_of(record: &PoiRecord, slot: u32) -> PackedEntry {
    PackedEntry::new(slot, record.position, record.category, record.rating())
}

/// The rstar tree type of the delta.
pub(crate) type Tree = RTree<Entry, TreeParams>;

/// The fewest delta-plus-dead entries that trigger a rebuild of the packed tree (below it,
/// an eighth of a small index would rebuild on nearly every write).
const REBUILD_FLOOR: usize = 4096;

/// The most distinct categories an index holds; beyond it new categories are refused, so a
/// client cannot grow the category table without bound.
pub const MAX_CATEGORIES: usize = 65_536;

/// The index already holds `MAX_CATEGORIES` (65,536) categories and the write would add another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("category {0:?} would exceed the limit of {MAX_CATEGORIES} distinct categories")]
pub struct CategoryLimitError(pub String);

/// A stored POI in compact form (64 bytes). The id and the name share one allocation: a
/// query's results read both, and one string is one cache miss and one allocation where two
/// were two of each.
#[derive(Debug, Clone)]
pub(crate) struct PoiRecord {
    /// The id followed by the name.
    text: Box<str>,
    /// Where the id ends in `text`.
    id_len: u32,
    pub(crate) category: u32,
    pub(crate) position: LatLon,
    /// Sorted by key.
    pub(crate) tags: Box<[(Box<str>, Box<str>)]>,
    /// The rating, or NaN for none: an `Option<f64>` would take 16 bytes, and ratings are
    /// never NaN.
    rating: f64,
}

const _: () = assert!(size_of::<Option<PoiRecord>>() == 64);

/// A stored POI, borrowed from the index (what queries return).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoiRef<'a> {
    /// The id then the name, split when asked: splitting reads the string (to check the
    /// boundary), and a query that only ranks POIs should not touch their strings.
    text: &'a str,
    id_len: u32,
    position: LatLon,
    category: &'a str,
    tags: &'a [(Box<str>, Box<str>)],
    rating: Option<f64>,
}

impl<'a> PoiRef<'a> {
    /// External id.
    pub fn id(&self) -> &'a str {
        &self.text[..self.id_len as usize]
    }
    /// Where it is.
    pub fn position(&self) -> LatLon {
        self.position
    }
    /// Display name.
    pub fn name(&self) -> &'a str {
        &self.text[self.id_len as usize..]
    }
    /// Category.
    pub fn category(&self) -> &'a str {
        self.category
    }
    /// Tags, sorted by key.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        self.tags.iter().map(|(k, v)| (&**k, &**v))
    }
    /// Rating, if any.
    pub fn rating(&self) -> Option<f64> {
        self.rating
    }
    /// An owned copy.
    pub fn to_poi(&self) -> Poi {
        Poi {
            id: self.id().to_string(),
            position: self.position,
            name: self.name().to_string(),
            category: self.category.to_string(),
            tags: self
                .tags()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            rating: self.rating,
        }
    }
}

/// The POI collection and its trees.
///
/// Invariants:
/// - `by_id` holds exactly the slots of `records` that are `Some`, each under its record's id;
/// - every live record has exactly one entry, either live in `base` or in `delta`, built
///   from the record as it is now (`packed_entry_of`, `entry_of`); dead `base` entries
///   belong to no record;
/// - `free` lists exactly the `None` slots.
pub struct PoiIndex {
    pub(crate) records: Vec<Option<PoiRecord>>,
    free: Vec<u32>,
    by_id: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    pub(crate) category_names: Vec<Box<str>>,
    category_ids: HashTable<u32>,
    pub(crate) base: PackedTree,
    /// Packed trees of the rarest categories, as of the last build of `base`.
    pub(crate) rare: hashbrown::HashMap<u32, PackedTree, foldhash::fast::FixedState>,
    pub(crate) delta: Tree,
    /// See [`REBUILD_FLOOR`]; lowered by tests to exercise rebuilds on small indexes.
    rebuild_floor: usize,
    /// Counts writes, so that trees built from an older state are never installed.
    writes: u64,
}

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

impl Default for PoiIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for PoiIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoiIndex")
            .field("len", &self.len())
            .field("categories", &self.category_names.len())
            .finish_non_exhaustive()
    }
}

impl PoiIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            records: Vec::new(),
            free: Vec::new(),
            by_id: HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x5052_4f58_494d_4121),
            category_names: Vec::new(),
            category_ids: HashTable::new(),
            base: PackedTree::default(),
            rare: hashbrown::HashMap::default(),
            delta: Tree::new_with_params(),
            rebuild_floor: REBUILD_FLOOR,
            writes: 0,
        }
    }

    /// Builds an index from POIs in one pass, bulk-loading the trees (much faster than
    /// inserting one by one). A later POI with the same id replaces an earlier one.
    ///
    /// The records are stored first and the id table built once their number is known: a
    /// recovery streams POIs without a count, and growing the table as they came rehashed
    /// it ~23 times on 10M POIs, besides a lookup per POI before its insert (profiled: 21 %
    /// of a 10M-POI recovery).
    pub fn from_pois(pois: impl IntoIterator<Item = Poi>) -> Result<Self, CategoryLimitError> {
        let mut index = Self::new();
        let pois = pois.into_iter();
        index.records.reserve(pois.size_hint().0);
        for poi in pois {
            let category = index.intern_category(&poi.category)?;
            index.records.push(Some(PoiRecord::from_poi(poi, category)));
        }
        assert!(
            u32::try_from(index.records.len()).is_ok(),
            "fewer than 2^32 POIs"
        );
        index.index_ids();
        index.rebuild_trees();
        Ok(index)
    }

    /// Fills the empty id table from the records; of two records with one id, the later
    /// one stays and the earlier slot is freed.
    fn index_ids(&mut self) {
        let hasher = &self.hasher;
        self.by_id
            .reserve(self.records.len(), |_| unreachable!("the table is empty"));
        for slot in 0..self.records.len() {
            let records = &self.records;
            let Some(record) = &records[slot] else {
                continue;
            };
            let id = record.id();
            let entry = self.by_id.entry(
                hasher.hash_one(id),
                |&s| slot_has_id(records, s, id),
                |&s| hasher.hash_one(records[s as usize].as_ref().expect("live slot").id()),
            );
            let replaced = match entry {
                hashbrown::hash_table::Entry::Occupied(mut e) => {
                    Some(std::mem::replace(e.get_mut(), slot as u32))
                }
                hashbrown::hash_table::Entry::Vacant(e) => {
                    e.insert(slot as u32);
                    None
                }
            };
            if let Some(old) = replaced {
                self.records[old as usize] = None;
                self.free.push(old);
            }
        }
    }

    /// A copy of this index with `pois` upserted, its trees bulk-loaded afresh. Used for large
    /// batches, where one bulk load beats many single inserts and the copy lets readers keep
    /// using `self` meanwhile.
    pub fn with_upserts(
        &self,
        pois: impl IntoIterator<Item = Poi>,
    ) -> Result<Self, CategoryLimitError> {
        let mut index = Self {
            records: self.records.clone(),
            free: self.free.clone(),
            by_id: self.by_id.clone(),
            hasher: self.hasher.clone(),
            category_names: self.category_names.clone(),
            category_ids: self.category_ids.clone(),
            base: PackedTree::default(),
            rare: hashbrown::HashMap::default(),
            delta: Tree::new_with_params(),
            rebuild_floor: self.rebuild_floor,
            writes: self.writes + 1,
        };
        for poi in pois {
            index.store_record(poi)?;
        }
        index.rebuild_trees();
        Ok(index)
    }

    /// Number of POIs.
    pub fn len(&self) -> usize {
        self.records.len() - self.free.len()
    }

    /// Whether the index holds no POI.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The POI with this id.
    pub fn get(&self, id: &str) -> Option<Poi> {
        self.slot_of(id).map(|slot| self.poi_at(slot))
    }

    /// Inserts or replaces a POI. Returns `true` if it was new.
    pub fn upsert(&mut self, poi: Poi) -> Result<bool, CategoryLimitError> {
        let category = self.intern_category(&poi.category)?;
        let record = PoiRecord::from_poi(poi, category);
        let created = if let Some(slot) = self.slot_of(record.id()) {
            let old = self.records[slot as usize]
                .take()
                .expect("by_id points at live slots");
            self.unindex(slot, &old);
            self.records[slot as usize] = Some(record);
            self.insert_entry(slot);
            false
        } else {
            let slot = self.allocate(record);
            self.insert_entry(slot);
            true
        };
        self.writes += 1;
        Ok(created)
    }

    /// Removes a POI. Returns `true` if it existed.
    pub fn remove(&mut self, id: &str) -> bool {
        let hash = self.hasher.hash_one(id);
        let records = &self.records;
        let Ok(entry) = self
            .by_id
            .find_entry(hash, |&slot| slot_has_id(records, slot, id))
        else {
            return false;
        };
        let (slot, _) = entry.remove();
        let record = self.records[slot as usize]
            .take()
            .expect("by_id points at live slots");
        self.unindex(slot, &record);
        self.free.push(slot);
        self.writes += 1;
        true
    }

    /// Up to `max` POIs from slot `*next` on, advancing `*next` past them: lets a snapshot
    /// copy the index a chunk at a time under short read locks.
    pub fn chunk_from(&self, next: &mut usize, max: usize) -> Vec<Poi> {
        let mut out = Vec::with_capacity(max.min(4096));
        while *next < self.records.len() && out.len() < max {
            if self.records[*next].is_some() {
                out.push(self.poi_at(*next as u32));
            }
            *next += 1;
        }
        out
    }

    /// Every POI, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = Poi> + '_ {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_some())
            .map(|(slot, _)| self.poi_at(slot as u32))
    }

    /// Checks that storing `pois` would not exceed `MAX_CATEGORIES`, so that a batch can be
    /// refused before any of it is applied.
    pub fn check_categories(&self, pois: &[Poi]) -> Result<(), CategoryLimitError> {
        let mut unseen: Vec<&str> = Vec::new();
        for poi in pois {
            if self.category_id(&poi.category).is_none() && !unseen.contains(&poi.category.as_str())
            {
                if self.category_names.len() + unseen.len() >= MAX_CATEGORIES {
                    return Err(CategoryLimitError(poi.category.clone()));
                }
                unseen.push(&poi.category);
            }
        }
        Ok(())
    }

    /// The id of an interned category, if any POI ever had it.
    pub(crate) fn category_id(&self, name: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.category_ids
            .find(hash, |&c| &*self.category_names[c as usize] == name)
            .copied()
    }

    pub(crate) fn record(&self, slot: u32) -> &PoiRecord {
        self.records[slot as usize]
            .as_ref()
            .expect("tree entries point at live slots")
    }

    pub(crate) fn poi_at(&self, slot: u32) -> Poi {
        self.poi_ref(slot).to_poi()
    }

    /// The POI in `slot`, borrowed: what queries return, so that a response is written
    /// straight from the index without copying any string.
    pub(crate) fn poi_ref(&self, slot: u32) -> PoiRef<'_> {
        let r = self.record(slot);
        PoiRef {
            text: &r.text,
            id_len: r.id_len,
            position: r.position,
            category: &self.category_names[r.category as usize],
            tags: &r.tags,
            rating: r.rating(),
        }
    }

    fn slot_of(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.by_id
            .find(hash, |&slot| slot_has_id(&self.records, slot, id))
            .copied()
    }

    fn intern_category(&mut self, name: &str) -> Result<u32, CategoryLimitError> {
        if let Some(id) = self.category_id(name) {
            return Ok(id);
        }
        if self.category_names.len() >= MAX_CATEGORIES {
            return Err(CategoryLimitError(name.to_string()));
        }
        let id = u32::try_from(self.category_names.len()).expect("bounded by MAX_CATEGORIES");
        self.category_names.push(name.into());
        let names = &self.category_names;
        let hasher = &self.hasher;
        self.category_ids
            .insert_unique(hasher.hash_one(name), id, |&c| {
                hasher.hash_one(&*names[c as usize])
            });
        Ok(id)
    }

    /// Stores a record without touching the trees (for bulk builds).
    fn store_record(&mut self, poi: Poi) -> Result<(), CategoryLimitError> {
        let category = self.intern_category(&poi.category)?;
        let record = PoiRecord::from_poi(poi, category);
        match self.slot_of(record.id()) {
            Some(slot) => self.records[slot as usize] = Some(record),
            None => {
                self.allocate(record);
            }
        }
        Ok(())
    }

    fn allocate(&mut self, record: PoiRecord) -> u32 {
        let hash = self.hasher.hash_one(record.id());
        let slot = match self.free.pop() {
            Some(slot) => {
                self.records[slot as usize] = Some(record);
                slot
            }
            None => {
                let slot = u32::try_from(self.records.len()).expect("fewer than 2^32 POIs");
                self.records.push(Some(record));
                slot
            }
        };
        let records = &self.records;
        let hasher = &self.hasher;
        self.by_id.insert_unique(hash, slot, |&s| {
            hasher.hash_one(records[s as usize].as_ref().expect("live slot").id())
        });
        slot
    }

    fn insert_entry(&mut self, slot: u32) {
        let entry = entry_of(self.record(slot), slot);
        self.delta.insert(entry);
    }

    /// Takes the entry of `record` (in `slot`) out of whichever tree holds it.
    fn unindex(&mut self, slot: u32, record: &PoiRecord) {
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

    fn rebuild_trees(&mut self) {
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

fn slot_has_id(records: &[Option<PoiRecord>], slot: u32, id: &str) -> bool {
    records[slot as usize]
        .as_ref()
        .is_some_and(|r| r.id() == id)
}

impl PoiRecord {
    pub(crate) fn id(&self) -> &str {
        &self.text[..self.id_len as usize]
    }

    fn from_poi(poi: Poi, category: u32) -> Self {
        let id_len = u32::try_from(poi.id.len()).expect("ids are short");
        let mut text = poi.id;
        text.push_str(&poi.name);
        Self {
            text: text.into_boxed_str(),
            id_len,
            position: poi.position,
            category,
            tags: poi
                .tags
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
            rating: poi.rating.unwrap_or(f64::NAN),
        }
    }

    pub(crate) fn rating(&self) -> Option<f64> {
        Some(self.rating).filter(|r| !r.is_nan())
    }
}

#[cfg(test)]
mod tests {
    use super::super::packed::DEAD;
    use super::*;
    use std::collections::BTreeMap;

    fn poi(id: &str, lat: f64, lon: f64, category: &str) -> Poi {
        Poi::new(
            id.into(),
            lat,
            lon,
            format!("n{id}"),
            category.into(),
            BTreeMap::new(),
            None,
        )
        .expect("valid test POI")
    }

    fn assert_invariants(index: &PoiIndex) {
        assert_eq!(index.base.live() + index.delta.size(), index.len());
        let mut seen = vec![false; index.records.len()];
        for e in index.base.all_entries() {
            if e.slot == DEAD {
                continue;
            }
            assert!(!std::mem::replace(&mut seen[e.slot as usize], true));
            let expected = packed_entry_of(index.record(e.slot), e.slot);
            assert_eq!(
                (e.position, e.rating.to_bits(), e.category),
                (
                    expected.position,
                    expected.rating.to_bits(),
                    expected.category
                )
            );
        }
        for (category, tree) in &index.rare {
            let live: Vec<u32> = tree
                .all_entries()
                .iter()
                .map(|e| e.slot)
                .filter(|&s| s != DEAD)
                .collect();
            let mut want: Vec<u32> = index
                .base
                .all_entries()
                .iter()
                .filter(|e| e.slot != DEAD && e.category == *category)
                .map(|e| e.slot)
                .collect();
            let mut live = live;
            live.sort_unstable();
            want.sort_unstable();
            assert_eq!(live, want, "category {category}'s tree");
            assert_eq!(tree.live(), want.len());
        }
        for entry in index.delta.iter() {
            let slot = entry.data.slot;
            assert!(!std::mem::replace(&mut seen[slot as usize], true));
            assert_eq!(*entry, entry_of(index.record(slot), slot));
        }
        for (slot, record) in index.records.iter().enumerate() {
            assert_eq!(seen[slot], record.is_some());
            if let Some(r) = record {
                assert_eq!(index.slot_of(r.id()), Some(slot as u32));
            }
        }
    }

    #[test]
    fn upsert_replace_and_remove_keep_trees_and_ids_in_step() {
        let mut index = PoiIndex::new();
        assert!(
            index
                .upsert(poi("a", 1.0, 1.0, "cafe"))
                .expect("room for categories")
        );
        assert!(
            index
                .upsert(poi("b", 2.0, 2.0, "museum"))
                .expect("room for categories")
        );
        assert!(
            !index
                .upsert(poi("a", 3.0, 3.0, "museum"))
                .expect("room for categories")
        );
        assert_eq!(index.len(), 2);
        assert_eq!(
            index.get("a").map(|p| p.category),
            Some("museum".to_string())
        );
        assert_invariants(&index);
        assert!(index.remove("a"));
        assert!(!index.remove("a"));
        assert_eq!(index.get("a"), None);
        assert!(
            index
                .upsert(poi("c", 4.0, 4.0, "cafe"))
                .expect("room for categories")
        );
        assert_eq!(index.records.len(), 2, "the freed slot is reused");
        assert_invariants(&index);
    }

    #[test]
    fn writes_move_entries_between_the_trees_and_rebuilds_fold_them_back() {
        let pois: Vec<Poi> = (0..200)
            .map(|i| {
                poi(
                    &format!("p{i}"),
                    f64::from(i % 80),
                    f64::from(i) - 100.0,
                    "a",
                )
            })
            .collect();
        let mut index = PoiIndex::from_pois(pois).expect("few categories");
        index.set_rebuild_floor(30);
        assert_eq!((index.base.live(), index.delta.size()), (200, 0));
        // A moved POI leaves a dead entry in the packed tree and a live one in the delta.
        for i in 0..15 {
            index
                .upsert(poi(&format!("p{i}"), -10.0, f64::from(i), "b"))
                .expect("few categories");
            index.rebuild_if_due();
            assert_invariants(&index);
        }
        assert_eq!((index.base.live(), index.delta.size()), (185, 15));
        index
            .upsert(poi("p15", -10.0, 15.0, "b"))
            .expect("few categories");
        assert!(index.rebuild_due());
        // Trees built before a write are refused: they would miss it.
        let stale = index.build_trees();
        index
            .upsert(poi("p15", -10.0, 15.5, "b"))
            .expect("few categories");
        assert!(!index.install_trees(stale));
        assert_invariants(&index);
        let fresh = index.build_trees();
        assert!(index.install_trees(fresh));
        assert_eq!(
            (index.base.live(), index.delta.size()),
            (200, 0),
            "32 stale entries (16 dead, 16 new) rebuild the packed tree"
        );
        assert_invariants(&index);
        for i in 0..30 {
            index
                .upsert(poi(&format!("new{i}"), 5.0, f64::from(i), "a"))
                .expect("few categories");
            index.rebuild_if_due();
        }
        assert_eq!((index.base.live(), index.delta.size()), (200, 30));
        assert_invariants(&index);
        for i in 0..40 {
            assert!(index.remove(&format!("p{i}")));
            index.rebuild_if_due();
            assert_invariants(&index);
        }
        assert_eq!(index.len(), 190);
    }

    #[test]
    fn bulk_builds_match_incremental_ones() {
        let pois: Vec<Poi> = (0..500)
            .map(|i| {
                poi(
                    &format!("p{}", i % 400),
                    f64::from(i % 170) - 85.0,
                    f64::from(i % 360) - 180.0,
                    ["a", "b", "c"][i as usize % 3],
                )
            })
            .collect();
        let bulk = PoiIndex::from_pois(pois.clone()).expect("few categories");
        let mut incremental = PoiIndex::new();
        for p in pois.clone() {
            incremental.upsert(p).expect("few categories");
        }
        assert_invariants(&bulk);
        let mut a: Vec<Poi> = bulk.iter().collect();
        let mut b: Vec<Poi> = incremental.iter().collect();
        a.sort_by(|x, y| x.id.cmp(&y.id));
        b.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(a, b);
        let upserted = PoiIndex::new().with_upserts(pois).expect("few categories");
        assert_invariants(&upserted);
        assert_eq!(upserted.len(), 400);
    }
}
