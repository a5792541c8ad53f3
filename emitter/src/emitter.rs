//! [`Emitter`]: `track(event)` and forget. Events wait in a buffer bounded in bytes (the
//! offline buffer: `track` refuses, never blocks, when it is full), go out in batches when a
//! batch is full or every `flush_interval`, and are retried until the collector takes them,
//! however long it is away. A retried batch may have been partly written: the collector's
//! consumers drop the copies by event id.
use crate::client::Client;
use bytes::Bytes;
use inlet_schemas::events::Envelope;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// How an [`Emitter`] batches and buffers.
#[derive(Debug, Clone)]
pub struct EmitterConfig {
    /// Events per request (at most the collector's `limits.max_batch_events`).
    pub max_batch_events: usize,
    /// Send what is buffered at least this often.
    pub flush_interval: Duration,
    /// The offline buffer: most bytes of encoded events held; `track` refuses beyond it.
    pub max_buffered_bytes: usize,
    /// Largest encoded event `track` takes (the collector's `limits.max_event_bytes`).
    pub max_event_bytes: usize,
    /// On `close`, how long to keep trying to send what is left.
    pub close_timeout: Duration,
}

impl Default for EmitterConfig {
    fn default() -> Self {
        Self {
            max_batch_events: 200,
            flush_interval: Duration::from_secs(1),
            max_buffered_bytes: 4 << 20,
            max_event_bytes: 64 << 10,
            close_timeout: Duration::from_secs(10),
        }
    }
}

/// Why `track` refused an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// The offline buffer is full: the collector has been unreachable or slow for a while.
    #[error("the emitter's buffer of {limit} bytes is full")]
    BufferFull {
        /// The buffer's size.
        limit: usize,
    },
    /// The event alone is over the limit.
    #[error("event of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The event cannot be encoded in the configured format.
    #[error("{0}")]
    Unencodable(String),
    /// The emitter is closing.
    #[error("the emitter is closed")]
    Closed,
}

/// What an emitter did; `tracked = accepted + rejected + dropped + unsent + buffered`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmitterStats {
    /// Events `track` took.
    pub tracked: u64,
    /// Events the collector accepted (they are in the stream).
    pub accepted: u64,
    /// Events the collector rejected (they are in its bad rows).
    pub rejected: u64,
    /// Events in batches the collector refused for good (401, 413, ...): logged, dropped.
    pub dropped: u64,
    /// Events still buffered when `close` gave up.
    pub unsent: u64,
    /// Requests retried.
    pub retries: u64,
    /// Events `track` refused.
    pub refused: u64,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Bytes>,
    /// Bytes of `events` plus the batch being sent.
    bytes: usize,
    /// Events of the batch being sent.
    sending: usize,
    closing: bool,
    flush: bool,
    stats: EmitterStats,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the sender (a full batch, a flush, close).
    wake: Notify,
    /// Wakes `flush` callers when the queue is empty and nothing is being sent.
    idle: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue stays consistent under a panic elsewhere: every update is one step.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `track(event)` and forget: batching, retries and a bounded offline buffer.
#[derive(Debug)]
pub struct Emitter {
    shared: Arc<Shared>,
    client: Client,
    config: EmitterConfig,
    task: tokio::task::JoinHandle<()>,
}

