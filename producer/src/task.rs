//! The producer's writer task: takes user records from the channel, aggregates them
//! (batcher), schedules the sealed records into `PutRecords` calls (outbox), keeps up to
//! `max_in_flight` calls going, and settles every record: delivered, retried later, or
//! given up on with a reason. The on-disk spool ([`SpoolDriver`]) and the pause after an
//! unanswered call ([`Probe`]) are driven from its loop.
use crate::backoff::Backoff;
use crate::batcher::{Batcher, Ready};
use crate::config::ProducerConfig;
use crate::dead_letter::DeadLetterFile;
use crate::delivery::{Ack, Delivered, DeliveryError};
use crate::metrics as m;
use crate::outbox::Outbox;
use crate::probe::Probe;
use crate::protocol::{Msg, Queued, RECORD_OVERHEAD};
use crate::shard_map::ShardMap;
use crate::spool_driver::{Offer, SpoolDriver};
use crate::stats::Counters;
use inlet_schemas::kpl::{self, UserRecord};
use inlet_seams::error_chain;
use inlet_seams::{PutOutcome, PutRecord, StreamError, StreamWriter};
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

/// A finished call.
struct Done {
    /// The records sent, with their bookkeeping, in the call's order.
    call: Vec<Ready<Ack>>,
    /// The stream's answer: one outcome per record, or the call's failure.
    result: Result<Vec<PutOutcome>, StreamError>,
    /// How long the call took.
    elapsed: Duration,
}

/// When the shard map is reloaded. A reload waits until no call is in flight, so no
/// record's shard index is in use elsewhere.
struct MapReload {
    /// Set when the map looks stale (a record landed on another shard than predicted): no
    /// call goes out until it is reloaded.
    stale: bool,
    /// When it is reloaded anyway: every `shard_map_refresh`, sooner after a failed listing.
    next_at: Instant,
}

impl MapReload {
    /// Whether the map should be reloaded at `now` (once no call is in flight).
    fn due(&self, now: Instant) -> bool {
        self.stale || now >= self.next_at
    }
}

/// What the handle is waiting for from the task.
struct Draining {
    /// Flushes waiting until everything received before them is settled. No message is
    /// taken meanwhile.
    flushes: Vec<oneshot::Sender<()>>,
    /// Set once the channel closed (the handle is gone): settle everything, then stop.
    closing: bool,
}

impl Draining {
    /// Whether everything held should go out now, without waiting for fuller calls, and no
    /// more messages be taken until it has.
    fn active(&self) -> bool {
        self.closing || !self.flushes.is_empty()
    }
}

pub(crate) struct Task {
    /// The stream.
    writer: Arc<dyn StreamWriter>,
    /// The open shards, by which records are aggregated and sent.
    map: ShardMap,
    /// User records being aggregated per shard, until sealed.
    batcher: Batcher<Ack>,
    /// Sealed stream records waiting for a call, per shard, paced per shard.
    outbox: Outbox<Ack>,
    /// The settings.
    config: ProducerConfig,
    /// The buffer, shared with the handle: one permit per byte held. The handle takes
    /// permits for each record it accepts; the task gives them back once the record is
    /// settled or spooled.
    capacity: Arc<Semaphore>,
    /// The counters, shared with the handle; `epoch` is the task's clock.
    counters: Arc<Counters>,
    /// Where records given up on are written, if configured.
    dead_letters: Option<DeadLetterFile>,
    /// The `PutRecords` calls in flight (at most `max_in_flight`).
    calls: JoinSet<Done>,
    /// When the shard map is reloaded.
    map_reload: MapReload,
    /// When per-shard utilization is next reported, ms.
    next_utilization_ms: u64,
    /// Flushes waiting, and whether the task is closing.
    draining: Draining,
    /// Delays of retries and of probes.
    backoff: Backoff,
    /// Writes paused after an unanswered call, until the stream answers a probe.
    probe: Probe,
    /// The on-disk spool, if configured.
    spool: Option<SpoolDriver>,
}

