//! [`TripTable`]: every trip as kept in memory, found by its id and by its traveller (each
//! traveller's trips in the order they start), laid out to be small.
//!
//! A node keeps a trip for each of millions of travellers, so the layout is written by hand
//! rather than as maps of strings: the trips sit in one vector of slots, and two hash
//! tables hold slot numbers, hashed by the strings inside the entries. A trip's id, its
//! traveller's id and its title share one allocation. Measured with a million trips
//! (`scripts/trips-bench.sh`, the RSS a trip adds): two `HashMap`s keyed by `Arc<str>`
//! (an entry behind a `Box`, a list of windows per traveller) took 316 bytes a trip; this
//! layout takes the figure in `docs/performance.md`. The hashes are seeded at random
//! (`foldhash`), since ids come from callers.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

/// A slot number in the table.
type Slot = u32;

/// Reports looked up together ([`TripTable::holding_each`]).
const LOOKUP_GROUP: usize = 16;

/// One trip as kept.
#[derive(Debug, Clone)]
pub(super) struct Entry<A> {
    /// The trip's id, then its traveller's id, then its title.
    text: Box<str>,
    /// The id's length (ids are at most [`crate::ids::MAX_ID_BYTES`] bytes).
    id_len: u8,
    /// The traveller's id's length.
    traveller_len: u8,
    pub(super) started_at: i64,
    pub(super) ended_at: Option<i64>,
    /// What most trips leave empty, behind one pointer.
    pub(super) extra: Option<Box<A>>,
}

impl<A> Entry<A> {
    /// An entry of ids of at most 255 bytes each.
    pub(super) fn new(
        id: &str,
        traveller: &str,
        title: &str,
        started_at: i64,
        ended_at: Option<i64>,
        extra: Option<Box<A>>,
    ) -> Self {
        let id_len = u8::try_from(id.len()).expect("ids are checked to be short");
        let traveller_len = u8::try_from(traveller.len()).expect("ids are checked to be short");
        let mut text = String::with_capacity(id.len() + traveller.len() + title.len());
        text.push_str(id);
        text.push_str(traveller);
        text.push_str(title);
        Self {
            text: text.into_boxed_str(),
            id_len,
            traveller_len,
            started_at,
            ended_at,
            extra,
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.text[..usize::from(self.id_len)]
    }

    pub(super) fn traveller(&self) -> &str {
        let from = usize::from(self.id_len);
        &self.text[from..from + usize::from(self.traveller_len)]
    }

    pub(super) fn title(&self) -> &str {
        &self.text[usize::from(self.id_len) + usize::from(self.traveller_len)..]
    }

    /// The last instant its route holds (`i64::MAX` while it goes on).
    pub(super) fn until(&self) -> i64 {
        self.ended_at.unwrap_or(i64::MAX)
    }
}

/// A traveller's trips: one slot, or a list of slots in [`TripTable::lists`].
#[derive(Debug, Clone, Copy)]
enum Listed {
    One(Slot),
    Many(u32),
}

/// Every trip, by id and by traveller.
///
/// Invariants: `by_id` holds each occupied slot once, hashed by its entry's id;
/// `by_traveller` holds each traveller with trips once, hashed by its id, its slots sorted
/// by `started_at` (a [`Listed::Many`] list has two or more); free slots and lists are in
/// `free` and `free_lists`.
#[derive(Debug, Clone)]
pub(super) struct TripTable<A> {
    slots: Vec<Option<Entry<A>>>,
    free: Vec<Slot>,
    lists: Vec<Vec<Slot>>,
    free_lists: Vec<u32>,
    by_id: HashTable<Slot>,
    by_traveller: HashTable<Listed>,
    hasher: RandomState,
}

impl<A> Default for TripTable<A> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            lists: Vec::new(),
            free_lists: Vec::new(),
            by_id: HashTable::new(),
            by_traveller: HashTable::new(),
            hasher: RandomState::default(),
        }
    }
}

impl<A> TripTable<A> {
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    fn entry(&self, slot: Slot) -> &Entry<A> {
        self.slots[slot as usize]
            .as_ref()
            .expect("the indexes hold occupied slots")
    }

    fn slot_of(&self, id: &str) -> Option<Slot> {
        let hash = self.hasher.hash_one(id);
        self.by_id
            .find(hash, |&s| self.entry(s).id() == id)
            .copied()
    }

