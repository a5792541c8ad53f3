//! Pure scheduling of sealed stream records into `PutRecords` calls: per-shard queues,
//! per-shard token buckets (bytes/s and records/s, slowed when the stream says a shard is
//! over its limit), retry times, and in-flight bookkeeping.
//!
//! No I/O and no clock: time comes in as `now_ms`. Invariants (property-tested): records of
//! one shard leave in the order they came (a retried record goes back to the front of its
//! shard); a call never exceeds the record and byte limits; a shard never gets more than its
//! rate over any second plus one second's burst; a shard is in at most one call at a time,
//! so concurrent calls cannot reorder it; under `strict_order` that call holds one stream
//! record of the shard, so a partial failure can never let a later record overtake it.
use crate::batcher::Ready;
use inlet_seams::ShardRate;
use std::collections::VecDeque;

/// How calls are made up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutboxLimits {
    /// Most stream records per call.
    pub max_put_records: usize,
    /// Most bytes per call.
    pub max_put_bytes: usize,
    /// Each shard's rate, scaled by `rate_headroom`; `None`: unmetered.
    pub shard_rate: Option<ShardRate>,
    /// Fraction of the shard rate to use (1.0 = all of it).
    pub rate_headroom: f64,
    /// One stream record in flight per shard: strict per-partition-key order even across
    /// partial failures, at the cost of one call's round trip per aggregate and shard.
    /// Without it a shard still has one call in flight at a time, with many of its records.
    pub strict_order: bool,
}

/// The slowest a throttled shard is driven, as a fraction of its rate.
const MIN_RATE_FACTOR: f64 = 0.05;
/// How fast a throttled shard's rate recovers: this fraction of its full rate per second.
const RECOVERY_PER_SEC: f64 = 0.1;

/// A token bucket over both of a shard's limits, with a multiplicative slow-down on
/// throttling and a linear recovery (AIMD).
#[derive(Debug, Clone)]
struct Budget {
    bytes: f64,
    records: f64,
    factor: f64,
    last_ms: u64,
}

impl Budget {
    fn full() -> Self {
        Self {
            bytes: f64::INFINITY,
            records: f64::INFINITY,
            factor: 1.0,
            last_ms: 0,
        }
    }

    /// Refills for the time since the last refill; capacity is one second at the current rate.
    fn refill(&mut self, rate: (f64, f64), now_ms: u64) {
        let dt = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now_ms);
        self.factor = (self.factor + dt * RECOVERY_PER_SEC).min(1.0);
        let (bytes, records) = (rate.0 * self.factor, rate.1 * self.factor);
        self.bytes = (self.bytes + bytes * dt).min(bytes);
        self.records = (self.records + records * dt).min(records);
    }

    /// Whether a record of `size` bytes may go now. A record bigger than a full bucket may
    /// go when the bucket is full, else it would never go.
    fn allows(&self, size: f64, rate: (f64, f64)) -> bool {
        let cap = rate.0 * self.factor;
        self.records >= 1.0 && (self.bytes >= size || self.bytes >= cap)
    }

    /// Milliseconds until a record of `size` bytes may go.
    fn wait_ms(&self, size: f64, rate: (f64, f64)) -> u64 {
        let (b, r) = (rate.0 * self.factor, rate.1 * self.factor);
        let need_bytes = (size.min(b) - self.bytes).max(0.0) / b;
        let need_records = (1.0 - self.records).max(0.0) / r;
        (need_bytes.max(need_records) * 1000.0).ceil() as u64
    }
}

#[derive(Debug)]
struct ShardQueue<A> {
    queue: VecDeque<Ready<A>>,
    budget: Budget,
    /// Stream records of this shard in flight.
    in_flight: usize,
    /// Bytes and records sent in the current second, for the utilization metric.
    sent: (u64, u64),
}

impl<A> Default for ShardQueue<A> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            budget: Budget::full(),
            in_flight: 0,
            sent: (0, 0),
        }
    }
}

/// Sealed records waiting to be written, per shard.
#[derive(Debug)]
pub struct Outbox<A = ()> {
    limits: OutboxLimits,
    shards: Vec<ShardQueue<A>>,
    /// Shard to start the next call's round-robin scan at, so no shard starves.
    cursor: usize,
    len: usize,
}

