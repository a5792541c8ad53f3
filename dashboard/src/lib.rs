//! Inlet's analytics dashboard: a JSON query API over any [`inlet_seams::Warehouse`]
//! (embedded or PostgreSQL), the pipeline's health from the warehouse and its lease store,
//! and one embedded web page with live charts.
//!
//! - [`query`]: the API's metrics, groupings and resolutions; request parameters parsed
//!   into a checked [`Query`], or a [`ParamError`] naming the field.
//! - [`compute`]: a query's answer from final rollup rows ([`Aggregation`], pure), and
//!   [`compute::run`], which reads the rows from a warehouse a slice of minutes at a time.
//! - [`health`]: totals, dead letters, per-shard lease, lag and checkpoint age, and events/s
//!   from successive samples ([`History`], pure).
//! - [`server`]: [`Dashboard`]: `GET /`, `/assets/*`, `/api/query`, `/api/health`, a sampler
//!   task, graceful shutdown.
//! - [`assets`]: the page and the vendored chart library, embedded with `include_str!`.
//! - [`metrics`]: metric names. [`error`]: [`DashboardError`].
//!
//! Guarantee: read-only. Numbers are the warehouse's final rollups (per-shard partials
//! merged: sums added, HyperLogLogs unioned, DDSketches merged), so they equal what
//! `inlet report`, `inlet verify` and the PostgreSQL views show for the same minutes.

pub mod access;
pub mod assets;
pub mod compute;
pub mod error;
pub mod health;
pub mod metrics;
pub mod query;
pub mod server;

pub use access::Access;
pub use compute::{Aggregation, QueryResult};
pub use error::DashboardError;
pub use health::{HealthReport, History, Sample};
pub use query::{Anchors, Limits, Metric, ParamError, Query};
pub use server::{Dashboard, DashboardConfig};
