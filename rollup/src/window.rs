//! Event-time windows: UTC minutes, `floor(event_time_ms / 60000)`.

/// Milliseconds in one window.
pub const WINDOW_MS: i64 = 60_000;

/// The minute (window index) an event time falls in; floor division, so times before the
/// epoch land in negative minutes rather than all in minute 0.
pub fn minute_of(event_time_ms: i64) -> i64 {
    event_time_ms.div_euclid(WINDOW_MS)
}

/// How far behind a shard's watermark an event may be and still count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lateness {
    /// Allowed lateness in ms (default 5 minutes).
    pub allowed_ms: i64,
}

impl Default for Lateness {
    fn default() -> Self {
        Self { allowed_ms: 5 * 60_000 }
    }
}

impl Lateness {
    /// An event is late when it is older than `watermark - allowed`.
    pub fn is_late(&self, event_time_ms: i64, watermark_ms: Option<i64>) -> bool {
        watermark_ms.is_some_and(|w| event_time_ms < w.saturating_sub(self.allowed_ms))
    }

    /// The first minute that can still receive events under `watermark`: every earlier
    /// window is closed, because any event that could fall in it is late.
    pub fn first_open_minute(&self, watermark_ms: Option<i64>) -> i64 {
        match watermark_ms {
            None => i64::MIN,
            Some(w) => minute_of(w.saturating_sub(self.allowed_ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn minutes_floor_towards_negative_infinity() {
        assert_eq!(minute_of(0), 0);
        assert_eq!(minute_of(59_999), 0);
        assert_eq!(minute_of(60_000), 1);
        assert_eq!(minute_of(-1), -1);
    }

    #[test]
    fn lateness_boundary() {
        let l = Lateness { allowed_ms: 1000 };
        assert!(!l.is_late(5, None));
        assert!(!l.is_late(9_000, Some(10_000)));
        assert!(l.is_late(8_999, Some(10_000)));
    }

    proptest! {
        #[test]
        fn window_contains_its_time(t in -10_000_000_000_000i64..10_000_000_000_000i64) {
            let m = minute_of(t);
            prop_assert!(m * WINDOW_MS <= t && t < (m + 1) * WINDOW_MS);
        }

        /// No event that is not late can fall in a window before the first open minute.
        #[test]
        fn closed_windows_receive_nothing(w in 0i64..1_000_000_000, t in 0i64..1_000_000_000, allowed in 0i64..10_000_000) {
            let l = Lateness { allowed_ms: allowed };
            if !l.is_late(t, Some(w)) {
                prop_assert!(minute_of(t) >= l.first_open_minute(Some(w)));
            }
        }
    }
}
