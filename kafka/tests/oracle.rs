#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
//! Inlet against an independent Kafka client (confluent-kafka, on the librdkafka its wheel
//! bundles, `infra/oracle/kafka_*.py`), through the shared broker:
//!
//! - Inlet's producer writes generated events to an 8-partition topic and the oracle reads
//!   back exactly those events, one message each, every key on the partition of its hash-key
//!   slice, each key's events in the order they were sent;
//! - the oracle writes generated events (its own partitioner, zstd batches, idempotent) and
//!   Inlet's reader returns every one, key and bytes intact, at the offsets the oracle sees.
//!
//! `INLET_KAFKA_ORACLE_EVENTS` sets the count (default 20,000).
//!
//! The topics are left on the broker: Tansu 0.6.0 deletes every topic on a DeleteTopics of
//! one (see `infra/kafka-broker.sh`), which would pull the topics of tests running alongside
//! from under them; the broker is thrown away after the run.
mod common;

use base64::Engine;
use bytes::Bytes;
use common::events;
use inlet_kafka::testing::{fresh_topic, infra_dir};
use inlet_kafka::{KafkaStream, shard_partition};
use inlet_producer::{Producer, ProducerConfig};
use inlet_seams::{HashKeyRange, StartPosition, StreamReader};
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTITIONS: usize = 8;

/// The oracle's Python. Panics when `INLET_KAFKA_ORACLE_PYTHON` is not set: the tests that
/// call this are `#[ignore]`d, and run only through `infra/test.sh`, which installs it.
pub(crate) fn oracle_python() -> String {
    std::env::var("INLET_KAFKA_ORACLE_PYTHON").unwrap_or_else(|_| {
        panic!(
            "INLET_KAFKA_ORACLE_PYTHON is not set: this test needs a Python with confluent-kafka; \
             run the tests through infra/test.sh, which installs it"
        )
    })
}

pub(crate) fn event_count() -> u64 {
    std::env::var("INLET_KAFKA_ORACLE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// A message as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: String,
    pub(crate) data: Bytes,
}

/// The oracle's reading of the whole topic (`count` messages expected), partition by
/// partition, each in offset order.
pub(crate) fn oracle_read(python: &str, bootstrap: &str, topic: &str, count: usize) -> Vec<Message> {
    let out = Command::new(python)
        .arg(infra_dir().join("oracle/kafka_read.py"))
        .args([bootstrap, topic, &count.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "oracle: {}", String::from_utf8_lossy(&out.stderr));
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut read: Vec<Message> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Message {
                partition: v["partition"].as_i64().unwrap() as i32,
                offset: v["offset"].as_i64().unwrap(),
                key: v["key"].as_str().expect("every message has a key").to_owned(),
                data: b64.decode(v["data"].as_str().unwrap()).unwrap().into(),
            }
        })
        .collect();
    // It prints them as they come, partitions interleaved (a stable sort keeps any repeat).
    read.sort_by_key(|m| (m.partition, m.offset));
    read
}

/// Writes `events` with the oracle; returns how many it says were delivered.
pub(crate) fn oracle_write(python: &str, bootstrap: &str, topic: &str, events: &[(String, Bytes)]) -> u64 {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut child = Command::new(python)
        .arg(infra_dir().join("oracle/kafka_write.py"))
        .args([bootstrap, topic])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for (key, data) in events {
        input.push_str(&serde_json::json!({"key": key, "data": b64.encode(data)}).to_string());
        input.push('\n');
    }
    // Written from another thread: the child's pipes must not fill up while we write.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "oracle writer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

/// Every message of every partition through Inlet's reader (`list_shards`, `open` at the
/// trim horizon, `next_batch`), each partition up to the high watermark `describe` gives.
pub(crate) async fn inlet_read(stream: &KafkaStream) -> Vec<Message> {
    let info = stream.describe().await.unwrap();
    let shards = stream.list_shards().await.unwrap();
    assert_eq!(shards.len(), info.partitions.len());
    let mut out = Vec::new();
    for (shard, offsets) in shards.iter().zip(&info.partitions) {
        assert_eq!(shard.id, offsets.shard);
        let partition = shard_partition(&shard.id).unwrap();
        let mut reader = stream.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut next = offsets.low;
        while next < offsets.high {
            assert!(
                Instant::now() < deadline,
                "{}: stuck at offset {next} of {}",
                shard.id,
                offsets.high
            );
            let batch = reader.next_batch(10_000).await.unwrap();
            for r in batch.records {
                let offset = r.sequence.to_u64().unwrap() as i64;
                assert!(offset >= next, "{}: offset {offset} after {next}", shard.id);
                next = offset + 1;
                out.push(Message {
                    partition,
                    offset,
                    key: r.partition_key,
                    data: r.data,
                });
            }
        }
    }
    out
}

/// Each key's payloads, in the order given.
fn per_key<'a>(records: impl Iterator<Item = (&'a str, &'a [u8])>) -> HashMap<&'a str, Vec<&'a [u8]>> {
    let mut m: HashMap<&str, Vec<&[u8]>> = HashMap::new();
    for (k, d) in records {
        m.entry(k).or_default().push(d);
    }
    m
}

