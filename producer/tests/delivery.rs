//! Per-record delivery results against the real embedded stream: a confirmed record's
//! `Delivered` names the stream record (and index inside) that really holds it; records the
//! stream refuses, or that it cannot take for longer than the retries last, resolve with the
//! error; `try_send_all_confirmed` takes all or nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use bytes::Bytes;
use common::{Faulty, Gated, stream};
use inlet_embedded::EmbeddedStream;
use inlet_producer::{BatchLimits, Delivered, Producer, ProducerConfig, SendError};
use inlet_schemas::kpl;
use inlet_seams::{StartPosition, StreamReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The user record a delivery names, read back from the stream.
async fn lookup(stream: &EmbeddedStream, d: &Delivered) -> kpl::UserRecord {
    let mut r = stream
        .open(&d.shard, StartPosition::AtSequence(d.sequence.clone()))
        .await
        .unwrap();
    let rec = r.next_batch(1).await.unwrap().records.remove(0);
    assert_eq!(rec.sequence, d.sequence);
    let mut users = kpl::decode_strict(&rec.partition_key, rec.explicit_hash_key, &rec.data).unwrap();
    assert!((d.sub_sequence as usize) < users.len(), "{d:?}");
    users.swap_remove(d.sub_sequence as usize)
}

fn fast_retries(max_attempts: u32) -> ProducerConfig {
    ProducerConfig {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        batch: BatchLimits {
            linger_ms: 5,
            ..BatchLimits::default()
        },
        ..ProducerConfig::default()
    }
}

#[tokio::test]
async fn a_delivery_names_the_stream_record_that_holds_it() {
    let (_dir, s) = stream(3).await;
    let producer = Producer::start(s.clone(), ProducerConfig::default()).await.unwrap();
    let mut confirmed = Vec::new();
    for i in 0..600u32 {
        let key = format!("session-{}", i % 41);
        let data = Bytes::from(format!("{key}/{i}"));
        match i % 4 {
            0 => confirmed.push((
                key.clone(),
                data.clone(),
                producer.send_confirmed(key, data).await.unwrap(),
            )),
            1 => confirmed.push((
                key.clone(),
                data.clone(),
                producer.try_send_confirmed(key, data).await.unwrap(),
            )),
            2 => {
                let d = producer
                    .try_send_all_confirmed(vec![(key.clone(), data.clone())])
                    .unwrap()
                    .pop()
                    .unwrap();
                confirmed.push((key, data, d));
            }
            _ => producer.send(key, data).await.unwrap(), // fire and forget, in between
        }
    }
    let mut positions = std::collections::HashSet::new();
    let mut aggregated = 0;
    for (key, data, delivery) in confirmed {
        let d = delivery.await.unwrap();
        aggregated += usize::from(d.sub_sequence > 0);
        assert!(positions.insert((d.shard.clone(), d.sequence.clone(), d.sub_sequence)));
        let user = lookup(&s, &d).await;
        assert_eq!((user.partition_key, user.data), (key, data), "{d:?}");
    }
    assert!(aggregated > 0, "some confirmed records travelled inside aggregates");
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.accepted, stats.delivered, stats.failed), (600, 600, 0));
}

#[tokio::test]
async fn records_the_stream_refuses_resolve_with_its_error() {
    let (_dir, s) = stream(2).await;
    let writer = Arc::new(Faulty {
        inner: s.clone(),
        refuse: true,
        down: AtomicBool::new(false),
    });
    let producer = Producer::start(writer, fast_retries(5)).await.unwrap();
    let deliveries = producer
        .try_send_all_confirmed((0..20).map(|i| (format!("k{i}"), Bytes::from("x"))).collect())
        .unwrap();
    for d in deliveries {
        let e = d.await.unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.attempts, e.retryable),
            ("ValidationException", 1, false)
        );
        assert_eq!(e.reason, "refused by the test");
    }
    assert_eq!(
        producer.last_write_failure(),
        None,
        "a refusal is not an unavailable stream"
    );
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.accepted, stats.delivered, stats.failed), (20, 0, 20));
    for shard in s.list_shards().await.unwrap() {
        let mut r = s.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
        assert!(
            r.next_batch(10).await.unwrap().records.is_empty(),
            "nothing was written"
        );
    }
}

#[tokio::test]
async fn an_unavailable_stream_resolves_deliveries_after_the_last_attempt_then_recovers() {
    let (_dir, s) = stream(2).await;
    let writer = Arc::new(Faulty {
        inner: s.clone(),
        refuse: false,
        down: AtomicBool::new(true),
    });
    let producer = Producer::start(writer.clone(), fast_retries(3)).await.unwrap();
    let lost = producer.send_confirmed("k".into(), Bytes::from("lost")).await.unwrap();
    let e = lost.await.unwrap_err();
    assert_eq!((e.code.as_str(), e.attempts, e.retryable), ("PutRecords", 3, true));
    assert!(e.reason.contains("stream unavailable (injected)"), "{e}");
    assert!(producer.last_write_failure().is_some());

    writer.down.store(false, SeqCst);
    let kept = producer.send_confirmed("k".into(), Bytes::from("kept")).await.unwrap();
    let d = kept.await.unwrap();
    assert_eq!(lookup(&s, &d).await.data, Bytes::from("kept"));
    assert_eq!(
        producer.last_write_failure(),
        None,
        "a successful write clears the failure"
    );
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.accepted, stats.delivered, stats.failed), (2, 1, 1));
}

#[tokio::test]
async fn try_send_all_confirmed_takes_all_or_nothing() {
    let (_dir, s) = stream(1).await;
    let gate = Arc::new(Semaphore::new(0));
    let writer = Arc::new(Gated {
        inner: s.clone(),
        gate: gate.clone(),
    });
    let config = ProducerConfig {
        max_buffered_bytes: 20_000,
        ..fast_retries(3)
    };
    let producer = Producer::start(writer, config).await.unwrap();
    let records = |n: usize| {
        (0..n)
            .map(|i| (format!("k{i}"), Bytes::from(vec![1u8; 1_000])))
            .collect::<Vec<_>>()
    };
    // More than the whole buffer: never possible.
    assert!(matches!(
        producer.try_send_all_confirmed(records(30)),
        Err(SendError::BatchTooLarge { limit: 20_000, .. })
    ));
    // Ten fit; then ten more do not, and none of them is taken.
    let first = producer.try_send_all_confirmed(records(10)).unwrap();
    assert_eq!(
        producer.try_send_all_confirmed(records(10)).unwrap_err(),
        SendError::Full
    );
    assert_eq!(producer.stats().accepted, 10);
    gate.add_permits(1_000);
    for d in first {
        d.await.unwrap();
    }
    // Room again once the first ten are written.
    let second = producer.try_send_all_confirmed(records(10)).unwrap();
    for d in second {
        d.await.unwrap();
    }
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.accepted, stats.delivered), (20, 20));
}
