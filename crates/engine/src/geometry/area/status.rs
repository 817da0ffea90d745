//! [`Status`]: the sweep's ordered set of active segments, a treap over an arena with parent
//! links, so that a segment is inserted by comparing it with those in the set, and removed
//! and asked for its neighbours by its own index, without comparing anything.
//!
//! Written here because the standard ordered maps (`BTreeMap`, `BTreeSet`) find an entry
//! only by comparing keys, and a segment's place in the sweep can only be compared at the
//! moment it is inserted (segments are ordered by where they cross the sweep line, which
//! moves). Priorities are drawn at random per sweep, so no input can make the tree deep:
//! an expected O(log n) per operation.

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    left: u32,
    right: u32,
    parent: u32,
    priority: u32,
}

/// An ordered set of the items `0..n`, each in it at most once.
#[derive(Debug)]
pub(super) struct Status {
    nodes: Vec<Node>,
    root: u32,
}

impl Status {
    /// An empty set for items `0..n`, with priorities drawn from `seed`.
    pub(super) fn new(n: usize, seed: u64) -> Self {
        let mut state = seed | 1;
        let nodes = (0..n)
            .map(|_| {
                // xorshift64*: fast, and the seed is drawn per sweep.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let priority = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32;
                Node {
                    left: NIL,
                    right: NIL,
                    parent: NIL,
                    priority,
                }
            })
            .collect();
        Self { nodes, root: NIL }
    }

    /// Inserts `item` where `place` says: `place(other)` is `Less` if `item` goes before
    /// `other`, `Greater` if after. `Equal` stops the insertion and gives `other` back: the
    /// two cannot be ordered (the caller's conflict).
    pub(super) fn insert(
        &mut self,
        item: u32,
        mut place: impl FnMut(u32) -> std::cmp::Ordering,
    ) -> Result<(), u32> {
        let mut parent = NIL;
        let mut at = self.root;
        let mut left = false;
        while at != NIL {
            parent = at;
            match place(at) {
                std::cmp::Ordering::Less => {
                    left = true;
                    at = self.nodes[at as usize].left;
                }
                std::cmp::Ordering::Greater => {
                    left = false;
                    at = self.nodes[at as usize].right;
                }
                std::cmp::Ordering::Equal => return Err(at),
            }
        }
        let node = &mut self.nodes[item as usize];
        node.left = NIL;
        node.right = NIL;
        node.parent = parent;
        if parent == NIL {
            self.root = item;
        } else if left {
            self.nodes[parent as usize].left = item;
        } else {
            self.nodes[parent as usize].right = item;
        }
        // Up while its priority beats its parent's.
        while let Some(p) = self.parent(item)
            && self.nodes[item as usize].priority > self.nodes[p as usize].priority
        {
            self.rotate_up(item);
        }
        Ok(())
    }

    /// Removes `item` (it is in the set).
    pub(super) fn remove(&mut self, item: u32) {
        // Down until it is a leaf, past its child of higher priority.
        loop {
            let Node { left, right, .. } = self.nodes[item as usize];
            let child = match (left, right) {
                (NIL, NIL) => break,
                (l, NIL) => l,
                (NIL, r) => r,
                (l, r) if self.nodes[l as usize].priority > self.nodes[r as usize].priority => l,
                (_, r) => r,
            };
            self.rotate_up(child);
        }
        match self.parent(item) {
            None => self.root = NIL,
            Some(p) => {
                let parent = &mut self.nodes[p as usize];
                if parent.left == item {
                    parent.left = NIL;
                } else {
                    parent.right = NIL;
                }
            }
        }
        self.nodes[item as usize].parent = NIL;
    }

    /// The item just before `item`.
    pub(super) fn before(&self, item: u32) -> Option<u32> {
        let node = self.nodes[item as usize];
        if node.left != NIL {
            let mut at = node.left;
            while self.nodes[at as usize].right != NIL {
                at = self.nodes[at as usize].right;
            }
            return Some(at);
        }
        let mut at = item;
        while let Some(p) = self.parent(at) {
            if self.nodes[p as usize].right == at {
                return Some(p);
            }
            at = p;
        }
        None
    }

    /// The item just after `item`.
    pub(super) fn after(&self, item: u32) -> Option<u32> {
        let node = self.nodes[item as usize];
        if node.right != NIL {
            let mut at = node.right;
            while self.nodes[at as usize].left != NIL {
                at = self.nodes[at as usize].left;
            }
            return Some(at);
        }
        let mut at = item;
        while let Some(p) = self.parent(at) {
            if self.nodes[p as usize].left == at {
                return Some(p);
            }
            at = p;
        }
        None
    }

    fn parent(&self, item: u32) -> Option<u32> {
        let p = self.nodes[item as usize].parent;
        (p != NIL).then_some(p)
    }

    /// Rotates `item` above its parent, keeping the order.
    fn rotate_up(&mut self, item: u32) {
        let p = self.nodes[item as usize].parent;
        let g = self.nodes[p as usize].parent;
        if self.nodes[p as usize].left == item {
            let moved = self.nodes[item as usize].right;
            self.nodes[p as usize].left = moved;
            if moved != NIL {
                self.nodes[moved as usize].parent = p;
            }
            self.nodes[item as usize].right = p;
        } else {
            let moved = self.nodes[item as usize].left;
            self.nodes[p as usize].right = moved;
            if moved != NIL {
                self.nodes[moved as usize].parent = p;
            }
            self.nodes[item as usize].left = p;
        }
        self.nodes[p as usize].parent = item;
        self.nodes[item as usize].parent = g;
        if g == NIL {
            self.root = item;
        } else if self.nodes[g as usize].left == p {
            self.nodes[g as usize].left = item;
        } else {
            self.nodes[g as usize].right = item;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(crate::testing::proptest_config(256))]

        /// Against a `BTreeSet` of the same keys: the same order, neighbours and removals.
        #[test]
        fn keeps_the_order_of_a_sorted_set(
            keys in prop::collection::vec(0u32..1_000, 1..200),
            removals in prop::collection::vec(any::<prop::sample::Index>(), 0..100),
            seed in any::<u64>(),
        ) {
            let mut keys = keys;
            keys.sort_unstable();
            keys.dedup();
            let n = keys.len();
            // Item i has key keys[order[i]]: insert in a shuffled order.
            let mut shuffled: Vec<u32> = (0..n as u32).collect();
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut status = Status::new(n, seed);
            let mut model = BTreeSet::new();
            for &item in &shuffled {
                let key = keys[item as usize];
                status
                    .insert(item, |other| key.cmp(&keys[other as usize]))
                    .expect("distinct keys");
                model.insert(key);
            }
            let mut present: Vec<u32> = shuffled.clone();
            for index in removals {
                if present.is_empty() {
                    break;
                }
                let item = present.swap_remove(index.index(present.len()));
                status.remove(item);
                model.remove(&keys[item as usize]);
            }
            for &item in &present {
                let key = keys[item as usize];
                let before = status.before(item).map(|b| keys[b as usize]);
                let after = status.after(item).map(|a| keys[a as usize]);
                prop_assert_eq!(before, model.range(..key).next_back().copied());
                prop_assert_eq!(after, model.range(key + 1..).next().copied());
            }
        }
    }

    #[test]
    fn an_equal_place_is_refused_and_names_the_other() {
        let mut status = Status::new(2, 7);
        status.insert(0, |_| unreachable!("empty")).expect("first");
        assert_eq!(status.insert(1, |_| std::cmp::Ordering::Equal), Err(0));
    }
}
