//! The configuration file's model: one TOML document with a section per part of the
//! pipeline. Every field has a default, taken from the library that owns the setting (so a
//! default is defined once); unknown keys are refused.
use inlet_collector::CollectorConfig;
use inlet_consumer::{InitialPosition, WorkerConfig};
use inlet_ops::LogFormat;
use inlet_producer::{BatchLimits, ProducerConfig, SpoolConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The data directory when none is configured.
pub const DEFAULT_DATA_DIR: &str = "inlet-data";

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InletConfig {
    /// Directory of the embedded stream and warehouse, and of default file locations.
    pub data_dir: PathBuf,
    /// The stream.
    pub stream: StreamSection,
    /// The warehouse.
    pub warehouse: WarehouseSection,
    /// `inlet produce` (and the producer inside `inlet demo`).
    pub producer: ProducerSection,
    /// `inlet consume` workers.
    pub consumer: ConsumerSection,
    /// `inlet collector`.
    pub collector: CollectorConfig,
    /// `inlet dashboard`.
    pub dashboard: DashboardSection,
    /// The metrics and health endpoint of every long-running command.
    pub metrics: MetricsSection,
    /// Logs.
    pub log: LogSection,
}

impl Default for InletConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            stream: StreamSection::default(),
            warehouse: WarehouseSection::default(),
            producer: ProducerSection::default(),
            consumer: ConsumerSection::default(),
            collector: CollectorConfig::default(),
            dashboard: DashboardSection::default(),
            metrics: MetricsSection::default(),
            log: LogSection::default(),
        }
    }
}

/// Where the stream is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSection {
    /// `embedded:///path`, `kinesis://STREAM?region=..`, `kafka://HOST:PORT/TOPIC?group=..`;
    /// unset: `embedded://<data_dir>/stream.db`.
    pub location: Option<String>,
    /// Shards of a stream that has to be created (embedded, Kafka, a local Kinesis emulator).
    pub shards: u32,
}

impl Default for StreamSection {
    fn default() -> Self {
        Self {
            location: None,
            shards: 4,
        }
    }
}

/// Where the warehouse is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarehouseSection {
    /// `sqlite:///path` or `postgres://user@host:port/db?sslmode=..`; unset:
    /// `sqlite://<data_dir>/warehouse.db`. A password here is redacted by `inlet config`.
    pub location: Option<String>,
}

/// Every knob of the producer (KPL names in the configuration reference).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerSection {
    /// Most bytes of events held in memory; sending waits beyond it.
    pub buffer_bytes: usize,
    /// Most PutRecords calls in flight.
    pub max_in_flight: usize,
    /// Strict per-partition-key order across retries (one record in flight per shard).
    pub strict_order: bool,
    /// How long a failing record is retried before it is given up on.
    #[serde(with = "humantime_serde")]
    pub record_ttl: Duration,
    /// Attempts per stream record before it is given up on.
    pub max_attempts: u32,
    /// First retry delay (doubles per attempt, with jitter).
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Fraction of each shard's write rate to use (0 < x ≤ 1).
    pub rate_headroom: f64,
    /// How often the shard map is reloaded when nothing suggests a reshard.
    #[serde(with = "humantime_serde")]
    pub shard_map_refresh: Duration,
    /// How long an event may wait for company before its aggregate is sent.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Largest aggregated record, bytes.
    pub max_aggregate_bytes: usize,
    /// Most user records in one aggregate.
    pub max_aggregate_records: usize,
    /// Most stream records per PutRecords call.
    pub max_put_records: usize,
    /// Most bytes per PutRecords call.
    pub max_put_bytes: usize,
    /// Where records given up on are written; unset: `<data_dir>/producer-dead-letters.ndjson`.
    pub dead_letter: Option<PathBuf>,
    /// Spool to this directory during outages; unset: no spool.
    pub spool: Option<PathBuf>,
    /// Most bytes the spool may hold.
    pub spool_max_bytes: u64,
    /// How long the stream must fail before records are spooled.
    #[serde(with = "humantime_serde")]
    pub spool_after: Duration,
}

impl Default for ProducerSection {
    fn default() -> Self {
        let p = ProducerConfig::default();
        let spool = SpoolConfig::new(PathBuf::new());
        Self {
            buffer_bytes: p.max_buffered_bytes,
            max_in_flight: p.max_in_flight,
            strict_order: p.strict_order,
            record_ttl: p.record_ttl,
            max_attempts: p.max_attempts,
            initial_backoff: p.initial_backoff,
            max_backoff: p.max_backoff,
            rate_headroom: p.rate_headroom,
            shard_map_refresh: p.shard_map_refresh,
            linger: Duration::from_millis(p.batch.linger_ms),
            max_aggregate_bytes: p.batch.max_aggregate_bytes,
            max_aggregate_records: p.batch.max_aggregate_records,
            max_put_records: p.batch.max_put_records,
            max_put_bytes: p.batch.max_put_bytes,
            dead_letter: None,
            spool: None,
            spool_max_bytes: spool.max_bytes,
            spool_after: spool.after,
        }
    }
}

