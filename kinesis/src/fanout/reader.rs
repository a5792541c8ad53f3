//! The enhanced fan-out reader: one `SubscribeToShard` subscription per shard, renewed before
//! the service ends it, replaced when it stalls, and resumed after an end or a retryable error.
use super::buffer::{EventBuffer, ReceivedEvent};
use super::errors::event_stream_error;
use super::position::{ResumeCursor, starting_position};
use super::timings::{ERROR_BACKOFF, FanoutTimings, LATEST_SUBSCRIBE_WAIT, MIN_SUBSCRIBE_GAP, RESOURCE_IN_USE_BACKOFF};
use crate::client::{KinesisStream, timed};
use crate::errors::CallError;
use crate::reader::NotBefore;
use async_trait::async_trait;
use aws_sdk_kinesis::primitives::event_stream::EventReceiver;
use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError;
use aws_sdk_kinesis::types::{SubscribeToShardEvent, SubscribeToShardEventStream};
use inlet_seams::{ReadBatch, ShardId, ShardReader, StartPosition, StreamError};
use std::fmt;
use tokio::time::Instant;

impl KinesisStream {
    /// Opens `shard` for enhanced fan-out reading from `from`, registering the consumer
    /// first if needed. [`inlet_seams::StreamReader::open`] does this (with the default
    /// timings) when the location says `read=fanout`.
    pub async fn open_fanout(
        &self,
        shard: &ShardId,
        from: StartPosition,
        timings: FanoutTimings,
    ) -> Result<FanoutShardReader, StreamError> {
        let consumer_arn = self.consumer_arn().await.map_err(|e| StreamError::Read {
            stream: self.name().to_owned(),
            shard: shard.clone(),
            retryable: e.retryable(),
            source: Box::new(e),
        })?;
        let latest = from == StartPosition::Latest;
        let mut reader = FanoutShardReader {
            stream: self.clone(),
            shard: shard.clone(),
            timings,
            consumer_arn: Some(consumer_arn),
            not_before: NotBefore::new(&from),
            cursor: ResumeCursor::new(from),
            buffer: EventBuffer::default(),
            subscription: None,
            last_subscribe: None,
            retry_at: None,
            failures: 0,
            resubscribes: 0,
        };
        if latest {
            reader.subscribe_at_open().await?;
        }
        Ok(reader)
    }
}

/// The `open` of `read=fanout`.
pub(crate) async fn open(
    stream: &KinesisStream,
    shard: &ShardId,
    from: StartPosition,
) -> Result<Box<dyn ShardReader>, StreamError> {
    Ok(Box::new(
        stream.open_fanout(shard, from, FanoutTimings::default()).await?,
    ))
}

/// Why a subscription was replaced (the `reason` label of
/// [`crate::metrics::FANOUT_RESUBSCRIBES_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The service ended the event stream (after its 5 minutes, or earlier).
    Ended,
    /// Renewed before the service's 5 minutes.
    Renew,
    /// No event for [`FanoutTimings::stall`].
    Stalled,
    /// Another subscription of this consumer to this shard is open.
    ResourceInUse,
    /// A retryable failure.
    Error,
    /// The consumer was deregistered; it is registered again.
    ConsumerMissing,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Ended => "ended",
            Reason::Renew => "renew",
            Reason::Stalled => "stalled",
            Reason::ResourceInUse => "resource_in_use",
            Reason::Error => "error",
            Reason::ConsumerMissing => "consumer_missing",
        }
    }
}
/// An open subscription.
struct Subscription {
    events: EventReceiver<SubscribeToShardEventStream, SubscribeToShardEventStreamError>,
    started: Instant,
    last_event: Instant,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("started", &self.started)
            .field("last_event", &self.last_event)
            .finish_non_exhaustive()
    }
}

/// What waiting on a subscription gave.
enum Wait {
    Event(Box<SubscribeToShardEvent>),
    /// An event of a kind this SDK does not know.
    Other,
    /// Nothing before the caller's deadline; the subscription stays.
    Quiet,
    Ended,
    Renew,
    Stalled,
    Failed(CallError),
}

