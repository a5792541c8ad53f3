//! `inlet bench`: generator → producer → stream → consumer workers → warehouse for a set number
//! of events, one process per role (`inlet produce`, `inlet consume` × workers, this process
//! only starts them and watches the warehouse), then the figures: events/s, MB/s of event
//! payload, CPU and peak RSS of each process (from their [`crate::bench_report`]s) and
//! event-to-rollup-visible latency, and the check of `inlet verify`.
//!
//! Latency is read off timelines, as `benches/benches/pipeline_latency.rs` does: the producer
//! records when each 1,000-event chunk was handed over, each worker when its committed count
//! changed (sampled every 10 ms); the k-th event's latency is when the workers' summed count
//! reached k minus when the k-th event was sent. That is exact for first-in first-out delivery;
//! across shards, which commit independently, an approximation.
use crate::backends::Locations;
use crate::bench_report::{self, Report, json_string};
use crate::report::thousands;
use anyhow::{Context, Result, bail};
use inlet_seams::{LeaseStore, Warehouse};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Latency is sampled at every this many events.
const LATENCY_STEP: u64 = 1_000;

/// `inlet bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Events to generate and send.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Consumer workers, one process each.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Shards of the stream, if it has to be created.
    #[arg(long, default_value_t = 8)]
    pub shards: u32,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Events per second to send (default: as fast as the producer takes them).
    #[arg(long, value_name = "EVENTS_PER_S")]
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

/// A process started by the bench.
#[derive(Debug)]
struct Proc {
    name: String,
    child: Child,
    report: PathBuf,
    exited: Option<ExitStatus>,
}

impl Proc {
    fn poll(&mut self) -> Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .with_context(|| format!("waiting for {}", self.name))?;
        }
        Ok(self.exited)
    }

    async fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.poll()? {
                return Ok(status);
            }
            if started.elapsed() > limit {
                bail!("{} (pid {}) did not exit within {limit:?}", self.name, self.child.id());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asks the process to stop (SIGTERM: a worker commits, releases its leases, reports).
    fn terminate(&mut self) -> Result<()> {
        #[cfg(unix)]
        {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status()
                .context("running kill")?;
            if !status.success() {
                bail!("kill -TERM {} ({}) failed: {status}", self.child.id(), self.name);
            }
            Ok(())
        }
        #[cfg(not(unix))]
        {
            self.child.kill().with_context(|| format!("stopping {}", self.name))
        }
    }
}

/// The processes; whatever still runs when this is dropped (the bench failed) is killed.
#[derive(Debug, Default)]
struct Procs(Vec<Proc>);

