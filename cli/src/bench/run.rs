//! `inlet bench`'s flags and its steps: a fresh data directory, the stream and the warehouse,
//! the workers and then the producer, the wait for the last commit, the check of
//! `inlet verify`, and the figures read from the processes' reports.
use super::latency::{Timeline, Timing};
use super::procs::Procs;
use super::summary::{ProcFigures, Summary, redact};
use crate::backends::Locations;
use crate::bench_report::{self, Report};
use crate::human::count;
use crate::stdout::{say, tell};
use anyhow::{Context, Result, bail};
use inlet_seams::{LeaseStore, LeasedWarehouse, Warehouse};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// `inlet bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Events to generate and send.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Consumer workers, one process each.
    #[arg(long, default_value_t = 2, value_parser = crate::pipeline::at_least_one)]
    pub workers: usize,
    /// Shards of the stream, if it has to be created.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: u32,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub catalog: crate::pipeline::CatalogArgs,
    /// Events per second to send (default: as fast as the producer takes them).
    #[arg(long, value_name = "EVENTS_PER_S", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Stream URL (default: `embedded://<data-dir>/stream.db`), e.g. `kinesis://S?…` or
    /// `kafka://HOST:PORT/TOPIC?group=G`: a new, empty stream or topic.
    #[arg(long)]
    pub stream: Option<String>,
    /// Warehouse URL (default: `sqlite://<data-dir>/warehouse.db`), e.g.
    /// `postgres://user@host:port/db`: an empty one.
    #[arg(long)]
    pub warehouse: Option<String>,
    /// Keep the data (and the processes' reports, in `bench/`) here, a new or empty
    /// directory (default: a temporary directory, removed after).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print the figures as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Give up if nothing more is committed for this long.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub stall_timeout: Duration,
}