/// A stream record's cost in its shard's byte budget.
fn size<A>(r: &Ready<A>) -> usize {
    r.record.partition_key.len() + r.record.data.len()
}

impl<A> Outbox<A> {
    /// An empty outbox for `shards` shards.
    pub fn new(limits: OutboxLimits, shards: usize) -> Self {
        Self {
            limits,
            shards: (0..shards).map(|_| ShardQueue::default()).collect(),
            cursor: 0,
            len: 0,
        }
    }

    /// Sets the number of shards (after the shard map changed). Only when nothing waits or
    /// is in flight: shard indexes change meaning.
    pub fn set_shards(&mut self, shards: usize) {
        debug_assert!(self.is_empty() && self.in_flight() == 0, "set_shards on a busy outbox");
        self.shards = (0..shards).map(|_| ShardQueue::default()).collect();
        self.cursor = 0;
    }

    fn rate(&self) -> Option<(f64, f64)> {
        self.limits.shard_rate.map(|r| {
            (
                r.bytes_per_sec as f64 * self.limits.rate_headroom,
                r.records_per_sec as f64 * self.limits.rate_headroom,
            )
        })
    }

    /// Stream records waiting (not in flight).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Stream records in flight.
    pub fn in_flight(&self) -> usize {
        self.shards.iter().map(|s| s.in_flight).sum()
    }

    /// Adds a sealed record at the back of its shard's queue.
    pub fn push(&mut self, ready: Ready<A>) {
        let shard = ready.shard;
        self.shards[shard].queue.push_back(ready);
        self.len += 1;
    }

    /// Takes records back that were sent and failed: they go to the front of their shards,
    /// in their order, not before `not_before_ms` (each record carries it).
    pub fn retry(&mut self, failed: Vec<Ready<A>>) {
        for r in failed.into_iter().rev() {
            let shard = r.shard;
            self.shards[shard].queue.push_front(r);
            self.len += 1;
        }
    }

    /// Marks a sent record of `shard` as done (written or failed).
    pub fn done(&mut self, shard: usize) {
        let q = &mut self.shards[shard];
        q.in_flight = q.in_flight.saturating_sub(1);
    }

    /// The stream said `shard` is over its limit: halve its rate (down to a floor) and empty
    /// its bucket.
    pub fn throttled(&mut self, shard: usize, now_ms: u64) {
        if let Some(rate) = self.rate() {
            let b = &mut self.shards[shard].budget;
            b.refill(rate, now_ms);
            b.factor = (b.factor * 0.5).max(MIN_RATE_FACTOR);
            // Empty, but keep a debt (an oversized record's): throttling must not forgive it.
            b.bytes = b.bytes.min(0.0);
            b.records = b.records.min(0.0);
        }
    }

    /// Whether `shard`'s head record may be sent now (retry time, rate); the caller checks
    /// that the shard has no call in flight.
    fn head_allowed(&mut self, shard: usize, now_ms: u64, rate: Option<(f64, f64)>) -> bool {
        let q = &mut self.shards[shard];
        let Some(head) = q.queue.front() else {
            return false;
        };
        if head.not_before_ms > now_ms {
            return false;
        }
        match rate {
            Some(rate) => {
                q.budget.refill(rate, now_ms);
                q.budget.allows(size(head) as f64, rate)
            }
            None => true,
        }
    }

