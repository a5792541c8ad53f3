//! Inlet's producer: turns events into stream records.
//!
//! - [`shard_map`]: the open shards' hash-key ranges; partition key → MD5 → shard.
//! - [`batcher`]: pure per-shard KPL aggregation and PutRecords-sized batches, with count,
//!   size and linger limits and per-shard order kept.
//! - [`outbox`]: pure scheduling of sealed records into calls: per-shard queues, per-shard
//!   token buckets that slow down when the stream throttles, retry times, strict order.
//! - [`producer`]: [`Producer`], the async front: a bounded buffer (by bytes) where `send`
//!   waits when full; its writer task keeps up to `max_in_flight` calls going, retries
//!   failed records with jittered backoff up to a time-to-live, reloads the shard map on a
//!   timer and on a misrouted record, writes what it gives up on to a dead-letter file, and
//!   flushes on shutdown.
//! - [`delivery`]: per-record results of the `*_confirmed` sends: [`Delivered`] (shard,
//!   sequence, sub-sequence) or [`DeliveryError`].
//! - [`metrics`]: metric names.
//!
//! Guarantee: every record accepted by `send` ends counted as delivered or failed (with its
//! reason logged); a confirmed record's [`Delivery`] resolves `Ok` only once the stream has
//! acknowledged the stream record holding it; memory held is bounded by
//! `max_buffered_bytes`; records of one partition key reach their shard in the order they
//! were sent (across retries too with `strict_order`).

pub mod batcher;
mod dead_letter;
pub mod delivery;
pub mod metrics;
pub mod outbox;
pub mod producer;
pub mod shard_map;
mod spool;
mod task;

pub use batcher::{BatchLimits, Batcher};
pub use delivery::{Delivered, Delivery, DeliveryError};
pub use outbox::{Outbox, OutboxLimits};
pub use producer::{Producer, ProducerConfig, ProducerError, ProducerStats, SendError, SpoolConfig};
pub use shard_map::ShardMap;
