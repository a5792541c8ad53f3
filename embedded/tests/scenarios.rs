//! The shared seam scenarios, run against the embedded backends.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_seams::scenarios;

#[tokio::test]
async fn stream_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let stream = EmbeddedStream::open_or_create(&dir.path().join("stream.db"), 4)
        .await
        .unwrap();
    scenarios::stream_round_trip(&stream, &stream).await;
}

#[tokio::test]
async fn start_positions() {
    let dir = tempfile::tempdir().unwrap();
    let stream = EmbeddedStream::open_or_create(&dir.path().join("stream.db"), 2)
        .await
        .unwrap();
    scenarios::start_positions(&stream, &stream).await;
}

#[tokio::test]
async fn stream_explicit_hash_key() {
    let dir = tempfile::tempdir().unwrap();
    let stream = EmbeddedStream::open_or_create(&dir.path().join("stream.db"), 3)
        .await
        .unwrap();
    scenarios::stream_explicit_hash_key(&stream).await;
}

#[tokio::test]
async fn lease_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let w = EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap();
    scenarios::lease_lifecycle(&w).await;
}

#[tokio::test]
async fn lease_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let w = EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap();
    scenarios::lease_cleanup(&w).await;
}

#[tokio::test]
async fn warehouse_dedupe_state() {
    let dir = tempfile::tempdir().unwrap();
    let w = EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap();
    scenarios::warehouse_dedupe_state(&w).await;
}

#[tokio::test]
async fn warehouse_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let w = EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap();
    scenarios::warehouse_group_commit(&w).await;
}

#[tokio::test]
async fn warehouse_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let w = EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap();
    scenarios::warehouse_compaction(&w).await;
}

#[tokio::test]
async fn shard_failures() {
    let dir = tempfile::tempdir().unwrap();
    let w = EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap();
    scenarios::shard_failures(&w).await;
}

#[tokio::test]
async fn warehouse_commits() {
    let dir = tempfile::tempdir().unwrap();
    let w = EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap();
    scenarios::warehouse_commits(&w).await;
}

/// Two handles on one file (as two processes would have) see each other's writes, and a
/// reopened stream keeps its shards and sequence numbers.
#[tokio::test]
async fn shared_and_durable_across_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.db");
    let a = EmbeddedStream::open_or_create(&path, 2).await.unwrap();
    let b = EmbeddedStream::open_or_create(&path, 7).await.unwrap();
    use inlet_seams::{PutOutcome, PutRecord, StreamReader, StreamWriter};
    assert_eq!(
        b.open_shards().await.unwrap().len(),
        2,
        "an existing stream keeps its shards"
    );
    let rec = |d: &'static str| PutRecord {
        partition_key: "k".into(),
        explicit_hash_key: None,
        data: d.into(),
    };
    let first = a.put_records(&[rec("one")]).await.unwrap();
    let second = b.put_records(&[rec("two")]).await.unwrap();
    let (PutOutcome::Written { shard, sequence: s1 }, PutOutcome::Written { sequence: s2, .. }) =
        (&first[0], &second[0])
    else {
        panic!("writes failed: {first:?} {second:?}")
    };
    assert!(s1 < s2, "sequence numbers grow across handles");
    drop((a, b));
    let c = EmbeddedStream::open_or_create(&path, 2).await.unwrap();
    let mut r = c.open(shard, inlet_seams::StartPosition::TrimHorizon).await.unwrap();
    let got: Vec<_> = r
        .next_batch(10)
        .await
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.data)
        .collect();
    assert_eq!(got, vec![bytes::Bytes::from("one"), bytes::Bytes::from("two")]);
}
