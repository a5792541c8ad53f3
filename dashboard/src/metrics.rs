//! Metric names of the dashboard (emitted per request or sample).

/// Query requests answered (label `outcome`: ok, bad_request, unavailable).
pub const QUERIES_TOTAL: &str = "inlet_dashboard_queries_total";
/// Time to answer a query that reached the warehouse.
pub const QUERY_SECONDS: &str = "inlet_dashboard_query_seconds";
/// Health samples taken (label `outcome`: ok, error).
pub const SAMPLES_TOTAL: &str = "inlet_dashboard_health_samples_total";
