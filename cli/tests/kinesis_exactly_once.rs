//! Exactly once per event on the Kinesis emulator, with the real `inlet` binary: the copies
//! that faults make the producer write are read and dropped as duplicates, and the rollups
//! stay exact.
//!
//! - `PutRecords` calls written but never answered (the fault proxy): the producer retries
//!   them, the stream holds more user records than events, and the consumer drops exactly
//!   the surplus;
//! - a producer killed (SIGKILL) while the stream is stopped (SIGSTOP) with records in its
//!   spool, run again on the same spool: what it had in flight, its spool and the whole
//!   second run all reach the stream, and each event counts once;
//! - the generator's own copies with a split and a killed worker during the run.
//!
//! Needs the emulator: ignored by plain `cargo test`; `infra/test.sh` runs them (and a missing
//! emulator fails them).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use bytes::Bytes;
use common::{wait_for, wait_until_handled};
use inlet_embedded::EmbeddedWarehouse;
use inlet_kinesis::fault_proxy::{FaultProxy, Faults};
use inlet_kinesis::testing::{endpoint, private_emulator, unique_name};
use inlet_kinesis::{KinesisLocation, KinesisStream};
use inlet_seams::{LeaseStore, ShardId, StreamReader, Totals, Warehouse};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const FAILOVER: &str = "4s";

fn kinesis_url(stream: &str, endpoint: &str, call_timeout_ms: u64) -> String {
    format!("kinesis://{stream}?endpoint={endpoint}&call_timeout_ms={call_timeout_ms}")
}

/// A data directory and a workload: the same flags for `produce` and `verify`.
struct Workload {
    dir: tempfile::TempDir,
    events: u64,
    seed: u64,
    /// More workload flags (`--invalid-share 0`...).
    flags: Vec<String>,
}

impl Workload {
    fn new(events: u64, seed: u64, flags: &[&str]) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            events,
            seed,
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    fn d_str(&self) -> String {
        self.d().display().to_string()
    }

