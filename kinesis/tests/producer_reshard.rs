//! A split and a merge while producing: records keep going to the shards that own them
//! (the producer reloads its shard map when a record lands elsewhere), nothing is lost or
//! duplicated, and each key's events stay in order from parent to child.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use common::{events, producer_config, read_all};
use inlet_kinesis::KinesisStream;
use inlet_kinesis::testing::{endpoint, patient_location};
use inlet_producer::{BatchLimits, Producer, ProducerConfig};
use inlet_seams::{ShardId, hash_key};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn a_split_and_a_merge_while_producing_lose_nothing_and_keep_order() {
    let endpoint = endpoint();
    let stream = KinesisStream::connect(patient_location(&endpoint, "reshard")).await;
    stream.create(4).await.unwrap();
    let sent = events(12_000, 5);
    let config = ProducerConfig {
        batch: BatchLimits {
            max_aggregate_bytes: 8_000,
            linger_ms: 10,
            ..producer_config().batch
        },
        ..producer_config()
    };
    let producer = Arc::new(Producer::start(Arc::new(stream.clone()), config).await.unwrap());
    let sending = {
        let (producer, sent) = (producer.clone(), sent.clone());
        tokio::spawn(async move {
            for (i, (key, data)) in sent.into_iter().enumerate() {
                producer.send(key, data).await.unwrap();
                if i % 200 == 0 {
                    tokio::time::sleep(Duration::from_millis(25)).await; // spread over the reshards
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (lo, hi) = stream.split(&ShardId::from_index(0), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let merged = stream
        .merge(&ShardId::from_index(2), &ShardId::from_index(3))
        .await
        .unwrap();
    sending.await.unwrap();
    let producer = Arc::try_unwrap(producer).unwrap();
    let stats = producer.close().await.unwrap();
    eprintln!("split into {lo} and {hi}, merged into {merged}; {stats:?}");
    assert_eq!((stats.delivered, stats.failed), (sent.len() as u64, 0));

    let (shards, read) = read_all(&stream).await;
    assert_eq!(
        shards.len(),
        4 + 2 + 1,
        "4 shards, 2 children of the split, 1 of the merge"
    );
    let by_id: HashMap<String, &inlet_seams::Shard> = shards.iter().map(|s| (s.id.to_string(), s)).collect();
    // Kinesis routes each stream record by its outer hash key.
    for r in &read {
        assert!(by_id[&r.shard].hash_range.contains(r.outer_hash_key), "{r:?}");
    }
    // Every event once.
    let index: HashMap<(&str, &[u8]), usize> = sent
        .iter()
        .enumerate()
        .map(|(i, (k, d))| ((k.as_str(), d.as_ref()), i))
        .collect();
    assert_eq!(index.len(), sent.len(), "generated events are distinct");
    assert_eq!(read.len(), sent.len());
    // Per key, in the order a consumer reads (parents before children), events come in
    // send order. Aggregates that were in flight when the stream resharded land on one child
    // with their user records of the other: those are counted, and left out of the order
    // check (siblings are read side by side, so there is no order between them).
    let depth = |id: &str| -> usize {
        let mut d = 0;
        let mut s = by_id[id];
        while let Some(p) = &s.parent {
            d += 1;
            s = by_id[p.as_str()];
        }
        d
    };
    let (inside, outside): (Vec<_>, Vec<_>) = read
        .iter()
        .partition(|r| by_id[&r.shard].hash_range.contains(hash_key(&r.partition_key)));
    let mut ordered: Vec<(usize, usize, &common::ReadBack)> = inside
        .into_iter()
        .enumerate()
        .map(|(pos, r)| (depth(&r.shard), pos, r))
        .collect();
    ordered.sort_by_key(|(d, pos, _)| (*d, *pos));
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (_, _, r) in ordered {
        let i = index[&(r.partition_key.as_str(), r.data.as_ref())];
        if let Some(prev) = last.insert(&r.partition_key, i) {
            assert!(prev < i, "key {}: event {i} read after event {prev}", r.partition_key);
        }
    }
    eprintln!(
        "user records carried to a shard not owning their key by a call in flight at a reshard: {}",
        outside.len()
    );
    // At most what the calls in flight held: a small share.
    assert!(outside.len() * 10 < read.len(), "{} of {}", outside.len(), read.len());
    stream.delete().await.unwrap();
}
