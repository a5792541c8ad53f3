//! Leases in the warehouse database (see [`crate::warehouse`]): the fence and the commit
//! share a transaction.
use crate::retry::connect;
use crate::warehouse::PgWarehouse;
use async_trait::async_trait;
use inlet_seams::lease::{parents_first, parents_from_stored, parents_to_stored};
use inlet_seams::{
    Checkpoint, Lease, LeaseError, LeaseStore, LeaseToken, Shard, ShardFailure, ShardId, WarehouseError,
};
use tokio_postgres::error::SqlState;

fn lease_error(operation: &'static str) -> impl Fn(WarehouseError) -> LeaseError {
    move |e| LeaseError::Store {
        operation,
        source: Box::new(e),
    }
}

#[async_trait]
impl LeaseStore for PgWarehouse {
    async fn ensure_leases(&self, shards: &[Shard]) -> Result<(), LeaseError> {
        // Parents first: a child's lease never exists without its listed parent's (see
        // `inlet_seams::lease`), even though the inserts are separate statements.
        let ordered = parents_first(shards);
        let ids: Vec<String> = ordered.iter().map(|s| s.id.0.clone()).collect();
        let parents: Vec<String> = ordered.iter().map(|s| parents_to_stored(&s.parents())).collect();
        let (ids, parents) = (&ids, &parents);
        self.run("ensure leases", |pool| async move {
            let c = connect(&pool).await?;
            for (id, parents) in ids.iter().zip(parents) {
                // One statement each, no transaction: a worker creating the same lease at the
                // same moment makes ours a unique violation, which means the lease exists.
                // Not a shard whose lease was cleaned up: one a started lease names as a
                // parent. One statement, so one snapshot against a concurrent deletion.
                let inserted = c
                    .execute(
                        "INSERT INTO inlet_leases (shard_id, parents)
                         SELECT CAST($1 AS VARCHAR(256)), CAST($2 AS VARCHAR(1024))
                          WHERE NOT EXISTS (SELECT 1 FROM inlet_leases WHERE shard_id = CAST($1 AS VARCHAR(256)))
                            AND NOT EXISTS (SELECT 1 FROM inlet_leases c
                                             WHERE POSITION(',' || CAST($1 AS VARCHAR(256)) || ',' IN ',' || c.parents || ',') > 0
                                               AND (c.checkpoint_seq IS NOT NULL OR c.finished))",
                        &[id, parents],
                    )
                    .await;
                match inserted {
                    Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
                    other => {
                        other?;
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(lease_error("ensure_leases"))
    }

    async fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        let rows = self
            .run("list leases", |pool| async move {
                let c = connect(&pool).await?;
                Ok(c.query(
                    "SELECT shard_id, owner, counter, expires_at_ms, checkpoint_seq, checkpoint_sub, watermark_ms,
                                parents, finished, folded_before_minute
                           FROM inlet_leases ORDER BY shard_id",
                    &[],
                )
                .await?)
            })
            .await
            .map_err(lease_error("list"))?;
        rows.iter()
            .map(|r| {
                let sub = r.get::<_, Option<i32>>(5).map(|s| s as u32);
                let checkpoint =
                    Checkpoint::from_stored(r.get::<_, Option<String>>(4).as_deref(), sub).map_err(|e| {
                        LeaseError::Store {
                            operation: "list",
                            source: Box::new(e),
                        }
                    })?;
                let parents: String = r.get(7);
                Ok(Lease {
                    shard: ShardId(r.get(0)),
                    owner: r.get(1),
                    counter: r.get::<_, i64>(2) as u64,
                    expires_at_ms: r.get(3),
                    checkpoint,
                    watermark_ms: r.get(6),
                    folded_before_minute: r.get(9),
                    parents: parents_from_stored(&parents),
                    finished: r.get(8),
                })
            })
            .collect()
    }

    async fn take(
        &self,
        shard: &ShardId,
        seen_counter: u64,
        owner: &str,
        expires_at_ms: i64,
    ) -> Result<Option<LeaseToken>, LeaseError> {
        let seen = seen_counter as i64;
        let changed = self
            .run("take lease", |pool| async move {
                let c = connect(&pool).await?;
                Ok(c.execute(
                    "UPDATE inlet_leases SET owner = $1, counter = counter + 1, expires_at_ms = $2
                          WHERE shard_id = $3 AND counter = $4 AND NOT finished",
                    &[&owner, &expires_at_ms, &shard.0, &seen],
                )
                .await?)
            })
            .await
            .map_err(lease_error("take"))?;
        Ok((changed == 1).then(|| LeaseToken {
            shard: shard.clone(),
            owner: owner.to_owned(),
            counter: seen_counter + 1,
        }))
    }

    async fn renew(&self, token: &LeaseToken, expires_at_ms: i64) -> Result<bool, LeaseError> {
        let counter = token.counter as i64;
        let changed = self
            .run("renew lease", |pool| async move {
                let c = connect(&pool).await?;
                Ok(c.execute(
                    "UPDATE inlet_leases SET expires_at_ms = $1 WHERE shard_id = $2 AND owner = $3 AND counter = $4",
                    &[&expires_at_ms, &token.shard.0, &token.owner, &counter],
                )
                .await?)
            })
            .await
            .map_err(lease_error("renew"))?;
        Ok(changed == 1)
    }

    async fn renew_many(&self, tokens: &[LeaseToken], expires_at_ms: i64) -> Result<Vec<bool>, LeaseError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let shards: Vec<&str> = tokens.iter().map(|t| t.shard.as_str()).collect();
        let owners: Vec<&str> = tokens.iter().map(|t| t.owner.as_str()).collect();
        let counters: Vec<i64> = tokens.iter().map(|t| t.counter as i64).collect();
        // One statement for the round; the shards it renewed come back.
        let rows = self
            .run("renew leases", |pool| {
                let (shards, owners, counters) = (&shards, &owners, &counters);
                async move {
                    let c = connect(&pool).await?;
                    Ok(c.query(
                        "UPDATE inlet_leases l SET expires_at_ms = $1
                           FROM unnest($2::text[], $3::text[], $4::int8[]) AS t(shard_id, owner, counter)
                          WHERE l.shard_id = t.shard_id AND l.owner = t.owner AND l.counter = t.counter
                      RETURNING l.shard_id",
                        &[&expires_at_ms, shards, owners, counters],
                    )
                    .await?)
                }
            })
            .await
            .map_err(lease_error("renew"))?;
        let renewed: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(tokens.iter().map(|t| renewed.contains(t.shard.as_str())).collect())
    }

    async fn release(&self, token: &LeaseToken) -> Result<(), LeaseError> {
        let counter = token.counter as i64;
        self.run("release lease", |pool| {
            async move {
                let c = connect(&pool).await?;
                c.execute(
                    "UPDATE inlet_leases SET owner = NULL, expires_at_ms = 0 WHERE shard_id = $1 AND owner = $2 AND counter = $3",
                    &[&token.shard.0, &token.owner, &counter],
                )
                .await?;
                Ok(())
            }
        })
        .await
        .map_err(lease_error("release"))
    }

    async fn delete_finished(&self, shard: &ShardId, now_ms: i64) -> Result<bool, LeaseError> {
        let deleted = self
            .run("delete finished lease", |pool| async move {
                let mut c = connect(&pool).await?;
                let tx = c.transaction().await?;
                let n = tx.execute(
                    "DELETE FROM inlet_leases
                      WHERE shard_id = $1 AND finished AND (owner IS NULL OR expires_at_ms <= $2)
                        AND EXISTS (SELECT 1 FROM inlet_leases c
                                     WHERE POSITION(',' || CAST($1 AS VARCHAR(256)) || ',' IN ',' || c.parents || ',') > 0)
                        AND NOT EXISTS (SELECT 1 FROM inlet_leases c
                                         WHERE POSITION(',' || CAST($1 AS VARCHAR(256)) || ',' IN ',' || c.parents || ',') > 0
                                           AND c.checkpoint_seq IS NULL AND NOT c.finished)",
                    &[&shard.0, &now_ms],
                )
                .await?;
                if n == 1 {
                    // Its children copied its remembered ids at their first commit (they have
                    // all started): the parent's copy goes with its lease.
                    tx.execute("DELETE FROM inlet_seen_ids WHERE shard_id = $1", &[&shard.0])
                        .await?;
                }
                tx.commit().await?;
                Ok(n)
            })
            .await
            .map_err(lease_error("delete_finished"))?;
        // A retry after a lost answer finds nothing to delete: `false`, though it is gone.
        Ok(deleted == 1)
    }

    async fn report_failure(&self, token: &LeaseToken, error: &str, at_ms: i64) -> Result<(), LeaseError> {
        let counter = token.counter as i64;
        // The column's limit, cut at a character boundary.
        let error: String = error.chars().take(4096).collect();
        let error = &error;
        self.run("report shard failure", |pool| async move {
            let c = connect(&pool).await?;
            c.execute(
                "INSERT INTO inlet_shard_failures (shard_id, failures, error, since_ms, last_ms)
                 SELECT shard_id, 1, $4, $5, $5 FROM inlet_leases WHERE shard_id = $1 AND owner = $2 AND counter = $3
                 ON CONFLICT (shard_id) DO UPDATE
                    SET failures = inlet_shard_failures.failures + 1, error = EXCLUDED.error,
                        last_ms = EXCLUDED.last_ms",
                &[&token.shard.0, &token.owner, &counter, error, &at_ms],
            )
            .await?;
            Ok(())
        })
        .await
        .map_err(lease_error("report_failure"))
    }

    async fn failures(&self) -> Result<Vec<ShardFailure>, LeaseError> {
        let rows = self
            .run("list shard failures", |pool| async move {
                let c = connect(&pool).await?;
                Ok(c.query(
                    "SELECT shard_id, failures, error, since_ms, last_ms FROM inlet_shard_failures ORDER BY shard_id",
                    &[],
                )
                .await?)
            })
            .await
            .map_err(lease_error("failures"))?;
        Ok(rows
            .iter()
            .map(|r| ShardFailure {
                shard: ShardId(r.get(0)),
                failures: r.get::<_, i32>(1) as u32,
                error: r.get(2),
                since_ms: r.get(3),
                last_ms: r.get(4),
            })
            .collect())
    }
}