impl Procs {
    /// Fails if a process has ended before its time (a worker at all, the producer unsuccessfully).
    fn check(&mut self) -> Result<()> {
        for p in &mut self.0 {
            if let Some(status) = p.poll()?
                && !(p.name == "produce" && status.success())
            {
                bail!(
                    "{} (pid {}) exited before the bench was over: {status}",
                    p.name,
                    p.child.id()
                );
            }
        }
        Ok(())
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.0 {
            if matches!(p.poll(), Ok(None)) {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

/// One process's figures.
#[derive(Debug)]
struct ProcFigures {
    name: String,
    pid: u32,
    cpu: Option<(f64, f64)>,
    peak_rss_bytes: Option<u64>,
}

pub async fn run(args: BenchArgs) -> Result<ExitCode> {
    if args.events == 0 || args.workers == 0 {
        bail!("--events and --workers must be at least 1");
    }
    let (dir, _temp) = match &args.data_dir {
        Some(d) => {
            if d.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
                bail!("{} is not empty: the bench needs a fresh directory", d.display());
            }
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("inlet-bench-")
                .tempdir()
                .context("creating a temp dir")?;
            (t.path().to_owned(), Some(t))
        }
    };
    let reports = dir.join("bench");
    std::fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;
    let locations = Locations {
        data_dir: dir.clone(),
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
        println!(
            "inlet bench: {} events, {shards} shards, 1 producer process, {} consumer worker process{}{}",
            thousands(args.events),
            args.workers,
            if args.workers == 1 { "" } else { "es" },
            args.rate
                .map(|r| format!(", sent at {} events/s", thousands(r)))
                .unwrap_or_default()
        );
        println!("stream     {}", redact(&stream_url));
        println!("warehouse  {}", redact(&warehouse_url));
    }

    let exe = std::env::current_exe().context("finding the inlet executable")?;
    let command = |subcommand: &str| {
        let mut c = Command::new(&exe);
        c.arg(subcommand).arg("--data-dir").arg(&dir);
        if let Some(s) = &args.stream {
            c.args(["--stream", s]);
        }
        if let Some(w) = &args.warehouse {
            c.args(["--warehouse", w]);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            c.env("RUST_LOG", "warn");
        }
        c.stdin(Stdio::null());
        c
    };
    let spawn = |procs: &mut Procs, name: String, mut c: Command| -> Result<()> {
        let report = reports.join(format!("{name}.json"));
        let child = c
            .env(bench_report::ENV, &report)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        procs.0.push(Proc {
            name,
            child,
            report,
            exited: None,
        });
        Ok(())
    };

    // The workers first, until they share the leases out, so the run measures the steady state.
    let mut procs = Procs::default();
    let worker_ids: Vec<String> = (0..args.workers).map(|i| format!("bench-worker-{i}")).collect();
    for (i, id) in worker_ids.iter().enumerate() {
        let mut c = command("consume");
        c.args(["--worker-id", id, "--shards", &args.shards.to_string()]);
        spawn(&mut procs, format!("consume-{i}"), c)?;
    }
    wait_balanced(&*warehouse, &worker_ids, &mut procs, Duration::from_secs(120)).await?;
    let mut c = command("produce");
    c.args(["--events", &args.events.to_string(), "--seed", &args.seed.to_string()])
        .args(["--shards", &args.shards.to_string()]);
    if let Some(rate) = args.rate {
        c.args(["--rate", &rate.to_string()]);
    }
    spawn(&mut procs, "produce".into(), c)?;

    wait_committed(&*warehouse, args.events, &mut procs, args.stall_timeout, !args.json).await?;
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
    let own = bench_report::own_usage();

    // The check of `inlet verify`, in its own process so that its lines can be kept apart
    // from the figures (and out of the JSON).
    let mut verify = command("verify");
    verify.args(["--events", &args.events.to_string(), "--seed", &args.seed.to_string()]);
    let verified = tokio::task::spawn_blocking(move || verify.stderr(Stdio::inherit()).output())
        .await
        .context("running inlet verify")?
        .context("running inlet verify")?;
    let verify_text = String::from_utf8_lossy(&verified.stdout).into_owned();
    let exact = verified.status.success() && verify_text.contains("rollups equal the generator's totals exactly: yes");

    // The figures.
    let mut figures = Vec::new();
    let mut committed = Vec::new();
    let mut sent = Vec::new();
    let mut payload_bytes = 0;
    // The producer first, then the workers (they were started first).
    let order = procs.0.iter().rev().take(1).chain(procs.0.iter().take(args.workers));
    for p in order {
        let text = std::fs::read_to_string(&p.report)
            .with_context(|| format!("reading the report of {} ({})", p.name, p.report.display()))?;
        let r = Report::parse(&text).with_context(|| format!("reading {}", p.report.display()))?;
        if p.name == "produce" {
            payload_bytes = r.payload_bytes;
            sent = r.timeline.clone();
        } else {
            committed.push(r.timeline.clone());
        }
        figures.push(ProcFigures {
            name: p.name.clone(),
            pid: r.pid,
            cpu: r.cpu_user_s.zip(r.cpu_sys_s),
            peak_rss_bytes: r.peak_rss_bytes,
        });
    }
    figures.push(ProcFigures {
        name: "bench".into(),
        pid: std::process::id(),
        cpu: own.0,
        peak_rss_bytes: own.1,
    });
    let committed = sum_timelines(&committed);
    let Some(&(first_sent, _)) = sent.first() else {
        bail!("the producer's timeline is empty");
    };
    let Some(last_committed) = reached(&committed, args.events) else {
        bail!(
            "the workers' timelines add up to {} events, not {}",
            committed.last().map_or(0, |p| p.1),
            args.events
        );
    };
    let wall_s = (last_committed.saturating_sub(first_sent) as f64 / 1000.0).max(0.001);
    let sent_s = sent.last().map_or(0, |p| p.0.saturating_sub(first_sent)) as f64 / 1000.0;
    let mut latency = latencies(&sent, &committed, args.events, LATENCY_STEP);
    latency.sort_unstable();
    let events = args.events as f64;
    let summary = Summary {
        args: &args,
        stream: redact(&stream_url),
        warehouse: redact(&warehouse_url),
        shards,
        wall_s,
        sent_s,
        payload_bytes,
        latency,
        figures,
        exact,
    };
    if args.json {
        println!("{}", summary.json(&verify_text));
    } else {
        summary.print(events, &verify_text);
    }
    Ok(if exact { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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
            bail!("nothing more was committed for {stall_timeout:?}, at {handled} of {events} events");
        }
        procs.check()?;
        if progress && shown.elapsed() >= Duration::from_secs(5) {
            eprintln!("  committed {} of {} events", thousands(handled), thousands(events));
            shown = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Timelines of counts (each non-decreasing) summed into one: the total at each change.
fn sum_timelines(timelines: &[Vec<(u64, u64)>]) -> Vec<(u64, u64)> {
    let mut points: Vec<(u64, usize, u64)> = timelines
        .iter()
        .enumerate()
        .flat_map(|(i, t)| t.iter().map(move |&(ms, n)| (ms, i, n)))
        .collect();
    points.sort_by_key(|p| p.0); // stable: each timeline's own order is kept
    let mut current = vec![0u64; timelines.len()];
    let mut total = 0u64;
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (ms, i, n) in points {
        total = (total + n).saturating_sub(current[i]);
        current[i] = n;
        match out.last_mut() {
            Some(last) if last.0 == ms => last.1 = total,
            _ => out.push((ms, total)),
        }
    }
    out
}

/// When a timeline first reached `k` events.
fn reached(timeline: &[(u64, u64)], k: u64) -> Option<u64> {
    timeline.get(timeline.partition_point(|p| p.1 < k)).map(|p| p.0)
}

/// The latency of every `step`-th event and of the last, ms: when the committed count reached
/// k minus when the k-th event was sent.
fn latencies(sent: &[(u64, u64)], committed: &[(u64, u64)], events: u64, step: u64) -> Vec<u64> {
    let mut ks: Vec<u64> = (1..=events / step).map(|i| i * step).collect();
    if !events.is_multiple_of(step) {
        ks.push(events);
    }
    ks.into_iter()
        .filter_map(|k| Some(reached(committed, k)?.saturating_sub(reached(sent, k)?)))
        .collect()
}

/// The nearest-rank `q` quantile of sorted values.
fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

/// A URL with its password (user info, or a query setting named like one) hidden.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = rest.split_once('?').map_or((rest, None), |(r, q)| (r, Some(q)));
    let rest = match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            format!("{}:***@{host}", user.split(':').next().unwrap_or_default())
        }
        _ => rest.to_owned(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{rest}?{q}"),
        None => format!("{scheme}://{rest}"),
    }
}

/// What the bench found.
#[derive(Debug)]
struct Summary<'a> {
    args: &'a BenchArgs,
    stream: String,
    warehouse: String,
    shards: usize,
    wall_s: f64,
    /// When the producer had been handed the last event, s after the first.
    sent_s: f64,
    payload_bytes: u64,
    /// Sorted, ms.
    latency: Vec<u64>,
    figures: Vec<ProcFigures>,
    exact: bool,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

impl Summary<'_> {
    fn print(&self, events: f64, verify: &str) {
        let per_million = |cpu: f64| cpu / events * 1e6;
        let q = |p: f64| quantile(&self.latency, p).map_or("-".into(), thousands);
        println!();
        println!(
            "events       {} in {:.2} s (first event sent → last rollup committed; the last was sent at {:.2} s)",
            thousands(self.args.events),
            self.wall_s,
            self.sent_s
        );
        println!(
            "throughput   {} events/s, {:.1} MB/s of event payload (mean {:.0} bytes)",
            thousands((events / self.wall_s) as i64),
            self.payload_bytes as f64 / 1e6 / self.wall_s,
            self.payload_bytes as f64 / events
        );
        println!(
            "latency      p50 {} ms, p99 {} ms, max {} ms (event sent → its rollup committed, every {}th event; \
             exact for first-in first-out, an approximation across shards)",
            q(0.5),
            q(0.99),
            self.latency.last().map_or("-".into(), |m| thousands(*m)),
            thousands(LATENCY_STEP)
        );
        println!();
        println!(
            "{:<10} {:>8} {:>10} {:>10} {:>15} {:>10} {:>14}",
            "process", "pid", "CPU user", "CPU sys", "CPU s/M events", "CPU/wall", "peak RSS"
        );
        let mut all = 0.0;
        for f in &self.figures {
            let (user, sys, per_m, share) = match f.cpu {
                Some((u, s)) => {
                    all += u + s;
                    (
                        format!("{u:.2} s"),
                        format!("{s:.2} s"),
                        format!("{:.2}", per_million(u + s)),
                        format!("{:.2}", (u + s) / self.wall_s),
                    )
                }
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            let rss = f.peak_rss_bytes.map_or("-".into(), |b| format!("{:.1} MiB", mib(b)));
            println!(
                "{:<10} {:>8} {user:>10} {sys:>10} {per_m:>15} {share:>10} {rss:>14}",
                f.name, f.pid
            );
        }
        println!(
            "{:<10} {:>8} {:>10} {:>10} {:>15.2} {:>10.2}",
            "all",
            "",
            "",
            "",
            per_million(all),
            all / self.wall_s
        );
        println!();
        print!("{verify}");
        if !self.exact {
            println!("the rollups are NOT exact (see above)");
        }
    }

    fn json(&self, verify: &str) -> String {
        let events = self.args.events as f64;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
        let processes: Vec<String> = self
            .figures
            .iter()
            .map(|f| {
                format!(
                    "{{\"name\":{},\"pid\":{},\"cpu_user_s\":{},\"cpu_sys_s\":{},\"cpu_s_per_million_events\":{},\
                     \"peak_rss_bytes\":{}}}",
                    json_string(&f.name),
                    f.pid,
                    opt(f.cpu.map(|c| format!("{:.3}", c.0))),
                    opt(f.cpu.map(|c| format!("{:.3}", c.1))),
                    opt(f.cpu.map(|c| format!("{:.3}", (c.0 + c.1) / events * 1e6))),
                    opt(f.peak_rss_bytes.map(|b| b.to_string())),
                )
            })
            .collect();
        let q = |p: f64| opt(quantile(&self.latency, p).map(|v| v.to_string()));
        format!(
            "{{\"events\":{},\"shards\":{},\"workers\":{},\"seed\":{},\"rate\":{},\"stream\":{},\"warehouse\":{},\
             \"wall_s\":{:.3},\"sent_s\":{:.3},\"events_per_s\":{:.0},\"payload_bytes\":{},\"mb_per_s\":{:.3},\
             \"latency_ms\":{{\"p50\":{},\"p99\":{},\"max\":{},\"samples\":{}}},\"processes\":[{}],\
             \"exact\":{},\"verify\":{}}}",
            self.args.events,
            self.shards,
            self.args.workers,
            self.args.seed,
            opt(self.args.rate.map(|r| r.to_string())),
            json_string(&self.stream),
            json_string(&self.warehouse),
            self.wall_s,
            self.sent_s,
            events / self.wall_s,
            self.payload_bytes,
            self.payload_bytes as f64 / 1e6 / self.wall_s,
            q(0.5),
            q(0.99),
            opt(self.latency.last().map(|m| m.to_string())),
            self.latency.len(),
            processes.join(","),
            self.exact,
            json_string(verify),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_add_up_and_latency_is_read_off_them() {
        let a = vec![(100, 0), (1_000, 2_000), (2_000, 3_000)];
        let b = vec![(100, 0), (1_000, 1_000), (1_500, 2_000)];
        let sum = sum_timelines(&[a, b]);
        assert_eq!(sum, vec![(100, 0), (1_000, 3_000), (1_500, 4_000), (2_000, 5_000)]);
        assert_eq!(reached(&sum, 3_000), Some(1_000));
        assert_eq!(reached(&sum, 3_001), Some(1_500));
        assert_eq!(reached(&sum, 5_001), None);
        let sent = vec![(0, 0), (10, 1_000), (20, 2_000), (30, 3_000), (40, 4_000), (50, 5_000)];
        let lat = latencies(&sent, &sum, 5_000, 1_000);
        assert_eq!(lat, vec![990, 980, 970, 1_460, 1_950]);
        let mut sorted = lat;
        sorted.sort_unstable();
        assert_eq!(quantile(&sorted, 0.5), Some(990));
        assert_eq!(quantile(&sorted, 0.99), Some(1_950));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(latencies(&sent, &sum, 4_500, 1_000).len(), 5);
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://me:secret@db:5432/x"), "postgres://me:***@db:5432/x");
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(
            redact("kafka://h:9092/t?group=g&sasl.password=s"),
            "kafka://h:9092/t?group=g&sasl.password=***"
        );
        assert_eq!(redact("embedded:///tmp/s.db"), "embedded:///tmp/s.db");
    }
}
