//! Metric names of the producer (emitted per batch, never per event).

/// User records accepted by `send`.
pub const ACCEPTED_TOTAL: &str = "inlet_producer_records_accepted_total";
/// User records written to the stream.
pub const DELIVERED_TOTAL: &str = "inlet_producer_records_delivered_total";
/// User records given up on (label `reason`).
pub const FAILED_TOTAL: &str = "inlet_producer_records_failed_total";
/// Stream records (aggregates) retried after a failure.
pub const RETRIED_TOTAL: &str = "inlet_producer_records_retried_total";
/// PutRecords calls made.
pub const PUT_CALLS_TOTAL: &str = "inlet_producer_put_calls_total";
/// Bytes of stream records written.
pub const PUT_BYTES_TOTAL: &str = "inlet_producer_put_bytes_total";
/// User records per stream record.
pub const AGGREGATION_RATIO: &str = "inlet_producer_aggregation_ratio";
