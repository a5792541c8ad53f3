//! Per-key rate limits: a token bucket of events. Pure: time comes in as an argument.
use crate::config_error::{ConfigError, config_error};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A key's rate limit, in events.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Events per second the key may post, sustained (default 5,000).
    pub events_per_second: f64,
    /// Events it may post at once after a quiet spell (default 20,000); at least
    /// `limits.max_batch_events`, so that any acceptable batch can pass.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            events_per_second: 5_000.0,
            burst: 20_000,
        }
    }
}

impl RateLimit {
    pub(crate) fn check(&self, setting: &str, max_batch_events: usize) -> Result<(), ConfigError> {
        if !(self.events_per_second.is_finite() && self.events_per_second > 0.0) {
            return Err(config_error(
                format!("{setting}.events_per_second"),
                "must be a positive number",
            ));
        }
        if (self.burst as usize) < max_batch_events {
            return Err(config_error(
                format!("{setting}.burst"),
                format!("{} is below limits.max_batch_events ({max_batch_events})", self.burst),
            ));
        }
        Ok(())
    }
}

/// A token bucket: holds up to `burst` tokens, refilled at `events_per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Duration,
}

impl TokenBucket {
    /// A full bucket at time `now` (any monotonic clock's offset).
    pub fn new(limit: RateLimit, now: Duration) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            at: now,
        }
    }

    /// Takes `n` tokens if there are that many at `now`; otherwise takes none and says how
    /// long until there will be.
    pub fn take(&mut self, n: u32, now: Duration) -> Result<(), Duration> {
        let elapsed = now.saturating_sub(self.at).as_secs_f64();
        self.at = self.at.max(now);
        let burst = f64::from(self.limit.burst);
        self.tokens = (self.tokens + elapsed * self.limit.events_per_second).min(burst);
        let n = f64::from(n);
        if n <= self.tokens {
            self.tokens -= n;
            return Ok(());
        }
        let missing = n.min(burst) - self.tokens;
        Err(Duration::from_secs_f64(missing / self.limit.events_per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// The wait a refusal asks for, to the nearest millisecond (it is computed in floats).
    fn wait_ms(r: Result<(), Duration>) -> u128 {
        (r.unwrap_err().as_secs_f64() * 1000.0).round() as u128
    }

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut b = TokenBucket::new(
            RateLimit {
                events_per_second: 100.0,
                burst: 50,
            },
            at(0),
        );
        assert_eq!(b.take(50, at(0)), Ok(()));
        // Empty: 10 events need 100 ms of refill.
        assert_eq!(wait_ms(b.take(10, at(0))), 100);
        assert_eq!(wait_ms(b.take(10, at(50))), 50, "half refilled");
        assert_eq!(b.take(10, at(100)), Ok(()));
        // A refused take takes nothing.
        assert_eq!(wait_ms(b.take(40, at(100))), 400);
        assert_eq!(b.take(5, at(150)), Ok(()));
        // A long quiet spell refills only up to the burst.
        assert_eq!(b.take(50, at(60_000)), Ok(()));
        assert!(b.take(1, at(60_000)).is_err());
        // A clock that goes backwards adds nothing.
        assert!(b.take(1, at(59_000)).is_err());
    }
}
