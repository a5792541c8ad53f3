//! The warehouse seam: rollups, dead letters and checkpoints, committed together.
use crate::lease::LeaseToken;
use crate::sequence::Checkpoint;
use crate::shard::ShardId;
use async_trait::async_trait;
use bytes::Bytes;
use inlet_rollup::{GameRow, SeenCommit, SeenIds, ViewingRow};

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeadLetterKind {
    /// A stream record that claims to be a KPL aggregate but is corrupt (bad digest,
    /// bad protobuf, bad index): its user records cannot be counted.
    CorruptRecord,
    /// A user record that is not a protobuf event.
    Malformed,
    /// A decoded event that fails validation.
    Invalid,
    /// A valid event older than its shard's watermark minus the allowed lateness.
    Late,
}

/// The answers for a group of commits from one attempt at them: each applied or fenced off
/// (`applied`, in order), or the error of the group as a whole. An outage (a retryable error)
/// is every commit's answer; any other error may be one commit's doing, so each is tried
/// alone and a bad one cannot hold its neighbours back.
pub async fn answer_group<W: Warehouse + ?Sized>(
    warehouse: &W,
    commits: &[ShardCommit],
    attempt: Result<Vec<bool>, WarehouseError>,
) -> Vec<Result<(), WarehouseError>> {
    let error = match attempt {
        Ok(applied) => {
            return commits
                .iter()
                .zip(applied)
                .map(|(c, ok)| {
                    if ok {
                        Ok(())
                    } else {
                        Err(WarehouseError::lease_lost(&c.token))
                    }
                })
                .collect();
        }
        Err(e) => e,
    };
    let outage = matches!(error, WarehouseError::Database { retryable: true, .. });
    if commits.len() > 1 && !outage {
        let mut out = Vec::with_capacity(commits.len());
        for c in commits {
            out.push(warehouse.commit(c).await);
        }
        return out;
    }
    let copies: Vec<_> = (1..commits.len()).map(|_| Err(error.copy())).collect();
    std::iter::once(Err(error)).chain(copies).take(commits.len()).collect()
}

impl DeadLetterKind {
    /// Every kind, in a stable order.
    pub const ALL: [DeadLetterKind; 4] = [
        DeadLetterKind::CorruptRecord,
        DeadLetterKind::Malformed,
        DeadLetterKind::Invalid,
        DeadLetterKind::Late,
    ];

    /// Stable name, used in storage, metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::CorruptRecord => "corrupt_record",
            DeadLetterKind::Malformed => "malformed",
            DeadLetterKind::Invalid => "invalid",
            DeadLetterKind::Late => "late",
        }
    }

    /// Inverse of [`DeadLetterKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An event (or corrupt record) that was not aggregated, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where it was read.
    pub shard: ShardId,
    /// Its stream record.
    pub sequence: crate::SequenceNumber,
    /// Its index inside the stream record (0 for a record that is not an aggregate).
    pub sub_sequence: u32,
    /// The category.
    pub kind: DeadLetterKind,
    /// The field at fault, where there is one (e.g. `viewing.title_id`).
    pub field: Option<String>,
    /// Why, for a human.
    pub reason: String,
    /// The emitter's app id, when the event could be decoded.
    pub app_id: Option<String>,
    /// Its partition key.
    pub partition_key: String,
    /// The raw bytes, so it can be fixed and replayed.
    pub data: Bytes,
}

