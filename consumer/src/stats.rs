//! Counters of what a worker has committed, and where its leases stand: for progress
//! reports and the readiness probe.
use crate::metrics as m;
use inlet_seams::{DeadLetterKind, ShardId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

/// Failures in a row after which a shard counts as one that cannot be read: the worker is not
/// ready, and says which shard and why. Fewer are the restarts a passing fault causes.
pub const STUCK_AFTER: u32 = 3;

/// Committed counts, shared between a worker's shard tasks and whoever reports progress.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    aggregated: AtomicU64,
    dead: [AtomicU64; DeadLetterKind::ALL.len()],
    duplicates: AtomicU64,
    commits: AtomicU64,
    /// Leases held after the last lease round.
    leases_held: AtomicU64,
    /// When the last lease round succeeded, ms since the epoch + 1 (0: never).
    round_ok_at_ms: AtomicU64,
    /// Whether that round left nothing this worker should still take.
    settled: AtomicU64,
    /// The largest lag behind the stream's newest record any shard reported since the last
    /// [`ConsumerStats::take_max_lag_ms`].
    max_lag_ms: AtomicU64,
    /// Shards whose task failed without a commit since: failures in a row and the last error.
    failing: Mutex<BTreeMap<ShardId, (u32, String)>>,
}

/// A copy of [`ConsumerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Events aggregated.
    pub aggregated: u64,
    /// Events dead-lettered, by kind (in [`DeadLetterKind::ALL`] order).
    pub dead_lettered: [u64; DeadLetterKind::ALL.len()],
    /// Copies of events already counted, dropped.
    pub duplicates: u64,
    /// Commits.
    pub commits: u64,
}

impl StatsSnapshot {
    /// Every event read and handled: aggregated, dead-lettered or dropped as a duplicate.
    pub fn handled(&self) -> u64 {
        self.aggregated + self.dead_lettered.iter().sum::<u64>() + self.duplicates
    }
}

impl ConsumerStats {
    pub(crate) fn add_commit(&self, counts: &crate::processor::CommitCounts) {
        self.aggregated.fetch_add(counts.aggregated, Relaxed);
        for (slot, n) in self.dead.iter().zip(&counts.dead) {
            slot.fetch_add(*n, Relaxed);
        }
        self.duplicates.fetch_add(counts.duplicates, Relaxed);
        self.commits.fetch_add(1, Relaxed);
    }

    /// After a lease round that succeeded at `now_ms`, holding `held` leases; `settled`: it
    /// found nothing left to take (every other shard is held by a live worker).
    pub fn round_ok(&self, now_ms: i64, held: usize, settled: bool) {
        self.leases_held.store(held as u64, Relaxed);
        self.settled.store(u64::from(settled), Relaxed);
        self.round_ok_at_ms
            .store(u64::try_from(now_ms).unwrap_or(0) + 1, Relaxed);
    }

