//! `inlet replay`: re-drive history from the stream or the raw archive to rebuild rollups,
//! re-emit to another stream, or print NDJSON.
use crate::backends::Locations;
use crate::human::{self, count};
use crate::pipeline::wait_for_signal;
use crate::stdout::{say, tell};
use anyhow::{Context, Result, bail};
use clap::builder::{NonEmptyStringValueParser, PossibleValue, PossibleValuesParser};
use indicatif::ProgressBar;
use inlet_producer::{BatchLimits, Producer, ProducerConfig};
use inlet_replay::{ArchiveReader, Counters, Filter, ProgressFile, RebuildConfig, ReplayError, Sink, Source};
use inlet_rollup::Lateness;
use inlet_schemas::validate::Limits;
use inlet_seams::{SequenceNumber, StartPosition};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What to do with the replayed records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Recompute the range's rollups and replace them in the warehouse (idempotent).
    Rebuild,
    /// Re-emit the events to another stream (`--to-stream`) at `--speed` times their pace.
    Emit,
    /// Print the events as NDJSON (proto3 JSON mapping) on stdout.
    Ndjson,
}

/// Where to read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    /// The stream (`--stream`, default the embedded one in the data dir).
    Stream,
    /// The raw archive (`--archive`).
    Archive,
}

/// `inlet replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// What to do: rebuild, emit or ndjson.
    #[arg(value_enum)]
    pub target: Target,
    #[command(flatten)]
    pub locations: Locations,
    /// Read the stream or the archive.
    #[arg(long, value_enum, default_value = "stream")]
    pub source: SourceKind,
    /// The archive's directory (default `<data-dir>/archive`).
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// Event time range start (RFC 3339 like 2026-01-01T00:05:00Z, or ms since the epoch);
    /// a rebuild rounds it down to a whole minute.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<i64>,
    /// Event time range end, exclusive; a rebuild rounds it up to a whole minute.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<i64>,
    /// Start reading at records that arrived at or after this time (default: the oldest;
    /// a rebuild from the archive finds its exact start itself).
    #[arg(long, value_parser = parse_time, conflicts_with = "read_from_sequence")]
    pub read_from: Option<i64>,
    /// Start reading every shard at this sequence number.
    #[arg(long)]
    pub read_from_sequence: Option<String>,
    /// Only these event kinds: a family (`viewing`, `gameplay`) or a kind, in full
    /// (`viewing.heartbeat`) or after the dot (`heartbeat`); repeatable.
    #[arg(long, value_parser = kind_values())]
    pub kind: Vec<String>,
    /// Only viewing events of these titles (or gameplay events of `--game`); repeatable.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub title: Vec<String>,
    /// Only gameplay events of these games (or viewing events of `--title`); repeatable.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub game: Vec<String>,
    /// Only events of these emitter app ids; repeatable.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub app: Vec<String>,
    /// Only events of these playback or game sessions; repeatable.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub session: Vec<String>,
    /// emit: the target stream, `embedded:///path/stream.db`.
    #[arg(long)]
    pub to_stream: Option<String>,
    /// emit: shards of the target stream if it has to be created.
    #[arg(long, default_value_t = 4)]
    pub to_shards: u32,
    /// emit: speed factor over the original arrival pace (0: as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Where progress is kept so an interrupted replay resumes (default
    /// `<data-dir>/replay-<target>.progress.json`; removed when the replay completes).
    #[arg(long)]
    pub progress_file: Option<PathBuf>,
    /// Count what would be replayed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The kinds `--kind` takes: the families and every kind in full, each also by the part after
/// its dot (accepted, not listed). Anything else is refused (exit code 2) naming the value and
/// these, rather than replaying nothing.
fn kind_values() -> PossibleValuesParser {
    use inlet_replay::filter::{FAMILIES, KINDS};
    let kinds = KINDS.iter().map(|k| {
        let short = k.split_once('.').map_or(*k, |(_, short)| short);
        PossibleValue::new(*k).alias(short)
    });
    PossibleValuesParser::new(FAMILIES.iter().map(|f| PossibleValue::new(*f)).chain(kinds))
}

fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| format!("{s:?}: not ms since the epoch nor RFC 3339: {e}"))?;
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| format!("{s:?} is before 1970"))
}

impl ReplayArgs {
    fn filter(&self) -> Filter {
        Filter {
            from_ms: self.from,
            to_ms: self.to,
            kinds: self.kind.clone(),
            titles: self.title.clone(),
            games: self.game.clone(),
            apps: self.app.clone(),
            sessions: self.session.clone(),
        }
    }

    fn read_from(&self) -> Result<Option<StartPosition>> {
        Ok(match (&self.read_from, &self.read_from_sequence) {
            (Some(t), _) => Some(StartPosition::AtTimestamp(*t)),
            (None, Some(s)) => Some(StartPosition::AtSequence(
                SequenceNumber::parse(s).context("--read-from-sequence")?,
            )),
            (None, None) => None,
        })
    }
}

pub async fn run(args: ReplayArgs, config: &inlet_config::InletConfig) -> Result<ExitCode> {
    let endpoint = crate::ops::serve(config, "replay", inlet_ops::Health::always_ready()).await?;
    let result = replay(args).await;
    if let Some(e) = endpoint {
        e.stop().await?;
    }
    result
}

async fn replay(args: ReplayArgs) -> Result<ExitCode> {
    // An empty range replays nothing: a usage error (exit code 2, as clap's), not a success.
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        tell!(
            "error: --from {} is not before --to {}: the range is empty",
            human::time_ms(from),
            human::time_ms(to)
        );
        return Ok(ExitCode::from(2));
    }
    let archive_dir = args
        .archive
        .clone()
        .unwrap_or_else(|| args.locations.dir().join("archive"));
    let archive = ArchiveReader::new(&archive_dir);
    let source = match args.source {
        SourceKind::Stream => Source::Stream(args.locations.existing_stream().await?),
        SourceKind::Archive => {
            if !archive_dir.is_dir() {
                bail!("no archive at {}", archive_dir.display());
            }
            Source::Archive(archive.clone())
        }
    };
    let filter = args.filter();
    let read_from = args.read_from()?;
    let target_name = format!("{:?}", args.target).to_lowercase();
    let fingerprint = ProgressFile::fingerprint(&[
        &target_name,
        &args.source,
        &filter,
        &read_from,
        &args.to_stream,
        &args.speed,
    ]);
    let progress_path = args
        .progress_file
        .clone()
        .unwrap_or_else(|| args.locations.dir().join(format!("replay-{target_name}.progress.json")));
    let mut progress = ProgressFile::load(Some(&progress_path), &fingerprint)?;

    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            cancel.cancel();
        });
    }
    let counters = Arc::new(Counters::default());
    let bar = progress_bar(Arc::clone(&counters));
    let started = Instant::now();
    let outcome = match args.target {
        Target::Rebuild => {
            let (from_minute, to_minute) = RebuildConfig::minutes(args.from, args.to, &filter)?;
            let cfg = RebuildConfig {
                from_minute,
                to_minute,
                read_from,
                lateness: Lateness::default(),
                limits: Limits::default(),
                dry_run: args.dry_run,
                owner: format!("replay-rebuild-{}", std::process::id()),
            };
            // A dry run only reads the warehouse: it must exist (a real rebuild may fill a new one).
            let warehouse = if args.dry_run {
                args.locations.existing_warehouse().await?
            } else {
                args.locations.warehouse().await?
            };
            inlet_replay::rebuild(&source, warehouse.as_ref(), &cfg, &mut progress, &counters, &cancel)
                .await
                .map(|shards| {
                    for s in &shards {
                        if s.resumed {
                            say!("{}: done by an earlier run", s.shard);
                            continue;
                        }
                        say!(
                            "{}: {} records, {} rows {}({} zeroed), minutes replaced from {} up to {}{}",
                            s.shard,
                            count(s.records),
                            count(s.rows as u64),
                            if args.dry_run { "would be written " } else { "written " },
                            count(s.zeroed as u64),
                            if s.replaced_from_minute == i64::MIN {
                                "the start".to_owned()
                            } else {
                                human::minute(s.replaced_from_minute)
                            },
                            human::minute(s.replaced_to_minute),
                            if s.exact_start { "" } else { " (start not exact)" }
                        );
                    }
                })
        }
        Target::Emit | Target::Ndjson => {
            let start = read_from.unwrap_or(StartPosition::TrimHorizon);
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
            let producer = match (args.target, args.dry_run) {
                (Target::Emit, false) => Some(emit_producer(&args).await?),
                _ => None,
            };
            let mut sink = match (&producer, args.target) {
                _ if args.dry_run => Sink::Count,
                (Some(p), _) => Sink::Emit {
                    producer: p,
                    speed: args.speed,
                },
                _ => Sink::Ndjson(&mut out),
            };
            let driven =
                inlet_replay::drive(&source, &start, &filter, &mut sink, &mut progress, &counters, &cancel).await;
            if let Some(p) = producer {
                let stats = p.close().await?;
                tell!(
                    "emitted {} events in {} stream records",
                    count(stats.delivered),
                    count(stats.stream_records)
                );
            }
            driven.map(|d| {
                tell!(
                    "{} stream records, {} user records ({} not events), {} {}",
                    count(d.records),
                    count(d.user_records),
                    count(d.not_events),
                    count(d.replayed),
                    if args.dry_run { "would be replayed" } else { "replayed" }
                );
            })
        }
    };
    bar.finish_and_clear();
    for t in archive.torn_tails() {
        tell!(
            "archive: {} ends in a torn block at byte {} (a crash while writing); read up to it",
            t.path.display(),
            t.offset
        );
    }
    match outcome {
        Ok(()) => {
            if !args.dry_run {
                progress.remove()?;
            }
            tell!(
                "{} events in {:.1} s",
                count(counters.events.load(Relaxed)),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ReplayError::Interrupted) => {
            tell!(
                "interrupted: progress saved in {}; run the same command to resume",
                progress_path.display()
            );
            Ok(ExitCode::from(130))
        }
        Err(e) => Err(e.into()),
    }
}

