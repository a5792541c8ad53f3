//! The producer's settings: [`ProducerConfig`] and the on-disk spool's [`SpoolConfig`].
use crate::batcher::BatchLimits;
use std::path::PathBuf;
use std::time::Duration;

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Aggregation and collection limits.
    pub batch: BatchLimits,
    /// Most bytes of user records held at once; `send` waits beyond it (backpressure).
    pub max_buffered_bytes: usize,
    /// Attempts per stream record before it is given up on (or `record_ttl`, whichever
    /// comes first).
    pub max_attempts: u32,
    /// How long after it was sent a record may still be retried (KPL `RecordTtl`). A record
    /// past it is given up on at its next failure, never while it merely waits its turn.
    pub record_ttl: Duration,
    /// First retry delay; doubles per attempt up to `max_backoff`, with jitter.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Most `PutRecords` calls in flight at once.
    pub max_in_flight: usize,
    /// Strict per-partition-key order: one stream record in flight per shard, so a retried
    /// record can never be overtaken. Costs a round trip per aggregate and shard; without
    /// it, a retry after a partial failure can land after a later record of its shard.
    pub strict_order: bool,
    /// Fraction of each shard's write rate (Kinesis: 1 MiB/s, 1,000 records/s) to use.
    pub rate_headroom: f64,
    /// How often the shard map is reloaded even when nothing suggests a reshard.
    pub shard_map_refresh: Duration,
    /// A JSON-lines file where records given up on are written, one line per user record
    /// with the reason; `None`: only counted and logged (and returned to confirmed senders).
    pub dead_letter: Option<PathBuf>,
    /// An on-disk spool for outages; `None`: during an outage `send` waits once the buffer
    /// is full, and records expire after `record_ttl`.
    pub spool: Option<SpoolConfig>,
}

/// The on-disk spool's settings. Once the stream has been failing for `after` with records
/// waiting, sealed records go to disk (freeing the buffer, so `send` keeps going) until the
/// spool is drained again, in order; spooled records never expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Its directory (one spool per producer).
    pub dir: PathBuf,
    /// Most bytes on disk; beyond it `send` waits again.
    pub max_bytes: u64,
    /// How long the stream must fail before records are spooled.
    pub after: Duration,
}

impl SpoolConfig {
    /// A spool in `dir` with the defaults: 10 GiB on disk, after 5 s of failures.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            max_bytes: 10 << 30,
            after: Duration::from_secs(5),
        }
    }
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            batch: BatchLimits::default(),
            max_buffered_bytes: 64 << 20,
            max_attempts: 64,
            record_ttl: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_in_flight: 8,
            strict_order: false,
            rate_headroom: 1.0,
            shard_map_refresh: Duration::from_secs(60),
            dead_letter: None,
            spool: None,
        }
    }
}
