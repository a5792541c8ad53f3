//! The producer's pure core: per-shard KPL aggregation and PutRecords batching
//! (`Batcher::push`, then `seal_all` and draining `take_batch(true)`), and the scheduling of
//! sealed records into calls under the shards' rate limits (`Outbox::push`, then
//! `next_call`/`done`, moving time to `next_wakeup`), no I/O.
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use inlet_producer::batcher::Ready;
use inlet_producer::{BatchLimits, Batcher, Outbox, OutboxLimits};
use inlet_seams::{PutRecord, WriteLimits};

/// Events per iteration.
const EVENTS: u64 = 100_000;
/// Shards the events are spread over.
const SHARDS: u32 = 64;

fn batcher(c: &mut Criterion) {
    let events = inlet_benches::events(EVENTS, 11);
    let map = inlet_benches::shard_map(SHARDS);
    // Routing is measured on its own in `codecs`; here each event's shard is known up front.
    let routed: Vec<_> = events
        .iter()
        .map(|e| (map.index_of_key(&e.partition_key), inlet_benches::user_record(e)))
        .collect();
    let mut g = c.benchmark_group("producer_core");
    // ~0.1-0.2 s per iteration: a flat 20 samples, with room for them.
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function("batcher_100k_events_64_shards", |b| {
        b.iter_batched(
            || routed.clone(),
            |routed| {
                let mut batcher = Batcher::new(BatchLimits::default(), SHARDS as usize);
                for (i, (shard, record)) in routed.into_iter().enumerate() {
                    // One simulated millisecond per 1,000 events: nothing lingers past 100 ms.
                    batcher.push(shard, record, 1, i as u64 / 1_000);
                }
                batcher.seal_all();
                let mut stream_records = 0;
                while let Some(batch) = batcher.take_batch(true) {
                    stream_records += batch.len();
                    black_box(batch);
                }
                stream_records
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

/// Sealed stream records per outbox iteration.
const READY: u64 = 10_000;
/// Shards they are bound for.
const OUTBOX_SHARDS: u64 = 1_024;
/// Shards that get every tenth record in the skewed case.
const HOT_SHARDS: u64 = 8;

/// `READY` sealed records of 1-50 KiB (aggregates of varying fill), spread evenly over the
/// shards, or with every tenth one on one of `HOT_SHARDS` shards (about 3 MiB each: three
/// seconds of a Kinesis shard's rate). Deterministic.
fn ready_records(hot: bool) -> Vec<Ready> {
    let payload = Bytes::from(vec![0x5a; 50 << 10]);
    (0..READY)
        .map(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let shard = if hot && i % 10 == 0 {
                (i / 10) % HOT_SHARDS
            } else {
                (h >> 32) % OUTBOX_SHARDS
            };
            let len = 1024 + (h >> 8) as usize % (49 << 10);
            Ready {
                record: PutRecord {
                    partition_key: format!("pk-{i}"),
                    explicit_hash_key: None,
                    data: payload.slice(..len),
                },
                shard: shard as usize,
                user_records: 100,
                permits: len,
                attempts: 0,
                first_ms: 0,
                not_before_ms: 0,
                spool_offset: 0,
                acks: Vec::new(),
            }
        })
        .collect()
}

fn outbox(c: &mut Criterion) {
    // As `Producer::start` sets it up against Kinesis.
    let kinesis = WriteLimits::KINESIS;
    let batch = BatchLimits::default();
    let limits = OutboxLimits {
        max_put_records: batch.max_put_records.min(kinesis.max_records_per_put),
        max_put_bytes: batch.max_put_bytes.min(kinesis.max_bytes_per_put),
        shard_rate: kinesis.shard_rate,
        rate_headroom: 1.0,
        strict_order: false,
    };
    let mut g = c.benchmark_group("producer_core");
    g.throughput(Throughput::Elements(READY));
    for (name, hot) in [
        ("outbox_10k_records_1024_shards", false),
        ("outbox_10k_records_1024_shards_8_hot", true),
    ] {
        let ready = ready_records(hot);
        g.bench_function(name, |b| {
            b.iter_batched(
                || ready.clone(),
                |ready| {
                    let mut outbox = Outbox::new(limits, OUTBOX_SHARDS as usize);
                    for r in ready {
                        outbox.push(r);
                    }
                    // Every call written at once; time moves to each wakeup (rate refills).
                    let (mut now, mut calls) = (0, 0);
                    loop {
                        while let Some(call) = outbox.next_call(now, true) {
                            call.iter().for_each(|r| outbox.done(r.shard));
                            calls += 1;
                            black_box(call);
                        }
                        match outbox.next_wakeup(now) {
                            Some(at) => now = at,
                            None => break,
                        }
                    }
                    assert!(outbox.is_empty(), "records left in the outbox");
                    (calls, now)
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group! {
    name = producer_core;
    config = inlet_benches::criterion();
    targets = batcher, outbox
}
criterion_main!(producer_core);
