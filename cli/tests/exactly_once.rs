//! Exactly once per event, on the real `inlet` binary with the embedded stream and
//! warehouse: every copy of an event the pipeline can write (a client posting a batch again,
//! a producer killed and run again, the generator's own copies with a worker killed, a replay
//! emitted twice into one stream) is read, counted once as an event and once per extra copy
//! as a duplicate, and the rollups stay exact.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use common::{Setup, handled, held_by, stop, wait_for, wait_output, wait_produced, wait_until_handled};
use inlet_embedded::{EmbeddedStream, EmbeddedWarehouse};
use inlet_seams::{LeaseStore, Warehouse};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The number on the line of `inlet report` (or `verify`) that starts with `label`.
fn report_number(stdout: &str, label: &str) -> i64 {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"));
    let n = line.split_whitespace().nth(1).unwrap().replace(',', "");
    n.parse()
        .unwrap_or_else(|_| panic!("{label:?} line is not a count: {line:?}"))
}

/// Every user record in an embedded stream (KPL aggregates taken apart), all shards.
async fn user_records(path: &Path) -> u64 {
    let stream = EmbeddedStream::open_or_create(path, 4).await.unwrap();
    inlet_testkit::user_records(&inlet_testkit::read_stream(&stream).await).len() as u64
}

