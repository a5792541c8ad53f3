//! What the dashboard's integration tests share: a generator workload pushed through the
//! embedded pipeline in-process, the dashboard served over it on 127.0.0.1 port 0, a bare
//! HTTP/1.1 GET, and the expected per-title and per-game values worked out from the
//! generator's own `Expected` (not from the dashboard's code).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use inlet_consumer::{Worker, WorkerConfig};
use inlet_dashboard::query::Family;
use inlet_dashboard::{Dashboard, DashboardConfig, Metric};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_generator::{Expected, GeneratorConfig};
use inlet_producer::{Producer, ProducerConfig, ShardMap};
use inlet_rollup::{GameAgg, ViewingAgg};
use inlet_seams::{LeaseStore, LeasedWarehouse, StreamWriter, Warehouse};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

pub(crate) const SHARDS: u32 = 3;

/// A warehouse filled by the real pipeline, and what it must hold.
pub(crate) struct Pipeline {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) warehouse: Arc<dyn LeasedWarehouse>,
    pub(crate) expected: Expected,
}

/// [`pipeline_into`] an embedded warehouse.
pub(crate) async fn pipeline(events: u64, seed: u64) -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Arc::new(EmbeddedWarehouse::open(&dir.path().join("warehouse.db")).await.unwrap());
    pipeline_into(dir, warehouse, events, seed).await
}

