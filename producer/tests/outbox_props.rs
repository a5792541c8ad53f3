#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
//! Property tests of the pure outbox: random pushes, time steps, calls (forced or not),
//! completions with random successes, retryable failures and throttling, and shard map
//! changes. Every call is checked against a model of the per-shard queues (order, retries at
//! the front, retry times, exactly once per attempt), the call limits, strict order, the
//! per-shard rate over every sliding second, and `next_wakeup`; at the end, with time moving
//! to each wakeup and forced calls, everything is written exactly once. Plus unit tests of
//! the edge cases.

use bytes::Bytes;
use inlet_producer::batcher::Ready;
use inlet_producer::outbox::{Outbox, OutboxLimits};
use inlet_seams::{PutRecord, ShardRate};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet, VecDeque};

/// The outbox's floor on a throttled shard's rate (its `MIN_RATE_FACTOR`).
const MIN_RATE_FACTOR: f64 = 0.05;

/// A stream record of `size` bytes (partition key + data, at least 1) for `shard`, carrying
/// `id` as its one ack token.
fn ready(id: u64, shard: usize, size: usize) -> Ready<u64> {
    Ready {
        record: PutRecord {
            partition_key: "k".to_owned(),
            explicit_hash_key: None,
            data: Bytes::from(vec![b'x'; size.saturating_sub(1)]),
        },
        shard,
        user_records: 1,
        permits: size,
        attempts: 0,
        first_ms: 0,
        not_before_ms: 0,
        spool_offset: 0,
        acks: vec![(0, id)],
    }
}

/// A record's cost in its shard's byte budget and in a call.
fn size(r: &Ready<u64>) -> usize {
    r.record.partition_key.len() + r.record.data.len()
}

fn id(r: &Ready<u64>) -> u64 {
    r.acks[0].1
}

fn ids(call: &[Ready<u64>]) -> Vec<u64> {
    call.iter().map(id).collect()
}

fn limits(max_put_records: usize, max_put_bytes: usize, rate: Option<(u64, u64)>, strict_order: bool) -> OutboxLimits {
    OutboxLimits {
        max_put_records,
        max_put_bytes,
        shard_rate: rate.map(|(bytes_per_sec, records_per_sec)| ShardRate {
            bytes_per_sec,
            records_per_sec,
        }),
        rate_headroom: 1.0,
        strict_order,
    }
}

/// Forced calls at `now` until none is left.
/// Forced calls until none comes, each completed at once (a shard is in one call at a time).
fn drain_now(outbox: &mut Outbox<u64>, now: u64) -> Vec<Vec<Ready<u64>>> {
    std::iter::from_fn(|| {
        let call = outbox.next_call(now, true)?;
        call.iter().for_each(|r| outbox.done(r.shard));
        Some(call)
    })
    .collect()
}

// ---------------------------------------------------------------------------------------
// The model-checked simulation.

#[derive(Debug, Clone, Copy)]
struct Config {
    limits: OutboxLimits,
    shards: usize,
}

impl Config {
    /// A shard's (bytes/s, records/s) after headroom, when metered.
    fn rate(&self) -> Option<(f64, f64)> {
        let h = self.limits.rate_headroom;
        self.limits
            .shard_rate
            .map(|r| (r.bytes_per_sec as f64 * h, r.records_per_sec as f64 * h))
    }

    /// What record sizes are drawn against: a shard's bucket when metered, else a call.
    fn scale(&self) -> usize {
        self.rate()
            .map_or(self.limits.max_put_bytes, |(bytes, _)| bytes as usize)
    }
}

fn arb_config() -> impl Strategy<Value = Config> {
    (
        1usize..6,
        1usize..12,
        100usize..20_000,
        proptest::option::weighted(0.7, (500u64..20_000, prop_oneof![2u64..20, 20u64..200])),
        prop::sample::select(vec![1.0, 0.8, 0.5]),
        any::<bool>(),
    )
        .prop_map(|(shards, max_put_records, max_put_bytes, rate, headroom, strict)| {
            let mut limits = limits(max_put_records, max_put_bytes, rate, strict);
            limits.rate_headroom = headroom;
            Config { limits, shards }
        })
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Written,
    /// A retryable failure: back with this backoff.
    Retry {
        backoff_ms: u64,
    },
    /// The shard was over its limit: `throttled`, and back with this backoff.
    Throttled {
        backoff_ms: u64,
    },
}

