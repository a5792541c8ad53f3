//! Metric names of the producer (emitted per call or per stream record, never per event).

inlet_metric_catalog::catalog! {
    /// User records accepted by `send`.
    counter ACCEPTED_TOTAL = "inlet_producer_records_accepted_total";
    /// User records written to the stream.
    counter DELIVERED_TOTAL = "inlet_producer_records_delivered_total";
    /// User records given up on (label `reason`).
    counter FAILED_TOTAL = "inlet_producer_records_failed_total";
    /// Stream records (aggregates) retried after a failure.
    counter RETRIED_TOTAL = "inlet_producer_records_retried_total";
    /// PutRecords calls made.
    counter PUT_CALLS_TOTAL = "inlet_producer_put_calls_total";
    /// Bytes of stream records written.
    counter PUT_BYTES_TOTAL = "inlet_producer_put_bytes_total";
    /// User records per stream record.
    histogram(inlet_metric_catalog::COUNTS) AGGREGATION_RATIO = "inlet_producer_aggregation_ratio";
    /// Stream records written (an aggregate counts once).
    counter STREAM_RECORDS_TOTAL = "inlet_producer_stream_records_total";
    /// Failed stream records by the stream's error code (label `code`; `PutRecords` when the
    /// whole call failed).
    counter ERRORS_TOTAL = "inlet_producer_errors_total";
    /// Attempts a stream record took until it was written.
    histogram(inlet_metric_catalog::COUNTS) ATTEMPTS = "inlet_producer_attempts";
    /// Time from a stream record's first user record to its write, seconds.
    histogram(inlet_metric_catalog::SECONDS) BUFFERED_SECONDS = "inlet_producer_buffered_seconds";
    /// Time per PutRecords call, seconds.
    histogram(inlet_metric_catalog::SECONDS) PUT_SECONDS = "inlet_producer_put_seconds";
    /// Stream records that landed on another shard than predicted.
    counter MISPREDICTED_TOTAL = "inlet_producer_shard_mispredictions_total";
    /// Times the shard map changed.
    counter SHARD_MAP_CHANGES_TOTAL = "inlet_producer_shard_map_changes_total";
    /// Fraction of a shard's byte rate used over the last second (label `shard`).
    gauge SHARD_BYTES_UTILIZATION = "inlet_producer_shard_bytes_utilization";
    /// Fraction of a shard's record rate used over the last second (label `shard`).
    gauge SHARD_RECORDS_UTILIZATION = "inlet_producer_shard_records_utilization";
    /// Bytes held in the buffer (user records accepted and not yet settled).
    gauge BUFFERED_BYTES = "inlet_producer_buffered_bytes";
    /// PutRecords calls in flight.
    gauge CALLS_IN_FLIGHT = "inlet_producer_calls_in_flight";
    /// PutRecords calls that got no answer in time (their records may be written twice).
    counter UNANSWERED_CALLS_TOTAL = "inlet_producer_unanswered_calls_total";
    /// Stream records written to the on-disk spool.
    counter SPOOLED_TOTAL = "inlet_producer_spooled_total";
    /// User records given up on that the dead-letter file could not take either (a full
    /// disk): only this count is left of them.
    counter DEAD_LETTER_UNWRITTEN_TOTAL = "inlet_producer_dead_letter_unwritten_total";
}
