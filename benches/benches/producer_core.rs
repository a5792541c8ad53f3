//! The producer's pure core: per-shard KPL aggregation and PutRecords batching
//! (`Batcher::push`, then `seal_all` and draining `take_batch(true)`), no I/O.
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use inlet_producer::{BatchLimits, Batcher};

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

criterion_group! {
    name = producer_core;
    config = inlet_benches::criterion();
    targets = batcher
}
criterion_main!(producer_core);
