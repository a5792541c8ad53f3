//! The group worker: reads the shards that the stream's own consumer group assigns it (Kafka)
//! instead of balancing leases with the other workers.
//!
//! Leases still fence the commits. On assignment the worker takes each shard's lease even
//! if another worker holds it (the group has moved the shard here; a holder the group
//! dropped is a zombie) and answers with the lease's checkpoint, where reading resumes
//! (without one, the configured [`crate::InitialPosition`]). On revocation it stops the
//! shard's task, which commits what it has, and releases the lease before the group hands the
//! shard on. A zombie's late commit fails on the bumped counter.
use crate::config::WorkerConfig;
use crate::events::{LeaseEvent, LostAt, ReleaseReason, TakenHow};
use crate::metrics as m;
use crate::shard_task::{Exit, Shared};
use crate::stats::ConsumerStats;
use crate::worker::{Running, WorkerError, now_ms, release, renew_all, stop_all};
use inlet_seams::{
    GroupEvent, GroupMember, HashKeyRange, Lease, LeaseStore, LeaseToken, Positions, ShardId, Warehouse,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Attempts at taking one lease whose counter keeps moving under us.
const TAKE_ATTEMPTS: u32 = 10;

/// A consumer worker that is a member of the stream's consumer group.
#[derive(Debug)]
pub struct GroupWorker {
    shared: Arc<Shared>,
    leases: Arc<dyn LeaseStore>,
    member: Arc<dyn GroupMember>,
}

impl GroupWorker {
    /// A worker for `member`, with a lease store and a warehouse in one database.
    pub fn new(
        member: Arc<dyn GroupMember>,
        leases: Arc<dyn LeaseStore>,
        warehouse: Arc<dyn Warehouse>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                stream: member.reader(),
                committer: crate::committer::Committer::start(warehouse.clone()),
                warehouse,
                config,
                stats: Arc::new(ConsumerStats::default()),
            }),
            leases,
            member,
        }
    }

    /// Committed counts, for progress reports.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Runs until `shutdown` (or until the member leaves the group); then stops every shard
    /// task (each commits what it has), releases the leases and leaves the group.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let me = self.shared.config.worker_id.clone();
        let mut running: BTreeMap<ShardId, Running> = BTreeMap::new();
        let mut ranges: BTreeMap<ShardId, HashKeyRange> = BTreeMap::new();
        // What the group says is ours: the authority a lost lease is checked against.
        let mut assigned: BTreeSet<ShardId> = BTreeSet::new();
        let mut tick = tokio::time::interval(self.shared.config.renew_interval);
        tracing::info!(worker = %me, "group worker started");
        let compactor = crate::compactor::Compactor::start(Arc::clone(&self.shared.warehouse), &self.shared.config);
        let result = loop {
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                event = self.member.next_event() => match event {
                    None => break Ok(()),
                    Some(GroupEvent::Assigned { shards, reply }) => {
                        assigned.extend(shards.iter().cloned());
                        match self.take_all(&shards, &mut ranges).await {
                            Ok(taken) => {
                                let positions: Positions = Ok(taken
                                    .iter()
                                    .map(|(t, l)| {
                                        // As the shard task decides (`initial_position::start_of`): the
                                        // parents it looks up are the shards just listed.
                                        let initial = self.shared.config.initial_position;
                                        (t.shard.clone(), initial.start_of(l, |p| ranges.contains_key(p)))
                                    })
                                    .collect());
                                reply.send(positions);
                                for (token, lease) in taken {
                                    let range = ranges.get(&token.shard).copied();
                                    running.insert(token.shard.clone(), Running::start(&self.shared, token, lease, range));
                                }
                            }
                            Err(e) => {
                                reply.send(Err(e.to_string()));
                                break Err(e);
                            }
                        }
                    }
                    Some(GroupEvent::Revoked { shards, lost, done }) => {
                        for s in &shards {
                            assigned.remove(s);
                        }
                        let stopping: Vec<(ShardId, Running)> =
                            shards.iter().filter_map(|s| running.remove_entry(s)).collect();
                        tracing::info!(worker = %me, ?shards, lost, "shards revoked by the group");
                        stop_all(&*self.leases, stopping, if lost { ReleaseReason::Lost } else { ReleaseReason::Revoked }).await;
                        done.done();
                    }
                },
                _ = tick.tick() => {
                    match self.tend(&mut running, &assigned, &mut ranges).await {
                        // Settled: every shard the group assigns here is being read.
                        Ok(()) => self.shared.stats.round_ok(
                            crate::worker::now_ms(),
                            running.len(),
                            assigned.iter().all(|s| running.contains_key(s)),
                        ),
                        Err(e) => tracing::warn!(worker = %me, error = %e, "lease round failed; retrying"),
                    }
                }
            }
            metrics::gauge!(m::LEASES_HELD).set(running.len() as f64);
        };
        stop_all(&*self.leases, std::mem::take(&mut running), ReleaseReason::Shutdown).await;
        self.member.leave().await;
        if let Some(c) = compactor {
            c.stop().await;
        }
        tracing::info!(worker = %me, "group worker stopped");
        result
    }

    /// Takes the leases of newly assigned shards; each with the lease as it is right after
    /// the take (its checkpoint final: nobody else can commit any more).
    async fn take_all(
        &self,
        shards: &[ShardId],
        ranges: &mut BTreeMap<ShardId, HashKeyRange>,
    ) -> Result<Vec<(LeaseToken, Lease)>, WorkerError> {
        if shards.is_empty() {
            return Ok(Vec::new());
        }
        let cfg = &self.shared.config;
        if shards.iter().any(|s| !ranges.contains_key(s)) {
            let listed = self.shared.stream.list_shards().await?;
            self.leases.ensure_leases(&listed).await?;
            *ranges = listed.iter().map(|s| (s.id.clone(), s.hash_range)).collect();
        }
        let mut tokens = Vec::with_capacity(shards.len());
        for shard in shards {
            let mut token = None;
            for _ in 0..TAKE_ATTEMPTS {
                let leases = self.leases.list().await?;
                let Some(lease) = leases.iter().find(|l| &l.shard == shard) else {
                    break;
                };
                let held_by = lease.owner.clone().filter(|_| lease.expires_at_ms > now_ms());
                let expires = now_ms() + cfg.failover.as_millis() as i64;
                if let Some(t) = self.leases.take(shard, lease.counter, &cfg.worker_id, expires).await? {
                    let how = if held_by.is_some() {
                        TakenHow::Stolen
                    } else {
                        TakenHow::Free
                    };
                    tracing::debug!(shard = %shard, previous = ?held_by, "taking the lease of an assigned shard");
                    LeaseEvent::Taken { token: &t, how }.emit();
                    token = Some(t);
                    break;
                }
            }
            match token {
                Some(t) => tokens.push(t),
                None => {
                    tracing::error!(shard = %shard, "could not take the lease of an assigned shard; it is not read")
                }
            }
        }
        let leases = self.leases.list().await?;
        Ok(tokens
            .into_iter()
            .filter_map(|t| {
                let lease = leases
                    .iter()
                    .find(|l| l.shard == t.shard && l.counter == t.counter)?
                    .clone();
                Some((t, lease))
            })
            .collect())
    }

    /// Renews the leases held and restarts shard tasks that failed (from their last commit).
    /// A lease lost for a shard the group still assigns here is taken back: another member
    /// took it on an assignment the group has since moved on from (its rebalance callback ran
    /// late), and that member gives it up once it learns, so without the take-back nobody
    /// would read the shard.
    async fn tend(
        &self,
        running: &mut BTreeMap<ShardId, Running>,
        assigned: &BTreeSet<ShardId>,
        ranges: &mut BTreeMap<ShardId, HashKeyRange>,
    ) -> Result<(), WorkerError> {
        let mut take_back = Vec::new();
        let ended: Vec<ShardId> = running
            .iter()
            .filter(|(_, r)| r.task.is_finished())
            .map(|(s, _)| s.clone())
            .collect();
        for shard in ended {
            let Some(r) = running.remove(&shard) else { continue };
            match r.task.await {
                Ok(Exit::LeaseLost) => {
                    LeaseEvent::Lost {
                        token: &r.token,
                        at: LostAt::Commit,
                    }
                    .emit();
                    take_back.push(shard);
                }
                outcome => {
                    match outcome {
                        Ok(Exit::Failed(e)) => {
                            tracing::warn!(shard = %shard, error = %e, "shard task failed; restarting from its last commit");
                            self.shared.stats.shard_failed(&shard, &e);
                            crate::worker::report_failure(&*self.leases, &r.token, &e).await;
                        }
                        Err(e) => {
                            tracing::error!(shard = %shard, error = %e, "shard task panicked; restarting from its last commit")
                        }
                        Ok(_) => tracing::info!(shard = %shard, "shard task ended; restarting it"),
                    }
                    let leases = self.leases.list().await?;
                    match leases
                        .into_iter()
                        .find(|l| l.shard == shard && l.counter == r.token.counter)
                    {
                        Some(lease) => {
                            let range = ranges.get(&shard).copied();
                            running.insert(shard, Running::start(&self.shared, r.token, lease, range));
                        }
                        None => {
                            release(&*self.leases, &r.token, ReleaseReason::Failed).await?;
                        }
                    }
                }
            }
        }
        let expires = now_ms() + self.shared.config.failover.as_millis() as i64;
        for shard in renew_all(&*self.leases, running, expires).await? {
            if let Some(r) = running.remove(&shard) {
                LeaseEvent::Lost {
                    token: &r.token,
                    at: LostAt::Renewal,
                }
                .emit();
                r.cancel.cancel();
                // Its reader must be done with the partition's queue before another opens it.
                let _ = r.task.await;
                take_back.push(shard);
            }
        }
        take_back.retain(|s| assigned.contains(s));
        for (token, lease) in self.take_all(&take_back, ranges).await? {
            tracing::info!(shard = %token.shard, counter = token.counter, "lease taken back: the group still assigns the shard here");
            let range = ranges.get(&token.shard).copied();
            running.insert(token.shard.clone(), Running::start(&self.shared, token, lease, range));
        }
        Ok(())
    }
}