/// Everything one commit of one shard writes, in one transaction.
#[derive(Debug, Clone)]
pub struct ShardCommit {
    /// The lease it is fenced by: the commit fails, changing nothing, unless the lease's
    /// owner and counter still match.
    pub token: LeaseToken,
    /// The new checkpoint; `None` only when a shard ends without a record ever read from it
    /// (the stored checkpoint is then kept).
    pub checkpoint: Option<Checkpoint>,
    /// The shard's watermark after the checkpointed records.
    pub watermark_ms: Option<i64>,
    /// The first minute the shard can still write after this commit (its watermark minus
    /// the worker's allowed lateness): rows before it are final, and compaction may fold
    /// them. `None` keeps the stored one (a rebuild, a skip).
    pub open_from_minute: Option<i64>,
    /// Whole (cumulative) partial rows of this shard for the windows touched since the last
    /// commit; they replace the stored ones.
    pub viewing: Vec<ViewingRow>,
    /// As `viewing`, for games.
    pub games: Vec<GameRow>,
    /// Events dead-lettered since the last commit.
    pub dead_letters: Vec<DeadLetter>,
    /// Event ids remembered since the last commit, the minutes to forget and the shard's
    /// duplicates count: the dedupe state moves with the checkpoint.
    pub seen: SeenCommit,
    /// The shard was read to its end: mark its lease finished so children can start.
    pub shard_end: bool,
}

impl ShardCommit {
    /// This commit's key among the shard's stored id parts: its checkpoint, which only moves
    /// forward, so a retried commit rewrites its own part and no other.
    pub fn seen_part(&self) -> String {
        self.checkpoint.as_ref().map_or_else(
            || "-".to_owned(),
            |c| format!("{}/{}", c.sequence.as_str(), c.sub_sequence),
        )
    }

    /// The earliest minute among its rows, if it has any.
    pub fn first_minute(&self) -> Option<i64> {
        let v = self.viewing.iter().map(|r| r.minute);
        v.chain(self.games.iter().map(|r| r.minute)).min()
    }
}

/// Counts across the whole warehouse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Events aggregated (sum of `events` over all rollup rows).
    pub aggregated: i64,
    /// Dead letters per kind and field, sorted.
    pub dead_letters: Vec<(DeadLetterKind, Option<String>, i64)>,
    /// Copies of events already counted, dropped (sum over shards).
    pub duplicates: i64,
}

impl Totals {
    /// All dead letters.
    pub fn dead_lettered(&self) -> i64 {
        self.dead_letters.iter().map(|d| d.2).sum()
    }

    /// Every event read: `aggregated + dead-lettered + duplicates`.
    pub fn read(&self) -> i64 {
        self.aggregated + self.dead_lettered() + self.duplicates
    }
}

/// A shard's stored dedupe state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSeen {
    /// Remembered ids by minute (several parts per minute, one per commit that added some).
    pub ids: Vec<SeenIds>,
    /// The shard's duplicates so far.
    pub duplicates: u64,
}

