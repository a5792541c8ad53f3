//! Inlet's side of the peer comparison `benches/peers/run.sh` runs: Inlet against the official
//! `aws-kinesis-agg` (Python) for KPL aggregation and deaggregation, and against a boto3
//! `put_records` loop into the Kinesis emulator, in the same run, on the same events.
//!
//! Modes (arguments after `--`; `cargo bench` appends `--bench`):
//!
//! - `gen EVENTS_FILE N SEED`: writes `inlet_benches::events(N, SEED)` as JSON lines
//!   `{"pk": partition key, "data": base64 of the protobuf event}`, the one input of every part.
//! - `kpl EVENTS_FILE AGGREGATES_FILE REPEAT`: reads the events; REPEAT times, aggregates them in
//!   file order (one sequence, no routing: the same sequence `RecordAggregator` gets) with
//!   `kpl::Aggregator` into aggregates of at most 50 KiB (`MAX_AGGREGATE_BYTES`, the KPL's
//!   default), sealing one when the next record would not fit, as `aggregated_records` does;
//!   writes the aggregates as JSON lines `{"pk": outer partition key, "data": base64}`;
//!   REPEAT times, deaggregates them with `kpl::decode_strict`, keeping every user record; checks
//!   that the user records are the events, in order. Timed: the aggregation loop (records already
//!   built, as Python's are) and the decoding loop, nothing else.
//! - `kinesis EVENTS_FILE ENDPOINT N SHARDS`: the first N events through `Producer` (1 MiB calls,
//!   as `producer_throughput` uses against the emulator; otherwise `ProducerConfig::default()`)
//!   into a fresh stream of SHARDS shards on the emulator at ENDPOINT, in `send_all` slices of
//!   1,000; deletes the stream after. Timed: from the first `send_all` to `close` returning.
//!
//! Each mode but `gen` prints one JSON line (seconds per repetition, process CPU seconds).
//! Without a mode (`cargo test --benches`, or `cargo bench` of every bench): a smoke check of
//! `gen` and `kpl` on 2,000 events in a temporary directory, and of `kinesis` on 2,000 events
//! when `INLET_KINESIS_ENDPOINT` is set (under `infra/test.sh`, `INLET_BENCH_SERVERS=1`, a
//! missing one fails). Neither needs Python.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use inlet_kinesis::KinesisStream;
use inlet_producer::{BatchLimits, Producer, ProducerConfig};
use inlet_schemas::kpl::{self, Aggregator, UserRecord};
use serde_json::json;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// One event of the events file.
#[derive(Debug, Clone)]
struct Event {
    pk: String,
    data: Bytes,
}

/// This process's user and system CPU seconds (`/proc/self/stat`, in clock ticks of 1/100 s).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    // utime and stime are fields 14 and 15 of the line, 12th and 13th after the name.
    (ticks(11), ticks(12))
}

/// User + system CPU seconds since `then` (a [`cpu_seconds`] reading).
fn cpu_since(then: (f64, f64)) -> f64 {
    let now = cpu_seconds();
    (now.0 - then.0) + (now.1 - then.1)
}

fn write_events(path: &Path, n: u64, seed: u64) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    for e in inlet_benches::events(n, seed) {
        let line = json!({"pk": e.partition_key, "data": B64.encode(&e.data)});
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
}

/// The first `limit` lines of a JSON-lines file of `{"pk", "data"}`.
fn read_lines(path: &Path, limit: usize) -> Vec<Event> {
    BufReader::new(std::fs::File::open(path).unwrap())
        .lines()
        .map(Result::unwrap)
        .filter(|l| !l.trim().is_empty())
        .take(limit)
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            Event {
                pk: v["pk"].as_str().unwrap().to_owned(),
                data: Bytes::from(B64.decode(v["data"].as_str().unwrap()).unwrap()),
            }
        })
        .collect()
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Aggregates `records` in order into aggregates of at most `MAX_AGGREGATE_BYTES`:
/// (outer partition key, data) each.
fn aggregate(records: Vec<UserRecord>) -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    let mut agg = Aggregator::new();
    for record in records {
        if !agg.is_empty() && agg.size_with(&record) > inlet_benches::MAX_AGGREGATE_BYTES {
            let pk = agg.outer_partition_key().unwrap_or_default().to_owned();
            out.push((pk, agg.finish()));
        }
        agg.push(record);
    }
    if !agg.is_empty() {
        let pk = agg.outer_partition_key().unwrap_or_default().to_owned();
        out.push((pk, agg.finish()));
    }
    out
}

