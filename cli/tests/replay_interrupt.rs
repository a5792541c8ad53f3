//! `inlet replay rebuild` on the real binary, interrupted by SIGINT and then by SIGKILL, and
//! run again: the rollups end identical to the live pipeline's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_embedded::EmbeddedWarehouse;
use inlet_seams::{LeaseStore, ShardCommit, Warehouse};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EVENTS: &str = "120000";
const SHARDS: &str = "8";
const START_MINUTE: i64 = 1_767_225_600_000 / 60_000;

fn inlet(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inlet"));
    c.args(args).arg("--data-dir").arg(dir).env("RUST_LOG", "warn");
    c
}

fn ok(c: &mut Command) {
    let out = c.output().expect("run inlet");
    assert!(
        out.status.success(),
        "{:?}: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn rows(w: &EmbeddedWarehouse) -> (Vec<inlet_rollup::ViewingRow>, Vec<inlet_rollup::GameRow>) {
    (
        w.viewing_rollups(i64::MIN, i64::MAX).await.unwrap(),
        w.game_rollups(i64::MIN, i64::MAX).await.unwrap(),
    )
}

fn done_shards(progress: &Path) -> usize {
    std::fs::read(progress).ok().and_then(|b| count_done(&b)).unwrap_or(0)
}

/// Counts the entries of `"done": [...]` without a JSON dependency.
fn count_done(bytes: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(bytes).ok()?;
    let list = s.split("\"done\": [").nth(1)?.split(']').next()?;
    Some(list.matches("shardId-").count())
}

fn signal(child: &Child, sig: &str) {
    assert!(
        Command::new("kill")
            .arg(sig)
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
}

/// Starts a rebuild and sends it `sig` once one more shard is done; its exit code.
fn interrupted_rebuild(dir: &Path, rebuild: &[&str], sig: &str) -> Option<i32> {
    let progress = dir.join("replay-rebuild.progress.json");
    let before = done_shards(&progress);
    let mut child = inlet(dir, rebuild)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while done_shards(&progress) <= before {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the rebuild ended before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "no shard rebuilt in time");
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(&child, sig);
    let status = child.wait().unwrap();
    let done = done_shards(&progress);
    assert!(done < 8, "interrupted mid-run ({done} of 8 shards done)");
    status.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_interrupted_by_sigint_then_sigkill_ends_identical() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let workload = ["--events", EVENTS, "--seed", "4", "--mean-gap-us", "10000"];
    ok(inlet(d, &[&["produce", "--shards", SHARDS][..], &workload[..]].concat()).stdout(Stdio::null()));
    let archive = d.join("archive");
    let archive = archive.to_str().unwrap();
    let mut consumer = inlet(
        d,
        &["consume", "--worker-id", "w", "--shards", SHARDS, "--archive", archive],
    )
    .spawn()
    .unwrap();
    let w = loop {
        if let Ok(w) = EmbeddedWarehouse::open(&d.join("warehouse.db")).await {
            break w;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    inlet_testkit::wait_until_read(&w, EVENTS.parse().unwrap(), Duration::from_secs(180)).await;
    signal(&consumer, "-TERM");
    assert!(consumer.wait().unwrap().success());
    ok(inlet(d, &[&["verify"][..], &workload[..]].concat()).stdout(Stdio::null()));
    let live = rows(&w).await;

    // Break the rows of the range in every shard, as a buggy aggregation would have.
    let (from, to) = (START_MINUTE + 3, START_MINUTE + 12);
    for lease in w.list().await.unwrap() {
        let token = w
            .take(&lease.shard, lease.counter, "tamper", i64::MAX)
            .await
            .unwrap()
            .unwrap();
        let (mut viewing, games) = w.shard_partials(&lease.shard, from).await.unwrap();
        viewing.retain(|r| r.minute < to);
        viewing.iter_mut().for_each(|r| r.agg.plays += 3);
        let commit = ShardCommit {
            token: token.clone(),
            checkpoint: None,
            watermark_ms: None,
            open_from_minute: None,
            viewing,
            games: games.into_iter().filter(|r| r.minute < to).collect(),
            dead_letters: Vec::new(),
            seen: Default::default(),
            shard_end: false,
        };
        w.commit(&commit).await.unwrap();
        w.release(&token).await.unwrap();
    }
    assert_ne!(rows(&w).await, live);

    let (from_s, to_s) = ((from * 60_000).to_string(), (to * 60_000).to_string());
    let rebuild = [
        "replay", "rebuild", "--source", "archive", "--from", &from_s, "--to", &to_s,
    ];
    assert_eq!(
        interrupted_rebuild(d, &rebuild, "-INT"),
        Some(130),
        "SIGINT: saved and stopped"
    );
    assert_eq!(interrupted_rebuild(d, &rebuild, "-KILL"), None, "SIGKILL: killed");
    ok(&mut inlet(d, &rebuild));
    assert!(
        !d.join("replay-rebuild.progress.json").exists(),
        "a completed rebuild leaves no progress"
    );
    assert_eq!(rows(&w).await, live, "rollups identical to the live pipeline's");
    // And once more from the stream, whole: still identical.
    ok(&mut inlet(d, &["replay", "rebuild", "--from", &from_s, "--to", &to_s]));
    assert_eq!(rows(&w).await, live);
}
