//! Compaction: each shard's rows of final minutes folded into one shard-less row per minute
//! and key ([`FOLDED`]), so old minutes cost one row per title or game instead of one per
//! shard. Views and reads merge folded rows like any partial, so results do not move.
//!
//! A step is one transaction under an advisory lock (concurrent compactions would fold the
//! same rows twice). It raises the shards' `folded_before_minute` first: those lease rows
//! stay locked until the step commits, so a commit of the same shard waits, then meets the
//! new mark in its fence (a rebuild's row of a folded minute is refused; a live worker's rows
//! are never that old).
use crate::copy::{STAGING, write_games, write_viewing};
use crate::retry::{Attempt, connect};
use crate::rows::{GAMES_SELECT, VIEWING_SELECT, game_row, viewing_row};
use crate::warehouse::PgWarehouse;
use deadpool_postgres::Pool;
use inlet_rollup::row::{merge_games, merge_viewing};
use inlet_seams::{Compacted, FOLDED, FoldState, ShardId, WarehouseError, compact_in_steps, fold_plan};

/// The advisory lock compactions take (migrations hold `..._0001`).
const LOCK_KEY: i64 = 0x1e1e_7a11_0000_0002;

/// The rows the plan folds: `$1` shard ids, `$2` the minute each is folded before, `$3` the
/// earliest of them (a bound on the tables' leading `minute` key).
const PLANNED: &str = "p.minute >= $3 AND EXISTS (SELECT 1 FROM unnest($1::varchar[], $2::bigint[]) AS b(s, upto)
    WHERE b.s = p.shard_id AND p.minute < b.upto)";

/// One step: `None` when there was nothing to fold.
async fn step(pool: Pool, keep_minutes: i64) -> Result<Result<Option<Compacted>, WarehouseError>, Attempt> {
    let mut c = connect(&pool).await?;
    let tx = c.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
    let states: Vec<FoldState> = tx
        .query(
            "SELECT shard_id, open_from_minute,
                    (SELECT MIN(minute) FROM inlet_viewing_partials p WHERE p.shard_id = l.shard_id),
                    (SELECT MIN(minute) FROM inlet_game_partials p WHERE p.shard_id = l.shard_id)
               FROM inlet_leases l WHERE open_from_minute IS NOT NULL",
            &[],
        )
        .await?
        .iter()
        .map(|r| FoldState {
            shard: ShardId(r.get(0)),
            open_from_minute: r.get(1),
            first_row_minute: r
                .get::<_, Option<i64>>(2)
                .into_iter()
                .chain(r.get::<_, Option<i64>>(3))
                .min(),
        })
        .collect();
    // Sorted by shard: lease rows locked in the order commits lock them, so the two do not
    // deadlock.
    let plan = fold_plan(&states, keep_minutes);
    let Some(from) = plan.iter().map(|f| f.from_minute).min() else {
        return Ok(Ok(None));
    };
    let shards: Vec<&str> = plan.iter().map(|f| f.shard.as_str()).collect();
    let upto: Vec<i64> = plan.iter().map(|f| f.before_minute).collect();
    let args: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&shards, &upto, &from];
    tx.execute(
        "UPDATE inlet_leases l SET folded_before_minute = GREATEST(l.folded_before_minute, b.upto)
           FROM unnest($1::varchar[], $2::bigint[]) AS b(s, upto) WHERE l.shard_id = b.s",
        &args[..2],
    )
    .await?;
    let v = tx.query(&format!("{VIEWING_SELECT} p WHERE {PLANNED}"), &args).await?;
    let g = tx.query(&format!("{GAMES_SELECT} p WHERE {PLANNED}"), &args).await?;
    // The folded rows already stored for the same minutes and keys join the merge.
    let stored_v = tx
        .query(
            &format!(
                "{VIEWING_SELECT} f WHERE f.shard_id = '{FOLDED}' AND (f.minute, f.title_id) IN
                   (SELECT minute, title_id FROM inlet_viewing_partials p WHERE {PLANNED})"
            ),
            &args,
        )
        .await?;
    let stored_g = tx
        .query(
            &format!(
                "{GAMES_SELECT} f WHERE f.shard_id = '{FOLDED}' AND (f.minute, f.game_id) IN
                   (SELECT minute, game_id FROM inlet_game_partials p WHERE {PLANNED})"
            ),
            &args,
        )
        .await?;
    let partials = (v.len() + g.len()) as u64;
    // A stored sketch that does not decode stops the compaction before anything changes.
    let (v, g) = match (
        v.iter()
            .chain(&stored_v)
            .map(viewing_row)
            .collect::<Result<Vec<_>, _>>(),
        g.iter().chain(&stored_g).map(game_row).collect::<Result<Vec<_>, _>>(),
    ) {
        (Ok(v), Ok(g)) => (merge_viewing(v), merge_games(g)),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    for table in [
        "inlet_viewing_partials",
        "inlet_viewing_viewers",
        "inlet_viewing_startup",
        "inlet_game_partials",
        "inlet_game_players",
    ] {
        tx.execute(&format!("DELETE FROM {table} p WHERE {PLANNED}"), &args)
            .await?;
    }
    tx.batch_execute(STAGING).await?;
    write_viewing(&tx, &[(FOLDED, &v[..])]).await?;
    write_games(&tx, &[(FOLDED, &g[..])]).await?;
    tx.commit().await?;
    Ok(Ok(Some(Compacted {
        partials,
        folded: (v.len() + g.len()) as u64,
    })))
}

impl PgWarehouse {
    /// Compacts until nothing is left to fold; each step its own transaction.
    pub(crate) async fn compact_all(&self, keep_minutes: i64) -> Result<Compacted, WarehouseError> {
        compact_in_steps(|| async move { self.run("compact", |pool| step(pool, keep_minutes)).await? }).await
    }
}
