//! Consumer workers end to end: events/s per worker and event-to-rollup latency (sent by
//! the producer → committed, i.e. visible in the warehouse), with the producer sending at a
//! steady rate into a stream that two in-process workers consume into an embedded warehouse.
//!
//! The stream is the Kinesis emulator when `INLET_KINESIS_ENDPOINT` is set (8 shards),
//! else the embedded stream (8 shards); under `infra/test.sh` (`INLET_BENCH_SERVERS=1`) a
//! missing emulator fails. Latency is read off two timelines sampled every
//! 10 ms, events sent and events committed: the k-th event's latency is when the k-th
//! commit count was reached minus when the k-th event was sent (exact for first-in
//! first-out delivery; across shards a fair approximation, which never underestimates the
//! slowest shard by more than the sampling step).
//!
//! `cargo bench -p inlet-benches --bench pipeline_latency` runs 60 s at the set rate (the
//! emulator: 2,000 events/s; embedded: 20,000 events/s); under `cargo test --benches` 3 s.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report

use inlet_consumer::{Worker, WorkerConfig};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_kinesis::KinesisStream;
use inlet_producer::{BatchLimits, Producer, ProducerConfig};
use inlet_seams::{StreamReader, StreamWriter};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const WORKERS: usize = 2;
const SHARDS: u32 = 8;

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let emulator = inlet_benches::server_var(
        "INLET_KINESIS_ENDPOINT",
        "the Kinesis emulator",
        "pipeline_latency's emulator run (on the embedded stream instead)",
    );
    let rate: u64 = if emulator.is_some() { 2_000 } else { 20_000 };
    let secs: u64 = if full { 60 } else { 3 };
    let total = rate * secs;
    let events = inlet_benches::events(total, 3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader, name): (Arc<dyn StreamWriter>, Arc<dyn StreamReader>, &str) = match &emulator {
            Some(endpoint) => {
                let s = KinesisStream::connect(inlet_kinesis::testing::patient_location(endpoint, "latency")).await;
                s.create(SHARDS).await.unwrap();
                (Arc::new(s.clone()), Arc::new(s), "kinesis emulator")
            }
            None => {
                let s = EmbeddedStream::open_or_create(&dir.path().join("stream.db"), SHARDS)
                    .await
                    .unwrap();
                (Arc::new(s.clone()), Arc::new(s), "embedded stream")
            }
        };
        let warehouse = Arc::new(EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap());
        let stop = CancellationToken::new();
        let mut stats = Vec::new();
        let mut workers = Vec::new();
        for i in 0..WORKERS {
            let mut config = WorkerConfig::new(format!("bench-{i}"));
            config.commit_interval = Duration::from_millis(500);
            let w = Worker::new(reader.clone(), warehouse.clone(), warehouse.clone(), config);
            stats.push(w.stats());
            workers.push(tokio::spawn(w.run(stop.clone())));
        }
        let config = ProducerConfig {
            batch: BatchLimits {
                linger_ms: 50,
                max_put_bytes: 1 << 20,
                ..BatchLimits::default()
            },
            ..ProducerConfig::default()
        };
        let producer = Arc::new(Producer::start(writer, config).await.unwrap());

        // Send at `rate`, in 10 ms slices; sample both timelines every 10 ms.
        let started = Instant::now();
        let sender = {
            let producer = producer.clone();
            tokio::spawn(async move {
                let mut sent_at = Vec::with_capacity(events.len());
                let per_tick = (rate / 100).max(1) as usize;
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                for chunk in events.chunks(per_tick) {
                    tick.tick().await;
                    for e in chunk {
                        producer.send(e.partition_key.clone(), e.data.clone()).await.unwrap();
                        sent_at.push(started.elapsed().as_secs_f64());
                    }
                }
                sent_at
            })
        };
        let mut committed_at = Vec::with_capacity(total as usize);
        let mut committed = 0u64;
        let deadline = Duration::from_secs(secs * 10 + 60);
        while committed < total {
            let now: u64 = stats.iter().map(|s| s.snapshot().handled()).sum();
            let t = started.elapsed().as_secs_f64();
            while committed < now.min(total) {
                committed_at.push(t);
                committed += 1;
            }
            assert!(started.elapsed() < deadline, "stalled at {committed} of {total}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let sent_at = sender.await.unwrap();
        stop.cancel();
        for w in workers {
            w.await.unwrap().unwrap();
        }
        Arc::try_unwrap(producer).unwrap().close().await.unwrap();
        let mut latency: Vec<f64> = committed_at.iter().zip(&sent_at).map(|(c, s)| (c - s).max(0.0)).collect();
        latency.sort_by(f64::total_cmp);
        println!(
            "{name}, {SHARDS} shards, {WORKERS} workers: {total} events sent at {rate}/s, all committed after {elapsed:.1} s \
             ({:.0} events/s per worker); event-to-rollup latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            total as f64 / elapsed / WORKERS as f64,
            quantile(&latency, 0.5) * 1000.0,
            quantile(&latency, 0.99) * 1000.0,
            latency[latency.len() - 1] * 1000.0,
        );
    });
}
