//! [`PoiIndex`]: the set of POIs, owning both the records and their spatial index (the
//! collection as the unit, as in Tile38).
//!
//! Files: the collection and its writes are here; [`record`] is a stored POI and its
//! borrowed view; [`trees`] holds what each tree keeps for a record and rebuilds the
//! packed trees.
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

mod record;
#[cfg(test)]
mod tests;
mod trees;

use std::hash::BuildHasher;

use hashbrown::HashTable;

pub(crate) use record::PoiRecord;
pub use record::PoiRef;
use record::slot_has_id;
pub use trees::PackedTrees;
use trees::REBUILD_FLOOR;
pub(crate) use trees::{Entry, EntryData, Tree};

use super::Poi;
use super::packed::PackedTree;

/// The most distinct categories an index holds; beyond it new categories are refused, so a
/// client cannot grow the category table without bound.
pub const MAX_CATEGORIES: usize = 65_536;

/// The index already holds `MAX_CATEGORIES` (65,536) categories and the write would add another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("category {0:?} would exceed the limit of {MAX_CATEGORIES} distinct categories")]
pub struct CategoryLimitError(pub String);

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

    /// The categories the POIs hold now, each with how many POIs have it, most common
    /// first (ties by name). A scan of the records: ~5 ms a million POIs, for an occasional
    /// listing (the viewer's form), not for a query path.
    pub fn category_counts(&self) -> Vec<(&str, u64)> {
        let mut counts = vec![0u64; self.category_names.len()];
        for record in self.records.iter().flatten() {
            counts[record.category as usize] += 1;
        }
        let mut held: Vec<(&str, u64)> = counts
            .into_iter()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .map(|(c, n)| (&*self.category_names[c], n))
            .collect();
        held.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        held
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
        r.view(&self.category_names[r.category as usize])
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
}
