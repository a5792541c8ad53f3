//! One shard's loop: restore its state from the last commit, read, process, commit.
use crate::config::WorkerConfig;
use crate::initial_position;
use crate::metrics as m;
use crate::processor::RecordProcessor;
use crate::stats::ConsumerStats;
use inlet_rollup::{Dedupe, ShardRollup};
use inlet_seams::ShardArchive;
use inlet_seams::error_chain;
use inlet_seams::{
    DeadLetterKind, HashKeyRange, Lease, LeaseToken, ShardReader, StartPosition, StreamError, StreamReader, Warehouse,
    WarehouseError,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a worker's shard tasks share.
#[derive(Debug)]
pub struct Shared {
    /// The stream.
    pub stream: Arc<dyn StreamReader>,
    /// The warehouse.
    pub warehouse: Arc<dyn Warehouse>,
    /// Commits go through it, grouped with the other shards' (see [`crate::committer`]).
    pub committer: crate::committer::Committer,
    /// Settings.
    pub config: WorkerConfig,
    /// Committed counts.
    pub stats: Arc<ConsumerStats>,
}

/// Why a shard task ended.
#[derive(Debug)]
pub enum Exit {
    /// Asked to stop; everything processed was committed.
    Stopped,
    /// The lease was taken by another worker; uncommitted work was dropped (the new owner
    /// redoes it from the last commit).
    LeaseLost,
    /// The shard was read to its end and committed as finished.
    ShardEnd,
    /// A failure; nothing uncommitted was kept. The worker restarts the shard from its last
    /// commit.
    Failed(String),
}

/// Runs one shard until it is stopped, lost, ended or fails. `hash_range` is the shard's
/// range from the stream's listing, when known: user records of aggregates outside it are
/// counted (and processed all the same).
pub async fn run(
    shared: Arc<Shared>,
    token: LeaseToken,
    lease: Lease,
    hash_range: Option<HashKeyRange>,
    cancel: CancellationToken,
) -> Exit {
    match run_inner(&shared, &token, lease, hash_range, &cancel).await {
        Ok(exit) => exit,
        Err(Failure::LeaseLost) => Exit::LeaseLost,
        Err(Failure::Other(e)) => Exit::Failed(e),
    }
}

enum Failure {
    LeaseLost,
    Other(String),
}

impl From<WarehouseError> for Failure {
    fn from(e: WarehouseError) -> Self {
        match e {
            WarehouseError::LeaseLost { .. } => Failure::LeaseLost,
            e => Failure::Other(error_chain(&e)),
        }
    }
}

impl From<StreamError> for Failure {
    fn from(e: StreamError) -> Self {
        Failure::Other(error_chain(&e))
    }
}

async fn run_inner(
    shared: &Shared,
    token: &LeaseToken,
    lease: Lease,
    hash_range: Option<HashKeyRange>,
    cancel: &CancellationToken,
) -> Result<Exit, Failure> {
    let cfg = &shared.config;
    let shard = token.shard.clone();
    let shard_label = shard.0.clone();
    let from_minute = cfg.lateness.first_open_minute(lease.watermark_ms);
    let (viewing, games) = shared.warehouse.shard_partials(&shard, from_minute).await?;
    let rollup = ShardRollup::restore(cfg.lateness, lease.watermark_ms, viewing, games);
    let dedupe = restore_dedupe(shared, &lease).await?;
    let start = initial_position::start_of(cfg.initial_position, &lease, &*shared.stream).await?;
    // Before its first checkpoint a shard opened at LATEST would reopen at a newer latest,
    // skipping what came in between: commit as soon as something is read.
    let mut commit_first_read = start == StartPosition::Latest;
    tracing::info!(shard = %shard, checkpoint = ?lease.checkpoint, ?start, counter = token.counter, "shard started");
    let mut processor = RecordProcessor::new(shard.clone(), rollup, lease.checkpoint, cfg.limits, cfg.lateness)
        .with_hash_range(hash_range)
        .with_dedupe(Some(dedupe));
    let mut archive = match &cfg.archive {
        Some(a) => Some(
            a.open_shard(&shard)
                .map_err(|e| Failure::Other(format!("opening the archive: {e}")))?,
        ),
        None => None,
    };
    let mut reader = shared.stream.open(&shard, start).await?;
    let mut last_commit = Instant::now();
    let mut read_failures = 0u32;
    // Halved after a read that keeps failing, so every record before one that cannot be read
    // is processed and committed: the checkpoint then stands right before it, where
    // `inlet shard skip` finds it.
    let mut batch_size = cfg.read_batch.max(1);
    loop {
        let batch = tokio::select! {
            () = cancel.cancelled() => break,
            batch = reader.next_batch(batch_size) => batch,
        };
        let batch = match batch {
            Ok(b) => {
                read_failures = 0;
                batch_size = (batch_size * 2).min(cfg.read_batch.max(1));
                b
            }
            Err(e) if e.is_retryable() && read_failures < 10 => {
                read_failures += 1;
                tracing::warn!(shard = %shard, error = %error_chain(&e), "read failed; retrying");
                pause(cancel, Duration::from_millis(100 << read_failures.min(6))).await;
                continue;
            }
            Err(e) if batch_size > 1 => {
                batch_size /= 2;
                tracing::debug!(shard = %shard, error = %error_chain(&e), batch_size, "read failed; reading less at a time");
                continue;
            }
            Err(e) => {
                // What was read before the record that fails is kept.
                commit(shared, token, &mut processor, &mut archive, &mut *reader, false).await?;
                return Err(e.into());
            }
        };
        if let Some(ms) = batch.millis_behind_latest {
            metrics::gauge!(m::MILLIS_BEHIND_LATEST, "shard" => shard_label.clone()).set(ms as f64);
            shared.stats.lag(u64::try_from(ms).unwrap_or(0));
        }
        let (before, outside_before) = (processor.pending(), processor.outside_range());
        for record in &batch.records {
            if let Some(a) = archive.as_mut() {
                a.append(record, processor.rollup().watermark_ms())
                    .map_err(|e| Failure::Other(format!("archiving a record: {e}")))?;
            }
            processor.process(record);
        }
        metrics::counter!(m::READ_TOTAL, "shard" => shard_label.clone()).increment(processor.pending() - before);
        let outside = processor.outside_range() - outside_before;
        if outside > 0 {
            metrics::counter!(m::RECORDS_OUTSIDE_SHARD_RANGE_TOTAL, "shard" => shard_label.clone()).increment(outside);
        }
        if let Some(_children) = &batch.shard_end {
            commit(shared, token, &mut processor, &mut archive, &mut *reader, true).await?;
            tracing::info!(shard = %shard, "shard finished");
            return Ok(Exit::ShardEnd);
        }
        if processor.pending() >= cfg.commit_every_records
            || (processor.has_pending() && (commit_first_read || last_commit.elapsed() >= cfg.commit_interval))
        {
            commit(shared, token, &mut processor, &mut archive, &mut *reader, false).await?;
            last_commit = Instant::now();
            commit_first_read = false;
        }
        if batch.records.is_empty() {
            pause(cancel, cfg.idle_wait).await;
        }
    }
    commit(shared, token, &mut processor, &mut archive, &mut *reader, false).await?;
    tracing::info!(shard = %shard, "shard stopped");
    Ok(Exit::Stopped)
}

/// The shard's remembered event ids as of its last commit. A shard that has not started
/// yet (no checkpoint) also takes its parents' ids: a copy of an event its parent counted
/// is still a duplicate here. Its parents are finished (a lease is only taken then) and their
/// ids stay stored until this shard has started, so they are all there.
async fn restore_dedupe(shared: &Shared, lease: &Lease) -> Result<Dedupe, Failure> {
    let horizon = shared.config.horizon();
    let first = horizon.first_minute(lease.watermark_ms);
    let own = shared.warehouse.shard_seen(&lease.shard, first).await?;
    let mut inherited = Vec::new();
    if !lease.has_started() {
        for parent in &lease.parents {
            inherited.extend(shared.warehouse.shard_seen(parent, first).await?.ids);
        }
    }
    let dedupe = Dedupe::restore(horizon, lease.watermark_ms, own.ids, inherited, own.duplicates);
    tracing::debug!(shard = %lease.shard, ids = dedupe.remembered(), "dedupe state restored");
    Ok(dedupe)
}

async fn pause(cancel: &CancellationToken, d: Duration) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(d) => {}
    }
}

