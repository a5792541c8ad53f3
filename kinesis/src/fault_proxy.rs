//! A fault-injecting HTTP proxy for the Kinesis API, for tests. It sits in front of a real
//! endpoint (the local emulator), forwards every call, and on `PutRecords` can
//!
//! - fail single records with `ProvisionedThroughputExceededException` (they are taken
//!   out of the forwarded call, so a failed record is really not written),
//! - refuse whole calls (`ServiceUnavailable`, HTTP 503) before forwarding them, and
//! - leave whole calls unanswered: the call is forwarded and written, but its answer is
//!   never sent back (the connection is held open until the client gives up and drops it, or
//!   at most [`UNANSWERED_HOLD`]);
//!
//! and on `GetRecords` can answer `ProvisionedThroughputExceededException` or
//! `ExpiredIteratorException` instead of forwarding.
//!
//! All but one of these failures leave the stream unchanged, so a producer that retries them
//! writes every record once. The exception is the unanswered call: written, but the client
//! cannot know it, and Kinesis has no idempotent put, so the retry writes the records a
//! second time (any Kinesis client does, the KPL too). It exists to test the other end: that
//! the consumer recognises those copies by their event ids and drops them as duplicates.
//!
//! Choices are made by a seeded generator, so a run is repeatable.
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What to inject, changeable while the proxy runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Chance that a record of a `PutRecords` call fails with
    /// `ProvisionedThroughputExceededException`.
    pub record_throttle_rate: f64,
    /// Chance that a whole `PutRecords` call is refused (HTTP 503 `ServiceUnavailable`).
    pub call_failure_rate: f64,
    /// Chance that a `PutRecords` call is forwarded (so it is written) but never answered:
    /// the client times out and retries, writing its records again. With this fault alone,
    /// the seed decides which calls (one draw per `PutRecords` call, retries included).
    pub unanswered_call_rate: f64,
    /// Chance that a `GetRecords` call is refused with `ProvisionedThroughputExceededException`
    /// (the shard's read limits).
    pub read_throttle_rate: f64,
    /// Chance that a `GetRecords` call is refused with `ExpiredIteratorException`.
    pub iterator_expiry_rate: f64,
}

/// What the proxy injected and forwarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Calls forwarded.
    pub forwarded_calls: u64,
    /// `PutRecords` calls refused whole.
    pub refused_calls: u64,
    /// Records failed with throttling.
    pub throttled_records: u64,
    /// `GetRecords` calls refused (throttled or iterator expired).
    pub refused_reads: u64,
    /// `PutRecords` calls forwarded (so written, unless the stream refused them) whose
    /// answer was withheld.
    pub unanswered_calls: u64,
}

/// How long the answer to an unanswered call is withheld at most, if the client does not
/// give up first; then the connection is closed without an answer.
pub const UNANSWERED_HOLD: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Debug)]
struct State {
    upstream: String,
    faults: Mutex<Faults>,
    rng: Mutex<u64>,
    forwarded: AtomicU64,
    refused: AtomicU64,
    throttled: AtomicU64,
    refused_reads: AtomicU64,
    unanswered: AtomicU64,
    /// Unanswered calls whose connection is still held open.
    holding: AtomicU64,
    /// How long an unanswered call is held at most.
    hold: std::time::Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl State {
    /// A uniform draw in [0, 1) from a xorshift64* generator.
    fn draw(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn faults(&self) -> Faults {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FaultProxy {
    /// Starts a proxy on a random loopback port in front of `upstream`
    /// (e.g. `http://127.0.0.1:4568`).
    pub async fn start(upstream: &str, faults: Faults, seed: u64) -> std::io::Result<Self> {
        Self::start_holding(upstream, faults, seed, UNANSWERED_HOLD).await
    }

    async fn start_holding(
        upstream: &str,
        faults: Faults,
        seed: u64,
        hold: std::time::Duration,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            faults: Mutex::new(faults),
            rng: Mutex::new(seed | 1),
            forwarded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            refused_reads: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
            holding: AtomicU64::new(0),
            hold,
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, Arc::clone(&state), stop.clone()));
        Ok(Self { addr, state, stop })
    }

    /// The proxy's endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what is injected from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// What was injected so far.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            forwarded_calls: self.state.forwarded.load(Relaxed),
            refused_calls: self.state.refused.load(Relaxed),
            throttled_records: self.state.throttled.load(Relaxed),
            refused_reads: self.state.refused_reads.load(Relaxed),
            unanswered_calls: self.state.unanswered.load(Relaxed),
        }
    }

