//! The PostgreSQL warehouse: fenced, COPY-staged commits and reads.
use crate::config::PgConfig;
use crate::migrations;
use crate::retry::{backoff, is_transient, is_transient_pool};
use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use inlet_rollup::row::{merge_games, merge_viewing};
use inlet_rollup::{GameAgg, GameRow, SeenIds, ViewingAgg, ViewingRow};
use inlet_seams::{
    DeadLetter, DeadLetterKind, SequenceNumber, ShardCommit, ShardId, StoredSeen, Totals, Warehouse, WarehouseError,
};
use inlet_sketches::{Hll, QuantileSketch};
use std::pin::pin;
use std::time::Instant;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row, Transaction};

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Attempt {
    Pool(deadpool_postgres::PoolError),
    Sql(tokio_postgres::Error),
}

/// A connection from the pool, for [`PgWarehouse::run`]'s operations.
pub(crate) async fn connect(pool: &Pool) -> Result<Object, Attempt> {
    pool.get().await.map_err(Attempt::Pool)
}

impl From<tokio_postgres::Error> for Attempt {
    fn from(e: tokio_postgres::Error) -> Self {
        Attempt::Sql(e)
    }
}

impl Attempt {
    fn transient(&self) -> bool {
        match self {
            Attempt::Pool(e) => is_transient_pool(e),
            Attempt::Sql(e) => is_transient(e),
        }
    }
    fn into_source(self) -> Box<dyn std::error::Error + Send + Sync> {
        match self {
            Attempt::Pool(e) => Box::new(e),
            Attempt::Sql(e) => Box::new(e),
        }
    }
}

/// Rollups, dead letters, leases and checkpoints in PostgreSQL.
#[derive(Clone)]
pub struct PgWarehouse {
    pool: Pool,
    config: PgConfig,
}

impl std::fmt::Debug for PgWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWarehouse")
            .field("pool_size", &self.config.pool_size)
            .finish_non_exhaustive()
    }
}

fn database(
    operation: &'static str,
    retryable: bool,
    source: Box<dyn std::error::Error + Send + Sync>,
) -> WarehouseError {
    WarehouseError::Database {
        operation,
        retryable,
        source,
    }
}

impl PgWarehouse {
    /// Connects (lazily: the pool opens connections on demand) and, if configured, applies
    /// the migrations, retrying while the server is starting.
    pub async fn connect(config: PgConfig) -> Result<Self, WarehouseError> {
        let pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|e| database("parse url", false, Box::new(e)))?;
        if matches!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require) {
            return Err(database(
                "connect",
                false,
                "sslmode=require: TLS is not supported yet".into(),
            ));
        }
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .build()
            .map_err(|e| database("build pool", false, Box::new(e)))?;
        let warehouse = Self { pool, config };
        if warehouse.config.migrate {
            warehouse.migrate().await?;
        }
        Ok(warehouse)
    }

    /// Applies pending migrations; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<i32>, WarehouseError> {
        self.run("migrate", |pool| async move {
            Ok(migrations::migrate(&mut **connect(&pool).await?).await?)
        })
        .await
    }

    /// Runs `op` (which takes a connection from the pool it is given), retrying transient
    /// faults for `retry_for`.
    pub(crate) async fn run<T, F, Fut>(&self, operation: &'static str, op: F) -> Result<T, WarehouseError>
    where
        F: Fn(Pool) -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = op(self.pool.clone()).await;
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.transient() && started.elapsed() < self.config.retry_for => {
                    tracing::warn!(operation, attempt, error = %DisplayAttempt(&e), "transient database fault; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    let retryable = e.transient();
                    return Err(database(operation, retryable, e.into_source()));
                }
            }
        }
    }
}

struct DisplayAttempt<'a>(&'a Attempt);

impl std::fmt::Display for DisplayAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Attempt::Pool(e) => write!(f, "{e}"),
            Attempt::Sql(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => write!(f, "{e}"),
            },
        }
    }
}

