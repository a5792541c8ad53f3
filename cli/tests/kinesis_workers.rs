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
mod common;

use common::{
    FAILOVER, Setup, handled, held_by, signal, stop, wait_for, wait_output, wait_produced, wait_until_handled,
};
use inlet_embedded::EmbeddedWarehouse;
use inlet_kinesis::testing::{endpoint, unique_name};
use inlet_seams::LeaseStore;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::{Duration, Instant};

fn kinesis_url(endpoint: &str) -> String {
    format!(
        "kinesis://{}?endpoint={endpoint}&call_timeout_ms=30000",
        unique_name("workers")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn three_workers_one_killed_one_stopped_gracefully() {
    let endpoint = endpoint();
    let s = Setup::new(kinesis_url(&endpoint), 60_000, "21");
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
    stop(w2);
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

    wait_produced(producer);
    wait_until_handled(&warehouse, s.events, Duration::from_secs(300)).await;
    stop(w3);
    s.verify();
    s.streams(&["delete"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn a_worker_paused_past_the_failover_cannot_commit() {
    let endpoint = endpoint();
    let s = Setup::new(kinesis_url(&endpoint), 40_000, "22");
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
    wait_produced(producer);
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
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
async fn a_split_and_a_merge_during_consumption_read_children_after_parents() {
    let endpoint = endpoint();
    let s = Setup::new(kinesis_url(&endpoint), 60_000, "23");
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

    wait_produced(producer);
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
    for w in workers {
        stop(w);
    }
    s.verify();
    s.streams(&["delete"]);
}
