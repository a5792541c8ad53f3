//! Metric names of the dashboard (emitted per request or sample).

inlet_metric_catalog::catalog! {
    /// Query requests answered (label `outcome`: ok, bad_request, unavailable).
    counter QUERIES_TOTAL = "inlet_dashboard_queries_total";
    /// Time to answer a query that reached the warehouse.
    histogram(inlet_metric_catalog::SECONDS) QUERY_SECONDS = "inlet_dashboard_query_seconds";
    /// Health samples taken (label `outcome`: ok, error).
    counter SAMPLES_TOTAL = "inlet_dashboard_health_samples_total";
}
