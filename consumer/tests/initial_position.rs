//! Where a worker starts shards that have no checkpoint (`WorkerConfig::initial_position`):
//! with LATEST it aggregates exactly the events produced after its shard readers opened, with
//! AT_TIMESTAMP exactly those produced from that time on; a shard started at LATEST commits its
//! first read at once. On the embedded backends, and for the group worker on the Kafka broker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use inlet_consumer::{GroupWorker, InitialPosition, Worker, WorkerConfig};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_generator::{Expected, GeneratorConfig};
use inlet_producer::{Producer, ProducerConfig, ShardMap};
use inlet_seams::{LeaseStore, Shard, ShardId, ShardReader, StartPosition, StreamError, StreamReader, StreamWriter};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

const SHARDS: u32 = 3;
const EVENTS: u64 = 3_000;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A time between two workloads: produced ~100 ms after the first and before the second (the
/// stream's arrival times are ms, from this machine's clock).
async fn noted_time() -> i64 {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = now_ms();
    tokio::time::sleep(Duration::from_millis(100)).await;
    t
}

/// The embedded stream, counting the shard readers the worker opened: LATEST is where each
/// shard ended when its reader opened, so the test produces only once all are open.
#[derive(Debug)]
struct CountingOpens {
    inner: Arc<EmbeddedStream>,
    opened: AtomicUsize,
}

impl StreamReader for CountingOpens {
    fn list_shards<'life0, 'async_trait>(&'life0 self) -> Boxed<'async_trait, Result<Vec<Shard>, StreamError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.list_shards()
    }

    fn open<'life0, 'life1, 'async_trait>(
        &'life0 self,
        shard: &'life1 ShardId,
        from: StartPosition,
    ) -> Boxed<'async_trait, Result<Box<dyn ShardReader>, StreamError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let reader = self.inner.open(shard, from).await?;
            self.opened.fetch_add(1, Ordering::SeqCst);
            Ok(reader)
        })
    }
}

struct Run {
    warehouse: Arc<EmbeddedWarehouse>,
    stream: Arc<CountingOpens>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), inlet_consumer::WorkerError>>,
    _dir: tempfile::TempDir,
}

