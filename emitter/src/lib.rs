//! Inlet's emitter client: what a player or game links to send telemetry to a collector. It
//! depends on no server code (no axum, no producer, no exporter).
//!
//! - [`client`]: [`Client`], one `POST /v1/events` at a time, and `post_with_retries`.
//! - [`emitter`]: [`Emitter`], `track(event)` and forget: batched, bounded offline buffer,
//!   retried until the collector takes them.
//!
//! Guarantee: at least once. An event `track` took is posted until the collector answers 200
//! for it (or refuses it for good); a retry after a 503 or a lost answer may post it again,
//! with the same `event_id`, and the consumers count it once.
//!
//! Plain HTTP (`http://`) only: in production a TLS-terminating proxy or a TLS connector in
//! front is assumed (not built here).

pub mod client;
pub mod emitter;

pub use client::{BatchResult, Client, ClientConfig, ClientError, RawAnswer, RejectedEvent};
pub use emitter::{Emitter, EmitterConfig, EmitterStats, TrackError};
pub use inlet_schemas::wire::Format;
