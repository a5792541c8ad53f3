//! Inlet's producer: turns events into stream records.
//!
//! - [`shard_map`]: the open shards' hash-key ranges; partition key → MD5 → shard.
//! - [`batcher`]: pure per-shard KPL aggregation and PutRecords-sized batches, with count,
//!   size and linger limits and per-shard order kept.
//! - [`producer`]: [`Producer`], the async front: a bounded buffer (by bytes) where `send`
//!   waits when full, a background task that writes batches with retries, flush on
//!   shutdown.
//! - [`delivery`]: per-record results of the `*_confirmed` sends: [`Delivered`] (shard,
//!   sequence, sub-sequence) or [`DeliveryError`].
//! - [`metrics`]: metric names.
//!
//! Guarantee: every record accepted by `send` ends counted as delivered or failed (with its
//! reason logged); a confirmed record's [`Delivery`] resolves `Ok` only once the stream has
//! acknowledged the stream record holding it; memory held is bounded by
//! `max_buffered_bytes`; records of one partition key reach their shard in the order they
//! were sent.

pub mod batcher;
pub mod delivery;
pub mod metrics;
pub mod producer;
pub mod shard_map;

pub use batcher::{BatchLimits, Batcher};
pub use delivery::{Delivered, Delivery, DeliveryError};
pub use producer::{Producer, ProducerConfig, ProducerError, ProducerStats, SendError};
pub use shard_map::ShardMap;
