//! Per-record delivery results: where a confirmed record landed, or why it was given up on.
use inlet_seams::{SequenceNumber, ShardId};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Where a user record was written: the stream record holding it and its index inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The shard.
    pub shard: ShardId,
    /// The stream record's sequence number there.
    pub sequence: SequenceNumber,
    /// The user record's index inside the stream record (0 when it travelled alone): the
    /// consumer's checkpoint `(sequence, sub_sequence)` of this record.
    pub sub_sequence: u32,
}

/// Why a user record was not written. The producer will not try it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record not delivered after {attempts} attempt(s): {code}: {reason}")]
#[non_exhaustive]
pub struct DeliveryError {
    /// The stream's error code (`PutRecords` when the whole call failed, `ProducerStopped`
    /// when the producer's task ended before the outcome was known).
    pub code: String,
    /// The stream's message.
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
    /// Whether sending the record again later can succeed (the stream was unavailable
    /// rather than refusing the record).
    pub retryable: bool,
}

impl DeliveryError {
    pub(crate) fn new(code: &str, reason: &str, attempts: u32, retryable: bool) -> Self {
        Self {
            code: code.to_owned(),
            reason: reason.to_owned(),
            attempts,
            retryable,
        }
    }
}

pub(crate) type Outcome = Result<Delivered, DeliveryError>;
/// The writer task's end of a [`Delivery`].
pub(crate) type Ack = oneshot::Sender<Outcome>;

/// Resolves when the stream record holding a confirmed user record is written or given up
/// on. Dropping it does not cancel the record.
#[derive(Debug)]
#[must_use = "a Delivery does nothing unless awaited; the record is sent either way"]
pub struct Delivery(oneshot::Receiver<Outcome>);

impl Delivery {
    pub(crate) fn channel() -> (Ack, Self) {
        let (tx, rx) = oneshot::channel();
        (tx, Self(rx))
    }
}

impl Future for Delivery {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(DeliveryError::new(
                    "ProducerStopped",
                    "the producer's writer task ended before the record's outcome was known",
                    0,
                    true,
                ))
            })
        })
    }
}
