//! `inlet bench` end to end on the embedded backends: it starts the producer and worker
//! processes, stops them, checks the rollups and prints its figures. No timing is asserted
//! here (speed goals are in BENCHMARKS.md), only that the figures are there.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use std::process::Command;

fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_inlet"))
        .arg("bench")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run inlet bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "inlet bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn bench_runs_the_pipeline_in_processes_and_prints_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = bench(&["--events", "20000", "--data-dir", data.to_str().unwrap()]);
    assert!(
        out.contains("rollups equal the generator's totals exactly: yes"),
        "{out}"
    );
    assert!(
        out.contains("generated = aggregated + dead-lettered: 20,000 ="),
        "{out}"
    );
    for figure in ["events/s", "MB/s", "p50 ", "p99 ", "max ", "CPU s/M events", "peak RSS"] {
        assert!(out.contains(figure), "no {figure:?} in:\n{out}");
    }
    // One row per process, each with its CPU time and peak RSS.
    for process in ["produce", "consume-0", "consume-1", "bench"] {
        let row = out
            .lines()
            .find(|l| l.starts_with(process))
            .unwrap_or_else(|| panic!("no row for {process} in:\n{out}"));
        assert!(row.contains(" s ") && row.ends_with("MiB"), "{row}");
    }
    // The processes' reports are kept with the data when a directory is given.
    for report in ["produce.json", "consume-0.json", "consume-1.json"] {
        let text = std::fs::read_to_string(data.join("bench").join(report)).unwrap();
        assert!(text.contains("\"timeline\":[["), "{report}: {text}");
    }

    // A directory that holds something already is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_inlet"))
        .args(["bench", "--events", "1000", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

/// With a large catalogue (the flags reach the producer and the check alike: the rollups of
/// one catalogue would not equal the generator's totals for another).
#[test]
fn bench_prints_json_when_asked() {
    let out = bench(&[
        "--events",
        "3000",
        "--workers",
        "1",
        "--shards",
        "2",
        "--titles",
        "10000",
        "--games",
        "2000",
        "--profiles",
        "5000000",
        "--json",
    ]);
    let line = out.trim();
    assert!(line.starts_with('{') && line.ends_with('}'), "{out}");
    for field in [
        "\"events\":3000",
        "\"events_per_s\":",
        "\"mb_per_s\":",
        "\"latency_ms\":{\"p50\":",
        "\"name\":\"produce\"",
        "\"name\":\"consume-0\"",
        "\"exact\":true",
    ] {
        assert!(line.contains(field), "no {field} in {line}");
    }
}
