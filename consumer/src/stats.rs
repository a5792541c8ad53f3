//! Counters of what a worker has committed, for progress reports.
use inlet_seams::DeadLetterKind;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Committed counts, shared between a worker's shard tasks and whoever reports progress.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    aggregated: AtomicU64,
    dead: [AtomicU64; DeadLetterKind::ALL.len()],
    duplicates: AtomicU64,
    commits: AtomicU64,
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
