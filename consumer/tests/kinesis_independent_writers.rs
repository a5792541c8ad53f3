//! Records written to Kinesis by an independent client (boto3: plain `PutRecords`, or
//! aggregates packed by the official `aws-kinesis-agg` library) are consumed exactly: two
//! in-process workers read a fresh 4-shard stream of the emulator into an embedded warehouse,
//! which is then compared with the generator's `Expected` as `inlet verify` does (rows, dead
//! letters per kind and field, totals), and each dead letter with the event it came from.
//!
//! An aggregate is routed by its first user record's key, so most of its user records sit
//! on a shard that does not own their key: the aggregated test checks that this happened
//! and that the consumer processes them anyway.
//!
//! Needs the emulator (`INLET_KINESIS_ENDPOINT`) and the oracle's Python
//! (`INLET_KPL_ORACLE_PYTHON`): ignored by plain `cargo test`, run by `infra/test.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use base64::Engine;
use bytes::Bytes;
use inlet_consumer::{StatsSnapshot, Worker, WorkerConfig};
use inlet_embedded::EmbeddedWarehouse;
use inlet_generator::{Expected, Generator, GeneratorConfig, Truth};
use inlet_kinesis::testing::{endpoint, infra_dir, patient_location};
use inlet_kinesis::{KinesisLocation, KinesisStream};
use inlet_producer::ShardMap;
use inlet_seams::{StreamReader, StreamWriter, Warehouse};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const SHARDS: u32 = 4;
const WORKERS: usize = 2;
/// Largest aggregate the Python writer packs: small enough for many aggregates (so that user
/// records spread over every shard), far above one event.
const MAX_AGG_BYTES: usize = 16 * 1024;