impl ProducerSection {
    /// The producer's settings, files defaulting into `data_dir`.
    pub fn to_config(&self, data_dir: &Path) -> ProducerConfig {
        ProducerConfig {
            batch: BatchLimits {
                max_aggregate_bytes: self.max_aggregate_bytes,
                max_aggregate_records: self.max_aggregate_records,
                max_put_records: self.max_put_records,
                max_put_bytes: self.max_put_bytes,
                linger_ms: u64::try_from(self.linger.as_millis()).unwrap_or(u64::MAX),
            },
            max_buffered_bytes: self.buffer_bytes,
            max_attempts: self.max_attempts,
            record_ttl: self.record_ttl,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
            max_in_flight: self.max_in_flight,
            strict_order: self.strict_order,
            rate_headroom: self.rate_headroom,
            shard_map_refresh: self.shard_map_refresh,
            dead_letter: Some(
                self.dead_letter
                    .clone()
                    .unwrap_or_else(|| data_dir.join("producer-dead-letters.ndjson")),
            ),
            spool: self.spool.as_ref().map(|dir| SpoolConfig {
                dir: dir.clone(),
                max_bytes: self.spool_max_bytes,
                after: self.spool_after,
            }),
        }
    }
}

/// Every knob of a consumer worker (KCL names in the configuration reference).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerSection {
    /// This worker's name in the lease table; unset: host name and process id.
    pub worker_id: Option<String>,
    /// A lease not renewed for this long may be taken by another worker.
    #[serde(with = "humantime_serde")]
    pub failover: Duration,
    /// How often leases are renewed and balanced; unset: a third of `failover`.
    #[serde(with = "humantime_serde::option")]
    pub renew_interval: Option<Duration>,
    /// How often the shard list is synced into the lease table.
    #[serde(with = "humantime_serde")]
    pub shard_sync_interval: Duration,
    /// Most leases this worker holds; unset: no limit.
    pub max_leases: Option<usize>,
    /// Commit after this many user records...
    pub commit_every_records: u64,
    /// ... or this long after the last commit.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Most stream records per read.
    pub read_batch: usize,
    /// Pause after a read that found nothing new.
    #[serde(with = "humantime_serde")]
    pub idle_wait: Duration,
    /// How far behind a shard's watermark (event time) an event still counts.
    #[serde(with = "humantime_serde")]
    pub lateness: Duration,
    /// How much longer than the lateness event ids are remembered for dedupe.
    #[serde(with = "humantime_serde")]
    pub dedupe_retry_window: Duration,
    /// Where a shard with no checkpoint starts: `trim_horizon`, `latest` or
    /// `at_timestamp:<RFC 3339>`.
    pub initial_position: InitialPosition,
    /// How often this worker folds the warehouse's final minutes; `0s`: never.
    #[serde(with = "humantime_serde")]
    pub compact_every: Duration,
    /// Final minutes each shard keeps unfolded (event time), the span `replay rebuild` can
    /// still replace.
    #[serde(with = "humantime_serde")]
    pub compact_keep: Duration,
    /// Archive every raw record read to this directory; unset: no archive.
    pub archive: Option<PathBuf>,
}

impl Default for ConsumerSection {
    fn default() -> Self {
        let w = WorkerConfig::new("");
        Self {
            worker_id: None,
            failover: w.failover,
            renew_interval: None,
            shard_sync_interval: w.shard_sync_interval,
            max_leases: None,
            commit_every_records: w.commit_every_records,
            commit_interval: w.commit_interval,
            read_batch: w.read_batch,
            idle_wait: w.idle_wait,
            lateness: Duration::from_millis(u64::try_from(w.lateness.allowed_ms).unwrap_or(0)),
            dedupe_retry_window: w.dedupe_retry_window,
            initial_position: w.initial_position,
            compact_every: w.compact_every.unwrap_or(Duration::ZERO),
            compact_keep: w.compact_keep,
            archive: None,
        }
    }
}

impl ConsumerSection {
    /// The worker's settings, named `default_id` unless `worker_id` is set. The archive is
    /// the caller's to open (it is a backend).
    pub fn to_config(&self, default_id: impl FnOnce() -> String) -> WorkerConfig {
        let id = self.worker_id.clone().unwrap_or_else(default_id);
        let mut w = WorkerConfig::new(id).with_failover(self.failover);
        if let Some(every) = self.renew_interval {
            w.renew_interval = every;
        }
        w.shard_sync_interval = self.shard_sync_interval;
        w.max_leases = self.max_leases.unwrap_or(usize::MAX);
        w.commit_every_records = self.commit_every_records;
        w.commit_interval = self.commit_interval;
        w.read_batch = self.read_batch;
        w.idle_wait = self.idle_wait;
        w.lateness = inlet_rollup::Lateness {
            allowed_ms: i64::try_from(self.lateness.as_millis()).unwrap_or(i64::MAX),
        };
        w.dedupe_retry_window = self.dedupe_retry_window;
        w.initial_position = self.initial_position;
        w.compact_every = Some(self.compact_every).filter(|d| !d.is_zero());
        w.compact_keep = self.compact_keep;
        w
    }
}

/// `inlet dashboard`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSection {
    /// Where the page and its API listen.
    pub listen: SocketAddr,
    /// A bearer token the page and API ask for (`Authorization: Bearer …`, or `?token=` for
    /// the page); unset: none. Redacted by `inlet config`.
    pub access_token: Option<String>,
    /// HTTP basic authentication instead, as `user:password`. Redacted by `inlet config`.
    pub basic_auth: Option<String>,
}

impl Default for DashboardSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            access_token: None,
            basic_auth: None,
        }
    }
}

/// The metrics and health endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve `/metrics`, `/healthz` and `/readyz` here (port 0: any free port, logged);
    /// unset: not served (the collector and dashboard also serve them on their own port).
    pub listen: Option<SocketAddr>,
}

/// Logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `text` (colours only on a terminal) or `json` (one object per line).
    pub format: LogFormat,
    /// The filter, as `RUST_LOG` takes it (`RUST_LOG` wins); unset: `info` for long-running
    /// commands, `warn` for `demo` and `bench`.
    pub level: Option<String>,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: None,
        }
    }
}