#[derive(Debug, Clone)]
enum Op {
    /// Push `count` records to `shard` (modulo the shard count), each `permille` of the size
    /// scale (under 50: smaller than even a throttled shard's bucket).
    Push {
        shard: usize,
        count: usize,
        permille: usize,
    },
    /// Let time pass.
    Advance { ms: u64 },
    /// One `next_call`.
    Call { force: bool },
    /// Forced calls until none, then check `next_wakeup`.
    DrainNow,
    /// Check `next_wakeup`.
    Wakeup,
    /// Complete in-flight call `pick` (modulo their number); record `i` gets outcome
    /// `i % outcomes.len()`.
    Complete { pick: usize, outcomes: Vec<Outcome> },
    /// The stream says `shard` (modulo the shard count) is over its limit.
    Throttle { shard: usize },
    /// The shard map changed (only when nothing is in flight): drain, `set_shards`, re-push.
    Reshard { shards: usize },
}

fn arb_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        6 => Just(Outcome::Written),
        2 => (0u64..2_000).prop_map(|backoff_ms| Outcome::Retry { backoff_ms }),
        1 => (0u64..2_000).prop_map(|backoff_ms| Outcome::Throttled { backoff_ms }),
    ]
}

fn arb_push() -> impl Strategy<Value = Op> {
    (0usize..8, 1usize..6, prop_oneof![8 => 1usize..50, 2 => 1usize..3_000])
        .prop_map(|(shard, count, permille)| Op::Push { shard, count, permille })
}

fn arb_complete() -> impl Strategy<Value = Op> {
    (any::<usize>(), prop::collection::vec(arb_outcome(), 1..8))
        .prop_map(|(pick, outcomes)| Op::Complete { pick, outcomes })
}

/// Everything, mixed.
fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => arb_push(),
        4 => prop_oneof![0u64..20, 0u64..1_500].prop_map(|ms| Op::Advance { ms }),
        4 => any::<bool>().prop_map(|force| Op::Call { force }),
        2 => Just(Op::DrainNow),
        1 => Just(Op::Wakeup),
        4 => arb_complete(),
        1 => (0usize..8).prop_map(|shard| Op::Throttle { shard }),
        1 => (1usize..6).prop_map(|shards| Op::Reshard { shards }),
    ]
}

/// Shards kept busy: many pushes, small time steps, calls as fast as they may go.
fn arb_saturating_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => arb_push(),
        4 => (0u64..60).prop_map(|ms| Op::Advance { ms }),
        6 => Just(Op::DrainNow),
        2 => any::<bool>().prop_map(|force| Op::Call { force }),
        4 => arb_complete(),
        1 => (0usize..8).prop_map(|shard| Op::Throttle { shard }),
    ]
}

/// A waiting record, as the model expects it back.
#[derive(Debug, Clone, Copy)]
struct Expect {
    size: usize,
    attempts: u32,
    not_before_ms: u64,
}

struct Sim {
    cfg: Config,
    outbox: Outbox<u64>,
    shards: usize,
    now: u64,
    pushed: u64,
    /// Per shard, the ids waiting, in the order they must leave.
    queues: Vec<VecDeque<u64>>,
    waiting: HashMap<u64, Expect>,
    /// Calls in flight.
    calls: Vec<Vec<Ready<u64>>>,
    /// Per shard, records in flight.
    in_flight: Vec<usize>,
    in_flight_ids: HashSet<u64>,
    /// Every (id, attempt) handed out.
    handed: HashSet<(u64, u32)>,
    written: HashSet<u64>,
    /// Per shard, (time, size) of each record handed out since the shard map last changed.
    sent: Vec<Vec<(u64, usize)>>,
    /// Per shard, whether it was throttled since (then its bucket may be down to the floor).
    throttled: Vec<bool>,
    /// Per shard, when it was last throttled: nothing of it may go at that time.
    throttled_at: Vec<Option<u64>>,
}

