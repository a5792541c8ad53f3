//! Kafka behind Inlet's stream seam, on `rdkafka` (librdkafka).
//!
//! - [`location`]: `kafka://HOST:PORT/TOPIC?group=..&<librdkafka setting>=..` parsed into a
//!   [`KafkaLocation`], with Inlet's client defaults.
//! - [`KafkaStream`]: a [`inlet_seams::StreamWriter`] (an idempotent, compressing producer;
//!   one record per message, keyed by its partition key) and a [`inlet_seams::StreamReader`]
//!   (a partition read from any position, for replays and lease-balanced workers).
//! - [`group`]: consumer-group membership (cooperative-sticky): the group decides which
//!   worker reads which partition, and a worker is told before a partition is taken away.
//! - [`admin`]: create, describe and delete topics (`inlet streams`), each after
//!   [`KafkaStream::reach`] (`reach.rs`): a broker must answer within the location's
//!   `connect_timeout`, or the call fails naming it.
//! - `context.rs`: librdkafka's log lines at debug level, its repeated errors remembered and
//!   warned about at most once a minute.
//! - [`testing`]: fresh topics on the test broker, and private brokers.

pub mod admin;
mod client;
mod context;
pub mod group;
pub mod location;
pub mod metrics;
mod reach;
mod reader;
pub mod testing;
mod writer;

pub use client::{BadSettings, KafkaStream, partition_shard, shard_partition, shards_of};
pub use location::KafkaLocation;
pub use reach::Unreachable;
