//! The emitter client: what a player or game links to send telemetry to a collector.
//!
//! - [`Client`]: one `POST /v1/events` at a time (protobuf or JSON, optionally gzip), with
//!   [`Client::post_with_retries`] retrying network errors, 408, 429 and 5xx with
//!   exponential backoff, never sooner than the collector's `Retry-After`.
//! - [`Emitter`]: `track(event)` and forget: events wait in a buffer bounded in bytes (the
//!   offline buffer: `track` refuses, never blocks, when it is full), go out in batches
//!   when a batch is full or every `flush_interval`, and are retried until the collector
//!   takes them, however long it is away.
//!
//! Plain HTTP (`http://`) only: in production a TLS-terminating proxy or a TLS connector in
//! front is assumed (not built here).
use crate::body::Format;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client as HyperClient, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use inlet_schemas::events::Envelope;
use prost::Message;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// How to reach the collector and how to retry.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The collector's base URL, e.g. `http://127.0.0.1:8080`.
    pub endpoint: String,
    /// The API key (sent as `Authorization: Bearer <key>`).
    pub api_key: String,
    /// How batches are written (protobuf by default: smaller and cheaper to decode).
    pub format: Format,
    /// Whether to gzip request bodies.
    pub gzip: bool,
    /// Longest a single request may take, answer included.
    pub request_timeout: Duration,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest retry delay (a longer `Retry-After` is still honoured).
    pub max_backoff: Duration,
    /// Attempts [`Client::post_with_retries`] makes before giving up (the [`Emitter`]
    /// retries without limit until it is closed).
    pub max_attempts: u32,
}

impl ClientConfig {
    /// Defaults for `endpoint` and `api_key`.
    pub fn new(endpoint: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            api_key: api_key.into(),
            format: Format::Protobuf,
            gzip: false,
            request_timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            max_attempts: 8,
        }
    }
}

/// What the collector did with a batch it answered 200.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct BatchResult {
    /// Events written to the stream.
    pub accepted: usize,
    /// Events refused (they are in the collector's bad rows), by index in the batch.
    pub rejected: Vec<RejectedEvent>,
}

/// One refused event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RejectedEvent {
    /// Its index in the batch.
    pub index: usize,
    /// The field at fault.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// A request that did not end in a [`BatchResult`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint or key cannot be used.
    #[error("bad client configuration: {0}")]
    Config(String),
    /// The request did not get an answer (connection refused or reset, ...).
    #[error("request failed: {0}")]
    Transport(String),
    /// No answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The collector answered something other than 200.
    #[error("the collector answered {status}: {message}")]
    Refused {
        /// The status.
        status: StatusCode,
        /// Its `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// Its message (the `message` of its JSON body, or the body).
        message: String,
    },
    /// A 200 whose body is not a batch result.
    #[error("unreadable answer: {0}")]
    BadAnswer(String),
    /// An event that cannot be written in the configured format.
    #[error("the event cannot be encoded: {0}")]
    Encode(String),
}

