//! Pure batching: user records → per-shard KPL aggregates → PutRecords-sized batches.
//!
//! No I/O and no clock: time comes in as `now_ms`. Invariants (property-tested): an
//! aggregate never exceeds `max_aggregate_bytes`/`max_aggregate_records` (a user record
//! bigger than that travels alone), a batch never exceeds `max_put_records` or
//! `max_put_bytes`, and records of one shard leave in the order they came.
//!
//! A user record may carry an ack token (`A`), handed back with the stream record that holds
//! it together with its index inside (its sub-sequence), so that whoever writes the record
//! can tell each sender the outcome. Records without a token cost nothing extra.
use bytes::Bytes;
use inlet_schemas::kpl::{Aggregator, UserRecord};
use inlet_seams::PutRecord;
use std::collections::VecDeque;

/// Limits of aggregation and collection (the KPL's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Largest aggregated record, bytes (KPL `AggregationMaxSize`, 51200).
    pub max_aggregate_bytes: usize,
    /// Most user records in one aggregate (KPL `AggregationMaxCount`).
    pub max_aggregate_records: usize,
    /// Most stream records per PutRecords call.
    pub max_put_records: usize,
    /// Most bytes per PutRecords call (KPL `CollectionMaxSize`, 5 MiB).
    pub max_put_bytes: usize,
    /// How long a user record may wait for company before it is sent (KPL
    /// `RecordMaxBufferedTime`, 100 ms).
    pub linger_ms: u64,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_aggregate_bytes: 51_200,
            max_aggregate_records: 4_294_967_295,
            max_put_records: 500,
            max_put_bytes: 5 << 20,
            linger_ms: 100,
        }
    }
}

/// A stream record ready to be written, with what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready<A = ()> {
    /// The record to write.
    pub record: PutRecord,
    /// Index of the shard it is bound for.
    pub shard: usize,
    /// User records inside.
    pub user_records: u32,
    /// Buffer capacity to give back once it is done with.
    pub permits: usize,
    /// Attempts made so far.
    pub attempts: u32,
    /// When its first user record was taken, ms (for the record time-to-live and the
    /// buffering-time metric).
    pub first_ms: u64,
    /// Not to be sent before this time, ms (a retry's backoff).
    pub not_before_ms: u64,
    /// For a record read back from the producer's spool: the spool offset just past it
    /// (0 otherwise). Such a record holds no buffer permits and does not expire.
    pub spool_offset: u64,
    /// The ack tokens of the user records inside that have one, in order, each with the
    /// user record's index in the stream record (0 for a plain record). Empty when none does.
    pub acks: Vec<(u32, A)>,
}

impl<A> Ready<A> {
    fn size(&self) -> usize {
        self.record.partition_key.len() + self.record.data.len()
    }
}

#[derive(Debug)]
struct Pending<A> {
    agg: Aggregator,
    /// The first user record's data: sent as is when it stays alone.
    first_data: Bytes,
    permits: usize,
    first_ms: u64,
    acks: Vec<(u32, A)>,
}

impl<A> Default for Pending<A> {
    fn default() -> Self {
        Self {
            agg: Aggregator::default(),
            first_data: Bytes::new(),
            permits: 0,
            first_ms: 0,
            acks: Vec::new(),
        }
    }
}

/// Per-shard aggregation and collection; `A` is the ack token a user record may carry.
#[derive(Debug)]
pub struct Batcher<A = ()> {
    limits: BatchLimits,
    pending: Vec<Pending<A>>,
    ready: VecDeque<Ready<A>>,
    ready_bytes: usize,
    /// Permits held by the open aggregates (kept, not summed: the writer task asks often).
    open_permits: usize,
}

impl Batcher {
    /// A batcher for `shards` shards whose records carry no ack tokens.
    pub fn new(limits: BatchLimits, shards: usize) -> Self {
        Self::with_acks(limits, shards)
    }
}

impl<A> Batcher<A> {
    /// A batcher for `shards` shards whose records may carry ack tokens of type `A`.
    pub fn with_acks(limits: BatchLimits, shards: usize) -> Self {
        Self {
            limits,
            pending: (0..shards).map(|_| Pending::default()).collect(),
            ready: VecDeque::new(),
            ready_bytes: 0,
            open_permits: 0,
        }
    }

    /// Sets the number of shards (after the shard map changed). Only when empty: the shard
    /// indexes of what it holds would change meaning.
    pub fn set_shards(&mut self, shards: usize) {
        debug_assert!(self.is_empty(), "set_shards on a batcher that holds records");
        self.pending = (0..shards).map(|_| Pending::default()).collect();
    }