impl Sim {
    fn new(cfg: Config) -> Self {
        let n = cfg.shards;
        Self {
            cfg,
            outbox: Outbox::new(cfg.limits, n),
            shards: n,
            now: 0,
            pushed: 0,
            queues: vec![VecDeque::new(); n],
            waiting: HashMap::new(),
            calls: Vec::new(),
            in_flight: vec![0; n],
            in_flight_ids: HashSet::new(),
            handed: HashSet::new(),
            written: HashSet::new(),
            sent: vec![Vec::new(); n],
            throttled: vec![false; n],
            throttled_at: vec![None; n],
        }
    }

    /// Runs `ops`, checking as it goes, then runs to the end.
    fn run(cfg: Config, ops: &[Op]) -> Result<Self, TestCaseError> {
        let mut sim = Self::new(cfg);
        for (i, op) in ops.iter().enumerate() {
            sim.apply(op, Some(&ops[..i]))?;
        }
        sim.finish()?;
        Ok(sim)
    }

    /// A shard in a call waits for it: one call per shard at a time.
    fn strict_blocked(&self, shard: usize) -> bool {
        self.in_flight[shard] > 0
    }

    /// `history`: the ops before this one (to rebuild this state in a replica), when checking.
    fn apply(&mut self, op: &Op, history: Option<&[Op]>) -> Result<(), TestCaseError> {
        match op {
            Op::Push { shard, count, permille } => {
                let shard = shard % self.shards;
                let size = (self.cfg.scale() * permille / 1000).max(1);
                for _ in 0..*count {
                    let id = self.pushed;
                    self.pushed += 1;
                    self.outbox.push(ready(id, shard, size));
                    self.queues[shard].push_back(id);
                    self.waiting.insert(
                        id,
                        Expect {
                            size,
                            attempts: 0,
                            not_before_ms: 0,
                        },
                    );
                }
            }
            Op::Advance { ms } => self.now += ms,
            Op::Call { force } => {
                let call = self.outbox.next_call(self.now, *force);
                if let (Some(call), false, Some(history)) = (&call, force, history) {
                    self.check_fills(call, history)?;
                }
                if let Some(call) = call {
                    self.take(call)?;
                }
            }
            Op::DrainNow => {
                while let Some(call) = self.outbox.next_call(self.now, true) {
                    self.take(call)?;
                }
                // Whatever is left waits for time or, under strict order, for its shard's call.
                let waits_for_time = (0..self.shards).any(|s| !self.queues[s].is_empty() && !self.strict_blocked(s));
                let wakeup = self.check_wakeup()?;
                prop_assert_eq!(
                    wakeup.is_some(),
                    waits_for_time,
                    "next_wakeup({}) = {:?} after draining; queues {:?}, in flight {:?}",
                    self.now,
                    wakeup,
                    self.queues,
                    self.in_flight
                );
            }
            Op::Wakeup => {
                self.check_wakeup()?;
            }
            Op::Complete { pick, outcomes } => {
                if !self.calls.is_empty() {
                    let call = self.calls.swap_remove(pick % self.calls.len());
                    self.complete(call, outcomes)?;
                }
            }
            Op::Throttle { shard } => self.throttle(shard % self.shards),
            Op::Reshard { shards } => {
                if self.calls.is_empty() {
                    self.reshard(*shards)?;
                }
            }
        }
        self.check_counts()
    }

