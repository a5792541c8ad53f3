//! The polling reader through the fault proxy: `GetRecords` refused for the shard's read
//! limits, and shard iterators expiring, are ridden out (backoff; a new iterator after the
//! last record read): every record read once, in order, no error surfaced.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use bytes::Bytes;
use inlet_kinesis::fault_proxy::{FaultProxy, Faults};
use inlet_kinesis::testing::{endpoint, location};
use inlet_kinesis::{KinesisLocation, KinesisStream};
use inlet_seams::{PutOutcome, PutRecord, StartPosition, StreamReader, StreamWriter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn throttled_reads_and_expired_iterators_lose_and_repeat_nothing() {
    let endpoint = endpoint();
    let direct = KinesisStream::connect(location(&endpoint, "reader-faults")).await;
    direct.create(1).await.unwrap();
    let records: Vec<PutRecord> = (0..300)
        .map(|i| PutRecord {
            partition_key: format!("k{}", i % 7),
            explicit_hash_key: None,
            data: Bytes::from(format!("record-{i:04}")),
        })
        .collect();
    for chunk in records.chunks(100) {
        let out = direct.put_records(chunk).await.unwrap();
        assert!(out.iter().all(|o| matches!(o, PutOutcome::Written { .. })));
    }

    let faults = Faults {
        read_throttle_rate: 0.25,
        iterator_expiry_rate: 0.25,
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&endpoint, faults, 9).await.unwrap();
    let via_proxy = KinesisStream::connect(KinesisLocation {
        endpoint: Some(proxy.endpoint()),
        ..direct.location().clone()
    })
    .await;
    let shard = via_proxy.list_shards().await.unwrap().remove(0).id;
    let mut reader = via_proxy.open(&shard, StartPosition::TrimHorizon).await.unwrap();
    let mut read = Vec::new();
    let mut calls = 0;
    while read.len() < records.len() {
        // Small reads: many calls, many chances to be refused.
        let batch = reader
            .next_batch(10)
            .await
            .expect("faults are ridden out, not surfaced");
        read.extend(batch.records.into_iter().map(|r| r.data));
        calls += 1;
        assert!(calls < 2_000, "no progress: {} of {} read", read.len(), records.len());
    }
    let refused = proxy.stats().refused_reads;
    eprintln!(
        "{} records in {calls} reads, {refused} refused by the proxy",
        read.len()
    );
    assert!(refused > 5, "the proxy refused reads");
    let want: Vec<Bytes> = records.into_iter().map(|r| r.data).collect();
    assert_eq!(read, want, "every record once, in order");
    direct.delete().await.unwrap();
}
