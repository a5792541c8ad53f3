//! Settings of the PostgreSQL backend.
use std::time::Duration;

/// How to reach PostgreSQL and how hard to try.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// A libpq-style URL, `postgres://user@host:port/db` (TLS is not supported yet:
    /// `sslmode=require` is refused).
    pub url: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// How long an operation keeps retrying transient faults before it gives up.
    pub retry_for: Duration,
    /// Apply migrations at open.
    pub migrate: bool,
}

impl PgConfig {
    /// Defaults for `url`: 4 connections, retries for 60 s, migrate at open.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 4,
            retry_for: Duration::from_secs(60),
            migrate: true,
        }
    }
}
