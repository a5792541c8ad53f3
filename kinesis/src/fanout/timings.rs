//! The fan-out reader's timings: subscription renewal, stall and backoff limits, and how long a
//! new consumer may take to become `ACTIVE`.
use std::time::Duration;

/// A subscription without any event for this long is taken for dead and replaced (events
/// come with or without records; the emulator sends one a second).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Subscriptions are renewed after this long: the service ends them at 5 minutes.
pub const RENEW_AFTER: Duration = Duration::from_secs(4 * 60 + 30);
/// `next_batch` answers an empty batch after this long without records, so the caller can
/// commit and look around (its subscription stays open).
pub const MAX_WAIT: Duration = Duration::from_secs(1);
/// Least time between two `SubscribeToShard` calls for one shard (the service's limit is
/// one call per second per consumer and shard).
pub const MIN_SUBSCRIBE_GAP: Duration = Duration::from_secs(1);
/// Longest wait between two subscribe attempts after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// First wait after `ResourceInUseException` (the service allows one `SubscribeToShard` per
/// second per consumer and shard, and refuses a takeover within 5 s of the last one).
pub const RESOURCE_IN_USE_BACKOFF: Duration = Duration::from_secs(1);
/// How long opening a reader at LATEST keeps trying to subscribe (it subscribes at the open,
/// so that LATEST means then): longer than the service's 5 s refusal of a takeover.
pub const LATEST_SUBSCRIBE_WAIT: Duration = Duration::from_secs(10);
/// First wait after any other retryable failure.
pub const ERROR_BACKOFF: Duration = Duration::from_millis(200);
/// How long a new consumer may take to become `ACTIVE`.
pub const CONSUMER_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// The fan-out reader's timings; the defaults are the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutTimings {
    /// Replace a subscription after this long without an event.
    pub stall: Duration,
    /// Renew a subscription after this long (before the service's 5 minutes).
    pub renew_after: Duration,
    /// Answer an empty batch after this long without records.
    pub max_wait: Duration,
    /// Longest wait between two subscribe attempts after failures.
    pub max_backoff: Duration,
}

impl Default for FanoutTimings {
    fn default() -> Self {
        Self {
            stall: STALL_TIMEOUT,
            renew_after: RENEW_AFTER,
            max_wait: MAX_WAIT,
            max_backoff: MAX_BACKOFF,
        }
    }
}
