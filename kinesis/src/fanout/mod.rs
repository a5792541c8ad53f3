//! Enhanced fan-out (`read=fanout`): a registered stream consumer and `SubscribeToShard`.
//!
//! Each reader of a shard holds one subscription: an event stream that pushes a
//! `SubscribeToShardEvent` whenever records arrive (and now and then without any). The
//! service ends a subscription after 5 minutes; this reader renews it before that
//! ([`FanoutTimings::renew_after`]), replaces one that has gone quiet
//! ([`FanoutTimings::stall`]), and resubscribes after an end or a retryable error, always
//! `AFTER_SEQUENCE_NUMBER` the newest position received (the last record, or the event's
//! continuation sequence number when that is further on). Records an event holds beyond
//! what the caller asked for wait in a buffer, so none is dropped and none repeated.
//!
//! A reader opened at LATEST subscribes at the open, not at its first read, and waits there for
//! the first event: LATEST is the shard's end when `open` returns, and that event's
//! continuation sequence number pins it for later subscriptions.
//!
//! `ResourceInUseException` on subscribe (a subscription of this consumer to this shard is
//! still open: ours, just replaced, or another reader's) is retried with backoff and never
//! surfaces as an error: `next_batch` answers empty batches meanwhile.
//!
//! The consumer (`consumer=NAME`, default `inlet`) is registered on first use
//! (`DescribeStreamSummary` for the stream ARN, `RegisterStreamConsumer`, then
//! `DescribeStreamConsumer` until `ACTIVE`); its ARN is remembered per process.
//!
//! - `timings.rs`: [`FanoutTimings`] and its default constants.
//! - `position.rs`: [`starting_position`] and the [`ResumeCursor`].
//! - `buffer.rs`: [`ReceivedEvent`] and the pure [`EventBuffer`].
//! - `errors.rs`: consumer setup errors and the event stream's errors, classified.
//! - `registration.rs`: registering, listing and deregistering the [`StreamConsumer`].
//! - `reader.rs`: the [`FanoutShardReader`] and its subscriptions.
mod buffer;
mod errors;
mod position;
mod reader;
mod registration;
mod timings;

pub use buffer::{EventBuffer, ReceivedEvent};
pub use position::{ResumeCursor, starting_position};
pub use reader::FanoutShardReader;
pub(crate) use reader::open;
pub use registration::StreamConsumer;
pub use timings::{
    CONSUMER_ACTIVE_TIMEOUT, ERROR_BACKOFF, FanoutTimings, LATEST_SUBSCRIBE_WAIT, MAX_BACKOFF, MAX_WAIT,
    MIN_SUBSCRIBE_GAP, RENEW_AFTER, RESOURCE_IN_USE_BACKOFF, STALL_TIMEOUT,
};
