//! Inlet's producer: turns events into stream records.
//!
//! - [`shard_map`]: the open shards' hash-key ranges; partition key → MD5 → shard.
//! - [`batcher`]: pure per-shard KPL aggregation and PutRecords-sized batches, with count,
//!   size and linger limits and per-shard order kept.
//! - [`outbox`]: pure scheduling of sealed records into calls: per-shard queues, per-shard
//!   token buckets that slow down when the stream throttles, retry times, strict order.
//! - [`producer`]: [`Producer`], the async front: a bounded buffer (by bytes) where `send`
//!   waits when full, `flush`, `close`, [`ProducerStats`].
//! - `config`: [`ProducerConfig`] and [`SpoolConfig`] (public through [`producer`]).
//! - `protocol`: the messages from the handle to its writer task (records with their buffer
//!   share, flushes); `stats`: the counters both update ([`ProducerStats`] is their snapshot).
//! - `task`: the writer task: keeps up to `max_in_flight` calls going, retries failed
//!   records with jittered backoff (`backoff`) up to a time-to-live, reloads the shard map on
//!   a timer and on a misrouted record, writes what it gives up on to a dead-letter file
//!   (`dead_letter`), and flushes on shutdown.
//! - `probe`: after a call with no answer, writes wait until a `ListShards` probe answers.
//! - `spool`: the on-disk spool's files; `spool_driver`: when the task spools (every write
//!   failing for `after` with records waiting), reads back (up to 4 MiB in memory) and
//!   advances the spool's offset (once everything before is settled).
//! - [`delivery`]: per-record results of the `*_confirmed` sends: [`Delivered`] (shard,
//!   sequence, sub-sequence) or [`DeliveryError`].
//! - [`metrics`]: metric names.
//!
//! Guarantee: every record accepted by `send` ends counted as delivered or failed (with its
//! reason logged); a confirmed record's [`Delivery`] resolves `Ok` only once the stream has
//! acknowledged the stream record holding it; memory held is bounded by
//! `max_buffered_bytes`; records of one partition key reach their shard in the order they
//! were sent (across retries too with `strict_order`).

mod backoff;
pub mod batcher;
mod config;
mod dead_letter;
pub mod delivery;
pub mod metrics;
pub mod outbox;
mod probe;
pub mod producer;
mod protocol;
pub mod shard_map;
pub mod spool;
mod spool_driver;
mod stats;
mod task;

pub use batcher::{BatchLimits, Batcher};
pub use delivery::{Delivered, Delivery, DeliveryError};
pub use outbox::{Outbox, OutboxLimits};
pub use producer::{HealthProbe, Producer, ProducerConfig, ProducerError, ProducerStats, SendError, SpoolConfig};
pub use shard_map::ShardMap;
