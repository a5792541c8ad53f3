//! The lease seam: who processes which shard, fenced by a counter that every take bumps.
//!
//! Rules (compatible with the KCL's lease lifecycle): a lease whose expiry has passed may be
//! taken by anyone; taking bumps the counter, so the previous owner's commits (guarded by
//! the counter it holds) fail from then on; a shard's lease is only taken once its
//! parents' leases are finished.
//!
//! # Cleaning up finished leases
//!
//! Like the KCL's `cleanupLeasesUponShardCompletion`, the lease of a shard read to its end is
//! deleted once its children have started ([`LeaseStore::delete_finished`]). The danger is a
//! parent still listed by the stream (Kinesis keeps closed shards until retention): the next
//! [`LeaseStore::ensure_leases`] must not create its lease again, or the parent would be read
//! a second time. No tombstone is kept; the children's leases are the record instead:
//!
//! - A child lease *has started* when it has a checkpoint or is finished. A child is only
//!   taken once each parent's lease is finished or absent, and only a holder commits, so a
//!   started child proves its parents are done. Checkpoints and `finished` never go back,
//!   so that proof is permanent.
//! - `ensure_leases` creates no lease for a shard that has no lease while some lease naming
//!   it as a parent has started ([`Lease::has_started`]): that shard was cleaned up (or was
//!   never needed). It creates the leases of one call parents first ([`parents_first`]), so
//!   a child's lease never exists before its listed parent's.
//! - `delete_finished` deletes a lease only if it is finished, not held (no owner, or its
//!   expiry passed), at least one lease names it as a parent, and every lease naming it as
//!   a parent has started (the KCL's rule: all children began). So right after a deletion
//!   `ensure_leases` refuses to bring it back, and always will.
//!
//! Both checks are single statements in the store, so a deletion racing an `ensure_leases`
//! is seen either before (the lease exists: nothing inserted) or after (a started child:
//! nothing inserted).
use crate::sequence::Checkpoint;
use crate::shard::{Shard, ShardId};
use async_trait::async_trait;

/// One shard's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The shard.
    pub shard: ShardId,
    /// The worker holding it, if any.
    pub owner: Option<String>,
    /// The fencing counter: bumped by every take.
    pub counter: u64,
    /// When it lapses unless renewed, ms since the epoch.
    pub expires_at_ms: i64,
    /// How far the shard has been processed.
    pub checkpoint: Option<Checkpoint>,
    /// The shard's watermark (largest event time aggregated), saved with the checkpoint.
    pub watermark_ms: Option<i64>,
    /// Minutes before this were folded by compaction: the shard's rows there are gone into
    /// the shard-less folded rows, and no commit may write one again.
    pub folded_before_minute: Option<i64>,
    /// Shards to finish first.
    pub parents: Vec<ShardId>,
    /// The shard was read to its end and everything committed.
    pub finished: bool,
}

impl Lease {
    /// Whether the lease is free to take at `now_ms` (nobody holds it, or it lapsed).
    pub fn is_available(&self, now_ms: i64) -> bool {
        !self.finished && (self.owner.is_none() || self.expires_at_ms <= now_ms)
    }
    /// Whether `owner` holds it, unexpired, at `now_ms`.
    pub fn is_held_by(&self, owner: &str, now_ms: i64) -> bool {
        self.owner.as_deref() == Some(owner) && self.expires_at_ms > now_ms
    }
    /// Whether processing of the shard began: it has a checkpoint, or it is finished (an empty
    /// shard ends without one). Once true, always true.
    pub fn has_started(&self) -> bool {
        self.checkpoint.is_some() || self.finished
    }
}

/// `lease` as its shard should start: one that has not started yet takes over its parents'
/// watermark (the lowest of them, `None` unless every parent's lease has one), so lateness and
/// the dedupe horizon go on from where its parents stopped instead of starting over (a copy of
/// an event a parent forgot could otherwise be aggregated again in the child).
pub fn inherit_watermark(mut lease: Lease, all: &[Lease]) -> Lease {
    if lease.has_started() || lease.parents.is_empty() || lease.watermark_ms.is_some() {
        return lease;
    }
    let parents: Option<Vec<i64>> = lease
        .parents
        .iter()
        .map(|p| all.iter().find(|l| &l.shard == p).and_then(|l| l.watermark_ms))
        .collect();
    lease.watermark_ms = parents.and_then(|w| w.into_iter().min());
    lease
}

