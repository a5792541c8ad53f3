//! The consumer's pure core on one shard: `RecordProcessor::process` over KPL aggregates
//! (deaggregate, decode, validate, roll up), committing every 50,000 events as the worker
//! does, with dedupe on and off (its cost; the state it holds is printed once);
//! `ShardRollup::apply` alone; and `minute_of`.
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use inlet_consumer::RecordProcessor;
use inlet_rollup::{Lateness, ShardRollup, minute_of};
use inlet_schemas::validate;
use inlet_seams::{LeaseToken, ShardId};

/// Events per iteration.
const EVENTS: u64 = 100_000;
/// The worker's default `commit_every_records`.
const COMMIT_EVERY: u64 = 50_000;

/// Prints what the dedupe state holds after one shard's 100,000 events (all within the
/// horizon: the workload spans under two minutes of event time): ids remembered, heap bytes
/// per id, and bytes stored per id by the commits.
fn report_dedupe_state(mut processor: RecordProcessor, records: &[inlet_seams::Record], token: &LeaseToken) {
    let mut stored = 0usize;
    for record in records {
        processor.process(record);
        if processor.pending() >= COMMIT_EVERY
            && let Some((commit, _)) = processor.take_commit(token, false)
        {
            stored += commit.seen.added.iter().map(|s| s.to_bytes().len()).sum::<usize>();
            processor.committed(&commit);
        }
    }
    if let Some((commit, _)) = processor.take_commit(token, false) {
        stored += commit.seen.added.iter().map(|s| s.to_bytes().len()).sum::<usize>();
        processor.committed(&commit);
    }
    let Some(d) = processor.dedupe() else { return };
    let ids = d.remembered().max(1);
    eprintln!(
        "dedupe state after {EVENTS} events on one shard: {} ids remembered, {} heap bytes ({:.1} per id), {} bytes stored ({:.1} per id)",
        d.remembered(),
        d.heap_bytes(),
        d.heap_bytes() as f64 / ids as f64,
        stored,
        stored as f64 / ids as f64
    );
}

fn processor(c: &mut Criterion) {
    let events = inlet_benches::events(EVENTS, 21);
    let records = inlet_benches::aggregated_records(&events, 1);
    let shard = ShardId::from_index(0);
    let token = LeaseToken {
        shard: shard.clone(),
        owner: "bench".into(),
        counter: 1,
    };
    let mut g = c.benchmark_group("consumer_core");
    // ~0.1-0.2 s per iteration: a flat 20 samples, with room for them.
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(EVENTS));
    let fresh = |dedupe: bool| {
        let p = RecordProcessor::new(
            shard.clone(),
            ShardRollup::new(Lateness::default()),
            None,
            validate::Limits::default(),
            Lateness::default(),
        );
        if dedupe { p } else { p.with_dedupe(None) }
    };
    report_dedupe_state(fresh(true), &records, &token);
    for (name, dedupe) in [
        ("process_100k_events_1_shard", true),
        ("process_100k_events_1_shard_dedupe_off", false),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || fresh(dedupe),
                |mut processor| {
                    let mut commits = Vec::new();
                    for record in &records {
                        processor.process(record);
                        if processor.pending() >= COMMIT_EVERY
                            && let Some((commit, counts)) = processor.take_commit(&token, false)
                        {
                            processor.committed(&commit);
                            commits.push((commit, counts));
                        }
                    }
                    if let Some((commit, counts)) = processor.take_commit(&token, false) {
                        processor.committed(&commit);
                        commits.push((commit, counts));
                    }
                    (processor, commits)
                },
                BatchSize::PerIteration,
            );
        });
    }

    let envelopes = inlet_benches::envelopes(&events);
    g.bench_function("rollup_apply_100k_events", |b| {
        b.iter_batched(
            || ShardRollup::new(Lateness::default()),
            |mut rollup| {
                for e in &envelopes {
                    black_box(rollup.apply(e));
                }
                rollup
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();

    let times: Vec<i64> = envelopes.iter().map(|e| e.event_time_ms).collect();
    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(times.len() as u64));
    g.bench_function("minute_of_100k", |b| {
        b.iter(|| {
            for &t in &times {
                black_box(minute_of(black_box(t)));
            }
        });
    });
    g.finish();
}

criterion_group! {
    name = consumer_core;
    config = inlet_benches::criterion();
    targets = processor
}
criterion_main!(consumer_core);
