//! The pipeline's health, from successive samples of the warehouse and its lease store
//! (the same database): totals and dead letters, each shard's lease, checkpoint and
//! watermark, and events/s from the difference between samples. Pure: samples carry their
//! time, reports take `now`.
//!
//! Definitions (all measured at the warehouse, so they hold for any number of workers and
//! processes):
//! - *in*: events the consumers read off the stream and committed, aggregated or
//!   dead-lettered, per second;
//! - *out*: events aggregated into rollups per second (in = out + dead-lettered);
//! - *behind newest*: how far a shard's watermark (largest event time aggregated) trails the
//!   newest shard's: a shard falling behind its siblings;
//! - *event-time lag*: now minus the shard's watermark: how fresh its rollups are;
//! - *checkpoint age*: how long since a sample saw the shard's checkpoint move; a lower
//!   bound (`checkpoint_age_exact: false`) until the dashboard has seen it move once;
//! - *failing*: the shard's task failed since its last commit, as its holders reported it
//!   (a shard that cannot be read stays here, at its checkpoint, until `inlet shard skip`).
use inlet_seams::{Checkpoint, Lease, ShardFailure, ShardId, Totals};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};

/// Span the headline rates are averaged over.
const RATE_WINDOW_MS: i64 = 10_000;

/// One look at the warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When (wall clock, ms since the epoch).
    pub at_ms: i64,
    /// Aggregated and dead-lettered counts.
    pub totals: Totals,
    /// Every shard's lease.
    pub leases: Vec<Lease>,
    /// Shards whose tasks failed since their last commit.
    pub failures: Vec<ShardFailure>,
}

#[derive(Debug, Clone, Copy)]
struct Point {
    at_ms: i64,
    aggregated: i64,
    dead_lettered: i64,
    duplicates: i64,
}

#[derive(Debug, Clone)]
struct CheckpointSeen {
    checkpoint: Option<Checkpoint>,
    since_ms: i64,
    exact: bool,
}

/// The samples seen so far (counts of the last `capacity`, the latest in full).
#[derive(Debug)]
pub struct History {
    capacity: usize,
    points: VecDeque<Point>,
    latest: Option<Sample>,
    checkpoints: HashMap<ShardId, CheckpointSeen>,
    error: Option<(i64, String)>,
}

/// Events per second over an interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// End of the interval, ms since the epoch.
    pub at_ms: i64,
    /// Its length, seconds.
    pub seconds: f64,
    /// Events read and committed (aggregated + dead-lettered + duplicates) per second.
    pub in_per_s: f64,
    /// Events aggregated into rollups per second.
    pub out_per_s: f64,
    /// Events dead-lettered per second.
    pub dead_lettered_per_s: f64,
    /// Copies of events already counted, dropped per second.
    pub duplicates_per_s: f64,
}

/// Dead letters of one kind and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterCount {
    /// `corrupt_record`, `malformed`, `invalid` or `late`.
    pub kind: &'static str,
    /// The field at fault, if any.
    pub field: Option<String>,
    /// How many.
    pub count: i64,
}

/// One shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardHealth {
    /// Its id.
    pub shard: String,
    /// `held`, `expired` (its owner stopped renewing), `free` or `finished`.
    pub state: &'static str,
    /// The worker named in the lease.
    pub owner: Option<String>,
    /// `sequence/sub-sequence` of the last commit.
    pub checkpoint: Option<String>,
    /// Largest event time aggregated, ms since the epoch.
    pub watermark_ms: Option<i64>,
    /// How far the watermark trails the newest shard's, ms.
    pub behind_newest_ms: Option<i64>,
    /// Now minus the watermark, ms.
    pub event_time_lag_ms: Option<i64>,
    /// Since the checkpoint was seen to move, ms.
    pub checkpoint_age_ms: Option<i64>,
    /// Whether that age is exact to a sample interval (else a lower bound).
    pub checkpoint_age_exact: bool,
    /// Failures since the last commit (`null`: none).
    pub failing: Option<Failing>,
}