pub(crate) const STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_viewing (LIKE inlet_viewing_partials) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_viewing_viewers (LIKE inlet_viewing_viewers) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_viewing_startup (LIKE inlet_viewing_startup) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_games (LIKE inlet_game_partials) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_game_players (LIKE inlet_game_players) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS inlet_stage_dead_letters (LIKE inlet_dead_letters INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
";

/// Replaces the stored rows that have a staged twin (the cumulative partials of a commit),
/// the set-based upsert that PostgreSQL and Redshift both run.
const MERGE_VIEWING: &str = "
DELETE FROM inlet_viewing_partials p USING inlet_stage_viewing s
 WHERE p.minute = s.minute AND p.title_id = s.title_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_viewing_partials SELECT * FROM inlet_stage_viewing;
DELETE FROM inlet_viewing_viewers p USING inlet_stage_viewing s
 WHERE p.minute = s.minute AND p.title_id = s.title_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_viewing_viewers SELECT * FROM inlet_stage_viewing_viewers;
DELETE FROM inlet_viewing_startup p USING inlet_stage_viewing s
 WHERE p.minute = s.minute AND p.title_id = s.title_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_viewing_startup SELECT * FROM inlet_stage_viewing_startup;
";

const MERGE_GAMES: &str = "
DELETE FROM inlet_game_partials p USING inlet_stage_games s
 WHERE p.minute = s.minute AND p.game_id = s.game_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_game_partials SELECT * FROM inlet_stage_games;
DELETE FROM inlet_game_players p USING inlet_stage_games s
 WHERE p.minute = s.minute AND p.game_id = s.game_id AND p.shard_id = s.shard_id;
INSERT INTO inlet_game_players SELECT * FROM inlet_stage_game_players;
";

const MERGE_DEAD_LETTERS: &str = "
DELETE FROM inlet_dead_letters d USING inlet_stage_dead_letters s
 WHERE d.shard_id = s.shard_id AND d.sequence = s.sequence AND d.sub_sequence = s.sub_sequence;
INSERT INTO inlet_dead_letters SELECT * FROM inlet_stage_dead_letters;
";

/// Longest reason stored (the column is VARCHAR(4096)).
const MAX_REASON: usize = 4000;

async fn copy_rows(
    tx: &Transaction<'_>,
    sql: &str,
    types: &[Type],
    rows: Vec<Vec<Value>>,
) -> Result<u64, tokio_postgres::Error> {
    let sink = tx.copy_in(sql).await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, types));
    for row in rows {
        let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await?;
    }
    writer.finish().await
}

type Value = Box<dyn ToSql + Sync + Send>;

/// The stored columns of one viewing partial (or compacted final) row.
pub(crate) struct ViewingCopy;

impl ViewingCopy {
    pub(crate) const SQL: &'static str =
        "COPY inlet_stage_viewing (minute, title_id, shard_id, events, plays, watch_ms,
        rebuffers, rebuffer_ms, bitrate_sum_kbps, bitrate_samples, errors, startup_count, startup_min, startup_max,
        viewers, startup_ms) FROM STDIN BINARY";
    pub(crate) const TYPES: [Type; 16] = [
        Type::INT8,
        Type::VARCHAR,
        Type::VARCHAR,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::BYTEA,
        Type::BYTEA,
    ];
    pub(crate) fn row(shard: &str, r: &ViewingRow) -> Vec<Value> {
        let a = &r.agg;
        vec![
            Box::new(r.minute),
            Box::new(r.title_id.clone()),
            Box::new(shard.to_owned()),
            Box::new(a.events),
            Box::new(a.plays),
            Box::new(a.watch_ms),
            Box::new(a.rebuffers),
            Box::new(a.rebuffer_ms),
            Box::new(a.bitrate_sum_kbps),
            Box::new(a.bitrate_samples),
            Box::new(a.errors),
            Box::new(a.startup_ms.count() as i64),
            Box::new(a.startup_ms.min().unwrap_or(0)),
            Box::new(a.startup_ms.max().unwrap_or(0)),
            Box::new(a.viewers.to_bytes()),
            Box::new(a.startup_ms.to_bytes()),
        ]
    }
}

fn register_rows<'a>(minute: i64, key: &'a str, shard: &'a str, hll: &Hll) -> impl Iterator<Item = Vec<Value>> + 'a {
    hll.registers().into_iter().map(move |(reg, rank)| -> Vec<Value> {
        vec![
            Box::new(minute),
            Box::new(key.to_owned()),
            Box::new(shard.to_owned()),
            Box::new(reg as i16),
            Box::new(i16::from(rank)),
        ]
    })
}

