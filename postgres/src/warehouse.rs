//! The PostgreSQL warehouse: [`PgWarehouse`], its connection and migrations, the fenced
//! commit, and the [`Warehouse`] reads.
use crate::config::{PgConfig, parse_url};
use crate::copy::{STAGING, write_dead_letters, write_games, write_viewing};
use crate::migrations;
use crate::retry::{Attempt, connect, database};
use crate::rows::{GAMES_SELECT, VIEWING_SELECT, dead_letter_row, game_row, viewing_row};
use crate::seen::write_seen;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use inlet_rollup::row::{merge_games, merge_viewing};
use inlet_rollup::{GameRow, ViewingRow};
use inlet_seams::{
    Compacted, DeadLetter, ShardCommit, ShardId, StoredSeen, Totals, Warehouse, WarehouseError, answer_group,
};
use tokio_postgres::Row;

/// Rollups, dead letters, leases and checkpoints in PostgreSQL.
#[derive(Clone)]
pub struct PgWarehouse {
    pub(crate) pool: Pool,
    pub(crate) config: PgConfig,
}

impl std::fmt::Debug for PgWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWarehouse")
            .field("pool_size", &self.config.pool_size)
            .finish_non_exhaustive()
    }
}

/// Each connection attempt's limit unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl PgWarehouse {
    /// Connects (lazily: the pool opens connections on demand) and, if configured, applies
    /// the migrations, retrying while the server is starting.
    pub async fn connect(config: PgConfig) -> Result<Self, WarehouseError> {
        let url = parse_url(&config.url).map_err(|e| database("parse url", false, Box::new(e)))?;
        let tls = url
            .tls
            .connector()
            .map_err(|e| database("read TLS settings", false, Box::new(e)))?;
        let mut pg = url.pg;
        if pg.get_connect_timeout().is_none() {
            // A host that does not answer would otherwise hold each attempt for the OS's
            // TCP timeout (minutes).
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            pg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .build()
            .map_err(|e| database("build pool", false, Box::new(e)))?;
        let warehouse = Self { pool, config };
        warehouse
            .run_for("connect", warehouse.config.connect_for, |pool| async move {
                connect(&pool).await.map(drop)
            })
            .await?;
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
}

/// One attempt at a group of commits in one transaction: each fenced by its own lease
/// (`false`: fenced off, nothing of it applied), the rows of those that apply staged and
/// merged together.
async fn commit_once(pool: Pool, commits: &[ShardCommit]) -> Result<Vec<bool>, Attempt> {
    let mut client = connect(&pool).await?;
    let tx = client.transaction().await?;
    // Fences first, so the lease rows stay locked until commit: a take waits for us, then
    // sees a counter that no longer matches only after this commit is whole.
    let fence = tx
        .prepare(
            "UPDATE inlet_leases SET checkpoint_seq = COALESCE($1, checkpoint_seq),
                    checkpoint_sub = COALESCE($2, checkpoint_sub), watermark_ms = COALESCE($3, watermark_ms),
                    finished = finished OR $4,
                    open_from_minute = GREATEST(open_from_minute, $8)
              WHERE shard_id = $5 AND owner = $6 AND counter = $7
                AND (folded_before_minute IS NULL OR folded_before_minute <= $9)",
        )
        .await?;
    // Lease rows locked in shard order (as compaction locks them), so the two cannot deadlock.
    let mut order: Vec<usize> = (0..commits.len()).collect();
    order.sort_by(|a, b| commits[*a].token.shard.cmp(&commits[*b].token.shard));
    let mut applied = vec![false; commits.len()];
    for i in order {
        let c = &commits[i];
        let t = &c.token;
        let checkpoint_seq = c.checkpoint.as_ref().map(|k| k.sequence.as_str().to_owned());
        let checkpoint_sub = c.checkpoint.as_ref().map(|k| k.sub_sequence as i32);
        let fenced = tx
            .execute(
                &fence,
                &[
                    &checkpoint_seq,
                    &checkpoint_sub,
                    &c.watermark_ms,
                    &c.shard_end,
                    &t.shard.0,
                    &t.owner,
                    &(t.counter as i64),
                    &c.open_from_minute,
                    &c.first_minute().unwrap_or(i64::MAX),
                ],
            )
            .await?;
        applied[i] = fenced == 1;
    }
    let live: Vec<&ShardCommit> = commits
        .iter()
        .zip(&applied)
        .filter(|(_, a)| **a)
        .map(|(c, _)| c)
        .collect();
    if live.is_empty() {
        return Ok(applied);
    }
    // The shards moved on: whatever failed before has passed.
    let shards: Vec<&str> = live.iter().map(|c| c.token.shard.as_str()).collect();
    tx.execute("DELETE FROM inlet_shard_failures WHERE shard_id = ANY($1)", &[&shards])
        .await?;
    tx.batch_execute(STAGING).await?;
    let viewing: Vec<(&str, &[ViewingRow])> = live.iter().map(|c| (c.token.shard.as_str(), &c.viewing[..])).collect();
    write_viewing(&tx, &viewing).await?;
    let games: Vec<(&str, &[GameRow])> = live.iter().map(|c| (c.token.shard.as_str(), &c.games[..])).collect();
    write_games(&tx, &games).await?;
    let letters: Vec<&DeadLetter> = live.iter().flat_map(|c| &c.dead_letters).collect();
    write_dead_letters(&tx, &letters).await?;
    for c in &live {
        write_seen(&tx, c).await?;
    }
    tx.commit().await?;
    Ok(applied)
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
        self.commit_many(std::slice::from_ref(commit))
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    async fn commit_many(&self, commits: &[ShardCommit]) -> Vec<Result<(), WarehouseError>> {
        if commits.is_empty() {
            return Vec::new();
        }
        let attempt = self.run("commit", |pool| commit_once(pool, commits)).await;
        answer_group(self, commits, attempt).await
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
        self.read_seen(shard, from_minute).await
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
        rows.iter().map(dead_letter_row).collect()
    }

    async fn compact(&self, keep_minutes: i64) -> Result<Compacted, WarehouseError> {
        self.compact_all(keep_minutes).await
    }
}
