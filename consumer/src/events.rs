//! Lease decisions, each one type whose `emit` logs one line and counts one metric, so the
//! log, the counter and the documented reasons (below and in `metrics`) cannot drift apart.
use crate::metrics as m;
use inlet_seams::{LeaseToken, ShardId};

/// How a lease was taken (label `how` of [`m::LEASES_TAKEN_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenHow {
    /// Never held, or released by its holder.
    Free,
    /// Its holder stopped renewing it.
    Expired,
    /// From a live worker: to balance, or because the consumer group moved the shard here.
    Stolen,
}

impl TakenHow {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TakenHow::Free => "free",
            TakenHow::Expired => "expired",
            TakenHow::Stolen => "stolen",
        }
    }
}

/// Why a lease was given back (label `reason` of [`m::LEASES_RELEASED_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// The shard was read to its end and committed as finished.
    ShardEnd,
    /// The shard task failed or panicked; the shard restarts from its last commit.
    Failed,
    /// The shard task stopped by itself.
    Stopped,
    /// The worker is shutting down.
    Shutdown,
    /// The consumer group moved the shard to another member.
    Revoked,
    /// The consumer group dropped this member.
    Lost,
}

impl ReleaseReason {
    /// Every reason, in a stable order.
    pub const ALL: [ReleaseReason; 6] = [
        ReleaseReason::ShardEnd,
        ReleaseReason::Failed,
        ReleaseReason::Stopped,
        ReleaseReason::Shutdown,
        ReleaseReason::Revoked,
        ReleaseReason::Lost,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::ShardEnd => "shard_end",
            ReleaseReason::Failed => "failed",
            ReleaseReason::Stopped => "stopped",
            ReleaseReason::Shutdown => "shutdown",
            ReleaseReason::Revoked => "revoked",
            ReleaseReason::Lost => "lost",
        }
    }
}

/// Where a lost lease was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostAt {
    /// A commit was fenced off: the shard task ended.
    Commit,
    /// Renewing it failed.
    Renewal,
}

/// A lease decision worth knowing.
#[derive(Debug, Clone, Copy)]
pub enum LeaseEvent<'a> {
    /// Taken by this worker.
    Taken {
        /// The new hold.
        token: &'a LeaseToken,
        /// From whom.
        how: TakenHow,
    },
    /// Taken by another worker: this one's commits are fenced off from now on.
    Lost {
        /// The hold that was lost.
        token: &'a LeaseToken,
        /// Where it showed.
        at: LostAt,
    },
    /// Given back.
    Released {
        /// The hold given back.
        token: &'a LeaseToken,
        /// Why.
        reason: ReleaseReason,
    },
    /// A finished shard's lease deleted once all its children started.
    CleanedUp {
        /// The shard.
        shard: &'a ShardId,
    },
}

impl LeaseEvent<'_> {
    /// Logs the decision (one `info` line) and counts it.
    pub fn emit(self) {
        match self {
            LeaseEvent::Taken { token, how } => {
                metrics::counter!(m::LEASES_TAKEN_TOTAL, "how" => how.as_str()).increment(1);
                tracing::info!(shard = %token.shard, counter = token.counter, how = how.as_str(), "lease taken");
            }
            LeaseEvent::Lost { token, at } => {
                metrics::counter!(m::LEASES_LOST_TOTAL).increment(1);
                let at = match at {
                    LostAt::Commit => "commit",
                    LostAt::Renewal => "renewal",
                };
                tracing::info!(shard = %token.shard, counter = token.counter, at, "lease lost");
            }
            LeaseEvent::Released { token, reason } => {
                metrics::counter!(m::LEASES_RELEASED_TOTAL, "reason" => reason.as_str()).increment(1);
                tracing::info!(shard = %token.shard, counter = token.counter, reason = reason.as_str(), "lease released");
            }
            LeaseEvent::CleanedUp { shard } => {
                metrics::counter!(m::LEASES_CLEANED_UP_TOTAL).increment(1);
                tracing::info!(shard = %shard, "lease cleaned up: shard finished and its children started");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metric's documentation lists every release reason the code can give.
    #[test]
    fn every_release_reason_is_documented_with_the_metric() {
        let doc = include_str!("metrics.rs");
        for r in ReleaseReason::ALL {
            assert!(doc.contains(r.as_str()), "{} is not in metrics.rs", r.as_str());
        }
    }
}