/// `shards` ordered so that each shard comes after those of its parents that are in `shards`
/// (otherwise in their given order): the order `ensure_leases` creates leases in, so a child's
/// lease never exists without its listed parent's.
pub fn parents_first(shards: &[Shard]) -> Vec<&Shard> {
    let mut out: Vec<&Shard> = Vec::with_capacity(shards.len());
    let mut placed = vec![false; shards.len()];
    let index = |id: &ShardId| shards.iter().position(|s| &s.id == id);
    while out.len() < shards.len() {
        let before = out.len();
        for (i, s) in shards.iter().enumerate() {
            if !placed[i] && s.parents().iter().all(|p| index(p).is_none_or(|j| placed[j] || j == i)) {
                placed[i] = true;
                out.push(s);
            }
        }
        if out.len() == before {
            // A cycle (impossible in a real stream): keep the rest in their order.
            out.extend(shards.iter().enumerate().filter(|(i, _)| !placed[*i]).map(|(_, s)| s));
            break;
        }
    }
    out
}

/// Parents as stored in a lease row: ids joined by commas.
pub fn parents_to_stored(parents: &[ShardId]) -> String {
    parents.iter().map(ShardId::as_str).collect::<Vec<_>>().join(",")
}

/// Inverse of [`parents_to_stored`].
pub fn parents_from_stored(stored: &str) -> Vec<ShardId> {
    stored
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| ShardId(p.to_owned()))
        .collect()
}

/// Proof of holding a lease: what commits are fenced with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken {
    /// The shard.
    pub shard: ShardId,
    /// The holder.
    pub owner: String,
    /// The counter the holder took it with.
    pub counter: u64,
}

/// A shard whose task keeps failing, as its holders reported it: what operators see on
/// `/api/health` and the dashboard until a commit moves the shard on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFailure {
    /// The shard.
    pub shard: ShardId,
    /// Failures reported since the shard's last commit, by every holder.
    pub failures: u32,
    /// The last one's error.
    pub error: String,
    /// When the first of them was reported, ms since the epoch.
    pub since_ms: i64,
    /// When the last one was, ms since the epoch.
    pub last_ms: i64,
}

