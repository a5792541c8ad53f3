//! Workers in one process on the embedded backends: exact totals with several workers, and
//! a replay of the same records into a fresh warehouse gives bit-identical rows.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use inlet_consumer::{Worker, WorkerConfig};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_seams::Warehouse;
use inlet_workload::Verdict;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SHARDS: u32 = 5;

/// Runs `workers` workers until the warehouse has handled `events`, then stops them.
async fn consume(
    stream: &Arc<EmbeddedStream>,
    warehouse_path: &Path,
    workers: usize,
    events: u64,
) -> EmbeddedWarehouse {
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    for i in 0..workers {
        let w = Arc::new(EmbeddedWarehouse::open(warehouse_path).await.unwrap());
        let mut cfg = WorkerConfig::new(format!("w{i}")).with_failover(Duration::from_secs(3));
        cfg.commit_interval = Duration::from_millis(100);
        let worker = Worker::new(stream.clone(), w.clone(), w, cfg);
        tasks.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    let warehouse = EmbeddedWarehouse::open(warehouse_path).await.unwrap();
    inlet_testkit::wait_until_read(&warehouse, events, Duration::from_secs(60)).await;
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    warehouse
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_reach_exact_totals() {
    let dir = tempfile::tempdir().unwrap();
    let stream = Arc::new(
        EmbeddedStream::open_or_create(&dir.path().join("s.db"), SHARDS)
            .await
            .unwrap(),
    );
    let expected = common::produce(&stream, 60_000, 3).await;
    let w = consume(&stream, &dir.path().join("w.db"), 3, 60_000).await;
    assert!(expected.dead.keys().any(|k| k.0 == "late") && expected.dead.keys().any(|k| k.0 == "invalid"));
    let verdict = Verdict::new(
        &w.totals().await.unwrap(),
        &w.viewing_rollups(i64::MIN, i64::MAX).await.unwrap(),
        &w.game_rollups(i64::MIN, i64::MAX).await.unwrap(),
        &expected,
    );
    let mismatches = &verdict.mismatches;
    assert!(mismatches.is_empty(), "{:?}", &mismatches[..mismatches.len().min(3)]);
    assert!(verdict.is_exact(), "{verdict:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_same_records_gives_identical_rows() {
    let dir = tempfile::tempdir().unwrap();
    let stream = Arc::new(
        EmbeddedStream::open_or_create(&dir.path().join("s.db"), SHARDS)
            .await
            .unwrap(),
    );
    common::produce(&stream, 30_000, 9).await;
    // Different worker counts, so different lease assignments and commit points.
    let a = consume(&stream, &dir.path().join("a.db"), 1, 30_000).await;
    let b = consume(&stream, &dir.path().join("b.db"), 2, 30_000).await;
    let all = (i64::MIN, i64::MAX);
    assert_eq!(
        a.viewing_rollups(all.0, all.1).await.unwrap(),
        b.viewing_rollups(all.0, all.1).await.unwrap()
    );
    assert_eq!(
        a.game_rollups(all.0, all.1).await.unwrap(),
        b.game_rollups(all.0, all.1).await.unwrap()
    );
    assert_eq!(a.totals().await.unwrap(), b.totals().await.unwrap());
    // Per-shard partials too, not only their merge.
    for i in 0..SHARDS {
        let shard = inlet_seams::ShardId::from_index(i);
        assert_eq!(
            a.shard_partials(&shard, i64::MIN).await.unwrap(),
            b.shard_partials(&shard, i64::MIN).await.unwrap()
        );
    }
}