/// Starts one worker at `initial` on `stream` (committing every 100 ms unless `tune` says
/// otherwise) and waits until it opened every shard.
async fn start(stream: &Arc<EmbeddedStream>, initial: InitialPosition, tune: impl FnOnce(&mut WorkerConfig)) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Arc::new(EmbeddedWarehouse::open(&dir.path().join("w.db")).await.unwrap());
    let counting = Arc::new(CountingOpens {
        inner: stream.clone(),
        opened: AtomicUsize::new(0),
    });
    let mut cfg = WorkerConfig::new("w").with_failover(Duration::from_secs(3));
    cfg.commit_interval = Duration::from_millis(100);
    cfg.initial_position = initial;
    tune(&mut cfg);
    let shutdown = CancellationToken::new();
    let worker = Worker::new(counting.clone(), warehouse.clone(), warehouse.clone(), cfg);
    let task = tokio::spawn(worker.run(shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while counting.opened.load(Ordering::SeqCst) < SHARDS as usize {
        assert!(Instant::now() < deadline, "the worker did not open every shard");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Run {
        warehouse,
        stream: counting,
        shutdown,
        task,
        _dir: dir,
    }
}

impl Run {
    /// Waits until `expected` was read (and a moment more: a late extra would show), stops
    /// the worker and checks the warehouse holds exactly `expected`.
    async fn finish_with(self, expected: &Expected) {
        inlet_testkit::wait_until_read(&*self.warehouse, expected.generated, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        assert_eq!(
            self.stream.opened.load(Ordering::SeqCst),
            SHARDS as usize,
            "each shard opened once: no restart hid anything"
        );
        common::check(&self.warehouse, expected).await;
    }
}

async fn embedded_stream(dir: &tempfile::TempDir) -> Arc<EmbeddedStream> {
    Arc::new(
        EmbeddedStream::open_or_create(&dir.path().join("s.db"), SHARDS)
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_aggregates_only_what_was_produced_after_the_worker_started() {
    let dir = tempfile::tempdir().unwrap();
    let stream = embedded_stream(&dir).await;
    common::produce(&stream, EVENTS, 1).await;
    let run = start(&stream, InitialPosition::Latest, |_| {}).await;
    let after = common::produce(&stream, EVENTS, 2).await;
    run.finish_with(&after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_timestamp_aggregates_exactly_what_was_produced_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let stream = embedded_stream(&dir).await;
    common::produce(&stream, EVENTS, 1).await;
    let t = noted_time().await;
    let after = common::produce(&stream, EVENTS, 2).await;
    let run = start(&stream, InitialPosition::AtTimestamp(t), |_| {}).await;
    run.finish_with(&after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_horizon_is_the_default_and_aggregates_everything() {
    let dir = tempfile::tempdir().unwrap();
    let stream = embedded_stream(&dir).await;
    assert_eq!(WorkerConfig::new("w").initial_position, InitialPosition::TrimHorizon);
    // Everything produced before the worker started is read.
    let both = GeneratorConfig {
        events: 2 * EVENTS,
        seed: 3,
        late_share: 0.01,
        invalid_share: 0.01,
        ..Default::default()
    };
    let map = ShardMap::new(&stream.open_shards().await.unwrap()).unwrap();
    let producer = Producer::start(stream.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let expected = inlet_workload::send_workload(&producer, &map, &both).await.unwrap();
    producer.close().await.unwrap();
    let run = start(&stream, InitialPosition::default(), |_| {}).await;
    run.finish_with(&expected).await;
}

/// Until a shard has a checkpoint, a restart would open it at a newer LATEST: its first read is
/// committed at once, not a commit interval (here an hour) later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_started_at_latest_commits_its_first_read_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let stream = embedded_stream(&dir).await;
    let run = start(&stream, InitialPosition::Latest, |cfg| {
        cfg.commit_interval = Duration::from_secs(3600);
        cfg.commit_every_records = u64::MAX;
    })
    .await;
    common::produce(&stream, EVENTS, 4).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leases = run.warehouse.list().await.unwrap();
        if leases.len() == SHARDS as usize && leases.iter().all(|l| l.checkpoint.is_some()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint after the first read: {leases:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.shutdown.cancel();
    run.task.await.unwrap().unwrap();
}

/// The group worker on the Kafka broker: positions answered to the group are looked up in its
/// rebalance callback (`offsets_for_times`), and the partition readers keep AT_TIMESTAMP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kafka broker: run infra/test.sh"]
async fn the_group_worker_starts_at_the_timestamp_on_the_broker() {
    let bootstrap = inlet_kafka::testing::bootstrap();
    let location = inlet_kafka::testing::location(&bootstrap, "initial-position");
    let stream = Arc::new(inlet_kafka::testing::topic_on(location, SHARDS as usize).await);
    common::produce(&stream, EVENTS, 1).await;
    let t = noted_time().await;
    let after = common::produce(&stream, EVENTS, 2).await;

    let dir = tempfile::tempdir().unwrap();
    let warehouse = Arc::new(EmbeddedWarehouse::open(&dir.path().join("w.db")).await.unwrap());
    let mut cfg = WorkerConfig::new("g").with_failover(Duration::from_secs(6));
    cfg.commit_interval = Duration::from_millis(100);
    cfg.initial_position = InitialPosition::AtTimestamp(t);
    let member = stream.join_group("g").unwrap();
    let shutdown = CancellationToken::new();
    let worker = GroupWorker::new(Arc::new(member), warehouse.clone(), warehouse.clone(), cfg);
    let task = tokio::spawn(worker.run(shutdown.clone()));
    inlet_testkit::wait_until_read(&*warehouse, after.generated, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    common::check(&warehouse, &after).await;
}
