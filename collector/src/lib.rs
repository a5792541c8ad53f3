//! Inlet's collector: the HTTP front door emitters post telemetry to (the emitter client is
//! the `inlet-emitter` crate).
//!
//! - [`config`]: the TOML configuration, checked into [`Settings`]; `config_error`: the
//!   error naming the setting at fault (a leaf every checker reports with).
//! - [`auth`]: API keys (stored as SHA-256 hashes), their apps, kinds and rate limits.
//! - [`rate_limit`]: per-key token buckets of events.
//! - [`body`]: content type and encoding, the body read within limits and a deadline,
//!   decompressed under a cap, split into raw events.
//! - [`ingest`]: the pure per-event core: decode, stamp, check against the key, validate.
//! - [`bad_rows`]: the NDJSON file of rejected events, fsynced before the answer.
//! - [`error`]: refusals and their HTTP answers (status, `Retry-After`, JSON).
//! - `routes`: `POST /v1/events`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
//! - [`server`]: [`Collector`]: bounded accept loop, timeouts, graceful shutdown.
//! - [`metrics`]: metric names and the Prometheus recorder.
//!
//! Guarantee: a 200 means every accepted event of the request is in the stream (the
//! producer's `Delivery` resolved) and every rejected one is in the bad-rows file (fsynced),
//! each listed in the answer by index with its field and reason. Any other answer means the
//! request may be retried; nothing of a 4xx request was written; after a 503 some of its
//! events may have been written, so a retry can duplicate them (events carry ids for that).

pub mod auth;
pub mod bad_rows;
pub mod body;
pub mod config;
mod config_error;
pub mod error;
pub mod ingest;
pub mod metrics;
pub mod rate_limit;
mod routes;
pub mod server;

pub use auth::hash_key;
pub use config::{CollectorConfig, ConfigError, Settings};
pub use error::ApiError;
pub use server::{Collector, CollectorError, Summary};
