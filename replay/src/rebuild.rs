//! `rebuild`: recompute a range's rollups from raw records and replace them in the warehouse.
//!
//! Each shard's records are read in order through the consumer's own pure core
//! ([`RecordProcessor`]) from a state that makes every decision the live one:
//! - from the archive, at the latest segment that began with a watermark before the range,
//!   restored with that watermark (so no earlier record can reach the range, and lateness is
//!   decided against the same watermark the live worker had);
//! - from a stream, from its oldest record (exact while the stream still holds everything the
//!   live workers read), or from `--read-from` (then only as exact as that start).
//!
//! Rows are replaced only for minutes closed both for the rebuild and for the live worker
//! (before `first_open_minute` of the watermark committed in the shard's lease, read after
//! taking the lease): the live worker never writes those again, and its uncommitted work is
//! always in open minutes, so a rebuild is safe while consumers run. The write is one commit
//! of whole rows per shard, fenced by the shard's lease (taken for the commit, which fences
//! off the live holder until it retakes it and restores from the warehouse), with no
//! checkpoint or watermark (the stored ones stay). A row the rebuild no longer produces is
//! zeroed (the warehouse seam has no delete). Dead letters are not rewritten. Minutes that
//! compaction folded (before the lease's `folded_before_minute`) are left as they are: the
//! shard has no rows of its own there, and a commit that wrote one would be fenced off.
use crate::ReplayError;
use crate::progress::{Counters, ProgressFile};
use crate::source::Source;
use inlet_consumer::RecordProcessor;
use inlet_rollup::{GameAgg, GameRow, Lateness, ShardRollup, ViewingAgg, ViewingRow};
use inlet_schemas::validate::Limits;
use inlet_seams::{LeaseToken, LeasedWarehouse, ShardCommit, ShardId, StartPosition, WarehouseError};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// What to rebuild.
#[derive(Debug, Clone)]
pub struct RebuildConfig {
    /// First minute (event time, `floor(ms / 60000)`) to replace.
    pub from_minute: i64,
    /// Minute after the last one to replace.
    pub to_minute: i64,
    /// Stream only: where to start instead of the oldest record.
    pub read_from: Option<StartPosition>,
    /// The live path's lateness (must match the consumers').
    pub lateness: Lateness,
    /// The live path's validation limits.
    pub limits: Limits,
    /// Count and compute, write nothing.
    pub dry_run: bool,
    /// Name in the lease table while committing.
    pub owner: String,
}

impl RebuildConfig {
    /// The minutes `[from, to)` a rebuild of event times `[from_ms, to_ms)` replaces: every
    /// minute the range touches (rounded outward), everything when a bound is missing. A
    /// rebuild replaces whole rows, so it takes no event filter.
    pub fn minutes(
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        filter: &crate::Filter,
    ) -> Result<(i64, i64), ReplayError> {
        if filter.selects_events() {
            return Err(ReplayError::FilteredRebuild);
        }
        Ok((
            from_ms.map_or(i64::MIN / 60_000, |t| t.div_euclid(60_000)),
            to_ms.map_or(i64::MAX / 60_000, |t| (t + 59_999).div_euclid(60_000)),
        ))
    }
}

/// What a rebuild of one shard did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardRebuilt {
    /// The shard.
    pub shard: String,
    /// Stream records read.
    pub records: u64,
    /// Rows written (viewing + games), zeroed ones included.
    pub rows: usize,
    /// Rows zeroed (stored, but not produced by the rebuild).
    pub zeroed: usize,
    /// Minutes were replaced from this one: above `from_minute` where compaction had folded
    /// the shard's earlier minutes (they have no rows of their own to replace).
    pub replaced_from_minute: i64,
    /// Minutes were replaced up to (not including) this one; below `to_minute` when the
    /// range's end is still open.
    pub replaced_to_minute: i64,
    /// The start made every decision the live one (see the module doc).
    pub exact_start: bool,
    /// Skipped: finished by an earlier, interrupted run.
    pub resumed: bool,
}