impl Emitter {
    /// Starts the emitter's sender task.
    pub fn start(client: Client, config: EmitterConfig) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            idle: Notify::new(),
        });
        let task = tokio::spawn(send_loop(Arc::clone(&shared), client.clone(), config.clone()));
        Self {
            shared,
            client,
            config,
            task,
        }
    }

    /// Queues an event. Fills in what a client owns when left unset: `event_id` (a new
    /// UUIDv7), `event_time_ms` (now) and `schema_version` (this build's). Never waits.
    pub fn track(&self, mut event: Envelope) -> Result<(), TrackError> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if event.event_time_ms == 0 {
            event.event_time_ms = now_ms;
        }
        if event.event_id.is_empty() {
            event.event_id = uuid_v7(now_ms);
        }
        if event.schema_version == 0 {
            event.schema_version = inlet_schemas::CURRENT_SCHEMA_VERSION;
        }
        let encoded = self
            .client
            .encode_event(&event)
            .map_err(|e| TrackError::Unencodable(e.to_string()));
        let mut q = self.shared.lock();
        let checked = encoded.and_then(|encoded| {
            if q.closing {
                Err(TrackError::Closed)
            } else if encoded.len() > self.config.max_event_bytes {
                Err(TrackError::TooLarge {
                    size: encoded.len(),
                    limit: self.config.max_event_bytes,
                })
            } else if q.bytes + encoded.len() > self.config.max_buffered_bytes {
                Err(TrackError::BufferFull {
                    limit: self.config.max_buffered_bytes,
                })
            } else {
                Ok(encoded)
            }
        });
        let encoded = match checked {
            Ok(encoded) => encoded,
            Err(e) => {
                q.stats.refused += 1;
                return Err(e);
            }
        };
        q.bytes += encoded.len();
        q.events.push_back(encoded);
        q.stats.tracked += 1;
        if q.events.len() >= self.config.max_batch_events {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Sends what is buffered now and waits until nothing is left (which takes as long as
    /// the collector is away).
    pub async fn flush(&self) {
        loop {
            let idle = self.shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            {
                let mut q = self.shared.lock();
                if q.events.is_empty() && q.sending == 0 {
                    return;
                }
                q.flush = true;
            }
            self.shared.wake.notify_one();
            idle.await;
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> EmitterStats {
        self.shared.lock().stats
    }

    /// Sends what is left (for up to `close_timeout`), stops, and returns the counters.
    pub async fn close(self) -> EmitterStats {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        // The task ends once the queue is empty or the close timeout is over; a panic in it
        // leaves the counters as they were.
        let _ = self.task.await;
        self.shared.lock().stats
    }
}

async fn send_loop(shared: Arc<Shared>, client: Client, config: EmitterConfig) {
    let mut close_deadline = None;
    loop {
        // Wait for a full batch, a flush, close, or the flush interval.
        let batch: Vec<Bytes> = loop {
            let woken = shared.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            {
                let mut q = shared.lock();
                if q.closing && close_deadline.is_none() {
                    close_deadline = Some(tokio::time::Instant::now() + config.close_timeout);
                }
                let due = q.flush || q.closing || q.events.len() >= config.max_batch_events;
                if q.events.is_empty() {
                    q.flush = false;
                    shared.idle.notify_waiters();
                    if q.closing {
                        return;
                    }
                } else if due {
                    let n = q.events.len().min(config.max_batch_events);
                    q.sending = n;
                    break q.events.drain(..n).collect();
                }
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(config.flush_interval) => {
                    let mut q = shared.lock();
                    q.flush = !q.events.is_empty();
                }
            }
        };
        let bytes: usize = batch.iter().map(Bytes::len).sum();
        let body = client.encode_batch(&batch);
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match client.post_encoded(body.clone()).await {
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, attempt, "collector unavailable: retrying");
                    shared.lock().stats.retries += 1;
                    let retry_at = tokio::time::Instant::now() + client.delay(attempt, &e);
                    // Wait the whole delay (a flush or new events do not cut it short: the
                    // collector asked for it); only close() changes the plan.
                    loop {
                        if close_deadline.is_some_and(|d| retry_at > d) {
                            break;
                        }
                        tokio::select! {
                            () = tokio::time::sleep_until(retry_at) => break,
                            () = shared.wake.notified(), if close_deadline.is_none() => {
                                if shared.lock().closing {
                                    close_deadline = Some(tokio::time::Instant::now() + config.close_timeout);
                                }
                            }
                        }
                    }
                    if close_deadline.is_some_and(|d| retry_at > d) {
                        break Err(None);
                    }
                }
                Err(e) => break Err(Some(e)),
                Ok(result) => break Ok(result),
            }
        };
        let mut q = shared.lock();
        q.sending = 0;
        q.bytes -= bytes;
        let n = batch.len() as u64;
        match outcome {
            Ok(result) => {
                q.stats.accepted += result.accepted as u64;
                q.stats.rejected += result.rejected.len() as u64;
            }
            Err(Some(e)) => {
                tracing::error!(error = %e, events = n, "the collector refused a batch for good: dropped");
                q.stats.dropped += n;
            }
            Err(None) => {
                // Out of time while closing: count this batch and everything left.
                q.stats.unsent += n + q.events.len() as u64;
                q.events.clear();
                q.bytes = 0;
                shared.idle.notify_waiters();
                return;
            }
        }
    }
}

/// A UUIDv7: 48 bits of Unix milliseconds, then random bits (RFC 9562).
fn uuid_v7(now_ms: i64) -> String {
    let mut r = [0u8; 10];
    // Without OS randomness, fall back to the clock's nanoseconds: ids stay unique enough
    // for a client, and the collector does not depend on them.
    if getrandom::fill(&mut r).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        r[..4].copy_from_slice(&nanos.to_le_bytes());
    }
    let ms = (now_ms as u64) & 0xFFFF_FFFF_FFFF;
    let rand_a = u16::from_be_bytes([r[0], r[1]]) & 0x0FFF;
    let rand_b = u64::from_be_bytes([r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]]) & 0x3FFF_FFFF_FFFF_FFFF;
    format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        ms >> 16,
        ms & 0xFFFF,
        rand_a,
        0x8000 | (rand_b >> 48),
        rand_b & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v7() {
        let id = uuid_v7(1_767_225_600_000);
        let event = Envelope {
            event_id: id.clone(),
            ..Envelope::default()
        };
        let invalid = inlet_schemas::validate::validate(&event, &Default::default()).unwrap_err();
        assert!(invalid.0.iter().all(|e| e.field != "event_id"), "{id}: {invalid}");
        assert_ne!(uuid_v7(1), uuid_v7(1));
    }
}
