//! Consumer worker processes on a stream of the Kinesis emulator, fed by `inlet produce`,
//! sharing an embedded warehouse (lease store and rollups in one database):
//!
//! - three workers on 16 shards; one is SIGKILLed and one stopped gracefully mid-run: the
//!   rollups equal the generator's totals exactly, and the graceful hand-off is faster than
//!   the failover time;
//! - a worker paused (SIGSTOP) past the failover time and resumed cannot commit (a zombie);
//! - a split and a merge while producing and consuming: no child is read before its parents
//!   are finished, totals exact.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_embedded::EmbeddedWarehouse;
use inlet_kinesis::testing::{endpoint, unique_name};
use inlet_seams::{Lease, LeaseStore, Warehouse};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const FAILOVER: Duration = Duration::from_secs(4);

struct Setup {
    dir: tempfile::TempDir,
    url: String,
    events: u64,
    seed: &'static str,
}

impl Setup {
    fn new(endpoint: &str, events: u64, seed: &'static str) -> Self {
        let url = format!(
            "kinesis://{}?endpoint={endpoint}&call_timeout_ms=30000",
            unique_name("workers")
        );
        Self {
            dir: tempfile::tempdir().unwrap(),
            url,
            events,
            seed,
        }
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    fn inlet(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_inlet"));
        c.args(args).env("RUST_LOG", "warn");
        c
    }

    fn workload(&self) -> Vec<String> {
        vec![
            "--events".into(),
            self.events.to_string(),
            "--seed".into(),
            self.seed.into(),
            "--late-share".into(),
            "0".into(),
            "--stream".into(),
            self.url.clone(),
            "--data-dir".into(),
            self.d().display().to_string(),
        ]
    }

    fn streams(&self, args: &[&str]) {
        let out = self
            .inlet(&[&["streams", "--stream", &self.url][..], args].concat())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "inlet streams {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn produce(&self) -> Child {
        let w = self.workload();
        let args: Vec<&str> = std::iter::once("produce").chain(w.iter().map(String::as_str)).collect();
        self.inlet(&args).stdout(Stdio::piped()).spawn().unwrap()
    }

    fn consumer(&self, id: &str) -> Child {
        self.consumer_logging(id, "warn")
    }

    /// A worker whose log (at `level`) is kept on its stderr pipe.
    fn consumer_logging(&self, id: &str, level: &str) -> Child {
        let failover = format!("{}s", FAILOVER.as_secs());
        let d = self.d().display().to_string();
        self.inlet(&[
            "consume",
            "--worker-id",
            id,
            "--failover",
            &failover,
            "--stream",
            &self.url,
            "--data-dir",
            &d,
        ])
        .env("RUST_LOG", level)
        .stdout(Stdio::null())
        .stderr(if level == "warn" {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .spawn()
        .unwrap()
    }

    async fn warehouse(&self) -> EmbeddedWarehouse {
        let path = self.d().join("warehouse.db");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !path.exists() {
            assert!(Instant::now() < deadline, "no warehouse");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        EmbeddedWarehouse::open(&path).await.unwrap()
    }

    fn verify(&self) {
        let w = self.workload();
        let args: Vec<&str> = std::iter::once("verify").chain(w.iter().map(String::as_str)).collect();
        let out = self.inlet(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("rollups equal the generator's totals exactly: yes"),
            "verify failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `done` every 100 ms until it holds; fails with `what` after `limit`.
async fn wait_for(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn handled(w: &EmbeddedWarehouse) -> i64 {
    let t = w.totals().await.unwrap();
    t.aggregated + t.dead_lettered()
}

fn held_by<'a>(leases: &'a [Lease], owner: &str) -> Vec<&'a Lease> {
    leases.iter().filter(|l| l.owner.as_deref() == Some(owner)).collect()
}

async fn wait_until_handled(w: &EmbeddedWarehouse, events: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while handled(w).await < events as i64 {
        assert!(Instant::now() < deadline, "stalled at {} of {events}", handled(w).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A commit or two more: nothing may be counted twice after completion either.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(handled(w).await, events as i64, "nothing counted twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_one_killed_one_stopped_gracefully() {
    let Some(endpoint) = endpoint() else { return };
    let s = Setup::new(&endpoint, 60_000, "21");
    s.streams(&["create", "--shards", "16"]);
    let producer = s.produce();
    let workers: Vec<Child> = ["w1", "w2", "w3"].iter().map(|id| s.consumer(id)).collect();
    let warehouse = s.warehouse().await;

    // Mid-run, with all three holding leases: SIGKILL w1.
    wait_for(
        Duration::from_secs(120),
        "the three workers never all held leases while events flowed",
        async || {
            let leases = warehouse.list().await.unwrap();
            let all_hold = ["w1", "w2", "w3"].iter().all(|w| !held_by(&leases, w).is_empty());
            all_hold && handled(&warehouse).await > 0
        },
    )
    .await;
    let mut workers = workers.into_iter();
    let (mut w1, w2, w3) = (
        workers.next().unwrap(),
        workers.next().unwrap(),
        workers.next().unwrap(),
    );
    w1.kill().unwrap();
    w1.wait().unwrap();
    assert!(
        handled(&warehouse).await < s.events as i64,
        "the kill must land mid-run"
    );
    // w1's leases expire after the failover time and the others take them.
    wait_for(FAILOVER * 4, "w1's leases were not taken over", async || {
        held_by(&warehouse.list().await.unwrap(), "w1").is_empty()
    })
    .await;

    // Then stop w2 gracefully: it commits and releases; w3 takes its shards at once.
    let w2_shards: BTreeSet<String> = held_by(&warehouse.list().await.unwrap(), "w2")
        .iter()
        .map(|l| l.shard.to_string())
        .collect();
    assert!(!w2_shards.is_empty());
    signal(&w2, "TERM");
    let out = wait_output(w2, Duration::from_secs(60));
    assert!(out.status.success(), "w2 exited with {:?}", out.status);
    let released = Instant::now();
    loop {
        let leases = warehouse.list().await.unwrap();
        let by_w3: BTreeSet<String> = held_by(&leases, "w3").iter().map(|l| l.shard.to_string()).collect();
        // A finished shard may stay unowned: it has nothing left to read.
        let open_w2 = leases
            .iter()
            .filter(|l| w2_shards.contains(l.shard.as_str()) && !l.finished);
        if open_w2.clone().all(|l| by_w3.contains(l.shard.as_str())) {
            break;
        }
        assert!(released.elapsed() < FAILOVER * 3, "w3 did not take w2's shards");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hand_off = released.elapsed();
    eprintln!(
        "graceful hand-off: w2's {} shards taken by w3 {hand_off:?} after w2 exited (failover {FAILOVER:?})",
        w2_shards.len()
    );
    assert!(hand_off < FAILOVER, "a graceful hand-off must beat the failover time");

    let produced = wait_output(producer, Duration::from_secs(300));
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stdout)
    );
    wait_until_handled(&warehouse, s.events, Duration::from_secs(300)).await;
    signal(&w3, "TERM");
    assert!(wait_output(w3, Duration::from_secs(60)).status.success());
    s.verify();
    s.streams(&["delete"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_the_failover_cannot_commit() {
    let Some(endpoint) = endpoint() else { return };
    let s = Setup::new(&endpoint, 40_000, "22");
    s.streams(&["create", "--shards", "8"]);
    let producer = s.produce();
    let zombie = s.consumer_logging("zombie", "info");
    let warehouse = s.warehouse().await;
    wait_for(
        Duration::from_secs(120),
        "the first worker never took the shards",
        async || held_by(&warehouse.list().await.unwrap(), "zombie").len() == 8 && handled(&warehouse).await > 0,
    )
    .await;
    signal(&zombie, "STOP");
    let live = s.consumer("live");
    // The live worker takes every lease once they expire.
    wait_for(
        FAILOVER * 6,
        "the live worker did not take the expired leases",
        async || held_by(&warehouse.list().await.unwrap(), "live").len() == 8,
    )
    .await;
    let counters: BTreeMap<String, u64> = warehouse
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.shard.to_string(), l.counter))
        .collect();
    // Wake the zombie: whatever it had read and not committed must be refused.
    signal(&zombie, "CONT");
    let produced = wait_output(producer, Duration::from_secs(300));
    assert!(produced.status.success());
    wait_until_handled(&warehouse, s.events, Duration::from_secs(300)).await;
    // Leases only move forward (the zombie may take its fair share back later, under new
    // counters: that is a take, not a zombie commit).
    for l in &warehouse.list().await.unwrap() {
        assert!(l.counter >= counters[l.shard.as_str()]);
    }
    for w in [&zombie, &live] {
        signal(w, "TERM");
    }
    let zombie_out = wait_output(zombie, Duration::from_secs(60));
    assert!(zombie_out.status.success());
    assert!(wait_output(live, Duration::from_secs(60)).status.success());
    let log = String::from_utf8_lossy(&zombie_out.stderr);
    assert!(
        log.contains("lease lost"),
        "the zombie must find its leases gone:\n{log}"
    );
    s.verify();
    s.streams(&["delete"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_and_a_merge_during_consumption_read_children_after_parents() {
    let Some(endpoint) = endpoint() else { return };
    let s = Setup::new(&endpoint, 60_000, "23");
    s.streams(&["create", "--shards", "4"]);
    let producer = s.produce();
    let workers = [s.consumer("a"), s.consumer("b")];
    let warehouse = s.warehouse().await;
    wait_for(Duration::from_secs(120), "nothing consumed", async || {
        handled(&warehouse).await > 0
    })
    .await;

    // Watch the lease table: no child may be owned or checkpointed before its parents finish.
    let watcher = {
        let path = s.d().join("warehouse.db");
        tokio::spawn(async move {
            let w = EmbeddedWarehouse::open(&path).await.unwrap();
            let mut checks = 0u64;
            loop {
                let leases = w.list().await.unwrap();
                let finished: BTreeMap<String, bool> =
                    leases.iter().map(|l| (l.shard.to_string(), l.finished)).collect();
                for l in &leases {
                    if l.checkpoint.is_some() {
                        for p in &l.parents {
                            // A parent lease cleaned up after its children started counts as done.
                            let done = finished.get(p.as_str()).copied().unwrap_or(true);
                            assert!(
                                done,
                                "{} has a checkpoint while its parent {p} is not finished",
                                l.shard
                            );
                        }
                    }
                }
                checks += 1;
                if checks > 100_000 {
                    return checks;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    s.streams(&["split", "--shard", "shardId-000000000000"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.streams(&[
        "merge",
        "--shard",
        "shardId-000000000002",
        "--adjacent",
        "shardId-000000000003",
    ]);

    let produced = wait_output(producer, Duration::from_secs(300));
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stdout)
    );
    wait_until_handled(&warehouse, s.events, Duration::from_secs(300)).await;
    assert!(!watcher.is_finished(), "the lease watcher stopped: {:?}", watcher.await);
    watcher.abort();
    let leases = warehouse.list().await.unwrap();
    for parent in ["shardId-000000000000", "shardId-000000000002", "shardId-000000000003"] {
        if let Some(l) = leases.iter().find(|l| l.shard.as_str() == parent) {
            assert!(l.finished, "{parent} was read to its end");
        }
    }
    assert!(
        leases
            .iter()
            .filter(|l| !l.parents.is_empty() && l.checkpoint.is_some())
            .count()
            >= 3,
        "the three children were read: {leases:?}"
    );
    for w in &workers {
        signal(w, "TERM");
    }
    for w in workers {
        assert!(wait_output(w, Duration::from_secs(60)).status.success());
    }
    s.verify();
    s.streams(&["delete"]);
}
