//! Wire formats and routing: protobuf and JSON both ways, validation, KPL aggregation both
//! ways, and partition-key routing over 1,000 shards.
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use inlet_schemas::events::Envelope;
use inlet_schemas::kpl::{self, Aggregator, UserRecord};
use inlet_schemas::{json, validate};
use prost::Message;

/// Events per iteration of the per-event codecs.
const EVENTS: usize = 1_000;
/// User records in the KPL aggregate benchmarks (an aggregate of about 36 KB with this
/// workload; a full 50 KiB one holds about 330).
const KPL_RECORDS: usize = 250;
/// Shards of the routing benchmark.
const ROUTE_SHARDS: u32 = 1_000;

fn protobuf(c: &mut Criterion) {
    let events = inlet_benches::events(EVENTS as u64, 1);
    let envelopes = inlet_benches::envelopes(&events);
    let encoded: Vec<_> = events.iter().map(|e| e.data.clone()).collect();
    let mut g = c.benchmark_group("protobuf");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            for e in &envelopes {
                black_box(e.encode_to_vec());
            }
        });
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(Envelope::decode(black_box(bytes.as_ref())).ok());
            }
        });
    });
    g.finish();
}

fn json_codec(c: &mut Criterion) {
    let envelopes = inlet_benches::envelopes(&inlet_benches::events(EVENTS as u64, 2));
    let encoded: Vec<String> = envelopes.iter().map(json::encode_event).collect();
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            for e in &envelopes {
                black_box(json::encode_event(e));
            }
        });
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            for text in &encoded {
                black_box(json::decode_event(black_box(text.as_bytes())).ok());
            }
        });
    });
    g.finish();
}

fn validation(c: &mut Criterion) {
    let envelopes = inlet_benches::envelopes(&inlet_benches::events(EVENTS as u64, 3));
    let limits = validate::Limits::default();
    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("valid_events", |b| {
        b.iter(|| {
            for e in &envelopes {
                black_box(validate::validate(black_box(e), &limits).is_ok());
            }
        });
    });
    g.finish();
}

fn kpl_aggregation(c: &mut Criterion) {
    let records: Vec<UserRecord> = inlet_benches::events(KPL_RECORDS as u64, 4)
        .iter()
        .map(inlet_benches::user_record)
        .collect();
    let aggregate = kpl::encode(&records);
    let outer_key = records[0].partition_key.clone();
    let mut g = c.benchmark_group("kpl");
    g.throughput(Throughput::Elements(KPL_RECORDS as u64));
    g.bench_function("aggregate_250", |b| {
        b.iter_batched(
            || records.clone(),
            |records| {
                let mut agg = Aggregator::new();
                for record in records {
                    agg.push(record);
                }
                agg.finish()
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("deaggregate_250", |b| {
        b.iter(|| kpl::decode_strict(&outer_key, None, black_box(&aggregate)).map(|users| users.len()));
    });
    g.finish();
}

fn routing(c: &mut Criterion) {
    let keys: Vec<String> = inlet_benches::events(EVENTS as u64, 5)
        .into_iter()
        .map(|e| e.partition_key)
        .collect();
    let hashes: Vec<u128> = keys.iter().map(|k| inlet_seams::hash_key(k)).collect();
    let map = inlet_benches::shard_map(ROUTE_SHARDS);
    let mut g = c.benchmark_group("route_1000_shards");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("hash_key+index_of", |b| {
        b.iter(|| {
            for key in &keys {
                black_box(map.index_of(inlet_seams::hash_key(black_box(key))));
            }
        });
    });
    g.bench_function("hash_key", |b| {
        b.iter(|| {
            for key in &keys {
                black_box(inlet_seams::hash_key(black_box(key)));
            }
        });
    });
    g.bench_function("index_of", |b| {
        b.iter(|| {
            for &hash in &hashes {
                black_box(map.index_of(black_box(hash)));
            }
        });
    });
    g.finish();
}

criterion_group! {
    name = codecs;
    config = inlet_benches::criterion();
    targets = protobuf, json_codec, validation, kpl_aggregation, routing
}
criterion_main!(codecs);