    /// Checks a call and puts it in flight.
    fn take(&mut self, call: Vec<Ready<u64>>) -> Result<(), TestCaseError> {
        let l = self.cfg.limits;
        prop_assert!(!call.is_empty(), "an empty call");
        prop_assert!(
            call.len() <= l.max_put_records,
            "{} records > {}",
            call.len(),
            l.max_put_records
        );
        let bytes: usize = call.iter().map(size).sum();
        prop_assert!(
            bytes <= l.max_put_bytes || call.len() == 1,
            "{} records of {bytes} bytes > {}",
            call.len(),
            l.max_put_bytes
        );
        let mut shards_in_call = HashSet::new();
        for r in &call {
            let id = id(r);
            prop_assert!(r.shard < self.shards, "shard {} of {}", r.shard, self.shards);
            prop_assert_eq!(
                self.queues[r.shard].front().copied(),
                Some(id),
                "record {} of shard {} out of order at {}",
                id,
                r.shard,
                self.now
            );
            self.queues[r.shard].pop_front();
            let expect = self.waiting.remove(&id);
            prop_assert!(expect.is_some(), "record {id} handed out but not waiting");
            let expect = expect.unwrap();
            prop_assert_eq!(size(r), expect.size);
            prop_assert_eq!(r.attempts, expect.attempts);
            prop_assert_eq!(r.not_before_ms, expect.not_before_ms);
            prop_assert!(
                r.not_before_ms <= self.now,
                "record {id} handed out at {} before its time {}",
                self.now,
                r.not_before_ms
            );
            prop_assert!(
                self.handed.insert((id, r.attempts)),
                "record {id} handed out twice for attempt {}",
                r.attempts
            );
            prop_assert!(self.in_flight_ids.insert(id), "record {id} handed out while in flight");
            let first_of_shard = shards_in_call.insert(r.shard);
            if l.strict_order {
                prop_assert!(first_of_shard, "two records of shard {} in a call", r.shard);
            }
            if first_of_shard {
                prop_assert_eq!(
                    self.in_flight[r.shard],
                    0,
                    "shard {} in a second call while one is in flight",
                    r.shard
                );
            }
            prop_assert_ne!(
                self.throttled_at[r.shard],
                Some(self.now),
                "shard {} handed a record at the time it was throttled",
                r.shard
            );
            self.in_flight[r.shard] += 1;
            self.sent[r.shard].push((self.now, size(r)));
            self.check_rate(r.shard)?;
        }
        self.calls.push(call);
        Ok(())
    }

    /// The shard's sends over the second that ends with its last send: at most twice its rate
    /// (one second's refill plus a full bucket), but for what the last record had beyond the
    /// bucket (a record bigger than the bucket goes when the bucket is full).
    fn check_rate(&self, shard: usize) -> Result<(), TestCaseError> {
        let Some((byte_rate, record_rate)) = self.cfg.rate() else {
            return Ok(());
        };
        let sent = &self.sent[shard];
        let Some(&(last_ms, last_size)) = sent.last() else {
            return Ok(());
        };
        let window = sent.iter().rev().take_while(|(t, _)| t + 1000 >= last_ms);
        let (records, bytes) = window.fold((0usize, 0usize), |(n, b), (_, s)| (n + 1, b + s));
        let floor = if self.throttled[shard] { MIN_RATE_FACTOR } else { 1.0 };
        let last = last_size as f64;
        let byte_bound = 2.0 * byte_rate + last - last.min(floor * byte_rate);
        prop_assert!(
            bytes as f64 <= byte_bound * (1.0 + 1e-9),
            "shard {shard}: {bytes} bytes in the second up to {last_ms} > {byte_bound} (rate {byte_rate}/s); sends {:?}",
            sent
        );
        prop_assert!(
            records as f64 <= 2.0 * record_rate + 1e-9,
            "shard {shard}: {records} records in the second up to {last_ms} > 2 x {record_rate}/s; sends {:?}",
            sent
        );
        Ok(())
    }

    /// A non-forced call is the call a forced one would be: rebuilds this state in a replica
    /// and forces a call there.
    fn check_fills(&self, call: &[Ready<u64>], history: &[Op]) -> Result<(), TestCaseError> {
        let mut replica = Self::new(self.cfg);
        for op in history {
            replica.apply(op, None)?;
        }
        let calls = drain_now(&mut replica.outbox, replica.now);
        prop_assert_eq!(
            calls.first().map(|c| ids(c)),
            Some(ids(call)),
            "a forced call differs from the unforced one"
        );
        // Whether it is full is `can_fill`'s estimate (a call can stop short when the next
        // record does not fit); an unforced call that is a little short costs nothing.
        Ok(())
    }

    /// `next_wakeup` is later than now, and `None` only when no head waits for its retry time.
    fn check_wakeup(&mut self) -> Result<Option<u64>, TestCaseError> {
        let wakeup = self.outbox.next_wakeup(self.now);
        if let Some(at) = wakeup {
            prop_assert!(at > self.now, "next_wakeup({}) = {at}", self.now);
        } else {
            for s in 0..self.shards {
                if let Some(head) = self.queues[s].front()
                    && !self.strict_blocked(s)
                {
                    let not_before = self.waiting[head].not_before_ms;
                    prop_assert!(
                        not_before <= self.now,
                        "next_wakeup({}) = None while shard {s}'s head waits until {not_before}",
                        self.now
                    );
                }
            }
        }
        Ok(wakeup)
    }