    /// Unanswered calls whose connection is still held open (the client has not dropped it).
    pub fn holding(&self) -> u64 {
        self.state.holding.load(Relaxed)
    }
}

async fn serve(listener: TcpListener, state: Arc<State>, stop: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let state = Arc::clone(&state);
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = stop.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

type Answer = Result<Response<Full<Bytes>>, ProxyError>;

/// Why a call got no answer: hyper closes the connection without one.
#[derive(Debug, thiserror::Error)]
enum ProxyError {
    #[error("reading the request: {0}")]
    Body(#[from] hyper::Error),
    #[error("answer withheld by the fault proxy")]
    Withheld,
}

/// Counts an unanswered call as held while it lives (the connection task drops it when the
/// client disconnects or the proxy stops).
struct Held<'a>(&'a AtomicU64);

impl<'a> Held<'a> {
    fn new(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Relaxed);
        Self(n)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .map(|t| t.as_bytes().to_vec())
        .unwrap_or_default();
    let is_put_records = target.ends_with(b".PutRecords");
    let faults = state.faults();
    if target.ends_with(b".GetRecords") {
        for (rate, code) in [
            (faults.read_throttle_rate, "ProvisionedThroughputExceededException"),
            (faults.iterator_expiry_rate, "ExpiredIteratorException"),
        ] {
            if rate > 0.0 && state.draw() < rate {
                state.refused_reads.fetch_add(1, Relaxed);
                return Ok(answer(
                    StatusCode::BAD_REQUEST,
                    json!({"__type": code, "message": "injected by the fault proxy"}),
                ));
            }
        }
    }
    if !is_put_records || faults == Faults::default() {
        return Ok(forward(&state, &parts, body).await);
    }
    // Each fault draws only when it is on, so a run with one fault draws once per call.
    if faults.call_failure_rate > 0.0 && state.draw() < faults.call_failure_rate {
        state.refused.fetch_add(1, Relaxed);
        return Ok(answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"__type": "ServiceUnavailable", "message": "injected by the fault proxy"}),
        ));
    }
    if faults.unanswered_call_rate > 0.0 && state.draw() < faults.unanswered_call_rate {
        // Written, then silence: the client times out, the connection is dropped and hyper
        // drops this future with it; the hold only bounds a client that never gives up.
        let _written = forward(&state, &parts, body).await;
        state.unanswered.fetch_add(1, Relaxed);
        let _held = Held::new(&state.holding);
        tokio::time::sleep(state.hold).await;
        return Err(ProxyError::Withheld);
    }
    let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
        return Ok(forward(&state, &parts, body).await);
    };
    let Some(records) = request.get_mut("Records").and_then(Value::as_array_mut) else {
        return Ok(forward(&state, &parts, body).await);
    };
    // Which records fail: taken out of the call, answered as throttled in their place.
    let throttled: Vec<bool> = records
        .iter()
        .map(|_| faults.record_throttle_rate > 0.0 && state.draw() < faults.record_throttle_rate)
        .collect();
    let n_throttled = throttled.iter().filter(|&&t| t).count();
    if n_throttled == 0 {
        return Ok(forward(&state, &parts, body).await);
    }
    state.throttled.fetch_add(n_throttled as u64, Relaxed);
    let kept: Vec<Value> = std::mem::take(records)
        .into_iter()
        .zip(&throttled)
        .filter(|(_, t)| !**t)
        .map(|(r, _)| r)
        .collect();
    let throttle_entry = || {
        json!({"ErrorCode": "ProvisionedThroughputExceededException",
               "ErrorMessage": "Rate exceeded for shard (injected by the fault proxy)"})
    };
    if kept.is_empty() {
        let results: Vec<Value> = throttled.iter().map(|_| throttle_entry()).collect();
        return Ok(answer(
            StatusCode::OK,
            json!({"FailedRecordCount": results.len(), "Records": results}),
        ));
    }
    *records = kept;
    let upstream = forward(&state, &parts, Bytes::from(request.to_string())).await;
    if upstream.status() != StatusCode::OK {
        return Ok(upstream);
    }
    // A Full body cannot fail to collect.
    let up_body = match upstream.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(never) => match never {},
    };
    let mut up: Value = match serde_json::from_slice(&up_body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(answer(
                StatusCode::BAD_GATEWAY,
                json!({"__type": "InternalFailure", "message": e.to_string()}),
            ));
        }
    };
    let mut written = up
        .get_mut("Records")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default()
        .into_iter();
    let failed_upstream = up.get("FailedRecordCount").and_then(Value::as_u64).unwrap_or(0);
    let results: Vec<Value> = throttled
        .iter()
        .map(|&t| {
            if t {
                throttle_entry()
            } else {
                written.next().unwrap_or_else(throttle_entry)
            }
        })
        .collect();
    up["Records"] = Value::Array(results);
    up["FailedRecordCount"] = json!(failed_upstream + n_throttled as u64);
    Ok(answer(StatusCode::OK, up))
}

