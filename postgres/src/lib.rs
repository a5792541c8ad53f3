//! Inlet's PostgreSQL backend: the [`inlet_seams::Warehouse`] and
//! [`inlet_seams::LeaseStore`] in one database, so a commit and its fence are one
//! transaction.
//!
//! - [`config`]: [`PgConfig`], from a `postgres://` URL (pool size, retries), and the URL
//!   taken apart ([`config::parse_url`]).
//! - [`tls`]: TLS on rustls with libpq's `sslmode` and `sslrootcert`.
//! - [`client`]: one connection outside the pool, with the same TLS (tools and tests).
//! - [`migrations`]: versioned schema migrations, applied at start under an advisory lock
//!   (several workers may start at once).
//! - [`views`]: the SQL views that merge per-shard partials into final rollups per minute,
//!   hour and day: sums, HyperLogLog unions over register rows, DDSketch merges over bucket
//!   rows.
//! - [`warehouse`]: [`PgWarehouse`]: connect and migrate, the commit fenced by the lease
//!   counter (one transaction), and the [`inlet_seams::Warehouse`] reads.
//! - `copy`: the commit's rows staged through binary `COPY` into temp tables, then merged
//!   by a set-based delete + insert (the staging and merge SQL).
//! - `seen`: the dedupe state (remembered event ids, duplicate count), written and read.
//! - `rows`: row decoders and the SELECT column lists of stored partials.
//! - [`lease_store`]: leases in the same database.
//! - [`compaction`]: folds final minutes of every shard into one row per minute and key.
//! - [`retry`]: which errors are transient, the backoff, and the runner that retries an
//!   operation's attempts.
//!
//! Guarantee: a commit applies wholly or not at all, and only while the committing worker
//! holds the lease's current counter. Transient faults (connection loss, serialization
//! failures, a restarting server) are retried; retrying a commit is safe because commits
//! are idempotent (rows are cumulative and replace, dead letters are keyed by position).
//!
//! SQL dialect: plain tables, `COPY`, `DELETE ... USING` + `INSERT ... SELECT` (the upsert
//! Redshift documents), window functions, no arrays, no `ON CONFLICT`, no user functions.

pub mod client;
pub mod compaction;
pub mod config;
mod copy;
pub mod lease_store;
pub mod migrations;
pub mod retry;
mod rows;
mod seen;
pub mod tls;
pub mod views;
pub mod warehouse;

pub use client::connect_client;
pub use config::{PgConfig, PgConfigError};
pub use warehouse::PgWarehouse;
