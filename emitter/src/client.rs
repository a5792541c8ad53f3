//! The one-shot client: `POST /v1/events` (protobuf or JSON, optionally gzip), with
//! [`Client::post_with_retries`] retrying network errors, 408, 429 and 5xx with exponential
//! backoff, never sooner than the collector's `Retry-After`.
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client as HyperClient, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use inlet_schemas::events::Envelope;
use inlet_schemas::wire::Format;
use prost::Message;
use std::io::Write;
use std::time::Duration;

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
    pub(crate) fn delay(&self, attempt: u32, error: &ClientError) -> Duration {
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
        let content_type = self.config.format.content_type();
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
}
