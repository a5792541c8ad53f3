//! Metric names of the consumer (emitted per batch or commit, never per event).

inlet_metric_catalog::catalog! {
    /// User records read (label `shard`).
    counter READ_TOTAL = "inlet_consumer_records_read_total";
    /// Events aggregated into rollups, counted at commit.
    counter AGGREGATED_TOTAL = "inlet_consumer_events_aggregated_total";
    /// Events dead-lettered, counted at commit (label `kind`).
    counter DEAD_LETTERED_TOTAL = "inlet_consumer_events_dead_lettered_total";
    /// Copies of events already counted (same event id, same shard lineage), dropped before
    /// they touch a rollup; counted at commit.
    counter DUPLICATES_TOTAL = "inlet_consumer_events_duplicate_total";
    /// Event ids a shard task remembers for dedupe (label `shard`), set at each commit.
    gauge DEDUPE_IDS = "inlet_consumer_dedupe_ids";
    /// Commits made (label `outcome`: ok, lease_lost, error).
    counter COMMITS_TOTAL = "inlet_consumer_commits_total";
    /// Time a commit took.
    histogram(inlet_metric_catalog::SECONDS) COMMIT_SECONDS = "inlet_consumer_commit_seconds";
    /// Shard commits written together in one warehouse group (one transaction where the
    /// backend can).
    histogram(inlet_metric_catalog::COUNTS) COMMIT_GROUP_SIZE = "inlet_consumer_commit_group_size";
    /// How far behind the newest record a shard's reader is (label `shard`).
    gauge MILLIS_BEHIND_LATEST = "inlet_consumer_millis_behind_latest";
    /// Per-shard rows of final minutes folded into one row per minute and key by this
    /// worker's compactions.
    counter ROWS_FOLDED_TOTAL = "inlet_consumer_rows_folded_total";
    /// Compactions run by this worker (label `outcome`: ok, error).
    counter COMPACTIONS_TOTAL = "inlet_consumer_compactions_total";
    /// Leases held by this worker.
    gauge LEASES_HELD = "inlet_consumer_leases_held";
    /// Shards whose task failed and has not committed since (restarting from the last
    /// commit); one failing again and again cannot be read (`/readyz` names it).
    gauge SHARDS_FAILING = "inlet_consumer_shards_failing";
    /// Leases taken (label `how`: free (never held or released), expired (its holder stopped
    /// renewing), stolen (from a live worker, to balance)).
    counter LEASES_TAKEN_TOTAL = "inlet_consumer_leases_taken_total";
    /// Leases lost to another worker.
    counter LEASES_LOST_TOTAL = "inlet_consumer_leases_lost_total";
    /// Leases given back (label `reason`, [`crate::events::ReleaseReason`]: shard_end, failed
    /// (the shard task failed or panicked; restarted from its last commit), stopped (the task
    /// ended by itself), shutdown; for group workers also revoked (the group moved the shard) and
    /// lost (the group dropped this member)).
    counter LEASES_RELEASED_TOTAL = "inlet_consumer_leases_released_total";
    /// Leases of finished shards deleted once all their children started.
    counter LEASES_CLEANED_UP_TOTAL = "inlet_consumer_leases_cleaned_up_total";
    /// User records of KPL aggregates whose hash key is outside the shard's range (label
    /// `shard`). Processed all the same (the KCL drops them): the producer can put a few there
    /// when a shard splits or merges while an aggregate is in flight.
    counter RECORDS_OUTSIDE_SHARD_RANGE_TOTAL = "inlet_consumer_records_outside_shard_range_total";
}
