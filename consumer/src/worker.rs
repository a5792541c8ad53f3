//! The worker: holds a fair share of leases, renews them, and runs one task per shard.
use crate::balance;
use crate::config::WorkerConfig;
use crate::events::{LeaseEvent, LostAt, ReleaseReason, TakenHow};
use crate::metrics as m;
use crate::shard_task::{self, Exit, Shared};
use crate::stats::ConsumerStats;
use inlet_seams::{
    HashKeyRange, Lease, LeaseError, LeaseStore, LeaseToken, ShardId, StreamError, StreamReader, Warehouse,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A worker's error: only what it cannot ride out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The lease store kept failing.
    #[error("lease store failed")]
    Leases(#[from] LeaseError),
    /// The stream's shards could not be listed.
    #[error("listing shards failed")]
    Stream(#[from] StreamError),
}

/// A running shard task.
pub(crate) struct Running {
    pub(crate) token: LeaseToken,
    pub(crate) cancel: CancellationToken,
    pub(crate) task: JoinHandle<Exit>,
}

impl Running {
    /// Starts `lease`'s shard task, held with `token`.
    pub(crate) fn start(shared: &Arc<Shared>, token: LeaseToken, lease: Lease, range: Option<HashKeyRange>) -> Self {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(shard_task::run(
            Arc::clone(shared),
            token.clone(),
            lease,
            range,
            cancel.clone(),
        ));
        Running { token, cancel, task }
    }
}

/// What a worker's rounds carry over.
#[derive(Default)]
struct State {
    running: BTreeMap<ShardId, Running>,
    /// When the shards were last listed into the lease table (`None`: list at the next round).
    last_sync: Option<Instant>,
    /// Each shard's hash-key range, from the last listing.
    ranges: BTreeMap<ShardId, HashKeyRange>,
}

/// A consumer worker.
#[derive(Debug)]
pub struct Worker {
    shared: Arc<Shared>,
    leases: Arc<dyn LeaseStore>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Worker {
    /// A worker over a stream, a lease store and a warehouse (the last two sharing one
    /// database).
    pub fn new(
        stream: Arc<dyn StreamReader>,
        leases: Arc<dyn LeaseStore>,
        warehouse: Arc<dyn Warehouse>,
        config: WorkerConfig,
    ) -> Self {
        let stats = Arc::new(ConsumerStats::default());
        Self {
            shared: Arc::new(Shared {
                stream,
                committer: crate::committer::Committer::start(warehouse.clone()),
                warehouse,
                config,
                stats,
            }),
            leases,
        }
    }

    /// Committed counts, for progress reports.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Runs until `shutdown`; then stops every shard task (each commits what it has) and
    /// releases the leases so other workers take them at once.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let cfg = &self.shared.config;
        let me = cfg.worker_id.clone();
        let mut state = State::default();
        let mut store_failures = 0u32;
        tracing::info!(worker = %me, "worker started");
        let compactor = crate::compactor::Compactor::start(Arc::clone(&self.shared.warehouse), cfg);
        // A series a dashboard charts from the start, before any lease is lost.
        metrics::counter!(m::LEASES_LOST_TOTAL).increment(0);
        metrics::gauge!(m::SHARDS_FAILING).set(0.0);
        loop {
            match self.round(&mut state).await {
                Ok(settled) => {
                    store_failures = 0;
                    self.shared.stats.round_ok(now_ms(), state.running.len(), settled);
                }
                // Ride out a flaky store for a while: held leases stay valid until they expire,
                // and commits are fenced anyway.
                Err(e) if store_failures < 5 => {
                    store_failures += 1;
                    tracing::warn!(worker = %me, error = %e, "lease round failed; retrying");
                }
                Err(e) => {
                    stop_all(
                        &*self.leases,
                        std::mem::take(&mut state.running),
                        ReleaseReason::Shutdown,
                    )
                    .await;
                    if let Some(c) = compactor {
                        c.stop().await;
                    }
                    return Err(e);
                }
            }
            metrics::gauge!(m::LEASES_HELD).set(state.running.len() as f64);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(cfg.renew_interval) => {}
            }
        }
        stop_all(
            &*self.leases,
            std::mem::take(&mut state.running),
            ReleaseReason::Shutdown,
        )
        .await;
        if let Some(c) = compactor {
            c.stop().await;
        }
        tracing::info!(worker = %me, "worker stopped");
        Ok(())
    }

    /// One lease round: reap, sync, renew, take. `true` when the plan had nothing for this
    /// worker to take (its share is held).
    async fn round(&self, state: &mut State) -> Result<bool, WorkerError> {
        let cfg = &self.shared.config;
        // Reap ended tasks.
        let ended: Vec<ShardId> = state
            .running
            .iter()
            .filter(|(_, r)| r.task.is_finished())
            .map(|(s, _)| s.clone())
            .collect();
        for shard in ended {
            if let Some(r) = state.running.remove(&shard) {
                let reason = match r.task.await {
                    Ok(Exit::Failed(e)) => {
                        tracing::warn!(shard = %shard, error = %e, "shard task failed; restarting from its last commit");
                        self.shared.stats.shard_failed(&shard, &e);
                        report_failure(&*self.leases, &r.token, &e).await;
                        ReleaseReason::Failed
                    }
                    Ok(Exit::LeaseLost) => {
                        LeaseEvent::Lost {
                            token: &r.token,
                            at: LostAt::Commit,
                        }
                        .emit();
                        continue;
                    }
                    Ok(Exit::ShardEnd) => {
                        // List the shards now, not at the next sync: the children's leases
                        // appear (and are taken) at once.
                        state.last_sync = None;
                        ReleaseReason::ShardEnd
                    }
                    Ok(Exit::Stopped) => ReleaseReason::Stopped,
                    Err(e) => {
                        tracing::error!(shard = %shard, error = %e, "shard task panicked");
                        ReleaseReason::Failed
                    }
                };
                // Give the lease back so a restart (here or elsewhere) resumes at once.
                release(&*self.leases, &r.token, reason).await?;
            }
        }
        if state.last_sync.is_none_or(|t| t.elapsed() >= cfg.shard_sync_interval) {
            self.sync(state).await?;
        }
        // Renew what we hold; drop what we lost.
        let expires = now_ms() + cfg.failover.as_millis() as i64;
        for shard in renew_all(&*self.leases, &state.running, expires).await? {
            if let Some(r) = state.running.remove(&shard) {
                LeaseEvent::Lost {
                    token: &r.token,
                    at: LostAt::Renewal,
                }
                .emit();
                r.cancel.cancel();
            }
        }
        // Take our share.
        let leases = self.leases.list().await?;
        let now = now_ms();
        let expires = now + cfg.failover.as_millis() as i64;
        let mut taken = Vec::new();
        let plan = balance::plan(&leases, &cfg.worker_id, now, cfg.max_leases);
        let settled = plan.iter().all(|take| state.running.contains_key(&take.shard));
        for take in plan {
            if state.running.contains_key(&take.shard) {
                continue;
            }
            let Some(token) = self
                .leases
                .take(&take.shard, take.seen_counter, &cfg.worker_id, expires)
                .await?
            else {
                tracing::debug!(shard = %take.shard, seen_counter = take.seen_counter, "lease moved before our take");
                continue;
            };
            let held_before = leases.iter().any(|l| l.shard == take.shard && l.owner.is_some());
            let how = match (take.steal, held_before) {
                (true, _) => TakenHow::Stolen,
                (false, true) => TakenHow::Expired,
                (false, false) => TakenHow::Free,
            };
            LeaseEvent::Taken { token: &token, how }.emit();
            taken.push(token);
        }
        if taken.is_empty() {
            return Ok(settled);
        }
        // A shard listed after our last sync (a child whose lease another worker made): list
        // again for its hash-key range. Without it the shard is read unchecked.
        if taken.iter().any(|t| !state.ranges.contains_key(&t.shard)) {
            match self.shared.stream.list_shards().await {
                Ok(shards) => state.ranges = shards.iter().map(|s| (s.id.clone(), s.hash_range)).collect(),
                Err(e) => tracing::warn!(error = %e, "listing shards for their hash key ranges failed"),
            }
        }
        // Read checkpoints again now that we hold the leases: the previous owner may have
        // committed between the listing above and our take, and from now on nobody else can.
        let leases = self.leases.list().await?;
        for token in taken {
            let Some(lease) = leases
                .iter()
                .find(|l| l.shard == token.shard && l.counter == token.counter)
                .cloned()
            else {
                continue; // taken from us again already
            };
            let range = state.ranges.get(&token.shard).copied();
            let lease = inlet_seams::lease::inherit_watermark(lease, &leases);
            state
                .running
                .insert(token.shard.clone(), Running::start(&self.shared, token, lease, range));
        }
        Ok(settled)
    }

    /// Lists the shards into the lease table, then deletes the leases of finished shards
    /// whose children have all started (see `inlet_seams::lease`).
    async fn sync(&self, state: &mut State) -> Result<(), WorkerError> {
        let shards = self.shared.stream.list_shards().await?;
        self.leases.ensure_leases(&shards).await?;
        state.ranges = shards.iter().map(|s| (s.id.clone(), s.hash_range)).collect();
        state.last_sync = Some(Instant::now());
        let leases = self.leases.list().await?;
        for shard in balance::cleanable(&leases, now_ms()) {
            // Not worth failing the round over: the next sync tries again.
            match self.leases.delete_finished(&shard, now_ms()).await {
                Ok(true) => {
                    LeaseEvent::CleanedUp { shard: &shard }.emit();
                }
                Ok(false) => {
                    tracing::debug!(shard = %shard, "lease not cleaned up: another worker did, or it changed")
                }
                Err(e) => tracing::warn!(shard = %shard, error = %e, "cleaning up a finished lease failed"),
            }
        }
        Ok(())
    }
}

/// Records a shard task's failure where operators look (`/api/health`, the dashboard), while
/// `token` still holds the lease. Not reaching the store is only logged: the worker's own
/// readiness still says it, and the next lease round finds the store's state.
pub(crate) async fn report_failure(leases: &dyn LeaseStore, token: &LeaseToken, error: &str) {
    if let Err(e) = leases.report_failure(token, error, now_ms()).await {
        tracing::warn!(shard = %token.shard, error = %e, "recording the shard's failure failed");
    }
}

/// Renews every lease `running` holds in one call to the store; the shards whose leases
/// were lost come back.
pub(crate) async fn renew_all(
    leases: &dyn LeaseStore,
    running: &BTreeMap<ShardId, Running>,
    expires_at_ms: i64,
) -> Result<Vec<ShardId>, LeaseError> {
    let tokens: Vec<LeaseToken> = running.values().map(|r| r.token.clone()).collect();
    let renewed = leases.renew_many(&tokens, expires_at_ms).await?;
    tracing::debug!(
        held = tokens.len(),
        lost = renewed.iter().filter(|r| !**r).count(),
        "lease renewals"
    );
    Ok(tokens
        .into_iter()
        .zip(renewed)
        .filter(|(_, renewed)| !renewed)
        .map(|(t, _)| t.shard)
        .collect())
}

/// Gives a held lease back, so that a restart (here or elsewhere) resumes at once.
pub(crate) async fn release(
    leases: &dyn LeaseStore,
    token: &LeaseToken,
    reason: ReleaseReason,
) -> Result<(), LeaseError> {
    leases.release(token).await?;
    LeaseEvent::Released { token, reason }.emit();
    Ok(())
}

/// Stops shard tasks (each commits what it has) and releases their leases (`reason`).
pub(crate) async fn stop_all(
    leases: &dyn LeaseStore,
    running: impl IntoIterator<Item = (ShardId, Running)>,
    reason: ReleaseReason,
) {
    let running: Vec<(ShardId, Running)> = running.into_iter().collect();
    for (_, r) in &running {
        r.cancel.cancel();
    }
    for (shard, r) in running {
        match tokio::time::timeout(Duration::from_secs(30), r.task).await {
            Ok(Ok(Exit::LeaseLost)) => {
                LeaseEvent::Lost {
                    token: &r.token,
                    at: LostAt::Commit,
                }
                .emit();
                continue;
            }
            Ok(Ok(Exit::Failed(e))) => tracing::warn!(shard = %shard, error = %e, "shard task failed while stopping"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(shard = %shard, error = %e, "shard task panicked"),
            Err(_) => tracing::error!(shard = %shard, "shard task did not stop in 30 s"),
        }
        if let Err(e) = release(leases, &r.token, reason).await {
            tracing::warn!(shard = %shard, error = %e, "releasing lease failed; it will expire");
        }
    }
}