type Rows = (BTreeMap<(i64, String), ViewingAgg>, BTreeMap<(i64, String), GameAgg>);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Rebuilds every shard of `source` in turn, recording finished shards in `progress`.
/// Stops (with [`ReplayError::Interrupted`]) at `cancel` between reads, committing nothing
/// of the shard in progress.
pub async fn rebuild(
    source: &Source,
    warehouse: &dyn LeasedWarehouse,
    cfg: &RebuildConfig,
    progress: &mut ProgressFile,
    counters: &Counters,
    cancel: &CancellationToken,
) -> Result<Vec<ShardRebuilt>, ReplayError> {
    let shards = source.shards().await?;
    counters
        .shards
        .store(shards.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let mut out = Vec::new();
    for shard in shards {
        if progress.is_done(&shard.0) {
            counters.set_fraction(&shard.0, 1.0);
            out.push(ShardRebuilt {
                shard: shard.0.clone(),
                resumed: true,
                ..Default::default()
            });
            continue;
        }
        let r = rebuild_shard(source, warehouse, cfg, &shard, counters, cancel).await?;
        tracing::info!(shard = %shard, rows = r.rows, zeroed = r.zeroed, to_minute = r.replaced_to_minute, "shard rebuilt");
        if !cfg.dry_run {
            progress.state.done.push(shard.0.clone());
            progress.save()?;
        }
        out.push(r);
    }
    Ok(out)
}

async fn rebuild_shard(
    source: &Source,
    warehouse: &dyn LeasedWarehouse,
    cfg: &RebuildConfig,
    shard: &ShardId,
    counters: &Counters,
    cancel: &CancellationToken,
) -> Result<ShardRebuilt, ReplayError> {
    let from_ms = cfg.from_minute.saturating_mul(60_000);
    let (start, watermark, exact_start) = match (source, &cfg.read_from) {
        (Source::Archive(a), _) => match a.rebuild_start(shard, from_ms).map_err(ReplayError::Archive)? {
            Some((seq, w)) => (StartPosition::AtSequence(seq), w, true),
            None => (StartPosition::TrimHorizon, None, false),
        },
        (Source::Stream(_), Some(p)) => (p.clone(), None, false),
        (Source::Stream(_), None) => (StartPosition::TrimHorizon, None, true),
    };
    if !exact_start {
        tracing::warn!(shard = %shard, "rebuild starts without the live state: rows at the range's start may differ from the live ones");
    }
    let rollup = ShardRollup::restore(cfg.lateness, watermark, [], []);
    let mut processor = RecordProcessor::new(shard.clone(), rollup, None, cfg.limits, cfg.lateness);
    let scratch = LeaseToken {
        shard: shard.clone(),
        owner: cfg.owner.clone(),
        counter: 0,
    };
    let mut rows: Rows = Default::default();
    let mut input = source.open(shard, start).await?;
    let mut records = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(ReplayError::Interrupted);
        }
        let batch = input.next(1_000).await?;
        if batch.is_empty() {
            break;
        }
        let before = processor.pending();
        for r in &batch {
            processor.process(r);
        }
        records += batch.len() as u64;
        counters.add(batch.len() as u64, processor.pending() - before);
        counters.set_fraction(&shard.0, input.fraction_done());
        // Collect the range's rows and let the processor forget closed windows.
        if let Some((commit, _)) = processor.take_commit(&scratch, false) {
            processor.committed(&commit);
            keep_in_range(&mut rows, commit.viewing, commit.games, cfg);
        }
        if processor.rollup().first_open_minute() >= cfg.to_minute {
            break; // every window of the range is closed: no later record can change it
        }
    }
    if let Some((commit, _)) = processor.take_commit(&scratch, false) {
        keep_in_range(&mut rows, commit.viewing, commit.games, cfg);
    }
    counters.set_fraction(&shard.0, 1.0);
    let rebuilt_open = processor.rollup().first_open_minute();
    let mut result = ShardRebuilt {
        shard: shard.0.clone(),
        records,
        exact_start,
        replaced_from_minute: cfg.from_minute,
        replaced_to_minute: cfg.to_minute.min(rebuilt_open),
        ..Default::default()
    };
    if cfg.dry_run {
        result.rows = rows.0.len() + rows.1.len();
        return Ok(result);
    }
    // A lease taken from under us (a live worker stealing it back) fences the commit off: try again.
    for attempt in 0..5 {
        match commit_rows(warehouse, cfg, shard, &rows, rebuilt_open, &mut result).await {
            Err(ReplayError::Warehouse(WarehouseError::LeaseLost { .. })) if attempt < 4 => {
                tracing::info!(shard = %shard, "rebuild commit fenced off; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
            }
            other => return other.map(|()| result),
        }
    }
    Ok(result)
}

fn keep_in_range(rows: &mut Rows, viewing: Vec<ViewingRow>, games: Vec<GameRow>, cfg: &RebuildConfig) {
    let range = cfg.from_minute..cfg.to_minute;
    for r in viewing.into_iter().filter(|r| range.contains(&r.minute)) {
        rows.0.insert((r.minute, r.title_id), r.agg);
    }
    for r in games.into_iter().filter(|r| range.contains(&r.minute)) {
        rows.1.insert((r.minute, r.game_id), r.agg);
    }
}

