//! The producer's writer task: takes user records from the channel, aggregates them
//! (batcher), schedules the sealed records into `PutRecords` calls (outbox), keeps up to
//! `max_in_flight` calls going, and settles every record: delivered, retried later, or
//! given up on with a reason.
use crate::batcher::{Batcher, Ready};
use crate::dead_letter::DeadLetterFile;
use crate::delivery::{Ack, Delivered, DeliveryError};
use crate::metrics as m;
use crate::outbox::Outbox;
use crate::producer::{Counters, Msg, ProducerConfig, Queued, RECORD_OVERHEAD};
use crate::shard_map::ShardMap;
use crate::spool::Spool;
use inlet_schemas::kpl::{self, UserRecord};
use inlet_seams::error_chain;
use inlet_seams::{PutOutcome, PutRecord, StreamError, StreamWriter};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The error code Kinesis gives a record refused for its shard's write limit.
const THROTTLED: &str = "ProvisionedThroughputExceededException";
/// How often per-shard utilization is reported.
const UTILIZATION_EVERY_MS: u64 = 1000;
/// How soon to try again when the shard map could not be reloaded.
const MAP_RETRY: Duration = Duration::from_secs(1);
/// Most bytes of spooled records read back into memory at once.
const SPOOL_READ_BACK: usize = 4 << 20;

/// A finished call.
struct Done {
    call: Vec<Ready<Ack>>,
    result: Result<Vec<PutOutcome>, StreamError>,
    elapsed: Duration,
}

pub(crate) struct Task {
    writer: Arc<dyn StreamWriter>,
    map: ShardMap,
    batcher: Batcher<Ack>,
    outbox: Outbox<Ack>,
    config: ProducerConfig,
    capacity: Arc<Semaphore>,
    counters: Arc<Counters>,
    dead_letters: Option<DeadLetterFile>,
    calls: JoinSet<Done>,
    /// Set when the map looks stale (a misprediction); calls stop until it is reloaded.
    reload_map: bool,
    next_map_reload: Instant,
    next_utilization_ms: u64,
    flushes: Vec<oneshot::Sender<()>>,
    closing: bool,
    rng: u64,
    /// Set when a call got no answer: no data call goes out until a cheap probe of the
    /// stream answers, so an unresponsive stream is not sent retry after retry that it may
    /// all apply (and duplicate) once it wakes up.
    suspect: bool,
    probe: Option<tokio::task::JoinHandle<bool>>,
    next_probe: Instant,
    probe_failures: u32,
    /// Since when (ms) every write has failed retryably; `None` after a success.
    failing_since: Option<u64>,
    spool: Option<Spool>,
    /// Acks of spooled records, by the spool offset just past each.
    spool_acks: VecDeque<(u64, Vec<(u32, Ack)>)>,
    /// Read-back records not yet settled, by offset: whether each is done.
    spool_unsettled: BTreeMap<u64, bool>,
    /// Bytes of read-back records in memory.
    spool_in_memory: usize,
    /// Records appended to the spool since its last fsync.
    spool_dirty: bool,
}

