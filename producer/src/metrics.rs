//! Metric names of the producer (emitted per call or per stream record, never per event).

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
/// Stream records written (an aggregate counts once).
pub const STREAM_RECORDS_TOTAL: &str = "inlet_producer_stream_records_total";
/// Failed stream records by the stream's error code (label `code`; `PutRecords` when the
/// whole call failed).
pub const ERRORS_TOTAL: &str = "inlet_producer_errors_total";
/// Attempts a stream record took until it was written.
pub const ATTEMPTS: &str = "inlet_producer_attempts";
/// Time from a stream record's first user record to its write, seconds.
pub const BUFFERED_SECONDS: &str = "inlet_producer_buffered_seconds";
/// Time per PutRecords call, seconds.
pub const PUT_SECONDS: &str = "inlet_producer_put_seconds";
/// Stream records that landed on another shard than predicted.
pub const MISPREDICTED_TOTAL: &str = "inlet_producer_shard_mispredictions_total";
/// Times the shard map changed.
pub const SHARD_MAP_CHANGES_TOTAL: &str = "inlet_producer_shard_map_changes_total";
/// Fraction of a shard's byte rate used over the last second (label `shard`).
pub const SHARD_BYTES_UTILIZATION: &str = "inlet_producer_shard_bytes_utilization";
/// Fraction of a shard's record rate used over the last second (label `shard`).
pub const SHARD_RECORDS_UTILIZATION: &str = "inlet_producer_shard_records_utilization";
/// Bytes held in the buffer (user records accepted and not yet settled).
pub const BUFFERED_BYTES: &str = "inlet_producer_buffered_bytes";
/// PutRecords calls in flight.
pub const CALLS_IN_FLIGHT: &str = "inlet_producer_calls_in_flight";
/// PutRecords calls that got no answer in time (their records may be written twice).
pub const UNANSWERED_CALLS_TOTAL: &str = "inlet_producer_unanswered_calls_total";
/// Stream records written to the on-disk spool.
pub const SPOOLED_TOTAL: &str = "inlet_producer_spooled_total";
