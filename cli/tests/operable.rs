//! Operability end to end, on real processes: every long-running command serves /metrics,
//! /healthz and /readyz; promtool (Prometheus's own linter) finds nothing to say about any
//! /metrics page; every series the shipped Grafana dashboard queries is served with data
//! after a run. And the configuration: a file, the environment and flags layered, each bad
//! value refused with its key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod common;

use common::{Setup, wait_output};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `inlet <args> --metrics-listen 127.0.0.1:0` logging to a file; returns the child
/// and the endpoint's address, read from the log.
fn start_with_metrics(s: &Setup, name: &str, args: &[&str]) -> (Child, SocketAddr) {
    let log = s.d().join(format!("{name}.log"));
    let mut child = s
        .inlet(args)
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(addr) = text
            .split("metrics and health on http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
        {
            return (child, addr.parse().unwrap());
        }
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none() && started.elapsed() < Duration::from_secs(60),
            "{name} never served metrics ({exited:?}):\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// The names of the series a /metrics page has samples of.
fn served(page: &str) -> Vec<String> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// promtool's verdict on a /metrics page: nothing to say.
fn promtool_accepts(name: &str, page: &str) {
    let promtool = inlet_testkit::server_var("INLET_PROMTOOL", "promtool");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool on {name}'s /metrics:\n{said}"
    );
}

/// Every `inlet_*` series the Grafana dashboard's Prometheus panels query.
fn grafana_series() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/grafana/inlet.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v.as_str() {
                        Some(e) if k == "expr" => out.push(e.to_owned()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&json, &mut exprs);
    let mut names: Vec<String> = exprs
        .iter()
        .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| w.starts_with("inlet_"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 10, "the dashboard's queries: {names:?}");
    names
}

fn wait_ready(name: &str, addr: SocketAddr) {
    let started = Instant::now();
    loop {
        let (status, body) = get(addr, "/readyz");
        if status == 200 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name} never ready: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut child: Child) {
    common::signal(&child, "TERM");
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs promtool: run infra/test.sh"]
async fn every_process_serves_metrics_that_promtool_accepts_and_grafana_charts() {
    let s = Setup::embedded(20_000, "7");
    let d = s.d().display().to_string();
    let (consumer, consumer_addr) = start_with_metrics(
        &s,
        "consume",
        &[
            "consume",
            "--data-dir",
            &d,
            "--failover",
            "2s",
            "--log-format",
            "json",
            "--progress-every",
            "1s",
        ],
    );
    assert_eq!(get(consumer_addr, "/healthz").0, 200);
    wait_ready("consume", consumer_addr);

    let workload = s.workload();
    let mut produce_args: Vec<&str> = vec!["produce", "--rate", "4000"];
    produce_args.extend(workload.iter().map(String::as_str));
    let (producer, producer_addr) = start_with_metrics(&s, "produce", &produce_args);
    wait_ready("produce", producer_addr);
    // A page scraped while it writes (the process ends when its events are delivered).
    let started = Instant::now();
    let producer_page = loop {
        let page = get(producer_addr, "/metrics").1;
        if page.contains("inlet_producer_aggregation_ratio_bucket") || started.elapsed() > Duration::from_secs(30) {
            break page;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(wait_output(producer, Duration::from_secs(120)).status.success());
    common::wait_until_handled(&s.warehouse().await, 20_000, Duration::from_secs(120)).await;

    let config = s.d().join("inlet.toml");
    std::fs::write(
        &config,
        "[collector]\nlisten = \"127.0.0.1:0\"\n[[collector.keys]]\nid = \"k\"\napp_id = \"a\"\n\
         sha256 = \"0441c41d0f57661d08b5564732be5007dfc5366263c3bf35d59b2ff667f6bcd6\"\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let (collector, collector_addr) =
        start_with_metrics(&s, "collector", &["collector", "--config", &config, "--data-dir", &d]);
    let (dashboard, dashboard_addr) = start_with_metrics(
        &s,
        "dashboard",
        &["dashboard", "--data-dir", &d, "--listen", "127.0.0.1:0"],
    );
    wait_ready("dashboard", dashboard_addr);
    // A scrape after the dashboard's first health sample.
    std::thread::sleep(Duration::from_secs(3));

    let pages = [
        ("consume", get(consumer_addr, "/metrics").1),
        ("produce", producer_page),
        ("collector", get(collector_addr, "/metrics").1),
        ("dashboard", get(dashboard_addr, "/metrics").1),
    ];
    let mut all = Vec::new();
    for (name, page) in &pages {
        assert!(page.contains("inlet_build_info{"), "{name}:\n{page}");
        assert!(page.contains("process_resident_memory_bytes "), "{name}:\n{page}");
        assert!(page.contains("# HELP "), "{name}:\n{page}");
        promtool_accepts(name, page);
        all.extend(served(page));
    }
    assert!(
        all.iter().any(|n| n == "inlet_dashboard_health_samples_total"),
        "{all:?}"
    );
    for series in grafana_series() {
        let with_data = all.iter().any(|n| {
            n == &series
                || [&format!("{series}_bucket"), &format!("{series}_count")].contains(&n)
                || series
                    .strip_suffix("_bucket")
                    .is_some_and(|base| n == &format!("{base}_bucket"))
        });
        assert!(
            with_data,
            "the Grafana dashboard queries {series}, which no process served"
        );
    }
    for child in [consumer, collector, dashboard] {
        stop(child);
    }
    // The worker logged JSON lines only, its progress among them.
    let log = std::fs::read_to_string(s.d().join("consume.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let progress = lines
        .iter()
        .find(|l| l["message"] == "progress")
        .expect("a progress line");
    assert!(
        progress["events_per_s"].is_u64() && progress["leases"].is_u64(),
        "{progress}"
    );
}

/// Runs `inlet config` with a file, environment variables and flags.
fn effective(file: &Path, env: &[(&str, &str)], flags: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inlet"));
    c.args(flags).arg("--config").arg(file).env_remove("INLET_CONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file() {
    let s = Setup::embedded(0, "0");
    let file = s.d().join("inlet.toml");
    std::fs::write(
        &file,
        "[producer]\nbuffer_bytes = 2097152\nlinger = \"30ms\"\nmax_in_flight = 3\n\
         [consumer]\nfailover = \"20s\"\nmax_leases = 7\nread_batch = 250\n",
    )
    .unwrap();
    let env = [
        ("INLET_PRODUCER__BUFFER_BYTES", "3145728"),
        ("INLET_PRODUCER__LINGER", "40ms"),
    ];
    let (code, out, err) = effective(&file, &env, &["produce", "--buffer-bytes", "4194304", "--print-config"]);
    assert_eq!(code, 0, "{err}");
    let c: toml::Table = out.parse().unwrap();
    assert_eq!(
        c["producer"]["buffer_bytes"].as_integer(),
        Some(4_194_304),
        "flag over env over file"
    );
    assert_eq!(c["producer"]["linger"].as_str(), Some("40ms"), "env over file");
    assert_eq!(
        c["producer"]["max_in_flight"].as_integer(),
        Some(3),
        "file over default"
    );
    assert_eq!(c["consumer"]["max_leases"].as_integer(), Some(7));
    assert_eq!(c["consumer"]["read_batch"].as_integer(), Some(250));
    assert_eq!(
        c["producer"]["max_attempts"].as_integer(),
        Some(64),
        "the library's default"
    );

    let (code, out, _) = effective(&file, &[], &["consume", "--failover", "5s", "--print-config"]);
    assert_eq!(code, 0);
    assert!(out.contains("failover = \"5s\""), "{out}");
}

#[test]
fn bad_values_are_refused_with_their_key_and_exit_code_2() {
    let s = Setup::embedded(0, "0");
    let file = s.d().join("inlet.toml");
    /// The file, the environment, the command line, and the key the error must name.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case<'_>; 6] = [
        ("[producer]\nlingr = \"1s\"\n", &[], &["config"], "producer.lingr"),
        ("[consumer]\nfailover = \"0s\"\n", &[], &["config"], "consumer.failover"),
        (
            "",
            &[("INLET_PRODUCER__RATE_HEADROOM", "2")],
            &["config"],
            "producer.rate_headroom",
        ),
        (
            "",
            &[("INLET_PRODUCER__MAX_IN_FLIGHT", "lots")],
            &["config"],
            "INLET_PRODUCER__MAX_IN_FLIGHT",
        ),
        (
            "",
            &[],
            &["produce", "--buffer-bytes", "0", "--print-config"],
            "producer.buffer_bytes",
        ),
        (
            "[dashboard]\nbasic_auth = \"nopassword\"\n",
            &[],
            &["config"],
            "dashboard.basic_auth",
        ),
    ];
    for (text, env, flags, key) in cases {
        std::fs::write(&file, text).unwrap();
        let (code, _, err) = effective(&file, env, flags);
        assert_eq!(code, 2, "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[test]
fn the_printed_configuration_hides_secrets() {
    let s = Setup::embedded(0, "0");
    let file = s.d().join("inlet.toml");
    std::fs::write(
        &file,
        "[warehouse]\nlocation = \"postgres://inlet:hunter2@db/inlet\"\n[dashboard]\naccess_token = \"t0ken\"\n",
    )
    .unwrap();
    let (code, out, err) = effective(&file, &[], &["config"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("hunter2") && !out.contains("t0ken"), "{out}");
    assert!(out.contains("postgres://inlet:<redacted>@db/inlet"), "{out}");
}
