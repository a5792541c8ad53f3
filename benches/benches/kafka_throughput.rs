//! Kafka throughput, Inlet next to an independent client, in one run, on one broker
//! (`INLET_KAFKA_BOOTSTRAP`; for figures, a fresh one of its own: `infra/kafka-broker.sh`) and
//! the same generated events (`inlet_benches::events(n, 5)`):
//!
//! a. Inlet's `Producer` (`ProducerConfig::default()`, `send_all` in slices of 1,000) into a
//!    fresh 8-partition topic A, until `close()` returns (every event delivered);
//! b. the peer, confluent-kafka (`benches/peers/kafka_peer.py produce`, with
//!    `INLET_KAFKA_ORACLE_PYTHON`), into a fresh 8-partition topic B: the same events to the
//!    same partitions, with Inlet's producer settings (idempotent, lz4, linger 5 ms). It times
//!    itself: the produce loop and the flush, after decoding the events file and giving its
//!    client 1.5 s to get its idempotent producer id (Inlet's client, made before topic A,
//!    has its id by then too);
//! c. Inlet reading topic A: (i) the raw reader, all 8 partitions at once (`open` from the
//!    trim horizon, `next_batch` until each partition's end); (ii) the whole consumer, two
//!    in-process `GroupWorker`s into an embedded warehouse until their commits reach every
//!    event (Kafka group join, decoding, validation, rollups, SQLite commits included);
//! d. the peer reading topic A (`kafka_peer.py consume`: every partition assigned from the
//!    beginning, no group), timed by itself.
//!
//! For experiments (each changed setting is named in the table):
//! - `INLET_KAFKA_BENCH_PRODUCER="max_put_records=10000 max_in_flight=8 linger_ms=5"`: Inlet's
//!   `ProducerConfig` other than the default;
//! - `INLET_KAFKA_BENCH_SETTINGS="linger.ms=1 ..."`: librdkafka settings of Inlet's clients of
//!   topic A (as in a `kafka://` URL), over Inlet's defaults;
//! - `INLET_KAFKA_BENCH_PEER_SETTINGS="batch.num.messages=500 ..."`: librdkafka settings the
//!   peer's producer applies over Inlet's; `INLET_KAFKA_BENCH_PEER_CONSUMER_SETTINGS="..."`, the
//!   peer's consumer over librdkafka's defaults.
//!
//! CPU seconds: this process's (user + system, from `/proc/self/stat`) over each Inlet part,
//! the peer's own (`resource.getrusage`) over its timed part, and the broker's when
//! `INLET_KAFKA_BENCH_BROKER_PID` names its process.
//!
//! `cargo bench -p inlet-benches --bench kafka_throughput` runs 500,000 events; under
//! `cargo test --benches` 5,000, as a smoke check; `INLET_KAFKA_BENCH_EVENTS` overrides both.
//! Without `INLET_KAFKA_BOOTSTRAP` it says it skipped, and without `INLET_KAFKA_ORACLE_PYTHON`
//! it skips the peer's parts; under `infra/test.sh` (`INLET_BENCH_SERVERS=1`) either fails. The topics stay
//! on the broker (Tansu 0.6.0 deletes every topic on a DeleteTopics of one).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report

use base64::Engine;
use inlet_consumer::{GroupWorker, WorkerConfig};
use inlet_embedded::EmbeddedWarehouse;
use inlet_kafka::KafkaStream;
use inlet_kafka::testing::{location, topic_on};
use inlet_producer::{Producer, ProducerConfig};
use inlet_seams::{HashKeyRange, StartPosition, StreamReader};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const PARTITIONS: usize = 8;
const WORKERS: usize = 2;

/// CPU seconds (user + system) of process `pid` ("self" for this one) so far.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15, in clock ticks (USER_HZ, 100 on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU seconds of this process and of the broker (when its pid is known).
#[derive(Debug, Clone, Copy)]
struct Cpu {
    own: f64,
    broker: Option<f64>,
}

impl Cpu {
    fn now(broker_pid: Option<&str>) -> Self {
        Self {
            own: cpu_secs("self").unwrap_or(f64::NAN),
            broker: broker_pid.and_then(cpu_secs),
        }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            own: self.own - before.own,
            broker: self.broker.zip(before.broker).map(|(a, b)| a - b),
        }
    }
}

/// One measured part.
#[derive(Debug)]
struct Row {
    name: String,
    events: u64,
    bytes: u64,
    secs: f64,
    /// Client CPU seconds over the part (this process's, or the peer's own).
    cpu: Option<f64>,
    broker_cpu: Option<f64>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }

    fn print(&self, width: usize) {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        println!(
            "{:<width$} {:>9} {:>8.2} {:>11.0} {:>7.2} {:>8} {:>8}",
            self.name,
            self.events,
            self.secs,
            self.rate(),
            self.bytes as f64 / self.secs / 1e6,
            opt(self.cpu),
            opt(self.broker_cpu),
        );
    }
}