/// The same events as `sent`, each key's in send order, each key on one partition.
fn assert_same_events(sent: &[(String, Bytes)], read: &[Message]) {
    assert_eq!(read.len(), sent.len(), "a different number of messages was read back");
    // `read` is partition by partition, each in offset order: per key, that is its order.
    let want = per_key(sent.iter().map(|(k, d)| (k.as_str(), &d[..])));
    let got = per_key(read.iter().map(|m| (m.key.as_str(), &m.data[..])));
    assert_eq!(got.len(), want.len(), "a different number of keys");
    for (k, w) in &want {
        assert!(got.get(k) == Some(w), "key {k}: payloads or their order differ");
    }
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for m in read {
        let p = *partition_of.entry(&m.key).or_insert(m.partition);
        assert_eq!(p, m.partition, "key {} is on partitions {p} and {}", m.key, m.partition);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker and confluent-kafka: run infra/test.sh"]
async fn an_independent_client_reads_back_what_inlet_produced() {
    let stream = fresh_topic("oracle-produce", PARTITIONS).await;
    let python = oracle_python();
    let n = event_count();
    let sent = events(n, 11);
    let loc = stream.location().clone();
    let stream = Arc::new(stream);

    let started = Instant::now();
    let config = ProducerConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        ..ProducerConfig::default()
    };
    let producer = Producer::start(stream.clone(), config).await.unwrap();
    producer.send_all(sent.clone()).await.unwrap();
    let stats = producer.close().await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {n} events in {secs:.1} s ({:.0} events/s): {} messages, {} calls, {} retries",
        n as f64 / secs,
        stats.stream_records,
        stats.put_calls,
        stats.retries
    );
    assert_eq!((stats.delivered, stats.failed), (n, 0));
    assert_eq!(stats.stream_records, n, "one message per event");

    let started = Instant::now();
    let read = oracle_read(&python, &loc.bootstrap, &loc.topic, n as usize);
    eprintln!(
        "the oracle read {} messages in {:.1} s",
        read.len(),
        started.elapsed().as_secs_f64()
    );
    assert_same_events(&sent, &read);
    // The partition is the one whose hash-key slice holds the key's MD5 hash key.
    let slices = HashKeyRange::split_evenly(PARTITIONS as u32);
    for m in &read {
        let p = slices
            .iter()
            .position(|s| s.contains(inlet_seams::hash_key(&m.key)))
            .unwrap();
        assert_eq!(
            m.partition, p as i32,
            "key {} is not on its hash-key slice's partition",
            m.key
        );
    }
    let used = read
        .iter()
        .map(|m| m.partition)
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(used.len(), PARTITIONS, "every partition gets keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker and confluent-kafka: run infra/test.sh"]
async fn inlet_reads_back_what_an_independent_client_produced() {
    let stream = fresh_topic("oracle-consume", PARTITIONS).await;
    let python = oracle_python();
    let n = event_count();
    let sent = events(n, 12);
    let loc = stream.location().clone();

    let started = Instant::now();
    let delivered = oracle_write(&python, &loc.bootstrap, &loc.topic, &sent);
    eprintln!(
        "the oracle wrote {delivered} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(delivered, n);

    let started = Instant::now();
    let ours = inlet_read(&stream).await;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "Inlet's reader read {} messages in {secs:.1} s ({:.0}/s)",
        ours.len(),
        ours.len() as f64 / secs
    );
    assert_same_events(&sent, &ours);

    // Record for record, the same positions as the oracle's own reading.
    let theirs = oracle_read(&python, &loc.bootstrap, &loc.topic, n as usize);
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a, b);
    }
}