async fn emit_producer(args: &ReplayArgs) -> Result<Producer> {
    let Some(url) = &args.to_stream else {
        bail!("emit needs --to-stream embedded:///path/stream.db or kinesis://STREAM?...");
    };
    let target = Locations {
        data_dir: args.locations.data_dir.clone(),
        stream: Some(url.clone()),
        warehouse: None,
    };
    if target.stream_url()? == args.locations.stream_url()? {
        bail!("--to-stream is the source stream");
    }
    let stream = target.stream(args.to_shards).await?;
    // A short linger: pacing is the point, so records should not wait for company.
    let config = ProducerConfig {
        batch: BatchLimits {
            linger_ms: 5,
            ..BatchLimits::default()
        },
        ..ProducerConfig::default()
    };
    Ok(Producer::start(stream, config).await?)
}

fn progress_bar(counters: Arc<Counters>) -> ProgressBar {
    let bar = ProgressBar::new(1_000).with_style(human::progress_style(
        "{prefix:>8} [{bar:40}] {percent:>3}% {msg} eta {eta}",
    ));
    bar.set_prefix("replay");
    let b = bar.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        while !b.is_finished() {
            let events = counters.events.load(Relaxed);
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            b.set_position(counters.permille());
            b.set_message(format!(
                "{} events, {} events/s",
                count(events),
                human::rate(events as f64 / secs)
            ));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    bar
}
