//! Counters of what a worker has committed, for progress reports.
use inlet_seams::DeadLetterKind;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Committed counts, shared between a worker's shard tasks and whoever reports progress.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    aggregated: AtomicU64,
    dead: [AtomicU64; DeadLetterKind::ALL.len()],
    commits: AtomicU64,
}

/// A copy of [`ConsumerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Events aggregated.
    pub aggregated: u64,
    /// Events dead-lettered, by kind (in [`DeadLetterKind::ALL`] order).
    pub dead_lettered: [u64; DeadLetterKind::ALL.len()],
    /// Commits.
    pub commits: u64,
}

impl StatsSnapshot {
    /// Every event handled.
    pub fn handled(&self) -> u64 {
        self.aggregated + self.dead_lettered.iter().sum::<u64>()
    }
}

impl ConsumerStats {
    pub(crate) fn add_commit(&self, aggregated: u64, dead: &[u64; DeadLetterKind::ALL.len()]) {
        self.aggregated.fetch_add(aggregated, Relaxed);
        for (slot, n) in self.dead.iter().zip(dead) {
            slot.fetch_add(*n, Relaxed);
        }
        self.commits.fetch_add(1, Relaxed);
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
            commits: self.commits.load(Relaxed),
        }
    }
}