    fn throttle(&mut self, shard: usize) {
        self.outbox.throttled(shard, self.now);
        if self.cfg.rate().is_some() {
            self.throttled[shard] = true;
            self.throttled_at[shard] = Some(self.now);
        }
    }

    /// As the producer settles a call: every record done, then throttling and the retries.
    fn complete(&mut self, call: Vec<Ready<u64>>, outcomes: &[Outcome]) -> Result<(), TestCaseError> {
        for r in &call {
            self.outbox.done(r.shard);
            self.in_flight[r.shard] -= 1;
            self.in_flight_ids.remove(&id(r));
        }
        let mut retry = Vec::new();
        for (i, mut r) in call.into_iter().enumerate() {
            let backoff_ms = match outcomes[i % outcomes.len()] {
                Outcome::Written => {
                    prop_assert!(self.written.insert(id(&r)), "record {} written twice", id(&r));
                    continue;
                }
                Outcome::Retry { backoff_ms } => backoff_ms,
                Outcome::Throttled { backoff_ms } => {
                    self.throttle(r.shard);
                    backoff_ms
                }
            };
            r.attempts += 1;
            r.not_before_ms = self.now + backoff_ms;
            retry.push(r);
        }
        for r in retry.iter().rev() {
            self.queues[r.shard].push_front(id(r));
            self.waiting.insert(
                id(r),
                Expect {
                    size: size(r),
                    attempts: r.attempts,
                    not_before_ms: r.not_before_ms,
                },
            );
        }
        self.outbox.retry(retry);
        Ok(())
    }

    fn reshard(&mut self, shards: usize) -> Result<(), TestCaseError> {
        let drained = self.outbox.drain();
        let expected: Vec<u64> = self.queues.iter().flatten().copied().collect();
        prop_assert_eq!(ids(&drained), expected, "drain is not shard by shard in queue order");
        prop_assert!(self.outbox.is_empty());
        self.outbox.set_shards(shards);
        self.shards = shards;
        self.queues = vec![VecDeque::new(); shards];
        self.in_flight = vec![0; shards];
        self.sent = vec![Vec::new(); shards];
        self.throttled = vec![false; shards];
        self.throttled_at = vec![None; shards];
        for mut r in drained {
            r.shard %= shards;
            self.queues[r.shard].push_back(id(&r));
            self.outbox.push(r);
        }
        Ok(())
    }

    fn check_counts(&self) -> Result<(), TestCaseError> {
        let waiting: usize = self.queues.iter().map(VecDeque::len).sum();
        prop_assert_eq!(self.outbox.len(), waiting);
        prop_assert_eq!(self.outbox.is_empty(), waiting == 0);
        prop_assert_eq!(self.outbox.in_flight(), self.in_flight.iter().sum::<usize>());
        prop_assert_eq!(self.outbox.shards(), self.shards);
        Ok(())
    }

    /// Runs to the end as the producer would: every call written, forced calls, and time
    /// moved to each wakeup. Everything must come out, written exactly once.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..100_000 {
            while let Some(call) = self.calls.pop() {
                self.complete(call, &[Outcome::Written])?;
            }
            while let Some(call) = self.outbox.next_call(self.now, true) {
                self.take(call)?;
            }
            if !self.calls.is_empty() {
                continue;
            }
            if self.outbox.is_empty() {
                break;
            }
            let wakeup = self.check_wakeup()?;
            prop_assert!(
                wakeup.is_some(),
                "records wait with nothing in flight but no wakeup at {}: {:?}",
                self.now,
                self.queues
            );
            self.now = wakeup.unwrap();
        }
        self.check_counts()?;
        prop_assert!(
            self.outbox.is_empty() && self.calls.is_empty(),
            "not drained: {:?}",
            self.queues
        );
        prop_assert_eq!(self.written.len() as u64, self.pushed, "records lost");
        prop_assert!(self.waiting.is_empty() && self.in_flight_ids.is_empty());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn outbox_keeps_its_invariants(cfg in arb_config(), ops in prop::collection::vec(arb_op(), 1..120)) {
        Sim::run(cfg, &ops)?;
    }

    #[test]
    fn busy_shards_keep_their_rate(
        cfg in arb_config().prop_filter("metered", |c| c.limits.shard_rate.is_some()),
        ops in prop::collection::vec(arb_saturating_op(), 1..200),
    ) {
        Sim::run(cfg, &ops)?;
    }
}

