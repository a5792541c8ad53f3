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
//! `ResourceInUseException` on subscribe (a subscription of this consumer to this shard is
//! still open: ours, just replaced, or another reader's) is retried with backoff and never
//! surfaces as an error: `next_batch` answers empty batches meanwhile.
//!
//! The consumer (`consumer=NAME`, default `inlet`) is registered on first use
//! (`DescribeStreamSummary` for the stream ARN, `RegisterStreamConsumer`, then
//! `DescribeStreamConsumer` until `ACTIVE`); its ARN is remembered per process.
use crate::admin::AdminError;
use crate::client::{KinesisStream, timed};
use crate::errors::{CallError, retryable_code};
use crate::location::KinesisLocation;
use async_trait::async_trait;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::primitives::event_stream::EventReceiver;
use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError;
use aws_sdk_kinesis::types::{
    ConsumerStatus, ShardIteratorType, StartingPosition, SubscribeToShardEvent, SubscribeToShardEventStream,
};
use bytes::Bytes;
use inlet_seams::sequence::BadSequenceNumber;
use inlet_seams::{ReadBatch, Record, SequenceNumber, ShardId, ShardReader, StartPosition, StreamError};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// A subscription without any event for this long is taken for dead and replaced (events
/// come with or without records; the emulator sends one a second).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Subscriptions are renewed after this long: the service ends them at 5 minutes.
pub const RENEW_AFTER: Duration = Duration::from_secs(4 * 60 + 30);
/// `next_batch` answers an empty batch after this long without records, so the caller can
/// commit and look around (its subscription stays open).
pub const MAX_WAIT: Duration = Duration::from_secs(1);
/// Least time between two `SubscribeToShard` calls for one shard (the service's limit is
/// one call per second per consumer and shard).
pub const MIN_SUBSCRIBE_GAP: Duration = Duration::from_secs(1);
/// Longest wait between two subscribe attempts after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// First wait after `ResourceInUseException` (the service allows one `SubscribeToShard` per
/// second per consumer and shard, and refuses a takeover within 5 s of the last one).
pub const RESOURCE_IN_USE_BACKOFF: Duration = Duration::from_secs(1);
/// First wait after any other retryable failure.
pub const ERROR_BACKOFF: Duration = Duration::from_millis(200);
/// How long a new consumer may take to become `ACTIVE`.
pub const CONSUMER_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// The fan-out reader's timings; the defaults are the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutTimings {
    /// Replace a subscription after this long without an event.
    pub stall: Duration,
    /// Renew a subscription after this long (before the service's 5 minutes).
    pub renew_after: Duration,
    /// Answer an empty batch after this long without records.
    pub max_wait: Duration,
    /// Longest wait between two subscribe attempts after failures.
    pub max_backoff: Duration,
}

impl Default for FanoutTimings {
    fn default() -> Self {
        Self {
            stall: STALL_TIMEOUT,
            renew_after: RENEW_AFTER,
            max_wait: MAX_WAIT,
            max_backoff: MAX_BACKOFF,
        }
    }
}

/// A registered stream consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConsumer {
    /// Its name.
    pub name: String,
    /// Its ARN, which `SubscribeToShard` takes.
    pub arn: String,
    /// `CREATING`, `ACTIVE` or `DELETING`.
    pub status: String,
}

/// Our start position as an enhanced fan-out starting position.
pub fn starting_position(from: &StartPosition) -> StartingPosition {
    let b = StartingPosition::builder();
    let b = match from {
        StartPosition::TrimHorizon => b.r#type(ShardIteratorType::TrimHorizon),
        StartPosition::Latest => b.r#type(ShardIteratorType::Latest),
        StartPosition::AtSequence(s) => b
            .r#type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(s.as_str()),
        StartPosition::AfterSequence(s) => b
            .r#type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(s.as_str()),
        StartPosition::AtTimestamp(ms) => b
            .r#type(ShardIteratorType::AtTimestamp)
            .timestamp(DateTime::from_millis(*ms)),
    };
    b.build()
        .unwrap_or_else(|e| unreachable!("every arm sets the type, all that `build` checks: {e}"))
}

/// Where the next subscription of a shard starts: the position the reader was opened at
/// until an event arrives, then just after the newest position received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeCursor {
    start: StartPosition,
    newest: Option<SequenceNumber>,
}

impl ResumeCursor {
    /// A cursor at the reader's open position.
    pub fn new(start: StartPosition) -> Self {
        Self { start, newest: None }
    }

