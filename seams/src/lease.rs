//! The lease seam: who processes which shard, fenced by a counter that every take bumps.
//!
//! Rules (compatible with the KCL's lease lifecycle): a lease whose expiry has passed may be
//! taken by anyone; taking bumps the counter, so the previous owner's commits (guarded by
//! the counter it holds) fail from then on; a shard's lease is only taken once its
//! parents' leases are finished.
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
    /// Creates a lease (unowned, counter 0) for every shard that has none yet.
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
    /// Gives a held lease up, so another worker can take it at once.
    async fn release(&self, token: &LeaseToken) -> Result<(), LeaseError>;
}