fn bucket_rows<'a>(
    minute: i64,
    key: &'a str,
    shard: &'a str,
    s: &'a QuantileSketch,
) -> impl Iterator<Item = Vec<Value>> + 'a {
    let zero = (s.zero_count() > 0).then_some((-1, s.zero_count()));
    zero.into_iter()
        .chain(s.buckets())
        .map(move |(bucket, n)| -> Vec<Value> {
            vec![
                Box::new(minute),
                Box::new(key.to_owned()),
                Box::new(shard.to_owned()),
                Box::new(bucket),
                Box::new(n as i64),
            ]
        })
}

const REGISTER_TYPES: [Type; 5] = [Type::INT8, Type::VARCHAR, Type::VARCHAR, Type::INT2, Type::INT2];
const BUCKET_TYPES: [Type; 5] = [Type::INT8, Type::VARCHAR, Type::VARCHAR, Type::INT4, Type::INT8];

/// Stages and merges viewing rows of `shard` (a shard id, or `*` for compacted rows).
pub(crate) async fn write_viewing(
    tx: &Transaction<'_>,
    shard: &str,
    rows: &[ViewingRow],
) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    // Rows are built before each await: lazy iterators held across an await trip a known
    // limit of the compiler's Send inference.
    let partials: Vec<_> = rows.iter().map(|r| ViewingCopy::row(shard, r)).collect();
    copy_rows(tx, ViewingCopy::SQL, &ViewingCopy::TYPES, partials).await?;
    let registers: Vec<_> = rows
        .iter()
        .flat_map(|r| register_rows(r.minute, &r.title_id, shard, &r.agg.viewers))
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_viewing_viewers (minute, title_id, shard_id, reg, rank) FROM STDIN BINARY",
        &REGISTER_TYPES,
        registers,
    )
    .await?;
    let buckets: Vec<_> = rows
        .iter()
        .flat_map(|r| bucket_rows(r.minute, &r.title_id, shard, &r.agg.startup_ms))
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_viewing_startup (minute, title_id, shard_id, bucket, n) FROM STDIN BINARY",
        &BUCKET_TYPES,
        buckets,
    )
    .await?;
    tx.batch_execute(MERGE_VIEWING).await
}

/// Stages and merges game rows of `shard`.
pub(crate) async fn write_games(
    tx: &Transaction<'_>,
    shard: &str,
    rows: &[GameRow],
) -> Result<(), tokio_postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let partials: Vec<_> = rows
        .iter()
        .map(|r| -> Vec<Value> {
            let a = &r.agg;
            vec![
                Box::new(r.minute),
                Box::new(r.game_id.clone()),
                Box::new(shard.to_owned()),
                Box::new(a.events),
                Box::new(a.sessions),
                Box::new(a.shots),
                Box::new(a.hits),
                Box::new(a.kills),
                Box::new(a.deaths),
                Box::new(a.purchases),
                Box::new(a.damage),
                Box::new(a.revenue_cents),
                Box::new(a.players.to_bytes()),
            ]
        })
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_games (minute, game_id, shard_id, events, sessions, shots, hits, kills, deaths, purchases,
            damage, revenue_cents, players) FROM STDIN BINARY",
        &[
            Type::INT8,
            Type::VARCHAR,
            Type::VARCHAR,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::BYTEA,
        ],
        partials,
    )
    .await?;
    let registers: Vec<_> = rows
        .iter()
        .flat_map(|r| register_rows(r.minute, &r.game_id, shard, &r.agg.players))
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_game_players (minute, game_id, shard_id, reg, rank) FROM STDIN BINARY",
        &REGISTER_TYPES,
        registers,
    )
    .await?;
    tx.batch_execute(MERGE_GAMES).await
}

