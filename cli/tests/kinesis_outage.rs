//! `inlet produce` into a Kinesis emulator of this test's own, which is stopped (SIGSTOP)
//! for 30 s mid-run and resumed: the producer's memory stays within its buffer plus a fixed
//! overhead (RSS sampled through the outage), sending waits instead of growing, and every
//! event is in the stream afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use inlet_kinesis::testing::{endpoint, private_emulator};
use inlet_kinesis::{KinesisLocation, KinesisStream};
use inlet_schemas::kpl;
use inlet_seams::{StartPosition, StreamReader};
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EVENTS: u64 = 60_000;
const BUFFER: u64 = 8_000_000;
/// What the process needs besides the buffer: runtime, SDK client, TLS roots, allocator.
const OVERHEAD: u64 = 64 << 20;

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status.split("VmRSS:").nth(1)?.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
#[ignore = "needs the Kinesis emulator: run infra/test.sh"]
fn an_outage_of_the_stream_holds_memory_and_loses_nothing() {
    // A private emulator: stopping the shared one would stall the other tests. The shared
    // one's variable still says infra/test.sh installed the emulator.
    let _ = endpoint();
    let emulator = private_emulator();
    let url = format!("kinesis://outage?endpoint={}&call_timeout_ms=3000", emulator.address);
    let dir = tempfile::tempdir().unwrap();
    let inlet = env!("CARGO_BIN_EXE_inlet");
    let created = Command::new(inlet)
        .args(["streams", "--stream", &url, "create", "--shards", "4"])
        .status()
        .unwrap();
    assert!(created.success());

    let producer = Command::new(inlet)
        .args(["produce", "--stream", &url, "--events", &EVENTS.to_string()])
        .args(["--buffer-bytes", &BUFFER.to_string(), "--record-ttl", "600s"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = producer.id();
    std::thread::sleep(Duration::from_secs(2));
    let before = rss_bytes(pid).expect("the producer is still running when the outage starts");

    emulator.signal("STOP");
    let outage = Instant::now();
    let mut peak = before;
    while outage.elapsed() < Duration::from_secs(30) {
        if let Some(rss) = rss_bytes(pid) {
            peak = peak.max(rss);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    emulator.signal("CONT");

    let out = producer.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    eprintln!(
        "producer RSS: {:.1} MB before the outage, peak {:.1} MB during it (buffer {:.1} MB)",
        before as f64 / 1e6,
        peak as f64 / 1e6,
        BUFFER as f64 / 1e6
    );
    assert!(out.status.success(), "inlet produce failed");
    assert!(stdout.contains("failed 0"), "{stdout}");
    assert!(peak <= BUFFER + OVERHEAD, "peak RSS {peak} beyond buffer + overhead");

    // Every event is in the stream. A call cut off by the stop may have been written and
    // then retried, which no Kinesis client can tell apart: duplicates are counted, not
    // allowed to hide a loss.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (distinct, total) = rt.block_on(async {
        // Patient: the emulator takes a while to catch up after the stop.
        let location = KinesisLocation {
            call_timeout: Duration::from_secs(60),
            ..KinesisLocation::parse(&url).unwrap()
        };
        let stream = KinesisStream::connect(location).await;
        let mut seen = HashSet::new();
        let mut total = 0u64;
        for shard in stream.list_shards().await.unwrap() {
            let mut r = stream.open(&shard.id, StartPosition::TrimHorizon).await.unwrap();
            loop {
                let batch = r.next_batch(10_000).await.unwrap();
                for rec in &batch.records {
                    for u in kpl::decode_strict(&rec.partition_key, None, &rec.data).unwrap() {
                        total += 1;
                        seen.insert((u.partition_key, u.data));
                    }
                }
                if batch.records.is_empty() && batch.millis_behind_latest.unwrap_or(0) == 0 {
                    break;
                }
            }
        }
        (seen.len() as u64, total)
    });
    eprintln!("read back {total} user records, {distinct} distinct");
    assert_eq!(distinct, EVENTS, "every generated event is in the stream");
}