impl ClientError {
    /// Whether sending the same batch again can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout(_) => true,
            Self::Refused { status, .. } => {
                matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
            }
            Self::Config(_) | Self::BadAnswer(_) | Self::Encode(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// An answer as it came (for tests and tools that post raw bodies).
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl RawAnswer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Posts batches to a collector. Cheap to clone (connections are pooled and shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    uri: Uri,
    auth: HeaderValue,
    config: ClientConfig,
}

impl Client {
    /// A client for `config`.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let base = config.endpoint.trim_end_matches('/');
        let uri: Uri = format!("{base}/v1/events")
            .parse()
            .map_err(|e| ClientError::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        if uri.scheme_str() != Some("http") {
            return Err(ClientError::Config(format!(
                "endpoint {:?}: only http:// is supported",
                config.endpoint
            )));
        }
        let auth = HeaderValue::from_str(&format!("Bearer {}", config.api_key))
            .map_err(|_| ClientError::Config("the API key is not a valid header value".into()))?;
        let http = HyperClient::builder(TokioExecutor::new()).build_http();
        Ok(Self {
            http,
            uri,
            auth,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// One event in the configured format. Only JSON can fail: the proto3 JSON mapping
    /// has no form for an enum value this build does not know.
    pub fn encode_event(&self, event: &Envelope) -> Result<Bytes, ClientError> {
        match self.config.format {
            Format::Protobuf => Ok(Bytes::from(event.encode_to_vec())),
            Format::Json => serde_json::to_vec(event)
                .map(Bytes::from)
                .map_err(|e| ClientError::Encode(e.to_string())),
        }
    }

    /// A batch body of events encoded by [`Client::encode_event`]: an `EventBatch`, or
    /// `{"events": [...]}`.
    pub fn encode_batch<'a>(&self, events: impl IntoIterator<Item = &'a Bytes>) -> Bytes {
        let mut out = BytesMut::new();
        match self.config.format {
            Format::Protobuf => {
                for e in events {
                    // Field 1, length-delimited: how `repeated Envelope events = 1` is written.
                    out.put_u8(0x0A);
                    prost::encoding::encode_varint(e.len() as u64, &mut out);
                    out.put_slice(e);
                }
            }
            Format::Json => {
                out.put_slice(b"{\"events\":[");
                for (i, e) in events.into_iter().enumerate() {
                    if i > 0 {
                        out.put_u8(b',');
                    }
                    out.put_slice(e);
                }
                out.put_slice(b"]}");
            }
        }
        out.freeze()
    }

    /// Posts `events` once.
    pub async fn post(&self, events: &[Envelope]) -> Result<BatchResult, ClientError> {
        let body = self.encode_events(events)?;
        self.post_encoded(body).await
    }

    fn encode_events(&self, events: &[Envelope]) -> Result<Bytes, ClientError> {
        let encoded = events
            .iter()
            .map(|e| self.encode_event(e))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.encode_batch(&encoded))
    }

    /// Posts `events`, retrying what can be retried (see [`ClientError::is_retryable`]) up
    /// to `max_attempts` times.
    pub async fn post_with_retries(&self, events: &[Envelope]) -> Result<BatchResult, ClientError> {
        let body = self.encode_events(events)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.post_encoded(body.clone()).await {
                Err(e) if e.is_retryable() && attempt < self.config.max_attempts => {
                    tokio::time::sleep(self.delay(attempt, &e)).await;
                }
                result => return result,
            }
        }
    }

    /// How long to wait before attempt `attempt + 1` after `error`.
    fn delay(&self, attempt: u32, error: &ClientError) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        let backoff = self
            .config
            .initial_backoff
            .saturating_mul(factor)
            .min(self.config.max_backoff);
        backoff.max(error.retry_after().unwrap_or_default())
    }

    /// Posts an encoded batch once.
    pub async fn post_encoded(&self, body: Bytes) -> Result<BatchResult, ClientError> {
        let content_type = match self.config.format {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        };
        let (body, encoding) = if self.config.gzip {
            (gzip(&body), Some("gzip"))
        } else {
            (body, None)
        };
        let answer = self.post_raw(body, content_type, encoding, true).await?;
        if answer.status != StatusCode::OK {
            let retry_after = answer
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let json = answer.json();
            let message = match json["message"].as_str() {
                Some(m) => m.to_owned(),
                None => String::from_utf8_lossy(&answer.body).into_owned(),
            };
            return Err(ClientError::Refused {
                status: answer.status,
                retry_after,
                message,
            });
        }
        serde_json::from_slice(&answer.body).map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    /// Posts a body as is, with or without the key: the building block of the others, and
    /// a tool for tests that send what an emitter should not.
    pub async fn post_raw(
        &self,
        body: Bytes,
        content_type: &str,
        content_encoding: Option<&str>,
        with_key: bool,
    ) -> Result<RawAnswer, ClientError> {
        let mut request = Request::post(self.uri.clone()).header(header::CONTENT_TYPE, content_type);
        if let Some(encoding) = content_encoding {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        if with_key {
            request = request.header(header::AUTHORIZATION, self.auth.clone());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let timeout = self.config.request_timeout;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| ClientError::Transport(inlet_seams::error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ClientError::Transport(inlet_seams::error_chain(&e)))?
                .to_bytes();
            Ok(RawAnswer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }
}

fn gzip(data: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    Bytes::from(e.finish().unwrap_or_default())
}

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
    fn batches_encode_as_event_batch_and_json() {
        let event = Envelope {
            event_id: "e".into(),
            ..Envelope::default()
        };
        let proto = Client::new(ClientConfig::new("http://127.0.0.1:1", "k")).unwrap();
        let encoded = [proto.encode_event(&event).unwrap(), proto.encode_event(&event).unwrap()];
        let body = proto.encode_batch(&encoded);
        let decoded = inlet_schemas::events::EventBatch::decode(body).unwrap();
        assert_eq!(decoded.events, vec![event.clone(), event.clone()]);

        let json = Client::new(ClientConfig {
            format: Format::Json,
            ..ClientConfig::new("http://127.0.0.1:1/", "k")
        })
        .unwrap();
        let encoded = [json.encode_event(&event).unwrap()];
        let body = json.encode_batch(&encoded);
        let events = inlet_schemas::json::decode_batch(&body).unwrap();
        assert_eq!(events, vec![Ok(event)]);
    }

    #[test]
    fn refuses_endpoints_it_cannot_reach() {
        assert!(Client::new(ClientConfig::new("https://example.test", "k")).is_err());
        assert!(Client::new(ClientConfig::new("not a url", "k")).is_err());
        assert!(Client::new(ClientConfig::new("http://127.0.0.1:1", "bad\nkey")).is_err());
    }

    #[test]
    fn retry_delays_double_and_honour_retry_after() {
        let c = Client::new(ClientConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..ClientConfig::new("http://127.0.0.1:1", "k")
        })
        .unwrap();
        let net = ClientError::Transport("reset".into());
        assert_eq!(c.delay(1, &net), Duration::from_millis(100));
        assert_eq!(c.delay(3, &net), Duration::from_millis(400));
        assert_eq!(c.delay(30, &net), Duration::from_secs(1));
        let busy = ClientError::Refused {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(5)),
            message: String::new(),
        };
        assert!(busy.is_retryable());
        assert_eq!(c.delay(1, &busy), Duration::from_secs(5));
        let bad = ClientError::Refused {
            status: StatusCode::BAD_REQUEST,
            retry_after: None,
            message: String::new(),
        };
        assert!(!bad.is_retryable());
    }

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
