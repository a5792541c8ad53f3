//! Compaction as the worker goes: every `compact_every`, the warehouse's final minutes folded
//! into one row per minute and key ([`inlet_seams::Warehouse::compact`]), so per-shard rows
//! stay bounded by the open windows plus `compact_keep`. Every worker may run it; the
//! warehouse serializes them, and one that finds nothing to fold costs a read of the leases.
use crate::config::WorkerConfig;
use crate::metrics as m;
use inlet_seams::Warehouse;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The running loop of one worker.
#[derive(Debug)]
pub struct Compactor {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Compactor {
    /// Starts the loop if `config` asks for one.
    pub fn start(warehouse: Arc<dyn Warehouse>, config: &WorkerConfig) -> Option<Self> {
        let every = config.compact_every?;
        let keep_minutes = i64::try_from(config.compact_keep.as_secs() / 60).unwrap_or(i64::MAX);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(warehouse, every, keep_minutes, stop.clone()));
        Some(Self { stop, task })
    }

    /// Stops the loop; a compaction under way finishes first (a step is one transaction, so
    /// stopping mid-way would only waste it).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn run(warehouse: Arc<dyn Warehouse>, every: Duration, keep_minutes: i64, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match warehouse.compact(keep_minutes).await {
            Ok(done) => {
                metrics::counter!(m::COMPACTIONS_TOTAL, "outcome" => "ok").increment(1);
                metrics::counter!(m::ROWS_FOLDED_TOTAL).increment(done.partials);
                if done.partials > 0 {
                    tracing::debug!(partials = done.partials, folded = done.folded, "final minutes folded");
                }
            }
            // The next round tries again; nothing is lost meanwhile (rows stay per shard).
            Err(e) => {
                metrics::counter!(m::COMPACTIONS_TOTAL, "outcome" => "error").increment(1);
                tracing::warn!(error = %inlet_seams::error_chain(&e), "compaction failed; trying again next round");
            }
        }
    }
}