    fn traveller_hash(&self, traveller: &str) -> u64 {
        self.hasher.hash_one(traveller)
    }

    /// The traveller's trips' slots, in start order (borrowed from where they are kept).
    fn slots_of(&self, traveller: &str) -> &[Slot] {
        self.slots_hashed(traveller, self.traveller_hash(traveller))
    }

    /// [`TripTable::slots_of`], given the traveller's hash.
    fn slots_hashed(&self, traveller: &str, hash: u64) -> &[Slot] {
        let found = self.by_traveller.find(hash, |l| {
            self.entry(self.first_of(l)).traveller() == traveller
        });
        match found {
            None => &[],
            Some(Listed::One(slot)) => std::slice::from_ref(slot),
            Some(Listed::Many(list)) => &self.lists[*list as usize],
        }
    }

    fn first_of(&self, listed: &Listed) -> Slot {
        match listed {
            Listed::One(slot) => *slot,
            Listed::Many(list) => self.lists[*list as usize][0],
        }
    }

    /// The trip `id`.
    pub(super) fn get(&self, id: &str) -> Option<&Entry<A>> {
        self.slot_of(id).map(|s| self.entry(s))
    }

    /// The trip `id`, to change anything but its id, traveller and start.
    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut Entry<A>> {
        let slot = self.slot_of(id)?;
        self.slots[slot as usize].as_mut()
    }

    /// `traveller`'s trips, in the order they start.
    pub(super) fn of_traveller(
        &self,
        traveller: &str,
    ) -> impl DoubleEndedIterator<Item = &Entry<A>> + ExactSizeIterator {
        self.slots_of(traveller).iter().map(|&s| self.entry(s))
    }