pub async fn run(args: BenchArgs) -> Result<ExitCode> {
    if args.events == 0 || args.workers == 0 {
        bail!("--events and --workers must be at least 1");
    }
    let (dir, _temp) = data_dir(args.data_dir.as_deref())?;
    let reports = dir.join("bench");
    std::fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;
    let locations = Locations {
        data_dir: Some(dir.clone()),
        stream: args.stream.clone(),
        warehouse: args.warehouse.clone(),
    };
    let stream_url = args
        .stream
        .clone()
        .unwrap_or_else(|| format!("embedded://{}", dir.join("stream.db").display()));
    let warehouse_url = args
        .warehouse
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("warehouse.db").display()));

    // The stream and the warehouse exist before any process starts (each process would create
    // what is missing, but several at once could race).
    let shards = {
        let stream = locations.stream(args.shards).await?;
        stream.open_shards().await.context("listing the stream's shards")?.len()
    };
    let warehouse = locations.warehouse().await?;
    let before = warehouse.totals().await?;
    if before.aggregated + before.dead_lettered() > 0 {
        bail!("the warehouse already holds rollups: the bench needs an empty one");
    }
    if !args.json {
        print_header(&args, shards, &stream_url, &warehouse_url);
    }

    let inlet = Inlet::new(&args, dir, reports)?;
    let procs = run_processes(&args, &inlet, &*warehouse).await?;
    let own = bench_report::own_usage();
    let (verify_text, exact) = verify(&args, &inlet).await?;

    let readings = read_reports(&procs, args.workers, own)?;
    let summary = Summary {
        events: args.events,
        workers: args.workers,
        seed: args.seed,
        rate: args.rate,
        stream: redact(&stream_url),
        warehouse: redact(&warehouse_url),
        shards,
        timing: Timing::from_timelines(&readings.sent, &readings.committed, args.events)?,
        payload_bytes: readings.payload_bytes,
        figures: readings.figures,
        exact,
    };
    if args.json {
        say!("{}", summary.json(&verify_text)?);
    } else {
        summary.print(&verify_text);
    }
    Ok(if exact { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The data directory: `given`, if it is new or empty, or a temporary one (removed when the
/// returned guard is dropped).
fn data_dir(given: Option<&Path>) -> Result<(PathBuf, Option<TempDir>)> {
    match given {
        Some(d) => {
            if d.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
                bail!("{} is not empty: the bench needs a fresh directory", d.display());
            }
            Ok((d.to_owned(), None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("inlet-bench-")
                .tempdir()
                .context("creating a temp dir")?;
            Ok((t.path().to_owned(), Some(t)))
        }
    }
}

fn print_header(args: &BenchArgs, shards: usize, stream_url: &str, warehouse_url: &str) {
    say!(
        "inlet bench: {} events, {shards} shards, 1 producer process, {} consumer worker process{}{}",
        count(args.events),
        args.workers,
        if args.workers == 1 { "" } else { "es" },
        args.rate
            .map(|r| format!(", sent at {} events/s", count(r)))
            .unwrap_or_default()
    );
    say!("stream     {}", redact(stream_url));
    say!("warehouse  {}", redact(warehouse_url));
}

/// How the bench starts `inlet` subcommands: this executable, on the bench's data directory,
/// stream and warehouse.
#[derive(Debug)]
struct Inlet {
    exe: PathBuf,
    dir: PathBuf,
    stream: Option<String>,
    warehouse: Option<String>,
    /// Where the processes write their reports.
    reports: PathBuf,
}

impl Inlet {
    fn new(args: &BenchArgs, dir: PathBuf, reports: PathBuf) -> Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("finding the inlet executable")?,
            dir,
            stream: args.stream.clone(),
            warehouse: args.warehouse.clone(),
            reports,
        })
    }

    fn command(&self, subcommand: &str) -> Command {
        let mut c = Command::new(&self.exe);
        c.arg(subcommand).arg("--data-dir").arg(&self.dir);
        if let Some(s) = &self.stream {
            c.args(["--stream", s]);
        }
        if let Some(w) = &self.warehouse {
            c.args(["--warehouse", w]);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            c.env("RUST_LOG", "warn");
        }
        c.stdin(Stdio::null());
        c
    }
}

/// Starts the workers and, once they share the leases out (so the run measures the steady
/// state), the producer; waits until every event is committed and the producer is done, then
/// stops the workers. The processes, the workers first, all exited successfully.
async fn run_processes(args: &BenchArgs, inlet: &Inlet, warehouse: &dyn LeasedWarehouse) -> Result<Procs> {
    let mut procs = Procs::default();
    let worker_ids: Vec<String> = (0..args.workers).map(|i| format!("bench-worker-{i}")).collect();
    for (i, id) in worker_ids.iter().enumerate() {
        let mut c = inlet.command("consume");
        c.args(["--worker-id", id, "--shards", &args.shards.to_string()]);
        procs.spawn(format!("consume-{i}"), c, &inlet.reports)?;
    }
    wait_balanced(warehouse, &worker_ids, &mut procs, Duration::from_secs(120)).await?;
    let mut c = inlet.command("produce");
    c.args(["--events", &args.events.to_string(), "--seed", &args.seed.to_string()])
        .args(args.catalog.to_args())
        .args(["--shards", &args.shards.to_string()]);
    if let Some(rate) = args.rate {
        c.args(["--rate", &rate.to_string()]);
    }
    procs.spawn("produce".into(), c, &inlet.reports)?;

    wait_committed(warehouse, args.events, &mut procs, args.stall_timeout, !args.json).await?;
    let (workers, producer) = procs.0.split_at_mut(args.workers);
    let status = producer[0].wait(Duration::from_secs(120)).await?;
    if !status.success() {
        bail!("the producer failed: {status}");
    }
    for w in workers.iter_mut() {
        w.terminate()?;
    }
    for w in workers.iter_mut() {
        let status = w.wait(Duration::from_secs(120)).await?;
        if !status.success() {
            bail!("{} failed: {status}", w.name);
        }
    }
    Ok(procs)
}

/// The check of `inlet verify`, in its own process so that its lines can be kept apart from
/// the figures (and out of the JSON): what it printed, and whether the rollups are exact.
async fn verify(args: &BenchArgs, inlet: &Inlet) -> Result<(String, bool)> {
    let mut verify = inlet.command("verify");
    verify
        .args(["--events", &args.events.to_string(), "--seed", &args.seed.to_string()])
        .args(args.catalog.to_args());
    let verified = tokio::task::spawn_blocking(move || verify.stderr(Stdio::inherit()).output())
        .await
        .context("running inlet verify")?
        .context("running inlet verify")?;
    let text = String::from_utf8_lossy(&verified.stdout).into_owned();
    let exact = verified.status.success() && text.contains("rollups equal the generator's totals exactly: yes");
    Ok((text, exact))
}

/// What the processes' reports say.
#[derive(Debug)]
struct Readings {
    /// The producer, the workers, then the bench itself (`own`).
    figures: Vec<ProcFigures>,
    /// The producer's timeline.
    sent: Timeline,
    /// Each worker's timeline.
    committed: Vec<Timeline>,
    payload_bytes: u64,
}

/// Reads the report of each of the processes (the first `workers` of them workers, the last
/// the producer); `own` is the bench's own usage.
fn read_reports(procs: &Procs, workers: usize, own: (Option<(f64, f64)>, Option<u64>)) -> Result<Readings> {
    let mut readings = Readings {
        figures: Vec::new(),
        sent: Vec::new(),
        committed: Vec::new(),
        payload_bytes: 0,
    };
    // The producer first, then the workers (they were started first).
    let order = procs.0.iter().rev().take(1).chain(procs.0.iter().take(workers));
    for p in order {
        let text = std::fs::read_to_string(&p.report)
            .with_context(|| format!("reading the report of {} ({})", p.name, p.report.display()))?;
        let r = Report::parse(&text).with_context(|| format!("reading {}", p.report.display()))?;
        if p.name == "produce" {
            readings.payload_bytes = r.payload_bytes;
            readings.sent = r.timeline;
        } else {
            readings.committed.push(r.timeline);
        }
        readings.figures.push(ProcFigures {
            name: p.name.clone(),
            pid: r.pid,
            cpu: r.cpu_user_s.zip(r.cpu_sys_s),
            peak_rss_bytes: r.peak_rss_bytes,
        });
    }
    readings.figures.push(ProcFigures {
        name: "bench".into(),
        pid: std::process::id(),
        cpu: own.0,
        peak_rss_bytes: own.1,
    });
    Ok(readings)
}

/// Waits until every eligible lease is held by one of `workers` and they hold equal shares
/// (give or take one).
async fn wait_balanced(leases: &dyn LeaseStore, workers: &[String], procs: &mut Procs, limit: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        let list = leases.list().await.context("listing the leases")?;
        if inlet_consumer::balance::is_balanced(&list, workers, bench_report::now_ms() as i64) {
            return Ok(());
        }
        procs.check()?;
        if started.elapsed() > limit {
            bail!(
                "the {} workers did not share the stream's leases out within {limit:?}",
                workers.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the warehouse's totals (aggregated + dead-lettered) reach `events`.
async fn wait_committed(
    warehouse: &dyn Warehouse,
    events: u64,
    procs: &mut Procs,
    stall_timeout: Duration,
    progress: bool,
) -> Result<()> {
    let mut last = (0, Instant::now());
    let mut shown = Instant::now();
    loop {
        let totals = warehouse.totals().await.context("reading the warehouse's totals")?;
        let handled = totals.read().max(0) as u64;
        if handled >= events {
            return Ok(());
        }
        if handled != last.0 {
            last = (handled, Instant::now());
        } else if last.1.elapsed() > stall_timeout {
            bail!(
                "nothing more was committed for {stall_timeout:?}, at {} of {} events",
                count(handled),
                count(events)
            );
        }
        procs.check()?;
        if progress && shown.elapsed() >= Duration::from_secs(5) {
            tell!("  committed {} of {} events", count(handled), count(events));
            shown = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