impl Task {
    pub(crate) fn new(
        writer: Arc<dyn StreamWriter>,
        map: ShardMap,
        batcher: Batcher<Ack>,
        outbox: Outbox<Ack>,
        config: ProducerConfig,
        (capacity, counters): (Arc<Semaphore>, Arc<Counters>),
        (dead_letters, spool): (Option<DeadLetterFile>, Option<SpoolDriver>),
    ) -> Self {
        let (mut batcher, mut outbox) = (batcher, outbox);
        batcher.set_shards(map.len());
        outbox.set_shards(map.len());
        Self {
            writer,
            batcher,
            outbox,
            map,
            map_reload: MapReload {
                stale: false,
                next_at: Instant::now() + config.shard_map_refresh,
            },
            backoff: Backoff::new(config.initial_backoff, config.max_backoff),
            config,
            capacity,
            counters,
            dead_letters,
            calls: JoinSet::new(),
            next_utilization_ms: UTILIZATION_EVERY_MS,
            draining: Draining {
                flushes: Vec::new(),
                closing: false,
            },
            probe: Probe::new(),
            spool,
        }
    }

    fn now_ms(&self) -> u64 {
        self.counters.epoch.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.counters.epoch + Duration::from_millis(ms)
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        // Series a dashboard charts from the start, before anything has failed.
        for name in [m::FAILED_TOTAL, m::RETRIED_TOTAL] {
            metrics::counter!(name).increment(0);
        }
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
            if self.map_reload.due(Instant::now()) && self.calls.is_empty() {
                self.reload_shard_map().await;
            }
            let draining = self.draining.active();
            let now = self.now_ms();
            if self.probe.due(Instant::now()) {
                let writer = Arc::clone(&self.writer);
                self.probe.start(async move { writer.open_shards().await.is_ok() });
            }
            while !self.map_reload.stale
                && !self.probe.writes_paused()
                && self.calls.len() < self.config.max_in_flight.max(1)
            {
                // With nothing in flight, waiting for a fuller call only adds latency.
                let force = draining || self.calls.is_empty();
                let Some(call) = self.outbox.next_call(now, force) else {
                    break;
                };
                self.start_call(call);
            }
            let spool_empty = self.spool.as_ref().is_none_or(SpoolDriver::is_empty);
            if draining && self.batcher.is_empty() && self.outbox.is_empty() && self.calls.is_empty() && spool_empty {
                self.draining.flushes.drain(..).for_each(|f| {
                    let _ = f.send(());
                });
                if self.draining.closing {
                    return;
                }
            }
            self.report_utilization(now);
            let wake_ms = [self.batcher.next_deadline(), self.outbox.next_wakeup(now)]
                .into_iter()
                .flatten()
                .fold(self.next_utilization_ms, u64::min);
            let mut wake = self.at(wake_ms).min(self.map_reload.next_at);
            if let Some(probe_at) = self.probe.wake_at() {
                wake = wake.min(probe_at);
            }
            // Not `!draining`: a flush acknowledged just above ends the draining.
            let take_messages = !self.draining.active();
            tokio::select! {
                msg = rx.recv(), if take_messages => match msg {
                    None => {
                        self.draining.closing = true;
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
                answered = self.probe.answer(), if self.probe.is_running() => {
                    self.probe.answered(answered, Instant::now(), &mut self.backoff);
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
                self.draining.flushes.push(ack);
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
        // The handle counts acceptances per record; the metric follows it per call.
        metrics::counter!(m::ACCEPTED_TOTAL).absolute(self.counters.accepted.load(Relaxed));
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
                                self.map_reload.stale = true;
                            }
                            delivered += u64::from(ready.user_records);
                            stream_records += 1;
                            bytes += ready.record.data.len() as u64;
                            metrics::histogram!(m::ATTEMPTS).record(f64::from(ready.attempts + 1));
                            metrics::histogram!(m::BUFFERED_SECONDS)
                                .record(now.saturating_sub(ready.first_ms) as f64 / 1000.0);
                            self.capacity.add_permits(ready.permits);
                            self.spool_settled(&ready);
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
                    self.probe.unanswered(Instant::now());
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
        if let Some(spool) = self.spool.as_mut() {
            spool.writes_done(now, unavailable);
        }
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
        let from_spool = SpoolDriver::was_read_back(&ready);
        let expired = !from_spool && now.saturating_sub(ready.first_ms) >= self.config.record_ttl.as_millis() as u64;
        let exhausted = !from_spool && ready.attempts >= self.config.max_attempts;
        let reason = match (retryable, exhausted, expired) {
            (false, _, _) => "rejected",
            (true, _, true) => "expired",
            (true, true, false) => "attempts_exhausted",
            (true, false, false) => {
                ready.not_before_ms = now + self.backoff.delay_ms(ready.attempts);
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
            // Still failed and returned to confirmed senders as such, and counted apart: an
            // operator must see that nothing but the count is left of them.
            tracing::error!(
                error = %e,
                user_records = ready.user_records,
                "writing the producer's dead-letter file failed: these records are lost"
            );
            self.counters
                .dead_letter_unwritten
                .fetch_add(u64::from(ready.user_records), Relaxed);
            metrics::counter!(m::DEAD_LETTER_UNWRITTEN_TOTAL).increment(u64::from(ready.user_records));
        }
        self.capacity.add_permits(ready.permits);
        self.spool_settled(&ready);
        for (_, ack) in ready.acks {
            let _ = ack.send(Err(DeliveryError::new(code, message, ready.attempts, retryable)));
        }
    }

    /// Reloads the shard map; when it changed, re-routes everything waiting by the new map.
    /// Called with no call in flight, so no record's shard index is in use elsewhere.
    async fn reload_shard_map(&mut self) {
        self.map_reload.next_at = Instant::now() + self.config.shard_map_refresh;
        let map = match self.writer.open_shards().await.map(|s| ShardMap::new(&s)) {
            Ok(Ok(map)) => map,
            Ok(Err(e)) => {
                // Mid-reshard listings need not tile; the next one will.
                tracing::info!(error = %e, "shard map not reloaded yet");
                self.map_reload.next_at = Instant::now() + MAP_RETRY;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "listing shards failed");
                self.map_reload.next_at = Instant::now() + MAP_RETRY;
                return;
            }
        };
        self.map_reload.stale = false;
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
            if SpoolDriver::was_read_back(&ready) {
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
        if self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
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
        match spool.offer(ready) {
            Offer::Spooled { permits } => {
                self.counters.spooled.fetch_add(1, Relaxed);
                metrics::counter!(m::SPOOLED_TOTAL).increment(1);
                self.capacity.add_permits(permits);
            }
            Offer::Kept(ready) => self.outbox.push(ready),
        }
    }

    /// Once the stream has failed for the configured time with records waiting, everything
    /// waiting goes to the spool (and what is sealed later follows it there).
    fn spool_if_failing(&mut self) {
        let (now, records_waiting) = (self.now_ms(), !self.outbox.is_empty());
        if !self
            .spool
            .as_ref()
            .is_some_and(|s| s.should_spool(now, records_waiting))
        {
            return;
        }
        let waiting = self.outbox.drain();
        tracing::warn!(records = waiting.len(), "the stream keeps failing: spooling to disk");
        let (in_memory, to_disk): (Vec<_>, Vec<_>) = waiting.into_iter().partition(SpoolDriver::was_read_back);
        in_memory.into_iter().for_each(|r| self.outbox.push(r));
        to_disk.into_iter().for_each(|r| self.spool_record(r));
    }

    /// Makes what was spooled durable: once per round of the loop, not per record.
    fn sync_spool(&mut self) {
        if let Some(spool) = self.spool.as_mut() {
            spool.sync();
        }
    }

    /// Keeps some spooled records in memory, in order, to be sent like any record.
    fn read_back_spool(&mut self) {
        let epoch = self.counters.epoch;
        let now = || epoch.elapsed().as_millis() as u64;
        if let Some(spool) = self.spool.as_mut() {
            spool
                .read_back(&self.map, now)
                .into_iter()
                .for_each(|r| self.outbox.push(r));
        }
    }

    /// A record is written or given up on: if it was read back from the spool, the spool
    /// settles up to the first read-back record still open.
    fn spool_settled(&mut self, ready: &Ready<Ack>) {
        if let Some(spool) = self.spool.as_mut() {
            spool.settled(ready);
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

fn empty_record() -> PutRecord {
    PutRecord {
        partition_key: String::new(),
        explicit_hash_key: None,
        data: bytes::Bytes::new(),
    }
}
