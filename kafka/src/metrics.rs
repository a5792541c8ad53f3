//! Metric names of the Kafka backend.

inlet_metric_catalog::catalog! {
    /// Messages handed to librdkafka and their delivery outcome (label `outcome` = ok | error).
    counter PRODUCED_TOTAL = "inlet_kafka_produced_total";
    /// Delivery errors by librdkafka error code (label `code`).
    counter PRODUCE_ERRORS_TOTAL = "inlet_kafka_produce_errors_total";
    /// Messages read.
    counter READ_RECORDS_TOTAL = "inlet_kafka_read_records_total";
    /// Bytes read (key + payload).
    counter READ_BYTES_TOTAL = "inlet_kafka_read_bytes_total";
    /// Fetch errors reported by librdkafka (label `code`); it retries them itself.
    counter FETCH_ERRORS_TOTAL = "inlet_kafka_fetch_errors_total";
    /// Consumer-group rebalance events (label `kind` = assigned | revoked | lost | error).
    counter REBALANCES_TOTAL = "inlet_kafka_rebalances_total";
    /// Partitions currently assigned to this process's group member.
    gauge ASSIGNED_PARTITIONS = "inlet_kafka_assigned_partitions";
    /// Offsets committed to Kafka after the warehouse commit (label `outcome` = ok | error).
    counter OFFSET_COMMITS_TOTAL = "inlet_kafka_offset_commits_total";
}