    /// Records what an event carried: its last record and its continuation sequence number
    /// (either may be absent). The cursor never moves back.
    pub fn received(&mut self, last_record: Option<&SequenceNumber>, continuation: Option<&SequenceNumber>) {
        for s in [last_record, continuation].into_iter().flatten() {
            if self.newest.as_ref().is_none_or(|n| s > n) {
                self.newest = Some(s.clone());
            }
        }
    }

    /// Where a new subscription starts.
    pub fn position(&self) -> StartPosition {
        match &self.newest {
            Some(s) => StartPosition::AfterSequence(s.clone()),
            None => self.start.clone(),
        }
    }
}

/// One `SubscribeToShardEvent` in our types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// Its records, in shard order.
    pub records: Vec<Record>,
    /// Where a new subscription continues; `None` at the shard's end.
    pub continuation: Option<SequenceNumber>,
    /// How far behind the newest record the event is.
    pub millis_behind_latest: i64,
    /// At the shard's end (no continuation sequence number): the children to read next.
    pub shard_end: Option<Vec<ShardId>>,
}

impl ReceivedEvent {
    /// Converts the SDK's event. A missing continuation sequence number (the SDK reads it
    /// as empty) means the shard is closed and every record has been sent.
    pub fn from_sdk(ev: &SubscribeToShardEvent) -> Result<Self, BadSequenceNumber> {
        let records = ev.records().iter().map(to_record).collect::<Result<Vec<_>, _>>()?;
        let continuation = match ev.continuation_sequence_number() {
            "" => None,
            s => Some(SequenceNumber::parse(s)?),
        };
        let shard_end = continuation.is_none().then(|| {
            ev.child_shards()
                .iter()
                .map(|c| ShardId(c.shard_id().to_owned()))
                .collect()
        });
        Ok(Self {
            records,
            continuation,
            millis_behind_latest: ev.millis_behind_latest(),
            shard_end,
        })
    }
}

fn to_record(r: &aws_sdk_kinesis::types::Record) -> Result<Record, BadSequenceNumber> {
    Ok(Record {
        sequence: SequenceNumber::parse(r.sequence_number())?,
        partition_key: r.partition_key().unwrap_or_default().to_owned(),
        // Not sent; deaggregation uses the inner records' own.
        explicit_hash_key: None,
        data: Bytes::copy_from_slice(r.data().as_ref()),
        arrival_ms: r
            .approximate_arrival_timestamp()
            .and_then(|t| t.to_millis().ok())
            .unwrap_or(0),
    })
}

/// Records received and not yet handed out, and the shard's end once an event said so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventBuffer {
    records: VecDeque<Record>,
    millis_behind_latest: Option<i64>,
    shard_end: Option<Vec<ShardId>>,
    ended: bool,
}

impl EventBuffer {
    /// Adds an event's records (and its shard end).
    pub fn push(&mut self, event: ReceivedEvent) {
        self.records.extend(event.records);
        self.millis_behind_latest = Some(event.millis_behind_latest);
        if event.shard_end.is_some() {
            self.shard_end = event.shard_end;
        }
    }

