//! What the producer tests against the emulator share: generated events, a producer set up
//! for the (slow) emulator, and reading a whole stream back through Inlet's reader and
//! deaggregator.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use inlet_generator::{Generator, GeneratorConfig};
use inlet_kinesis::KinesisStream;
use inlet_producer::{BatchLimits, ProducerConfig};
use inlet_schemas::kpl;
use inlet_seams::{Shard, StartPosition, StreamReader};
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
    let mut out = Vec::new();
    for shard in &shards {
        let mut reader = stream.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
        let mut empty_reads = 0;
        loop {
            let batch = reader.next_batch(10_000).await.unwrap();
            for r in &batch.records {
                let outer = inlet_seams::hash_key(&r.partition_key);
                let aggregated = kpl::is_aggregated(&r.data);
                let users = kpl::decode_strict(&r.partition_key, r.explicit_hash_key, &r.data).unwrap();
                for (i, u) in users.into_iter().enumerate() {
                    out.push(ReadBack {
                        shard: shard.id.to_string(),
                        sequence: r.sequence.to_string(),
                        sub: aggregated.then_some(i as u32),
                        partition_key: u.partition_key,
                        data: u.data,
                        outer_hash_key: outer,
                    });
                }
            }
            if batch.shard_end.is_some() {
                break;
            }
            if batch.records.is_empty() {
                // Open shard: at its end when the stream says it is not behind.
                empty_reads += 1;
                if batch.millis_behind_latest.unwrap_or(0) == 0 || empty_reads > 50 {
                    break;
                }
            }
        }
    }
    (shards, out)
}