/// A warehouse's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WarehouseError {
    /// The commit was fenced off: the lease was taken by someone else. Nothing changed.
    #[error("commit of shard {shard} refused: lease counter {counter} of {owner} is no longer current")]
    LeaseLost {
        /// The shard.
        shard: ShardId,
        /// The worker that tried.
        owner: String,
        /// The counter it held.
        counter: u64,
    },
    /// The database failed; nothing of the commit applied.
    #[error("warehouse operation {operation} failed")]
    Database {
        /// Which operation.
        operation: &'static str,
        /// Whether trying again can help.
        retryable: bool,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored data that cannot be read back (e.g. a sketch in an unknown format).
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// A warehouse whose lease store lives in the same database (the architecture invariant
/// that makes the fence and the commit one transaction): what a worker is given.
pub trait LeasedWarehouse: Warehouse + crate::LeaseStore {}

impl<T: Warehouse + crate::LeaseStore> LeasedWarehouse for T {}

impl WarehouseError {
    /// The commit fenced by `token` was refused.
    pub fn lease_lost(token: &LeaseToken) -> Self {
        WarehouseError::LeaseLost {
            shard: token.shard.clone(),
            owner: token.owner.clone(),
            counter: token.counter,
        }
    }

    /// A stored value that does not parse.
    pub fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> Self {
        WarehouseError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }

    /// The same error for another commit of a group: its causes carried in words.
    fn copy(&self) -> WarehouseError {
        match self {
            WarehouseError::LeaseLost { shard, owner, counter } => WarehouseError::LeaseLost {
                shard: shard.clone(),
                owner: owner.clone(),
                counter: *counter,
            },
            WarehouseError::Database {
                operation, retryable, ..
            } => WarehouseError::Database {
                operation,
                retryable: *retryable,
                source: crate::error_chain(self)
                    .split_once(": ")
                    .map_or_else(String::new, |(_, causes)| causes.to_owned())
                    .into(),
            },
            WarehouseError::Corrupt { what, reason } => WarehouseError::Corrupt {
                what,
                reason: reason.clone(),
            },
        }
    }
}

impl DeadLetterKind {
    /// Parses a stored kind, or says the stored data is corrupt.
    pub fn from_stored(s: &str) -> Result<Self, WarehouseError> {
        Self::parse(s).ok_or_else(|| WarehouseError::corrupt("dead letter kind", s))
    }
}

impl Totals {
    /// From stored counts: events aggregated, dead letters as (kind, field, count) rows, and
    /// duplicates.
    pub fn from_stored(
        aggregated: i64,
        dead_letters: impl IntoIterator<Item = (String, Option<String>, i64)>,
        duplicates: i64,
    ) -> Result<Self, WarehouseError> {
        let dead_letters = dead_letters
            .into_iter()
            .map(|(kind, field, n)| Ok((DeadLetterKind::from_stored(&kind)?, field, n)))
            .collect::<Result<_, WarehouseError>>()?;
        Ok(Totals {
            aggregated,
            dead_letters,
            duplicates,
        })
    }
}

/// What one compaction folded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Per-shard partial rows folded away (viewing and game).
    pub partials: u64,
    /// Folded rows written (one per minute and key).
    pub folded: u64,
}

/// What compaction knows of one shard: its first open minute and its earliest stored row
/// (`None`: it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldState {
    /// The shard.
    pub shard: ShardId,
    /// From its last commit: minutes before it are final.
    pub open_from_minute: i64,
    /// Its earliest partial row.
    pub first_row_minute: Option<i64>,
}

/// How many minutes of one shard a compaction step folds at most, so a long backlog (the
/// first compaction of an old warehouse) is folded in steps of bounded memory and lock time.
pub const FOLD_STEP_MINUTES: i64 = 10;

/// One shard's part of a compaction step: its rows of minutes `[from, before)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fold {
    /// The shard.
    pub shard: ShardId,
    /// Its earliest row.
    pub from_minute: i64,
    /// The minute folding stops before.
    pub before_minute: i64,
}

/// What each shard folds in this step: final minutes more than `keep_minutes` behind its
/// open one, at most [`FOLD_STEP_MINUTES`] past its earliest row. Shards with nothing to
/// fold are left out; an empty plan means done. Sorted by shard.
pub fn fold_plan(shards: &[FoldState], keep_minutes: i64) -> Vec<Fold> {
    let mut plan: Vec<Fold> = shards
        .iter()
        .filter_map(|s| {
            let from = s.first_row_minute?;
            let before = s
                .open_from_minute
                .saturating_sub(keep_minutes.max(0))
                .min(from.saturating_add(FOLD_STEP_MINUTES));
            (from < before).then(|| Fold {
                shard: s.shard.clone(),
                from_minute: from,
                before_minute: before,
            })
        })
        .collect();
    plan.sort();
    plan
}

/// A whole compaction: `step` (one transaction, `None` when nothing was left to fold) run
/// until done, its counts summed.
pub async fn compact_in_steps<F, Fut>(mut step: F) -> Result<Compacted, WarehouseError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Compacted>, WarehouseError>>,
{
    let mut total = Compacted::default();
    while let Some(done) = step().await? {
        total.partials += done.partials;
        total.folded += done.folded;
    }
    Ok(total)
}

/// The shard id of folded rows: one row per minute and key for every shard whose minute is
/// final.
pub const FOLDED: &str = "*";