    /// The next call's records, or `None` when nothing may go now, or when `force` is false
    /// and the records that may go do not fill a call.
    pub fn next_call(&mut self, now_ms: u64, force: bool) -> Option<Vec<Ready<A>>> {
        if self.len == 0 {
            return None;
        }
        let rate = self.rate();
        let n = self.shards.len();
        if !force && !self.can_fill(now_ms, rate) {
            return None;
        }
        let (max_records, max_bytes) = (self.limits.max_put_records, self.limits.max_put_bytes);
        let mut call: Vec<Ready<A>> = Vec::new();
        let mut bytes = 0usize;
        let start = self.cursor;
        for i in 0..n {
            let shard = (start + i) % n;
            if self.shards[shard].in_flight > 0 {
                continue; // in another call: one call per shard keeps its order
            }
            loop {
                if call.len() == max_records || !self.head_allowed(shard, now_ms, rate) {
                    break;
                }
                let q = &mut self.shards[shard];
                let head_size = q.queue.front().map_or(0, size);
                if !call.is_empty() && bytes + head_size > max_bytes {
                    break;
                }
                let Some(r) = q.queue.pop_front() else { break };
                if let Some(rate) = rate {
                    q.budget.bytes -= head_size as f64;
                    q.budget.records -= 1.0;
                    // Keep the debt of an oversized record bounded to one second.
                    q.budget.bytes = q.budget.bytes.max(-rate.0);
                }
                q.in_flight += 1;
                q.sent.0 += head_size as u64;
                q.sent.1 += 1;
                bytes += head_size;
                self.len -= 1;
                call.push(r);
                if self.limits.strict_order {
                    break;
                }
            }
            if call.len() == max_records || bytes >= max_bytes {
                self.cursor = (shard + 1) % n;
                break;
            }
        }
        if call.is_empty() {
            return None;
        }
        if call.len() < max_records && bytes < max_bytes {
            self.cursor = (start + 1) % n;
        }
        Some(call)
    }

    /// Whether the records that may go now fill a call (without taking them).
    fn can_fill(&mut self, now_ms: u64, rate: Option<(f64, f64)>) -> bool {
        let (mut records, mut bytes) = (0usize, 0usize);
        for shard in 0..self.shards.len() {
            if self.shards[shard].in_flight > 0 || !self.head_allowed(shard, now_ms, rate) {
                continue;
            }
            let q = &self.shards[shard];
            // What the bucket allows now (bytes and records), as `next_call` takes it.
            let (budget, record_budget) = rate.map_or((f64::INFINITY, f64::INFINITY), |_| {
                (q.budget.bytes.max(0.0), q.budget.records)
            });
            let (mut shard_bytes, mut shard_records) = (0.0, 0.0);
            for r in &q.queue {
                if r.not_before_ms > now_ms
                    || shard_records + 1.0 > record_budget
                    || (shard_bytes > 0.0 && shard_bytes + size(r) as f64 > budget)
                {
                    break;
                }
                shard_bytes += size(r) as f64;
                shard_records += 1.0;
                records += 1;
                bytes += size(r);
                if records >= self.limits.max_put_records || bytes >= self.limits.max_put_bytes {
                    return true;
                }
                if self.limits.strict_order {
                    break;
                }
            }
        }
        false
    }

    /// When something that waits may go next (a retry time or a bucket refill), if anything
    /// waits for time at all.
    pub fn next_wakeup(&mut self, now_ms: u64) -> Option<u64> {
        let rate = self.rate();
        self.shards
            .iter_mut()
            .filter_map(|q| {
                let head = q.queue.front()?;
                if q.in_flight > 0 {
                    return None; // waits for its call to finish, not for time
                }
                let mut at = head.not_before_ms.max(now_ms);
                if let Some(rate) = rate {
                    q.budget.refill(rate, now_ms);
                    at = at.max(now_ms + q.budget.wait_ms(size(head) as f64, rate));
                }
                // A head that may go now waits for a call to fill or finish, not for time.
                (at > now_ms).then_some(at)
            })
            .min()
    }

    /// Takes every waiting record out, shard by shard in queue order (to re-route them after
    /// the shard map changed). In-flight counts are kept.
    pub fn drain(&mut self) -> Vec<Ready<A>> {
        self.len = 0;
        self.shards.iter_mut().flat_map(|q| q.queue.drain(..)).collect()
    }

    /// Per shard with traffic since the last call: (index, byte utilization, record
    /// utilization) of its full rate over `window_ms`; resets the counts.
    pub fn take_utilization(&mut self, window_ms: u64) -> Vec<(usize, f64, f64)> {
        let Some(rate) = self.limits.shard_rate else {
            return Vec::new();
        };
        let secs = window_ms.max(1) as f64 / 1000.0;
        self.shards
            .iter_mut()
            .enumerate()
            .filter(|(_, q)| q.sent != (0, 0))
            .map(|(i, q)| {
                let (b, r) = std::mem::take(&mut q.sent);
                (
                    i,
                    b as f64 / secs / rate.bytes_per_sec as f64,
                    r as f64 / secs / rate.records_per_sec as f64,
                )
            })
            .collect()
    }
}