/// Runs `kafka_peer.py MODE BOOTSTRAP TOPIC ARG [SETTING=VALUE ...]` and reads its report.
fn run_peer(python: &str, args: &[&str], name: &str, broker_pid: Option<&str>) -> Row {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/kafka_peer.py");
    let before = Cpu::now(broker_pid);
    let started = Instant::now();
    let out = Command::new(python).arg(script).args(args).output().unwrap();
    let outside = started.elapsed().as_secs_f64();
    let broker_cpu = Cpu::now(broker_pid).since(before).broker;
    assert!(
        out.status.success(),
        "kafka_peer.py {}: {}{}",
        args[0],
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let secs = report["seconds"].as_f64().unwrap();
    eprintln!(
        "  ({name}: {secs:.2} s timed inside Python, {outside:.2} s for the whole process; librdkafka {})",
        report["librdkafka"].as_str().unwrap_or("?")
    );
    Row {
        name: name.to_owned(),
        events: report["events"].as_u64().unwrap(),
        bytes: report["bytes"].as_u64().unwrap(),
        secs,
        cpu: Some(report["cpu_user"].as_f64().unwrap() + report["cpu_sys"].as_f64().unwrap()),
        // Over the peer's whole process, not only its timed part.
        broker_cpu,
    }
}

/// a. Inlet's producer into `stream`.
async fn inlet_produce(stream: Arc<KafkaStream>, events: &[(String, bytes::Bytes)], broker_pid: Option<&str>) -> Row {
    let bytes: usize = events.iter().map(|(k, d)| k.len() + d.len()).sum();
    let before = Cpu::now(broker_pid);
    let started = Instant::now();
    let (config, mut changed) = producer_config();
    for (k, v) in &stream.location().settings {
        changed = format!("{changed} {k}={v}").trim().to_owned();
    }
    let producer = Producer::start(stream, config).await.unwrap();
    for chunk in events.chunks(1_000) {
        producer.send_all(chunk.to_vec()).await.unwrap();
    }
    let sent = started.elapsed().as_secs_f64();
    let stats = producer.close().await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let cpu = Cpu::now(broker_pid).since(before);
    assert_eq!((stats.delivered, stats.failed), (events.len() as u64, 0), "{stats:?}");
    eprintln!(
        "  (Inlet produce: send_all returned after {sent:.2} s; {} put_records calls, {} retries)",
        stats.put_calls, stats.retries
    );
    Row {
        name: match changed.as_str() {
            "" => "a. Inlet produce (Producer, topic A)".to_owned(),
            c => format!("a. Inlet produce (Producer, topic A, {c})"),
        },
        events: stats.delivered,
        bytes: bytes as u64,
        secs,
        cpu: Some(cpu.own),
        broker_cpu: cpu.broker,
    }
}

/// `ProducerConfig::default()`, with `INLET_KAFKA_BENCH_PRODUCER`'s changes (and them).
fn producer_config() -> (ProducerConfig, String) {
    let mut config = ProducerConfig::default();
    let changed = std::env::var("INLET_KAFKA_BENCH_PRODUCER").unwrap_or_default();
    for setting in changed.split_whitespace() {
        let (key, value) = setting
            .split_once('=')
            .expect("INLET_KAFKA_BENCH_PRODUCER: KEY=VALUE ...");
        let value: usize = value.parse().expect("INLET_KAFKA_BENCH_PRODUCER: a number");
        match key {
            "max_put_records" => config.batch.max_put_records = value,
            "max_in_flight" => config.max_in_flight = value,
            "linger_ms" => config.batch.linger_ms = value as u64,
            other => {
                panic!("INLET_KAFKA_BENCH_PRODUCER: unknown {other:?} (max_put_records, max_in_flight, linger_ms)")
            }
        }
    }
    (config, changed.trim().to_owned())
}

/// c(i). Inlet's raw reader over every partition of `stream` at once, each up to its end
/// offset as `describe` gives it.
async fn inlet_read_raw(stream: Arc<KafkaStream>, broker_pid: Option<&str>) -> Row {
    let ends: Vec<i64> = stream
        .describe()
        .await
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.high)
        .collect();
    let before = Cpu::now(broker_pid);
    let started = Instant::now();
    let shards = stream.list_shards().await.unwrap();
    assert_eq!(shards.len(), ends.len());
    let tasks: Vec<_> = shards
        .into_iter()
        .zip(ends)
        .map(|(shard, end)| {
            let stream = Arc::clone(&stream);
            tokio::spawn(async move {
                let mut reader = stream.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
                let (mut records, mut bytes, mut next) = (0u64, 0u64, 0i64);
                let mut idle = Instant::now();
                while next < end {
                    let batch = reader.next_batch(10_000).await.unwrap();
                    if batch.records.is_empty() {
                        assert!(
                            idle.elapsed() < Duration::from_secs(60),
                            "{shard:?} stalled at {next} of {end}"
                        );
                        continue;
                    }
                    idle = Instant::now();
                    for r in &batch.records {
                        bytes += (r.partition_key.len() + r.data.len()) as u64;
                        next = r.sequence.to_u64().unwrap() as i64 + 1;
                    }
                    records += batch.records.len() as u64;
                }
                (records, bytes)
            })
        })
        .collect();
    let (mut events, mut bytes) = (0, 0);
    for t in tasks {
        let (r, b) = t.await.unwrap();
        events += r;
        bytes += b;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = Cpu::now(broker_pid).since(before);
    Row {
        name: "c(i). Inlet raw read (8 readers, topic A)".to_owned(),
        events,
        bytes,
        secs,
        cpu: Some(cpu.own),
        broker_cpu: cpu.broker,
    }
}

/// c(ii). Two group workers over `stream` into a fresh embedded warehouse, until their
/// commits hold `n` events.
async fn inlet_consume(stream: Arc<KafkaStream>, n: u64, bytes: u64, broker_pid: Option<&str>) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Arc::new(EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap());
    let stop = CancellationToken::new();
    let before = Cpu::now(broker_pid);
    let started = Instant::now();
    let mut stats = Vec::new();
    let mut workers = Vec::new();
    for i in 0..WORKERS {
        let id = format!("bench-{i}");
        let member = stream.join_group(&id).unwrap();
        let w = GroupWorker::new(
            Arc::new(member),
            warehouse.clone(),
            warehouse.clone(),
            WorkerConfig::new(id),
        );
        stats.push(w.stats());
        workers.push(tokio::spawn(w.run(stop.clone())));
    }
    let handled = || stats.iter().map(|s| s.snapshot().handled()).sum::<u64>();
    let mut first_commit = None;
    let mut last_progress = (0, Instant::now());
    loop {
        let h = handled();
        if h > 0 && first_commit.is_none() {
            first_commit = Some(started.elapsed().as_secs_f64());
        }
        if h >= n {
            break;
        }
        if h != last_progress.0 {
            last_progress = (h, Instant::now());
        }
        assert!(
            last_progress.1.elapsed() < Duration::from_secs(120),
            "the workers stalled at {h} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = Cpu::now(broker_pid).since(before);
    let commits: u64 = stats.iter().map(|s| s.snapshot().commits).sum();
    stop.cancel();
    for w in workers {
        w.await.unwrap().unwrap();
    }
    let totals = inlet_seams::Warehouse::totals(&*warehouse).await.unwrap();
    assert_eq!((totals.aggregated, totals.dead_lettered()), (n as i64, 0), "{totals:?}");
    eprintln!(
        "  (Inlet consume: first commit after {:.2} s (group join and the 1 s commit interval included); {commits} commits)",
        first_commit.unwrap_or(f64::NAN)
    );
    Row {
        name: "c(ii). Inlet consume (2 GroupWorkers, topic A)".to_owned(),
        events: n,
        bytes,
        secs,
        cpu: Some(cpu.own),
        broker_cpu: cpu.broker,
    }
}

/// Writes `events` as JSON lines `{"key", "data" (base64), "partition"}`, each with the
/// partition Inlet's producer routes it to (the `p`-th of `partitions` hash-key slices).
fn write_events_file(path: &Path, events: &[(String, bytes::Bytes)], partitions: usize) {
    let ranges = HashKeyRange::split_evenly(partitions as u32);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    for (key, data) in events {
        let hash = inlet_seams::hash_key(key);
        let partition = ranges.iter().position(|r| r.contains(hash)).unwrap();
        let line = serde_json::json!({"key": key, "data": b64.encode(data), "partition": partition});
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("INLET_KAFKA_BENCH_EVENTS")
        .ok()
        .map(|v| v.parse().expect("INLET_KAFKA_BENCH_EVENTS: a number of events"))
        .unwrap_or(if full { 500_000 } else { 5_000 });
    let Some(bootstrap) = inlet_benches::server_var("INLET_KAFKA_BOOTSTRAP", "the Kafka broker", "kafka_throughput")
    else {
        return;
    };
    let python = inlet_benches::server_var(
        "INLET_KAFKA_ORACLE_PYTHON",
        "a Python with confluent-kafka",
        "kafka_throughput's peer parts (b, d)",
    );
    let broker_pid = std::env::var("INLET_KAFKA_BENCH_BROKER_PID").ok();
    let broker_pid = broker_pid.as_deref();
    let events: Vec<(String, bytes::Bytes)> = inlet_benches::events(n, 5)
        .into_iter()
        .map(|e| (e.partition_key, e.data))
        .collect();
    let bytes: u64 = events.iter().map(|(k, d)| (k.len() + d.len()) as u64).sum();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    write_events_file(&file, &events, PARTITIONS);
    println!(
        "{n} events, {bytes} bytes of key + payload (mean {:.0} bytes), {PARTITIONS} partitions, broker {bootstrap}",
        bytes as f64 / n as f64
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        let mut loc_a = location(&bootstrap, "bench-inlet");
        for setting in std::env::var("INLET_KAFKA_BENCH_SETTINGS")
            .unwrap_or_default()
            .split_whitespace()
        {
            let (k, v) = setting
                .split_once('=')
                .expect("INLET_KAFKA_BENCH_SETTINGS: KEY=VALUE ...");
            loc_a.settings.insert(k.to_owned(), v.to_owned());
        }
        let a = Arc::new(topic_on(loc_a, PARTITIONS).await);
        rows.push(inlet_produce(Arc::clone(&a), &events, broker_pid).await);
        let topic_a = a.location().topic.clone();
        let b = python
            .as_ref()
            .map(|python| (python, location(&bootstrap, "bench-peer")));
        if let Some((python, loc)) = &b {
            let b = topic_on(loc.clone(), PARTITIONS).await;
            let settings = std::env::var("INLET_KAFKA_BENCH_PEER_SETTINGS").unwrap_or_default();
            let mut args = vec!["produce", &bootstrap, &loc.topic, file.to_str().unwrap()];
            args.extend(settings.split_whitespace());
            let name = match settings.trim() {
                "" => "b. confluent-kafka produce (topic B)".to_owned(),
                s => format!("b. confluent-kafka produce (topic B, {s})"),
            };
            rows.push(run_peer(python, &args, &name, broker_pid));
            // The same events on the same partitions: the same offsets.
            let ends = |t: inlet_kafka::admin::TopicInfo| t.partitions.iter().map(|p| p.high).collect::<Vec<_>>();
            let (ends_a, ends_b) = (ends(a.describe().await.unwrap()), ends(b.describe().await.unwrap()));
            assert_eq!(ends_a, ends_b, "partition ends of topic A, topic B");
        }
        // Readers on clients of their own, not the producer's.
        let reader = Arc::new(KafkaStream::connect(a.location().clone()).unwrap());
        rows.push(inlet_read_raw(reader, broker_pid).await);
        if let Some(python) = &python {
            let settings = std::env::var("INLET_KAFKA_BENCH_PEER_CONSUMER_SETTINGS").unwrap_or_default();
            let count = n.to_string();
            let mut args = vec!["consume", &bootstrap, &topic_a, &count];
            args.extend(settings.split_whitespace());
            let name = match settings.trim() {
                "" => "d. confluent-kafka consume (topic A)".to_owned(),
                s => format!("d. confluent-kafka consume (topic A, {s})"),
            };
            rows.push(run_peer(python, &args, &name, broker_pid));
        }
        let group = Arc::new(KafkaStream::connect(a.location().clone()).unwrap());
        rows.push(inlet_consume(group, n, bytes, broker_pid).await);
    });
    for r in &rows {
        assert_eq!((r.events, r.bytes), (n, bytes), "{}: events, bytes", r.name);
    }

    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    println!(
        "{:<width$} {:>9} {:>8} {:>11} {:>7} {:>8} {:>8}",
        "part", "events", "wall s", "events/s", "MB/s", "CPU s", "broker"
    );
    rows.sort_by(|x, y| x.name.cmp(&y.name));
    for r in &rows {
        r.print(width);
    }
    let rate = |prefix: &str| rows.iter().find(|r| r.name.starts_with(prefix)).map(Row::rate);
    if let (Some(inlet), Some(peer)) = (rate("a."), rate("b.")) {
        println!("produce: Inlet / confluent-kafka = {:.2}", inlet / peer);
    }
    if let (Some(inlet), Some(peer)) = (rate("c(i)."), rate("d.")) {
        println!("raw consume: Inlet / confluent-kafka = {:.2}", inlet / peer);
    }
    println!(
        "(CPU s: this process over Inlet's parts, the peer's own over its timed part; broker: \
         its CPU s over the part, the peer's whole process for b and d)"
    );
}
