//! The shared seam scenarios, run against PostgreSQL; plus migrations under concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod support;

use inlet_postgres::{PgConfig, PgWarehouse};
use inlet_seams::scenarios;

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn lease_lifecycle() {
    let w = support::warehouse().await;
    scenarios::lease_lifecycle(&w).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn lease_cleanup() {
    let w = support::warehouse().await;
    scenarios::lease_cleanup(&w).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn warehouse_dedupe_state() {
    let w = support::warehouse().await;
    scenarios::warehouse_dedupe_state(&w).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn warehouse_group_commit() {
    let w = support::warehouse().await;
    scenarios::warehouse_group_commit(&w).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn warehouse_compaction() {
    let w = support::warehouse().await;
    scenarios::warehouse_compaction(&w).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn shard_failures() {
    let w = support::warehouse().await;
    scenarios::shard_failures(&w).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn warehouse_commits() {
    let w = support::warehouse().await;
    scenarios::warehouse_commits(&w).await;
}

/// Workers starting together apply each migration exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: run infra/test.sh"]
async fn concurrent_migrations_apply_once() {
    let url = support::fresh_database().await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgWarehouse::connect(PgConfig::new(url)).await.map(|_| ()) })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let client = inlet_postgres::connect_client(&url).await.unwrap();
    let versions: Vec<i32> = client
        .query("SELECT version FROM inlet_schema_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = inlet_postgres::migrations::all().iter().map(|m| m.version).collect();
    assert_eq!(versions, expected);
    let again = PgWarehouse::connect(PgConfig::new(url))
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    assert!(again.is_empty(), "nothing left to apply: {again:?}");
}
