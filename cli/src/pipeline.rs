//! `inlet produce`, `inlet consume` and `inlet verify`, and the pieces the demo shares.
use crate::backends::Locations;
use crate::{bench_report, report};
use anyhow::{Result, bail};
use inlet_consumer::{GroupWorker, Worker, WorkerConfig};
use inlet_generator::{Expected, GeneratorConfig};
use inlet_producer::{Producer, ProducerConfig, ProducerStats, ShardMap};
use inlet_seams::{StreamWriter, Warehouse};
use inlet_workload::Verdict;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What to generate (the same flags give the same events).
#[derive(Debug, Clone, clap::Args)]
pub struct GenArgs {
    /// Number of events.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of events sent late (6-20 minutes after they happened).
    #[arg(long, default_value_t = 0.002)]
    pub late_share: f64,
    /// Share of invalid or malformed events.
    #[arg(long, default_value_t = 0.002)]
    pub invalid_share: f64,
    /// Mean simulated time between two events, microseconds (event time spans
    /// `events * mean_gap_us`).
    #[arg(long, default_value_t = 1_000)]
    pub mean_gap_us: u64,
    /// Share of valid events sent again (same bytes, same event id), as retries would; the
    /// copies count towards --events, and the consumer must drop each as a duplicate.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_share: f64,
    /// A copy follows its original by a random delay of simulated time up to this.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub duplicate_max_delay: Duration,
}

impl GenArgs {
    pub fn config(&self) -> GeneratorConfig {
        GeneratorConfig {
            seed: self.seed,
            events: self.events,
            late_share: self.late_share,
            invalid_share: self.invalid_share,
            mean_gap_us: self.mean_gap_us,
            duplicate_share: self.duplicate_share,
            duplicate_max_delay_ms: i64::try_from(self.duplicate_max_delay.as_millis()).unwrap_or(i64::MAX),
            ..GeneratorConfig::default()
        }
    }
}

/// `inlet produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub locations: Locations,
    #[command(flatten)]
    pub workload: GenArgs,
    /// Shards of the stream, if it has to be created.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    #[command(flatten)]
    pub producer: ProducerArgs,
    /// Send at most this many events per second (default: as fast as the producer takes them).
    #[arg(long, value_name = "EVENTS_PER_S")]
    pub rate: Option<u64>,
}

pub async fn shard_map(writer: &dyn StreamWriter) -> Result<ShardMap> {
    Ok(ShardMap::new(&writer.open_shards().await?)?)
}

/// Producer settings on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ProducerArgs {
    /// Most bytes of events held in memory; sending waits beyond it.
    #[arg(long, default_value_t = 64 << 20)]
    pub buffer_bytes: usize,
    /// Most PutRecords calls in flight.
    #[arg(long, default_value_t = 8)]
    pub max_in_flight: usize,
    /// Strict per-partition-key order across retries (one record in flight per shard).
    #[arg(long)]
    pub strict_order: bool,
    /// How long a failing record is retried before it is given up on.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub record_ttl: Duration,
    /// Where records given up on are written (JSON lines; default
    /// `<data-dir>/producer-dead-letters.ndjson`).
    #[arg(long)]
    pub dead_letter: Option<std::path::PathBuf>,
    /// Spool to this directory when the stream keeps failing (5 s), so sending goes on and
    /// an outage loses nothing; drained in order when the stream is back.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<std::path::PathBuf>,
    /// Most bytes the spool may hold.
    #[arg(long, default_value_t = 10 << 30)]
    pub spool_max_bytes: u64,
}

impl Default for ProducerArgs {
    fn default() -> Self {
        Self {
            buffer_bytes: 64 << 20,
            max_in_flight: 8,
            strict_order: false,
            record_ttl: Duration::from_secs(120),
            dead_letter: None,
            spool: None,
            spool_max_bytes: 10 << 30,
        }
    }
}

impl ProducerArgs {
    pub fn config(&self, locations: &Locations) -> ProducerConfig {
        ProducerConfig {
            max_buffered_bytes: self.buffer_bytes,
            max_in_flight: self.max_in_flight,
            strict_order: self.strict_order,
            record_ttl: self.record_ttl,
            dead_letter: Some(
                self.dead_letter
                    .clone()
                    .unwrap_or_else(|| locations.data_dir.join("producer-dead-letters.ndjson")),
            ),
            spool: self.spool.as_ref().map(|dir| inlet_producer::SpoolConfig {
                dir: dir.clone(),
                max_bytes: self.spool_max_bytes,
                after: Duration::from_secs(5),
            }),
            ..ProducerConfig::default()
        }
    }
}