impl Task {
    pub(crate) fn new(
        writer: Arc<dyn StreamWriter>,
        map: ShardMap,
        batcher: Batcher<Ack>,
        outbox: Outbox<Ack>,
        config: ProducerConfig,
        (capacity, counters): (Arc<Semaphore>, Arc<Counters>),
        (dead_letters, spool): (Option<DeadLetterFile>, Option<Spool>),
    ) -> Self {
        let (mut batcher, mut outbox) = (batcher, outbox);
        batcher.set_shards(map.len());
        outbox.set_shards(map.len());
        Self {
            writer,
            batcher,
            outbox,
            map,
            next_map_reload: Instant::now() + config.shard_map_refresh,
            config,
            capacity,
            counters,
            dead_letters,
            calls: JoinSet::new(),
            reload_map: false,
            next_utilization_ms: UTILIZATION_EVERY_MS,
            flushes: Vec::new(),
            closing: false,
            rng: 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()),
            suspect: false,
            probe: None,
            next_probe: Instant::now(),
            probe_failures: 0,
            failing_since: None,
            spool,
            spool_acks: VecDeque::new(),
            spool_unsettled: BTreeMap::new(),
            spool_in_memory: 0,
            spool_dirty: false,
        }
    }

    fn now_ms(&self) -> u64 {
        self.counters.epoch.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.counters.epoch + Duration::from_millis(ms)
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            // Many shards' open aggregates can hold most of the buffer while each waits for
            // company: senders would then wait on the linger. Seal them instead.
            if self.batcher.open_permits() > self.config.max_buffered_bytes / 2 {
                self.batcher.seal_all();
            }
            while let Some(sealed) = self.batcher.take_batch(true) {
                sealed.into_iter().for_each(|r| self.seal(r));
            }
            self.spool_if_failing();
            self.sync_spool();
            self.read_back_spool();
            if (self.reload_map || Instant::now() >= self.next_map_reload) && self.calls.is_empty() {
                self.reload_shard_map().await;
            }
            let draining = self.closing || !self.flushes.is_empty();
            let now = self.now_ms();
            if self.suspect && self.probe.is_none() && Instant::now() >= self.next_probe {
                let writer = Arc::clone(&self.writer);
                self.probe = Some(tokio::spawn(async move { writer.open_shards().await.is_ok() }));
            }
            while !self.reload_map && !self.suspect && self.calls.len() < self.config.max_in_flight.max(1) {
                // With nothing in flight, waiting for a fuller call only adds latency.
                let force = draining || self.calls.is_empty();
                let Some(call) = self.outbox.next_call(now, force) else {
                    break;
                };
                self.start_call(call);
            }
            let spool_empty = self.spool.as_ref().is_none_or(Spool::is_empty);
            if draining && self.batcher.is_empty() && self.outbox.is_empty() && self.calls.is_empty() && spool_empty {
                self.flushes.drain(..).for_each(|f| {
                    let _ = f.send(());
                });
                if self.closing {
                    return;
                }
            }
            self.report_utilization(now);
            let wake_ms = [self.batcher.next_deadline(), self.outbox.next_wakeup(now)]
                .into_iter()
                .flatten()
                .fold(self.next_utilization_ms, u64::min);
            let mut wake = self.at(wake_ms).min(self.next_map_reload);
            if self.suspect && self.probe.is_none() {
                wake = wake.min(self.next_probe);
            }
            // Not `!draining`: a flush acknowledged just above ends the draining.
            let take_messages = !self.closing && self.flushes.is_empty();
            tokio::select! {
                msg = rx.recv(), if take_messages => match msg {
                    None => {
                        self.closing = true;
                        self.batcher.seal_all();
                    }
                    Some(msg) => {
                        self.handle(msg);
                        // Take what else is queued before writing, so calls fill up.
                        for _ in 0..1024 {
                            match rx.try_recv() {
                                Ok(msg) => self.handle(msg),
                                Err(_) => break,
                            }
                        }
                    }
                },
                Some(done) = self.calls.join_next(), if !self.calls.is_empty() => match done {
                    Ok(done) => self.settle(done),
                    // A put future cannot panic short of a bug in the writer; its records'
                    // acks are dropped with it, which resolves their deliveries as failed.
                    Err(e) => tracing::error!(error = %e, "a PutRecords call task failed"),
                },
                answered = probe_answer(&mut self.probe), if self.probe.is_some() => {
                    self.probe = None;
                    if answered {
                        tracing::info!(probes = self.probe_failures + 1, "the stream answers again; resuming writes");
                        self.suspect = false;
                        self.probe_failures = 0;
                    } else {
                        self.probe_failures += 1;
                        self.next_probe = Instant::now() + Duration::from_millis(self.backoff_ms(self.probe_failures));
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    self.batcher.seal_due(self.now_ms());
                }
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Record(item) => self.push(item),
            Msg::Records(items) => items.into_iter().for_each(|item| self.push(item)),
            Msg::Flush(ack) => {
                self.batcher.seal_all();
                self.flushes.push(ack);
            }
        }
    }

    fn push(&mut self, item: Queued) {
        let shard = self.map.index_of(item.shard_key);
        let now = self.now_ms();
        self.batcher
            .push_with_ack(shard, item.record, item.ack, item.permits, now);
    }

    fn start_call(&mut self, mut call: Vec<Ready<Ack>>) {
        self.counters.put_calls.fetch_add(1, Relaxed);
        metrics::counter!(m::PUT_CALLS_TOTAL).increment(1);
        let retried = call.iter().filter(|r| r.attempts > 0).count() as u64;
        if retried > 0 {
            self.counters.retries.fetch_add(retried, Relaxed);
            metrics::counter!(m::RETRIED_TOTAL).increment(retried);
        }
        let writer = Arc::clone(&self.writer);
        self.calls.spawn(async move {
            // The call needs the records by value next to their bookkeeping; moving the
            // records out and back avoids a copy of every payload.
            let records: Vec<PutRecord> = call
                .iter_mut()
                .map(|r| std::mem::replace(&mut r.record, empty_record()))
                .collect();
            let started = Instant::now();
            let result = writer.put_records(&records).await;
            for (r, record) in call.iter_mut().zip(records) {
                r.record = record;
            }
            Done {
                call,
                result,
                elapsed: started.elapsed(),
            }
        });
    }

    fn settle(&mut self, done: Done) {
        let now = self.now_ms();
        metrics::histogram!(m::PUT_SECONDS).record(done.elapsed.as_secs_f64());
        for r in &done.call {
            self.outbox.done(r.shard);
        }
        let mut retry = Vec::new();
        // Whether the stream failed in a way worth retrying (unavailable, throttling), as
        // opposed to refusing a record.
        let mut unavailable = false;
        match done.result {
            Ok(outcomes) => {
                let (mut delivered, mut stream_records, mut bytes) = (0u64, 0u64, 0u64);
                for (ready, outcome) in done.call.into_iter().zip(outcomes) {
                    match outcome {
                        PutOutcome::Written { shard, sequence } => {
                            if &shard != self.map.id(ready.shard) {
                                // Resharded under us: the stream routed it right, our map is old.
                                self.counters.mispredicted.fetch_add(1, Relaxed);
                                metrics::counter!(m::MISPREDICTED_TOTAL).increment(1);
                                self.reload_map = true;
                            }
                            delivered += u64::from(ready.user_records);
                            stream_records += 1;
                            bytes += ready.record.data.len() as u64;
                            metrics::histogram!(m::ATTEMPTS).record(f64::from(ready.attempts + 1));
                            metrics::histogram!(m::BUFFERED_SECONDS)
                                .record(now.saturating_sub(ready.first_ms) as f64 / 1000.0);
                            self.capacity.add_permits(ready.permits);
                            self.spool_done(&ready);
                            for (sub_sequence, ack) in ready.acks {
                                // A dropped Delivery means its sender stopped waiting: fine.
                                let _ = ack.send(Ok(Delivered {
                                    shard: shard.clone(),
                                    sequence: sequence.clone(),
                                    sub_sequence,
                                }));
                            }
                        }
                        PutOutcome::Failed {
                            code,
                            message,
                            retryable,
                        } => {
                            unavailable |= retryable;
                            if code == THROTTLED {
                                self.outbox.throttled(ready.shard, now);
                            }
                            metrics::counter!(m::ERRORS_TOTAL, "code" => code.clone()).increment(1);
                            self.retry_or_give_up(ready, retryable, &code, &message, now, &mut retry);
                        }
                    }
                }
                self.counters.delivered.fetch_add(delivered, Relaxed);
                self.counters.stream_records.fetch_add(stream_records, Relaxed);
                metrics::counter!(m::DELIVERED_TOTAL).increment(delivered);
                metrics::counter!(m::STREAM_RECORDS_TOTAL).increment(stream_records);
                metrics::counter!(m::PUT_BYTES_TOTAL).increment(bytes);
                if stream_records > 0 {
                    metrics::histogram!(m::AGGREGATION_RATIO).record(delivered as f64 / stream_records as f64);
                }
            }
            Err(e) => {
                let retryable = e.is_retryable();
                unavailable = retryable;
                if matches!(e, StreamError::Unanswered { .. }) {
                    metrics::counter!(m::UNANSWERED_CALLS_TOTAL).increment(1);
                    if !self.suspect {
                        tracing::warn!("a call got no answer: probing the stream before writing again");
                        self.suspect = true;
                        self.next_probe = Instant::now();
                    }
                }
                let message = error_chain(&e);
                metrics::counter!(m::ERRORS_TOTAL, "code" => "PutRecords").increment(1);
                tracing::warn!(records = done.call.len(), retryable, error = %message, "PutRecords call failed");
                for ready in done.call {
                    self.retry_or_give_up(ready, retryable, "PutRecords", &message, now, &mut retry);
                }
            }
        }
        let last_failure = if unavailable { now + 1 } else { 0 };
        self.counters.last_failure.store(last_failure, Relaxed);
        self.failing_since = if unavailable {
            self.failing_since.or(Some(now))
        } else {
            None
        };
        if !retry.is_empty() {
            self.outbox.retry(retry);
        }
    }

    fn retry_or_give_up(
        &mut self,
        mut ready: Ready<Ack>,
        retryable: bool,
        code: &str,
        message: &str,
        now: u64,
        retry: &mut Vec<Ready<Ack>>,
    ) {
        ready.attempts += 1;
        // A record from the spool waits out the outage: it never expires.
        let from_spool = ready.spool_offset != 0;
        let expired = !from_spool && now.saturating_sub(ready.first_ms) >= self.config.record_ttl.as_millis() as u64;
        let exhausted = !from_spool && ready.attempts >= self.config.max_attempts;
        let reason = match (retryable, exhausted, expired) {
            (false, _, _) => "rejected",
            (true, _, true) => "expired",
            (true, true, false) => "attempts_exhausted",
            (true, false, false) => {
                ready.not_before_ms = now + self.backoff_ms(ready.attempts);
                retry.push(ready);
                return;
            }
        };
        tracing::error!(
            shard = %self.map.id(ready.shard),
            user_records = ready.user_records,
            attempts = ready.attempts,
            age_ms = now.saturating_sub(ready.first_ms),
            code,
            message,
            reason,
            "giving up on a stream record"
        );
        self.counters.failed.fetch_add(u64::from(ready.user_records), Relaxed);
        metrics::counter!(m::FAILED_TOTAL, "reason" => reason).increment(u64::from(ready.user_records));
        if let Some(file) = self.dead_letters.as_mut()
            && let Err(e) = file.write(&ready, code, message, reason)
        {
            // The records are still counted as failed and returned to confirmed senders.
            tracing::error!(error = %e, "writing the producer's dead-letter file failed");
        }
        self.capacity.add_permits(ready.permits);
        self.spool_done(&ready);
        for (_, ack) in ready.acks {
            let _ = ack.send(Err(DeliveryError::new(code, message, ready.attempts, retryable)));
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so retries of many
    /// records do not come back in lockstep.
    fn backoff_ms(&mut self, attempts: u32) -> u64 {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        let full = self
            .config
            .initial_backoff
            .saturating_mul(factor)
            .min(self.config.max_backoff)
            .as_millis() as u64;
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        full / 2 + self.rng % (full / 2 + 1)
    }

    /// Reloads the shard map; when it changed, re-routes everything waiting by the new map.
    /// Called with no call in flight, so no record's shard index is in use elsewhere.
    async fn reload_shard_map(&mut self) {
        self.next_map_reload = Instant::now() + self.config.shard_map_refresh;
        let map = match self.writer.open_shards().await.map(|s| ShardMap::new(&s)) {
            Ok(Ok(map)) => map,
            Ok(Err(e)) => {
                // Mid-reshard listings need not tile; the next one will.
                tracing::info!(error = %e, "shard map not reloaded yet");
                self.next_map_reload = Instant::now() + MAP_RETRY;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "listing shards failed");
                self.next_map_reload = Instant::now() + MAP_RETRY;
                return;
            }
        };
        self.reload_map = false;
        if map.same_shards(&self.map) {
            return;
        }
        tracing::info!(before = self.map.len(), after = map.len(), "shard map changed");
        metrics::counter!(m::SHARD_MAP_CHANGES_TOTAL).increment(1);
        // Everything not yet sent is taken apart and aggregated again by the new map, in
        // order, so no aggregate carries keys of two shards. (A call in flight when the
        // stream resharded may still have; see docs/architecture.md on resharding.)
        self.batcher.seal_all();
        while let Some(sealed) = self.batcher.take_batch(true) {
            sealed.into_iter().for_each(|r| self.outbox.push(r));
        }
        let waiting = self.outbox.drain();
        self.batcher.set_shards(map.len());
        self.outbox.set_shards(map.len());
        self.map = map;
        let now = self.now_ms();
        for mut ready in waiting {
            if ready.spool_offset != 0 {
                // Read back from the spool: it settles by its offset, so it stays whole.
                ready.shard = self.map.index_of(ready.record.hash_key());
                self.outbox.push(ready);
                continue;
            }
            for (shard, user, ack, permits) in self.take_apart(ready) {
                self.batcher.push_with_ack(shard, user, ack, permits, now);
            }
        }
    }

    /// A sealed record goes to the outbox, or behind what is spooled while the spool holds
    /// anything (order per shard).
    fn seal(&mut self, ready: Ready<Ack>) {
        let spooling = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        if spooling {
            self.spool_record(ready);
        } else {
            self.outbox.push(ready);
        }
    }

    /// Appends a record to the spool and frees its buffer share; keeps it in memory when the
    /// spool is full or fails.
    fn spool_record(&mut self, ready: Ready<Ack>) {
        let Some(spool) = self.spool.as_mut() else {
            return self.outbox.push(ready);
        };
        if !spool.has_room(ready.record.data.len() + ready.record.partition_key.len()) {
            return self.outbox.push(ready);
        }
        match spool.append(&ready.record, ready.user_records) {
            Ok(offset) => {
                self.spool_dirty = true;
                self.counters.spooled.fetch_add(1, Relaxed);
                metrics::counter!(m::SPOOLED_TOTAL).increment(1);
                self.capacity.add_permits(ready.permits);
                if !ready.acks.is_empty() {
                    self.spool_acks.push_back((offset, ready.acks));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "writing the spool failed; keeping the record in memory");
                self.outbox.push(ready);
            }
        }
    }

    /// Once the stream has failed for the configured time with records waiting, everything
    /// waiting goes to the spool (and what is sealed later follows it there).
    fn spool_if_failing(&mut self) {
        let (Some(cfg), Some(since)) = (&self.config.spool, self.failing_since) else {
            return;
        };
        let failing_long = self.now_ms().saturating_sub(since) >= cfg.after.as_millis() as u64;
        let spool_empty = self.spool.as_ref().is_none_or(Spool::is_empty);
        if !failing_long || !spool_empty || self.outbox.is_empty() {
            return;
        }
        let waiting = self.outbox.drain();
        tracing::warn!(records = waiting.len(), "the stream keeps failing: spooling to disk");
        let (in_memory, to_disk): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|r| r.spool_offset != 0);
        in_memory.into_iter().for_each(|r| self.outbox.push(r));
        to_disk.into_iter().for_each(|r| self.spool_record(r));
    }

    /// Makes what was spooled durable: once per round of the loop, not per record.
    fn sync_spool(&mut self) {
        if !std::mem::take(&mut self.spool_dirty) {
            return;
        }
        if let Some(spool) = self.spool.as_mut()
            && let Err(e) = spool.sync()
        {
            tracing::error!(error = %e, "syncing the spool failed");
        }
    }

    /// Keeps up to [`SPOOL_READ_BACK`] bytes of spooled records in memory, in order: they are
    /// sent (and retried) like any record, which is also how the spool finds the stream back.
    fn read_back_spool(&mut self) {
        let Some(spool) = self.spool.as_mut() else { return };
        if spool.pending_bytes() == 0 || self.spool_in_memory >= SPOOL_READ_BACK {
            return;
        }
        let records = match spool.read_back(SPOOL_READ_BACK - self.spool_in_memory) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading the spool back failed");
                return;
            }
        };
        let now = self.now_ms();
        for (spooled, offset) in records {
            let acks = match self.spool_acks.front() {
                Some((o, _)) if *o == offset => self.spool_acks.pop_front().map(|(_, a)| a).unwrap_or_default(),
                _ => Vec::new(),
            };
            let size = spooled.record.partition_key.len() + spooled.record.data.len();
            self.spool_in_memory += size;
            self.spool_unsettled.insert(offset, false);
            let shard = self.map.index_of(spooled.record.hash_key());
            self.outbox.push(Ready {
                record: spooled.record,
                shard,
                user_records: spooled.user_records,
                permits: 0,
                attempts: 0,
                first_ms: now,
                not_before_ms: 0,
                spool_offset: offset,
                acks,
            });
        }
    }

    /// A read-back record is written or given up on: settle the spool up to the first one
    /// still open.
    fn spool_done(&mut self, ready: &Ready<Ack>) {
        if ready.spool_offset == 0 {
            return;
        }
        self.spool_in_memory = self
            .spool_in_memory
            .saturating_sub(ready.record.partition_key.len() + ready.record.data.len());
        self.spool_unsettled.insert(ready.spool_offset, true);
        let mut settled = None;
        while let Some(entry) = self.spool_unsettled.first_entry() {
            if !*entry.get() {
                break;
            }
            settled = Some(*entry.key());
            entry.remove();
        }
        if let (Some(offset), Some(spool)) = (settled, self.spool.as_mut())
            && let Err(e) = spool.settle(offset)
        {
            tracing::error!(error = %e, "saving the spool's offset failed");
        }
    }

    /// The user records of a stream record, each with its shard by the current map, its ack
    /// and its share of the buffer permits (the shares add up to the record's permits).
    fn take_apart(&self, ready: Ready<Ack>) -> Vec<(usize, UserRecord, Option<Ack>, usize)> {
        let r = &ready.record;
        // Our own aggregates always decode; were one not to, it goes on whole.
        let users = kpl::decode_strict(&r.partition_key, r.explicit_hash_key, &r.data).unwrap_or_else(|_| {
            vec![UserRecord {
                partition_key: r.partition_key.clone(),
                explicit_hash_key: r.explicit_hash_key,
                data: r.data.clone(),
            }]
        });
        let mut acks = ready.acks.into_iter().peekable();
        let mut left = ready.permits;
        let n = users.len();
        users
            .into_iter()
            .enumerate()
            .map(|(i, user)| {
                let ack = acks.next_if(|(sub, _)| *sub as usize == i).map(|(_, a)| a);
                let share = if i + 1 == n {
                    left
                } else {
                    (user.partition_key.len() + user.data.len() + RECORD_OVERHEAD).min(left)
                };
                left -= share;
                let shard = self.map.index_of(
                    user.explicit_hash_key
                        .unwrap_or_else(|| inlet_seams::hash_key(&user.partition_key)),
                );
                (shard, user, ack, share)
            })
            .collect()
    }

    fn report_utilization(&mut self, now: u64) {
        if now < self.next_utilization_ms {
            return;
        }
        let window = UTILIZATION_EVERY_MS + now - self.next_utilization_ms;
        self.next_utilization_ms = now + UTILIZATION_EVERY_MS;
        for (shard, bytes, records) in self.outbox.take_utilization(window) {
            let id = self.map.id(shard).to_string();
            metrics::gauge!(m::SHARD_BYTES_UTILIZATION, "shard" => id.clone()).set(bytes);
            metrics::gauge!(m::SHARD_RECORDS_UTILIZATION, "shard" => id).set(records);
        }
        let buffered =
            self.config.max_buffered_bytes - self.capacity.available_permits().min(self.config.max_buffered_bytes);
        metrics::gauge!(m::BUFFERED_BYTES).set(buffered as f64);
        metrics::gauge!(m::CALLS_IN_FLIGHT).set(self.calls.len() as f64);
    }
}

/// The probe's answer: whether the stream answered.
async fn probe_answer(probe: &mut Option<tokio::task::JoinHandle<bool>>) -> bool {
    match probe {
        Some(handle) => handle.await.unwrap_or(false),
        None => std::future::pending().await,
    }
}

fn empty_record() -> PutRecord {
    PutRecord {
        partition_key: String::new(),
        explicit_hash_key: None,
        data: bytes::Bytes::new(),
    }
}
