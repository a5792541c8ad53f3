//! A shard that cannot be read, on the real binary: a page of the embedded stream's file is
//! corrupted under a finished run. The worker reads every record before the damage, commits,
//! and then reports itself not ready naming the shard; `/api/health` on the dashboard shows
//! the shard failing at its checkpoint. `inlet shard skip` (while the worker runs) moves the
//! shard past the unreadable records with one dead letter, and the worker finishes the shard.
//! Counted against an intact copy of the stream: every event is read once, except those in
//! the skipped records, which the dead letter stands for.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use common::{Setup, signal, wait_output, wait_produced};
use inlet_embedded::EmbeddedStream;
use inlet_seams::{DeadLetterKind, LeaseStore, Warehouse};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// Corrupts the header of one leaf page of the records table, an eighth of the way into
/// it (inside the first shard); returns the `(shard index, seq)` keys that no longer read.
fn corrupt_a_page(db: &Path) -> BTreeSet<(i64, i64)> {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    let keys: Vec<(i64, i64)> = c
        .prepare("SELECT shard_idx, seq FROM records ORDER BY shard_idx, seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let leaves: Vec<i64> = c
        .prepare("SELECT pageno FROM dbstat WHERE name = 'records' AND pagetype = 'leaf' ORDER BY path")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(leaves.len() >= 8, "a stream of many pages: {} leaves", leaves.len());
    let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    drop(c);
    let page = leaves[leaves.len() / 8];
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(db).unwrap();
    f.seek(SeekFrom::Start(((page - 1) * page_size) as u64)).unwrap();
    // Not a b-tree page type: SQLite calls the page malformed when it reaches it.
    f.write_all(&[0xFF; 8]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let c = rusqlite::Connection::open(db).unwrap();
    keys.into_iter()
        .filter(|(shard, seq)| {
            c.query_row(
                "SELECT length(data) FROM records WHERE shard_idx = ?1 AND seq = ?2",
                [shard, seq],
                |r| r.get::<_, i64>(0),
            )
            .is_err()
        })
        .collect()
}

/// One HTTP GET; the status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (
        head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}

/// Starts `inlet <args>` with stderr in `log`, and waits for `marker` followed by an address.
fn start_announcing(s: &Setup, args: &[&str], log: &str, marker: &str) -> (Child, SocketAddr) {
    let log = s.d().join(log);
    let mut child = s
        .inlet(args)
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(log.with_extension("out")).unwrap_or_default();
        if let Some(addr) = text.split(marker).nth(1).and_then(|rest| rest.split('/').next()) {
            return (child, addr.parse().unwrap());
        }
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none() && started.elapsed() < Duration::from_secs(60),
            "{args:?} never announced {marker:?} ({exited:?}):\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `check` every 200 ms until it is `Some` (`what` after 90 s is a failure).
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "never: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_range_is_reported_then_skipped_with_a_dead_letter_and_nothing_else_lost() {
    let s = Setup::embedded(40_000, "19");
    let d = s.d().display().to_string();
    wait_produced(s.produce());
    let db = s.d().join("stream.db");
    let truth_path = s.d().join("truth.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    std::fs::copy(&db, &truth_path).unwrap();
    let unreadable = corrupt_a_page(&db);
    assert!(!unreadable.is_empty(), "the corrupted page held records");
    let shard_idx = unreadable.first().unwrap().0;
    assert!(unreadable.iter().all(|(s, _)| *s == shard_idx), "{unreadable:?}");

    // User records per stream record, from the intact copy.
    let truth = EmbeddedStream::open_or_create(&truth_path, 1).await.unwrap();
    let records = inlet_testkit::stream::read_stream(&truth).await;
    let mut per_record: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for (shard, record, _, _) in inlet_testkit::stream::user_records(&records) {
        *per_record
            .entry((shard.id.0.clone(), record.sequence.to_u64().unwrap()))
            .or_default() += 1;
    }
    let all: u64 = per_record.values().sum();
    let shard_id = {
        let shards: BTreeSet<String> = per_record.keys().map(|(s, _)| s.clone()).collect();
        shards.into_iter().nth(shard_idx as usize).unwrap()
    };

    let (worker, ops) = start_announcing(
        &s,
        &[
            "consume",
            "--data-dir",
            &d,
            "--stream",
            &s.url,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        "worker.log",
        "metrics and health on http://",
    );
    let (dashboard, dash) = start_announcing(
        &s,
        &["dashboard", "--data-dir", &d, "--listen", "127.0.0.1:0"],
        "dashboard.log",
        "dashboard: http://",
    );
    // The worker says which shard cannot be read, and so does the dashboard.
    let not_ready = wait_for("the worker reports the shard", || {
        let (status, body) = get(ops, "/readyz");
        (status == 503 && body.contains("cannot be read")).then_some(body)
    });
    assert!(
        not_ready.contains(&shard_id) && not_ready.contains("malformed"),
        "{not_ready}"
    );
    let health = wait_for("/api/health shows the failing shard", || {
        let (status, body) = get(dash, "/api/health");
        let h: serde_json::Value = serde_json::from_str(&body).unwrap();
        (status == 200 && h["failing_shards"] == 1).then_some(h)
    });
    let failing = health["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["shard"] == shard_id.as_str())
        .unwrap();
    assert!(failing["failing"]["failures"].as_u64().unwrap() >= 1, "{failing}");
    assert!(
        failing["failing"]["error"].as_str().unwrap().contains("malformed"),
        "{failing}"
    );
    // The worker read up to the damage: its checkpoint is the record just before it.
    let first_bad = unreadable.first().unwrap().1 as u64;
    let checkpoint = failing["checkpoint"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(checkpoint, (first_bad - 1).to_string(), "{failing}");

    // A shard that reads fine is refused; the failing one is skipped while the worker runs.
    let other = per_record
        .keys()
        .map(|(s, _)| s)
        .find(|s| **s != shard_id)
        .unwrap()
        .clone();
    let refused = s
        .inlet(&[
            "shard",
            "skip",
            &other,
            "--reason",
            "x",
            "--data-dir",
            &d,
            "--stream",
            &s.url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && text.contains("reads fine"), "{text}");
    let skipped = s
        .inlet(&[
            "shard",
            "skip",
            &shard_id,
            "--reason",
            "page corrupted by the test",
            "--data-dir",
            &d,
            "--stream",
            &s.url,
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&skipped.stdout).into_owned() + &String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{said}");
    // The range is exactly the damaged records: the worker read up to them, the probe stops
    // at the first record after them that reads.
    let through: u64 = said
        .split("through ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    let last_bad = unreadable.last().unwrap().1 as u64;
    assert_eq!(through, last_bad, "{unreadable:?}: {said}");

    // The worker resumes after the range and reads everything else.
    let warehouse = s.warehouse().await;
    let lost: u64 = (first_bad..=through)
        .map(|seq| per_record[&(shard_id.clone(), seq)])
        .sum();
    let expected_read = (all - lost + 1) as i64; // the dead letter counts once, as a corrupt aggregate
    let started = Instant::now();
    loop {
        let totals = warehouse.totals().await.unwrap();
        if totals.read() >= expected_read {
            assert_eq!(totals.read(), expected_read, "nothing read twice");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "read {} of {expected_read}",
            totals.read()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let letters = warehouse.dead_letters(100_000).await.unwrap();
    let unread: Vec<_> = letters
        .iter()
        .filter(|l| l.field.as_deref() == Some("unreadable"))
        .collect();
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0].kind, DeadLetterKind::CorruptRecord);
    assert!(
        unread[0].reason.contains("page corrupted by the test") && unread[0].reason.contains("malformed"),
        "{}",
        unread[0].reason
    );
    wait_for("the worker is ready again", || {
        (get(ops, "/readyz").0 == 200).then_some(())
    });
    assert!(
        warehouse.failures().await.unwrap().is_empty(),
        "the shard's commit cleared its failures"
    );
    signal(&worker, "TERM");
    signal(&dashboard, "TERM");
    let out = wait_output(worker, Duration::from_secs(60));
    assert!(out.status.success());
    let _ = wait_output(dashboard, Duration::from_secs(60));
}
