//! Compaction: each shard's rows of final minutes folded into one shard-less row per minute
//! and key ([`FOLDED`]), so the stored rows stay bounded by the open windows instead of
//! growing with history times shards. One step is one write transaction; steps repeat until
//! nothing is left to fold (see [`fold_plan`] for how far each goes).
use crate::warehouse::{
    GAME_COLS, VIEWING_COLS, db_error, game_row, insert_games, insert_viewing, read_game, read_viewing, viewing_row,
};
use inlet_rollup::row::{merge_games, merge_viewing};
use inlet_rollup::{GameRow, ViewingRow};
use inlet_seams::{Compacted, FOLDED, FoldState, ShardId, WarehouseError, compact_in_steps, fold_plan};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

/// One step, in one transaction: `None` when there was nothing to fold.
fn step(c: &mut Connection, keep_minutes: i64) -> rusqlite::Result<Result<Option<Compacted>, WarehouseError>> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let plan = fold_plan(&states(&tx)?, keep_minutes);
    if plan.is_empty() {
        return Ok(Ok(None));
    }
    let (mut viewing, mut games, mut partials) = (Vec::new(), Vec::new(), 0u64);
    for f in &plan {
        let args = params![f.shard.as_str(), f.before_minute];
        let v = select(&tx, VIEWING_COLS, "viewing_partials", args, read_viewing)?;
        let g = select(&tx, GAME_COLS, "game_partials", args, read_game)?;
        partials += (v.len() + g.len()) as u64;
        viewing.extend(v);
        games.extend(g);
        for table in ["viewing_partials", "game_partials"] {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE shard_id = ?1 AND minute < ?2"))?
                .execute(args)?;
        }
        tx.prepare_cached(
            "UPDATE leases SET folded_before_minute = MAX(COALESCE(folded_before_minute, ?2), ?2) WHERE shard_id = ?1",
        )?
        .execute(args)?;
    }
    // The folded rows already stored for the same minutes and keys join the merge.
    let stored_v = folded_rows(
        &tx,
        VIEWING_COLS,
        "viewing_partials",
        "title_id",
        &viewing,
        |r| (r.0, &r.1),
        read_viewing,
    )?;
    let stored_g = folded_rows(
        &tx,
        GAME_COLS,
        "game_partials",
        "game_id",
        &games,
        |r| (r.0, &r.1),
        read_game,
    )?;
    viewing.extend(stored_v);
    games.extend(stored_g);
    // A stored sketch that does not decode stops the compaction before anything changes.
    let (v, g) = match (
        viewing
            .into_iter()
            .map(viewing_row)
            .collect::<Result<Vec<ViewingRow>, _>>(),
        games.into_iter().map(game_row).collect::<Result<Vec<GameRow>, _>>(),
    ) {
        (Ok(v), Ok(g)) => (merge_viewing(v), merge_games(g)),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    insert_viewing(&tx, FOLDED, &v)?;
    insert_games(&tx, FOLDED, &g)?;
    tx.commit()?;
    Ok(Ok(Some(Compacted {
        partials,
        folded: (v.len() + g.len()) as u64,
    })))
}

/// Every shard that committed since compaction was built, with its earliest row.
fn states(tx: &Transaction<'_>) -> rusqlite::Result<Vec<FoldState>> {
    tx.prepare_cached(
        "SELECT shard_id, open_from_minute,
                (SELECT MIN(minute) FROM viewing_partials p WHERE p.shard_id = l.shard_id),
                (SELECT MIN(minute) FROM game_partials p WHERE p.shard_id = l.shard_id)
         FROM leases l WHERE open_from_minute IS NOT NULL",
    )?
    .query_map([], |r| {
        let (v, g): (Option<i64>, Option<i64>) = (r.get(2)?, r.get(3)?);
        Ok(FoldState {
            shard: ShardId(r.get(0)?),
            open_from_minute: r.get(1)?,
            first_row_minute: v.into_iter().chain(g).min(),
        })
    })?
    .collect()
}

fn select<T>(
    tx: &Transaction<'_>,
    cols: &str,
    table: &str,
    args: &[&dyn rusqlite::ToSql],
    read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    tx.prepare_cached(&format!(
        "SELECT {cols} FROM {table} WHERE shard_id = ?1 AND minute < ?2"
    ))?
    .query_map(args, read)?
    .collect()
}

/// The stored folded row of each (minute, key) among `rows`, where there is one.
fn folded_rows<T, K: Ord + Clone + rusqlite::ToSql>(
    tx: &Transaction<'_>,
    cols: &str,
    table: &str,
    key: &str,
    rows: &[T],
    key_of: impl Fn(&T) -> (i64, &K),
    read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let keys: std::collections::BTreeSet<(i64, K)> = rows
        .iter()
        .map(|r| {
            let (minute, k) = key_of(r);
            (minute, k.clone())
        })
        .collect();
    let mut st = tx.prepare_cached(&format!(
        "SELECT {cols} FROM {table} WHERE shard_id = '{FOLDED}' AND minute = ?1 AND {key} = ?2"
    ))?;
    let mut out = Vec::new();
    for (minute, k) in &keys {
        out.extend(st.query_row(params![minute, k], read).optional()?);
    }
    Ok(out)
}

/// Compacts until nothing is left to fold; each step its own transaction.
pub(crate) async fn compact(conn: &crate::db::Shared, keep_minutes: i64) -> Result<Compacted, WarehouseError> {
    compact_in_steps(|| async move {
        conn.call(move |c| step(c, keep_minutes))
            .await
            .map_err(db_error("compact"))?
    })
    .await
}
