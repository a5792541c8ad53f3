//! `inlet produce`, `inlet consume` and `inlet verify`, and the pieces the demo shares.
use crate::backends::Locations;
use crate::human::{count, rate};
use crate::ops;
use crate::settings::Overrides;
use crate::stdout::{say, tell};
use crate::{bench_report, report};
use anyhow::{Result, bail};
use inlet_config::model::ProducerSection;
use inlet_config::{ConfigError, InletConfig};
use inlet_consumer::{GroupWorker, InitialPosition, Worker, WorkerConfig, WorkerError};
use inlet_generator::{Expected, GeneratorConfig};
use inlet_ops::Health;
use inlet_producer::{Producer, ProducerStats, ShardMap};
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
    #[arg(long, default_value_t = 0.002, value_parser = share)]
    pub late_share: f64,
    /// Share of invalid or malformed events.
    #[arg(long, default_value_t = 0.002, value_parser = share)]
    pub invalid_share: f64,
    /// Mean simulated time between two events, microseconds (event time spans
    /// `events * mean_gap_us`).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub mean_gap_us: u64,
    /// Share of valid events sent again (same bytes, same event id), as retries would; the
    /// copies count towards --events, and the consumer must drop each as a duplicate.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    pub duplicate_share: f64,
    /// A copy follows its original by a random delay of simulated time up to this.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub duplicate_max_delay: Duration,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// The size of the generated world: what titles, games and profiles events are drawn from
/// (Zipf-skewed popularity for titles and games, as real catalogues are).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct CatalogArgs {
    /// Titles in the catalogue.
    #[arg(long, default_value_t = GeneratorConfig::default().titles, value_parser = clap::value_parser!(u32).range(1..))]
    pub titles: u32,
    /// Games in the catalogue.
    #[arg(long, default_value_t = GeneratorConfig::default().games, value_parser = clap::value_parser!(u32).range(1..))]
    pub games: u32,
    /// Distinct viewer profiles.
    #[arg(long, default_value_t = GeneratorConfig::default().profiles, value_parser = clap::value_parser!(u32).range(1..))]
    pub profiles: u32,
}

impl CatalogArgs {
    /// The same flags, for a child process (`inlet bench` passes them to produce and verify).
    pub fn to_args(self) -> [String; 6] {
        [
            "--titles".into(),
            self.titles.to_string(),
            "--games".into(),
            self.games.to_string(),
            "--profiles".into(),
            self.profiles.to_string(),
        ]
    }
}

/// A share of events: a number from 0 to 1 (NaN refused).
fn share(text: &str) -> Result<f64, String> {
    let v: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a share from 0 to 1"))
    }
}

/// A count that must be at least 1.
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
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
            titles: self.catalog.titles,
            games: self.catalog.games,
            profiles: self.catalog.profiles,
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
    /// Shards of the stream, if it has to be created [default: 4; config: stream.shards].
    #[arg(long)]
    pub shards: Option<u32>,
    #[command(flatten)]
    pub producer: ProducerArgs,
    /// Send at most this many events per second (default: as fast as the producer takes them).
    #[arg(long, value_name = "EVENTS_PER_S", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
}

impl Overrides for ProduceArgs {
    fn apply(&self, c: &mut InletConfig) {
        self.locations.apply(c);
        if let Some(n) = self.shards {
            c.stream.shards = n;
        }
        self.producer.apply(&mut c.producer);
    }

    fn resolve(&mut self, c: &InletConfig) {
        self.locations.resolve(c);
    }

    fn refuse_ignored(&self) -> Result<(), ConfigError> {
        if self.locations.warehouse.is_some() {
            return Err(ConfigError::key(
                "--warehouse",
                "inlet produce writes to the stream only; the warehouse is the consumers'",
            ));
        }
        Ok(())
    }
}

pub async fn shard_map(writer: &dyn StreamWriter) -> Result<ShardMap> {
    Ok(ShardMap::new(&writer.open_shards().await?)?)
}

