//! Generated events produced to a 16-shard stream of the emulator, read back by an
//! independent client (boto3 + the official `aws-kinesis-agg` deaggregator): identical
//! payloads, partition keys and per-key order; Inlet's own reader and deaggregator agree
//! with it record for record, byte for byte.
//!
//! `INLET_KINESIS_ORACLE_EVENTS` sets the count (default 20,000; the closing figures of the
//! Kinesis producer issue were taken with 1,000,000).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use base64::Engine;
use common::{ReadBack, events, producer_config, read_all};
use inlet_kinesis::KinesisStream;
use inlet_kinesis::testing::{endpoint, patient_location};
use inlet_producer::Producer;
use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator and the KPL oracle Python: run infra/test.sh"]
async fn an_independent_client_reads_back_exactly_what_was_sent() {
    let endpoint = endpoint();
    let python = std::env::var("INLET_KPL_ORACLE_PYTHON").unwrap_or_else(|_| {
        panic!(
            "INLET_KPL_ORACLE_PYTHON is not set: this test needs the KPL oracle Python (boto3 and \
             aws-kinesis-agg); run the tests through infra/test.sh, which installs it"
        )
    });
    let n: u64 = std::env::var("INLET_KINESIS_ORACLE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let stream = KinesisStream::connect(patient_location(&endpoint, "oracle")).await;
    stream.create(16).await.unwrap();
    let sent = events(n, 7);

    let started = std::time::Instant::now();
    let producer = Producer::start(Arc::new(stream.clone()), producer_config())
        .await
        .unwrap();
    for (key, data) in &sent {
        producer.send(key.clone(), data.clone()).await.unwrap();
    }
    let stats = producer.close().await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {n} events in {secs:.1} s ({:.0} events/s): {} stream records, {} calls, {} retries",
        n as f64 / secs,
        stats.stream_records,
        stats.put_calls,
        stats.retries
    );
    assert_eq!((stats.delivered, stats.failed), (n, 0));

    // The oracle's view.
    let out = Command::new(&python)
        .arg(inlet_kinesis::testing::infra_dir().join("oracle/kinesis_read.py"))
        .args([&endpoint, stream.name()])
        .output()
        .unwrap();
    assert!(out.status.success(), "oracle: {}", String::from_utf8_lossy(&out.stderr));
    let b64 = base64::engine::general_purpose::STANDARD;
    let oracle: Vec<ReadBack> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            ReadBack {
                shard: v["shard"].as_str().unwrap().to_owned(),
                sequence: v["seq"].as_str().unwrap().to_owned(),
                sub: v["sub"].as_u64().map(|s| s as u32),
                partition_key: v["pk"].as_str().unwrap().to_owned(),
                data: b64.decode(v["data"].as_str().unwrap()).unwrap().into(),
                outer_hash_key: 0,
            }
        })
        .collect();
    assert_eq!(
        oracle.len() as u64,
        n,
        "the oracle read back a different number of events"
    );

    // Same events, each key's events in the order they were sent.
    let mut per_key_sent: HashMap<&str, Vec<&[u8]>> = HashMap::new();
    for (k, d) in &sent {
        per_key_sent.entry(k).or_default().push(d);
    }
    let mut per_key_read: HashMap<&str, Vec<&[u8]>> = HashMap::new();
    for r in &oracle {
        per_key_read.entry(&r.partition_key).or_default().push(&r.data);
    }
    assert_eq!(per_key_read.len(), per_key_sent.len());
    for (k, want) in &per_key_sent {
        assert!(
            per_key_read.get(k) == Some(want),
            "key {k}: payloads or their order differ"
        );
    }

    // Inlet's reader and deaggregator: the same user records, byte for byte, in the same
    // positions.
    let (_, ours) = read_all(&stream).await;
    assert_eq!(ours.len(), oracle.len());
    for (a, b) in ours.iter().zip(&oracle) {
        assert_eq!(
            (&a.shard, &a.sequence, a.sub, &a.partition_key, &a.data),
            (&b.shard, &b.sequence, b.sub, &b.partition_key, &b.data)
        );
    }
    stream.delete().await.unwrap();
}
