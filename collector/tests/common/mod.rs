//! What the collector's integration tests share: a real collector on 127.0.0.1 port 0 in
//! front of a real embedded stream in a temp dir (behind a fault-injecting writer), keys,
//! generated events, and readers of the stream and the bad-rows file.
// Each test binary uses part of this module.
#![allow(dead_code, unreachable_pub)]

use async_trait::async_trait;
use bytes::Bytes;
use inlet_collector::{Collector, CollectorConfig, CollectorError, Summary, hash_key};
use inlet_embedded::EmbeddedStream;
use inlet_emitter::{Client, ClientConfig};
use inlet_generator::{GenEvent, Generator, GeneratorConfig};
use inlet_producer::Producer;
use inlet_schemas::events::Envelope;
use inlet_schemas::kpl;
use inlet_seams::{PutOutcome, PutRecord, Shard, StartPosition, StreamError, StreamReader, StreamWriter, WriteLimits};
use prost::Message;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The apps the generator emits for, each with its own key (`key-<app>`).
pub const APPS: [&str; 6] = [
    "tv-app",
    "ios-app",
    "android-app",
    "web-player",
    "console-game",
    "pc-game",
];

pub fn key_of(app: &str) -> String {
    format!("key-{app}")
}

/// Fault injection in front of the real embedded stream: `down` fails every call as an
/// unavailable stream does (retryable); `hold` keeps calls waiting until it is released.
#[derive(Debug)]
pub struct Faulty {
    pub inner: Arc<EmbeddedStream>,
    pub down: AtomicBool,
    pub hold: watch::Sender<bool>,
}

#[async_trait]
impl StreamWriter for Faulty {
    async fn open_shards(&self) -> Result<Vec<Shard>, StreamError> {
        self.inner.open_shards().await
    }
    async fn put_records(&self, records: &[PutRecord]) -> Result<Vec<PutOutcome>, StreamError> {
        let mut hold = self.hold.subscribe();
        let _ = hold.wait_for(|held| !held).await;
        if self.down.load(SeqCst) {
            return Err(StreamError::PutRecords {
                stream: "test".into(),
                records: records.len(),
                retryable: true,
                source: "stream unavailable (injected)".into(),
            });
        }
        self.inner.put_records(records).await
    }
    fn limits(&self) -> WriteLimits {
        self.inner.limits()
    }
}

/// A running collector and what is around it.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub stream: Arc<EmbeddedStream>,
    pub faulty: Arc<Faulty>,
    pub addr: SocketAddr,
    pub bad_rows: PathBuf,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<Summary, CollectorError>>,
}

impl Harness {
    /// Starts a collector with `tables` (TOML tables such as `[limits]`) added to a
    /// configuration with one key per app; `tv-app`'s key may post viewing events only.
    pub async fn start(tables: &str) -> Self {
        Self::start_with_bad_rows(tables, None).await
    }

    /// As [`Harness::start`], with the bad-rows file at `bad_rows` (default: in its directory).
    pub async fn start_with_bad_rows(tables: &str, bad_rows: Option<PathBuf>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stream = Arc::new(
            EmbeddedStream::open_or_create(&dir.path().join("stream.db"), 4)
                .await
                .unwrap(),
        );
        let faulty = Arc::new(Faulty {
            inner: stream.clone(),
            down: AtomicBool::new(false),
            hold: watch::Sender::new(false),
        });
        let mut toml = format!("listen = \"127.0.0.1:0\"\n{tables}\n");
        for app in APPS {
            let kinds = if app == "tv-app" {
                "kinds = [\"viewing.*\"]\n"
            } else {
                ""
            };
            toml.push_str(&format!(
                "[[keys]]\nid = \"{app}-key\"\napp_id = \"{app}\"\nsha256 = \"{}\"\n{kinds}",
                hash_key(&key_of(app))
            ));
        }
        let bad_rows = bad_rows.unwrap_or_else(|| dir.path().join("bad-rows.ndjson"));
        let settings = CollectorConfig::from_toml(&toml)
            .unwrap()
            .check(bad_rows.clone())
            .unwrap();
        let producer = Producer::start(faulty.clone(), settings.producer_config())
            .await
            .unwrap();
        let collector = Collector::bind(
            settings,
            producer,
            inlet_ops::Exporter::install(
                "collector",
                &[inlet_collector::metrics::CATALOG, inlet_producer::metrics::CATALOG],
            )
            .ok(),
        )
        .await
        .unwrap();
        let addr = collector.local_addr();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(collector.run(shutdown.clone()));
        Self {
            dir,
            stream,
            faulty,
            addr,
            bad_rows,
            shutdown,
            task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client with `app`'s key.
    pub fn client(&self, app: &str) -> Client {
        self.client_with(ClientConfig::new(self.endpoint(), key_of(app)))
    }

    pub fn client_with(&self, config: ClientConfig) -> Client {
        Client::new(ClientConfig {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            ..config
        })
        .unwrap()
    }

    /// Stops the collector and returns how it ended.
    pub async fn stop(self) -> (Summary, tempfile::TempDir, Arc<EmbeddedStream>, PathBuf) {
        self.shutdown.cancel();
        let summary = self.task.await.unwrap().unwrap();
        (summary, self.dir, self.stream, self.bad_rows)
    }
}

/// Every event in the stream, shard by shard.
pub async fn stream_events(stream: &EmbeddedStream) -> Vec<Envelope> {
    let mut out = Vec::new();
    for shard in stream.list_shards().await.unwrap() {
        let mut r = stream.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
        loop {
            let batch = r.next_batch(1_000).await.unwrap();
            if batch.records.is_empty() {
                break;
            }
            for rec in batch.records {
                for user in kpl::decode_strict(&rec.partition_key, rec.explicit_hash_key, &rec.data).unwrap() {
                    out.push(Envelope::decode(user.data).unwrap());
                }
            }
        }
    }
    out
}

/// The bad-rows file's lines (none when it is empty).
pub fn bad_rows(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Generated events timed just before now (so the collector's receive time fits them),
/// none late.
pub fn generate(events: u64, seed: u64, invalid_share: f64) -> Vec<GenEvent> {
    Generator::new(GeneratorConfig {
        seed,
        events,
        late_share: 0.0,
        invalid_share,
        start_ms: now_ms() - 10_000,
        ..GeneratorConfig::default()
    })
    .collect()
}

/// Valid generated events, decoded, with no app id (the key's is stamped in).
pub fn valid_events(n: u64, seed: u64) -> Vec<Envelope> {
    generate(n, seed, 0.0)
        .into_iter()
        .map(|e| {
            let mut event = Envelope::decode(e.data).unwrap();
            if let Some(emitter) = event.emitter.as_mut() {
                emitter.app_id.clear();
            }
            event
        })
        .collect()
}

/// The app an encoded event names, if it decodes.
pub fn app_of(data: &Bytes) -> Option<String> {
    Envelope::decode(data.clone()).ok()?.emitter.map(|e| e.app_id)
}

/// A GET over a fresh connection: status and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