/// Producer settings on the command line; each beats the configuration's `[producer]` key of
/// the same name, whose defaults are the producer library's.
#[derive(Debug, Clone, clap::Args)]
pub struct ProducerArgs {
    /// Most bytes of events held in memory; sending waits beyond it [default: 64 MiB].
    #[arg(long)]
    pub buffer_bytes: Option<usize>,
    /// Most PutRecords calls in flight [default: 8].
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Strict per-partition-key order across retries (one record in flight per shard).
    #[arg(long)]
    pub strict_order: bool,
    /// How long a failing record is retried before it is given up on [default: 120s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub record_ttl: Option<Duration>,
    /// Where records given up on are written (JSON lines; default
    /// `<data-dir>/producer-dead-letters.ndjson`).
    #[arg(long)]
    pub dead_letter: Option<std::path::PathBuf>,
    /// Spool to this directory when the stream keeps failing (5 s), so sending goes on and
    /// an outage loses nothing; drained in order when the stream is back.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<std::path::PathBuf>,
    /// Most bytes the spool may hold [default: 10 GiB].
    #[arg(long)]
    pub spool_max_bytes: Option<u64>,
}

impl ProducerArgs {
    fn apply(&self, p: &mut ProducerSection) {
        if let Some(v) = self.buffer_bytes {
            p.buffer_bytes = v;
        }
        if let Some(v) = self.max_in_flight {
            p.max_in_flight = v;
        }
        p.strict_order |= self.strict_order;
        if let Some(v) = self.record_ttl {
            p.record_ttl = v;
        }
        if let Some(v) = &self.dead_letter {
            p.dead_letter = Some(v.clone());
        }
        if let Some(v) = &self.spool {
            p.spool = Some(v.clone());
        }
        if let Some(v) = self.spool_max_bytes {
            p.spool_max_bytes = v;
        }
    }
}

/// The producer is ready while the stream takes its writes: not after a write failure that
/// no success has followed.
fn producer_health(producer: &Producer) -> Health {
    let probe = producer.health_probe();
    Health::new(move || match probe.last_write_failure() {
        None => Ok(()),
        Some(ago) => Err(format!("the stream failed a write {} ms ago", ago.as_millis())),
    })
}

pub async fn produce(args: ProduceArgs, config: &InletConfig) -> Result<ExitCode> {
    let stream = args.locations.stream(config.stream.shards).await?;
    let map = shard_map(stream.as_ref()).await?;
    let producer = Producer::start(stream, config.producer.to_config(&config.data_dir)).await?;
    let endpoint = ops::serve(config, "produce", producer_health(&producer)).await?;
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
        say!(
            "resumed {} events an earlier run left in the spool (sent first)",
            count(stats.resumed)
        );
    }
    say!(
        "produced {} events ({} stream records in {} calls) to {} shards in {:.1} s: {} events/s; failed {}",
        count(stats.delivered),
        count(stats.stream_records),
        count(stats.put_calls),
        map.len(),
        secs,
        rate(stats.delivered as f64 / secs),
        count(stats.failed)
    );
    say!(
        "expected: {} aggregated + {} dead-lettered = {} generated",
        count(expected.aggregated),
        count(expected.dead_lettered()),
        count(expected.generated)
    );
    if let Some(r) = report {
        r.write()?;
    }
    if let Some(e) = endpoint {
        e.stop().await?;
    }
    Ok(check_delivery(&stats))
}

