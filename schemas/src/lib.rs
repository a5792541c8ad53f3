//! Inlet's event model and wire formats. Pure: no I/O.
//!
//! - [`events`]: the protobuf envelope and bodies (prost), with the proto3 JSON mapping (pbjson).
//! - [`json`]: JSON in and out (single events and batches), errors naming the field.
//! - [`validate`]: every problem of an event, each with its field path and reason.
//! - [`kpl`]: the KPL aggregated-record format (magic, protobuf, MD5 trailer), both ways.
//! - [`kind`]: a short, stable name per event kind, for filters, metrics and dead letters.
//! - [`wire`]: the batch formats an emitter posts and their content types.
//!
//! Guarantee: decoding never panics on any input; it returns an error that says what is wrong.

pub mod json;
pub mod kind;
pub mod kpl;
pub mod validate;
pub mod wire;

/// Generated from `proto/inlet/events/v1/events.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all, missing_debug_implementations)]
pub mod events {
    include!(concat!(env!("OUT_DIR"), "/inlet.events.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/inlet.events.v1.serde.rs"));
}

/// The schema versions this build understands.
pub const SUPPORTED_SCHEMA_VERSIONS: std::ops::RangeInclusive<u32> = 1..=1;
/// The schema version this build writes.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;
