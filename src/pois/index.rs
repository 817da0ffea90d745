//! [`PoiIndex`]: the set of POIs, owning both the records and their spatial index (the
//! collection as the unit, as in Tile38).
//!
//! Layout, chosen for memory and for the hot query path:
//! - records live in a slot vector addressed by a dense `u32`; deleted slots are reused;
//! - the external id maps to its slot through a `hashbrown::HashTable<u32>` hashed on the
//!   record's own id, so every id string is stored once (a `HashMap<String, u32>` would store
//!   it twice);
//! - categories are interned to a dense `u32`;
//! - one R-tree over the unit vectors of all POIs, and one per category, so that a query
//!   filtered to a rare category walks only that category's points instead of every nearer
//!   POI. Each tree entry is 32 bytes (`[f64; 3]` and the slot).

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rstar::primitives::GeomWithData;
use rstar::{RStarInsertionStrategy, RTree, RTreeParams};

use super::Poi;
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

/// What a tree entry carries besides its unit vector: the slot, and the fields a query
/// needs to rank and filter a candidate (its exact position and its rating). With them a
/// query touches a record only for a POI it keeps; without them every candidate cost a
/// cache miss on the record vector, and on 1M POIs that miss was 40 % of a kNN query.
/// rstar stores each entry in a node-sized enum slot (72 bytes), so these fields cost no
/// memory: the entry is 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EntryData {
    pub(crate) slot: u32,
    pub(crate) position: LatLon,
    pub(crate) rating: Option<f64>,
}

/// An R-tree entry: a POI's unit vector, slot, position and rating.
pub(crate) type Entry = GeomWithData<[f64; 3], EntryData>;

/// The tree entry of the record in `slot`.
fn entry_of(record: &PoiRecord, slot: u32) -> Entry {
    Entry::new(
        record.position.to_unit(),
        EntryData {
            slot,
            position: record.position,
            rating: record.rating,
        },
    )
}
/// The R-tree type used for POIs.
pub(crate) type Tree = RTree<Entry, TreeParams>;

/// The most distinct categories an index holds; beyond it new categories are refused, so a
/// client cannot grow the category table without bound.
pub const MAX_CATEGORIES: usize = 65_536;

/// The index already holds [`MAX_CATEGORIES`] categories and the write would add another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("category {0:?} would exceed the limit of {MAX_CATEGORIES} distinct categories")]
pub struct CategoryLimitError(pub String);

/// A stored POI in compact form (72 bytes). The id and the name share one allocation: a
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
    pub(crate) rating: Option<f64>,
}

const _: () = assert!(size_of::<Option<PoiRecord>>() == 72);

/// A stored POI, borrowed from the index (see [`PoiIndex::poi_ref`]).
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

/// The POI collection and its R-trees.
///
/// Invariants:
/// - `by_id` holds exactly the slots of `records` that are `Some`, each under its record's id;
/// - `all` holds one entry per live record, `(record.position.to_unit(), slot)`, and
///   `by_category[c]` exactly the entries of `all` whose record has category `c`;
/// - `free` lists exactly the `None` slots.
pub struct PoiIndex {
    pub(crate) records: Vec<Option<PoiRecord>>,
    free: Vec<u32>,
    by_id: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    pub(crate) category_names: Vec<Box<str>>,
    category_ids: HashTable<u32>,
    pub(crate) all: Tree,
    pub(crate) by_category: Vec<Tree>,
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
            all: Tree::new_with_params(),
            by_category: Vec::new(),
        }
    }

    /// Builds an index from POIs in one pass, bulk-loading the trees (much faster than
    /// inserting one by one). A later POI with the same id replaces an earlier one.
    pub fn from_pois(pois: impl IntoIterator<Item = Poi>) -> Result<Self, CategoryLimitError> {
        let mut index = Self::new();
        let pois = pois.into_iter();
        // Sized once: growing the id table rehashed it ~20 times on a 1M-POI recovery.
        let expected = pois.size_hint().0;
        index.records.reserve(expected);
        index
            .by_id
            .reserve(expected, |_| unreachable!("the table is empty"));
        for poi in pois {
            index.store_record(poi)?;
        }
        index.rebuild_trees();
        Ok(index)
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
            all: Tree::new_with_params(),
            by_category: Vec::new(),
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
        if let Some(slot) = self.slot_of(record.id()) {
            let old = self.records[slot as usize]
                .take()
                .expect("by_id points at live slots");
            let old_entry = entry_of(&old, slot);
            self.all.remove(&old_entry);
            self.by_category[old.category as usize].remove(&old_entry);
            self.records[slot as usize] = Some(record);
            self.insert_entry(slot);
            Ok(false)
        } else {
            let slot = self.allocate(record);
            self.insert_entry(slot);
            Ok(true)
        }
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
        let tree_entry = entry_of(&record, slot);
        self.all.remove(&tree_entry);
        self.by_category[record.category as usize].remove(&tree_entry);
        self.free.push(slot);
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

    /// Checks that storing `pois` would not exceed [`MAX_CATEGORIES`], so that a batch can be
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
            rating: r.rating,
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
        self.by_category.push(Tree::new_with_params());
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
        let record = self.record(slot);
        let (entry, category) = (entry_of(record, slot), record.category);
        self.all.insert(entry);
        self.by_category[category as usize].insert(entry);
    }

    fn rebuild_trees(&mut self) {
        let mut per_category: Vec<Vec<Entry>> = vec![Vec::new(); self.category_names.len()];
        let mut all = Vec::with_capacity(self.len());
        for (slot, record) in self.records.iter().enumerate() {
            if let Some(r) = record {
                let entry = entry_of(r, slot as u32);
                per_category[r.category as usize].push(entry);
                all.push(entry);
            }
        }
        // The tree of all POIs and the category trees are independent: build them side by
        // side (each bulk load sorts its entries; on 1M POIs this halves the build).
        let (all, by_category) = rayon::join(
            || Tree::bulk_load_with_params(all),
            || {
                per_category
                    .into_iter()
                    .map(Tree::bulk_load_with_params)
                    .collect()
            },
        );
        self.all = all;
        self.by_category = by_category;
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
            rating: poi.rating,
        }
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(index.all.size(), index.len());
        let per_category: usize = index.by_category.iter().map(Tree::size).sum();
        assert_eq!(per_category, index.len());
        for entry in index.all.iter() {
            let r = index.record(entry.data.slot);
            assert_eq!(*entry.geom(), r.position.to_unit());
            assert_eq!(index.slot_of(r.id()), Some(entry.data.slot));
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
