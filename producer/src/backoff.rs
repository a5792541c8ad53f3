//! Retry delays: exponential backoff with "equal jitter" (half fixed, half random), shared by
//! the retries of failed records and the probes of an unresponsive stream.
use std::time::Duration;

/// Delays doubling per attempt from `initial` up to `max`, jittered.
#[derive(Debug)]
pub(crate) struct Backoff {
    /// The first delay (`ProducerConfig::initial_backoff`).
    initial: Duration,
    /// The longest delay (`ProducerConfig::max_backoff`).
    max: Duration,
    /// Xorshift state for the jitter: cheap, and good enough to spread retries.
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            rng: 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()),
        }
    }

    /// The delay before attempt `attempts + 1`, ms: half of `initial × 2^(attempts-1)`
    /// (capped at `max`) fixed, half random, so retries of many records do not come back in
    /// lockstep.
    pub(crate) fn delay_ms(&mut self, attempts: u32) -> u64 {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        let full = self.initial.saturating_mul(factor).min(self.max).as_millis() as u64;
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        full / 2 + self.rng % (full / 2 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_millis(1_000))
    }

    #[test]
    fn delays_double_per_attempt_within_half_jitter_up_to_the_maximum() {
        let mut b = backoff();
        for (attempts, full) in [
            (0, 100),
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1_000),
            (40, 1_000),
        ] {
            for _ in 0..200 {
                let d = b.delay_ms(attempts);
                assert!(
                    (full / 2..=full).contains(&d),
                    "attempt {attempts}: {d} ms outside {full}/2..={full}"
                );
            }
        }
    }

    #[test]
    fn delays_are_jittered() {
        let mut b = backoff();
        let delays: std::collections::BTreeSet<u64> = (0..100).map(|_| b.delay_ms(3)).collect();
        assert!(delays.len() > 20, "retries would come back in lockstep: {delays:?}");
    }
}