// ---------------------------------------------------------------------------------------
// Edge cases.

#[test]
fn an_oversized_record_goes_alone() {
    let mut outbox = Outbox::new(limits(10, 100, None, false), 3);
    outbox.push(ready(1, 0, 10));
    outbox.push(ready(2, 1, 500));
    outbox.push(ready(3, 2, 10));
    outbox.push(ready(4, 1, 10));
    let calls: Vec<Vec<u64>> = drain_now(&mut outbox, 0).iter().map(|c| ids(c)).collect();
    assert_eq!(calls, vec![vec![1, 3], vec![2], vec![4]]);

    // Alone, it fills a call by itself.
    outbox.push(ready(5, 1, 500));
    assert_eq!(outbox.next_call(0, false).map(|c| ids(&c)), Some(vec![5]));
}

#[test]
fn a_record_bigger_than_the_bucket_goes_when_the_bucket_is_full() {
    // 1,000 B/s: a 2,500-byte record goes on a full bucket, and pays for it.
    let mut outbox = Outbox::new(limits(10, 100_000, Some((1_000, 100)), false), 1);
    outbox.push(ready(1, 0, 2_500));
    outbox.push(ready(2, 0, 10));
    assert_eq!(outbox.next_call(0, true).map(|c| ids(&c)), Some(vec![1]));
    outbox.done(0);
    assert!(outbox.next_call(0, true).is_none());
    // The debt is kept to one second: 10 bytes after -1,000 take 1.01 s.
    assert_eq!(outbox.next_wakeup(0), Some(1_010));
    assert!(outbox.next_call(1_000, true).is_none());
    assert_eq!(outbox.next_call(1_010, true).map(|c| ids(&c)), Some(vec![2]));
}

#[test]
fn strict_order_keeps_one_record_in_flight_per_shard() {
    let mut outbox = Outbox::new(limits(10, 10_000, None, true), 2);
    for id in [10, 11, 12] {
        outbox.push(ready(id, 0, 10));
    }
    outbox.push(ready(20, 1, 10));
    assert_eq!(outbox.next_call(0, true).map(|c| ids(&c)), Some(vec![10, 20]));
    assert!(outbox.next_call(0, true).is_none(), "shard 0 has a record in flight");
    assert_eq!(outbox.next_wakeup(0), None, "waits for its call, not for time");
    outbox.done(0);
    let call = outbox.next_call(0, true).unwrap();
    assert_eq!(ids(&call), vec![11]);

    // 11 fails: nothing of shard 0 overtakes it while it waits for its retry time.
    outbox.done(0);
    let mut failed = call;
    failed[0].attempts += 1;
    failed[0].not_before_ms = 100;
    outbox.retry(failed);
    assert!(outbox.next_call(50, true).is_none());
    assert_eq!(outbox.next_wakeup(50), Some(100));
    let call = outbox.next_call(100, true).unwrap();
    assert_eq!((ids(&call), call[0].attempts), (vec![11], 1));
    assert!(outbox.next_call(100, true).is_none());
    outbox.done(0);
    assert_eq!(outbox.next_call(100, true).map(|c| ids(&c)), Some(vec![12]));
}

#[test]
fn next_wakeup_is_for_time_only() {
    let mut outbox = Outbox::new(limits(5, 10_000, None, false), 2);
    assert_eq!(outbox.next_wakeup(0), None, "nothing waits");

    // A retry time.
    let mut r = ready(1, 0, 10);
    r.not_before_ms = 500;
    outbox.retry(vec![r]);
    assert_eq!(outbox.next_wakeup(0), Some(500));
    assert_eq!(outbox.next_wakeup(499), Some(500));
    assert!(outbox.next_call(499, true).is_none());

    // At its time it may go, but does not fill a call: it waits for a call to fill (or be
    // forced), not for time.
    assert_eq!(outbox.next_wakeup(500), None);
    assert!(outbox.next_call(500, false).is_none());
    assert_eq!(outbox.next_call(500, true).map(|c| ids(&c)), Some(vec![1]));

    // A bucket refill: 10 records/s, so the 11th goes 100 ms after the first 10.
    let mut outbox = Outbox::new(limits(500, 1 << 20, Some((1 << 20, 10)), false), 1);
    for id in 0..15 {
        outbox.push(ready(id, 0, 10));
    }
    let calls = drain_now(&mut outbox, 1_000);
    assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 10);
    assert_eq!(outbox.next_wakeup(1_000), Some(1_100));
    assert!(outbox.next_call(1_099, true).is_none());
    assert_eq!(outbox.next_call(1_100, true).map(|c| ids(&c)), Some(vec![10]));
}

