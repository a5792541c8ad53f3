//! Worker settings.
use crate::initial_position::InitialPosition;
use inlet_rollup::Lateness;
use inlet_schemas::validate::Limits;
use inlet_seams::Archive;
use std::sync::Arc;
use std::time::Duration;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's name in the lease table (unique per process).
    pub worker_id: String,
    /// A lease not renewed for this long may be taken by another worker (KCL's failover
    /// time; 10 s).
    pub failover: Duration,
    /// How often leases are renewed and balanced (a third of `failover` by default).
    pub renew_interval: Duration,
    /// How often the shard list is refreshed into the lease table.
    pub shard_sync_interval: Duration,
    /// Most leases this worker holds.
    pub max_leases: usize,
    /// Commit after this many user records...
    pub commit_every_records: u64,
    /// ... or this long after the last commit, whichever comes first.
    pub commit_interval: Duration,
    /// Most stream records per read.
    pub read_batch: usize,
    /// Pause after a read that found nothing new.
    pub idle_wait: Duration,
    /// Allowed lateness behind a shard's watermark.
    pub lateness: Lateness,
    /// How much longer than the lateness (in event time behind the watermark) event ids are
    /// remembered, so a copy that arrives that late is still called a duplicate rather than
    /// late. Copies that could be aggregated are always recognised, whatever this is.
    pub dedupe_retry_window: Duration,
    /// Event time limits of validation.
    pub limits: Limits,
    /// Where every raw record read is archived (durably before each commit), if anywhere.
    pub archive: Option<Arc<dyn Archive>>,
    /// How often this worker folds the warehouse's final minutes (see [`crate::compactor`]);
    /// `None`: never (another worker or `inlet warehouse compact` does it).
    pub compact_every: Option<Duration>,
    /// How many final minutes each shard keeps unfolded behind its open ones (event time):
    /// a `replay rebuild` can replace those only, since folded minutes have no rows per shard.
    pub compact_keep: Duration,
    /// Where a shard without a checkpoint starts (children of resharded shards excepted: see
    /// [`InitialPosition`]). The trim horizon by default.
    pub initial_position: InitialPosition,
}

impl WorkerConfig {
    /// Defaults for a worker named `worker_id`.
    pub fn new(worker_id: impl Into<String>) -> Self {
        let failover = Duration::from_secs(10);
        Self {
            worker_id: worker_id.into(),
            failover,
            renew_interval: failover / 3,
            shard_sync_interval: Duration::from_secs(60),
            max_leases: usize::MAX,
            commit_every_records: 50_000,
            commit_interval: Duration::from_secs(1),
            read_batch: 1_000,
            idle_wait: Duration::from_millis(200),
            lateness: Lateness::default(),
            dedupe_retry_window: Duration::from_millis(inlet_rollup::dedupe::DEFAULT_RETRY_WINDOW_MS as u64),
            limits: Limits::default(),
            archive: None,
            compact_every: Some(Duration::from_secs(60)),
            compact_keep: Duration::from_secs(3600),
            initial_position: InitialPosition::TrimHorizon,
        }
    }

    /// Archiving every raw record read to `archive`.
    pub fn with_archive(mut self, archive: Arc<dyn Archive>) -> Self {
        self.archive = Some(archive);
        self
    }

    /// The dedupe horizon: the allowed lateness plus the retry window.
    pub fn horizon(&self) -> inlet_rollup::Horizon {
        inlet_rollup::Horizon {
            lateness: self.lateness,
            retry_window_ms: i64::try_from(self.dedupe_retry_window.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// With `failover` (and the renew interval a third of it).
    pub fn with_failover(mut self, failover: Duration) -> Self {
        self.failover = failover;
        self.renew_interval = failover / 3;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker's default horizon is the one the expectations of tests and `inlet verify`
    /// assume.
    #[test]
    fn the_default_horizon_is_the_rollup_crates() {
        assert_eq!(WorkerConfig::new("w").horizon(), inlet_rollup::Horizon::default());
    }
}
