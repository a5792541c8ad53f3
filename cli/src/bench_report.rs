//! What `inlet produce` and `inlet consume` tell `inlet bench` about themselves.
//!
//! With `INLET_BENCH_REPORT=PATH` set, the process writes one JSON object to PATH as it exits:
//! its CPU user and system seconds (from `/proc/self/stat`) and peak RSS (`VmHWM` in
//! `/proc/self/status`), on Linux only (elsewhere those fields are left out), and its timeline:
//! `[ms since the epoch, events]` points. The producer's events are those handed to it so far,
//! recorded after each chunk (with the payload bytes of the events); a worker's are those it
//! has committed, sampled every 10 ms and recorded when they changed.
//!
//! `{"role":"consume","pid":42,"cpu_user_s":1.25,"cpu_sys_s":0.31,"peak_rss_bytes":52428800,
//! "payload_bytes":0,"timeline":[[1763950000000,0],[1763950001012,50000]]}`
use anyhow::{Context, Result};
use inlet_consumer::ConsumerStats;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The variable naming the report's path.
pub const ENV: &str = "INLET_BENCH_REPORT";

/// One process's report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// `produce` or `consume`.
    pub role: String,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_user_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_sys_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Bytes of event payload sent (the producer's; 0 for a worker).
    pub payload_bytes: u64,
    /// `(ms since the epoch, events so far)`, in time order.
    pub timeline: Vec<(u64, u64)>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// This process's CPU seconds `(user, system)` and peak RSS in bytes, where the system says.
pub fn own_usage() -> (Option<(f64, f64)>, Option<u64>) {
    let usage = inlet_ops::process::Usage::read();
    (usage.cpu(), usage.peak_resident_bytes)
}

/// A worker's committed count, sampled by a task into a timeline.
#[derive(Debug)]
struct Sampler {
    stats: Arc<ConsumerStats>,
    timeline: Arc<Mutex<Vec<(u64, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Builds the report of a process while it runs; present when `INLET_BENCH_REPORT` is set.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    role: &'static str,
    sent: Mutex<(Vec<(u64, u64)>, u64)>,
    committed: Option<Sampler>,
}

impl Recorder {
    /// A recorder for a process in `role`, if a report was asked for.
    pub fn from_env(role: &'static str) -> Option<Self> {
        let path = std::env::var_os(ENV).filter(|p| !p.is_empty())?;
        Some(Self {
            path: PathBuf::from(path),
            role,
            sent: Mutex::new((Vec::new(), 0)),
            committed: None,
        })
    }

    /// The producer has been handed `events` events of `bytes` payload bytes so far.
    pub fn sent(&self, events: u64, bytes: u64) {
        if let Ok(mut s) = self.sent.lock() {
            s.0.push((now_ms(), events));
            s.1 = bytes;
        }
    }

    /// Samples a worker's committed count every 10 ms from now on.
    pub fn sample(&mut self, stats: Arc<ConsumerStats>) {
        let timeline = Arc::new(Mutex::new(vec![(now_ms(), stats.snapshot().handled())]));
        let task = {
            let (stats, timeline) = (Arc::clone(&stats), Arc::clone(&timeline));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    record_change(&timeline, stats.snapshot().handled());
                }
            })
        };
        self.committed = Some(Sampler { stats, timeline, task });
    }

    /// Writes the report (with a last sample of the committed count).
    pub fn write(self) -> Result<()> {
        let (timeline, payload_bytes) = match self.committed {
            Some(Sampler { stats, timeline, task }) => {
                task.abort();
                record_change(&timeline, stats.snapshot().handled());
                let points = timeline.lock().map(|t| t.clone()).unwrap_or_default();
                (points, 0)
            }
            None => self.sent.into_inner().unwrap_or_default(),
        };
        let (cpu, rss) = own_usage();
        let report = Report {
            role: self.role.to_owned(),
            pid: std::process::id(),
            cpu_user_s: cpu.map(|c| c.0),
            cpu_sys_s: cpu.map(|c| c.1),
            peak_rss_bytes: rss,
            payload_bytes,
            timeline,
        };
        std::fs::write(&self.path, report.to_json())
            .with_context(|| format!("writing the bench report {}", self.path.display()))
    }
}

fn record_change(timeline: &Mutex<Vec<(u64, u64)>>, n: u64) {
    if let Ok(mut t) = timeline.lock()
        && t.last().is_none_or(|last| last.1 != n)
    {
        t.push((now_ms(), n));
    }
}

impl Report {
    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        // A struct of numbers and strings always serializes.
        serde_json::to_string(self).unwrap_or_default() + "\n"
    }

    /// Reads a report written by [`Report::to_json`].
    pub fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text).context("reading a bench report")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_survives_its_json() {
        let r = Report {
            role: "consume \"0\"\n".into(),
            pid: 42,
            cpu_user_s: Some(1.25),
            cpu_sys_s: Some(0.0),
            peak_rss_bytes: Some(52_428_800),
            payload_bytes: 7,
            timeline: vec![(1_763_950_000_000, 0), (1_763_950_001_012, 50_000)],
        };
        assert_eq!(Report::parse(&r.to_json()).ok(), Some(r.clone()));
        let bare = Report {
            cpu_user_s: None,
            cpu_sys_s: None,
            peak_rss_bytes: None,
            timeline: vec![],
            ..r
        };
        assert_eq!(Report::parse(&bare.to_json()).ok(), Some(bare));
        assert!(Report::parse("[1]").is_err());
        assert!(Report::parse("{\"pid\":").is_err());
    }
}
