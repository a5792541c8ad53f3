//! The HTTP routes and what they share: `POST /v1/events`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`.
use crate::bad_rows::{self, BadRows};
use crate::body;
use crate::config::Settings;
use crate::error::{ApiError, json_response};
use crate::ingest::{self, Accepted, Stamp};
use crate::metrics as m;
use crate::rate_limit::TokenBucket;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use inlet_ops::Exporter;
use inlet_producer::{DeliveryError, Producer, SendError};
use inlet_schemas::validate;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// After a failed write, `/readyz` answers 503 for this long (then ready again, so traffic
/// comes back and tries the stream: a half-open circuit breaker).
pub(crate) const UNREADY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// What every request shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) settings: Settings,
    pub(crate) producer: Producer,
    pub(crate) bad_rows: BadRows,
    pub(crate) exporter: Option<Exporter>,
    pub(crate) shutting_down: AtomicBool,
    buckets: Vec<Mutex<TokenBucket>>,
    epoch: Instant,
    in_flight: Semaphore,
    /// Whether the last confirmation failed (to log the transitions only).
    stream_down: AtomicBool,
    validation: validate::Limits,
}

impl AppState {
    pub(crate) fn new(settings: Settings, producer: Producer, bad_rows: BadRows, exporter: Option<Exporter>) -> Self {
        let epoch = Instant::now();
        let buckets = settings
            .keys
            .keys()
            .iter()
            .map(|k| Mutex::new(TokenBucket::new(k.rate_limit, Duration::ZERO)))
            .collect();
        Self {
            in_flight: Semaphore::new(settings.limits.max_in_flight_requests),
            settings,
            producer,
            bad_rows,
            exporter,
            shutting_down: AtomicBool::new(false),
            buckets,
            epoch,
            stream_down: AtomicBool::new(false),
            validation: validate::Limits::default(),
        }
    }
}

/// The routes.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// A request's accounting: accepted events, and the rejected ones by index.
#[derive(Debug)]
struct Answer {
    accepted: usize,
    rejected: Vec<serde_json::Value>,
}

async fn post_events(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let gauge = metrics::gauge!(m::IN_FLIGHT_REQUESTS);
    gauge.increment(1.0);
    let (outcome, response) = match state.ingest(request).await {
        Ok(a) => {
            let body = serde_json::json!({ "accepted": a.accepted, "rejected": a.rejected });
            ("ok", json_response(StatusCode::OK, &body))
        }
        Err(e) => {
            tracing::debug!(code = e.code(), error = %e, "request refused");
            (e.code(), e.into_response())
        }
    };
    gauge.decrement(1.0);
    metrics::counter!(m::REQUESTS_TOTAL, "outcome" => outcome).increment(1);
    metrics::histogram!(m::REQUEST_DURATION_SECONDS, "outcome" => outcome).record(started.elapsed().as_secs_f64());
    response
}

impl AppState {
    /// One `POST /v1/events`, from the headers to the acknowledgement.
    async fn ingest(&self, request: Request) -> Result<Answer, ApiError> {
        let _slot = self
            .in_flight
            .try_acquire()
            .map_err(|_| ApiError::unavailable("too many requests in flight"))?;
        let limits = &self.settings.limits;
        let (parts, body) = request.into_parts();
        let key_index = self.settings.keys.authenticate(&parts.headers)?;
        let key = &self.settings.keys.keys()[key_index];
        let (format, encoding) = body::format_and_encoding(&parts.headers)?;
        let raw = body::read(body, &parts.headers, limits, self.settings.timeouts.body).await?;
        metrics::histogram!(m::REQUEST_BODY_BYTES).record(raw.len() as f64);
        let body = body::decompress(encoding, raw, limits)?;
        let events = body::split(format, &body, limits)?;
        metrics::histogram!(m::BATCH_EVENTS).record(events.len() as f64);
        self.take_tokens(key_index, events.len())?;

        let receive_time = SystemTime::now();
        let stamp = Stamp {
            key,
            receive_time_ms: receive_time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            country: self
                .settings
                .country_header
                .as_ref()
                .and_then(|h| parts.headers.get(h))
                .and_then(|v| ingest::country_from_header(v.as_bytes())),
        };
        let sorted = ingest::sort(events, &stamp, &self.validation);
        let accepted = sorted.accepted.len();
        self.write(sorted.accepted).await?;
        if !sorted.rejected.is_empty() {
            let lines = bad_rows::lines(&sorted.rejected, &key.id, &key.app_id, receive_time);
            self.bad_rows
                .append(lines)
                .await
                .map_err(|e| ApiError::unavailable(format!("rejected events could not be recorded: {e}")))?;
        }
        metrics::counter!(m::EVENTS_ACCEPTED_TOTAL, "key" => key.id.clone()).increment(accepted as u64);
        metrics::counter!(m::EVENTS_REJECTED_TOTAL, "key" => key.id.clone()).increment(sorted.rejected.len() as u64);
        Ok(Answer {
            accepted,
            rejected: sorted
                .rejected
                .iter()
                .map(|r| serde_json::json!({ "index": r.index, "field": r.field, "reason": r.reason }))
                .collect(),
        })
    }

    fn take_tokens(&self, key_index: usize, events: usize) -> Result<(), ApiError> {
        let now = self.epoch.elapsed();
        // A poisoned bucket is still a consistent number of tokens.
        let mut bucket = self.buckets[key_index].lock().unwrap_or_else(|p| p.into_inner());
        // `split` caps `events` at max_batch_events, far below u32::MAX.
        bucket
            .take(u32::try_from(events).unwrap_or(u32::MAX), now)
            .map_err(ApiError::RateLimited)
    }

    /// Hands the accepted events to the producer, all or none, and waits until the stream
    /// has them all.
    async fn write(&self, accepted: Vec<Accepted>) -> Result<(), ApiError> {
        if accepted.is_empty() {
            return Ok(());
        }
        let records = accepted.into_iter().map(|a| (a.partition_key, a.data)).collect();
        let deliveries = self.producer.try_send_all_confirmed(records).map_err(|e| match e {
            SendError::Full => ApiError::unavailable("the stream is not keeping up: the producer's buffer is full"),
            SendError::Closed => ApiError::unavailable("the collector is shutting down"),
            other => ApiError::Internal(format!("the producer refused checked events: {other}")),
        })?;
        let confirm = async {
            for d in deliveries {
                d.await?;
            }
            Ok::<_, DeliveryError>(())
        };
        let ack = self.settings.timeouts.ack;
        let result = match tokio::time::timeout(ack, confirm).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if !e.retryable => Err(ApiError::Internal(format!("the stream refused an event: {e}"))),
            Ok(Err(e)) => Err(ApiError::unavailable(format!(
                "the stream did not take the events: {e}"
            ))),
            Err(_) => Err(ApiError::unavailable(format!(
                "the stream did not confirm the events within {ack:?}"
            ))),
        };
        let down = result.is_err();
        if self.stream_down.swap(down, Relaxed) != down {
            match &result {
                Err(e) => tracing::warn!(error = %e, "stream unavailable: answering 503"),
                Ok(()) => tracing::info!("stream available again"),
            }
        }
        result
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let unready = if state.shutting_down.load(Relaxed) {
        Some("shutting down".to_owned())
    } else {
        match state.producer.last_write_failure() {
            Some(age) if age < UNREADY_AFTER_FAILURE => {
                Some(format!("the stream failed a write {} ms ago", age.as_millis()))
            }
            _ => None,
        }
    };
    match unready {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match &state.exporter {
        Some(exporter) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], exporter.render()).into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not exported by this process\n").into_response(),
    }
}