fn events() -> u64 {
    std::env::var("INLET_INDEPENDENT_WRITER_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// The emulator's endpoint and the oracle's Python; a missing one fails the test.
fn setup() -> (String, String) {
    let endpoint = endpoint();
    let python = std::env::var("INLET_KPL_ORACLE_PYTHON").unwrap_or_else(|_| {
        panic!(
            "INLET_KPL_ORACLE_PYTHON is not set: this test needs the KPL oracle Python (boto3 and \
             aws-kinesis-agg); run the tests through infra/test.sh, which installs it"
        )
    });
    (endpoint, python)
}

/// What a generated event that must be dead-lettered is: (partition key, kind, field).
type Letter = (String, &'static str, Option<&'static str>);

/// The workload: its expectation on `map`, the JSON lines the Python writer reads, and the
/// dead letters it must cause, by payload.
fn workload(n: u64, seed: u64, map: &ShardMap, file: &Path) -> (Expected, HashMap<Bytes, Vec<Letter>>) {
    let cfg = GeneratorConfig {
        events: n,
        seed,
        // No late events: lateness depends on each shard's record order, and an aggregate
        // puts user records on a shard that does not own their key.
        late_share: 0.0,
        invalid_share: 0.01,
        ..GeneratorConfig::default()
    };
    let mut expected = Expected::new(map.len(), inlet_rollup::Lateness::default().allowed_ms);
    let mut letters: HashMap<Bytes, Vec<Letter>> = HashMap::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut lines = String::new();
    for ev in Generator::new(cfg) {
        expected.observe(&ev, map.index_of_key(&ev.partition_key));
        let letter = match ev.truth {
            Truth::Valid(_) | Truth::Copy(_) => None,
            Truth::Malformed => Some(("malformed", None)),
            Truth::Invalid { field } => Some(("invalid", Some(field))),
        };
        if let Some((kind, field)) = letter {
            letters
                .entry(ev.data.clone())
                .or_default()
                .push((ev.partition_key.clone(), kind, field));
        }
        let line = serde_json::json!({"pk": ev.partition_key, "data": b64.encode(&ev.data)});
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    std::fs::write(file, lines).unwrap();
    assert_eq!(expected.generated, n);
    assert_eq!(expected.dead.keys().filter(|k| k.0 == "late").count(), 0);
    (expected, letters)
}

/// Runs `python infra/oracle/SCRIPT args..`; its stdout.
async fn oracle(python: &str, script: &str, args: Vec<String>) -> String {
    let python = python.to_owned();
    let script = infra_dir().join("oracle").join(script);
    let out = tokio::task::spawn_blocking(move || Command::new(python).arg(script).args(args).output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "oracle failed: {stderr}");
    eprint!("{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Reads the stream back with the Python reader: (user records, those on a shard whose hash
/// key range does not hold their partition key).
async fn misrouted(python: &str, endpoint: &str, stream: &KinesisStream) -> (u64, u64) {
    let shards = stream.list_shards().await.unwrap();
    let out = oracle(python, "kinesis_read.py", vec![endpoint.into(), stream.name().into()]).await;
    let (mut all, mut elsewhere) = (0, 0);
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let shard = shards
            .iter()
            .find(|s| s.id.as_str() == v["shard"].as_str().unwrap())
            .unwrap();
        all += 1;
        if !shard
            .hash_range
            .contains(inlet_seams::hash_key(v["pk"].as_str().unwrap()))
        {
            elsewhere += 1;
        }
    }
    (all, elsewhere)
}

/// Runs the workers until the warehouse accounts for `events`; their committed counts.
async fn consume(loc: &KinesisLocation, warehouse_path: &Path, events: u64) -> Vec<StatsSnapshot> {
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let mut stats = Vec::new();
    for i in 0..WORKERS {
        let stream = Arc::new(KinesisStream::connect(loc.clone()).await);
        let w = Arc::new(EmbeddedWarehouse::open(warehouse_path).await.unwrap());
        let mut cfg = WorkerConfig::new(format!("w{i}")).with_failover(Duration::from_secs(3));
        cfg.commit_interval = Duration::from_millis(100);
        let worker = Worker::new(stream, w.clone(), w, cfg);
        stats.push(worker.stats());
        tasks.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    let warehouse = EmbeddedWarehouse::open(warehouse_path).await.unwrap();
    let started = Instant::now();
    let deadline = Duration::from_secs(180);
    loop {
        let t = warehouse.totals().await.unwrap();
        let handled = t.read();
        if handled >= events as i64 {
            break;
        }
        assert!(
            started.elapsed() < deadline,
            "only {handled} of {events} events handled after {deadline:?}"
        );
        assert!(tasks.iter().all(|t| !t.is_finished()), "a worker stopped on its own");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{WORKERS} workers consumed {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    stats.iter().map(|s| s.snapshot()).collect()
}

/// Compares the warehouse with `expected` as `inlet verify` does, and each dead letter with
/// the generated event it came from.
async fn check(w: &EmbeddedWarehouse, expected: &Expected, mut letters: HashMap<Bytes, Vec<Letter>>) {
    common::check(w, expected).await;
    // Each dead letter is a generated bad event, with its own key, kind and field.
    let dead = w.dead_letters(1_000_000).await.unwrap();
    assert_eq!(dead.len() as u64, expected.dead_lettered());
    for d in &dead {
        let candidates = letters
            .get_mut(&d.data)
            .unwrap_or_else(|| panic!("dead letter of no bad event: {d:?}"));
        let at = candidates
            .iter()
            .position(|(pk, kind, field)| {
                *pk == d.partition_key && *kind == d.kind.as_str() && *field == d.field.as_deref()
            })
            .unwrap_or_else(|| panic!("dead letter {d:?} is none of {candidates:?}"));
        candidates.swap_remove(at);
    }
    assert!(letters.values().all(Vec::is_empty));
    eprintln!(
        "exact: {} aggregated, {} dead-lettered, {} viewing rows, {} game rows",
        expected.aggregated,
        expected.dead_lettered(),
        expected.viewing.len(),
        expected.games.len()
    );
}

async fn independent_writer(mode: &str, seed: u64) {
    let (endpoint, python) = setup();
    let n = events();
    let loc = patient_location(&endpoint, &format!("independent-{mode}"));
    let stream = KinesisStream::connect(loc.clone()).await;
    stream.create(SHARDS).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let map = ShardMap::new(&stream.open_shards().await.unwrap()).unwrap();
    let file = dir.path().join("records.jsonl");
    let (expected, letters) = workload(n, seed, &map, &file);
    assert!(
        expected.dead_lettered() > 0 && expected.dead.len() > 3,
        "a workload with dead letters of several fields"
    );

    let started = Instant::now();
    let mut args = vec![
        endpoint.clone(),
        stream.name().to_owned(),
        file.display().to_string(),
        mode.to_owned(),
    ];
    if mode == "aggregated" {
        args.push(MAX_AGG_BYTES.to_string());
    }
    oracle(&python, "kinesis_write.py", args).await;
    eprintln!("wrote {n} events ({mode}) in {:.1} s", started.elapsed().as_secs_f64());

    let (read_back, elsewhere) = misrouted(&python, &endpoint, &stream).await;
    assert_eq!(read_back, n, "the Python reader reads back every user record");
    eprintln!("{elsewhere} of {n} user records sit on a shard that does not own their partition key");
    if mode == "aggregated" {
        // With 4 shards, about three quarters; demand a good share.
        assert!(elsewhere > n / 4, "aggregates put user records on other shards");
    } else {
        assert_eq!(elsewhere, 0, "plain records are routed by their own key");
    }

    let warehouse_path = dir.path().join("warehouse.db");
    let stats = consume(&loc, &warehouse_path, n).await;
    let warehouse = EmbeddedWarehouse::open(&warehouse_path).await.unwrap();
    check(&warehouse, &expected, letters).await;
    // No event was committed twice (the warehouse replaces cumulative rows, so its totals
    // alone would not show it): the workers' committed counts add up to the workload.
    let handled: u64 = stats.iter().map(StatsSnapshot::handled).sum();
    assert_eq!(handled, n, "events committed by the workers: {stats:?}");
    stream.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator and the KPL oracle Python: run infra/test.sh"]
async fn plain_records_from_an_independent_writer_are_consumed_exactly() {
    independent_writer("plain", 11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator and the KPL oracle Python: run infra/test.sh"]
async fn aggregates_from_the_official_library_are_consumed_exactly() {
    independent_writer("aggregated", 12).await;
}