/// One shard, read by enhanced fan-out.
#[derive(Debug)]
pub struct FanoutShardReader {
    stream: KinesisStream,
    shard: ShardId,
    timings: FanoutTimings,
    /// `None` after the consumer turned out deregistered: found or registered again first.
    consumer_arn: Option<String>,
    cursor: ResumeCursor,
    /// For AT_TIMESTAMP: records before the time still to skip (see [`NotBefore`]).
    not_before: NotBefore,
    buffer: EventBuffer,
    subscription: Option<Subscription>,
    /// When the last subscribe attempt went out.
    last_subscribe: Option<Instant>,
    /// No subscribe attempt before this (backoff after failures).
    retry_at: Option<Instant>,
    /// Failed subscribe attempts in a row, for the backoff.
    failures: u32,
    resubscribes: u64,
}

impl FanoutShardReader {
    /// Subscribe attempts after the first: renewals, resubscriptions after an end, a stall
    /// or an error, and retries after `ResourceInUseException`.
    pub fn resubscribes(&self) -> u64 {
        self.resubscribes
    }

    /// Where the next subscription would start.
    pub fn resume_position(&self) -> StartPosition {
        self.cursor.position()
    }

    /// Records received and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    fn read_error(&self, retryable: bool, source: impl std::error::Error + Send + Sync + 'static) -> StreamError {
        StreamError::Read {
            stream: self.stream.name().to_owned(),
            shard: self.shard.clone(),
            retryable,
            source: Box::new(source),
        }
    }

    /// Drops the subscription (if any) and counts why.
    fn resubscribe(&mut self, reason: Reason) {
        self.subscription = None;
        self.resubscribes += 1;
        metrics::counter!(crate::metrics::FANOUT_RESUBSCRIBES_TOTAL, "reason" => reason.as_str()).increment(1);
        let backoff = match reason {
            Reason::Ended | Reason::Renew | Reason::Stalled => None,
            Reason::ResourceInUse => Some(RESOURCE_IN_USE_BACKOFF),
            Reason::Error | Reason::ConsumerMissing => Some(ERROR_BACKOFF),
        };
        if let Some(base) = backoff {
            self.failures = (self.failures + 1).min(16);
            let wait = base
                .saturating_mul(1 << (self.failures - 1).min(10))
                .min(self.timings.max_backoff);
            self.retry_at = Some(Instant::now() + wait);
        }
    }

    /// A failed call on the subscription: whether it is retried (with backoff), or the error
    /// for the caller.
    async fn failed(&mut self, e: CallError, subscribing: bool) -> Result<(), StreamError> {
        if e.is_code("ResourceInUseException") {
            tracing::info!(shard = %self.shard, error = %e, "subscription in use; retrying");
            self.resubscribe(Reason::ResourceInUse);
            return Ok(());
        }
        if e.is_code("ResourceNotFoundException") {
            if e.message.to_ascii_lowercase().contains("consumer") {
                // Deregistered behind our back: register again on the next attempt.
                if let Some(stale) = self.consumer_arn.take() {
                    self.stream.forget_consumer_arn(&stale).await;
                }
                self.resubscribe(Reason::ConsumerMissing);
                return Err(self.read_error(true, e));
            }
            self.subscription = None;
            return Err(StreamError::NoSuchShard {
                stream: self.stream.name().to_owned(),
                shard: self.shard.clone(),
            });
        }
        if !e.retryable {
            self.subscription = None;
            return Err(self.read_error(false, e));
        }
        self.resubscribe(Reason::Error);
        if subscribing {
            // The subscribe itself failed: the caller counts these.
            return Err(self.read_error(true, e));
        }
        // An open subscription broke: subscribe again, quietly.
        tracing::warn!(shard = %self.shard, error = %e, "subscription failed; subscribing again");
        Ok(())
    }

    /// Opens a subscription at the cursor. `Ok(false)`: not now (retried with backoff).
    async fn subscribe(&mut self) -> Result<bool, StreamError> {
        let consumer_arn = match &self.consumer_arn {
            Some(a) => a.clone(),
            None => {
                let a = self.stream.consumer_arn().await.map_err(|e| {
                    let retryable = e.retryable();
                    self.read_error(retryable, e)
                })?;
                self.consumer_arn = Some(a.clone());
                a
            }
        };
        let from = self.cursor.position();
        self.last_subscribe = Some(Instant::now());
        let req = self
            .stream
            .client
            .subscribe_to_shard()
            .consumer_arn(consumer_arn)
            .shard_id(self.shard.as_str())
            .starting_position(starting_position(&from));
        // `send` returns once the first message is in (the service's initial response, or
        // the emulator's first event), which the SDK's attempt timeout does not cover.
        let limit = self.stream.location.call_timeout;
        let result = match tokio::time::timeout(limit, timed("SubscribeToShard", req.send())).await {
            Ok(r) => r.map_err(|e| CallError::from_sdk("SubscribeToShard", e)),
            Err(_) => {
                metrics::counter!(crate::metrics::CALLS_TOTAL, "op" => "SubscribeToShard", "outcome" => "error")
                    .increment(1);
                metrics::counter!(crate::metrics::ERRORS_TOTAL, "op" => "SubscribeToShard", "code" => "Timeout")
                    .increment(1);
                Err(CallError {
                    op: "SubscribeToShard",
                    code: "Timeout".into(),
                    message: format!("no answer within {limit:?}"),
                    retryable: true,
                })
            }
        };
        match result {
            Ok(out) => {
                tracing::debug!(shard = %self.shard, from = ?from, "subscribed");
                let now = Instant::now();
                self.subscription = Some(Subscription {
                    events: out.event_stream,
                    started: now,
                    last_event: now,
                });
                Ok(true)
            }
            Err(e) => self.failed(e, true).await.map(|()| false),
        }
    }

    /// Subscribes now rather than at the first read, and waits for the subscription's first
    /// event: LATEST is the shard's end when the service takes the subscription, and the
    /// caller means its end at the open. That event's continuation sequence number then pins
    /// the cursor, so a resubscription resumes there rather than at a later latest. Retries
    /// within [`LATEST_SUBSCRIBE_WAIT`] (another subscription of the consumer to the shard may
    /// still be closing: the service refuses the call, the emulator sends the refusal as the
    /// first message); past it the first read subscribes, at the latest of then.
    async fn subscribe_at_open(&mut self) -> Result<(), StreamError> {
        let deadline = Instant::now() + LATEST_SUBSCRIBE_WAIT;
        while Instant::now() < deadline {
            if self.subscription.is_none() {
                let gap = self.last_subscribe.map(|t| t + MIN_SUBSCRIBE_GAP);
                if let Some(at) = [self.retry_at, gap].into_iter().flatten().max() {
                    if at > deadline {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                }
                self.retry_at = None;
                if !self.subscribe().await? {
                    continue;
                }
            }
            match self.wait(deadline).await {
                Wait::Event(ev) => return self.received(&ev),
                Wait::Other | Wait::Quiet => {}
                Wait::Ended => self.resubscribe(Reason::Ended),
                Wait::Renew => self.resubscribe(Reason::Renew),
                Wait::Stalled => self.resubscribe(Reason::Stalled),
                Wait::Failed(e) => self.failed(e, false).await?,
            }
        }
        tracing::warn!(shard = %self.shard, "no LATEST subscription at the open; the first read subscribes");
        Ok(())
    }

    /// Waits for the subscription's next message, at most until `deadline`, or until it
    /// stalls or is due for renewal.
    async fn wait(&mut self, deadline: Instant) -> Wait {
        let Some(sub) = self.subscription.as_mut() else {
            return Wait::Ended;
        };
        let renew_at = sub.started + self.timings.renew_after;
        let stall_at = sub.last_event + self.timings.stall;
        if Instant::now() >= renew_at {
            // Due, even if events are waiting: they come again on the new subscription.
            return Wait::Renew;
        }
        let until = renew_at.min(stall_at).min(deadline);
        match tokio::time::timeout_at(until, sub.events.recv()).await {
            Err(_) => {
                let now = Instant::now();
                if now >= renew_at {
                    Wait::Renew
                } else if now >= stall_at {
                    Wait::Stalled
                } else {
                    Wait::Quiet
                }
            }
            Ok(Ok(Some(msg))) => {
                sub.last_event = Instant::now();
                match msg {
                    SubscribeToShardEventStream::SubscribeToShardEvent(ev) => Wait::Event(Box::new(ev)),
                    _ => Wait::Other,
                }
            }
            Ok(Ok(None)) => Wait::Ended,
            Ok(Err(e)) => Wait::Failed(event_stream_error(e)),
        }
    }

    /// Takes an event in: its records into the buffer and the cursor moved past it.
    fn received(&mut self, ev: &SubscribeToShardEvent) -> Result<(), StreamError> {
        self.failures = 0;
        metrics::counter!(crate::metrics::FANOUT_EVENTS_TOTAL).increment(1);
        let mut ev = ReceivedEvent::from_sdk(ev).map_err(|e| {
            self.subscription = None;
            self.read_error(false, e)
        })?;
        let bytes: usize = ev.records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
        metrics::counter!(crate::metrics::READ_RECORDS_TOTAL).increment(ev.records.len() as u64);
        metrics::counter!(crate::metrics::READ_BYTES_TOTAL).increment(bytes as u64);
        self.cursor
            .received(ev.records.last().map(|r| &r.sequence), ev.continuation.as_ref());
        if ev.shard_end.is_some() {
            // Nothing follows the shard's end.
            self.subscription = None;
        }
        // After the cursor moved past them: a resubscription does not bring them back.
        self.not_before.skip(&mut ev.records);
        self.buffer.push(ev);
        Ok(())
    }
}

