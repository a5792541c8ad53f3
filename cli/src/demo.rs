//! `inlet demo`: generator → producer → embedded stream → consumer workers → embedded
//! warehouse, then a summary checked against the generator's exact totals.
use crate::backends::Locations;
use crate::human::{self, count};
use crate::pipeline::{self, GenArgs};
use crate::report;
use crate::stdout::say;
use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar};
use inlet_consumer::{ConsumerStats, WorkerConfig};
use inlet_producer::Producer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// `inlet demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub workload: GenArgs,
    /// Shards of the embedded stream.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: u32,
    /// Consumer workers (each leases a fair share of the shards).
    #[arg(long, default_value_t = 2, value_parser = crate::pipeline::at_least_one)]
    pub workers: usize,
    /// Keep the stream and warehouse here instead of a temporary directory (must not exist
    /// yet, so the check against the generator is exact).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Warehouse URL instead of the embedded one, e.g. `postgres://user@host:port/db` (an
    /// empty database, so the check against the generator is exact).
    #[arg(long)]
    pub warehouse: Option<String>,
    /// Give up if the consumers make no progress for this long.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub stall_timeout: Duration,
    /// Serve the dashboard over the demo's warehouse on this address (e.g. `127.0.0.1:8081`)
    /// while it runs, and after the summary until Ctrl-C.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<SocketAddr>,
}

pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let (dir, _temp) = match &args.data_dir {
        Some(d) if d.exists() => bail!("{} exists: the demo needs a fresh directory", d.display()),
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("inlet-demo-")
                .tempdir()
                .context("creating a temp dir")?;
            (t.path().to_owned(), Some(t))
        }
    };
    let locations = Locations {
        data_dir: Some(dir.clone()),
        stream: None,
        warehouse: args.warehouse.clone(),
    };
    let before = locations.warehouse().await?.totals().await?;
    if before.aggregated + before.dead_lettered() > 0 {
        bail!("the warehouse already holds rollups: the demo needs an empty one");
    }
    let total = args.workload.events;
    say!(
        "Inlet demo: {} events, {} shards, {} consumer workers, data in {}",
        count(total),
        args.shards,
        args.workers,
        dir.display()
    );
    let dashboard = match args.serve {
        Some(addr) => Some(crate::dashboard::start(locations.warehouse().await?, addr).await?),
        None => None,
    };
    if let Some(d) = &dashboard {
        say!("dashboard: http://{}/", d.addr());
    }

    let stream = locations.stream(args.shards).await?;
    let map = pipeline::shard_map(stream.as_ref()).await?;
    let shutdown = CancellationToken::new();
    let mut stats: Vec<Arc<ConsumerStats>> = Vec::new();
    let mut workers = Vec::new();
    for i in 0..args.workers {
        // The raw archive is on in the demo, so `inlet replay --source archive` has history.
        let config = WorkerConfig::new(format!("demo-worker-{i}"))
            .with_archive(Arc::new(inlet_replay::LocalArchive::new(dir.join("archive"))));
        let worker = pipeline::worker(&locations, args.shards, config).await?;
        stats.push(worker.stats());
        workers.push(tokio::spawn(worker.run(shutdown.clone())));
    }

    let bars = MultiProgress::new();
    let style = human::progress_style("{prefix:>10} [{bar:40}] {human_pos:>9}/{human_len:9} {rate:>12} {eta:>4}");
    let produced = bars.add(
        ProgressBar::new(total)
            .with_style(style.clone())
            .with_prefix("produced"),
    );
    let consumed = bars.add(ProgressBar::new(total).with_style(style).with_prefix("committed"));

    let started = Instant::now();
    // A 16 MiB buffer: the stream here is a local file that never stalls, so a bigger one
    // only holds more memory (the buffer fills: the generator outruns the consumers).
    let producer_config = inlet_config::model::ProducerSection {
        buffer_bytes: 16 << 20,
        ..Default::default()
    }
    .to_config(&dir);
    let producer = Producer::start(stream.clone(), producer_config).await?;
    let sent = Arc::new(AtomicU64::new(0));
    let produce = {
        let (sent, map, workload) = (Arc::clone(&sent), map.clone(), args.workload.clone());
        tokio::spawn(async move {
            let expected = inlet_workload::send_paced(&producer, &map, &workload.config(), None, |events, _| {
                sent.store(events, Relaxed);
            })
            .await?;
            let stats = producer.close().await?;
            anyhow::Ok((expected, stats, Instant::now()))
        })
    };

    // Watch progress until every generated event is committed (or nothing moves for long).
    let handled = || stats.iter().map(|s| s.snapshot().handled()).sum::<u64>();
    let mut last = (0, Instant::now());
    while handled() < total {
        tokio::time::sleep(Duration::from_millis(100)).await;
        produced.set_position(sent.load(Relaxed));
        let h = handled();
        consumed.set_position(h);
        if h != last.0 {
            last = (h, Instant::now());
        } else if last.1.elapsed() > args.stall_timeout {
            shutdown.cancel();
            bail!(
                "the consumers made no progress for {:?} at {} of {} events",
                args.stall_timeout,
                count(h),
                count(total)
            );
        }
        if produce.is_finished() && handled() < total && sent.load(Relaxed) < total {
            break; // the producer failed; its error is reported below
        }
    }
    let end_to_end = started.elapsed();
    produced.finish();
    consumed.finish();
    let (expected, producer_stats, produced_at) = produce.await.context("producer task")??;
    shutdown.cancel();
    for w in workers {
        w.await.context("worker task")??;
    }

    let warehouse = locations.warehouse().await?;
    let totals = warehouse.totals().await?;
    let secs = end_to_end.as_secs_f64();
    say!();
    say!("generated      {:>12}", count(expected.generated));
    if expected.duplicates > 0 {
        say!(
            "  duplicates   {:>12} (copies of earlier events)",
            count(expected.duplicates)
        );
    }
    say!("aggregated     {:>12}", human::signed(totals.aggregated));
    report::print_dead_letters(&totals);
    say!(
        "produced       {:>12} in {} stream records, {} PutRecords calls, {:.1} s",
        count(producer_stats.delivered),
        count(producer_stats.stream_records),
        count(producer_stats.put_calls),
        (produced_at - started).as_secs_f64()
    );
    say!(
        "throughput     {:>12} events/s end to end ({:.1} s, generator to committed rollups)",
        human::rate(total as f64 / secs),
        secs
    );
    report::print_top(warehouse.as_ref(), 5).await?;
    let exact = pipeline::check(warehouse.as_ref(), &expected).await?;
    let delivered = pipeline::check_delivery(&producer_stats) == ExitCode::SUCCESS;
    match dashboard {
        Some(d) => d.until_signal().await?,
        None => say!("to watch it in a browser: inlet demo --serve 127.0.0.1:8081"),
    }
    Ok(if exact && delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
