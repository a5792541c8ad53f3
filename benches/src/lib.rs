//! Shared fixtures for Inlet's criterion benchmarks (`benches/*.rs`).
//!
//! Everything here is deterministic: the same arguments give the same events and records, so
//! runs on different days measure the same work.
use std::time::Duration;

/// The allocator of the `inlet` binary, so the benches measure what it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::Criterion;
use inlet_generator::{GenEvent, Generator, GeneratorConfig, Truth};
use inlet_producer::ShardMap;
use inlet_schemas::events::Envelope;
use inlet_schemas::kpl::{Aggregator, UserRecord};
use inlet_seams::{HashKeyRange, Record, SequenceNumber, Shard, ShardId};

/// Largest aggregated record built by [`aggregated_records`]: 50 KiB, the KPL's default
/// `AggregationMaxSize` (and the producer's `BatchLimits::default()`).
pub const MAX_AGGREGATE_BYTES: usize = 50 * 1024;

/// Arrival time stamped on every fixture record (2026-01-01T00:00:00Z).
pub const ARRIVAL_MS: i64 = 1_767_225_600_000;

/// The criterion settings every bench uses: small enough that the whole
/// `cargo bench -p inlet-benches` finishes in a few minutes on 2 cores.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// Set to `1` by `infra/test.sh`, which starts the servers: a bench part whose server
/// variable is missing then fails instead of skipping.
pub const SERVERS_VAR: &str = "INLET_BENCH_SERVERS";

/// The server variable `var` (`INLET_KINESIS_ENDPOINT`, `INLET_KAFKA_BOOTSTRAP`, ...) that
/// `part` of a bench needs to reach `what`. A bench target cannot be `#[ignore]`d, so without
/// the variable the part is skipped and says so on stdout, except under `infra/test.sh`
/// ([`SERVERS_VAR`]` = 1`), where a missing server panics: nothing passes by skipping there.
pub fn server_var(var: &str, what: &str, part: &str) -> Option<String> {
    if let Ok(value) = std::env::var(var) {
        return Some(value);
    }
    assert!(
        std::env::var(SERVERS_VAR).as_deref() != Ok("1"),
        "{var} is not set: {part} needs {what}, and {SERVERS_VAR}=1 says it must run; \
         run the benches through infra/test.sh, which provides it"
    );
    println!("{part}: skipped ({var} is not set: it needs {what}, which infra/test.sh provides)");
    None
}

/// `n` clean events from the generator (no invalid, malformed or late events), for
/// throughput. Same `n` and `seed`, same events.
pub fn events(n: u64, seed: u64) -> Vec<GenEvent> {
    Generator::new(GeneratorConfig {
        seed,
        events: n,
        invalid_share: 0.0,
        late_share: 0.0,
        ..GeneratorConfig::default()
    })
    .collect()
}

/// The decoded envelopes of `events` (all of them are valid: see [`events`]).
pub fn envelopes(events: &[GenEvent]) -> Vec<Envelope> {
    events
        .iter()
        .filter_map(|e| match &e.truth {
            Truth::Valid(envelope) => Some(envelope.as_ref().clone()),
            Truth::Invalid { .. } | Truth::Malformed | Truth::Copy(_) => None,
        })
        .collect()
}

/// The user record the producer makes of an event.
pub fn user_record(event: &GenEvent) -> UserRecord {
    UserRecord {
        partition_key: event.partition_key.clone(),
        explicit_hash_key: None,
        data: event.data.clone(),
    }
}

/// `shards` open shards tiling the hash-key space evenly, as a new Kinesis stream has them.
pub fn shards(shards: u32) -> Vec<Shard> {
    HashKeyRange::split_evenly(shards)
        .into_iter()
        .zip(0..)
        .map(|(hash_range, i)| Shard {
            id: ShardId::from_index(i),
            hash_range,
            parent: None,
            adjacent_parent: None,
            closed: false,
        })
        .collect()
}

/// The producer's shard map over [`shards`]`(shards)`.
pub fn shard_map(shards: u32) -> ShardMap {
    match ShardMap::new(&self::shards(shards)) {
        Ok(map) => map,
        // split_evenly always tiles the key space.
        Err(e) => panic!("split_evenly({shards}) does not tile: {e}"),
    }
}

/// The stream records a producer writes for `events` over `shards` shards: each event is
/// routed by `hash_key(partition_key)`, the events of each shard are packed in order into KPL
/// aggregates of at most [`MAX_AGGREGATE_BYTES`], and the records get increasing sequence
/// numbers (1, 2, ...). Records come shard by shard (shard 0's first), each shard's in order.
pub fn aggregated_records(events: &[GenEvent], shards: u32) -> Vec<Record> {
    let map = shard_map(shards);
    let mut per_shard: Vec<Vec<&GenEvent>> = vec![Vec::new(); map.len()];
    for event in events {
        per_shard[map.index_of(inlet_seams::hash_key(&event.partition_key))].push(event);
    }
    let mut out = Vec::new();
    let mut sequence = 0u64;
    let mut seal = |agg: &mut Aggregator, out: &mut Vec<Record>| {
        sequence += 1;
        let partition_key = agg.outer_partition_key().unwrap_or_default().to_owned();
        let explicit_hash_key = agg.outer_explicit_hash_key();
        out.push(Record {
            sequence: SequenceNumber::from_u64(sequence),
            partition_key,
            explicit_hash_key,
            data: agg.finish(),
            arrival_ms: ARRIVAL_MS,
        });
    };
    for shard_events in per_shard {
        let mut agg = Aggregator::new();
        for event in shard_events {
            let record = user_record(event);
            if !agg.is_empty() && agg.size_with(&record) > MAX_AGGREGATE_BYTES {
                seal(&mut agg, &mut out);
            }
            agg.push(record);
        }
        if !agg.is_empty() {
            seal(&mut agg, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use inlet_schemas::kpl;

    #[test]
    fn aggregates_hold_every_event_once_in_order() {
        let events = events(5_000, 7);
        assert_eq!(events.len(), 5_000);
        assert!(events.iter().all(|e| matches!(e.truth, Truth::Valid(_))));
        let records = aggregated_records(&events, 4);
        let mut seen = 0;
        let mut last_sequence = None;
        for record in &records {
            assert!(record.data.len() <= MAX_AGGREGATE_BYTES);
            assert!(last_sequence.as_ref() < Some(&record.sequence));
            last_sequence = Some(record.sequence.clone());
            seen += kpl::decode_strict(&record.partition_key, None, &record.data)
                .unwrap()
                .len();
        }
        assert_eq!(seen, events.len());
        let one = aggregated_records(&events, 1);
        let users: Vec<_> = one
            .iter()
            .flat_map(|r| kpl::decode_strict(&r.partition_key, None, &r.data).unwrap())
            .collect();
        assert!(users.iter().zip(&events).all(|(u, e)| u.data == e.data));
    }
}