    /// The workload's flags on the stream at `url`.
    fn args(&self, url: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "--events",
            &self.events.to_string(),
            "--seed",
            &self.seed.to_string(),
            "--late-share",
            "0",
            "--stream",
            url,
            "--data-dir",
            &self.d_str(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(self.flags.iter().cloned());
        args
    }

    /// `inlet produce` of the workload into `url`, with more flags (`--rate`, `--spool`); its
    /// log goes to `produce.log` in the data directory.
    fn produce(&self, url: &str, extra: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.d().join("produce.log"))
            .unwrap();
        inlet(&[&["produce"][..], &strs(&self.args(url)), extra].concat())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn consumer(&self, url: &str, id: &str) -> Child {
        inlet(&[
            "consume",
            "--worker-id",
            id,
            "--failover",
            FAILOVER,
            "--stream",
            url,
            "--data-dir",
            &self.d_str(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
    }

    async fn warehouse(&self) -> EmbeddedWarehouse {
        common::open_warehouse(self.d()).await
    }

    /// `inlet verify`, which must succeed; its output.
    async fn verify(&self, url: &str) -> String {
        let out = run(inlet(&[&["verify"][..], &strs(&self.args(url))].concat())).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && stdout.contains("rollups equal the generator's totals exactly: yes"),
            "verify failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn inlet(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inlet"));
    c.args(args).env("RUST_LOG", "warn");
    c
}

/// Runs a command to its end off the runtime's threads (the fault proxy runs on them).
async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// `inlet streams --stream URL ARGS`, which must succeed.
async fn streams(url: &str, args: &[&str]) {
    let out = run(inlet(&[&["streams", "--stream", url][..], args].concat())).await;
    assert!(
        out.status.success(),
        "inlet streams {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for a process to end, `limit` at most (then kills it and fails).
async fn wait_output(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// Waits for `inlet produce` of `w` to succeed; its report.
async fn wait_produced(w: &Workload, producer: Child, limit: Duration) -> String {
    let out = wait_output(producer, limit).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "inlet produce failed ({}):\n{stdout}\nits log (all runs):\n{}",
        out.status,
        std::fs::read_to_string(w.d().join("produce.log")).unwrap_or_default()
    );
    assert!(stdout.contains("failed 0"), "{stdout}");
    stdout
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{sig} {pid}");
}

/// Stops a worker with SIGTERM; it must exit cleanly.
async fn stop(worker: Child) {
    signal(worker.id(), "TERM");
    let out = wait_output(worker, Duration::from_secs(60)).await;
    assert!(out.status.success(), "a worker exited with {:?}", out.status);
}

async fn totals(w: &EmbeddedWarehouse) -> Totals {
    w.totals().await.unwrap()
}

/// What the stream holds, read back independently of the consumer.
struct StreamContents {
    /// User records (KPL aggregates taken apart), all shards.
    user_records: u64,
    /// Shards holding each distinct payload (a copy has its original's bytes).
    shards_of: HashMap<Bytes, Vec<ShardId>>,
    /// Each shard's parents.
    parents: BTreeMap<ShardId, Vec<ShardId>>,
    /// User records outside their shard's hash-key range (aggregates in flight at a split).
    outside_range: u64,
}

impl StreamContents {
    /// Payloads found on two shards of which neither descends from the other: copies the
    /// consumer cannot recognise (documented: a copy written into a sibling's aggregate).
    fn copies_across_lineages(&self) -> u64 {
        let ancestor = |s: &ShardId, a: &ShardId| descends(&self.parents, s, a);
        self.shards_of
            .values()
            .filter(|shards| {
                shards
                    .iter()
                    .any(|a| shards.iter().any(|b| !ancestor(a, b) && !ancestor(b, a)))
            })
            .count() as u64
    }
}

/// Whether `shard` is `ancestor` or descends from it.
fn descends<'a>(parents: &'a BTreeMap<ShardId, Vec<ShardId>>, mut shard: &'a ShardId, ancestor: &ShardId) -> bool {
    loop {
        if shard == ancestor {
            return true;
        }
        match parents.get(shard).and_then(|p| p.first()) {
            Some(p) => shard = p,
            None => return false,
        }
    }
}

/// Reads every shard of the stream at `url` from its start with Inlet's reader.
async fn read_stream(url: &str) -> StreamContents {
    // Patient: the emulator may still be catching up.
    let location = KinesisLocation {
        call_timeout: Duration::from_secs(60),
        ..KinesisLocation::parse(url).unwrap()
    };
    let stream = KinesisStream::connect(location).await;
    let mut contents = StreamContents {
        user_records: 0,
        shards_of: HashMap::new(),
        parents: BTreeMap::new(),
        outside_range: 0,
    };
    for shard in stream.list_shards().await.unwrap() {
        contents.parents.insert(shard.id.clone(), shard.parents());
    }
    for (shard, _, _, u) in inlet_testkit::user_records(&inlet_testkit::read_stream(&stream).await) {
        contents.user_records += 1;
        let hash = u
            .explicit_hash_key
            .unwrap_or_else(|| inlet_seams::hash_key(&u.partition_key));
        if !shard.hash_range.contains(hash) {
            contents.outside_range += 1;
        }
        let shards = contents.shards_of.entry(u.data).or_default();
        if !shards.contains(&shard.id) {
            shards.push(shard.id.clone());
        }
    }
    contents
}

/// The numbers of verify's line "duplicates: N from the generator's copies, M dropped".
fn verify_duplicates(stdout: &str) -> (i64, i64) {
    let line = stdout
        .lines()
        .find(|l| l.contains("from the generator's copies"))
        .unwrap_or_else(|| panic!("no duplicates line in:\n{stdout}"));
    let n: Vec<i64> = line
        .split_whitespace()
        .filter_map(|t| t.trim_end_matches(',').replace(',', "").parse().ok())
        .collect();
    assert_eq!(n.len(), 2, "{line}");
    (n[0], n[1])
}

/// User records in a spool directory not yet settled (a record torn by the kill is not one).
fn spooled_user_records(dir: &Path) -> u64 {
    inlet_producer::spool::inspect(dir).map_or(0, |i| i.pending_user_records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn unanswered_calls_are_retried_and_their_copies_dropped() {
    let endpoint = endpoint();
    let started = Instant::now();
    // Seed 23: PutRecords calls 10 and 12 (of about 25) are left unanswered, and 14 if any.
    let faults = Faults {
        unanswered_call_rate: 0.05,
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&endpoint, faults, 23).await.unwrap();
    let name = unique_name("unanswered");
    let direct = kinesis_url(&name, &endpoint, 30_000);
    // A short call timeout through the proxy: an unanswered call is given up on after 1 s.
    let via_proxy = kinesis_url(&name, &proxy.endpoint(), 1_000);
    // No invalid events: a copy of one whose id is broken cannot be recognised (each copy is
    // a dead letter), and the duplicates are to be counted exactly.
    let w = Workload::new(20_000, 41, &["--invalid-share", "0"]);
    streams(&direct, &["create", "--shards", "4"]).await;

    // Paced, so that calls stay small enough for the emulator to answer within the second.
    let report = wait_produced(&w, w.produce(&via_proxy, &["--rate", "2500"]), Duration::from_secs(120)).await;
    let injected = proxy.stats();
    eprintln!("{report}{injected:?}");
    assert!(
        injected.unanswered_calls > 0,
        "no call was left unanswered: {injected:?}"
    );
    drop(proxy);

    let stream = read_stream(&direct).await;
    eprintln!(
        "the stream holds {} user records for {} events",
        stream.user_records, w.events
    );
    assert!(
        stream.user_records > w.events,
        "the unanswered calls were written, so their retries wrote copies"
    );
    assert_eq!(stream.shards_of.len() as u64, w.events, "every event is in the stream");

    let consumer = w.consumer(&direct, "w");
    let warehouse = w.warehouse().await;
    wait_until_handled(&warehouse, stream.user_records, Duration::from_secs(120)).await;
    stop(consumer).await;
    let verified = w.verify(&direct).await;
    let t = totals(&warehouse).await;
    eprintln!(
        "{}\n{t:?}\n{} unanswered calls, {} duplicates dropped; {:.1} s",
        verified.trim_end(),
        injected.unanswered_calls,
        t.duplicates,
        started.elapsed().as_secs_f64()
    );
    assert_eq!((t.aggregated, t.dead_lettered()), (w.events as i64, 0));
    assert_eq!(
        t.duplicates,
        (stream.user_records - w.events) as i64,
        "every copy in the stream dropped, once"
    );
    streams(&direct, &["delete"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn a_producer_killed_during_an_outage_resends_its_spool_and_nothing_counts_twice() {
    // The shared emulator's variable, although this test stops an emulator of its own
    // (stopping the shared one would stall the other tests).
    let _ = endpoint();
    let started = Instant::now();
    let emulator = private_emulator();
    let url = kinesis_url(&unique_name("spool"), &emulator.address, 2_000);
    let w = Workload::new(24_000, 42, &["--invalid-share", "0"]);
    let spool = w.d().join("spool");
    let spool_arg = spool.display().to_string();
    // 12 s of sending: the outage starts while events flow.
    let flags = ["--rate", "2000", "--spool", spool_arg.as_str()];
    streams(&url, &["create", "--shards", "4"]).await;

    let first = w.produce(&url, &flags);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_outage = read_stream(&url).await.user_records;
    assert!(before_outage > 0, "nothing written before the outage");
    emulator.signal("STOP");
    let outage = Instant::now();
    // Every write fails from now on; after 5 s of that, what waits goes to the spool.
    let spool_bin = spool.join("spool.bin");
    wait_for(Duration::from_secs(30), "nothing was spooled", async || {
        std::fs::metadata(&spool_bin).is_ok_and(|m| m.len() > inlet_producer::spool::MAGIC.len() as u64)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut first = first;
    assert!(
        first.try_wait().unwrap().is_none(),
        "the producer must still be running at the kill"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    let spooled = spooled_user_records(&spool);
    eprintln!(
        "{before_outage} user records written before the outage; killed {:.1} s into it with {spooled} \
         events in the spool",
        outage.elapsed().as_secs_f64()
    );
    assert!(spooled > 0, "the kill must leave records in the spool");
    emulator.signal("CONT");

    // Run again on the same spool: it sends the spool first, then the whole workload.
    let report = wait_produced(&w, w.produce(&url, &flags), Duration::from_secs(120)).await;
    eprintln!("{report}");
    assert_eq!(spooled_user_records(&spool), 0, "the second run sent the spool");
    let stream = read_stream(&url).await;
    eprintln!(
        "the stream holds {} user records for {} events",
        stream.user_records, w.events
    );
    assert_eq!(stream.shards_of.len() as u64, w.events, "every event is in the stream");
    assert!(stream.user_records >= w.events + spooled);

    let consumer = w.consumer(&url, "w");
    let warehouse = w.warehouse().await;
    wait_until_handled(&warehouse, stream.user_records, Duration::from_secs(120)).await;
    stop(consumer).await;
    let verified = w.verify(&url).await;
    let t = totals(&warehouse).await;
    eprintln!(
        "{}\n{t:?}\n{:.1} s",
        verified.trim_end(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!((t.aggregated, t.dead_lettered()), (w.events as i64, 0));
    assert_eq!(
        t.duplicates,
        (stream.user_records - w.events) as i64,
        "every copy in the stream dropped, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn copies_and_a_split_during_the_run_verify_exactly() {
    let endpoint = endpoint();
    let started = Instant::now();
    let url = kinesis_url(&unique_name("copies-split"), &endpoint, 30_000);
    // Each copy right after its original (no delay): they travel in one aggregate, so a copy
    // in flight at the split lands where its original does. With delayed copies, an original
    // in an aggregate routed into the sibling child (a few hundred user records per split
    // are) would have its later copy in the other child, which the consumer cannot
    // recognise (documented): about one run in four would then fail.
    let w = Workload::new(
        40_000,
        43,
        &["--duplicate-share", "0.05", "--duplicate-max-delay", "0s"],
    );
    streams(&url, &["create", "--shards", "2"]).await;
    // 20 s of sending: the split and the kill land while events flow.
    let producer = w.produce(&url, &["--rate", "2000"]);
    let mut a = w.consumer(&url, "a");
    let b = w.consumer(&url, "b");
    let warehouse = w.warehouse().await;
    wait_for(
        Duration::from_secs(60),
        "the two workers never both held a lease while events flowed",
        async || {
            let leases = warehouse.list().await.unwrap();
            let holds = |id: &str| leases.iter().any(|l| l.owner.as_deref() == Some(id));
            holds("a") && holds("b") && totals(&warehouse).await.read() > 0
        },
    )
    .await;

    streams(&url, &["split", "--shard", "shardId-000000000000"]).await;
    // The children are read once the parent is finished.
    wait_for(Duration::from_secs(60), "no child of the split was read", async || {
        let leases = warehouse.list().await.unwrap();
        leases.iter().any(|l| !l.parents.is_empty() && l.checkpoint.is_some())
    })
    .await;
    a.kill().unwrap();
    a.wait().unwrap();
    let read_at_kill = totals(&warehouse).await.read();
    assert!(
        read_at_kill < w.events as i64,
        "the kill must land mid-run ({read_at_kill} read)"
    );
    let a2 = w.consumer(&url, "a-again");

    let report = wait_produced(&w, producer, Duration::from_secs(120)).await;
    eprintln!("{report}");
    let stream = read_stream(&url).await;
    eprintln!(
        "the stream holds {} user records for {} events ({} outside their shard's range, {} \
         events on shards of two lineages)",
        stream.user_records,
        w.events,
        stream.outside_range,
        stream.copies_across_lineages()
    );
    wait_until_handled(&warehouse, stream.user_records, Duration::from_secs(120)).await;
    stop(b).await;
    stop(a2).await;

    let out = run(inlet(&[&["verify"][..], &strs(&w.args(&url))].concat())).await;
    let verified = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && verified.contains("rollups equal the generator's totals exactly: yes"),
        "verify failed ({} events on shards of two lineages, which the consumer cannot \
         recognise as copies):\n{verified}\n{}",
        stream.copies_across_lineages(),
        String::from_utf8_lossy(&out.stderr)
    );
    let (generated, dropped) = verify_duplicates(&verified);
    let t = totals(&warehouse).await;
    eprintln!(
        "{}\n{t:?}\nkilled a worker at {read_at_kill} read; {:.1} s",
        verified.trim_end(),
        started.elapsed().as_secs_f64()
    );
    assert!(generated > 0, "the generator made copies: {verified}");
    assert_eq!(dropped, t.duplicates);
    assert!(
        dropped >= generated,
        "at least the generator's copies dropped: {verified}"
    );
    streams(&url, &["delete"]).await;
}
