//! What an operator sees when something is wrong, on the real binary with its default
//! logging: a read-only command on a mistyped data dir, an unknown replay filter, settings
//! that would hang or mean something else, an unreachable Kafka broker, Kinesis endpoint or
//! PostgreSQL, a Kinesis stream with no region, a damaged spool, a closed stdout. Each ends
//! in one clear error, in bounded time, and changes nothing. No server is needed: nothing
//! listens on port 1 of loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Far beyond any timeout these runs use (2 s): only a hang fails it.
const LIMIT: Duration = Duration::from_secs(30);

/// `inlet args` with the default log level (no `RUST_LOG`), as a person runs it.
fn inlet(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inlet"));
    c.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `c`; it must exit within [`LIMIT`].
fn run(mut c: Command) -> Output {
    let started = Instant::now();
    let mut child = c.spawn().unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("{c:?} did not exit within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The run failed with exit code 1 and exactly one line on stderr, an error saying all of
/// `says`.
fn one_error_line(out: &Output, says: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, not:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for s in says {
        assert!(lines[0].contains(s), "no {s:?} in: {err}");
    }
    lines[0].to_owned()
}

fn data_dir(d: &Path) -> String {
    d.join("mistyped").display().to_string()
}

#[test]
fn read_only_commands_on_a_missing_data_dir_fail_naming_it_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let warehouse = format!("no warehouse at {dir}/warehouse.db");
    let stream = format!("no stream at {dir}/stream.db");
    for (args, says) in [
        (vec!["report"], &warehouse),
        (vec!["dashboard", "--listen", "127.0.0.1:0"], &warehouse),
        (vec!["verify", "--events", "10"], &stream),
        (vec!["replay", "rebuild", "--dry-run"], &stream),
        (vec!["replay", "ndjson"], &stream),
    ] {
        let out = run(inlet(&[&args[..], &["--data-dir", &dir]].concat()));
        let line = one_error_line(&out, &[says, "--data-dir"]);
        if says == &warehouse {
            assert!(line.contains("run `inlet consume` or `inlet demo` first"), "{line}");
        }
        assert!(!Path::new(&dir).exists(), "{args:?} created {dir}");
    }
    // A warehouse named by URL: the hint is that flag.
    let url = format!("sqlite://{dir}/w.db");
    let out = run(inlet(&["report", "--warehouse", &url]));
    one_error_line(&out, &[&format!("no warehouse at {dir}/w.db"), "check --warehouse"]);
    assert!(!Path::new(&dir).exists());
}

#[test]
fn replay_refuses_unknown_filter_values_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let replay = |extra: &[&str]| run(inlet(&[&["replay", "ndjson", "--data-dir", &dir][..], extra].concat()));

    let out = replay(&["--kind", "bogus"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for s in [
        "'bogus'",
        "--kind",
        "viewing.heartbeat",
        "gameplay.purchase",
        "viewing, gameplay",
    ] {
        assert!(err.contains(s), "no {s:?} in: {err}");
    }
    for empty in ["--title", "--game", "--app", "--session"] {
        let out = replay(&[empty, ""]);
        assert_eq!(out.status.code(), Some(2), "{empty}: {}", stderr(&out));
    }
    let out = replay(&["--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--from 2026-01-02T00:00:00Z is not before --to 2026-01-01T00:00:00Z"),
        "{err}"
    );
    // Known kinds, in full, by family or after the dot, pass (to the missing stream).
    for kind in ["viewing.heartbeat", "gameplay", "heartbeat", "purchase"] {
        let out = replay(&["--kind", kind]);
        one_error_line(&out, &["no stream at"]);
    }
    assert!(!Path::new(&dir).exists());
}

#[test]
fn an_unreachable_kafka_broker_is_one_error_after_the_connect_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let url = "kafka://127.0.0.1:1/t?connect_timeout=2s";
    for args in [
        vec!["produce", "--events", "10", "--stream", url, "--data-dir", &dir],
        vec!["consume", "--stream", url, "--data-dir", &dir],
        vec!["streams", "--stream", url, "describe"],
    ] {
        let started = Instant::now();
        let out = run(inlet(&args));
        one_error_line(&out, &["Kafka broker 127.0.0.1:1 unreachable for 2 s"]);
        assert!(started.elapsed() >= Duration::from_secs(2), "{args:?}: gave up early");
    }
}

/// No AWS settings at all: the variables cleared, an empty home (no profile files),
/// instance metadata off.
fn without_aws(mut c: Command, home: &Path) -> Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home).env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

#[test]
fn kinesis_without_a_region_or_credentials_says_so() {
    let home = tempfile::tempdir().unwrap();
    let dir = data_dir(home.path());
    let out = run(without_aws(
        inlet(&[
            "produce",
            "--events",
            "10",
            "--stream",
            "kinesis://s",
            "--data-dir",
            &dir,
        ]),
        home.path(),
    ));
    one_error_line(&out, &["no AWS region is configured", "?region=", "AWS_REGION"]);
    let out = run(without_aws(
        inlet(&["streams", "--stream", "kinesis://s?region=eu-west-1", "describe"]),
        home.path(),
    ));
    one_error_line(&out, &["no AWS credentials were found", "AWS_ACCESS_KEY_ID", "profile"]);
}

#[test]
fn an_unreachable_kinesis_endpoint_is_one_error_after_the_connect_timeout() {
    let home = tempfile::tempdir().unwrap();
    let dir = data_dir(home.path());
    let url = "kinesis://s?endpoint=http://127.0.0.1:1&connect_timeout=2s";
    let started = Instant::now();
    let out = run(without_aws(
        inlet(&["produce", "--events", "10", "--stream", url, "--data-dir", &dir]),
        home.path(),
    ));
    one_error_line(&out, &["Kinesis endpoint http://127.0.0.1:1 unreachable for 2 s"]);
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[test]
fn settings_that_would_hang_or_mean_something_else_are_refused_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    for (args, says) in [
        (
            &["produce", "--buffer-bytes", "0"][..],
            "producer.buffer_bytes: 0 is below the least allowed, 1048576",
        ),
        (
            &["produce", "--buffer-bytes", "100"],
            "producer.buffer_bytes: 100 is below",
        ),
        (
            &["produce", "--max-in-flight", "0"],
            "producer.max_in_flight: 0 is below",
        ),
        (
            &["produce", "--record-ttl", "0s"],
            "producer.record_ttl: must be longer than 0",
        ),
        (&["produce", "--shards", "0"], "stream.shards: 0 is below"),
        (&["produce", "--late-share", "2"], "--late-share"),
        (&["produce", "--late-share", "NaN"], "NaN is not a share from 0 to 1"),
        (&["produce", "--duplicate-share=-0.1"], "--duplicate-share"),
        (&["produce", "--rate", "0"], "--rate"),
        (
            &["produce", "--warehouse", "foo://x"],
            "--warehouse: inlet produce writes to the stream only",
        ),
        (
            &["consume", "--failover", "0s"],
            "consumer.failover: must be at least 1s",
        ),
        (&["demo", "--workers", "0"], "--workers"),
        (&["demo", "--shards", "0"], "--shards"),
    ] {
        let out = run(inlet(&[args, &["--data-dir", &dir]].concat()));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: no {says:?} in: {err}");
        assert!(!Path::new(&dir).exists(), "{args:?} created {dir}");
    }
    // A scheme the command takes, with no file: named as that, not as another scheme.
    let out = run(inlet(&["produce", "--events", "1", "--stream", "embedded://"]));
    one_error_line(&out, &["\"embedded://\" names no file: write embedded:///path/to/file"]);
}

#[test]
fn an_unreachable_postgres_at_start_up_fails_in_seconds_with_the_cause() {
    for (url, says) in [
        ("postgres://inlet@no-such-host.invalid:5432/x", "no-such-host.invalid"),
        ("postgres://inlet@127.0.0.1:1/x", "127.0.0.1:1"),
    ] {
        let started = Instant::now();
        let out = run(inlet(&["report", "--warehouse", url]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(says), "{url}: no {says:?} in: {err}");
        // The start-up budget is 10 s (a restart mid-run keeps its 60 s).
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "{url}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_damaged_spool_is_shown_and_repaired_by_moving_the_damage_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let mut bytes = inlet_producer::spool::MAGIC.to_vec();
    bytes.extend_from_slice(&[0xAB; 40]);
    std::fs::write(spool.join("spool.bin"), &bytes).unwrap();
    let spool_arg = spool.display().to_string();

    let out = run(inlet(&["spool", "inspect", &spool_arg]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("corrupt at byte 8: a record length of"), "{text}");

    // A producer refuses to start on it, saying what to do.
    let out = run(inlet(&[
        "produce",
        "--events",
        "10",
        "--data-dir",
        &tmp.path().join("d").display().to_string(),
        "--spool",
        &spool_arg,
    ]));
    one_error_line(&out, &["corrupt at byte 8", "inlet spool repair"]);

    let out = run(inlet(&["spool", "repair", &spool_arg]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert_eq!(std::fs::read(spool.join("spool.bin.damaged-8")).unwrap(), [0xAB; 40]);
    let out = run(inlet(&["spool", "inspect", &spool_arg]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d").display().to_string();
    let demo = run(inlet(&["demo", "--events", "2000", "--data-dir", &dir]));
    assert!(demo.status.success(), "{}", stderr(&demo));
    // As `inlet report | head -0`: the reader is gone before the first line.
    for args in [
        &["report", "--data-dir", &dir][..],
        &["replay", "ndjson", "--data-dir", &dir],
        &["config"],
    ] {
        let mut child = inlet(args).spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_stderr_does_not_turn_an_error_into_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("none").display().to_string();
    // As `inlet report 2>&1 | head -0`: the error has nowhere to go, the status still says it.
    let mut child = inlet(&["report", "--data-dir", &dir]).spawn().unwrap();
    drop(child.stderr.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a panic exits with 101");
}
