//! What `inlet bench` found: printed as a table, or as one JSON object (`--json`).
use super::latency::{LATENCY_STEP, Timing, quantile};
use crate::human::{count, rate};
use crate::stdout::say;
use anyhow::{Context, Result};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// One process's figures.
#[derive(Debug)]
pub(super) struct ProcFigures {
    pub(super) name: String,
    pub(super) pid: u32,
    /// CPU `(user, system)` seconds.
    pub(super) cpu: Option<(f64, f64)>,
    pub(super) peak_rss_bytes: Option<u64>,
}

/// What the bench found.
#[derive(Debug)]
pub(super) struct Summary {
    pub(super) events: u64,
    pub(super) workers: usize,
    pub(super) seed: u64,
    pub(super) rate: Option<u64>,
    /// The stream's URL, [`redact`]ed.
    pub(super) stream: String,
    /// The warehouse's URL, [`redact`]ed.
    pub(super) warehouse: String,
    pub(super) shards: usize,
    pub(super) timing: Timing,
    pub(super) payload_bytes: u64,
    /// The producer, the workers, then the bench itself.
    pub(super) figures: Vec<ProcFigures>,
    pub(super) exact: bool,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

impl Summary {
    /// Prints the figures as a table, then `verify` (what `inlet verify` printed).
    pub(super) fn print(&self, verify: &str) {
        let events = self.events as f64;
        let wall_s = self.timing.wall_s;
        let latency = &self.timing.latency;
        let q = |p: f64| quantile(latency, p).map_or("-".into(), count);
        say!();
        say!(
            "events       {} in {:.2} s (first event sent → last rollup committed; the last was sent at {:.2} s)",
            count(self.events),
            wall_s,
            self.timing.sent_s
        );
        say!(
            "throughput   {} events/s, {:.1} MB/s of event payload (mean {:.0} bytes)",
            rate(events / wall_s),
            self.payload_bytes as f64 / 1e6 / wall_s,
            self.payload_bytes as f64 / events
        );
        say!(
            "latency      p50 {} ms, p99 {} ms, max {} ms (event sent → its rollup committed, every {}th event; \
             exact for first-in first-out, an approximation across shards)",
            q(0.5),
            q(0.99),
            latency.last().map_or("-".into(), |m| count(*m)),
            count(LATENCY_STEP)
        );
        say!();
        self.print_processes();
        say!();
        print!("{verify}");
        if !self.exact {
            say!("the rollups are NOT exact (see above)");
        }
    }

    /// The table of the processes' CPU and peak RSS, and their sum.
    fn print_processes(&self) {
        let wall_s = self.timing.wall_s;
        let per_million = |cpu: f64| cpu / self.events as f64 * 1e6;
        say!(
            "{:<10} {:>8} {:>10} {:>10} {:>15} {:>10} {:>14}",
            "process",
            "pid",
            "CPU user",
            "CPU sys",
            "CPU s/M events",
            "CPU/wall",
            "peak RSS"
        );
        let mut all = 0.0;
        for f in &self.figures {
            let (user, sys, per_m, share) = match f.cpu {
                Some((u, s)) => {
                    all += u + s;
                    (
                        format!("{u:.2} s"),
                        format!("{s:.2} s"),
                        format!("{:.2}", per_million(u + s)),
                        format!("{:.2}", (u + s) / wall_s),
                    )
                }
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            let rss = f.peak_rss_bytes.map_or("-".into(), |b| format!("{:.1} MiB", mib(b)));
            say!(
                "{:<10} {:>8} {user:>10} {sys:>10} {per_m:>15} {share:>10} {rss:>14}",
                f.name,
                f.pid
            );
        }
        say!(
            "{:<10} {:>8} {:>10} {:>10} {:>15.2} {:>10.2}",
            "all",
            "",
            "",
            "",
            per_million(all),
            all / wall_s
        );
    }

    /// The figures and `verify` (what `inlet verify` printed) as one JSON object.
    pub(super) fn json(&self, verify: &str) -> Result<String> {
        let events = self.events as f64;
        let wall_s = self.timing.wall_s;
        let latency = &self.timing.latency;
        let processes = self
            .figures
            .iter()
            .map(|f| ProcessJson {
                name: &f.name,
                pid: f.pid,
                cpu_user_s: f.cpu.map(|c| Decimals(c.0)),
                cpu_sys_s: f.cpu.map(|c| Decimals(c.1)),
                cpu_s_per_million_events: f.cpu.map(|c| Decimals((c.0 + c.1) / events * 1e6)),
                peak_rss_bytes: f.peak_rss_bytes,
            })
            .collect();
        let json = SummaryJson {
            events: self.events,
            shards: self.shards,
            workers: self.workers,
            seed: self.seed,
            rate: self.rate,
            stream: &self.stream,
            warehouse: &self.warehouse,
            wall_s: Decimals(wall_s),
            sent_s: Decimals(self.timing.sent_s),
            events_per_s: Decimals(events / wall_s),
            payload_bytes: self.payload_bytes,
            mb_per_s: Decimals(self.payload_bytes as f64 / 1e6 / wall_s),
            latency_ms: LatencyJson {
                p50: quantile(latency, 0.5),
                p99: quantile(latency, 0.99),
                max: latency.last().copied(),
                samples: latency.len(),
            },
            processes,
            exact: self.exact,
            verify,
        };
        serde_json::to_string(&json).context("writing the bench's figures as JSON")
    }
}

/// The `--json` object, its keys in this order.
#[derive(Debug, Serialize)]
struct SummaryJson<'a> {
    events: u64,
    shards: usize,
    workers: usize,
    seed: u64,
    rate: Option<u64>,
    stream: &'a str,
    warehouse: &'a str,
    wall_s: Decimals<3>,
    sent_s: Decimals<3>,
    events_per_s: Decimals<0>,
    payload_bytes: u64,
    mb_per_s: Decimals<3>,
    latency_ms: LatencyJson,
    processes: Vec<ProcessJson<'a>>,
    exact: bool,
    verify: &'a str,
}

/// Latency figures, ms.
#[derive(Debug, Serialize)]
struct LatencyJson {
    p50: Option<u64>,
    p99: Option<u64>,
    max: Option<u64>,
    samples: usize,
}

/// One process in the `--json` object.
#[derive(Debug, Serialize)]
struct ProcessJson<'a> {
    name: &'a str,
    pid: u32,
    cpu_user_s: Option<Decimals<3>>,
    cpu_sys_s: Option<Decimals<3>>,
    cpu_s_per_million_events: Option<Decimals<3>>,
    peak_rss_bytes: Option<u64>,
}

