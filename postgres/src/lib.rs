//! Inlet's PostgreSQL backend: the [`inlet_seams::Warehouse`] and
//! [`inlet_seams::LeaseStore`] in one database, so a commit and its fence are one
//! transaction.
//!
//! - [`config`]: [`PgConfig`], from a `postgres://` URL (pool size, retries).
//! - [`migrations`]: versioned schema migrations, applied at start under an advisory lock
//!   (several workers may start at once).
//! - [`views`]: the SQL views that merge per-shard partials into final rollups per minute,
//!   hour and day: sums, HyperLogLog unions over register rows, DDSketch merges over bucket
//!   rows.
//! - [`warehouse`]: [`PgWarehouse`]: commits through `COPY` into staging tables and a
//!   set-based delete + insert, fenced by the lease counter; reads.
//! - [`lease_store`]: leases in the same database.
//! - [`compaction`]: folds old per-shard partials into one final row per key.
//! - [`retry`]: which errors are transient, and the backoff.
//!
//! Guarantee: a commit applies wholly or not at all, and only while the committing worker
//! holds the lease's current counter. Transient faults (connection loss, serialization
//! failures, a restarting server) are retried; retrying a commit is safe because commits
//! are idempotent (rows are cumulative and replace, dead letters are keyed by position).
//!
//! SQL dialect: plain tables, `COPY`, `DELETE ... USING` + `INSERT ... SELECT` (the upsert
//! Redshift documents), window functions, no arrays, no `ON CONFLICT`, no user functions.

pub mod compaction;
pub mod config;
pub mod lease_store;
pub mod migrations;
pub mod retry;
pub mod views;
pub mod warehouse;

pub use config::PgConfig;
pub use warehouse::PgWarehouse;