    /// Each of `reports`' traveller's trip whose window holds its `ts`, if any, with the
    /// report's index, for a batch's reports in the order given.
    ///
    /// Each lookup misses the cache three or four times in a row (the table's bucket, the
    /// entry, the entry's text), and one at a time they took a fifth of the request workers'
    /// time in the trips workload. So a group of reports is looked up in stages: the
    /// buckets of all of them, then their entries read, then their texts, and only then
    /// each trip found, so that the misses of a group overlap: 0.34 µs a report one at a
    /// time, 0.14 in groups of 16 (`cargo bench --bench trip_lookup`, a million trips,
    /// medians of 3; groups of 8 and 32 were slower).
    pub(super) fn holding_each<'a, 't>(
        &'t self,
        reports: impl IntoIterator<Item = (&'a str, i64)>,
        mut found: impl FnMut(usize, &'t Entry<A>),
    ) {
        let mut group: Vec<(&str, i64, u64)> = Vec::with_capacity(LOOKUP_GROUP);
        let mut first = 0;
        let mut reports = reports.into_iter().peekable();
        while reports.peek().is_some() {
            group.clear();
            group.extend(
                reports
                    .by_ref()
                    .take(LOOKUP_GROUP)
                    .map(|(traveller, ts)| (traveller, ts, self.traveller_hash(traveller))),
            );
            self.warm(&group);
            for (i, &(traveller, ts, hash)) in group.iter().enumerate() {
                if let Some(entry) = self.holding_hashed(traveller, hash, ts) {
                    found(first + i, entry);
                }
            }
            first += group.len();
        }
    }

    /// Reads, for each of `group`'s travellers, the first trip its hash may be, and then
    /// that trip's text, so that the lookups after find them in the cache: the loads of one
    /// stage do not wait for each other.
    fn warm(&self, group: &[(&str, i64, u64)]) {
        let mut entries: [Option<&Entry<A>>; LOOKUP_GROUP] = [None; LOOKUP_GROUP];
        for (slot, &(_, _, hash)) in entries.iter_mut().zip(group) {
            *slot = self
                .by_traveller
                .iter_hash(hash)
                .next()
                .and_then(|l| self.slots[self.first_of(l) as usize].as_ref());
        }
        let mut seen = 0u64;
        for entry in entries.iter().flatten() {
            seen = seen.wrapping_add(entry.text.len() as u64);
        }
        for entry in entries.iter().flatten() {
            seen = seen.wrapping_add(u64::from(
                entry.text.as_bytes().first().copied().unwrap_or(0),
            ));
        }
        std::hint::black_box(seen);
    }

    /// The trip of `traveller` (whose hash is `hash`) whose window holds `ts`, if any
    /// (windows do not overlap).
    fn holding_hashed(&self, traveller: &str, hash: u64, ts: i64) -> Option<&Entry<A>> {
        let slots = self.slots_hashed(traveller, hash);
        let after = slots.partition_point(|&s| self.entry(s).started_at <= ts);
        let entry = self.entry(*slots.get(after.checked_sub(1)?)?);
        (ts <= entry.until()).then_some(entry)
    }

    /// Every trip, in no order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry<A>> {
        self.slots.iter().flatten()
    }

    /// Adds a trip whose id is not in the table.
    pub(super) fn insert(&mut self, entry: Entry<A>) {
        debug_assert!(self.slot_of(entry.id()).is_none());
        let id_hash = self.hasher.hash_one(entry.id());
        let traveller_hash = self.traveller_hash(entry.traveller());
        let started_at = entry.started_at;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(entry);
                slot
            }
            None => {
                let slot = Slot::try_from(self.slots.len()).expect("fewer than 2^32 trips");
                self.slots.push(Some(entry));
                slot
            }
        };
        let Self {
            slots,
            lists,
            free_lists,
            by_id,
            by_traveller,
            hasher,
            ..
        } = self;
        let entry_at = |s: Slot| slots[s as usize].as_ref().expect("occupied");
        by_id.insert_unique(id_hash, slot, |&s| hasher.hash_one(entry_at(s).id()));
        let traveller = entry_at(slot).traveller();
        let first = |l: &Listed| match l {
            Listed::One(s) => *s,
            Listed::Many(list) => lists[*list as usize][0],
        };
        let found = by_traveller.find_mut(traveller_hash, |l| {
            entry_at(first(l)).traveller() == traveller
        });
        match found {
            None => {
                by_traveller.insert_unique(traveller_hash, Listed::One(slot), |l| {
                    hasher.hash_one(entry_at(first(l)).traveller())
                });
            }
            Some(listed) => {
                let list = match *listed {
                    Listed::One(other) => {
                        let list = match free_lists.pop() {
                            Some(list) => list,
                            None => {
                                lists.push(Vec::new());
                                u32::try_from(lists.len() - 1).expect("fewer than 2^32 lists")
                            }
                        };
                        lists[list as usize] = vec![other];
                        *listed = Listed::Many(list);
                        list
                    }
                    Listed::Many(list) => list,
                };
                let list = &mut lists[list as usize];
                let at = list.partition_point(|&s| entry_at(s).started_at <= started_at);
                list.insert(at, slot);
            }
        }
    }

    /// Takes the trip `id` out.
    pub(super) fn remove(&mut self, id: &str) -> Option<Entry<A>> {
        let id_hash = self.hasher.hash_one(id);
        let Self {
            slots,
            lists,
            free,
            free_lists,
            by_id,
            by_traveller,
            hasher,
        } = self;
        let slot = by_id
            .find_entry(id_hash, |&s| {
                slots[s as usize].as_ref().expect("occupied").id() == id
            })
            .ok()?
            .remove()
            .0;
        let entry = slots[slot as usize].take().expect("occupied");
        free.push(slot);
        let traveller = entry.traveller();
        let traveller_hash = hasher.hash_one(traveller);
        let first = |l: &Listed| match l {
            Listed::One(s) => *s,
            Listed::Many(list) => lists[*list as usize][0],
        };
        let found = by_traveller.find_entry(traveller_hash, |l| {
            let s = first(l);
            // The removed slot is empty now: it is this traveller's if it is the one.
            s == slot || slots[s as usize].as_ref().expect("occupied").traveller() == traveller
        });
        let Ok(found) = found else {
            unreachable!("a trip's traveller lists it");
        };
        match *found.get() {
            Listed::One(_) => {
                found.remove();
            }
            Listed::Many(list) => {
                let kept = &mut lists[list as usize];
                kept.retain(|&s| s != slot);
                if let [only] = kept[..] {
                    kept.clear();
                    kept.shrink_to_fit();
                    free_lists.push(list);
                    let mut found = found;
                    *found.get_mut() = Listed::One(only);
                }
            }
        }
        Some(entry)
    }

    /// Forgets every trip.
    #[cfg(test)]
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }
}