fn kpl_mode(events_path: &Path, aggregates_path: &Path, repeat: usize) {
    let events = read_lines(events_path, usize::MAX);
    let records: Vec<UserRecord> = events
        .iter()
        .map(|e| UserRecord {
            partition_key: e.pk.clone(),
            explicit_hash_key: None,
            data: e.data.clone(),
        })
        .collect();
    let bytes: usize = events.iter().map(|e| e.pk.len() + e.data.len()).sum();

    let mut aggregate_secs = Vec::new();
    let mut aggregate_cpu = 0.0;
    let mut aggregates = Vec::new();
    for _ in 0..repeat.max(1) {
        let input = records.clone();
        let cpu0 = cpu_seconds();
        let started = Instant::now();
        aggregates = aggregate(input);
        aggregate_secs.push(started.elapsed().as_secs_f64());
        aggregate_cpu += cpu_since(cpu0);
    }

    let mut out = BufWriter::new(std::fs::File::create(aggregates_path).unwrap());
    for (pk, data) in &aggregates {
        writeln!(out, "{}", json!({"pk": pk, "data": B64.encode(data)})).unwrap();
    }
    out.flush().unwrap();

    let mut deaggregate_secs = Vec::new();
    let mut deaggregate_cpu = 0.0;
    let mut decoded: Vec<Vec<UserRecord>> = Vec::new();
    for _ in 0..repeat.max(1) {
        drop(std::mem::take(&mut decoded));
        let cpu0 = cpu_seconds();
        let started = Instant::now();
        decoded = aggregates
            .iter()
            .map(|(pk, data)| kpl::decode_strict(pk, None, data).unwrap())
            .collect();
        deaggregate_secs.push(started.elapsed().as_secs_f64());
        deaggregate_cpu += cpu_since(cpu0);
    }

    // The check: every event once, in order, byte for byte.
    let users: Vec<&UserRecord> = decoded.iter().flatten().collect();
    assert_eq!(users.len(), events.len(), "user records decoded vs events");
    for (i, (u, e)) in users.iter().zip(&events).enumerate() {
        assert!(
            u.partition_key == e.pk && u.data == e.data && u.explicit_hash_key.is_none(),
            "user record {i} differs from event {i}"
        );
    }
    let aggregate_bytes: usize = aggregates.iter().map(|(_, d)| d.len()).sum();
    let line = json!({
        "side": "inlet",
        "events": events.len(),
        "bytes": bytes,
        "aggregates": aggregates.len(),
        "aggregate_bytes": aggregate_bytes,
        "max_aggregate_bytes": inlet_benches::MAX_AGGREGATE_BYTES,
        "aggregate_seconds": aggregate_secs,
        "aggregate_median_seconds": median(&aggregate_secs),
        "aggregate_cpu_seconds": aggregate_cpu / aggregate_secs.len() as f64,
        "deaggregate_seconds": deaggregate_secs,
        "deaggregate_median_seconds": median(&deaggregate_secs),
        "deaggregate_cpu_seconds": deaggregate_cpu / deaggregate_secs.len() as f64,
        "decoded_match_events": true,
    });
    println!("{line}");
}

fn kinesis_mode(events_path: &Path, endpoint: &str, n: usize, shards: u32) {
    let events = read_lines(events_path, n);
    let bytes: usize = events.iter().map(|e| e.pk.len() + e.data.len()).sum();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = KinesisStream::connect(inlet_kinesis::testing::patient_location(endpoint, "peers-inlet")).await;
        stream.create(shards).await.unwrap();
        let config = ProducerConfig {
            batch: BatchLimits {
                max_put_bytes: 1 << 20,
                ..BatchLimits::default()
            },
            ..ProducerConfig::default()
        };
        let max_in_flight = config.max_in_flight;
        let producer = Producer::start(Arc::new(stream.clone()), config).await.unwrap();
        let cpu0 = cpu_seconds();
        let started = Instant::now();
        for chunk in events.chunks(1_000) {
            let records = chunk.iter().map(|e| (e.pk.clone(), e.data.clone())).collect();
            producer.send_all(records).await.unwrap();
        }
        let stats = producer.close().await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        let cpu1 = cpu_seconds();
        assert_eq!(stats.delivered, events.len() as u64);
        assert_eq!(stats.failed, 0);
        stream.delete().await.unwrap();
        let line = json!({
            "side": "inlet",
            "mode": "put",
            "events": events.len(),
            "bytes": bytes,
            "shards": shards,
            "seconds": secs,
            "cpu_user": cpu1.0 - cpu0.0,
            "cpu_sys": cpu1.1 - cpu0.1,
            "stream_records": stats.stream_records,
            "calls": stats.put_calls,
            "retried": stats.retries,
            "max_in_flight": max_in_flight,
        });
        println!("{line}");
    });
}

fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let aggregates = dir.path().join("aggregates.jsonl");
    write_events(&events, 2_000, 1);
    kpl_mode(&events, &aggregates, 1);
    assert!(
        read_lines(&aggregates, usize::MAX)
            .iter()
            .all(|a| a.data.starts_with(&kpl::MAGIC))
    );
    if let Some(endpoint) =
        inlet_benches::server_var("INLET_KINESIS_ENDPOINT", "the Kinesis emulator", "peers' kinesis mode")
    {
        kinesis_mode(&events, &endpoint, 2_000, 4);
    }
    println!("peers: smoke check only; the comparison is benches/peers/run.sh");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let arg = |i: usize| -> &str {
        args.get(i)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("missing argument {i}: see the usage at the top of benches/benches/peers.rs"))
    };
    match args.first().map(String::as_str) {
        None => smoke(),
        Some("gen") => write_events(Path::new(arg(1)), arg(2).parse().unwrap(), arg(3).parse().unwrap()),
        Some("kpl") => kpl_mode(Path::new(arg(1)), Path::new(arg(2)), arg(3).parse().unwrap()),
        Some("kinesis") => kinesis_mode(
            Path::new(arg(1)),
            arg(2),
            arg(3).parse().unwrap(),
            arg(4).parse().unwrap(),
        ),
        Some(other) => panic!("unknown mode {other:?}: gen, kpl or kinesis"),
    }
}
