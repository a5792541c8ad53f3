//! The KPL (Kinesis Producer Library) aggregated-record format, both ways. Pure: no I/O.
//!
//! An aggregated record's data is `MAGIC` (`F3 89 9A C2`), then a proto2 `AggregatedRecord`
//! message, then the 16-byte MD5 digest of the message bytes (the magic is not hashed); see
//! awslabs/amazon-kinesis-producer `aggregation-format.md`. Partition keys and explicit hash
//! keys live in two tables that the user records index into; an explicit hash key is the
//! decimal string of a 128-bit unsigned integer.
//!
//! The encoder writes bytes identical to the KPL / `aws-kinesis-agg` (Python): keys are
//! deduplicated in first-seen order, and `explicit_hash_key_index` is omitted when a record
//! has no explicit hash key. Tags (field 4 of `Record`) are never written; when decoding they
//! are parsed (a tag without its required key makes the payload invalid) and ignored.
//!
//! [`decode`] classifies data as the KCL does (a corrupt aggregate is one plain record);
//! [`decode_strict`] turns every problem of data that starts with the magic into a [`KplError`].

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use md5::{Digest, Md5};
use prost::Message;
use prost::encoding::encoded_len_varint;

/// The 4 bytes every aggregated record starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Length of the MD5 digest that ends every aggregated record.
pub const DIGEST_LEN: usize = 16;
/// Magic plus digest: the size of an aggregated record around its protobuf message.
const OVERHEAD: usize = MAGIC.len() + DIGEST_LEN;

/// The proto2 messages of `aggregation-format.md`, written by hand (no protoc). Fields that
/// the format marks `required` are declared `optional` so that decoding can tell a missing
/// field from a zero: the KCL (protobuf-java) rejects a message missing a required field.
mod pb {
    use bytes::Bytes;

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct AggregatedRecord {
        #[prost(string, repeated, tag = "1")]
        pub(super) partition_key_table: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub(super) explicit_hash_key_table: Vec<String>,
        #[prost(message, repeated, tag = "3")]
        pub(super) records: Vec<Record>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Record {
        #[prost(uint64, optional, tag = "1")] // required
        pub(super) partition_key_index: Option<u64>,
        #[prost(uint64, optional, tag = "2")]
        pub(super) explicit_hash_key_index: Option<u64>,
        #[prost(bytes = "bytes", optional, tag = "3")] // required
        pub(super) data: Option<Bytes>,
        #[prost(message, repeated, tag = "4")]
        pub(super) tags: Vec<Tag>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Tag {
        #[prost(string, optional, tag = "1")] // required
        pub(super) key: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub(super) value: Option<String>,
    }
}

/// One user record inside (or outside) an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user record's partition key.
    pub partition_key: String,
    /// The user record's explicit hash key, if it has one.
    pub explicit_hash_key: Option<u128>,
    /// The user record's payload.
    pub data: Bytes,
}

/// Why an aggregated record could not be decoded.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KplError {
    /// Starts with the magic but cannot hold the magic and the MD5 digest.
    #[error("KPL aggregated record of {len} bytes is shorter than magic + MD5 digest (20)")]
    TooShort {
        /// Length of the whole record.
        len: usize,
    },
    /// The trailing MD5 digest is not the digest of the protobuf message.
    #[error("KPL aggregated record's MD5 digest does not match its protobuf message")]
    DigestMismatch,
    /// The digest matches but the protobuf message is malformed.
    #[error("KPL aggregated record's protobuf message is invalid: {0}")]
    Protobuf(String),
    /// A user record points past the end of the partition key table.
    #[error("KPL user record {record}: partition_key_index {index}, table length {table_len}")]
    PartitionKeyIndexOutOfRange {
        /// Position of the user record in the aggregate.
        record: usize,
        /// The index it carries.
        index: u64,
        /// Length of the partition key table.
        table_len: usize,
    },
    /// A user record points past the end of the explicit hash key table.
    #[error("KPL user record {record}: explicit_hash_key_index {index}, table length {table_len}")]
    ExplicitHashKeyIndexOutOfRange {
        /// Position of the user record in the aggregate.
        record: usize,
        /// The index it carries.
        index: u64,
        /// Length of the explicit hash key table.
        table_len: usize,
    },
    /// A user record's explicit hash key is not the decimal string of a `u128`.
    #[error("KPL user record {record}: explicit hash key {value:?} is not a decimal u128")]
    InvalidExplicitHashKey {
        /// Position of the user record in the aggregate.
        record: usize,
        /// The explicit hash key as found.
        value: String,
    },
    /// A valid aggregated record that holds no user records.
    #[error("KPL aggregated record holds no user records")]
    Empty,
}