#[test]
fn an_unforced_call_waits_until_one_fills() {
    let mut outbox = Outbox::new(limits(3, 10_000, None, false), 2);
    outbox.push(ready(1, 0, 10));
    outbox.push(ready(2, 1, 10));
    assert!(outbox.next_call(0, false).is_none());
    outbox.push(ready(3, 0, 10));
    assert_eq!(outbox.next_call(0, false).map(|c| c.len()), Some(3));

    // Five records wait, but the shard may take only 2 records/s: not a full call.
    let mut outbox = Outbox::new(limits(3, 10_000, Some((1 << 20, 2)), false), 1);
    for id in 0..5 {
        outbox.push(ready(id, 0, 10));
    }
    assert!(outbox.next_call(0, false).is_none(), "only 2 of 3 may go");
    assert_eq!(outbox.next_call(0, true).map(|c| ids(&c)), Some(vec![0, 1]));
}

#[test]
fn throttling_slows_that_shard_and_not_its_neighbours() {
    // 100 records/s per shard, far more waiting; a call every 10 ms, written at once.
    let mut outbox = Outbox::new(limits(500, 5 << 20, Some((1 << 20, 100)), false), 2);
    for id in 0..2_000 {
        outbox.push(ready(id, (id % 2) as usize, 10));
    }
    let mut per_second = [[0usize; 2]; 4];
    for now in (0..4_000).step_by(10) {
        if now == 1_000 {
            outbox.throttled(0, now);
        }
        for call in drain_now(&mut outbox, now) {
            for r in call {
                assert!(now != 1_000 || r.shard == 1, "a throttled shard's bucket is empty");
                per_second[now as usize / 1_000][r.shard] += 1;
                outbox.done(r.shard);
            }
        }
    }
    // Shard 1 keeps its 100/s (the first second also has the full bucket it starts with:
    // 100 at 0 ms, then one per 10 ms).
    assert_eq!(per_second.map(|s| s[1]), [199, 100, 100, 100]);
    // Shard 0 at half its rate right after, then back up by 10 % of it per second:
    // 50 + 5 in the first second, 60 + 5 in the next, ...
    let slowed = per_second.map(|s| s[0]);
    assert_eq!(slowed[0], 199);
    assert!((50..=56).contains(&slowed[1]), "{slowed:?}");
    assert!((60..=66).contains(&slowed[2]), "{slowed:?}");
    assert!((70..=76).contains(&slowed[3]), "{slowed:?}");
}

#[test]
fn drain_gives_back_every_waiting_record_for_a_new_shard_map() {
    let mut outbox = Outbox::new(limits(1, 10_000, None, false), 3);
    for id in 0..6 {
        outbox.push(ready(id, (id % 3) as usize, 10));
    }
    // Record 0 goes and fails: back at the front of shard 0.
    let mut call = outbox.next_call(0, true).unwrap();
    assert_eq!(ids(&call), vec![0]);
    outbox.done(0);
    call[0].not_before_ms = 1_000;
    outbox.retry(call);
    let drained = outbox.drain();
    assert_eq!(ids(&drained), vec![0, 3, 1, 4, 2, 5]);
    assert_eq!(drained[0].not_before_ms, 1_000);
    assert!(outbox.is_empty());
    assert_eq!(outbox.next_wakeup(0), None);

    outbox.set_shards(2);
    assert_eq!(outbox.shards(), 2);
    for mut r in drained {
        r.shard %= 2;
        outbox.push(r);
    }
    let calls: Vec<u64> = drain_now(&mut outbox, 1_000).iter().flat_map(|c| ids(c)).collect();
    assert_eq!(calls.len(), 6);
    assert!(outbox.is_empty());
}
