//! What the producer tests against the emulator share: generated events, a producer set up
//! for the (slow) emulator, and reading a whole stream back through Inlet's reader and
//! deaggregator.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use inlet_generator::{Generator, GeneratorConfig};
use inlet_kinesis::KinesisStream;
use inlet_producer::{BatchLimits, ProducerConfig};
use inlet_schemas::kpl;
use inlet_seams::{Shard, StreamReader};
use std::time::Duration;

/// `n` generated events (partition key, payload), in send order.
pub(crate) fn events(n: u64, seed: u64) -> Vec<(String, Bytes)> {
    Generator::new(GeneratorConfig {
        seed,
        events: n,
        ..GeneratorConfig::default()
    })
    .map(|e| (e.partition_key, e.data))
    .collect()
}

/// The emulator takes about a second per MB on a busy machine: smaller calls.
pub(crate) fn producer_config() -> ProducerConfig {
    ProducerConfig {
        batch: BatchLimits {
            max_put_bytes: 1 << 20,
            linger_ms: 20,
            ..BatchLimits::default()
        },
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        ..ProducerConfig::default()
    }
}

/// A user record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadBack {
    pub(crate) shard: String,
    pub(crate) sequence: String,
    /// Index inside an aggregate; `None` for a plain record.
    pub(crate) sub: Option<u32>,
    pub(crate) partition_key: String,
    pub(crate) data: Bytes,
    /// The stream record's outer hash key (what Kinesis routed by).
    pub(crate) outer_hash_key: u128,
}

/// Every user record of every shard (open and closed), shards in listing order, each in
/// sequence order, through Inlet's reader and its strict deaggregator.
pub(crate) async fn read_all(stream: &KinesisStream) -> (Vec<Shard>, Vec<ReadBack>) {
    let shards = stream.list_shards().await.unwrap();
    let records = inlet_testkit::read_stream(stream).await;
    let out = inlet_testkit::user_records(&records)
        .into_iter()
        .map(|(shard, r, i, u)| ReadBack {
            shard: shard.id.to_string(),
            sequence: r.sequence.to_string(),
            sub: kpl::is_aggregated(&r.data).then_some(i),
            partition_key: u.partition_key,
            data: u.data,
            outer_hash_key: inlet_seams::hash_key(&r.partition_key),
        })
        .collect();
    (shards, out)
}
