//! The dedupe state: a commit's remembered event ids and duplicate count, written in the
//! commit's transaction, and read back when a shard is restored.
use crate::retry::connect;
use crate::warehouse::PgWarehouse;
use inlet_rollup::SeenIds;
use inlet_seams::{ShardCommit, ShardId, StoredSeen, WarehouseError};
use tokio_postgres::Transaction;

/// The commit's dedupe state: a few rows (one per minute touched), so plain statements; a
/// delete before each insert is the upsert Redshift runs too.
pub(crate) async fn write_seen(tx: &Transaction<'_>, c: &ShardCommit) -> Result<(), tokio_postgres::Error> {
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

impl PgWarehouse {
    /// A shard's remembered event ids from `from_minute` on, and its duplicate count.
    pub(crate) async fn read_seen(&self, shard: &ShardId, from_minute: i64) -> Result<StoredSeen, WarehouseError> {
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
}
