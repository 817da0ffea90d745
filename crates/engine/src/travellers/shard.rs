//! Storage of traveller records: [`SHARDS`] shards, each a slab of fixed-size [`Record`]
//! slots in chunks with an id table of slot numbers, and the 4-byte [`Handle`]s that name a
//! slot from outside its shard (the cell index holds handles, not ids).

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::record::Record;

/// Shards of records (and of each cell map): enough that a sweep holding one shard briefly
/// stalls few updates, and that 16 cores rarely meet on one lock.
pub(super) const SHARDS: usize = 1 << SHARD_BITS;

/// Where a traveller's record lives: its shard in the top [`SHARD_BITS`] bits, its slot in
/// that shard below. Cell buckets hold handles (4 bytes) rather than ids.
pub(super) type Handle = u32;

/// Reports of one shard whose records [`Shard::warm`] reads together.
pub(super) const WARM_GROUP: usize = 16;

/// log2 of the number of shards.
pub(super) const SHARD_BITS: u32 = 8;
/// Slots per shard at most (2^24: 4 billion travellers in all).
const SLOT_BITS: u32 = 32 - SHARD_BITS;
/// Slots are allocated this many at a time, so a shard never holds more than one partly
/// used chunk (a doubling `Vec` would leave a quarter of the records unused on average).
const CHUNK: usize = 256;

/// The handle of `slot` in `shard`.
pub(super) fn handle(shard: usize, slot: u32) -> Handle {
    ((shard as u32) << SLOT_BITS) | slot
}

/// The shard and slot of a handle.
pub(super) fn split(handle: Handle) -> (usize, u32) {
    (
        (handle >> SLOT_BITS) as usize,
        handle & ((1 << SLOT_BITS) - 1),
    )
}

/// One shard: records in chunked slots and an id table of slot numbers.
///
/// Invariants: `by_id` holds exactly the slots whose id is non-empty, each hashed by its id;
/// `free` lists exactly the other slots below `used`.
#[derive(Default)]
pub(super) struct Shard {
    pub(super) by_id: HashTable<u32>,
    chunks: Vec<Box<[Record]>>,
    /// Slots handed out so far (live or free).
    pub(super) used: u32,
    free: Vec<u32>,
}

impl Shard {
    pub(super) fn record(&self, slot: u32) -> &Record {
        &self.chunks[slot as usize / CHUNK][slot as usize % CHUNK]
    }

    pub(super) fn record_mut(&mut self, slot: u32) -> &mut Record {
        &mut self.chunks[slot as usize / CHUNK][slot as usize % CHUNK]
    }

    /// Reads the records that the ids hashing to `hashes` (the first [`WARM_GROUP`]) may
    /// be, and their trails, in stages: each stage's loads do not wait for each other, so
    /// that the lookups and changes after find them in the cache.
    pub(super) fn warm(&self, hashes: impl Iterator<Item = u64>) {
        let mut records: [Option<&Record>; WARM_GROUP] = [None; WARM_GROUP];
        for (record, hash) in records.iter_mut().zip(hashes) {
            *record = self.by_id.iter_hash(hash).next().map(|&s| self.record(s));
        }
        let mut seen = 0i64;
        for record in records.iter().flatten() {
            seen = seen.wrapping_add(record.ts);
        }
        for record in records.iter().flatten() {
            seen = seen.wrapping_add(record.trail.len() as i64);
        }
        std::hint::black_box(seen);
    }

    pub(super) fn find(&self, hash: u64, id: &str) -> Option<u32> {
        self.by_id.find(hash, |&s| self.record(s).id == id).copied()
    }

    /// A fresh slot holding `id` (which must be absent).
    pub(super) fn insert(&mut self, hash: u64, id: &str, hasher: &RandomState) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                if self.used as usize == self.chunks.len() * CHUNK {
                    self.chunks
                        .push((0..CHUNK).map(|_| Record::default()).collect());
                }
                self.used += 1;
                assert!(self.used < 1 << SLOT_BITS, "too many travellers in a shard");
                self.used - 1
            }
        };
        *self.record_mut(slot) = Record::new(id);
        let chunks = &self.chunks;
        self.by_id.insert_unique(hash, slot, |&s| {
            hasher.hash_one(chunks[s as usize / CHUNK][s as usize % CHUNK].id.as_str())
        });
        slot
    }

    /// Frees `slot` (whose id hashes to `hash`).
    pub(super) fn remove(&mut self, hash: u64, slot: u32) {
        if let Ok(entry) = self.by_id.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        *self.record_mut(slot) = Record::default();
        self.free.push(slot);
    }

    pub(super) fn live_slots(&self) -> impl Iterator<Item = (u32, &Record)> {
        (0..self.used)
            .map(|s| (s, self.record(s)))
            .filter(|(_, slot)| !slot.id.is_empty())
    }
}