pub fn check_delivery(stats: &ProducerStats) -> ExitCode {
    // Events an earlier run left in the spool were accepted by it and are sent by this one.
    let to_deliver = stats.accepted + stats.resumed;
    if stats.failed > 0 || stats.delivered != to_deliver {
        tell!(
            "error: {} of {} events were not delivered",
            count(to_deliver.saturating_sub(stats.delivered)),
            count(to_deliver)
        );
        if stats.dead_letter_unwritten > 0 {
            tell!(
                "error: {} of them could not be written to the dead-letter file either (see the log): \
                 they are lost",
                count(stats.dead_letter_unwritten)
            );
        }
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
    /// This worker's name in the lease table (default: host and process id)
    /// [config: consumer.worker_id].
    #[arg(long)]
    pub worker_id: Option<String>,
    /// A worker silent for this long loses its leases to live ones [default: 10s; config:
    /// consumer.failover].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub failover: Option<Duration>,
    /// Shards of the stream, if it has to be created [default: 4; config: stream.shards].
    #[arg(long)]
    pub shards: Option<u32>,
    /// Archive every raw record read here (hourly zstd segments, fsynced before each commit),
    /// for `inlet replay --source archive` [config: consumer.archive].
    #[arg(long, value_name = "DIR")]
    pub archive: Option<std::path::PathBuf>,
    /// How long beyond the allowed lateness (5 min, in event time behind a shard's watermark)
    /// event ids are remembered: a copy arriving within it is counted as a duplicate, a later
    /// one as late. Copies that could still be aggregated are always recognised [default: 5m;
    /// config: consumer.dedupe_retry_window].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub dedupe_retry_window: Option<Duration>,
    /// Where a shard with no checkpoint starts: trim_horizon, latest or
    /// at_timestamp:<RFC 3339 time in UTC> [default: trim_horizon; config:
    /// consumer.initial_position].
    #[arg(long)]
    pub initial_position: Option<InitialPosition>,
    /// How often the worker folds the warehouse's final minutes into one row per minute and
    /// key; 0s: never [default: 1m; config: consumer.compact_every].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub compact_every: Option<Duration>,
    /// Final minutes each shard keeps unfolded behind its open ones (event time): the span
    /// `inlet replay rebuild` can still replace [default: 1h; config: consumer.compact_keep].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub compact_keep: Option<Duration>,
    /// How often the worker logs a progress line (events/s, totals, leases, lag).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub progress_every: Duration,
}

impl Overrides for ConsumeArgs {
    fn apply(&self, c: &mut InletConfig) {
        self.locations.apply(c);
        if let Some(n) = self.shards {
            c.stream.shards = n;
        }
        let w = &mut c.consumer;
        if let Some(v) = &self.worker_id {
            w.worker_id = Some(v.clone());
        }
        if let Some(v) = self.failover {
            w.failover = v;
        }
        if let Some(v) = &self.archive {
            w.archive = Some(v.clone());
        }
        if let Some(v) = self.dedupe_retry_window {
            w.dedupe_retry_window = v;
        }
        if let Some(v) = self.initial_position {
            w.initial_position = v;
        }
        if let Some(v) = self.compact_every {
            w.compact_every = v;
        }
        if let Some(v) = self.compact_keep {
            w.compact_keep = v;
        }
    }

    fn resolve(&mut self, c: &InletConfig) {
        self.locations.resolve(c);
    }
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

pub async fn consume(args: ConsumeArgs, settings: &InletConfig) -> Result<ExitCode> {
    let mut config = settings.consumer.to_config(default_worker_id);
    if let Some(dir) = &settings.consumer.archive {
        config = config.with_archive(Arc::new(inlet_replay::LocalArchive::new(dir)));
    }
    let shards = settings.stream.shards;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
    });
    let mut report = bench_report::Recorder::from_env("consume");
    // A Kafka topic's consumer group assigns the partitions; other streams' workers balance
    // the leases among themselves.
    let (worker_id, failover) = (config.worker_id.clone(), config.failover);
    type Run = std::pin::Pin<Box<dyn Future<Output = Result<(), WorkerError>> + Send>>;
    let (stats, run): (_, Run) = if let Some(member) = args.locations.kafka_member(&config.worker_id, shards).await? {
        let warehouse = args.locations.warehouse().await?;
        let w = GroupWorker::new(Arc::new(member), warehouse.clone(), warehouse, config);
        (w.stats(), Box::pin(w.run(shutdown.clone())))
    } else {
        let w = worker(&args.locations, shards, config).await?;
        (w.stats(), Box::pin(w.run(shutdown.clone())))
    };
    if let Some(r) = &mut report {
        r.sample(Arc::clone(&stats));
    }
    let health = {
        let stats = Arc::clone(&stats);
        Health::new(move || stats.readiness(bench_report::now_ms() as i64, failover))
    };
    let endpoint = ops::serve(settings, "consume", health).await?;
    tokio::spawn(inlet_consumer::progress::log_progress(
        worker_id,
        stats,
        args.progress_every,
        shutdown.clone(),
    ));
    let result = run.await;
    shutdown.cancel();
    if let Some(e) = endpoint {
        e.stop().await?;
    }
    result?;
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
    let warehouse = args.locations.existing_warehouse().await?;
    let expected = inlet_workload::expect(&args.workload.config(), &map);
    if check(warehouse.as_ref(), &expected).await? {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("the rollups do not match")
    }
}