/// Where rollups land.
#[async_trait]
pub trait Warehouse: Send + Sync + std::fmt::Debug {
    /// Writes rows, dead letters and checkpoint in one transaction, fenced by the lease.
    async fn commit(&self, commit: &ShardCommit) -> Result<(), WarehouseError>;
    /// Several shards' commits, each fenced by its own lease, with one answer each (in
    /// order): a commit fenced off writes nothing and does not hold the others back. A
    /// backend that can puts them in one transaction (a worker's shards commit together
    /// instead of one transaction per shard); by default they are committed one by one.
    async fn commit_many(&self, commits: &[ShardCommit]) -> Vec<Result<(), WarehouseError>> {
        let mut out = Vec::with_capacity(commits.len());
        for c in commits {
            out.push(self.commit(c).await);
        }
        out
    }
    /// A shard's partial rows from `from_minute` on (to resume its open windows).
    async fn shard_partials(
        &self,
        shard: &ShardId,
        from_minute: i64,
    ) -> Result<(Vec<ViewingRow>, Vec<GameRow>), WarehouseError>;
    /// A shard's remembered event ids from `from_minute` on, and its duplicates count (to
    /// resume its dedupe state, or a child's from its parents').
    async fn shard_seen(&self, shard: &ShardId, from_minute: i64) -> Result<StoredSeen, WarehouseError>;
    /// Final viewing rollups (partials merged across shards) for minutes in `[from, to)`.
    async fn viewing_rollups(&self, from_minute: i64, to_minute: i64) -> Result<Vec<ViewingRow>, WarehouseError>;
    /// Final game rollups for minutes in `[from, to)`.
    async fn game_rollups(&self, from_minute: i64, to_minute: i64) -> Result<Vec<GameRow>, WarehouseError>;
    /// Aggregated, dead-lettered and duplicate counts.
    async fn totals(&self) -> Result<Totals, WarehouseError>;
    /// Dead letters, oldest first, at most `limit`.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, WarehouseError>;
    /// Folds each shard's rows of final minutes (before its stored `open_from_minute`) that
    /// lie more than `keep_minutes` behind it into the [`FOLDED`] rows, and raises the
    /// shard's `folded_before_minute` to match, in one transaction. Reads merge folded rows
    /// like any partial, so no result moves. From then on a commit carrying a row of a
    /// folded minute is refused as fenced off (a rebuild re-reads the lease and keeps to
    /// the minutes still per shard). Concurrent compactions wait for each other.
    async fn compact(&self, keep_minutes: i64) -> Result<Compacted, WarehouseError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(i: u32, open_from: i64, first_row: Option<i64>) -> FoldState {
        FoldState {
            shard: ShardId::from_index(i),
            open_from_minute: open_from,
            first_row_minute: first_row,
        }
    }

    /// Each shard folds from its earliest row to its open minute less what it keeps, in steps
    /// of at most `FOLD_STEP_MINUTES`; shards with nothing final to fold are left out.
    #[test]
    fn a_plan_folds_final_minutes_in_bounded_steps() {
        let shards = [
            state(2, 100, Some(95)),
            state(0, 100, Some(40)),
            state(1, 100, None),
            state(3, 100, Some(100)),
        ];
        let fold = |i: u32, from: i64, before: i64| Fold {
            shard: ShardId::from_index(i),
            from_minute: from,
            before_minute: before,
        };
        assert_eq!(
            fold_plan(&shards, 0),
            vec![fold(0, 40, 40 + FOLD_STEP_MINUTES), fold(2, 95, 100)],
            "sorted by shard"
        );
        assert_eq!(
            fold_plan(&shards, 5),
            vec![fold(0, 40, 50)],
            "shard 2's minutes are kept"
        );
        assert!(
            fold_plan(&[state(0, 100, Some(95))], 5).is_empty(),
            "nothing older than kept"
        );
        assert!(
            fold_plan(&[state(0, i64::MIN, Some(0))], 0).is_empty(),
            "no open minute yet"
        );
    }
}
