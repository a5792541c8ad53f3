//! Leases in the warehouse file (see [`crate::warehouse`]).
use crate::db::boxed;
use crate::warehouse::EmbeddedWarehouse;
use async_trait::async_trait;
use inlet_seams::lease::{parents_first, parents_from_stored, parents_to_stored};
use inlet_seams::{Checkpoint, Lease, LeaseError, LeaseStore, LeaseToken, Shard, ShardFailure, ShardId};
use rusqlite::params;

fn store_error(operation: &'static str) -> impl Fn(rusqlite::Error) -> LeaseError {
    move |e| LeaseError::Store {
        operation,
        source: boxed(e),
    }
}

/// Extends a lease still held under the token: `?1` the new expiry, `?2..?4` the token.
const RENEW: &str = "UPDATE leases SET expires_at_ms = ?1 WHERE shard_id = ?2 AND owner = ?3 AND counter = ?4";

#[async_trait]
impl LeaseStore for EmbeddedWarehouse {
    async fn ensure_leases(&self, shards: &[Shard]) -> Result<(), LeaseError> {
        let rows: Vec<(String, String)> = parents_first(shards)
            .into_iter()
            .map(|s| (s.id.0.clone(), parents_to_stored(&s.parents())))
            .collect();
        self.conn
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                {
                    // Not a shard whose lease was cleaned up: one a started lease names as a parent
                    // (see `inlet_seams::lease`).
                    let mut st = tx.prepare_cached(
                        "INSERT OR IGNORE INTO leases (shard_id, parents)
                         SELECT ?1, ?2
                          WHERE NOT EXISTS (SELECT 1 FROM leases c
                                             WHERE instr(',' || c.parents || ',', ',' || ?1 || ',') > 0
                                               AND (c.checkpoint_seq IS NOT NULL OR c.finished <> 0))",
                    )?;
                    for (id, parents) in &rows {
                        st.execute(params![id, parents])?;
                    }
                }
                tx.commit()
            })
            .await
            .map_err(store_error("ensure_leases"))
    }

    async fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        let rows = self
            .conn
            .call(|c| {
                let mut st = c.prepare_cached(
                    "SELECT shard_id, owner, counter, expires_at_ms, checkpoint_seq, checkpoint_sub, watermark_ms,
                            parents, finished, folded_before_minute
                     FROM leases ORDER BY shard_id",
                )?;
                let rows = st
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<u32>>(5)?,
                            r.get::<_, Option<i64>>(6)?,
                            r.get::<_, String>(7)?,
                            r.get::<_, bool>(8)?,
                            r.get::<_, Option<i64>>(9)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
            .map_err(store_error("list"))?;
        rows.into_iter()
            .map(
                |(shard, owner, counter, expires_at_ms, seq, sub, watermark_ms, parents, finished, folded)| {
                    let checkpoint = Checkpoint::from_stored(seq.as_deref(), sub).map_err(|e| LeaseError::Store {
                        operation: "list",
                        source: Box::new(e),
                    })?;
                    Ok(Lease {
                        shard: ShardId(shard),
                        owner,
                        counter: counter as u64,
                        expires_at_ms,
                        checkpoint,
                        watermark_ms,
                        folded_before_minute: folded,
                        parents: parents_from_stored(&parents),
                        finished,
                    })
                },
            )
            .collect()
    }

    async fn take(
        &self,
        shard: &ShardId,
        seen_counter: u64,
        owner: &str,
        expires_at_ms: i64,
    ) -> Result<Option<LeaseToken>, LeaseError> {
        let (sid, who) = (shard.0.clone(), owner.to_owned());
        let changed = self
            .conn
            .call(move |c| {
                c.prepare_cached(
                    "UPDATE leases SET owner = ?1, counter = counter + 1, expires_at_ms = ?2
                     WHERE shard_id = ?3 AND counter = ?4 AND finished = 0",
                )?
                .execute(params![who, expires_at_ms, sid, seen_counter as i64])
            })
            .await
            .map_err(store_error("take"))?;
        Ok((changed == 1).then(|| LeaseToken {
            shard: shard.clone(),
            owner: owner.to_owned(),
            counter: seen_counter + 1,
        }))
    }

    async fn renew(&self, token: &LeaseToken, expires_at_ms: i64) -> Result<bool, LeaseError> {
        let t = token.clone();
        let changed = self
            .conn
            .call(move |c| {
                c.prepare_cached(RENEW)?
                    .execute(params![expires_at_ms, t.shard.0, t.owner, t.counter as i64])
            })
            .await
            .map_err(store_error("renew"))?;
        Ok(changed == 1)
    }

    async fn renew_many(&self, tokens: &[LeaseToken], expires_at_ms: i64) -> Result<Vec<bool>, LeaseError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let tokens = tokens.to_vec();
        self.conn
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut renewed = Vec::with_capacity(tokens.len());
                {
                    let mut st = tx.prepare_cached(RENEW)?;
                    for t in &tokens {
                        renewed.push(st.execute(params![expires_at_ms, t.shard.0, t.owner, t.counter as i64])? == 1);
                    }
                }
                tx.commit()?;
                Ok(renewed)
            })
            .await
            .map_err(store_error("renew"))
    }

    async fn release(&self, token: &LeaseToken) -> Result<(), LeaseError> {
        let t = token.clone();
        self.conn
            .call(move |c| {
                c.prepare_cached(
                    "UPDATE leases SET owner = NULL, expires_at_ms = 0 WHERE shard_id = ?1 AND owner = ?2 AND counter = ?3",
                )?
                .execute(params![t.shard.0, t.owner, t.counter as i64])
            })
            .await
            .map_err(store_error("release"))?;
        Ok(())
    }

    async fn delete_finished(&self, shard: &ShardId, now_ms: i64) -> Result<bool, LeaseError> {
        let sid = shard.0.clone();
        let deleted = self
            .conn
            .call(move |c| {
                let tx = c.transaction()?;
                let n = tx
                    .prepare_cached(
                        "DELETE FROM leases
                          WHERE shard_id = ?1 AND finished <> 0 AND (owner IS NULL OR expires_at_ms <= ?2)
                            AND EXISTS (SELECT 1 FROM leases c
                                         WHERE instr(',' || c.parents || ',', ',' || ?1 || ',') > 0)
                            AND NOT EXISTS (SELECT 1 FROM leases c
                                             WHERE instr(',' || c.parents || ',', ',' || ?1 || ',') > 0
                                               AND c.checkpoint_seq IS NULL AND c.finished = 0)",
                    )?
                    .execute(params![sid, now_ms])?;
                if n == 1 {
                    // Its children copied its remembered ids at their first commit (they have
                    // all started): the parent's copy goes with its lease.
                    tx.prepare_cached("DELETE FROM seen_ids WHERE shard_id = ?1")?
                        .execute([&sid])?;
                }
                tx.commit()?;
                Ok(n)
            })
            .await
            .map_err(store_error("delete_finished"))?;
        Ok(deleted == 1)
    }

    async fn report_failure(&self, token: &LeaseToken, error: &str, at_ms: i64) -> Result<(), LeaseError> {
        let (t, error) = (token.clone(), error.to_owned());
        self.conn
            .call(move |c| {
                c.prepare_cached(
                    "INSERT INTO shard_failures (shard_id, failures, error, since_ms, last_ms)
                     SELECT ?1, 1, ?4, ?5, ?5 FROM leases WHERE shard_id = ?1 AND owner = ?2 AND counter = ?3
                     ON CONFLICT (shard_id) DO UPDATE
                        SET failures = failures + 1, error = excluded.error, last_ms = excluded.last_ms",
                )?
                .execute(params![t.shard.0, t.owner, t.counter as i64, error, at_ms])
            })
            .await
            .map_err(store_error("report_failure"))?;
        Ok(())
    }

    async fn failures(&self) -> Result<Vec<ShardFailure>, LeaseError> {
        self.conn
            .call(|c| {
                let mut st = c.prepare_cached(
                    "SELECT shard_id, failures, error, since_ms, last_ms FROM shard_failures ORDER BY shard_id",
                )?;
                st.query_map([], |r| {
                    Ok(ShardFailure {
                        shard: ShardId(r.get(0)?),
                        failures: r.get(1)?,
                        error: r.get(2)?,
                        since_ms: r.get(3)?,
                        last_ms: r.get(4)?,
                    })
                })?
                .collect()
            })
            .await
            .map_err(store_error("failures"))
    }
}
