//! A set of 128-bit event ids, exact, at 20 to 30 bytes per id.
//!
//! Open addressing with linear probing over one `Vec<u128>`; 0 marks an empty slot (a UUIDv7
//! is never 0: its version nibble is 7). The table grows by half when it is 80 % full, so it
//! is always between 53 % and 80 % full once past its first few slots: 16 bytes per id divided
//! by the load. `std`'s `HashSet<u128>` doubles and stays between 44 % and 88 % full (19 to
//! 39 bytes per id, plus a control byte per slot). Nothing is ever removed: the dedupe state
//! drops a whole minute's set at once.
//!
//! The hash is keyed per process (an emitter choosing ids cannot aim them at one probe
//! run); where an id lands never changes an answer, only how long it takes.
use std::hash::BuildHasher;

/// An exact set of nonzero `u128`s.
#[derive(Debug, Clone, Default)]
pub struct IdSet {
    slots: Vec<u128>,
    len: usize,
    hasher: foldhash::fast::RandomState,
}

/// Slots of the first table: small, since most minutes of a quiet shard hold a few ids.
const FIRST_SLOTS: usize = 8;

impl IdSet {
    /// An empty set (allocates nothing until the first insert).
    pub fn new() -> Self {
        Self::default()
    }

    /// Ids held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of heap it holds.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<u128>()
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u128) -> bool {
        !self.slots.is_empty() && self.slots[self.find(id)] == id
    }

    /// Adds `id` (nonzero); `false` if it was already there.
    pub fn insert(&mut self, id: u128) -> bool {
        debug_assert_ne!(id, 0, "0 marks an empty slot");
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            self.grow();
        }
        let at = self.find(id);
        if self.slots[at] == id {
            return false;
        }
        self.slots[at] = id;
        self.len += 1;
        true
    }

    /// The ids, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        self.slots.iter().copied().filter(|id| *id != 0)
    }

    /// The slot holding `id`, or the empty slot where it would go. The table is never full
    /// (at most 80 %), so the probe ends.
    fn find(&self, id: u128) -> usize {
        let n = self.slots.len();
        // Multiply-shift maps the hash onto any table size, not only powers of two.
        let mut i = ((u128::from(self.hasher.hash_one(id)) * n as u128) >> 64) as usize;
        loop {
            let s = self.slots[i];
            if s == id || s == 0 {
                return i;
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    fn grow(&mut self) {
        let n = (self.slots.len() + self.slots.len() / 2).max(FIRST_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![0; n]);
        for id in old.into_iter().filter(|id| *id != 0) {
            let at = self.find(id);
            self.slots[at] = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        /// Exactly a `HashSet`: never a false "already there", never a missed one.
        #[test]
        fn behaves_as_a_set(ids in proptest::collection::vec(1u128..200, 0..500)) {
            let mut ours = IdSet::new();
            let mut model = HashSet::new();
            for id in ids {
                prop_assert_eq!(ours.insert(id), model.insert(id));
                prop_assert!(ours.contains(id));
                prop_assert_eq!(ours.len(), model.len());
            }
            for id in 1u128..210 {
                prop_assert_eq!(ours.contains(id), model.contains(&id));
            }
            let mut listed: Vec<u128> = ours.iter().collect();
            listed.sort_unstable();
            let mut expected: Vec<u128> = model.into_iter().collect();
            expected.sort_unstable();
            prop_assert_eq!(listed, expected);
        }
    }

    #[test]
    fn at_most_32_bytes_per_id_at_every_size() {
        let mut s = IdSet::new();
        let mut x: u128 = 0x0190_0000_0000_7000_8000_0000_0000_0001;
        for n in 1..=200_000usize {
            // Distinct, UUIDv7-like ids.
            x = x.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15) | 1;
            s.insert(x);
            if n >= 64 {
                assert!(s.heap_bytes() <= 32 * n, "{} bytes for {n} ids", s.heap_bytes());
            }
        }
        assert_eq!(s.len(), 200_000);
    }
}