async fn forward(state: &State, parts: &hyper::http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
    state.forwarded.fetch_add(1, Relaxed);
    let uri = format!(
        "{}{}",
        state.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut req = Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in &parts.headers {
        if k != hyper::header::CONTENT_LENGTH && k != hyper::header::HOST {
            req = req.header(k, v);
        }
    }
    let Ok(req) = req.body(Full::new(body)) else {
        return answer(
            StatusCode::BAD_GATEWAY,
            json!({"__type": "InternalFailure", "message": "bad request"}),
        );
    };
    match state.client.request(req).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            match body.collect().await {
                Ok(b) => {
                    let mut r = Response::from_parts(parts, Full::new(b.to_bytes()));
                    r.headers_mut().remove(hyper::header::CONTENT_LENGTH);
                    r
                }
                Err(e) => answer(
                    StatusCode::BAD_GATEWAY,
                    json!({"__type": "InternalFailure", "message": e.to_string()}),
                ),
            }
        }
        Err(e) => answer(
            StatusCode::BAD_GATEWAY,
            json!({"__type": "InternalFailure", "message": format!("upstream unreachable: {e}")}),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// An upstream nothing listens on: the forward fails fast, which the proxy withholds like
    /// any answer.
    const NOWHERE: &str = "http://127.0.0.1:1";

    async fn put_records(proxy: &FaultProxy) -> TcpStream {
        let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
        let body = r#"{"StreamName":"s","Records":[]}"#;
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: Kinesis_20131202.PutRecords\r\n\
             Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
            proxy.addr,
            body.len()
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        tcp
    }

    async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn an_unanswered_call_is_held_until_the_client_hangs_up() {
        let faults = Faults {
            unanswered_call_rate: 1.0,
            ..Faults::default()
        };
        let proxy = FaultProxy::start(NOWHERE, faults, 1).await.unwrap();
        let mut tcp = put_records(&proxy).await;
        wait_until("the call was never held", || proxy.holding() == 1).await;
        assert_eq!(proxy.stats().unanswered_calls, 1);
        assert_eq!(proxy.stats().forwarded_calls, 1, "forwarded before it is withheld");
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await;
        assert!(read.is_err(), "no answer while held: {read:?}");
        drop(tcp);
        wait_until("the hold outlived the client", || proxy.holding() == 0).await;
    }

    #[tokio::test]
    async fn a_client_that_never_hangs_up_is_cut_off_without_an_answer() {
        let faults = Faults {
            unanswered_call_rate: 1.0,
            ..Faults::default()
        };
        let proxy = FaultProxy::start_holding(NOWHERE, faults, 1, Duration::from_millis(200))
            .await
            .unwrap();
        let mut tcp = put_records(&proxy).await;
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got)).await;
        // Closed by the proxy (end of stream, or a reset), never answered.
        assert!(read.is_ok(), "the connection was not closed after the hold");
        assert!(got.is_empty(), "an answer came: {}", String::from_utf8_lossy(&got));
        wait_until("still held", || proxy.holding() == 0).await;
        assert_eq!(proxy.stats().unanswered_calls, 1);
    }

    #[tokio::test]
    async fn other_calls_and_a_zero_rate_are_answered() {
        let proxy = FaultProxy::start(NOWHERE, Faults::default(), 1).await.unwrap();
        let mut tcp = put_records(&proxy).await;
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        // The upstream is unreachable: the proxy's own 502, but an answer.
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 502"));
        assert_eq!(proxy.stats().unanswered_calls, 0);
    }
}
