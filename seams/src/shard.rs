//! Shards: ids, the 128-bit hash key space, and lineage.
use md5::{Digest, Md5};
use std::fmt;

/// A shard (Kinesis) or partition (Kafka) id, e.g. `shardId-000000000003`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub String);

impl ShardId {
    /// The id Kinesis gives the shard with this index.
    pub fn from_index(i: u32) -> Self {
        Self(format!("shardId-{i:012}"))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hash key of a partition key: its MD5 digest read as a big-endian 128-bit integer,
/// as Kinesis computes it.
pub fn hash_key(partition_key: &str) -> u128 {
    let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
    u128::from_be_bytes(digest)
}

/// An inclusive range of hash keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashKeyRange {
    /// First hash key in the range.
    pub start: u128,
    /// Last hash key in the range (inclusive).
    pub end: u128,
}

impl HashKeyRange {
    /// The whole key space.
    pub const ALL: HashKeyRange = HashKeyRange {
        start: 0,
        end: u128::MAX,
    };

    /// Whether `key` falls in the range.
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }

    /// `n` contiguous ranges covering the whole key space, as Kinesis splits a new stream:
    /// each `floor(2^128 / n)` wide, the last one taking the remainder.
    pub fn split_evenly(n: u32) -> Vec<HashKeyRange> {
        if n <= 1 {
            return vec![HashKeyRange::ALL];
        }
        // floor(2^128 / n), computed without 2^128: they differ from floor((2^128-1) / n)
        // only when n divides 2^128.
        let width = u128::MAX / u128::from(n) + u128::from(u128::MAX % u128::from(n) == u128::from(n) - 1);
        (0..n)
            .map(|i| {
                let start = width * u128::from(i);
                let end = if i + 1 == n { u128::MAX } else { start + width - 1 };
                HashKeyRange { start, end }
            })
            .collect()
    }
}

/// A shard with its hash-key range and lineage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Its id.
    pub id: ShardId,
    /// The hash keys it owns.
    pub hash_range: HashKeyRange,
    /// The shard it was split from, or the first of the two it was merged from.
    pub parent: Option<ShardId>,
    /// The second parent of a merge.
    pub adjacent_parent: Option<ShardId>,
    /// Closed shards take no more writes; their records stay readable until retention.
    pub closed: bool,
}

impl Shard {
    /// The parents that must be read to their end before this shard.
    pub fn parents(&self) -> Vec<ShardId> {
        self.parent.iter().chain(self.adjacent_parent.iter()).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_key_is_md5_big_endian() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(hash_key(""), 0xd41d8cd98f00b204e9800998ecf8427e);
    }

    #[test]
    fn split_matches_kinesis_for_small_counts() {
        let two = HashKeyRange::split_evenly(2);
        assert_eq!(two[0].end, 170141183460469231731687303715884105727);
        assert_eq!(two[1].start, 170141183460469231731687303715884105728);
        assert_eq!(two[1].end, u128::MAX);
        let one = HashKeyRange::split_evenly(1);
        assert_eq!(one, vec![HashKeyRange::ALL]);
    }

    proptest! {
        /// The ranges tile the key space: contiguous, no gaps, no overlaps.
        #[test]
        fn split_tiles_key_space(n in 1u32..5000) {
            let r = HashKeyRange::split_evenly(n);
            prop_assert_eq!(r.len(), n as usize);
            prop_assert_eq!(r[0].start, 0);
            prop_assert_eq!(r[r.len() - 1].end, u128::MAX);
            for w in r.windows(2) {
                prop_assert!(w[0].start <= w[0].end);
                prop_assert_eq!(w[0].end + 1, w[1].start);
            }
        }
    }
}