    /// `shard`'s task failed with `error` (it restarts from its last commit).
    pub(crate) fn shard_failed(&self, shard: &ShardId, error: &str) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = failing.entry(shard.clone()).or_insert((0, String::new()));
        entry.0 += 1;
        entry.1 = error.to_owned();
        if entry.0 == STUCK_AFTER {
            tracing::error!(
                shard = %shard,
                failures = entry.0,
                error,
                "shard cannot be read: its task failed {STUCK_AFTER} times in a row; the worker reports not ready"
            );
        }
        metrics::gauge!(m::SHARDS_FAILING).set(failing.len() as f64);
    }

    /// `shard` committed: whatever failed before has passed.
    pub(crate) fn shard_committed(&self, shard: &ShardId) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        if failing.remove(shard).is_some() {
            metrics::gauge!(m::SHARDS_FAILING).set(failing.len() as f64);
        }
    }

    /// Shards failing now: failures in a row and the last error.
    pub fn failing_shards(&self) -> Vec<(ShardId, u32, String)> {
        let failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing.iter().map(|(s, (n, e))| (s.clone(), *n, e.clone())).collect()
    }

    /// A shard's reader is `ms` behind the newest record.
    pub fn lag(&self, ms: u64) {
        self.max_lag_ms.fetch_max(ms, Relaxed);
    }

    /// The largest lag reported since the last call, and starts over.
    pub fn take_max_lag_ms(&self) -> u64 {
        self.max_lag_ms.swap(0, Relaxed)
    }

    /// Leases held after the last round.
    pub fn leases_held(&self) -> u64 {
        self.leases_held.load(Relaxed)
    }

    /// Ready to be counted on (the readiness probe): a lease round succeeded within
    /// `failover` of `now_ms` (the lease table and the stream answer), and the worker holds
    /// leases or has nothing left to take (more workers than shards). Not ready says why.
    pub fn readiness(&self, now_ms: i64, failover: std::time::Duration) -> Result<(), String> {
        let Some(at) = self.round_ok_at_ms.load(Relaxed).checked_sub(1) else {
            return Err("no lease round has succeeded yet".into());
        };
        let age = u64::try_from(now_ms).unwrap_or(0).saturating_sub(at);
        if u128::from(age) > failover.as_millis() {
            return Err(format!("the last successful lease round was {age} ms ago"));
        }
        if self.leases_held() == 0 && self.settled.load(Relaxed) == 0 {
            return Err("taking leases".into());
        }
        if let Some((shard, n, error)) = self.failing_shards().into_iter().find(|(_, n, _)| *n >= STUCK_AFTER) {
            return Err(format!(
                "shard {shard} cannot be read: {n} failures in a row, the last: {error}"
            ));
        }
        Ok(())
    }

    /// The counts now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut dead_lettered = [0; DeadLetterKind::ALL.len()];
        for (out, slot) in dead_lettered.iter_mut().zip(&self.dead) {
            *out = slot.load(Relaxed);
        }
        StatsSnapshot {
            aggregated: self.aggregated.load(Relaxed),
            dead_lettered,
            duplicates: self.duplicates.load(Relaxed),
            commits: self.commits.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ready_once_a_round_succeeded_recently_and_leases_settled() {
        let s = ConsumerStats::default();
        let failover = Duration::from_secs(10);
        assert!(s.readiness(1_000, failover).is_err());
        s.round_ok(1_000, 0, false);
        assert_eq!(s.readiness(1_500, failover), Err("taking leases".into()));
        s.round_ok(2_000, 3, false);
        assert_eq!(s.readiness(2_500, failover), Ok(()));
        assert!(s.readiness(12_001, failover).is_err(), "stale");
        s.round_ok(13_000, 0, true);
        assert_eq!(s.readiness(13_000, failover), Ok(()), "more workers than shards");
    }

    #[test]
    fn a_shard_failing_again_and_again_makes_the_worker_not_ready_until_it_commits() {
        let s = ConsumerStats::default();
        let failover = Duration::from_secs(10);
        s.round_ok(1_000, 2, true);
        let shard = ShardId("shardId-000000000003".into());
        for _ in 1..STUCK_AFTER {
            s.shard_failed(&shard, "corrupt page");
        }
        assert_eq!(
            s.readiness(1_000, failover),
            Ok(()),
            "a passing fault restarts the task"
        );
        s.shard_failed(&shard, "corrupt page at seq 42");
        let why = s.readiness(1_000, failover).unwrap_err();
        assert!(
            why.contains("shardId-000000000003") && why.contains("3 failures in a row"),
            "{why}"
        );
        assert!(why.contains("corrupt page at seq 42"), "{why}");
        s.shard_committed(&shard);
        assert_eq!(s.readiness(1_000, failover), Ok(()));
        assert!(s.failing_shards().is_empty());
    }

    #[test]
    fn the_lag_is_the_largest_since_the_last_look() {
        let s = ConsumerStats::default();
        s.lag(5);
        s.lag(50);
        s.lag(7);
        assert_eq!(s.take_max_lag_ms(), 50);
        assert_eq!(s.take_max_lag_ms(), 0);
    }
}
