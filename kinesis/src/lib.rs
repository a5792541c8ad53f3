//! Amazon Kinesis Data Streams behind Inlet's stream seam, on `aws-sdk-kinesis`.
//!
//! - [`location`]: `kinesis://STREAM?region=..&endpoint=..` parsed into a [`KinesisLocation`].
//! - `opening.rs`: [`KinesisStream::connect_checked`], which refuses a missing region or
//!   credentials, or an endpoint that does not answer within `connect_timeout`, in words
//!   ([`ConnectError`]) before any other call.
//! - [`KinesisStream`]: a [`inlet_seams::StreamWriter`] (`ListShards`, `PutRecords` with
//!   per-record outcomes) and a [`inlet_seams::StreamReader`] (`GetShardIterator` +
//!   polling `GetRecords` within the per-shard read limits, expired-iterator recovery).
//! - [`fanout`]: enhanced fan-out reading (`read=fanout`): a registered stream consumer and
//!   `SubscribeToShard` subscriptions, renewed, resumed and replaced when stalled.
//!   `fanout/timings.rs`: [`fanout::FanoutTimings`] and its defaults; `fanout/position.rs`:
//!   starting positions and the resume cursor; `fanout/buffer.rs`: received events and the
//!   pure event buffer; `fanout/errors.rs`: setup errors and event-stream error
//!   classification; `fanout/registration.rs`: registering, listing and deregistering the
//!   stream consumer; `fanout/reader.rs`: the [`fanout::FanoutShardReader`].
//! - [`admin`]: create, describe, split, merge and rescale streams (`inlet streams`).
//! - [`fault_proxy`]: an HTTP proxy that sits in front of a real endpoint and injects
//!   throttling and refused calls, for tests of the producer's retries.
//! - [`testing`]: fresh streams on the test emulator, and private emulators.
//!
//! The SDK's own retries are off for data calls: the producer and the consumer retry with
//! their own backoff and count every attempt.

pub mod admin;
mod client;
mod errors;
pub mod fanout;
pub mod fault_proxy;
pub mod location;
pub mod metrics;
mod opening;
mod reader;
mod shards;
pub mod testing;
mod writer;

pub use client::KinesisStream;
pub use location::{KinesisLocation, ReadMode};
pub use opening::ConnectError;
