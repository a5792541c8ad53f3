//! The producer against the emulator behind the fault proxy: with records throttled and
//! whole calls refused, every event is delivered exactly once or returned to its sender as
//! failed (and written to the dead-letter file); retries are counted; nothing is lost
//! silently.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use common::{events, producer_config, read_all};
use inlet_kinesis::KinesisStream;
use inlet_kinesis::fault_proxy::{FaultProxy, Faults};
use inlet_kinesis::testing::{endpoint, patient_location};
use inlet_producer::{Producer, ProducerConfig};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn throttling_and_refused_calls_are_retried_until_each_event_is_written_once() {
    let endpoint = endpoint();
    let faults = Faults {
        record_throttle_rate: 0.3,
        call_failure_rate: 0.2,
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&endpoint, faults, 42).await.unwrap();
    let direct = KinesisStream::connect(patient_location(&endpoint, "faults")).await;
    direct.create(4).await.unwrap();
    let via_proxy = KinesisStream::connect(inlet_kinesis::KinesisLocation {
        endpoint: Some(proxy.endpoint()),
        ..direct.location().clone()
    })
    .await;

    let sent = events(5_000, 11);
    let config = ProducerConfig {
        // Small aggregates: many stream records, so many chances to fail.
        batch: inlet_producer::BatchLimits {
            max_aggregate_bytes: 2_000,
            max_put_records: 50,
            ..producer_config().batch
        },
        ..producer_config()
    };
    let producer = Producer::start(Arc::new(via_proxy), config).await.unwrap();
    let mut deliveries = Vec::new();
    for (key, data) in &sent {
        deliveries.push(producer.send_confirmed(key.clone(), data.clone()).await.unwrap());
    }
    let mut landed = HashMap::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let d = d.await.unwrap_or_else(|e| panic!("event {i} not delivered: {e}"));
        landed.insert((d.shard.to_string(), d.sequence.to_string(), d.sub_sequence), i);
    }
    let stats = producer.close().await.unwrap();
    let injected = proxy.stats();
    eprintln!("{stats:?}\n{injected:?}");
    assert!(
        injected.throttled_records > 0 && injected.refused_calls > 0,
        "{injected:?}"
    );
    assert!(stats.retries > 0, "failures must have been retried");
    assert_eq!((stats.delivered, stats.failed), (sent.len() as u64, 0));

    // Read back directly: each event exactly once, where its delivery said.
    let (_, read) = read_all(&direct).await;
    assert_eq!(read.len(), sent.len(), "every event once, no duplicates");
    for r in &read {
        let i = landed[&(r.shard.clone(), r.sequence.clone(), r.sub.unwrap_or(0))];
        assert_eq!((&r.partition_key, &r.data), (&sent[i].0, &sent[i].1));
    }
    direct.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn records_that_cannot_be_written_in_time_come_back_failed_and_are_dead_lettered() {
    let endpoint = endpoint();
    let faults = Faults {
        record_throttle_rate: 1.0,
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&endpoint, faults, 7).await.unwrap();
    let direct = KinesisStream::connect(patient_location(&endpoint, "expire")).await;
    direct.create(2).await.unwrap();
    let via_proxy = KinesisStream::connect(inlet_kinesis::KinesisLocation {
        endpoint: Some(proxy.endpoint()),
        ..direct.location().clone()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let config = ProducerConfig {
        record_ttl: Duration::from_millis(800),
        dead_letter: Some(dead.clone()),
        ..producer_config()
    };
    let sent = events(300, 3);
    let producer = Producer::start(Arc::new(via_proxy), config).await.unwrap();
    let mut deliveries = Vec::new();
    for (key, data) in &sent {
        deliveries.push(producer.send_confirmed(key.clone(), data.clone()).await.unwrap());
    }
    for d in deliveries {
        let e = d.await.expect_err("nothing can be written");
        assert_eq!(e.code, "ProvisionedThroughputExceededException");
        assert!(e.retryable && e.attempts >= 2, "{e:?}");
    }
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.delivered, stats.failed), (0, sent.len() as u64));

    // One dead-letter line per event, with the reason and the event itself.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), sent.len());
    assert!(lines.iter().all(|l| l["reason"] == "expired"));
    let mut keys: Vec<&str> = lines.iter().map(|l| l["partition_key"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = sent.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    want.sort_unstable();
    assert_eq!(keys, want);
    let (_, read) = read_all(&direct).await;
    assert!(read.is_empty(), "nothing reached the stream");
    direct.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn unanswered_calls_are_written_and_their_retries_write_copies() {
    let endpoint = endpoint();
    let faults = Faults {
        unanswered_call_rate: 0.2,
        ..Faults::default()
    };
    // Seed 7: the second PutRecords call is the first left unanswered.
    let proxy = FaultProxy::start(&endpoint, faults, 7).await.unwrap();
    let direct = KinesisStream::connect(patient_location(&endpoint, "unanswered")).await;
    direct.create(2).await.unwrap();
    // A short call timeout: an unanswered call is given up on after a second.
    let via_proxy = KinesisStream::connect(inlet_kinesis::KinesisLocation {
        endpoint: Some(proxy.endpoint()),
        call_timeout: Duration::from_secs(1),
        ..direct.location().clone()
    })
    .await;
    let sent = events(2_000, 13);
    let config = ProducerConfig {
        batch: inlet_producer::BatchLimits {
            max_aggregate_bytes: 4_000,
            max_put_records: 10,
            ..producer_config().batch
        },
        ..producer_config()
    };
    let producer = Producer::start(Arc::new(via_proxy), config).await.unwrap();
    let mut deliveries = Vec::new();
    for (key, data) in &sent {
        deliveries.push(producer.send_confirmed(key.clone(), data.clone()).await.unwrap());
    }
    for (i, d) in deliveries.into_iter().enumerate() {
        d.await.unwrap_or_else(|e| panic!("event {i} not delivered: {e}"));
    }
    let stats = producer.close().await.unwrap();
    let injected = proxy.stats();
    eprintln!("{stats:?}\n{injected:?}");
    assert!(injected.unanswered_calls > 0, "{injected:?}");
    assert!(stats.retries > 0, "unanswered calls must have been retried");
    assert_eq!((stats.delivered, stats.failed), (sent.len() as u64, 0));
    // Every answer the client gave up on was dropped with its connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proxy.holding() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "held calls outlived their clients"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every event is in the stream, and the unanswered calls' records twice or more.
    let (_, read) = read_all(&direct).await;
    let mut counts: HashMap<(&str, &[u8]), u64> = HashMap::new();
    for r in &read {
        *counts.entry((r.partition_key.as_str(), &r.data[..])).or_default() += 1;
    }
    for (key, data) in &sent {
        assert!(counts.contains_key(&(key.as_str(), &data[..])), "an event is missing");
    }
    let copies = read.len() - sent.len();
    eprintln!(
        "{} user records for {} events: {copies} copies from {} unanswered calls",
        read.len(),
        sent.len(),
        injected.unanswered_calls
    );
    assert!(
        copies > 0,
        "the unanswered calls were written, so their retries wrote copies"
    );
    direct.delete().await.unwrap();
}
