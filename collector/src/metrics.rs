//! Metric names of the collector (emitted per request, never per event).

inlet_metric_catalog::catalog! {
    /// `POST /v1/events` requests answered (label `outcome`: `ok` or an error code such as
    /// `unauthorized`, `too_large`, `malformed`, `rate_limited`, `unavailable`).
    counter REQUESTS_TOTAL = "inlet_collector_requests_total";
    /// Time from a request's arrival to its answer, seconds (label `outcome`).
    histogram(inlet_metric_catalog::SECONDS) REQUEST_DURATION_SECONDS = "inlet_collector_request_duration_seconds";
    /// Request body size as received, bytes.
    histogram(inlet_metric_catalog::BYTES) REQUEST_BODY_BYTES = "inlet_collector_request_body_bytes";
    /// Events per request.
    histogram(inlet_metric_catalog::COUNTS) BATCH_EVENTS = "inlet_collector_batch_events";
    /// Events written to the stream and acknowledged (label `key`).
    counter EVENTS_ACCEPTED_TOTAL = "inlet_collector_events_accepted_total";
    /// Events rejected into the bad-rows file (label `key`).
    counter EVENTS_REJECTED_TOTAL = "inlet_collector_events_rejected_total";
    /// Requests being handled now.
    gauge IN_FLIGHT_REQUESTS = "inlet_collector_in_flight_requests";
    /// Open connections now.
    gauge OPEN_CONNECTIONS = "inlet_collector_open_connections";
}