/// Whether `data` starts with [`MAGIC`] and is longer than magic plus digest: the KCL's test
/// before it even looks at the digest. It says nothing about whether the digest matches.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.len() > OVERHEAD && data.starts_with(&MAGIC)
}

/// Size of a length-delimited field (tag < 16, so a 1-byte key) whose payload is `len` bytes.
fn len_delimited(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// Size of a varint field (1-byte key).
fn varint_field(value: u64) -> usize {
    1 + encoded_len_varint(value)
}

/// Number of decimal digits of `value`.
fn decimal_len(value: u128) -> usize {
    value.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Where a key would go in its table: its index, and whether it would be a new entry.
/// The key tables' lookup maps: per aggregate, bounded by its size (50 KiB), so a fast
/// seeded hash is enough (SipHash was a tenth of `push`).
type Lookup<K> = HashMap<K, u64, foldhash::fast::RandomState>;

fn slot<Q: std::hash::Hash + Eq>(map: &Lookup<Q>, key: &Q, len: usize) -> (u64, bool) {
    map.get(key).map_or((len as u64, true), |&index| (index, false))
}

/// Incremental builder: tracks the exact encoded size so the caller can stop before a limit.
///
/// Partition keys and explicit hash keys are deduplicated into their tables in first-seen
/// order, as the KPL and `aws-kinesis-agg` do, so the bytes match theirs.
#[derive(Debug, Default)]
pub struct Aggregator {
    partition_keys: Vec<String>,
    partition_key_lookup: Lookup<String>,
    explicit_hash_keys: Vec<String>,
    explicit_hash_key_lookup: Lookup<u128>,
    records: Vec<pb::Record>,
    first_explicit_hash_key: Option<u128>,
    /// Exact length of the protobuf message built so far.
    message_len: usize,
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bytes the protobuf message grows by if `record` is added now.
    fn growth(&self, record: &UserRecord) -> usize {
        let pk_len = record.partition_key.len();
        let (pk_index, pk_new) = slot(
            &self.partition_key_lookup,
            &record.partition_key,
            self.partition_keys.len(),
        );
        let mut growth = if pk_new { len_delimited(pk_len) } else { 0 };
        let mut inner = varint_field(pk_index) + len_delimited(record.data.len());
        if let Some(ehk) = record.explicit_hash_key {
            let (ehk_index, ehk_new) = slot(&self.explicit_hash_key_lookup, &ehk, self.explicit_hash_keys.len());
            if ehk_new {
                growth += len_delimited(decimal_len(ehk));
            }
            inner += varint_field(ehk_index);
        }
        growth + len_delimited(inner)
    }

    /// Encoded size in bytes (magic + protobuf + digest) if `record` were added now.
    /// Computed arithmetically from the running total, without encoding anything.
    pub fn size_with(&self, record: &UserRecord) -> usize {
        OVERHEAD + self.message_len + self.growth(record)
    }

    /// Adds a user record.
    pub fn push(&mut self, record: UserRecord) {
        self.message_len += self.growth(&record);
        if self.records.is_empty() {
            self.first_explicit_hash_key = record.explicit_hash_key;
        }
        let pk_index = match self.partition_key_lookup.get(&record.partition_key) {
            Some(&index) => index,
            None => {
                let index = self.partition_keys.len() as u64;
                self.partition_key_lookup.insert(record.partition_key.clone(), index);
                self.partition_keys.push(record.partition_key);
                index
            }
        };
        let ehk_index = record.explicit_hash_key.map(|ehk| {
            *self.explicit_hash_key_lookup.entry(ehk).or_insert_with(|| {
                self.explicit_hash_keys.push(ehk.to_string());
                self.explicit_hash_keys.len() as u64 - 1
            })
        });
        self.records.push(pb::Record {
            partition_key_index: Some(pk_index),
            explicit_hash_key_index: ehk_index,
            data: Some(record.data),
            tags: Vec::new(),
        });
    }

    /// Number of user records added since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no user record was added since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Exact size in bytes of what [`finish`](Self::finish) would return now
    /// ([`MAGIC`] + protobuf + digest; 20 bytes when empty).
    pub fn encoded_len(&self) -> usize {
        OVERHEAD + self.message_len
    }

    /// The partition key to put on the outer Kinesis record: the first user record's, as in
    /// `aws-kinesis-agg`. (The KPL itself sends `"a"` plus the first record's hash key as the
    /// explicit hash key, which routes to the same shard.) `None` when empty.
    pub fn outer_partition_key(&self) -> Option<&str> {
        // The first record always adds the first entry of the partition key table.
        self.partition_keys.first().map(String::as_str)
    }

    /// The explicit hash key to put on the outer Kinesis record: the first user record's
    /// (`None` if it has none, or when empty).
    pub fn outer_explicit_hash_key(&self) -> Option<u128> {
        self.first_explicit_hash_key
    }

    /// Encodes the aggregated record and resets the aggregator. Returns exactly
    /// [`encoded_len`](Self::encoded_len) bytes. Do not send the result of an empty
    /// aggregator: those 20 bytes would reach a KCL consumer as one plain record.
    pub fn finish(&mut self) -> Bytes {
        let total = self.encoded_len();
        let taken = std::mem::take(self);
        let message = pb::AggregatedRecord {
            partition_key_table: taken.partition_keys,
            explicit_hash_key_table: taken.explicit_hash_keys,
            records: taken.records,
        }
        .encode_to_vec();
        debug_assert_eq!(message.len(), taken.message_len, "size bookkeeping drifted");
        let mut out = BytesMut::with_capacity(total);
        out.put_slice(&MAGIC);
        out.put_slice(&message);
        out.put_slice(&Md5::digest(&message));
        out.freeze()
    }
}

/// Encodes a whole slice into one aggregated record (convenience over [`Aggregator`]).
pub fn encode(records: &[UserRecord]) -> Bytes {
    let mut aggregator = Aggregator::new();
    for record in records {
        aggregator.push(record.clone());
    }
    aggregator.finish()
}

/// Decodes a Kinesis record's data into its user records, following the KCL's
/// `AggregatorUtil.deaggregate` (and `aws-kinesis-agg`'s deaggregator).
///
/// Choice (checked against the KCL source): data is deaggregated only if it starts with
/// [`MAGIC`], is longer than magic plus digest, its MD5 digest matches and its protobuf message
/// parses (protobuf-java rejects a missing required field, so we do too). Otherwise, like the
/// KCL, the data is returned as ONE plain user record with the outer partition key / explicit
/// hash key: a corrupt aggregate (bad digest, bad protobuf) is a plain record here, not an
/// error. [`decode_strict`] reports those as errors instead.
///
/// Errors are left for a valid message that cannot become user records: a key index out of
/// range, an explicit hash key that is not a decimal `u128`, no records at all (there the KCL
/// logs, keeps the records before the bad one, or yields nothing). Deviation: a key that is not
/// UTF-8 makes the message invalid (the KCL decodes it lossily). Tags are parsed and ignored.
pub fn decode(
    outer_partition_key: &str,
    outer_explicit_hash_key: Option<u128>,
    data: &[u8],
) -> Result<Vec<UserRecord>, KplError> {
    match is_aggregated(data).then(|| decode_aggregate(data)) {
        None | Some(Err(KplError::DigestMismatch | KplError::Protobuf(_))) => {
            Ok(vec![plain(outer_partition_key, outer_explicit_hash_key, data)])
        }
        Some(result) => result,
    }
}

/// Like [`decode`], but anything that starts with [`MAGIC`] must be a valid aggregated record:
/// otherwise [`KplError::TooShort`], [`KplError::DigestMismatch`] or [`KplError::Protobuf`]
/// (and magic + digest alone is [`KplError::Empty`]). Data without the magic is still one plain
/// user record.
pub fn decode_strict(
    outer_partition_key: &str,
    outer_explicit_hash_key: Option<u128>,
    data: &[u8],
) -> Result<Vec<UserRecord>, KplError> {
    if data.starts_with(&MAGIC) {
        decode_aggregate(data)
    } else {
        Ok(vec![plain(outer_partition_key, outer_explicit_hash_key, data)])
    }
}

fn plain(partition_key: &str, explicit_hash_key: Option<u128>, data: &[u8]) -> UserRecord {
    UserRecord {
        partition_key: partition_key.to_owned(),
        explicit_hash_key,
        data: Bytes::copy_from_slice(data),
    }
}

/// Decodes data that starts with the magic.
fn decode_aggregate(data: &[u8]) -> Result<Vec<UserRecord>, KplError> {
    let Some(digest_at) = data.len().checked_sub(DIGEST_LEN).filter(|&at| at >= MAGIC.len()) else {
        return Err(KplError::TooShort { len: data.len() });
    };
    let (message, digest) = (&data[MAGIC.len()..digest_at], &data[digest_at..]);
    if Md5::digest(message).as_slice() != digest {
        return Err(KplError::DigestMismatch);
    }
    let aggregate = pb::AggregatedRecord::decode(message).map_err(|e| KplError::Protobuf(e.to_string()))?;
    if aggregate.records.is_empty() {
        return Err(KplError::Empty);
    }
    let missing =
        |record: usize, field: &str| KplError::Protobuf(format!("record {record} is missing required field {field}"));
    let pks = &aggregate.partition_key_table;
    let ehks = &aggregate.explicit_hash_key_table;
    let mut out = Vec::with_capacity(aggregate.records.len());
    for (i, record) in aggregate.records.into_iter().enumerate() {
        let pk_index = record
            .partition_key_index
            .ok_or_else(|| missing(i, "partition_key_index"))?;
        let data = record.data.ok_or_else(|| missing(i, "data"))?;
        if record.tags.iter().any(|tag| tag.key.is_none()) {
            return Err(missing(i, "tags.key"));
        }
        let partition_key = usize::try_from(pk_index).ok().and_then(|index| pks.get(index)).ok_or(
            KplError::PartitionKeyIndexOutOfRange {
                record: i,
                index: pk_index,
                table_len: pks.len(),
            },
        )?;
        let explicit_hash_key = match record.explicit_hash_key_index {
            None => None,
            Some(index) => {
                let value = usize::try_from(index).ok().and_then(|at| ehks.get(at)).ok_or(
                    KplError::ExplicitHashKeyIndexOutOfRange {
                        record: i,
                        index,
                        table_len: ehks.len(),
                    },
                )?;
                Some(
                    parse_explicit_hash_key(value).ok_or_else(|| KplError::InvalidExplicitHashKey {
                        record: i,
                        value: value.clone(),
                    })?,
                )
            }
        };
        out.push(UserRecord {
            partition_key: partition_key.clone(),
            explicit_hash_key,
            data,
        });
    }
    Ok(out)
}

/// ASCII digits only (no sign, no spaces; leading zeros allowed), at most `u128::MAX`.
fn parse_explicit_hash_key(value: &str) -> Option<u128> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}
