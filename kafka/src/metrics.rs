//! Metric names of the Kafka backend.

/// Messages handed to librdkafka and their delivery outcome (label `outcome` = ok | error).
pub const PRODUCED_TOTAL: &str = "inlet_kafka_produced_total";
/// Delivery errors by librdkafka error code (label `code`).
pub const PRODUCE_ERRORS_TOTAL: &str = "inlet_kafka_produce_errors_total";
/// Messages read.
pub const READ_RECORDS_TOTAL: &str = "inlet_kafka_read_records_total";
/// Bytes read (key + payload).
pub const READ_BYTES_TOTAL: &str = "inlet_kafka_read_bytes_total";
/// Fetch errors reported by librdkafka (label `code`); it retries them itself.
pub const FETCH_ERRORS_TOTAL: &str = "inlet_kafka_fetch_errors_total";
/// Consumer-group rebalance events (label `kind` = assigned | revoked | lost | error).
pub const REBALANCES_TOTAL: &str = "inlet_kafka_rebalances_total";
/// Partitions currently assigned to this process's group member.
pub const ASSIGNED_PARTITIONS: &str = "inlet_kafka_assigned_partitions";
/// Offsets committed to Kafka after the warehouse commit (label `outcome` = ok | error).
pub const OFFSET_COMMITS_TOTAL: &str = "inlet_kafka_offset_commits_total";