    /// Whether records or the shard's end wait to be handed out.
    pub fn pending(&self) -> bool {
        !self.records.is_empty() || self.shard_end.is_some()
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether the shard's end has been handed out.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next batch: up to `max` (at least 1) records, oldest first, with the shard's end
    /// once the last of them goes out. Empty when nothing waits.
    pub fn take(&mut self, max: usize) -> ReadBatch {
        let n = max.max(1).min(self.records.len());
        let records: Vec<Record> = self.records.drain(..n).collect();
        let shard_end = if self.records.is_empty() {
            self.shard_end.take()
        } else {
            None
        };
        self.ended |= shard_end.is_some();
        ReadBatch {
            records,
            millis_behind_latest: self.millis_behind_latest,
            shard_end,
        }
    }
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

/// A consumer that could not be set up.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("stream consumer {consumer} of stream {stream} is not ACTIVE after {waited:?} (last seen: {status})")]
    NotActive {
        stream: String,
        consumer: String,
        status: String,
        waited: Duration,
    },
}

impl SetupError {
    fn retryable(&self) -> bool {
        match self {
            SetupError::Call(e) => e.retryable,
            SetupError::NotActive { .. } => true,
        }
    }
}

impl From<SetupError> for AdminError {
    fn from(e: SetupError) -> Self {
        AdminError::Call(e.to_string())
    }
}

/// An error of the event stream, classified. Exceptions in the stream name their type in a
/// header, and their payload need not repeat it (the emulator's do not): the SDK then picks
/// the right variant but reports no code, so the code comes from the variant.
fn event_stream_error<R: fmt::Debug>(e: SdkError<SubscribeToShardEventStreamError, R>) -> CallError {
    use SubscribeToShardEventStreamError as E;
    const OP: &str = "SubscribeToShard";
    if let SdkError::ServiceError(se) = &e
        && se.err().code().is_none()
    {
        let code = match se.err() {
            E::ResourceInUseException(_) => Some("ResourceInUseException"),
            E::ResourceNotFoundException(_) => Some("ResourceNotFoundException"),
            E::InternalFailureException(_) => Some("InternalFailureException"),
            E::KmsThrottlingException(_) => Some("KMSThrottlingException"),
            E::KmsDisabledException(_) => Some("KMSDisabledException"),
            E::KmsInvalidStateException(_) => Some("KMSInvalidStateException"),
            E::KmsAccessDeniedException(_) => Some("KMSAccessDeniedException"),
            E::KmsNotFoundException(_) => Some("KMSNotFoundException"),
            E::KmsOptInRequired(_) => Some("KMSOptInRequired"),
            _ => None,
        };
        if let Some(code) = code {
            metrics::counter!(crate::metrics::ERRORS_TOTAL, "op" => OP, "code" => code).increment(1);
            return CallError {
                op: OP,
                code: code.to_owned(),
                message: se.err().message().unwrap_or_default().to_owned(),
                retryable: retryable_code(code) || code == "InternalFailureException",
            };
        }
    }
    CallError::from_sdk(OP, e)
}

/// Consumer ARNs found or registered by this process, by stream location and consumer
/// name; one lock each, so readers of many shards opening at once register once.
type Slot = Arc<tokio::sync::Mutex<Option<String>>>;
static CONSUMER_ARNS: LazyLock<Mutex<HashMap<String, Slot>>> = LazyLock::new(Mutex::default);

fn slot(loc: &KinesisLocation) -> Slot {
    let key = format!(
        "{}|{}|{}|{}",
        loc.endpoint.as_deref().unwrap_or(""),
        loc.region.as_deref().unwrap_or(""),
        loc.stream,
        loc.consumer
    );
    let mut map = CONSUMER_ARNS.lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(key).or_default().clone()
}

fn bad_response(op: &'static str, message: &str) -> CallError {
    CallError {
        op,
        code: "BadResponse".into(),
        message: message.into(),
        retryable: true,
    }
}

impl KinesisStream {
    /// The stream's ARN.
    async fn stream_arn(&self) -> Result<String, CallError> {
        let out = timed(
            "DescribeStreamSummary",
            self.client.describe_stream_summary().stream_name(self.name()).send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("DescribeStreamSummary", e))?;
        out.stream_description_summary()
            .map(|s| s.stream_arn().to_owned())
            .ok_or_else(|| bad_response("DescribeStreamSummary", "answered without a summary"))
    }

    async fn describe_consumer(&self, stream_arn: &str) -> Result<StreamConsumer, CallError> {
        let out = timed(
            "DescribeStreamConsumer",
            self.client
                .describe_stream_consumer()
                .stream_arn(stream_arn)
                .consumer_name(&self.location.consumer)
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("DescribeStreamConsumer", e))?;
        let c = out
            .consumer_description()
            .ok_or_else(|| bad_response("DescribeStreamConsumer", "answered without a description"))?;
        Ok(StreamConsumer {
            name: c.consumer_name().to_owned(),
            arn: c.consumer_arn().to_owned(),
            status: c.consumer_status().as_str().to_owned(),
        })
    }

    async fn register_consumer(&self, stream_arn: &str) -> Result<StreamConsumer, CallError> {
        let out = timed(
            "RegisterStreamConsumer",
            self.client
                .register_stream_consumer()
                .stream_arn(stream_arn)
                .consumer_name(&self.location.consumer)
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("RegisterStreamConsumer", e))?;
        metrics::counter!(crate::metrics::FANOUT_CONSUMER_REGISTRATIONS_TOTAL).increment(1);
        tracing::info!(stream = %self.name(), consumer = %self.location.consumer, "registered the stream consumer");
        let c = out
            .consumer()
            .ok_or_else(|| bad_response("RegisterStreamConsumer", "answered without a consumer"))?;
        Ok(StreamConsumer {
            name: c.consumer_name().to_owned(),
            arn: c.consumer_arn().to_owned(),
            status: c.consumer_status().as_str().to_owned(),
        })
    }

