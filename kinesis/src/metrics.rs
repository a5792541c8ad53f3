//! Metric names of the Kinesis backend.

inlet_metric_catalog::catalog! {
    /// Calls made (labels `op`, `outcome` = ok | error).
    counter CALLS_TOTAL = "inlet_kinesis_calls_total";
    /// Errors by code (labels `op`, `code`); per-record PutRecords failures included.
    counter ERRORS_TOTAL = "inlet_kinesis_errors_total";
    /// Time per call (label `op`).
    histogram(inlet_metric_catalog::SECONDS) CALL_SECONDS = "inlet_kinesis_call_seconds";
    /// Records read by `GetRecords` or received by `SubscribeToShard` (enhanced fan-out).
    counter READ_RECORDS_TOTAL = "inlet_kinesis_read_records_total";
    /// Bytes read by `GetRecords` or received by `SubscribeToShard` (enhanced fan-out).
    counter READ_BYTES_TOTAL = "inlet_kinesis_read_bytes_total";
    /// `GetRecords` calls refused for exceeding a shard's read limits.
    counter READ_THROTTLED_TOTAL = "inlet_kinesis_read_throttled_total";
    /// Shard iterators that expired and were renewed at the last record read.
    counter ITERATOR_EXPIRED_TOTAL = "inlet_kinesis_iterator_expired_total";

    /// Enhanced fan-out: subscriptions replaced by a new `SubscribeToShard` (label `reason` =
    /// ended | renew | stalled | resource_in_use | error | consumer_missing).
    counter FANOUT_RESUBSCRIBES_TOTAL = "inlet_kinesis_fanout_resubscribes_total";
    /// Enhanced fan-out: `SubscribeToShardEvent`s received.
    counter FANOUT_EVENTS_TOTAL = "inlet_kinesis_fanout_events_total";
    /// Enhanced fan-out: stream consumers this process registered (`RegisterStreamConsumer`).
    counter FANOUT_CONSUMER_REGISTRATIONS_TOTAL = "inlet_kinesis_fanout_consumer_registrations_total";
}