/// A lease store's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The store could not be reached or failed.
    #[error("lease store operation {operation} failed")]
    Store {
        /// Which operation.
        operation: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Where leases live.
#[async_trait]
pub trait LeaseStore: Send + Sync + std::fmt::Debug {
    /// Creates a lease (unowned, counter 0) for every shard that has none yet, parents before
    /// children ([`parents_first`]), except for a shard whose lease was cleaned up: one that
    /// some started lease names as a parent (see the module's doc).
    async fn ensure_leases(&self, shards: &[Shard]) -> Result<(), LeaseError>;
    /// Every lease.
    async fn list(&self) -> Result<Vec<Lease>, LeaseError>;
    /// Takes `shard`'s lease for `owner` if its counter is still `seen_counter` (the caller
    /// decided from [`LeaseStore::list`] that it may take it). `None` if someone else moved
    /// first.
    async fn take(
        &self,
        shard: &ShardId,
        seen_counter: u64,
        owner: &str,
        expires_at_ms: i64,
    ) -> Result<Option<LeaseToken>, LeaseError>;
    /// Extends a held lease. `false` if it was lost (taken by another worker).
    async fn renew(&self, token: &LeaseToken, expires_at_ms: i64) -> Result<bool, LeaseError>;
    /// Extends a worker's held leases, with one answer each, in order (`false`: lost). A store
    /// that can renews them in one round trip (a worker holding 128 shards would otherwise
    /// write 128 transactions a round); by default one by one.
    async fn renew_many(&self, tokens: &[LeaseToken], expires_at_ms: i64) -> Result<Vec<bool>, LeaseError> {
        let mut out = Vec::with_capacity(tokens.len());
        for t in tokens {
            out.push(self.renew(t, expires_at_ms).await?);
        }
        Ok(out)
    }
    /// Gives a held lease up, so another worker can take it at once.
    async fn release(&self, token: &LeaseToken) -> Result<(), LeaseError>;
    /// Deletes `shard`'s lease if it is finished, not held at `now_ms` (no owner, or expired),
    /// and at least one lease names it as a parent and every such lease has started
    /// ([`Lease::has_started`]); in one statement. `true` if this call deleted it (`false`
    /// when a rule does not hold, or the lease is already gone). See the module's doc for why
    /// `ensure_leases` never brings it back.
    async fn delete_finished(&self, shard: &ShardId, now_ms: i64) -> Result<bool, LeaseError>;
    /// Records that the task holding `token` failed with `error` at `at_ms`: adds one to the
    /// shard's failures since its last commit (which clears them). Nothing is recorded unless
    /// `token` still holds the lease, so a zombie cannot report.
    async fn report_failure(&self, token: &LeaseToken, error: &str, at_ms: i64) -> Result<(), LeaseError>;
    /// Every shard with failures since its last commit.
    async fn failures(&self) -> Result<Vec<ShardFailure>, LeaseError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::HashKeyRange;

    fn shard(id: &str, parents: &[&str]) -> Shard {
        Shard {
            id: ShardId(id.into()),
            hash_range: HashKeyRange::ALL,
            parent: parents.first().map(|p| ShardId((*p).into())),
            adjacent_parent: parents.get(1).map(|p| ShardId((*p).into())),
            closed: false,
        }
    }

    fn ids(shards: &[&Shard]) -> Vec<String> {
        shards.iter().map(|s| s.id.0.clone()).collect()
    }

    #[test]
    fn parents_first_puts_listed_parents_before_children() {
        // Merged child first, then one split child, its parent, a grandparent, an unlisted
        // parent (aged out) and an unrelated shard.
        let shards = [
            shard("m", &["c1", "x"]),
            shard("c1", &["p"]),
            shard("p", &["g"]),
            shard("g", &[]),
            shard("x", &["gone"]),
            shard("u", &[]),
        ];
        let order = ids(&parents_first(&shards));
        let at = |id: &str| order.iter().position(|s| s == id).unwrap();
        assert_eq!(order.len(), shards.len());
        assert!(at("g") < at("p") && at("p") < at("c1") && at("c1") < at("m") && at("x") < at("m"));
        // Without lineage inside the call, the given order is kept.
        let flat = [shard("b", &[]), shard("a", &["gone"])];
        assert_eq!(ids(&parents_first(&flat)), vec!["b", "a"]);
    }

    #[test]
    fn a_started_lease_is_one_with_a_checkpoint_or_finished() {
        let mut l = Lease {
            shard: ShardId::from_index(0),
            owner: None,
            counter: 0,
            expires_at_ms: 0,
            checkpoint: None,
            watermark_ms: None,
            folded_before_minute: None,
            parents: vec![],
            finished: false,
        };
        assert!(!l.has_started());
        l.finished = true;
        assert!(l.has_started());
        l.finished = false;
        l.checkpoint = Some(Checkpoint {
            sequence: crate::SequenceNumber::from_u64(1),
            sub_sequence: 0,
        });
        assert!(l.has_started());
    }

    fn lease(id: &str, parents: &[&str], watermark_ms: Option<i64>, started: bool) -> Lease {
        Lease {
            shard: ShardId(id.into()),
            owner: None,
            counter: 0,
            expires_at_ms: 0,
            checkpoint: started.then(|| Checkpoint {
                sequence: crate::SequenceNumber::from_u64(1),
                sub_sequence: 0,
            }),
            watermark_ms,
            folded_before_minute: None,
            parents: parents.iter().map(|p| ShardId((*p).into())).collect(),
            finished: false,
        }
    }

    #[test]
    fn a_new_child_starts_at_its_slowest_parents_watermark() {
        let all = [
            lease("a", &[], Some(50), true),
            lease("b", &[], Some(70), true),
            lease("n", &[], None, false),
        ];
        let merged = inherit_watermark(lease("m", &["a", "b"], None, false), &all);
        assert_eq!(merged.watermark_ms, Some(50));
        let started = inherit_watermark(lease("m", &["a", "b"], Some(90), true), &all);
        assert_eq!(started.watermark_ms, Some(90), "a started shard keeps its own");
        let unknown = inherit_watermark(lease("m", &["a", "gone"], None, false), &all);
        assert_eq!(
            unknown.watermark_ms, None,
            "a parent without a lease gives nothing to inherit"
        );
        let empty = inherit_watermark(lease("m", &["a", "n"], None, false), &all);
        assert_eq!(empty.watermark_ms, None);
    }
}