async fn write_dead_letters(tx: &Transaction<'_>, letters: &[DeadLetter]) -> Result<(), tokio_postgres::Error> {
    if letters.is_empty() {
        return Ok(());
    }
    let staged: Vec<_> = letters
        .iter()
        .map(|d| -> Vec<Value> {
            let reason: String = d.reason.chars().take(MAX_REASON).collect();
            vec![
                Box::new(d.shard.0.clone()),
                Box::new(d.sequence.as_str().to_owned()),
                Box::new(d.sub_sequence as i32),
                Box::new(d.kind.as_str()),
                Box::new(d.field.clone()),
                Box::new(reason),
                Box::new(d.app_id.clone()),
                Box::new(d.partition_key.clone()),
                Box::new(d.data.to_vec()),
            ]
        })
        .collect();
    copy_rows(
        tx,
        "COPY inlet_stage_dead_letters (shard_id, sequence, sub_sequence, kind, field, reason, app_id, partition_key, data)
         FROM STDIN BINARY",
        &[
            Type::VARCHAR, Type::VARCHAR, Type::INT4, Type::VARCHAR, Type::VARCHAR, Type::VARCHAR, Type::VARCHAR,
            Type::VARCHAR, Type::BYTEA,
        ],
        staged,
    )
    .await?;
    tx.batch_execute(MERGE_DEAD_LETTERS).await
}

/// The commit's dedupe state: a few rows (one per minute touched), so plain statements; a
/// delete before each insert is the upsert Redshift runs too.
async fn write_seen(tx: &Transaction<'_>, c: &ShardCommit) -> Result<(), tokio_postgres::Error> {
    let shard = &c.token.shard.0;
    let seen = &c.seen;
    if let Some(before) = seen.forget_before_minute {
        tx.execute(
            "DELETE FROM inlet_seen_ids WHERE shard_id = $1 AND minute < $2",
            &[shard, &before],
        )
        .await?;
    }
    if !seen.added.is_empty() {
        let part = c.seen_part();
        let delete = tx
            .prepare("DELETE FROM inlet_seen_ids WHERE shard_id = $1 AND minute = $2 AND part = $3")
            .await?;
        let insert = tx
            .prepare("INSERT INTO inlet_seen_ids (shard_id, minute, part, ids) VALUES ($1, $2, $3, $4)")
            .await?;
        for ids in &seen.added {
            tx.execute(&delete, &[shard, &ids.minute, &part]).await?;
            tx.execute(&insert, &[shard, &ids.minute, &part, &ids.to_bytes()])
                .await?;
        }
    }
    if let Some(n) = seen.duplicates {
        tx.execute("DELETE FROM inlet_shard_duplicates WHERE shard_id = $1", &[shard])
            .await?;
        tx.execute(
            "INSERT INTO inlet_shard_duplicates (shard_id, duplicates) VALUES ($1, $2)",
            &[shard, &(n as i64)],
        )
        .await?;
    }
    Ok(())
}