/// A JSON number written with `N` decimals, as `{:.N}` writes it (`0.100`, not serde's
/// shortest `0.1`), so the figures line up as they always have.
#[derive(Debug, Clone, Copy)]
struct Decimals<const N: usize>(f64);

impl<const N: usize> Serialize for Decimals<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Not finite (never, for these figures) is not a JSON number: an error, not bad JSON.
        let raw = RawValue::from_string(format!("{:.*}", N, self.0)).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// A URL with its password (user info, or a query setting named like one) hidden.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = rest.split_once('?').map_or((rest, None), |(r, q)| (r, Some(q)));
    let rest = match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            format!("{}:***@{host}", user.split(':').next().unwrap_or_default())
        }
        _ => rest.to_owned(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{rest}?{q}"),
        None => format!("{scheme}://{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://me:secret@db:5432/x"), "postgres://me:***@db:5432/x");
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(
            redact("kafka://h:9092/t?group=g&sasl.password=s"),
            "kafka://h:9092/t?group=g&sasl.password=***"
        );
        assert_eq!(redact("embedded:///tmp/s.db"), "embedded:///tmp/s.db");
    }

    #[test]
    fn the_json_keeps_its_keys_order_and_decimals() {
        let summary = Summary {
            events: 3000,
            workers: 1,
            seed: 1,
            rate: None,
            stream: "embedded:///d/stream.db".into(),
            warehouse: "sqlite:///d/warehouse.db".into(),
            shards: 2,
            timing: Timing {
                wall_s: 0.956,
                sent_s: 0.037,
                latency: vec![920, 931, 944],
            },
            payload_bytes: 390_742,
            figures: vec![
                ProcFigures {
                    name: "produce".into(),
                    pid: 7,
                    cpu: Some((0.05, 0.0)),
                    peak_rss_bytes: Some(35_393_536),
                },
                ProcFigures {
                    name: "bench".into(),
                    pid: 9,
                    cpu: None,
                    peak_rss_bytes: None,
                },
            ],
            exact: true,
        };
        let json = summary.json("line \"one\"\n").ok();
        let expected = concat!(
            r#"{"events":3000,"shards":2,"workers":1,"seed":1,"rate":null,"#,
            r#""stream":"embedded:///d/stream.db","warehouse":"sqlite:///d/warehouse.db","#,
            r#""wall_s":0.956,"sent_s":0.037,"events_per_s":3138,"payload_bytes":390742,"mb_per_s":0.409,"#,
            r#""latency_ms":{"p50":931,"p99":944,"max":944,"samples":3},"processes":["#,
            r#"{"name":"produce","pid":7,"cpu_user_s":0.050,"cpu_sys_s":0.000,"cpu_s_per_million_events":16.667,"#,
            r#""peak_rss_bytes":35393536},"#,
            r#"{"name":"bench","pid":9,"cpu_user_s":null,"cpu_sys_s":null,"cpu_s_per_million_events":null,"#,
            r#""peak_rss_bytes":null}],"exact":true,"verify":"line \"one\"\n"}"#,
        );
        assert_eq!(json.as_deref(), Some(expected));
        let empty = Summary {
            timing: Timing {
                latency: vec![],
                ..summary.timing
            },
            rate: Some(100),
            ..summary
        };
        let json = empty.json("").unwrap_or_default();
        assert!(json.contains(r#""rate":100,"#), "{json}");
        assert!(
            json.contains(r#""latency_ms":{"p50":null,"p99":null,"max":null,"samples":0}"#),
            "{json}"
        );
    }
}