#[async_trait]
impl ShardReader for FanoutShardReader {
    /// The next event's records (buffered beyond `max`). Waits up to
    /// [`FanoutTimings::max_wait`] for one (plus a subscribe call, at most the location's
    /// call timeout), subscribing, renewing and resubscribing as needed meanwhile.
    async fn next_batch(&mut self, max: usize) -> Result<ReadBatch, StreamError> {
        if self.buffer.pending() {
            return Ok(self.buffer.take(max));
        }
        if self.buffer.ended() {
            // Read to its end before; the caller has seen `shard_end`.
            return Ok(ReadBatch {
                shard_end: Some(Vec::new()),
                ..ReadBatch::default()
            });
        }
        let deadline = Instant::now() + self.timings.max_wait;
        loop {
            if self.subscription.is_none() {
                let gap = self.last_subscribe.map(|t| t + MIN_SUBSCRIBE_GAP);
                let earliest = [self.retry_at, gap].into_iter().flatten().max();
                if let Some(at) = earliest {
                    if at > deadline {
                        tokio::time::sleep_until(deadline).await;
                        return Ok(ReadBatch::default());
                    }
                    tokio::time::sleep_until(at).await;
                }
                self.retry_at = None;
                if Instant::now() >= deadline && self.last_subscribe.is_some() {
                    return Ok(ReadBatch::default());
                }
                if !self.subscribe().await? {
                    continue;
                }
            }
            match self.wait(deadline).await {
                Wait::Event(ev) => {
                    self.received(&ev)?;
                    // Its records, up to `max` (the rest stay buffered).
                    return Ok(self.buffer.take(max));
                }
                Wait::Other => {}
                Wait::Quiet => return Ok(ReadBatch::default()),
                Wait::Ended => {
                    tracing::debug!(shard = %self.shard, "subscription ended; subscribing again");
                    self.resubscribe(Reason::Ended);
                }
                Wait::Renew => {
                    tracing::debug!(shard = %self.shard, "renewing the subscription");
                    self.resubscribe(Reason::Renew);
                }
                Wait::Stalled => {
                    tracing::warn!(shard = %self.shard, stall = ?self.timings.stall, "no event on the subscription; subscribing again");
                    self.resubscribe(Reason::Stalled);
                }
                Wait::Failed(e) => self.failed(e, false).await?,
            }
        }
    }
}
