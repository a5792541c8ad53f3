//! A fresh database per test on the PostgreSQL that `infra/servers.sh` started.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use inlet_postgres::{PgConfig, PgWarehouse};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The URL of a new, empty database. Panics when `INLET_PG_URL` is not set: the tests that
/// call this are `#[ignore]`d, and run only through `infra/test.sh`, which starts the server.
pub(crate) async fn fresh_database() -> String {
    let admin = std::env::var("INLET_PG_URL").unwrap_or_else(|_| {
        panic!(
            "INLET_PG_URL is not set: this test needs PostgreSQL; \
             run the tests through infra/test.sh, which starts it"
        )
    });
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect to INLET_PG_URL");
    tokio::spawn(conn);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "inlet_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("URL with a database");
    format!("{base}/{name}")
}

/// A migrated warehouse on a fresh database.
pub(crate) async fn warehouse() -> PgWarehouse {
    let url = fresh_database().await;
    PgWarehouse::connect(PgConfig::new(url))
        .await
        .expect("connect warehouse")
}
