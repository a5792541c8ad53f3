//! A fresh database per test on the PostgreSQL that `infra/servers.sh` started.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use inlet_postgres::{PgConfig, PgWarehouse, connect_client};
use inlet_testkit::{server_var, with_database};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The URL of a new, empty database (over TLS, as `INLET_PG_URL` says). Panics when
/// `INLET_PG_URL` is not set: the tests that call this are `#[ignore]`d, and run only through
/// `infra/test.sh`, which starts the server.
pub(crate) async fn fresh_database() -> String {
    let name = create_database(None).await;
    with_database(&server_var("INLET_PG_URL", "PostgreSQL"), &name)
}

/// Creates a new, empty database owned by `owner` (default: the superuser of `INLET_PG_URL`)
/// and returns its name.
pub(crate) async fn create_database(owner: Option<&str>) -> String {
    let admin = server_var("INLET_PG_URL", "PostgreSQL");
    let client = connect_client(&admin).await.expect("connect to INLET_PG_URL");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "inlet_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let owner = owner.map(|o| format!(" OWNER {o}")).unwrap_or_default();
    client
        .batch_execute(&format!("CREATE DATABASE {name}{owner}"))
        .await
        .expect("create database");
    name
}

/// A migrated warehouse on a fresh database.
pub(crate) async fn warehouse() -> PgWarehouse {
    let url = fresh_database().await;
    PgWarehouse::connect(PgConfig::new(url))
        .await
        .expect("connect warehouse")
}
