//! Rollup partials, dead letters and checkpoints in one SQLite file, shared with the lease
//! store so a commit and its fence are one transaction.
use crate::db::{self, Shared, boxed};
use async_trait::async_trait;
use bytes::Bytes;
use inlet_rollup::row::{merge_games, merge_viewing};
use inlet_rollup::{GameAgg, GameRow, SeenIds, ViewingAgg, ViewingRow};
use inlet_seams::{
    Compacted, DeadLetter, DeadLetterKind, SequenceNumber, ShardCommit, ShardId, StoredSeen, Totals, Warehouse,
    WarehouseError, answer_group,
};
use inlet_sketches::{Hll, QuantileSketch};
use rusqlite::{OptionalExtension, params};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS leases (
    shard_id TEXT PRIMARY KEY,
    owner TEXT,
    counter INTEGER NOT NULL DEFAULT 0,
    expires_at_ms INTEGER NOT NULL DEFAULT 0,
    checkpoint_seq TEXT,
    checkpoint_sub INTEGER,
    watermark_ms INTEGER,
    parents TEXT NOT NULL DEFAULT '',
    finished INTEGER NOT NULL DEFAULT 0,
    open_from_minute INTEGER,
    folded_before_minute INTEGER
);
CREATE TABLE IF NOT EXISTS viewing_partials (
    shard_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    title_id TEXT NOT NULL,
    events INTEGER NOT NULL,
    plays INTEGER NOT NULL,
    viewers BLOB NOT NULL,
    watch_ms INTEGER NOT NULL,
    rebuffers INTEGER NOT NULL,
    rebuffer_ms INTEGER NOT NULL,
    bitrate_sum_kbps INTEGER NOT NULL,
    bitrate_samples INTEGER NOT NULL,
    startup_ms BLOB NOT NULL,
    errors INTEGER NOT NULL,
    PRIMARY KEY (shard_id, minute, title_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS viewing_partials_minute ON viewing_partials (minute);
CREATE TABLE IF NOT EXISTS game_partials (
    shard_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    game_id TEXT NOT NULL,
    events INTEGER NOT NULL,
    sessions INTEGER NOT NULL,
    players BLOB NOT NULL,
    shots INTEGER NOT NULL,
    hits INTEGER NOT NULL,
    kills INTEGER NOT NULL,
    deaths INTEGER NOT NULL,
    purchases INTEGER NOT NULL,
    damage INTEGER NOT NULL,
    revenue_cents INTEGER NOT NULL,
    PRIMARY KEY (shard_id, minute, game_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS game_partials_minute ON game_partials (minute);
CREATE TABLE IF NOT EXISTS dead_letters (
    shard_id TEXT NOT NULL,
    sequence TEXT NOT NULL,
    sub_sequence INTEGER NOT NULL,
    kind TEXT NOT NULL,
    field TEXT,
    reason TEXT NOT NULL,
    app_id TEXT,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (shard_id, sequence, sub_sequence)
);
-- The dedupe state: the event ids each shard remembers, one row per minute and commit that
-- added some (16 big-endian bytes per id), keyed so a rewritten commit replaces its row.
CREATE TABLE IF NOT EXISTS seen_ids (
    shard_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    part TEXT NOT NULL,
    ids BLOB NOT NULL,
    PRIMARY KEY (shard_id, minute, part)
);
CREATE TABLE IF NOT EXISTS shard_duplicates (
    shard_id TEXT PRIMARY KEY,
    duplicates INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS shard_failures (
    shard_id TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    error TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL
);
";

/// The embedded warehouse and lease store (`warehouse.db`).
#[derive(Debug, Clone)]
pub struct EmbeddedWarehouse {
    pub(crate) conn: Shared,
}

pub(crate) fn db_error(operation: &'static str) -> impl Fn(rusqlite::Error) -> WarehouseError {
    move |e| WarehouseError::Database {
        operation,
        retryable: db::is_retryable(&e),
        source: boxed(e),
    }
}

impl EmbeddedWarehouse {
    /// Opens the file, creating it and its tables if needed.
    pub async fn open(path: &Path) -> Result<Self, WarehouseError> {
        let p = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<_> {
            let mut conn = db::open_with_schema(&p, SCHEMA)?;
            add_compaction_columns(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| WarehouseError::Database {
            operation: "open",
            retryable: false,
            source: Box::new(e),
        })?
        .map_err(db_error("open"))?;
        Ok(Self {
            conn: Shared::new(conn),
        })
    }
}

/// A file made before compaction lacks the lease columns it keeps (`CREATE TABLE IF NOT
/// EXISTS` leaves an old table as it is).
fn add_compaction_columns(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let has: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('leases') WHERE name = 'folded_before_minute'",
        [],
        |r| r.get(0),
    )?;
    if !has {
        tx.execute_batch(
            "ALTER TABLE leases ADD COLUMN open_from_minute INTEGER;
             ALTER TABLE leases ADD COLUMN folded_before_minute INTEGER;",
        )?;
    }
    tx.commit()
}

/// Several shards' commits in one transaction: one lock, one WAL append, for what would be a
/// transaction each. Each is fenced by its own lease: `false` for one that was fenced off,
/// which writes nothing (its fence is checked before any of its rows).
fn commit_tx(c: &mut rusqlite::Connection, commits: &[ShardCommit]) -> rusqlite::Result<Vec<bool>> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied = commits
        .iter()
        .map(|commit| apply(&tx, commit))
        .collect::<rusqlite::Result<Vec<bool>>>()?;
    tx.commit()?;
    Ok(applied)
}

/// One shard's commit inside `tx`, if its lease still fences it.
fn apply(tx: &rusqlite::Transaction<'_>, commit: &ShardCommit) -> rusqlite::Result<bool> {
    let t = &commit.token;
    let fenced = tx
        .prepare_cached(
            "UPDATE leases SET checkpoint_seq = COALESCE(?1, checkpoint_seq),
                checkpoint_sub = COALESCE(?2, checkpoint_sub), watermark_ms = COALESCE(?3, watermark_ms),
                finished = finished OR ?4,
                open_from_minute = COALESCE(MAX(open_from_minute, ?8), open_from_minute, ?8)
         WHERE shard_id = ?5 AND owner = ?6 AND counter = ?7
           AND (folded_before_minute IS NULL OR folded_before_minute <= ?9)",
        )?
        .execute(params![
            commit.checkpoint.as_ref().map(|c| c.sequence.as_str()),
            commit.checkpoint.as_ref().map(|c| c.sub_sequence),
            commit.watermark_ms,
            commit.shard_end,
            t.shard.as_str(),
            t.owner,
            t.counter as i64,
            commit.open_from_minute,
            commit.first_minute().unwrap_or(i64::MAX),
        ])?;
    if fenced == 0 {
        // Fenced off: nothing of this commit is written.
        return Ok(false);
    }
    // The shard moved on: whatever failed before has passed.
    tx.prepare_cached("DELETE FROM shard_failures WHERE shard_id = ?1")?
        .execute([t.shard.as_str()])?;
    {
        insert_viewing(tx, t.shard.as_str(), &commit.viewing)?;
        insert_games(tx, t.shard.as_str(), &commit.games)?;
        let mut st = tx.prepare_cached(
            "INSERT OR REPLACE INTO dead_letters (shard_id, sequence, sub_sequence, kind, field, reason, app_id,
                 partition_key, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for d in &commit.dead_letters {
            st.execute(params![
                d.shard.as_str(),
                d.sequence.as_str(),
                d.sub_sequence,
                d.kind.as_str(),
                d.field,
                d.reason,
                d.app_id,
                d.partition_key,
                &d.data[..]
            ])?;
        }
        write_seen(tx, commit)?;
    }
    Ok(true)
}

/// Rows of `shard`, replacing the stored ones of the same minute and key.
pub(crate) fn insert_viewing(tx: &rusqlite::Transaction<'_>, shard: &str, rows: &[ViewingRow]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO viewing_partials (shard_id, minute, title_id, events, plays, viewers, watch_ms,
             rebuffers, rebuffer_ms, bitrate_sum_kbps, bitrate_samples, startup_ms, errors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for r in rows {
        let a = &r.agg;
        st.execute(params![
            shard,
            r.minute,
            r.title_id,
            a.events,
            a.plays,
            a.viewers.to_bytes(),
            a.watch_ms,
            a.rebuffers,
            a.rebuffer_ms,
            a.bitrate_sum_kbps,
            a.bitrate_samples,
            a.startup_ms.to_bytes(),
            a.errors
        ])?;
    }
    Ok(())
}

/// Rows of `shard`, replacing the stored ones of the same minute and key.
pub(crate) fn insert_games(tx: &rusqlite::Transaction<'_>, shard: &str, rows: &[GameRow]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO game_partials (shard_id, minute, game_id, events, sessions, players, shots,
             hits, kills, deaths, purchases, damage, revenue_cents)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for r in rows {
        let a = &r.agg;
        st.execute(params![
            shard,
            r.minute,
            r.game_id,
            a.events,
            a.sessions,
            a.players.to_bytes(),
            a.shots,
            a.hits,
            a.kills,
            a.deaths,
            a.purchases,
            a.damage,
            a.revenue_cents
        ])?;
    }
    Ok(())
}

fn write_seen(tx: &rusqlite::Transaction<'_>, commit: &ShardCommit) -> rusqlite::Result<()> {
    let shard = commit.token.shard.as_str();
    let seen = &commit.seen;
    if let Some(before) = seen.forget_before_minute {
        tx.prepare_cached("DELETE FROM seen_ids WHERE shard_id = ?1 AND minute < ?2")?
            .execute(params![shard, before])?;
    }
    if !seen.added.is_empty() {
        let part = commit.seen_part();
        let mut st =
            tx.prepare_cached("INSERT OR REPLACE INTO seen_ids (shard_id, minute, part, ids) VALUES (?1, ?2, ?3, ?4)")?;
        for ids in &seen.added {
            st.execute(params![shard, ids.minute, part, ids.to_bytes()])?;
        }
    }
    if let Some(n) = seen.duplicates {
        tx.prepare_cached("INSERT OR REPLACE INTO shard_duplicates (shard_id, duplicates) VALUES (?1, ?2)")?
            .execute(params![shard, n as i64])?;
    }
    Ok(())
}

/// The raw columns of a viewing partial, before its sketches are decoded.
pub(crate) type ViewingCols = (i64, String, [i64; 8], Vec<u8>, Vec<u8>);
/// The raw columns of a game partial.
pub(crate) type GameCols = (i64, String, [i64; 9], Vec<u8>);

pub(crate) const VIEWING_COLS: &str =
    "minute, title_id, events, plays, watch_ms, rebuffers, rebuffer_ms, bitrate_sum_kbps,
    bitrate_samples, errors, viewers, startup_ms";
pub(crate) const GAME_COLS: &str =
    "minute, game_id, events, sessions, shots, hits, kills, deaths, purchases, damage, revenue_cents, players";

pub(crate) fn read_viewing(r: &rusqlite::Row<'_>) -> rusqlite::Result<ViewingCols> {
    let mut n = [0i64; 8];
    for (i, v) in n.iter_mut().enumerate() {
        *v = r.get(2 + i)?;
    }
    Ok((r.get(0)?, r.get(1)?, n, r.get(10)?, r.get(11)?))
}

pub(crate) fn read_game(r: &rusqlite::Row<'_>) -> rusqlite::Result<GameCols> {
    let mut n = [0i64; 9];
    for (i, v) in n.iter_mut().enumerate() {
        *v = r.get(2 + i)?;
    }
    Ok((r.get(0)?, r.get(1)?, n, r.get(11)?))
}

fn corrupt(what: &'static str) -> impl Fn(inlet_sketches::SketchError) -> WarehouseError {
    move |e| WarehouseError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

pub(crate) fn viewing_row((minute, title_id, n, viewers, startup): ViewingCols) -> Result<ViewingRow, WarehouseError> {
    let [
        events,
        plays,
        watch_ms,
        rebuffers,
        rebuffer_ms,
        bitrate_sum_kbps,
        bitrate_samples,
        errors,
    ] = n;
    let agg = ViewingAgg {
        events,
        plays,
        viewers: Hll::from_bytes(&viewers).map_err(corrupt("viewers sketch"))?,
        watch_ms,
        rebuffers,
        rebuffer_ms,
        bitrate_sum_kbps,
        bitrate_samples,
        startup_ms: QuantileSketch::from_bytes(&startup).map_err(corrupt("startup sketch"))?,
        errors,
    };
    Ok(ViewingRow { minute, title_id, agg })
}

pub(crate) fn game_row((minute, game_id, n, players): GameCols) -> Result<GameRow, WarehouseError> {
    let [
        events,
        sessions,
        shots,
        hits,
        kills,
        deaths,
        purchases,
        damage,
        revenue_cents,
    ] = n;
    let agg = GameAgg {
        events,
        sessions,
        players: Hll::from_bytes(&players).map_err(corrupt("players sketch"))?,
        shots,
        hits,
        kills,
        deaths,
        purchases,
        damage,
        revenue_cents,
    };
    Ok(GameRow { minute, game_id, agg })
}

impl EmbeddedWarehouse {
    async fn viewing_where(
        &self,
        filter: &'static str,
        args: (String, i64, i64),
    ) -> Result<Vec<ViewingRow>, WarehouseError> {
        let cols = self
            .conn
            .call(move |c| {
                let sql = format!("SELECT {VIEWING_COLS} FROM viewing_partials WHERE {filter}");
                let mut st = c.prepare_cached(&sql)?;
                let rows = st
                    .query_map(params![args.0, args.1, args.2], read_viewing)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
            .map_err(db_error("read viewing rollups"))?;
        cols.into_iter().map(viewing_row).collect()
    }

    async fn games_where(
        &self,
        filter: &'static str,
        args: (String, i64, i64),
    ) -> Result<Vec<GameRow>, WarehouseError> {
        let cols = self
            .conn
            .call(move |c| {
                let sql = format!("SELECT {GAME_COLS} FROM game_partials WHERE {filter}");
                let mut st = c.prepare_cached(&sql)?;
                let rows = st
                    .query_map(params![args.0, args.1, args.2], read_game)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
            .map_err(db_error("read game rollups"))?;
        cols.into_iter().map(game_row).collect()
    }
}

/// `?1` is a shard id (or ignored), `?2`/`?3` a minute range.
const SHARD_FROM: &str = "shard_id = ?1 AND minute >= ?2 AND minute < ?3";
const RANGE: &str = "?1 = ?1 AND minute >= ?2 AND minute < ?3";

#[async_trait]
impl Warehouse for EmbeddedWarehouse {
    async fn commit(&self, commit: &ShardCommit) -> Result<(), WarehouseError> {
        self.commit_many(std::slice::from_ref(commit))
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    async fn commit_many(&self, commits: &[ShardCommit]) -> Vec<Result<(), WarehouseError>> {
        let owned = commits.to_vec();
        let outcome = self.conn.call(move |c| commit_tx(c, &owned)).await;
        answer_group(self, commits, outcome.map_err(db_error("commit"))).await
    }

    async fn shard_partials(
        &self,
        shard: &ShardId,
        from_minute: i64,
    ) -> Result<(Vec<ViewingRow>, Vec<GameRow>), WarehouseError> {
        let args = (shard.0.clone(), from_minute, i64::MAX);
        Ok((
            self.viewing_where(SHARD_FROM, args.clone()).await?,
            self.games_where(SHARD_FROM, args).await?,
        ))
    }

    async fn shard_seen(&self, shard: &ShardId, from_minute: i64) -> Result<StoredSeen, WarehouseError> {
        let sid = shard.0.clone();
        let (parts, duplicates) = self
            .conn
            .call(move |c| {
                let parts = c
                    .prepare_cached("SELECT minute, ids FROM seen_ids WHERE shard_id = ?1 AND minute >= ?2")?
                    .query_map(params![sid, from_minute], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let duplicates: Option<i64> = c
                    .prepare_cached("SELECT duplicates FROM shard_duplicates WHERE shard_id = ?1")?
                    .query_row([&sid], |r| r.get(0))
                    .optional()?;
                Ok((parts, duplicates.unwrap_or(0)))
            })
            .await
            .map_err(db_error("read remembered event ids"))?;
        let ids = parts
            .into_iter()
            .map(|(minute, b)| {
                SeenIds::from_bytes(minute, &b).ok_or_else(|| WarehouseError::corrupt("remembered event ids", "length"))
            })
            .collect::<Result<_, _>>()?;
        Ok(StoredSeen {
            ids,
            duplicates: duplicates as u64,
        })
    }

    async fn viewing_rollups(&self, from_minute: i64, to_minute: i64) -> Result<Vec<ViewingRow>, WarehouseError> {
        Ok(merge_viewing(
            self.viewing_where(RANGE, (String::new(), from_minute, to_minute))
                .await?,
        ))
    }

    async fn game_rollups(&self, from_minute: i64, to_minute: i64) -> Result<Vec<GameRow>, WarehouseError> {
        Ok(merge_games(
            self.games_where(RANGE, (String::new(), from_minute, to_minute)).await?,
        ))
    }

    async fn totals(&self) -> Result<Totals, WarehouseError> {
        let (aggregated, rows, duplicates) = self
            .conn
            .call(|c| {
                let aggregated: i64 = c.query_row(
                    "SELECT (SELECT COALESCE(SUM(events), 0) FROM viewing_partials)
                          + (SELECT COALESCE(SUM(events), 0) FROM game_partials)",
                    [],
                    |r| r.get(0),
                )?;
                let mut st = c.prepare_cached(
                    "SELECT kind, field, COUNT(*) FROM dead_letters GROUP BY kind, field ORDER BY kind, field",
                )?;
                let rows = st
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let duplicates: i64 =
                    c.query_row("SELECT COALESCE(SUM(duplicates), 0) FROM shard_duplicates", [], |r| {
                        r.get(0)
                    })?;
                Ok((aggregated, rows, duplicates))
            })
            .await
            .map_err(db_error("totals"))?;
        Totals::from_stored(aggregated, rows, duplicates)
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, WarehouseError> {
        let rows = self
            .conn
            .call(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT shard_id, sequence, sub_sequence, kind, field, reason, app_id, partition_key, data
                     FROM dead_letters ORDER BY rowid LIMIT ?1",
                )?;
                let rows = st
                    .query_map([limit as i64], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, u32>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, Option<String>>(6)?,
                            r.get::<_, String>(7)?,
                            r.get::<_, Vec<u8>>(8)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
            .map_err(db_error("read dead letters"))?;
        rows.into_iter()
            .map(
                |(shard, seq, sub_sequence, kind, field, reason, app_id, partition_key, data)| {
                    Ok(DeadLetter {
                        shard: ShardId(shard),
                        sequence: SequenceNumber::parse(&seq)
                            .map_err(|e| WarehouseError::corrupt("dead letter sequence", e))?,
                        sub_sequence,
                        kind: DeadLetterKind::from_stored(&kind)?,
                        field,
                        reason,
                        app_id,
                        partition_key,
                        data: Bytes::from(data),
                    })
                },
            )
            .collect()
    }

    async fn compact(&self, keep_minutes: i64) -> Result<Compacted, WarehouseError> {
        crate::compaction::compact(&self.conn, keep_minutes).await
    }
}