/// A shard's failures since its last commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failing {
    /// How many, by every holder.
    pub failures: u32,
    /// The last error.
    pub error: String,
    /// When the first was reported, ms since the epoch.
    pub since_ms: i64,
}

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// When this report was made.
    pub now_ms: i64,
    /// When the warehouse was last sampled successfully.
    pub sampled_at_ms: Option<i64>,
    /// Why the last sampling failed, if it failed after the last success.
    pub error: Option<String>,
    /// Events aggregated.
    pub aggregated: i64,
    /// Events dead-lettered.
    pub dead_lettered: i64,
    /// Copies of events already counted, dropped (`read = aggregated + dead_lettered +
    /// duplicates`).
    pub duplicates: i64,
    /// Every event read.
    pub read: i64,
    /// Dead letters by kind and field.
    pub dead_letters: Vec<DeadLetterCount>,
    /// Rates over the last ten seconds or so (`null` until two samples).
    pub rates: Option<Rates>,
    /// Rates between successive samples, oldest first.
    pub history: Vec<Rates>,
    /// Every shard.
    pub shards: Vec<ShardHealth>,
    /// Shards failing since their last commit.
    pub failing_shards: usize,
    /// The newest shard watermark.
    pub latest_event_ms: Option<i64>,
}

impl History {
    /// Keeps the counts of the last `capacity` samples (at least 2).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(2),
            points: VecDeque::new(),
            latest: None,
            checkpoints: HashMap::new(),
            error: None,
        }
    }

    /// Records a sample.
    pub fn record(&mut self, sample: Sample) {
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back(Point {
            at_ms: sample.at_ms,
            aggregated: sample.totals.aggregated,
            dead_lettered: sample.totals.dead_lettered(),
            duplicates: sample.totals.duplicates,
        });
        for lease in &sample.leases {
            let seen = self.checkpoints.get(&lease.shard);
            if seen.is_none_or(|s| s.checkpoint != lease.checkpoint) {
                let exact = seen.is_some();
                self.checkpoints.insert(
                    lease.shard.clone(),
                    CheckpointSeen {
                        checkpoint: lease.checkpoint.clone(),
                        since_ms: sample.at_ms,
                        exact,
                    },
                );
            }
        }
        self.latest = Some(sample);
    }

    /// Records a failed sampling.
    pub fn record_error(&mut self, at_ms: i64, error: String) {
        self.error = Some((at_ms, error));
    }

    /// The newest shard watermark of the latest sample.
    pub fn latest_event_ms(&self) -> Option<i64> {
        self.latest
            .as_ref()
            .and_then(|s| s.leases.iter().filter_map(|l| l.watermark_ms).max())
    }

    /// The report at `now_ms`.
    pub fn report(&self, now_ms: i64) -> HealthReport {
        let latest = self.latest.as_ref();
        let sampled_at_ms = latest.map(|s| s.at_ms);
        let newest = self.latest_event_ms();
        let history: Vec<Rates> = self
            .points
            .iter()
            .zip(self.points.iter().skip(1))
            .filter_map(|(a, b)| rates(a, b))
            .collect();
        let rates = self.points.back().and_then(|last| {
            let base = self
                .points
                .iter()
                .rev()
                .find(|p| p.at_ms <= last.at_ms - RATE_WINDOW_MS)
                .or(self.points.front())?;
            rates(base, last)
        });
        let shards: Vec<ShardHealth> = latest
            .map(|s| {
                s.leases
                    .iter()
                    .map(|l| self.shard(l, s.failures.iter().find(|f| f.shard == l.shard), newest, now_ms))
                    .collect()
            })
            .unwrap_or_default();
        let totals = latest.map(|s| &s.totals);
        HealthReport {
            now_ms,
            sampled_at_ms,
            error: self
                .error
                .as_ref()
                .filter(|(at, _)| sampled_at_ms.is_none_or(|s| *at >= s))
                .map(|(_, e)| e.clone()),
            aggregated: totals.map_or(0, |t| t.aggregated),
            dead_lettered: totals.map_or(0, Totals::dead_lettered),
            duplicates: totals.map_or(0, |t| t.duplicates),
            read: totals.map_or(0, Totals::read),
            dead_letters: totals
                .map(|t| {
                    t.dead_letters
                        .iter()
                        .map(|(kind, field, count)| DeadLetterCount {
                            kind: kind.as_str(),
                            field: field.clone(),
                            count: *count,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            rates,
            history,
            failing_shards: shards.iter().filter(|s| s.failing.is_some()).count(),
            shards,
            latest_event_ms: newest,
        }
    }

    fn shard(&self, l: &Lease, failure: Option<&ShardFailure>, newest: Option<i64>, now_ms: i64) -> ShardHealth {
        let seen = self.checkpoints.get(&l.shard);
        ShardHealth {
            shard: l.shard.to_string(),
            state: if l.finished {
                "finished"
            } else if l.owner.is_none() {
                "free"
            } else if l.expires_at_ms > now_ms {
                "held"
            } else {
                "expired"
            },
            owner: l.owner.clone(),
            checkpoint: l
                .checkpoint
                .as_ref()
                .map(|c| format!("{}/{}", c.sequence.as_str(), c.sub_sequence)),
            watermark_ms: l.watermark_ms,
            behind_newest_ms: l.watermark_ms.zip(newest).map(|(w, n)| n - w),
            event_time_lag_ms: l.watermark_ms.map(|w| now_ms - w),
            checkpoint_age_ms: seen
                .filter(|s| s.checkpoint.is_some())
                .map(|s| (now_ms - s.since_ms).max(0)),
            checkpoint_age_exact: seen.is_some_and(|s| s.exact),
            failing: failure.map(|f| Failing {
                failures: f.failures,
                error: f.error.clone(),
                since_ms: f.since_ms,
            }),
        }
    }
}

/// Rates from `a` to `b`; `None` over no time or across a reset (counts went down).
fn rates(a: &Point, b: &Point) -> Option<Rates> {
    let ms = b.at_ms - a.at_ms;
    let out = b.aggregated - a.aggregated;
    let dead = b.dead_lettered - a.dead_lettered;
    let duplicates = b.duplicates - a.duplicates;
    if ms <= 0 || out < 0 || dead < 0 || duplicates < 0 {
        return None;
    }
    let seconds = ms as f64 / 1000.0;
    Some(Rates {
        at_ms: b.at_ms,
        seconds,
        in_per_s: (out + dead + duplicates) as f64 / seconds,
        out_per_s: out as f64 / seconds,
        dead_lettered_per_s: dead as f64 / seconds,
        duplicates_per_s: duplicates as f64 / seconds,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use inlet_seams::{DeadLetterKind, SequenceNumber};

    fn lease(i: u32, owner: Option<&str>, expires_at_ms: i64, seq: Option<u64>, watermark_ms: Option<i64>) -> Lease {
        Lease {
            shard: ShardId::from_index(i),
            owner: owner.map(String::from),
            counter: 1,
            expires_at_ms,
            checkpoint: seq.map(|s| Checkpoint {
                sequence: SequenceNumber::from_u64(s),
                sub_sequence: 0,
            }),
            watermark_ms,
            folded_before_minute: None,
            parents: vec![],
            finished: false,
        }
    }

    fn sample(at_ms: i64, aggregated: i64, late: i64, leases: Vec<Lease>) -> Sample {
        Sample {
            at_ms,
            totals: Totals {
                aggregated,
                dead_letters: vec![(DeadLetterKind::Late, Some("event_time_ms".into()), late)],
                duplicates: 0,
            },
            leases,
            failures: vec![],
        }
    }

    #[test]
    fn nothing_sampled_yet() {
        let r = History::new(10).report(5);
        assert_eq!((r.sampled_at_ms, r.aggregated, r.rates), (None, 0, None));
        assert!(r.shards.is_empty() && r.history.is_empty());
    }

    #[test]
    fn rates_come_from_the_difference_between_samples() {
        let mut h = History::new(100);
        // 2 s apart: 1,000 aggregated and 10 dead-lettered per sample interval.
        for i in 0..10 {
            h.record(sample(i * 2_000, i * 1_000, i * 10, vec![]));
        }
        let r = h.report(18_500);
        assert_eq!(r.history.len(), 9);
        assert!(
            r.history
                .iter()
                .all(|p| p.out_per_s == 500.0 && p.dead_lettered_per_s == 5.0)
        );
        let rates = r.rates.unwrap();
        assert_eq!((rates.seconds, rates.in_per_s, rates.out_per_s), (10.0, 505.0, 500.0));
        assert_eq!((r.aggregated, r.dead_lettered), (9_000, 90));
        assert_eq!(r.dead_letters[0].kind, "late");
    }

    #[test]
    fn a_reset_gives_no_rate_and_capacity_bounds_the_history() {
        let mut h = History::new(3);
        h.record(sample(0, 500, 0, vec![]));
        h.record(sample(1_000, 100, 0, vec![])); // a new, smaller warehouse
        assert!(h.report(1_000).rates.is_none());
        h.record(sample(2_000, 300, 0, vec![]));
        h.record(sample(3_000, 600, 0, vec![]));
        let r = h.report(3_000);
        assert_eq!(
            r.history.iter().map(|p| p.out_per_s).collect::<Vec<_>>(),
            [200.0, 300.0]
        );
        assert_eq!(r.rates.unwrap().out_per_s, 250.0); // no sample 10 s back: from the oldest kept
    }

    #[test]
    fn shards_show_state_lag_and_checkpoint_age() {
        let mut h = History::new(10);
        h.record(sample(
            1_000,
            0,
            0,
            vec![
                lease(0, Some("w1"), 5_000, Some(7), Some(900_000)),
                lease(1, Some("w2"), 500, Some(3), Some(840_000)),
                lease(2, None, 0, None, None),
            ],
        ));
        let r = h.report(3_000);
        assert_eq!(r.latest_event_ms, Some(900_000));
        let [a, b, c] = &r.shards[..] else {
            panic!("{:?}", r.shards)
        };
        assert_eq!((a.state, b.state, c.state), ("held", "expired", "free"));
        assert_eq!(
            a.checkpoint.as_deref(),
            Some(format!("{}/0", SequenceNumber::from_u64(7).as_str()).as_str())
        );
        assert_eq!(
            (a.behind_newest_ms, b.behind_newest_ms, c.behind_newest_ms),
            (Some(0), Some(60_000), None)
        );
        assert_eq!(b.event_time_lag_ms, Some(3_000 - 840_000));
        // First sight: an age of at least 2 s; no checkpoint, no age.
        assert_eq!((a.checkpoint_age_ms, a.checkpoint_age_exact), (Some(2_000), false));
        assert_eq!(c.checkpoint_age_ms, None);
        // Shard 0 moves at 4 s, shard 1 does not.
        h.record(sample(
            4_000,
            0,
            0,
            vec![
                lease(0, Some("w1"), 9_000, Some(8), Some(910_000)),
                lease(1, Some("w2"), 500, Some(3), Some(840_000)),
            ],
        ));
        let r = h.report(6_000);
        assert_eq!(
            (r.shards[0].checkpoint_age_ms, r.shards[0].checkpoint_age_exact),
            (Some(2_000), true)
        );
        assert_eq!(
            (r.shards[1].checkpoint_age_ms, r.shards[1].checkpoint_age_exact),
            (Some(5_000), false)
        );
    }

    #[test]
    fn a_failing_shard_shows_its_failures_at_its_checkpoint() {
        let mut h = History::new(10);
        let mut s = sample(
            1_000,
            0,
            0,
            vec![
                lease(0, Some("w1"), 5_000, Some(7), None),
                lease(1, None, 0, None, None),
            ],
        );
        s.failures = vec![ShardFailure {
            shard: ShardId::from_index(0),
            failures: 4,
            error: "database disk image is malformed".into(),
            since_ms: 400,
            last_ms: 900,
        }];
        h.record(s);
        let r = h.report(1_000);
        assert_eq!(r.failing_shards, 1);
        let failing = r.shards[0].failing.as_ref().unwrap();
        assert_eq!((failing.failures, failing.since_ms), (4, 400));
        assert_eq!(failing.error, "database disk image is malformed");
        assert!(r.shards[0].checkpoint.is_some() && r.shards[1].failing.is_none());
    }

    #[test]
    fn an_error_shows_until_the_next_success() {
        let mut h = History::new(10);
        h.record(sample(1_000, 1, 0, vec![]));
        h.record_error(2_000, "connection refused".into());
        assert_eq!(h.report(2_000).error.as_deref(), Some("connection refused"));
        h.record(sample(3_000, 1, 0, vec![]));
        assert_eq!(h.report(3_000).error, None);
    }
}