async fn commit(
    shared: &Shared,
    token: &LeaseToken,
    processor: &mut RecordProcessor,
    archive: &mut Option<Box<dyn ShardArchive>>,
    reader: &mut dyn ShardReader,
    shard_end: bool,
) -> Result<(), Failure> {
    let Some((commit, counts)) = processor.take_commit(token, shard_end) else {
        return Ok(());
    };
    // The archive invariant: the records this checkpoint moves past are durable there first.
    if let Some(mut a) = archive.take() {
        let (a, synced) = tokio::task::spawn_blocking(move || {
            let r = a.sync();
            (a, r)
        })
        .await
        .map_err(|e| Failure::Other(format!("archive sync task: {e}")))?;
        synced.map_err(|e| Failure::Other(format!("syncing the archive: {e}")))?;
        *archive = Some(a);
    }
    let started = Instant::now();
    let result = shared.committer.commit(commit).await;
    metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    match result {
        Ok(commit) => {
            metrics::counter!(m::COMMITS_TOTAL, "outcome" => "ok").increment(1);
            metrics::counter!(m::AGGREGATED_TOTAL).increment(counts.aggregated);
            for (kind, n) in DeadLetterKind::ALL.iter().zip(counts.dead) {
                if n > 0 {
                    metrics::counter!(m::DEAD_LETTERED_TOTAL, "kind" => kind.as_str()).increment(n);
                }
            }
            if counts.duplicates > 0 {
                metrics::counter!(m::DUPLICATES_TOTAL).increment(counts.duplicates);
            }
            shared.stats.add_commit(&counts);
            shared.stats.shard_committed(&token.shard);
            tracing::debug!(
                shard = %token.shard,
                aggregated = counts.aggregated,
                duplicates = counts.duplicates,
                checkpoint = ?commit.checkpoint,
                took_ms = started.elapsed().as_millis() as u64,
                "committed"
            );
            if let Some(c) = &commit.checkpoint {
                reader.committed(c).await;
            }
            processor.committed(&commit);
            if let Some(d) = processor.dedupe() {
                metrics::gauge!(m::DEDUPE_IDS, "shard" => token.shard.0.clone()).set(d.remembered() as f64);
            }
            Ok(())
        }
        Err(e) => {
            if matches!(e, WarehouseError::LeaseLost { .. }) {
                // Routine after a steal or a pause: the new owner redoes this work.
                metrics::counter!(m::COMMITS_TOTAL, "outcome" => "lease_lost").increment(1);
                tracing::info!(shard = %token.shard, counter = token.counter, "commit fenced off: lease lost");
            } else {
                metrics::counter!(m::COMMITS_TOTAL, "outcome" => "error").increment(1);
                tracing::warn!(shard = %token.shard, counter = token.counter, error = %error_chain(&e), "commit failed");
            }
            Err(e.into())
        }
    }
}
