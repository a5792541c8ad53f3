//! Metric names of the Kinesis backend.

/// Calls made (labels `op`, `outcome` = ok | error).
pub const CALLS_TOTAL: &str = "inlet_kinesis_calls_total";
/// Errors by code (labels `op`, `code`); per-record PutRecords failures included.
pub const ERRORS_TOTAL: &str = "inlet_kinesis_errors_total";
/// Time per call (label `op`).
pub const CALL_SECONDS: &str = "inlet_kinesis_call_seconds";
/// Records read by `GetRecords` or received by `SubscribeToShard` (enhanced fan-out).
pub const READ_RECORDS_TOTAL: &str = "inlet_kinesis_read_records_total";
/// Bytes read by `GetRecords` or received by `SubscribeToShard` (enhanced fan-out).
pub const READ_BYTES_TOTAL: &str = "inlet_kinesis_read_bytes_total";
/// `GetRecords` calls refused for exceeding a shard's read limits.
pub const READ_THROTTLED_TOTAL: &str = "inlet_kinesis_read_throttled_total";
/// Shard iterators that expired and were renewed at the last record read.
pub const ITERATOR_EXPIRED_TOTAL: &str = "inlet_kinesis_iterator_expired_total";

/// Enhanced fan-out: subscriptions replaced by a new `SubscribeToShard` (label `reason` =
/// ended | renew | stalled | resource_in_use | error | consumer_missing).
pub const FANOUT_RESUBSCRIBES_TOTAL: &str = "inlet_kinesis_fanout_resubscribes_total";
/// Enhanced fan-out: `SubscribeToShardEvent`s received.
pub const FANOUT_EVENTS_TOTAL: &str = "inlet_kinesis_fanout_events_total";
/// Enhanced fan-out: stream consumers this process registered (`RegisterStreamConsumer`).
pub const FANOUT_CONSUMER_REGISTRATIONS_TOTAL: &str = "inlet_kinesis_fanout_consumer_registrations_total";
