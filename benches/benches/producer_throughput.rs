//! The whole async producer (buffer, writer task, batcher, outbox, calls) end to end, in
//! events/s and MB/s of payload:
//!
//! - into a null writer (answers every call at once, no rate limits): the producer's own
//!   ceiling on this machine;
//! - into the Kinesis emulator, when `INLET_KINESIS_ENDPOINT` is set (16 shards, Kinesis
//!   limits and per-shard rates): what the emulator takes. Under `infra/test.sh`
//!   (`INLET_BENCH_SERVERS=1`) a missing one fails.
//!
//! `cargo bench -p inlet-benches --bench producer_throughput` runs 500,000 events (the
//! emulator 200,000); under `cargo test --benches` it runs 5,000 as a smoke check.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report

use async_trait::async_trait;
use inlet_kinesis::KinesisStream;
use inlet_producer::{BatchLimits, Producer, ProducerConfig};
use inlet_seams::{
    HashKeyRange, PutOutcome, PutRecord, SequenceNumber, Shard, ShardId, StreamError, StreamWriter, WriteLimits,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Takes every record at once.
#[derive(Debug)]
struct NullWriter {
    shards: Vec<Shard>,
    next: AtomicU64,
}

impl NullWriter {
    fn new(n: u32) -> Self {
        let shards = HashKeyRange::split_evenly(n)
            .into_iter()
            .enumerate()
            .map(|(i, hash_range)| Shard {
                id: ShardId::from_index(i as u32),
                hash_range,
                parent: None,
                adjacent_parent: None,
                closed: false,
            })
            .collect();
        Self {
            shards,
            next: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl StreamWriter for NullWriter {
    async fn open_shards(&self) -> Result<Vec<Shard>, StreamError> {
        Ok(self.shards.clone())
    }

    async fn put_records(&self, records: &[PutRecord]) -> Result<Vec<PutOutcome>, StreamError> {
        Ok(records
            .iter()
            .map(|r| {
                let key = r.hash_key();
                let shard = self.shards.iter().find(|s| s.hash_range.contains(key)).unwrap();
                PutOutcome::Written {
                    shard: shard.id.clone(),
                    sequence: SequenceNumber::from_u64(self.next.fetch_add(1, Relaxed)),
                }
            })
            .collect())
    }

    fn limits(&self) -> WriteLimits {
        WriteLimits {
            shard_rate: None,
            ..WriteLimits::KINESIS
        }
    }
}

async fn run(
    name: &str,
    writer: Arc<dyn StreamWriter>,
    events: &[inlet_generator::GenEvent],
    config: ProducerConfig,
    batched: bool,
) {
    let bytes: usize = events.iter().map(|e| e.partition_key.len() + e.data.len()).sum();
    let started = Instant::now();
    let producer = Producer::start(writer, config).await.unwrap();
    if batched {
        for chunk in events.chunks(1_000) {
            let records = chunk
                .iter()
                .map(|e| (e.partition_key.clone(), e.data.clone()))
                .collect();
            producer.send_all(records).await.unwrap();
        }
    } else {
        for e in events {
            producer.send(e.partition_key.clone(), e.data.clone()).await.unwrap();
        }
    }
    let sent_secs = started.elapsed().as_secs_f64();
    let stats = producer.close().await.unwrap();
    eprintln!("  (sending took {sent_secs:.2} s of it)");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(stats.delivered, events.len() as u64);
    println!(
        "{name:<36} {:>9} events  {:>7.2} s  {:>11.0} events/s  {:>7.2} MB/s  ({} stream records, {} calls)",
        events.len(),
        secs,
        events.len() as f64 / secs,
        bytes as f64 / secs / 1e6,
        stats.stream_records,
        stats.put_calls
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (n, n_emulator) = if full { (500_000, 200_000) } else { (5_000, 5_000) };
    let events = inlet_benches::events(n, 1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (name, shards, batched) in [
            ("null writer, 16 shards, send", 16, false),
            ("null writer, 16 shards, send_all", 16, true),
            ("null writer, 1,024 shards, send", 1024, false),
            ("null writer, 1,024 shards, send_all", 1024, true),
        ] {
            let writer = Arc::new(NullWriter::new(shards));
            run(name, writer, &events, ProducerConfig::default(), batched).await;
        }
        if let Some(endpoint) = inlet_benches::server_var(
            "INLET_KINESIS_ENDPOINT",
            "the Kinesis emulator",
            "producer_throughput's emulator part",
        ) {
            let stream = KinesisStream::connect(inlet_kinesis::testing::patient_location(&endpoint, "bench")).await;
            stream.create(16).await.unwrap();
            let config = ProducerConfig {
                batch: BatchLimits {
                    max_put_bytes: 1 << 20,
                    ..BatchLimits::default()
                },
                ..ProducerConfig::default()
            };
            run(
                "kinesis emulator, 16 shards",
                Arc::new(stream.clone()),
                &events[..n_emulator.min(events.len())],
                config,
                true,
            )
            .await;
            stream.delete().await.unwrap();
        }
    });
}
