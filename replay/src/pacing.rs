//! Pacing: replay records at their original arrival pace times a speed factor. Pure: the
//! caller passes the clock.
use std::time::Duration;
use tokio::time::Instant;

/// Maps original arrival times onto the replay's clock.
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: f64,
    origin: Option<(i64, Instant)>,
}

impl Pacer {
    /// `speed` 10.0 is ten times faster than the original; 0 or less does not wait.
    pub fn new(speed: f64) -> Self {
        Self { speed, origin: None }
    }

    /// How long to wait, at `now`, before sending a record that arrived at `arrival_ms`. The
    /// first record sets the origin; a record behind schedule is sent at once (and the
    /// schedule is kept, so a slow stretch is caught up rather than shifting the rest).
    pub fn wait_for(&mut self, arrival_ms: i64, now: Instant) -> Option<Duration> {
        if self.speed <= 0.0 || !self.speed.is_finite() {
            return None;
        }
        let (first, started) = *self.origin.get_or_insert((arrival_ms, now));
        let offset_ms = (arrival_ms - first).max(0) as f64 / self.speed;
        let due = started + Duration::from_secs_f64(offset_ms / 1_000.0);
        due.checked_duration_since(now).filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_times_faster() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10.0);
        assert_eq!(p.wait_for(5_000, t0), None);
        assert_eq!(p.wait_for(6_000, t0), Some(Duration::from_millis(100)));
        // Behind schedule: at once, without moving the origin.
        assert_eq!(p.wait_for(6_000, t0 + Duration::from_millis(300)), None);
        assert_eq!(
            p.wait_for(10_000, t0 + Duration::from_millis(300)),
            Some(Duration::from_millis(200))
        );
        assert_eq!(Pacer::new(0.0).wait_for(1, t0), None);
    }
}
