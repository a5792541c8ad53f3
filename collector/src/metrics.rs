//! Metric names of the collector (emitted per request, never per event), and the
//! Prometheus recorder behind `GET /metrics`.
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// `POST /v1/events` requests answered (label `outcome`: `ok` or an error code such as
/// `unauthorized`, `too_large`, `malformed`, `rate_limited`, `unavailable`).
pub const REQUESTS_TOTAL: &str = "inlet_collector_requests_total";
/// Time from a request's arrival to its answer, seconds (label `outcome`).
pub const REQUEST_DURATION_SECONDS: &str = "inlet_collector_request_duration_seconds";
/// Request body size as received, bytes.
pub const REQUEST_BODY_BYTES: &str = "inlet_collector_request_body_bytes";
/// Events per request.
pub const BATCH_EVENTS: &str = "inlet_collector_batch_events";
/// Events written to the stream and acknowledged (label `key`).
pub const EVENTS_ACCEPTED_TOTAL: &str = "inlet_collector_events_accepted_total";
/// Events rejected into the bad-rows file (label `key`).
pub const EVENTS_REJECTED_TOTAL: &str = "inlet_collector_events_rejected_total";
/// Requests being handled now.
pub const IN_FLIGHT_REQUESTS: &str = "inlet_collector_in_flight_requests";
/// Open connections now.
pub const OPEN_CONNECTIONS: &str = "inlet_collector_open_connections";

/// Histogram buckets of request durations, seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the process's Prometheus recorder (once; later calls return the same handle).
/// `None` when another recorder was installed first.
pub fn install_prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(REQUEST_DURATION_SECONDS.into()),
                    &DURATION_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}