/// One attempt at a commit. `Ok(false)`: fenced off, nothing applied.
async fn commit_once(pool: Pool, c: &ShardCommit) -> Result<bool, Attempt> {
    let mut client = connect(&pool).await?;
    let tx = client.transaction().await?;
    let t = &c.token;
    let checkpoint_seq = c.checkpoint.as_ref().map(|k| k.sequence.as_str().to_owned());
    let checkpoint_sub = c.checkpoint.as_ref().map(|k| k.sub_sequence as i32);
    // First, so the lease row stays locked until commit: a take waits for us, then sees a
    // counter that no longer matches only after this commit is whole.
    let fenced = tx
        .execute(
            "UPDATE inlet_leases SET checkpoint_seq = COALESCE($1, checkpoint_seq),
                    checkpoint_sub = COALESCE($2, checkpoint_sub), watermark_ms = COALESCE($3, watermark_ms),
                    finished = finished OR $4
              WHERE shard_id = $5 AND owner = $6 AND counter = $7",
            &[
                &checkpoint_seq,
                &checkpoint_sub,
                &c.watermark_ms,
                &c.shard_end,
                &t.shard.0,
                &t.owner,
                &(t.counter as i64),
            ],
        )
        .await?;
    if fenced == 0 {
        return Ok(false);
    }
    tx.batch_execute(STAGING).await?;
    write_viewing(&tx, t.shard.as_str(), &c.viewing).await?;
    write_games(&tx, t.shard.as_str(), &c.games).await?;
    write_dead_letters(&tx, &c.dead_letters).await?;
    write_seen(&tx, c).await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) fn corrupt(what: &'static str) -> impl Fn(inlet_sketches::SketchError) -> WarehouseError {
    move |e| WarehouseError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

pub(crate) const VIEWING_SELECT: &str = "SELECT minute, title_id, events, plays, watch_ms, rebuffers, rebuffer_ms,
    bitrate_sum_kbps, bitrate_samples, errors, viewers, startup_ms FROM inlet_viewing_partials";
pub(crate) const GAMES_SELECT: &str = "SELECT minute, game_id, events, sessions, shots, hits, kills, deaths, purchases,
    damage, revenue_cents, players FROM inlet_game_partials";

pub(crate) fn viewing_row(r: &Row) -> Result<ViewingRow, WarehouseError> {
    let agg = ViewingAgg {
        events: r.get(2),
        plays: r.get(3),
        watch_ms: r.get(4),
        rebuffers: r.get(5),
        rebuffer_ms: r.get(6),
        bitrate_sum_kbps: r.get(7),
        bitrate_samples: r.get(8),
        errors: r.get(9),
        viewers: Hll::from_bytes(r.get(10)).map_err(corrupt("viewers sketch"))?,
        startup_ms: QuantileSketch::from_bytes(r.get(11)).map_err(corrupt("startup sketch"))?,
    };
    Ok(ViewingRow {
        minute: r.get(0),
        title_id: r.get(1),
        agg,
    })
}

pub(crate) fn game_row(r: &Row) -> Result<GameRow, WarehouseError> {
    let agg = GameAgg {
        events: r.get(2),
        sessions: r.get(3),
        shots: r.get(4),
        hits: r.get(5),
        kills: r.get(6),
        deaths: r.get(7),
        purchases: r.get(8),
        damage: r.get(9),
        revenue_cents: r.get(10),
        players: Hll::from_bytes(r.get(11)).map_err(corrupt("players sketch"))?,
    };
    Ok(GameRow {
        minute: r.get(0),
        game_id: r.get(1),
        agg,
    })
}

impl PgWarehouse {
    async fn query(
        &self,
        operation: &'static str,
        sql: String,
        shard: Option<String>,
        from: i64,
        to: i64,
    ) -> Result<Vec<Row>, WarehouseError> {
        let (sql, shard) = (&sql, &shard);
        self.run(operation, |pool| async move {
            let c = connect(&pool).await?;
            let rows = match shard {
                Some(s) => c.query(sql, &[s, &from, &to]).await?,
                None => c.query(sql, &[&from, &to]).await?,
            };
            Ok(rows)
        })
        .await
    }
}

#[async_trait]
impl Warehouse for PgWarehouse {
    async fn commit(&self, commit: &ShardCommit) -> Result<(), WarehouseError> {
        let applied = self.run("commit", |pool| commit_once(pool, commit)).await?;
        if applied {
            Ok(())
        } else {
            Err(WarehouseError::lease_lost(&commit.token))
        }
    }

    async fn shard_partials(
        &self,
        shard: &ShardId,
        from_minute: i64,
    ) -> Result<(Vec<ViewingRow>, Vec<GameRow>), WarehouseError> {
        let filter = "WHERE shard_id = $1 AND minute >= $2 AND minute < $3";
        let s = Some(shard.0.clone());
        let v = self.query(
            "read shard partials",
            format!("{VIEWING_SELECT} {filter}"),
            s.clone(),
            from_minute,
            i64::MAX,
        );
        let g = self.query(
            "read shard partials",
            format!("{GAMES_SELECT} {filter}"),
            s,
            from_minute,
            i64::MAX,
        );
        let (v, g) = tokio::try_join!(v, g)?;
        Ok((
            v.iter().map(viewing_row).collect::<Result<_, _>>()?,
            g.iter().map(game_row).collect::<Result<_, _>>()?,
        ))
    }

    async fn shard_seen(&self, shard: &ShardId, from_minute: i64) -> Result<StoredSeen, WarehouseError> {
        let shard = &shard.0;
        let (parts, duplicates) = self
            .run("read remembered event ids", |pool| async move {
                let c = connect(&pool).await?;
                let parts = c
                    .query(
                        "SELECT minute, ids FROM inlet_seen_ids WHERE shard_id = $1 AND minute >= $2",
                        &[shard, &from_minute],
                    )
                    .await?;
                let duplicates = c
                    .query_opt(
                        "SELECT duplicates FROM inlet_shard_duplicates WHERE shard_id = $1",
                        &[shard],
                    )
                    .await?
                    .map_or(0, |r| r.get::<_, i64>(0));
                Ok((parts, duplicates))
            })
            .await?;
        let ids = parts
            .iter()
            .map(|r| {
                SeenIds::from_bytes(r.get(0), r.get::<_, &[u8]>(1))
                    .ok_or_else(|| WarehouseError::corrupt("remembered event ids", "length"))
            })
            .collect::<Result<_, _>>()?;
        Ok(StoredSeen {
            ids,
            duplicates: duplicates as u64,
        })
    }

    async fn viewing_rollups(&self, from_minute: i64, to_minute: i64) -> Result<Vec<ViewingRow>, WarehouseError> {
        let sql = format!("{VIEWING_SELECT} WHERE minute >= $1 AND minute < $2");
        let rows = self
            .query("read viewing rollups", sql, None, from_minute, to_minute)
            .await?;
        Ok(merge_viewing(
            rows.iter().map(viewing_row).collect::<Result<Vec<_>, _>>()?,
        ))
    }

    async fn game_rollups(&self, from_minute: i64, to_minute: i64) -> Result<Vec<GameRow>, WarehouseError> {
        let sql = format!("{GAMES_SELECT} WHERE minute >= $1 AND minute < $2");
        let rows = self
            .query("read game rollups", sql, None, from_minute, to_minute)
            .await?;
        Ok(merge_games(rows.iter().map(game_row).collect::<Result<Vec<_>, _>>()?))
    }

    async fn totals(&self) -> Result<Totals, WarehouseError> {
        let (aggregated, rows, duplicates) = self
            .run("totals", |pool| {
                async move {
                    let c = connect(&pool).await?;
                    let aggregated: i64 = c
                        .query_one(
                            "SELECT CAST((SELECT COALESCE(SUM(events), 0) FROM inlet_viewing_partials)
                                       + (SELECT COALESCE(SUM(events), 0) FROM inlet_game_partials) AS BIGINT)",
                            &[],
                        )
                        .await?
                        .get(0);
                    let rows = c
                        .query(
                            "SELECT kind, field, COUNT(*) FROM inlet_dead_letters GROUP BY kind, field ORDER BY kind, field",
                            &[],
                        )
                        .await?;
                    let duplicates: i64 = c
                        .query_one(
                            "SELECT CAST(COALESCE(SUM(duplicates), 0) AS BIGINT) FROM inlet_shard_duplicates",
                            &[],
                        )
                        .await?
                        .get(0);
                    Ok((aggregated, rows, duplicates))
                }
            })
            .await?;
        Totals::from_stored(
            aggregated,
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))),
            duplicates,
        )
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, WarehouseError> {
        let limit = limit as i64;
        let rows = self
            .run("read dead letters", |pool| async move {
                let c = connect(&pool).await?;
                Ok(c.query(
                    "SELECT shard_id, sequence, sub_sequence, kind, field, reason, app_id, partition_key, data
                           FROM inlet_dead_letters ORDER BY recorded_at, shard_id, sequence, sub_sequence LIMIT $1",
                    &[&limit],
                )
                .await?)
            })
            .await?;
        rows.iter()
            .map(|r| {
                let seq: String = r.get(1);
                let kind: String = r.get(3);
                Ok(DeadLetter {
                    shard: ShardId(r.get(0)),
                    sequence: SequenceNumber::parse(&seq)
                        .map_err(|e| WarehouseError::corrupt("dead letter sequence", e))?,
                    sub_sequence: r.get::<_, i32>(2) as u32,
                    kind: DeadLetterKind::from_stored(&kind)?,
                    field: r.get(4),
                    reason: r.get(5),
                    app_id: r.get(6),
                    partition_key: r.get(7),
                    data: Bytes::from(r.get::<_, Vec<u8>>(8)),
                })
            })
            .collect()
    }
}
