//! The process's Prometheus recorder: every catalog described (so each series has its
//! `# HELP` and `# TYPE`), every histogram given buckets (never a summary, which cannot be
//! aggregated across instances), `inlet_build_info`, and the `process_*` series refreshed at
//! each scrape.
use crate::process::Usage;
use inlet_metric_catalog::{Kind, Metric};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Mutex, PoisonError};

inlet_metric_catalog::catalog! {
    /// Always 1; labels `version` (of the binary) and `role` (the command running).
    gauge BUILD_INFO = "inlet_build_info";
}

/// The standard process series (the names every Prometheus client library uses).
const PROCESS: &[Metric] = &[
    Metric {
        name: "process_cpu_seconds_total",
        kind: Kind::Counter,
        help: "CPU time used, user and system, whole seconds.",
    },
    Metric {
        name: "process_resident_memory_bytes",
        kind: Kind::Gauge,
        help: "Resident memory, bytes.",
    },
    Metric {
        name: "process_virtual_memory_bytes",
        kind: Kind::Gauge,
        help: "Virtual memory, bytes.",
    },
    Metric {
        name: "process_open_fds",
        kind: Kind::Gauge,
        help: "Open file descriptors.",
    },
    Metric {
        name: "process_max_fds",
        kind: Kind::Gauge,
        help: "Most open file descriptors allowed.",
    },
    Metric {
        name: "process_threads",
        kind: Kind::Gauge,
        help: "Threads.",
    },
    Metric {
        name: "process_start_time_seconds",
        kind: Kind::Gauge,
        help: "Start time, seconds since the epoch.",
    },
];

/// Why the recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// The buckets of a histogram were refused.
    #[error("metric {name}: {reason}")]
    Buckets {
        /// The histogram.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// Another recorder was installed in this process first.
    #[error("another metrics recorder is installed in this process")]
    Taken,
}

/// The installed recorder; cheap to clone.
#[derive(Debug, Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
}

impl Exporter {
    /// Installs the process's recorder with `catalogs` described, labelling
    /// `inlet_build_info` with `role`. Once per process: later calls return the first
    /// recorder (tests start several servers in one process).
    pub fn install(role: &str, catalogs: &[&[Metric]]) -> Result<Self, ExporterError> {
        // Held across the install, so servers starting on several threads at once share one.
        static INSTALLED: Mutex<Option<Exporter>> = Mutex::new(None);
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = &*installed {
            return Ok(e.clone());
        }
        let all = || catalogs.iter().copied().chain([CATALOG, PROCESS]).flatten();
        let mut builder = PrometheusBuilder::new();
        for m in all() {
            if let Kind::Histogram(buckets) = m.kind {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(m.name.into()), buckets)
                    .map_err(|e| ExporterError::Buckets {
                        name: m.name,
                        reason: e.to_string(),
                    })?;
            }
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|_| ExporterError::Taken)?;
        for m in all() {
            let help = m.help_line();
            match m.kind {
                Kind::Counter => metrics::describe_counter!(m.name, help),
                Kind::Gauge => metrics::describe_gauge!(m.name, help),
                Kind::Histogram(_) => metrics::describe_histogram!(m.name, help),
            }
        }
        let version = env!("CARGO_PKG_VERSION");
        metrics::gauge!(BUILD_INFO, "version" => version, "role" => role.to_owned()).set(1.0);
        Ok(installed.insert(Self { handle }).clone())
    }

    /// The text exposition of every series, the process's own refreshed first.
    pub fn render(&self) -> String {
        record_process(&Usage::read());
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets (call every few seconds, so
    /// memory stays bounded between scrapes).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Runs [`Exporter::upkeep`] every 5 s until `shutdown`.
    pub async fn upkeep_until(self, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => self.upkeep(),
            }
        }
    }

    /// The underlying handle (the collector renders it on its own port too).
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }
}

fn record_process(u: &Usage) {
    if let Some((user, system)) = u.cpu() {
        // Counters are integers here: whole seconds, as other exporters on this crate do.
        metrics::counter!("process_cpu_seconds_total").absolute((user + system) as u64);
    }
    let gauges = [
        ("process_resident_memory_bytes", u.resident_bytes.map(|v| v as f64)),
        ("process_virtual_memory_bytes", u.virtual_bytes.map(|v| v as f64)),
        ("process_open_fds", u.open_fds.map(|v| v as f64)),
        ("process_max_fds", u.max_fds.map(|v| v as f64)),
        ("process_threads", u.threads.map(|v| v as f64)),
        ("process_start_time_seconds", u.start_time_seconds),
    ];
    for (name, value) in gauges {
        if let Some(v) = value {
            metrics::gauge!(name).set(v);
        }
    }
}
