//! The stream seam: write records to shards, read them back in order.
use crate::sequence::{Checkpoint, SequenceNumber, StartPosition};
use crate::shard::{Shard, ShardId};
use async_trait::async_trait;
use bytes::Bytes;

/// A record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecord {
    /// Decides the shard (through its MD5 hash key) unless an explicit hash key is given.
    pub partition_key: String,
    /// Overrides the partition key's hash key.
    pub explicit_hash_key: Option<u128>,
    /// The payload (an event, or a KPL aggregate of events).
    pub data: Bytes,
}

impl PutRecord {
    /// The hash key that decides the record's shard.
    pub fn hash_key(&self) -> u128 {
        self.explicit_hash_key
            .unwrap_or_else(|| crate::shard::hash_key(&self.partition_key))
    }
}

/// The outcome of one record of a `put_records` call (calls succeed or fail per record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Written.
    Written {
        /// The shard it landed on.
        shard: ShardId,
        /// Its sequence number there.
        sequence: SequenceNumber,
    },
    /// Not written.
    Failed {
        /// The service's error code, e.g. `ProvisionedThroughputExceededException`.
        code: String,
        /// The service's message.
        message: String,
        /// Whether sending it again can succeed.
        retryable: bool,
    },
}

/// The stream's limits for writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimits {
    /// Largest record (partition key + data), bytes.
    pub max_record_bytes: usize,
    /// Most records in one `put_records` call.
    pub max_records_per_put: usize,
    /// Most bytes in one `put_records` call.
    pub max_bytes_per_put: usize,
    /// Each shard's write rate, when the stream enforces one.
    pub shard_rate: Option<ShardRate>,
    /// Whether the producer packs user records into KPL aggregates. Kinesis: yes (limits
    /// and prices are per record). Kafka: no (its client batches and compresses by itself,
    /// and one event per message is what every Kafka consumer expects).
    pub aggregate: bool,
}

/// A shard's write rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRate {
    /// Bytes (partition key + data) per second.
    pub bytes_per_sec: u64,
    /// Records per second (an aggregate counts once).
    pub records_per_sec: u64,
}

impl WriteLimits {
    /// Kinesis Data Streams' limits (default 1 MiB maximum record size; 1 MiB/s and 1,000
    /// records/s per shard).
    pub const KINESIS: WriteLimits = WriteLimits {
        max_record_bytes: 1 << 20,
        max_records_per_put: 500,
        max_bytes_per_put: 10 << 20,
        shard_rate: Some(ShardRate {
            bytes_per_sec: 1 << 20,
            records_per_sec: 1000,
        }),
        aggregate: true,
    };
}

/// A stream's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// Listing shards failed.
    #[error("listing the shards of stream {stream} failed")]
    ListShards {
        /// The stream.
        stream: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A `put_records` call failed as a whole.
    #[error("writing {records} records to stream {stream} failed")]
    PutRecords {
        /// The stream.
        stream: String,
        /// How many records the call held.
        records: usize,
        /// Whether sending again can succeed.
        retryable: bool,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A `put_records` call got no answer in time: the stream may or may not have written
    /// its records. Sending them again is safe for loss but can duplicate them.
    #[error("writing {records} records to stream {stream} got no answer; they may or may not be written")]
    Unanswered {
        /// The stream.
        stream: String,
        /// How many records the call held.
        records: usize,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading a shard failed.
    #[error("reading shard {shard} of stream {stream} failed")]
    Read {
        /// The stream.
        stream: String,
        /// The shard.
        shard: ShardId,
        /// Whether reading again can succeed.
        retryable: bool,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No such shard.
    #[error("stream {stream} has no shard {shard}")]
    NoSuchShard {
        /// The stream.
        stream: String,
        /// The shard.
        shard: ShardId,
    },
}

impl StreamError {
    /// Whether the operation can succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        match self {
            StreamError::ListShards { .. } | StreamError::Unanswered { .. } => true,
            StreamError::PutRecords { retryable, .. } | StreamError::Read { retryable, .. } => *retryable,
            StreamError::NoSuchShard { .. } => false,
        }
    }
}

/// Writes records to a stream.
#[async_trait]
pub trait StreamWriter: Send + Sync + std::fmt::Debug {
    /// The open shards (those taking writes), for the producer's shard map.
    async fn open_shards(&self) -> Result<Vec<Shard>, StreamError>;
    /// Writes records; the outcomes are in the order of `records`. Records of one call that
    /// land on one shard are written in their order.
    async fn put_records(&self, records: &[PutRecord]) -> Result<Vec<PutOutcome>, StreamError>;
    /// The limits this stream enforces.
    fn limits(&self) -> WriteLimits;
}

/// A record read from a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its position in the shard.
    pub sequence: SequenceNumber,
    /// Its partition key.
    pub partition_key: String,
    /// Its explicit hash key, when it was written with one.
    pub explicit_hash_key: Option<u128>,
    /// The payload.
    pub data: Bytes,
    /// When the stream accepted it, ms since the epoch.
    pub arrival_ms: i64,
}

/// One read of a shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatch {
    /// The records, in shard order.
    pub records: Vec<Record>,
    /// How far behind the newest record this read is, when the stream says.
    pub millis_behind_latest: Option<i64>,
    /// Set when the shard is closed and every record has been read: the children to read
    /// next.
    pub shard_end: Option<Vec<ShardId>>,
}

/// Reads a stream.
#[async_trait]
pub trait StreamReader: Send + Sync + std::fmt::Debug {
    /// Every shard still holding records, open or closed, with lineage.
    async fn list_shards(&self) -> Result<Vec<Shard>, StreamError>;
    /// Opens a shard for reading from `from`.
    async fn open(&self, shard: &ShardId, from: StartPosition) -> Result<Box<dyn ShardReader>, StreamError>;
}

/// Reads one shard in order.
#[async_trait]
pub trait ShardReader: Send + std::fmt::Debug {
    /// The next records (at most `max`); empty when there is nothing new yet.
    async fn next_batch(&mut self, max: usize) -> Result<ReadBatch, StreamError>;
    /// Everything up to `checkpoint` is committed downstream (with the rollups). A Kafka
    /// group member commits the offset to the group as well, so that the usual lag tools
    /// see it; other streams need nothing.
    async fn committed(&mut self, _checkpoint: &Checkpoint) {}
}
