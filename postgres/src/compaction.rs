//! Compaction: per-shard partials of windows that are closed for their shard, and older
//! than a horizon, are folded into one final row per key (shard id `*`), so old days cost
//! one row per title or game instead of one per shard. The views and reads merge `*` rows
//! like any other partial, so results do not change.
use crate::copy::{STAGING, write_games, write_viewing};
use crate::retry::connect;
use crate::rows::{GAMES_SELECT, VIEWING_SELECT, game_row, viewing_row};
use crate::warehouse::PgWarehouse;
use inlet_rollup::row::{merge_games, merge_viewing};
use inlet_seams::WarehouseError;

/// The shard id of compacted rows.
pub const COMPACTED: &str = "*";

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Partial rows folded away (viewing and game).
    pub partials: u64,
    /// Final rows written.
    pub finals: u64,
}

/// Rows a shard will never write again: before its first open minute (its watermark minus
/// the allowed lateness), and before the horizon. `$1` = lateness ms, `$2` = horizon minute.
const CLOSED: &str = "p.minute < $2 AND (p.shard_id = '*' OR EXISTS (
    SELECT 1 FROM inlet_leases l WHERE l.shard_id = p.shard_id AND l.watermark_ms IS NOT NULL
       AND p.minute < FLOOR((l.watermark_ms - $1) / 60000.0)))";

impl PgWarehouse {
    /// Folds closed partials of minutes before `before_minute` into final rows, in one
    /// transaction (readers see either all partials or all finals).
    pub async fn compact(&self, before_minute: i64, lateness_ms: i64) -> Result<Compacted, WarehouseError> {
        self.run("compact", |pool| async move {
            let mut c = connect(&pool).await?;
            let tx = c.transaction().await?;
            let viewing_sql = format!("{VIEWING_SELECT} p WHERE {CLOSED} FOR UPDATE");
            let games_sql = format!("{GAMES_SELECT} p WHERE {CLOSED} FOR UPDATE");
            let v = tx.query(&viewing_sql, &[&lateness_ms, &before_minute]).await?;
            let g = tx.query(&games_sql, &[&lateness_ms, &before_minute]).await?;
            let partials = (v.len() + g.len()) as u64;
            // Corrupt stored sketches abort the compaction rather than lose data.
            let (Ok(v), Ok(g)) = (
                v.iter().map(viewing_row).collect::<Result<Vec<_>, _>>(),
                g.iter().map(game_row).collect::<Result<Vec<_>, _>>(),
            ) else {
                return Ok(Err(WarehouseError::Corrupt {
                    what: "partial rollup",
                    reason: "a stored sketch does not decode".into(),
                }));
            };
            let (v, g) = (merge_viewing(v), merge_games(g));
            for table in [
                "inlet_viewing_partials",
                "inlet_viewing_viewers",
                "inlet_viewing_startup",
                "inlet_game_partials",
                "inlet_game_players",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} p WHERE {CLOSED}"),
                    &[&lateness_ms, &before_minute],
                )
                .await?;
            }
            tx.batch_execute(STAGING).await?;
            write_viewing(&tx, &[(COMPACTED, &v[..])]).await?;
            write_games(&tx, &[(COMPACTED, &g[..])]).await?;
            tx.commit().await?;
            Ok(Ok(Compacted {
                partials,
                finals: (v.len() + g.len()) as u64,
            }))
        })
        .await?
    }
}