/// Generates `events` events, produces them to an embedded stream in `dir`, and runs one
/// consumer worker into `warehouse` until every event is committed.
pub(crate) async fn pipeline_into<W: Warehouse + LeaseStore + 'static>(
    dir: tempfile::TempDir,
    warehouse: Arc<W>,
    events: u64,
    seed: u64,
) -> Pipeline {
    let stream = Arc::new(
        EmbeddedStream::open_or_create(&dir.path().join("stream.db"), SHARDS)
            .await
            .unwrap(),
    );
    let map = ShardMap::new(&stream.open_shards().await.unwrap()).unwrap();
    let producer = Producer::start(stream.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let cfg = GeneratorConfig {
        events,
        seed,
        late_share: 0.01,
        invalid_share: 0.01,
        // 30 ms of event time between events: 20,000 events span 10 minutes.
        mean_gap_us: 30_000,
        // Copies of 2 % of the events within a minute, as retries would write them: the
        // health report must show them as duplicates.
        duplicate_share: 0.02,
        duplicate_max_delay_ms: 60_000,
        ..GeneratorConfig::default()
    };
    let expected = inlet_workload::send_workload(&producer, &map, &cfg).await.unwrap();
    assert_eq!(producer.close().await.unwrap().delivered, events);

    let mut config = WorkerConfig::new("test-worker").with_failover(Duration::from_secs(3));
    config.commit_interval = Duration::from_millis(100);
    let worker = Worker::new(stream, warehouse.clone(), warehouse.clone(), config);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(worker.run(shutdown.clone()));
    inlet_testkit::wait_until_read(&*warehouse, events, Duration::from_secs(60)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let totals = warehouse.totals().await.unwrap();
    assert_eq!(
        totals.aggregated as u64, expected.aggregated,
        "the pipeline did not finish"
    );
    Pipeline {
        dir,
        warehouse,
        expected,
    }
}

/// A dashboard serving on 127.0.0.1 port 0.
pub(crate) struct Served {
    pub(crate) addr: SocketAddr,
    pub(crate) shutdown: CancellationToken,
    pub(crate) task: tokio::task::JoinHandle<Result<(), inlet_dashboard::DashboardError>>,
}

pub(crate) async fn serve(warehouse: Arc<dyn LeasedWarehouse>) -> Served {
    let config = DashboardConfig {
        sample_interval: Duration::from_millis(200),
        ..DashboardConfig::new("127.0.0.1:0".parse().unwrap())
    };
    let dashboard = Dashboard::bind(warehouse, config).await.unwrap();
    let addr = dashboard.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(dashboard.run(shutdown.clone()));
    Served { addr, shutdown, task }
}

impl Served {
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// `GET path` over a fresh connection: status, content type, body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(String::from))
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// `GET path` answered with JSON: status and value.
pub(crate) async fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, content_type, body) = get(addr, path).await;
    assert!(
        content_type.starts_with("application/json"),
        "{path}: {content_type} {body}"
    );
    (status, serde_json::from_str(&body).unwrap())
}

/// The range holding every expected row, in whole minutes: `(from_ms, to_ms)`.
pub(crate) fn data_range(expected: &Expected) -> (i64, i64) {
    let minutes = expected
        .viewing
        .keys()
        .map(|k| k.0)
        .chain(expected.games.keys().map(|k| k.0));
    let (lo, hi) = minutes.fold((i64::MAX, i64::MIN), |(lo, hi), m| (lo.min(m), hi.max(m)));
    (lo * 60_000, (hi + 1) * 60_000)
}

/// Every title's (or game's) value of `metric` over all minutes, ranked as the API ranks:
/// highest first, undefined last, ties by key. Worked out from the generator's rows with the
/// metric's definition (docs/architecture.md, "The rollup contract").
pub(crate) fn expected_ranking(expected: &Expected, metric: Metric) -> Vec<(String, Option<f64>)> {
    let mut out: Vec<(String, Option<f64>)> = match metric.family() {
        Family::Viewing => {
            let mut by: BTreeMap<&str, ViewingAgg> = BTreeMap::new();
            for ((_, title), agg) in &expected.viewing {
                by.entry(title).or_default().merge(agg);
            }
            by.into_iter()
                .map(|(k, a)| {
                    let v = match metric {
                        Metric::Plays => Some(a.plays as f64),
                        Metric::Viewers => Some(a.viewers.estimate() as f64),
                        Metric::WatchTime => Some(a.watch_ms as f64),
                        Metric::RebufferRatio => (a.watch_ms > 0).then(|| a.rebuffer_ms as f64 / a.watch_ms as f64),
                        Metric::Bitrate => {
                            (a.bitrate_samples > 0).then(|| a.bitrate_sum_kbps as f64 / a.bitrate_samples as f64)
                        }
                        _ => a.startup_ms.quantile(0.95).map(|q| q as f64),
                    };
                    (k.to_string(), v)
                })
                .collect()
        }
        Family::Games => {
            let mut by: BTreeMap<&str, GameAgg> = BTreeMap::new();
            for ((_, game), agg) in &expected.games {
                by.entry(game).or_default().merge(agg);
            }
            by.into_iter()
                .map(|(k, a)| {
                    let v = match metric {
                        Metric::Sessions => Some(a.sessions as f64),
                        Metric::Players => Some(a.players.estimate() as f64),
                        Metric::Shots => Some(a.shots as f64),
                        Metric::Hits => Some(a.hits as f64),
                        Metric::HitRate => (a.shots > 0).then(|| a.hits as f64 / a.shots as f64),
                        Metric::Kills => Some(a.kills as f64),
                        _ => Some(a.revenue_cents as f64),
                    };
                    (k.to_string(), v)
                })
                .collect()
        }
    };
    out.sort_by(|a, b| match (a.1, b.1) {
        (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.0.cmp(&b.0)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.0.cmp(&b.0),
    });
    out
}

/// A new, empty database on the PostgreSQL `infra/servers.sh` started. Panics when
/// `INLET_PG_URL` is not set: the tests that call this are `#[ignore]`d, and run only through
/// `infra/test.sh`, which starts the server.
pub(crate) async fn fresh_postgres() -> String {
    let admin = std::env::var("INLET_PG_URL").unwrap_or_else(|_| {
        panic!(
            "INLET_PG_URL is not set: this test needs PostgreSQL; \
             run the tests through infra/test.sh, which starts it"
        )
    });
    let client = inlet_postgres::connect_client(&admin).await.unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("inlet_dashboard_{}_{nanos}", std::process::id());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    inlet_testkit::with_database(&admin, &name)
}