/// Bytes of the stream's database and its write-ahead log so far.
fn stream_bytes(d: &Path) -> u64 {
    ["stream.db", "stream.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(d.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Removes terminal colour sequences (`ESC [ ... m`) from a log line.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Starts `inlet collector` on port 0 and returns it with the address it logged.
fn start_collector(s: &Setup, config: &Path) -> (Child, SocketAddr) {
    let d = s.d().display().to_string();
    let config = config.display().to_string();
    let mut child = s
        .inlet(&["collector", "--config", &config, "--data-dir", &d, "--stream", &s.url])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    // Reads the whole log (so the pipe never fills), handing over the listening address.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let line = strip_ansi(&line);
            if line.contains("collector listening")
                && let Some(addr) = line.split("addr=").nth(1).and_then(|a| a.split_whitespace().next())
            {
                let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
            }
            if std::env::var_os("INLET_TEST_LOG").is_some() {
                eprintln!("collector: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the collector never logged its address");
    (child, addr)
}

/// One HTTP/1.1 `POST /v1/events` with a JSON body; the status and the response body.
fn post_events(addr: SocketAddr, key: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        tcp,
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    (status, body)
}

/// The payload of a chunked HTTP body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_posted_three_times_counts_once() {
    let s = Setup::embedded(0, "0");
    let key = "exactly-once-test-key";
    let mut hash = s
        .inlet(&["collector", "hash-key"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    hash.stdin.take().unwrap().write_all(key.as_bytes()).unwrap();
    let out = wait_output(hash, Duration::from_secs(30));
    assert!(out.status.success());
    let sha256 = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(sha256.len(), 64, "a SHA-256 in hex: {sha256:?}");
    let config = s.d().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\n\n[[collector.keys]]\nid = \"tv\"\napp_id = \"tv-app\"\nsha256 = \"{sha256}\"\nkinds = [\"viewing.*\"]\n"
        ),
    )
    .unwrap();
    let (collector, addr) = start_collector(&s, &config);

    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    let body = format!(
        r#"{{"events": [{{"eventId": "019ab2a0-0000-7000-8000-0000000000d1", "eventTimeMs": "{now_ms}",
            "schemaVersion": 1, "viewing": {{"profileId": "p-dup", "playbackSessionId": "s-dup",
            "titleId": "t-dup", "playStart": {{"startupMs": "850"}}}}}}]}}"#
    );
    for attempt in 1..=3 {
        let (status, answer) = post_events(addr, key, &body);
        assert_eq!(status, 200, "post {attempt}: {answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["accepted"], 1, "post {attempt}: {answer}");
        assert!(
            answer
                .get("rejected")
                .is_none_or(|r| r.as_array().is_some_and(Vec::is_empty)),
            "post {attempt}: {answer}"
        );
    }
    stop(collector);
    assert_eq!(
        user_records(&s.d().join("stream.db")).await,
        3,
        "three copies in the stream"
    );

    let consumer = s.consumer("w");
    let warehouse = s.warehouse().await;
    wait_for(
        Duration::from_secs(60),
        "the three copies were never read",
        async || handled(&warehouse).await == 3,
    )
    .await;
    stop(consumer);

    let out = s
        .inlet(&["report", "--data-dir", &s.d().display().to_string()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report_number(&report, "aggregated"), 1, "{report}");
    assert_eq!(report_number(&report, "dead-lettered"), 0, "{report}");
    assert_eq!(report_number(&report, "duplicates"), 2, "{report}");
    assert!(
        report.contains("read = aggregated + dead-lettered + duplicates: 3 = 1 + 0 + 2"),
        "{report}"
    );

    let totals = warehouse.totals().await.unwrap();
    assert_eq!(
        (totals.aggregated, totals.dead_lettered(), totals.duplicates),
        (1, 0, 2)
    );
    let viewing = warehouse.viewing_rollups(i64::MIN, i64::MAX).await.unwrap();
    assert!(viewing.iter().all(|r| r.title_id == "t-dup"), "{viewing:?}");
    assert_eq!(viewing.iter().map(|r| r.agg.plays).sum::<i64>(), 1, "{viewing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_killed_and_run_again_counts_every_event_once() {
    // No invalid events: a copy of one whose id is broken cannot be recognised (each copy is
    // a dead letter), and the count of duplicates is to be exact.
    let s = Setup::embedded(300_000, "31").with_flags(&["--invalid-share", "0"]);
    // Paced so that the kill lands mid-run however fast the machine: 5 s for the whole run.
    let mut first = s.produce_at(Some(60_000));
    let started = Instant::now();
    wait_for(Duration::from_secs(60), "the producer wrote nothing", async || {
        started.elapsed() > Duration::from_secs(2) && stream_bytes(s.d()) > 1 << 20
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    let first_count = user_records(&s.d().join("stream.db")).await;
    eprintln!("the killed producer wrote {first_count} events");
    assert!(
        first_count > 0 && first_count < s.events,
        "the kill must land mid-run ({first_count} written)"
    );

    let second = s.produce();
    let workers = [s.consumer("w1"), s.consumer("w2")];
    let warehouse = s.warehouse().await;
    wait_produced(second);
    assert_eq!(user_records(&s.d().join("stream.db")).await, first_count + s.events);
    wait_until_handled(&warehouse, first_count + s.events, Duration::from_secs(120)).await;
    for w in workers {
        stop(w);
    }
    s.verify();
    let totals = warehouse.totals().await.unwrap();
    assert_eq!(totals.aggregated, s.events as i64);
    assert_eq!(totals.dead_lettered(), 0);
    assert_eq!(
        totals.duplicates, first_count as i64,
        "every event the first run wrote is a duplicate, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_from_the_generator_and_a_killed_worker_still_verify_exactly() {
    // Copies at most 30 s of event time after their originals, so that nearly all of them
    // fall inside the run's two minutes (the rest are never generated), and some in what the
    // killed worker had read but not committed.
    let s = Setup::embedded(120_000, "32").with_flags(&["--duplicate-share", "0.05", "--duplicate-max-delay", "30s"]);
    // About 6 s of producing, so the kill lands while events flow.
    let producer = s.produce_at(Some(20_000));
    while !s.d().join("stream.db").exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut w1 = s.consumer("w1");
    let w2 = s.consumer("w2");
    let warehouse = s.warehouse().await;
    wait_for(
        Duration::from_secs(60),
        "w1 never held a lease while events flowed",
        async || {
            let leases = warehouse.list().await.unwrap();
            !held_by(&leases, "w1").is_empty() && handled(&warehouse).await > 10_000
        },
    )
    .await;
    w1.kill().unwrap();
    w1.wait().unwrap();
    let at_kill = handled(&warehouse).await;
    eprintln!("w1 killed with {at_kill} of {} events handled", s.events);
    assert!(at_kill < s.events as i64, "the kill must land mid-run");
    let w3 = s.consumer("w1-again");
    wait_produced(producer);
    // The generator's copies count towards --events: the stream holds exactly that many.
    wait_until_handled(&warehouse, s.events, Duration::from_secs(120)).await;
    stop(w2);
    stop(w3);

    let w = s.workload();
    let args: Vec<&str> = std::iter::once("verify").chain(w.iter().map(String::as_str)).collect();
    let out = s.inlet(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("rollups equal the generator's totals exactly: yes"),
        "verify failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "duplicates: N from the generator's copies, M dropped": here, with no retries, N = M.
    let line = stdout
        .lines()
        .find(|l| l.contains("from the generator's copies"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let counts: Vec<i64> = line
        .split_whitespace()
        .filter_map(|t| t.trim_end_matches(',').replace(',', "").parse().ok())
        .collect();
    eprintln!("{}", line.trim());
    let totals = warehouse.totals().await.unwrap();
    assert!(totals.duplicates > 0, "{stdout}");
    assert_eq!(
        counts,
        [totals.duplicates, totals.duplicates],
        "every copy of the generator dropped, nothing else: {line}"
    );
}

async fn rollups(w: &EmbeddedWarehouse) -> (Vec<inlet_rollup::ViewingRow>, Vec<inlet_rollup::GameRow>) {
    (
        w.viewing_rollups(i64::MIN, i64::MAX).await.unwrap(),
        w.game_rollups(i64::MIN, i64::MAX).await.unwrap(),
    )
}

/// The `N` of a line `emitted N events in M stream records` of `inlet replay emit` (`N` with
/// thousands separators).
fn emitted(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("emitted "))
        .unwrap_or_else(|| panic!("no emitted line in:\n{stderr}"));
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_emit_twice_into_one_stream_counts_once() {
    let a = Setup::embedded(30_000, "33").with_flags(&["--invalid-share", "0"]);
    wait_produced(a.produce());
    let archive = a.d().join("archive").display().to_string();
    let consumer = a.consumer_with("a", &["--archive", &archive]);
    let wa = a.warehouse().await;
    wait_until_handled(&wa, a.events, Duration::from_secs(120)).await;
    stop(consumer);
    a.verify();
    let ta = wa.totals().await.unwrap();
    assert_eq!(
        (ta.aggregated, ta.dead_lettered(), ta.duplicates),
        (a.events as i64, 0, 0)
    );

    let b = Setup::embedded(0, "33");
    let da = a.d().display().to_string();
    let emit = [
        "replay",
        "emit",
        "--data-dir",
        &da,
        "--stream",
        &a.url,
        "--source",
        "archive",
        "--archive",
        &archive,
        "--to-stream",
        &b.url,
        "--speed",
        "0",
    ];
    let mut runs = Vec::new();
    for run in 1..=2 {
        let out = wait_output(
            a.inlet(&emit)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            Duration::from_secs(120),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "emit {run}:\n{stderr}");
        runs.push(emitted(&stderr));
    }
    assert_eq!(runs, [a.events, a.events], "each emit sends every archived event");
    assert_eq!(user_records(&b.d().join("stream.db")).await, 2 * a.events);

    let consumer = b.consumer("b");
    let wb = b.warehouse().await;
    wait_until_handled(&wb, 2 * a.events, Duration::from_secs(120)).await;
    stop(consumer);
    let tb = wb.totals().await.unwrap();
    assert_eq!(
        (tb.aggregated, tb.dead_lettered(), tb.duplicates),
        (ta.aggregated, 0, runs[1] as i64),
        "the second emit is all duplicates"
    );
    let (va, vb) = (rollups(&wa).await, rollups(&wb).await);
    assert!(!va.0.is_empty() && !va.1.is_empty());
    assert_eq!(va.0, vb.0, "viewing rollups of the replayed stream");
    assert_eq!(va.1, vb.1, "game rollups of the replayed stream");
}
