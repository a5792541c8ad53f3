//! The shard map: open shards by hash-key range.
use inlet_seams::{Shard, ShardId, hash_key};

/// Open shards sorted by hash-key range; they tile the key space.
#[derive(Debug, Clone)]
pub struct ShardMap {
    starts: Vec<u128>,
    ids: Vec<ShardId>,
}

/// The open shards do not tile the hash-key space (a listing taken mid-reshard).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("open shards do not cover the hash key space: {0}")]
pub struct NotATiling(pub String);

impl ShardMap {
    /// Builds the map from the open shards.
    pub fn new(shards: &[Shard]) -> Result<Self, NotATiling> {
        let mut open: Vec<&Shard> = shards.iter().filter(|s| !s.closed).collect();
        open.sort_by_key(|s| s.hash_range.start);
        let mut expected = 0u128;
        for (i, s) in open.iter().enumerate() {
            if s.hash_range.start != expected {
                return Err(NotATiling(format!(
                    "{} starts at {}, expected {expected}",
                    s.id, s.hash_range.start
                )));
            }
            if s.hash_range.end == u128::MAX {
                if i + 1 != open.len() {
                    return Err(NotATiling(format!(
                        "{} ends the key space but more shards follow",
                        s.id
                    )));
                }
                return Ok(Self {
                    starts: open.iter().map(|s| s.hash_range.start).collect(),
                    ids: open.iter().map(|s| s.id.clone()).collect(),
                });
            }
            expected = s.hash_range.end + 1;
        }
        Err(NotATiling(format!("nothing covers hash keys from {expected}")))
    }

    /// Number of open shards.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Never true for a built map (a tiling has at least one shard).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The index of the shard owning `hash_key`.
    pub fn index_of(&self, hash_key: u128) -> usize {
        // starts[0] == 0, so at least one start is <= any key.
        self.starts.partition_point(|&s| s <= hash_key) - 1
    }

    /// The index of the shard a partition key goes to.
    pub fn index_of_key(&self, partition_key: &str) -> usize {
        self.index_of(hash_key(partition_key))
    }

    /// Whether both maps have the same shards with the same ranges.
    pub fn same_shards(&self, other: &ShardMap) -> bool {
        self.ids == other.ids && self.starts == other.starts
    }

    /// The id of the shard at `index`.
    pub fn id(&self, index: usize) -> &ShardId {
        &self.ids[index]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use inlet_seams::HashKeyRange;
    use proptest::prelude::*;

    /// `n` open shards splitting the hash-key space evenly (also the spool driver's tests').
    pub(crate) fn shards(n: u32) -> Vec<Shard> {
        HashKeyRange::split_evenly(n)
            .into_iter()
            .enumerate()
            .map(|(i, r)| Shard {
                id: ShardId::from_index(i as u32),
                hash_range: r,
                parent: None,
                adjacent_parent: None,
                closed: false,
            })
            .collect()
    }

    proptest! {
        /// Routing picks the one shard whose range holds the key.
        #[test]
        fn routes_into_the_owning_range(n in 1u32..2000, key in any::<u128>()) {
            let s = shards(n);
            let map = ShardMap::new(&s).unwrap();
            let i = map.index_of(key);
            prop_assert!(s[i].hash_range.contains(key));
            prop_assert_eq!(map.id(i), &s[i].id);
        }
    }

    #[test]
    fn rejects_gaps_and_ignores_closed() {
        let mut s = shards(4);
        s.remove(2);
        assert!(ShardMap::new(&s).is_err());
        let mut s = shards(2);
        s.push(Shard {
            id: ShardId("closed".into()),
            hash_range: HashKeyRange::ALL,
            parent: None,
            adjacent_parent: None,
            closed: true,
        });
        assert_eq!(ShardMap::new(&s).unwrap().len(), 2);
    }
}
