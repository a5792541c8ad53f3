//! The timeline and quantile maths of `inlet bench`: timelines are `(ms since the epoch, count)`
//! points, each count non-decreasing.
use anyhow::{Result, bail};

/// Latency is sampled at every this many events.
pub(super) const LATENCY_STEP: u64 = 1_000;

/// A timeline: `(ms since the epoch, events so far)`, in time order.
pub(super) type Timeline = Vec<(u64, u64)>;

/// What the timelines say about a run.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Timing {
    /// First event sent → last event committed, s (at least 0.001).
    pub(super) wall_s: f64,
    /// When the producer had been handed the last event, s after the first.
    pub(super) sent_s: f64,
    /// Every [`LATENCY_STEP`]-th event's latency and the last's, sorted, ms.
    pub(super) latency: Vec<u64>,
}

impl Timing {
    /// Reads the figures off the producer's `sent` timeline and each worker's `committed` one,
    /// for a run of `events` events.
    pub(super) fn from_timelines(sent: &[(u64, u64)], committed: &[Timeline], events: u64) -> Result<Self> {
        let committed = sum_timelines(committed);
        let Some(&(first_sent, _)) = sent.first() else {
            bail!("the producer's timeline is empty");
        };
        let Some(last_committed) = reached(&committed, events) else {
            bail!(
                "the workers' timelines add up to {} events, not {}",
                committed.last().map_or(0, |p| p.1),
                events
            );
        };
        let wall_s = (last_committed.saturating_sub(first_sent) as f64 / 1000.0).max(0.001);
        let sent_s = sent.last().map_or(0, |p| p.0.saturating_sub(first_sent)) as f64 / 1000.0;
        let mut latency = latencies(sent, &committed, events, LATENCY_STEP);
        latency.sort_unstable();
        Ok(Self {
            wall_s,
            sent_s,
            latency,
        })
    }
}

/// Timelines of counts (each non-decreasing) summed into one: the total at each change.
fn sum_timelines(timelines: &[Timeline]) -> Timeline {
    let mut points: Vec<(u64, usize, u64)> = timelines
        .iter()
        .enumerate()
        .flat_map(|(i, t)| t.iter().map(move |&(ms, n)| (ms, i, n)))
        .collect();
    points.sort_by_key(|p| p.0); // stable: each timeline's own order is kept
    let mut current = vec![0u64; timelines.len()];
    let mut total = 0u64;
    let mut out: Timeline = Vec::new();
    for (ms, i, n) in points {
        total = (total + n).saturating_sub(current[i]);
        current[i] = n;
        match out.last_mut() {
            Some(last) if last.0 == ms => last.1 = total,
            _ => out.push((ms, total)),
        }
    }
    out
}

/// When a timeline first reached `k` events.
fn reached(timeline: &[(u64, u64)], k: u64) -> Option<u64> {
    timeline.get(timeline.partition_point(|p| p.1 < k)).map(|p| p.0)
}

/// The latency of every `step`-th event and of the last, ms: when the committed count reached
/// k minus when the k-th event was sent.
fn latencies(sent: &[(u64, u64)], committed: &[(u64, u64)], events: u64, step: u64) -> Vec<u64> {
    let mut ks: Vec<u64> = (1..=events / step).map(|i| i * step).collect();
    if !events.is_multiple_of(step) {
        ks.push(events);
    }
    ks.into_iter()
        .filter_map(|k| Some(reached(committed, k)?.saturating_sub(reached(sent, k)?)))
        .collect()
}

/// The nearest-rank `q` quantile of sorted values.
pub(super) fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_add_up_and_latency_is_read_off_them() {
        let a = vec![(100, 0), (1_000, 2_000), (2_000, 3_000)];
        let b = vec![(100, 0), (1_000, 1_000), (1_500, 2_000)];
        let sum = sum_timelines(&[a, b]);
        assert_eq!(sum, vec![(100, 0), (1_000, 3_000), (1_500, 4_000), (2_000, 5_000)]);
        assert_eq!(reached(&sum, 3_000), Some(1_000));
        assert_eq!(reached(&sum, 3_001), Some(1_500));
        assert_eq!(reached(&sum, 5_001), None);
        let sent = vec![(0, 0), (10, 1_000), (20, 2_000), (30, 3_000), (40, 4_000), (50, 5_000)];
        let lat = latencies(&sent, &sum, 5_000, 1_000);
        assert_eq!(lat, vec![990, 980, 970, 1_460, 1_950]);
        let mut sorted = lat;
        sorted.sort_unstable();
        assert_eq!(quantile(&sorted, 0.5), Some(990));
        assert_eq!(quantile(&sorted, 0.99), Some(1_950));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(latencies(&sent, &sum, 4_500, 1_000).len(), 5);
    }

    #[test]
    fn timing_is_read_off_the_producer_and_the_workers() {
        let sent = vec![(0, 0), (10, 1_000), (20, 2_000), (30, 3_000), (40, 4_000), (50, 5_000)];
        let a = vec![(100, 0), (1_000, 2_000), (2_000, 3_000)];
        let b = vec![(100, 0), (1_000, 1_000), (1_500, 2_000)];
        let t = Timing::from_timelines(&sent, &[a.clone(), b.clone()], 5_000).ok();
        assert_eq!(
            t,
            Some(Timing {
                wall_s: 2.0,
                sent_s: 0.05,
                latency: vec![970, 980, 990, 1_460, 1_950],
            })
        );
        assert!(Timing::from_timelines(&[], &[a.clone(), b.clone()], 5_000).is_err());
        assert!(Timing::from_timelines(&sent, &[a, b], 5_001).is_err());
        let instant = Timing::from_timelines(&[(7, 1)], &[vec![(7, 1)]], 1).ok();
        assert_eq!(instant.map(|t| t.wall_s), Some(0.001));
    }
}
