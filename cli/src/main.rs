//! The `inlet` command.
//!
//! - `backends`: the one place that turns locations (URLs, data dirs) into seam objects.
//! - `bench`: `inlet bench`, the pipeline end to end with one process per role, measured;
//!   `bench_report`: what `inlet produce` and `inlet consume` report to it.
//! - `demo`: `inlet demo`, the whole pipeline on the embedded default with a summary.
//! - `pipeline`: `inlet produce`, `inlet consume`, `inlet verify`, shared by the demo.
//! - `report`: summaries read from the warehouse (totals, accounting, top titles/games).
//! - `collector`: `inlet collector` (the HTTP front door) and `inlet collector hash-key`.
//! - `replay`: `inlet replay rebuild|emit|ndjson` from the stream or the raw archive.
//! - `warehouse_admin`: `inlet warehouse migrate|compact` on PostgreSQL.
//! - `human`: counts, rates and times as people read them, for every line printed.
//! - `streams`: `inlet streams create|describe|split|merge|scale|delete` for Kinesis, and
//!   `create|describe|delete` for Kafka topics.
//! - `settings`: the configuration every command runs with (file, environment, flags) and
//!   `inlet config`; `ops`: the metrics and health endpoint of long-running commands.
//! - `spool`: `inlet spool inspect|repair`, a producer's spool checked and mended.
//! - `shard`: `inlet shard skip`, a shard moved past records that cannot be read.
//! - `stdout`: what commands print, ending quietly when the reader goes away.

// A binary: `pub` items are crate-wide by nature.
#![allow(unreachable_pub)]

mod backends;
mod bench;
mod bench_report;
mod collector;
mod dashboard;
mod demo;
mod human;
mod ops;
mod pipeline;
mod replay;
mod report;
mod settings;
mod shard;
mod spool;
mod stdout;
mod streams;
mod warehouse_admin;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use stdout::tell;

/// mimalloc: the hot paths allocate per event (protobuf strings), and glibc's malloc and free
/// were about a quarter of the consumer core's instructions (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Inlet: telemetry in, sharded streams, exactly-once rollups out.
#[derive(Debug, Parser)]
#[command(name = "inlet", version, about)]
struct Cli {
    #[command(flatten)]
    global: settings::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole pipeline on the embedded backends with generated telemetry, then check
    /// the rollups against the generator's exact totals.
    Demo(demo::DemoArgs),
    /// Generate telemetry into a stream.
    Produce(pipeline::ProduceArgs),
    /// Run a consumer worker until interrupted (SIGINT/SIGTERM).
    Consume(pipeline::ConsumeArgs),
    /// Compare a warehouse's rollups with what `produce` generated for the same settings.
    Verify(pipeline::VerifyArgs),
    /// Print totals, dead letters and top titles and games from a warehouse.
    Report(report::ReportArgs),
    /// Warehouse administration (PostgreSQL): migrations, compaction.
    Warehouse(warehouse_admin::WarehouseArgs),
    /// Serve the analytics dashboard (web page and JSON query API) over a warehouse.
    Dashboard(dashboard::DashboardArgs),
    /// Run the HTTP collector emitters post events to, until SIGINT/SIGTERM; or
    /// `hash-key` to hash an API key for its configuration.
    Collector(collector::CollectorArgs),
    /// Re-drive history from the stream or the raw archive: rebuild rollups, re-emit to
    /// another stream, or print NDJSON.
    Replay(replay::ReplayArgs),
    /// End-to-end load bench: generator → producer → stream → consumer workers → warehouse,
    /// one process per role; prints events/s, MB/s, CPU and peak RSS per process and
    /// event-to-rollup-visible latency, then checks the rollups as `inlet verify` does.
    ///
    /// It starts `inlet consume` × `--workers`, waits until they share the leases out, then
    /// starts `inlet produce`, waits until the warehouse holds every event (aggregated or
    /// dead-lettered) and stops the workers with SIGTERM. Each process reports its CPU time and
    /// peak RSS (Linux) and a timeline: the producer when each 1,000-event chunk was handed
    /// over, each worker its committed count every 10 ms. Wall time runs from the first event
    /// sent to the last rollup committed. The k-th event's latency is when the workers'
    /// committed total reached k minus when the k-th event was sent: exact for first-in
    /// first-out delivery, an approximation across shards (they commit independently);
    /// p50/p99/max over every 1,000th event. Embedded stream and warehouse by default.
    Bench(bench::BenchArgs),
    /// Kinesis stream administration: create, describe, split, merge, scale, delete; Kafka
    /// topics: create, describe, delete.
    Streams(streams::StreamsArgs),
    /// Check a producer's on-disk spool, or cut it at its first damage (moved aside, not
    /// dropped).
    Spool(spool::SpoolArgs),
    /// Shard operations: `skip`, past records that cannot be read (dead-lettered, counted).
    Shard(shard::ShardArgs),
    /// Print the effective configuration (the file, INLET_ variables and flags layered;
    /// secrets redacted) as TOML.
    Config(settings::ConfigArgs),
}

