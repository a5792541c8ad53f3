//! Metric names of the replay tool (emitted per batch read, from [`crate::progress::Counters`]).

inlet_metric_catalog::catalog! {
    /// Stream records read by a replay (from the stream or the archive).
    counter RECORDS_READ_TOTAL = "inlet_replay_records_read_total";
    /// Events that passed the filters and were replayed, printed or rebuilt.
    counter EVENTS_REPLAYED_TOTAL = "inlet_replay_events_replayed_total";
    /// Shards of the replay whose reading is finished.
    gauge SHARDS_DONE = "inlet_replay_shards_done";
}