pub async fn produce(args: ProduceArgs) -> Result<ExitCode> {
    let stream = args.locations.stream(args.shards).await?;
    let map = shard_map(stream.as_ref()).await?;
    let producer = Producer::start(stream, args.producer.config(&args.locations)).await?;
    let started = std::time::Instant::now();
    let report = bench_report::Recorder::from_env("produce");
    let workload = args.workload.config();
    let expected = inlet_workload::send_paced(&producer, &map, &workload, args.rate, |events, bytes| {
        if let Some(r) = &report {
            r.sent(events, bytes);
        }
    })
    .await?;
    let stats = producer.close().await?;
    let secs = started.elapsed().as_secs_f64();
    if stats.resumed > 0 {
        println!(
            "resumed {} events an earlier run left in the spool (sent first)",
            stats.resumed
        );
    }
    println!(
        "produced {} events ({} stream records in {} calls) to {} shards in {:.1} s: {:.0} events/s; failed {}",
        stats.delivered,
        stats.stream_records,
        stats.put_calls,
        map.len(),
        secs,
        stats.delivered as f64 / secs,
        stats.failed
    );
    println!(
        "expected: {} aggregated + {} dead-lettered = {} generated",
        expected.aggregated,
        expected.dead_lettered(),
        expected.generated
    );
    if let Some(r) = report {
        r.write()?;
    }
    Ok(check_delivery(&stats))
}

pub fn check_delivery(stats: &ProducerStats) -> ExitCode {
    // Events an earlier run left in the spool were accepted by it and are sent by this one.
    let to_deliver = stats.accepted + stats.resumed;
    if stats.failed > 0 || stats.delivered != to_deliver {
        eprintln!(
            "error: {} of {} events were not delivered",
            to_deliver.saturating_sub(stats.delivered),
            to_deliver
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `inlet consume`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub locations: Locations,
    /// This worker's name in the lease table (default: host and process id).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// A worker silent for this long loses its leases to live ones.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub failover: Duration,
    /// Shards of the stream, if it has to be created.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Archive every raw record read here (hourly zstd segments, fsynced before each commit),
    /// for `inlet replay --source archive`.
    #[arg(long, value_name = "DIR")]
    pub archive: Option<std::path::PathBuf>,
    /// How long beyond the allowed lateness (5 min, in event time behind a shard's watermark)
    /// event ids are remembered: a copy arriving within it is counted as a duplicate, a later
    /// one as late. Copies that could still be aggregated are always recognised.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub dedupe_retry_window: Duration,
}

pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    format!("{host}-{}", std::process::id())
}

pub async fn worker(locations: &Locations, shards: u32, config: WorkerConfig) -> Result<Worker> {
    let stream = locations.stream(shards).await?;
    let warehouse = locations.warehouse().await?;
    Ok(Worker::new(stream, warehouse.clone(), warehouse, config))
}

pub async fn consume(args: ConsumeArgs) -> Result<ExitCode> {
    let id = args.worker_id.clone().unwrap_or_else(default_worker_id);
    let mut config = WorkerConfig::new(id).with_failover(args.failover);
    config.dedupe_retry_window = args.dedupe_retry_window;
    if let Some(dir) = &args.archive {
        config = config.with_archive(Arc::new(inlet_replay::LocalArchive::new(dir)));
    }
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
    });
    let mut report = bench_report::Recorder::from_env("consume");
    // A Kafka topic's consumer group assigns the partitions; other streams' workers balance
    // the leases among themselves.
    if let Some(member) = args.locations.kafka_member(&config.worker_id, args.shards).await? {
        let warehouse = args.locations.warehouse().await?;
        let w = GroupWorker::new(Arc::new(member), warehouse.clone(), warehouse, config);
        if let Some(r) = &mut report {
            r.sample(w.stats());
        }
        w.run(shutdown).await?;
    } else {
        let w = worker(&args.locations, args.shards, config).await?;
        if let Some(r) = &mut report {
            r.sample(w.stats());
        }
        w.run(shutdown).await?;
    }
    if let Some(r) = report {
        r.write()?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `inlet verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub locations: Locations,
    #[command(flatten)]
    pub workload: GenArgs,
}

/// Compares the warehouse with the expectation; prints the verdict lines. `true` if exact.
pub async fn check(warehouse: &dyn Warehouse, expected: &Expected) -> Result<bool> {
    let totals = warehouse.totals().await?;
    let viewing = warehouse.viewing_rollups(i64::MIN, i64::MAX).await?;
    let games = warehouse.game_rollups(i64::MIN, i64::MAX).await?;
    let verdict = Verdict::new(&totals, &viewing, &games, expected);
    report::print_verdict(&totals, &verdict);
    Ok(verdict.is_exact())
}

pub async fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let stream = args.locations.existing_stream().await?;
    let map = shard_map(stream.as_ref()).await?;
    let warehouse = args.locations.warehouse().await?;
    let expected = inlet_workload::expect(&args.workload.config(), &map);
    if check(warehouse.as_ref(), &expected).await? {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("the rollups do not match")
    }
}
