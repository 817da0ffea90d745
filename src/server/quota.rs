//! Counted places per key, bounded: connections per client address, event streams per key
//! or traveller. A place is held by a [`QuotaSlot`] and given back when it is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;

/// At most `max` places per key.
#[derive(Debug)]
pub struct Quota<K> {
    max: usize,
    held: Mutex<HashMap<K, usize>>,
}

/// One place in a key's count; given back when dropped.
#[derive(Debug)]
pub struct QuotaSlot<K: Hash + Eq> {
    quota: Arc<Quota<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Quota<K> {
    /// At most `max` places per key.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The most places a key may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for `key`, unless it holds [`Quota::max`] already.
    pub fn take(self: &Arc<Self>, key: K) -> Option<QuotaSlot<K>> {
        let mut held = self.held.lock();
        let count = held.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(QuotaSlot {
            quota: self.clone(),
            key,
        })
    }
}

impl<K: Hash + Eq> QuotaSlot<K> {
    /// The key whose place this is.
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: Hash + Eq> Drop for QuotaSlot<K> {
    fn drop(&mut self) {
        let mut held = self.quota.held.lock();
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_max_places_and_gets_them_back_when_dropped() {
        let quota = Arc::new(Quota::new(2));
        let a1 = quota.take("a").expect("first");
        let _a2 = quota.take("a").expect("second");
        assert!(quota.take("a").is_none(), "the third is refused");
        let _b = quota.take("b").expect("another key is counted apart");
        drop(a1);
        assert!(
            quota.take("a").is_some(),
            "a place given back is free again"
        );
    }
}