    /// Adds a user record bound for `shard`. `permits` is the buffer capacity it holds.
    pub fn push(&mut self, shard: usize, record: UserRecord, permits: usize, now_ms: u64) {
        self.push_with_ack(shard, record, None, permits, now_ms);
    }

    /// As [`Batcher::push`], with an ack token that comes back in the [`Ready`] holding the
    /// record.
    pub fn push_with_ack(&mut self, shard: usize, record: UserRecord, ack: Option<A>, permits: usize, now_ms: u64) {
        let limits = self.limits;
        let p = &mut self.pending[shard];
        if !p.agg.is_empty()
            && (p.agg.len() >= limits.max_aggregate_records || p.agg.size_with(&record) > limits.max_aggregate_bytes)
        {
            self.seal(shard);
        }
        let p = &mut self.pending[shard];
        if p.agg.is_empty() {
            p.first_ms = now_ms;
            p.first_data = record.data.clone();
        }
        if let Some(ack) = ack {
            // An aggregate never holds more than u32::MAX records (KPL format limit).
            p.acks.push((p.agg.len() as u32, ack));
        }
        p.agg.push(record);
        p.permits += permits;
        self.open_permits += permits;
        if p.agg.encoded_len() >= limits.max_aggregate_bytes || p.agg.len() >= limits.max_aggregate_records {
            self.seal(shard);
        }
    }

    /// Seals the aggregates that have waited `linger_ms` or more.
    pub fn seal_due(&mut self, now_ms: u64) {
        for shard in 0..self.pending.len() {
            let p = &self.pending[shard];
            if !p.agg.is_empty() && now_ms.saturating_sub(p.first_ms) >= self.limits.linger_ms {
                self.seal(shard);
            }
        }
    }

    /// Seals every aggregate (flush).
    pub fn seal_all(&mut self) {
        for shard in 0..self.pending.len() {
            if !self.pending[shard].agg.is_empty() {
                self.seal(shard);
            }
        }
    }

    /// When the oldest open aggregate is due, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pending
            .iter()
            .filter(|p| !p.agg.is_empty())
            .map(|p| p.first_ms + self.limits.linger_ms)
            .min()
    }

    /// Buffer permits held by open (unsealed) aggregates.
    pub fn open_permits(&self) -> usize {
        self.open_permits
    }

    /// User records held (open aggregates and ready records).
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.pending.iter().all(|p| p.agg.is_empty())
    }

    /// Whether a full batch is ready.
    pub fn has_full_batch(&self) -> bool {
        self.ready.len() >= self.limits.max_put_records || self.ready_bytes >= self.limits.max_put_bytes
    }

    /// The next batch: when a full one is ready, or any ready records when `force`.
    pub fn take_batch(&mut self, force: bool) -> Option<Vec<Ready<A>>> {
        if self.ready.is_empty() || !(force || self.has_full_batch()) {
            return None;
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(next) = self.ready.front() {
            let size = next.size();
            if batch.len() == self.limits.max_put_records
                || (!batch.is_empty() && bytes + size > self.limits.max_put_bytes)
            {
                break;
            }
            bytes += size;
            self.ready_bytes -= size;
            batch.extend(self.ready.pop_front());
        }
        Some(batch)
    }

    /// Puts records that failed back at the front, in their order, ahead of newer ones of
    /// their shard.
    pub fn retry_front(&mut self, failed: Vec<Ready<A>>) {
        for r in failed.into_iter().rev() {
            self.ready_bytes += r.size();
            self.ready.push_front(r);
        }
    }

    fn seal(&mut self, shard: usize) {
        let p = &mut self.pending[shard];
        let user_records = p.agg.len() as u32;
        let partition_key = p.agg.outer_partition_key().unwrap_or_default().to_owned();
        let explicit_hash_key = p.agg.outer_explicit_hash_key();
        let encoded = p.agg.finish();
        let first_data = std::mem::take(&mut p.first_data);
        // A lone user record travels as a plain record, as the KPL does (the framing would
        // only add bytes), unless its data happens to start like an aggregate.
        let plain = user_records == 1 && !inlet_schemas::kpl::is_aggregated(&first_data);
        let data = if plain { first_data } else { encoded };
        let permits = std::mem::take(&mut p.permits);
        self.open_permits -= permits;
        let ready = Ready {
            record: PutRecord {
                partition_key,
                explicit_hash_key,
                data,
            },
            shard,
            user_records,
            permits,
            attempts: 0,
            first_ms: p.first_ms,
            not_before_ms: 0,
            spool_offset: 0,
            acks: std::mem::take(&mut p.acks),
        };
        self.ready_bytes += ready.size();
        self.ready.push_back(ready);
    }
}