    /// Registers the consumer unless it is, and waits until it is `ACTIVE`.
    async fn setup_consumer(&self) -> Result<StreamConsumer, SetupError> {
        let stream_arn = self.stream_arn().await?;
        let started = Instant::now();
        let mut status = String::from("not registered");
        let mut wait = Duration::from_millis(100);
        while started.elapsed() < CONSUMER_ACTIVE_TIMEOUT {
            match self.describe_consumer(&stream_arn).await {
                Ok(c) if c.status == ConsumerStatus::Active.as_str() => return Ok(c),
                // CREATING, or DELETING (then it is gone and registered again).
                Ok(c) => status = c.status,
                Err(e) if e.is_code("ResourceNotFoundException") => match self.register_consumer(&stream_arn).await {
                    Ok(c) if c.status == ConsumerStatus::Active.as_str() => return Ok(c),
                    Ok(c) => status = c.status,
                    // Registered meanwhile (another reader), being deleted, or throttled.
                    Err(e) if e.retryable => status = e.to_string(),
                    Err(e) => return Err(e.into()),
                },
                Err(e) if e.retryable => status = e.to_string(),
                Err(e) => return Err(e.into()),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
        Err(SetupError::NotActive {
            stream: self.name().to_owned(),
            consumer: self.location.consumer.clone(),
            status,
            waited: CONSUMER_ACTIVE_TIMEOUT,
        })
    }

    /// The consumer's ARN: remembered, or found (and registered) now.
    async fn consumer_arn(&self) -> Result<String, SetupError> {
        let slot = slot(&self.location);
        let mut arn = slot.lock().await;
        if let Some(a) = &*arn {
            return Ok(a.clone());
        }
        let c = self.setup_consumer().await?;
        *arn = Some(c.arn.clone());
        Ok(c.arn)
    }

    /// Forgets a remembered consumer ARN (the consumer was deregistered).
    async fn forget_consumer_arn(&self, stale: &str) {
        let slot = slot(&self.location);
        let mut arn = slot.lock().await;
        if arn.as_deref() == Some(stale) {
            *arn = None;
        }
    }

    /// Registers the stream consumer named by the location (`consumer=`, default `inlet`)
    /// unless it is, and waits until it is `ACTIVE`.
    pub async fn ensure_consumer(&self) -> Result<StreamConsumer, AdminError> {
        let c = self.setup_consumer().await?;
        *slot(&self.location).lock().await = Some(c.arn.clone());
        Ok(c)
    }

    /// The stream's registered consumers (`ListStreamConsumers`).
    pub async fn list_consumers(&self) -> Result<Vec<StreamConsumer>, AdminError> {
        let stream_arn = self.stream_arn().await?;
        let mut consumers = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let req = self.client.list_stream_consumers().stream_arn(&stream_arn);
            let req = match next.take() {
                Some(token) => req.next_token(token),
                None => req,
            };
            let out = timed("ListStreamConsumers", req.send())
                .await
                .map_err(|e| CallError::from_sdk("ListStreamConsumers", e))?;
            consumers.extend(out.consumers().iter().map(|c| StreamConsumer {
                name: c.consumer_name().to_owned(),
                arn: c.consumer_arn().to_owned(),
                status: c.consumer_status().as_str().to_owned(),
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => return Ok(consumers),
            }
        }
    }

    /// Deregisters the stream consumer named by the location (`DeregisterStreamConsumer`);
    /// its subscriptions end.
    pub async fn deregister_consumer(&self) -> Result<(), AdminError> {
        let stream_arn = self.stream_arn().await?;
        timed(
            "DeregisterStreamConsumer",
            self.client
                .deregister_stream_consumer()
                .stream_arn(stream_arn)
                .consumer_name(&self.location.consumer)
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("DeregisterStreamConsumer", e))?;
        *slot(&self.location).lock().await = None;
        Ok(())
    }

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
        Ok(FanoutShardReader {
            stream: self.clone(),
            shard: shard.clone(),
            timings,
            consumer_arn: Some(consumer_arn),
            cursor: ResumeCursor::new(from),
            buffer: EventBuffer::default(),
            subscription: None,
            last_subscribe: None,
            retry_at: None,
            failures: 0,
            resubscribes: 0,
        })
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

    /// Hands out an event: its records (up to `max`, the rest buffered) and the cursor moved
    /// past it.
    fn received(&mut self, ev: &SubscribeToShardEvent, max: usize) -> Result<ReadBatch, StreamError> {
        self.failures = 0;
        metrics::counter!(crate::metrics::FANOUT_EVENTS_TOTAL).increment(1);
        let ev = ReceivedEvent::from_sdk(ev).map_err(|e| {
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
        self.buffer.push(ev);
        Ok(self.buffer.take(max))
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
                Wait::Event(ev) => return self.received(&ev, max),
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
