//! Real processes on one embedded stream and warehouse: one producing, two consuming. A
//! consumer is killed with SIGKILL mid-run and restarted; the rollups must still equal the
//! generator's totals exactly (nothing lost, nothing counted twice), and again after
//! `inlet warehouse compact`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_embedded::EmbeddedWarehouse;
use inlet_seams::{LeaseStore, Warehouse};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const EVENTS: u64 = 400_000;
const SEED: &str = "11";
const SHARDS: &str = "6";

fn inlet(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inlet"));
    c.args(args).arg("--data-dir").arg(dir).env("RUST_LOG", "warn");
    c
}

fn consumer(dir: &Path, id: &str) -> Child {
    inlet(
        dir,
        &["consume", "--worker-id", id, "--failover", "2s", "--shards", SHARDS],
    )
    .stdout(Stdio::null())
    .spawn()
    .expect("start consumer")
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(ok.success());
}

fn wait_output(child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn handled(w: &EmbeddedWarehouse) -> i64 {
    let t = w.totals().await.expect("totals");
    t.read()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_a_consumer_mid_run_and_restart_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let events = EVENTS.to_string();
    let workload = ["--events", events.as_str(), "--seed", SEED];

    // The stream must exist before the consumers look for shards: create it by producing.
    let producer = inlet(d, &[&["produce", "--shards", SHARDS][..], &workload[..]].concat())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start producer");
    // Consumers start while the producer is still writing.
    let warehouse_path = d.join("warehouse.db");
    while !d.join("stream.db").exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let w1 = consumer(d, "w1");
    let w2 = consumer(d, "w2");
    while !warehouse_path.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let warehouse = EmbeddedWarehouse::open(&warehouse_path).await.expect("open warehouse");

    // Kill w1 while it holds leases and has work in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let leases = warehouse.list().await.expect("leases");
        let w1_holds = leases.iter().filter(|l| l.owner.as_deref() == Some("w1")).count();
        if w1_holds > 0 && handled(&warehouse).await > (EVENTS / 5) as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "w1 never held a lease while events were flowing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut w1 = w1;
    w1.kill().expect("SIGKILL w1");
    w1.wait().expect("reap w1");
    let at_kill = handled(&warehouse).await;
    assert!(
        at_kill < EVENTS as i64,
        "the kill must land mid-run (handled {at_kill})"
    );
    let w1b = consumer(d, "w1-restarted");

    let produced = wait_output(producer, Duration::from_secs(120));
    assert!(
        produced.status.success(),
        "producer failed: {}",
        String::from_utf8_lossy(&produced.stdout)
    );

    // Everything gets handled, including w1's shards after their leases expire.
    let deadline = Instant::now() + Duration::from_secs(120);
    while handled(&warehouse).await < EVENTS as i64 {
        assert!(
            Instant::now() < deadline,
            "stalled at {} of {EVENTS}",
            handled(&warehouse).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let a commit or two more happen: nothing may be counted twice after completion either.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for w in [&w2, &w1b] {
        sigterm(w);
    }
    for w in [w2, w1b] {
        let out = wait_output(w, Duration::from_secs(60));
        assert!(out.status.success(), "consumer exited with {:?}", out.status);
    }
    let leases = warehouse.list().await.expect("leases");
    assert!(
        leases
            .iter()
            .all(|l| l.owner.is_none() || l.owner.as_deref() == Some("w1")),
        "clean shutdown releases leases"
    );

    let verify = inlet(d, &[&["verify"][..], &workload[..]].concat())
        .output()
        .expect("run verify");
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "verify failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        stdout.contains("rollups equal the generator's totals exactly: yes"),
        "{stdout}"
    );
    assert_eq!(handled(&warehouse).await, EVENTS as i64, "nothing counted twice");

    // Folding every final minute by hand moves no total: verify is exact again.
    let compact = Command::new(env!("CARGO_BIN_EXE_inlet"))
        .args(["warehouse", "--data-dir"])
        .arg(d)
        .args(["compact", "--keep", "0s"])
        .output()
        .expect("run warehouse compact");
    let said = String::from_utf8_lossy(&compact.stdout);
    assert!(compact.status.success() && said.starts_with("folded "), "{said}");
    assert!(!said.starts_with("folded 0 "), "the closed minutes were folded: {said}");
    let verify = inlet(d, &[&["verify"][..], &workload[..]].concat())
        .output()
        .expect("run verify");
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        stdout.contains("rollups equal the generator's totals exactly: yes"),
        "after compaction: {stdout}"
    );
}
