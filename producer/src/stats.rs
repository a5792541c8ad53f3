//! The producer's counters: [`Counters`], updated by the handle and its writer task as records
//! go through, and [`ProducerStats`], their public snapshot.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::time::Instant;

/// Counters of a producer's life; `accepted + resumed = delivered + failed + in flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// User records accepted by `send`.
    pub accepted: u64,
    /// User records taken over from a spool an earlier producer left (it accepted them; this
    /// one sends them first).
    pub resumed: u64,
    /// User records written.
    pub delivered: u64,
    /// User records given up on.
    pub failed: u64,
    /// Of `failed`, user records the dead-letter file could not take either (a full disk):
    /// only this count is left of them.
    pub dead_letter_unwritten: u64,
    /// Stream records written (aggregates count once).
    pub stream_records: u64,
    /// PutRecords calls made.
    pub put_calls: u64,
    /// Stream records sent again after a failure.
    pub retries: u64,
    /// Stream records that landed on another shard than the shard map predicted (each
    /// reloads the map).
    pub mispredicted: u64,
    /// Stream records that went through the on-disk spool.
    pub spooled: u64,
}

/// The live counters behind [`ProducerStats`], shared by the handle (which counts what it
/// accepts and reads `last_failure`) and its writer task (which counts the rest).
#[derive(Debug)]
pub(crate) struct Counters {
    /// User records accepted by `send` (counted by the handle).
    pub(crate) accepted: AtomicU64,
    /// User records taken over from an earlier producer's spool (counted at start).
    pub(crate) resumed: AtomicU64,
    /// User records written.
    pub(crate) delivered: AtomicU64,
    /// User records given up on.
    pub(crate) failed: AtomicU64,
    /// Of those, user records the dead-letter file could not take.
    pub(crate) dead_letter_unwritten: AtomicU64,
    /// Stream records written.
    pub(crate) stream_records: AtomicU64,
    /// `PutRecords` calls made.
    pub(crate) put_calls: AtomicU64,
    /// Stream records sent again after a failure.
    pub(crate) retries: AtomicU64,
    /// Stream records that landed on another shard than predicted.
    pub(crate) mispredicted: AtomicU64,
    /// Stream records written to the on-disk spool.
    pub(crate) spooled: AtomicU64,
    /// Milliseconds after `epoch` of the last write that failed retryably, plus one; 0 when
    /// the last write succeeded (or none was made).
    pub(crate) last_failure: AtomicU64,
    /// The producer's start: the writer task's clock counts milliseconds from it.
    pub(crate) epoch: Instant,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dead_letter_unwritten: AtomicU64::new(0),
            stream_records: AtomicU64::new(0),
            put_calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            mispredicted: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            last_failure: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(crate) fn snapshot(&self) -> ProducerStats {
        ProducerStats {
            accepted: self.accepted.load(Relaxed),
            resumed: self.resumed.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            failed: self.failed.load(Relaxed),
            dead_letter_unwritten: self.dead_letter_unwritten.load(Relaxed),
            stream_records: self.stream_records.load(Relaxed),
            put_calls: self.put_calls.load(Relaxed),
            retries: self.retries.load(Relaxed),
            mispredicted: self.mispredicted.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
        }
    }
}