async fn commit_rows(
    warehouse: &dyn LeasedWarehouse,
    cfg: &RebuildConfig,
    shard: &ShardId,
    rows: &Rows,
    rebuilt_open: i64,
    result: &mut ShardRebuilt,
) -> Result<(), ReplayError> {
    let seen = warehouse
        .list()
        .await?
        .into_iter()
        .find(|l| l.shard == *shard)
        .ok_or_else(|| ReplayError::NoLease(shard.clone()))?;
    let Some(token) = warehouse
        .take(shard, seen.counter, &cfg.owner, now_ms() + 60_000)
        .await?
    else {
        return Err(WarehouseError::lease_lost(&LeaseToken {
            shard: shard.clone(),
            owner: cfg.owner.clone(),
            counter: seen.counter + 1,
        })
        .into());
    };
    let outcome = commit_held(warehouse, cfg, &token, rows, rebuilt_open, result).await;
    // Hand the lease back at once so a live worker resumes; if this fails it expires.
    if let Err(e) = warehouse.release(&token).await {
        tracing::warn!(shard = %shard, error = %e, "releasing the lease failed; it will expire");
    }
    outcome
}

async fn commit_held(
    warehouse: &dyn LeasedWarehouse,
    cfg: &RebuildConfig,
    token: &LeaseToken,
    rows: &Rows,
    rebuilt_open: i64,
    result: &mut ShardRebuilt,
) -> Result<(), ReplayError> {
    // Read after the take: from now on the live worker cannot move it.
    let lease = warehouse
        .list()
        .await?
        .into_iter()
        .find(|l| l.shard == token.shard)
        .ok_or_else(|| ReplayError::NoLease(token.shard.clone()))?;
    let live_open = cfg.lateness.first_open_minute(lease.watermark_ms);
    let to = cfg.to_minute.min(rebuilt_open).min(live_open);
    // Folded minutes are the shard's no longer: its commit may not write there (the fence
    // refuses it), and the stored folded rows stay as they are.
    let from = cfg.from_minute.max(lease.folded_before_minute.unwrap_or(i64::MIN));
    result.replaced_from_minute = from;
    result.replaced_to_minute = to;
    let range = from..to;
    let (stored_v, stored_g) = warehouse.shard_partials(&token.shard, from).await?;
    let mut viewing: Vec<ViewingRow> = rows
        .0
        .iter()
        .filter(|(k, _)| range.contains(&k.0))
        .map(|(k, agg)| ViewingRow {
            minute: k.0,
            title_id: k.1.clone(),
            agg: agg.clone(),
        })
        .collect();
    let mut games: Vec<GameRow> = rows
        .1
        .iter()
        .filter(|(k, _)| range.contains(&k.0))
        .map(|(k, agg)| GameRow {
            minute: k.0,
            game_id: k.1.clone(),
            agg: agg.clone(),
        })
        .collect();
    let (n_v, n_g) = (viewing.len(), games.len());
    viewing.extend(
        stored_v
            .into_iter()
            .filter(|r| range.contains(&r.minute) && !rows.0.contains_key(&(r.minute, r.title_id.clone())))
            .map(|r| ViewingRow {
                agg: ViewingAgg::default(),
                ..r
            }),
    );
    games.extend(
        stored_g
            .into_iter()
            .filter(|r| range.contains(&r.minute) && !rows.1.contains_key(&(r.minute, r.game_id.clone())))
            .map(|r| GameRow {
                agg: GameAgg::default(),
                ..r
            }),
    );
    result.zeroed = viewing.len() - n_v + games.len() - n_g;
    result.rows = viewing.len() + games.len();
    let commit = ShardCommit {
        token: token.clone(),
        checkpoint: None,
        watermark_ms: None,
        open_from_minute: None,
        viewing,
        games,
        dead_letters: Vec::new(),
        seen: Default::default(),
        shard_end: false,
    };
    warehouse.commit(&commit).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Filter;

    #[test]
    fn a_rebuild_replaces_every_minute_its_range_touches_and_takes_no_event_filter() {
        let none = Filter::default();
        assert_eq!(
            RebuildConfig::minutes(Some(60_000), Some(180_000), &none).unwrap(),
            (1, 3)
        );
        assert_eq!(
            RebuildConfig::minutes(Some(60_001), Some(180_001), &none).unwrap(),
            (1, 4)
        );
        assert_eq!(
            RebuildConfig::minutes(None, None, &none).unwrap(),
            (i64::MIN / 60_000, i64::MAX / 60_000)
        );
        let titles = Filter {
            titles: vec!["t".into()],
            ..Filter::default()
        };
        assert!(matches!(
            RebuildConfig::minutes(None, None, &titles),
            Err(ReplayError::FilteredRebuild)
        ));
    }
}
