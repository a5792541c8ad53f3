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
//! - `streams`: `inlet streams create|describe|split|merge|scale|delete` for Kinesis, and
//!   `create|describe|delete` for Kafka topics.

// A binary: `pub` items are crate-wide by nature.
#![allow(unreachable_pub)]

mod backends;
mod bench;
mod bench_report;
mod collector;
mod dashboard;
mod demo;
mod pipeline;
mod replay;
mod report;
mod streams;
mod warehouse_admin;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc: the hot paths allocate per event (protobuf strings), and glibc's malloc and free
/// were about a quarter of the consumer core's instructions (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Inlet: telemetry in, sharded streams, exactly-once rollups out.
#[derive(Debug, Parser)]
#[command(name = "inlet", version, about)]
struct Cli {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Demo(_) | Command::Bench(_) => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(a) => demo::run(a).await,
            Command::Produce(a) => pipeline::produce(a).await,
            Command::Consume(a) => pipeline::consume(a).await,
            Command::Verify(a) => pipeline::verify(a).await,
            Command::Report(a) => report::run(a).await,
            Command::Warehouse(a) => warehouse_admin::run(a).await,
            Command::Dashboard(a) => dashboard::run(a).await,
            Command::Collector(a) => collector::run(a).await,
            Command::Replay(a) => replay::run(a).await,
            Command::Streams(a) => streams::run(a).await,
            Command::Bench(a) => bench::run(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