impl Command {
    /// The command's name, the `role` label of `inlet_build_info`.
    fn role(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Produce(_) => "produce",
            Command::Consume(_) => "consume",
            Command::Verify(_) => "verify",
            Command::Report(_) => "report",
            Command::Warehouse(_) => "warehouse",
            Command::Dashboard(_) => "dashboard",
            Command::Collector(_) => "collector",
            Command::Replay(_) => "replay",
            Command::Bench(_) => "bench",
            Command::Streams(_) => "streams",
            Command::Spool(_) => "spool",
            Command::Shard(_) => "shard",
            Command::Config(_) => "config",
        }
    }

    /// What the command's flags say about the configuration.
    fn overrides(&mut self) -> &mut dyn settings::Overrides {
        match self {
            Command::Demo(a) => a,
            Command::Produce(a) => a,
            Command::Consume(a) => a,
            Command::Verify(a) => a,
            Command::Report(a) => a,
            Command::Warehouse(a) => a,
            Command::Dashboard(a) => a,
            Command::Collector(a) => a,
            Command::Replay(a) => a,
            Command::Bench(a) => a,
            Command::Streams(a) => a,
            Command::Spool(a) => a,
            Command::Shard(a) => a,
            Command::Config(a) => a,
        }
    }
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let config = match settings::effective(&cli.global, cli.command.overrides()) {
        Ok(c) => c,
        Err(e) => {
            // A bad setting is a usage error, as a bad flag is.
            tell!("error: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.global.print_config || matches!(cli.command, Command::Config(_)) {
        stdout::write(format_args!("{}", config.to_redacted_toml()));
        return ExitCode::SUCCESS;
    }
    let default_level = match cli.command {
        Command::Demo(_) | Command::Bench(_) => "warn",
        _ => "info",
    };
    inlet_ops::logging::init(config.log.format, config.log.level.as_deref().unwrap_or(default_level));
    // Installed before anything records, so series set up at start are kept.
    if config.metrics.listen.is_some()
        && let Err(e) = ops::exporter(cli.command.role())
    {
        tell!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tell!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(a) => demo::run(a).await,
            Command::Produce(a) => pipeline::produce(a, &config).await,
            Command::Consume(a) => pipeline::consume(a, &config).await,
            Command::Verify(a) => pipeline::verify(a).await,
            Command::Report(a) => report::run(a).await,
            Command::Warehouse(a) => warehouse_admin::run(a).await,
            Command::Dashboard(a) => dashboard::run(a, &config).await,
            Command::Collector(a) => collector::run(a, config).await,
            Command::Replay(a) => replay::run(a, &config).await,
            Command::Streams(a) => streams::run(a).await,
            Command::Spool(a) => spool::run(a),
            Command::Shard(a) => shard::run(a).await,
            Command::Bench(a) => bench::run(a).await,
            Command::Config(_) => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) if stdout::is_closed_pipe(&e) => ExitCode::from(stdout::CLOSED),
        Err(e) if e.downcast_ref::<inlet_config::ConfigError>().is_some() => {
            tell!("error: configuration: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            tell!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
