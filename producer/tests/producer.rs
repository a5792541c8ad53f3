//! The producer against the real embedded stream: per-key order, refusals at `send`,
//! backpressure, flush and accounting.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use bytes::Bytes;
use common::{Gated, stream};
use inlet_embedded::EmbeddedStream;
use inlet_producer::{BatchLimits, Producer, ProducerConfig, SendError};
use inlet_schemas::kpl;
use inlet_seams::{StartPosition, StreamReader, WriteLimits};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Every user record in the stream, per shard, in shard order.
async fn read_back(stream: &EmbeddedStream) -> BTreeMap<String, Vec<kpl::UserRecord>> {
    let mut out = BTreeMap::new();
    for shard in stream.list_shards().await.unwrap() {
        let mut r = stream.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
        let mut users = Vec::new();
        loop {
            let batch = r.next_batch(100).await.unwrap();
            if batch.records.is_empty() {
                break;
            }
            for rec in batch.records {
                users.extend(kpl::decode_strict(&rec.partition_key, rec.explicit_hash_key, &rec.data).unwrap());
            }
        }
        out.insert(shard.id.0, users);
    }
    out
}

#[tokio::test]
async fn delivers_everything_in_per_key_order() {
    let (_dir, s) = stream(4).await;
    let producer = Producer::start(s.clone(), ProducerConfig::default()).await.unwrap();
    let mut sent: BTreeMap<String, Vec<Bytes>> = BTreeMap::new();
    for i in 0..5_000u32 {
        let key = format!("session-{}", i % 97);
        let data = Bytes::from(format!("{key}/{i}/{}", "x".repeat((i % 300) as usize)));
        sent.entry(key.clone()).or_default().push(data.clone());
        producer.send(key, data).await.unwrap();
    }
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.accepted, stats.delivered, stats.failed), (5_000, 5_000, 0));
    assert!(stats.stream_records < 5_000 / 4, "records are aggregated: {stats:?}");

    let mut got: BTreeMap<String, Vec<Bytes>> = BTreeMap::new();
    for (_shard, users) in read_back(&s).await {
        for u in users {
            got.entry(u.partition_key).or_default().push(u.data);
        }
    }
    assert_eq!(got, sent, "every record arrives once, in send order per partition key");
}

#[tokio::test]
async fn refuses_bad_records_at_send() {
    let (_dir, s) = stream(2).await;
    let producer = Producer::start(s.clone(), ProducerConfig::default()).await.unwrap();
    let limit = WriteLimits::KINESIS.max_record_bytes;
    let big = Bytes::from(vec![0u8; limit]);
    assert_eq!(
        producer.send("k".into(), big).await,
        Err(SendError::RecordTooLarge { size: limit + 1, limit })
    );
    assert_eq!(
        producer.send(String::new(), Bytes::new()).await,
        Err(SendError::BadPartitionKey { len: 0 })
    );
    assert_eq!(
        producer.send("é".repeat(257), Bytes::new()).await,
        Err(SendError::BadPartitionKey { len: 257 })
    );
    // The largest record that fits goes through, alone.
    producer
        .send("k".into(), Bytes::from(vec![1u8; limit - 1]))
        .await
        .unwrap();
    let stats = producer.close().await.unwrap();
    assert_eq!((stats.accepted, stats.delivered), (1, 1));
}

#[tokio::test]
async fn a_full_buffer_makes_send_wait_and_try_send_refuse() {
    let (_dir, s) = stream(1).await;
    let gate = Arc::new(Semaphore::new(0));
    let writer = Arc::new(Gated {
        inner: s.clone(),
        gate: gate.clone(),
    });
    let config = ProducerConfig {
        max_buffered_bytes: 20_000,
        batch: BatchLimits {
            linger_ms: 1,
            ..BatchLimits::default()
        },
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::start(writer, config).await.unwrap());
    // 1,000-byte records: about 18 fit (with bookkeeping), then the buffer is full.
    let mut accepted = 0;
    loop {
        match producer.try_send("k".into(), Bytes::from(vec![7u8; 1_000])).await {
            Ok(()) => accepted += 1,
            Err(SendError::Full) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(accepted < 100, "the buffer must fill up");
    }
    assert!((10..=20).contains(&accepted), "accepted {accepted}");
    let blocked = {
        let p = producer.clone();
        tokio::spawn(async move { p.send("k".into(), Bytes::from(vec![8u8; 1_000])).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!blocked.is_finished(), "send waits while the buffer is full");
    gate.add_permits(1_000);
    blocked.await.unwrap().unwrap();
    let producer = Arc::try_unwrap(producer).unwrap();
    let stats = producer.close().await.unwrap();
    assert_eq!(stats.delivered, accepted + 1);
    let users: usize = read_back(&s).await.values().map(Vec::len).sum();
    assert_eq!(users as u64, accepted + 1);
}
