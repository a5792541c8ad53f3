//! The async producer: bounded buffer, background writer task, retries, flush.
use crate::batcher::{BatchLimits, Batcher, Ready};
use crate::delivery::{Ack, Delivered, Delivery, DeliveryError};
use crate::metrics as m;
use crate::shard_map::ShardMap;
use bytes::Bytes;
use inlet_schemas::kpl::UserRecord;
use inlet_seams::{PutOutcome, StreamError, StreamWriter, hash_key};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Aggregation and collection limits.
    pub batch: BatchLimits,
    /// Most bytes of user records held at once; `send` waits beyond it (backpressure).
    pub max_buffered_bytes: usize,
    /// Attempts per stream record before it is given up on.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            batch: BatchLimits::default(),
            max_buffered_bytes: 64 << 20,
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Why `send` refused a record. Nothing was buffered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Partition key plus data exceed the stream's maximum record size.
    #[error("record of {size} bytes exceeds the stream's limit of {limit} bytes")]
    RecordTooLarge {
        /// Partition key plus data, bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The partition key is empty or longer than 256 characters.
    #[error("partition key of {len} characters: it must have 1 to 256")]
    BadPartitionKey {
        /// Its length in characters.
        len: usize,
    },
    /// `try_send_all_confirmed` only: the records together need more than the whole buffer,
    /// so they can never be taken at once.
    #[error("records of {size} bytes (with bookkeeping) exceed the producer's buffer of {limit} bytes")]
    BatchTooLarge {
        /// Buffer capacity they need, bytes.
        size: usize,
        /// The buffer's size.
        limit: usize,
    },
    /// `try_send` only: the buffer is full; try again later.
    #[error("producer buffer full")]
    Full,
    /// The producer is closed (or its writer task stopped on an error).
    #[error("producer closed")]
    Closed,
}

/// The producer's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// The shard map could not be built.
    #[error("loading the shard map failed")]
    ShardMap(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The writer task stopped.
    #[error("producer task stopped: {0}")]
    Stopped(String),
}

/// Counters of a producer's life; `accepted = delivered + failed + in flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// User records accepted by `send`.
    pub accepted: u64,
    /// User records written.
    pub delivered: u64,
    /// User records given up on.
    pub failed: u64,
    /// Stream records written (aggregates count once).
    pub stream_records: u64,
    /// PutRecords calls made.
    pub put_calls: u64,
}

#[derive(Debug)]
struct Counters {
    accepted: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    stream_records: AtomicU64,
    put_calls: AtomicU64,
    /// Milliseconds after `epoch` of the last write that failed retryably, plus one; 0 when
    /// the last write succeeded (or none was made).
    last_failure: AtomicU64,
    epoch: Instant,
}

impl Counters {
    fn new() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            stream_records: AtomicU64::new(0),
            put_calls: AtomicU64::new(0),
            last_failure: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn snapshot(&self) -> ProducerStats {
        ProducerStats {
            accepted: self.accepted.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            failed: self.failed.load(Relaxed),
            stream_records: self.stream_records.load(Relaxed),
            put_calls: self.put_calls.load(Relaxed),
        }
    }
}

/// A user record on its way to the writer task.
#[derive(Debug)]
struct Queued {
    shard_key: u128,
    record: UserRecord,
    permits: usize,
    ack: Option<Ack>,
}

#[derive(Debug)]
enum Msg {
    Record(Queued),
    /// Records taken together (`try_send_all_confirmed`): one message, so all or none.
    Records(Vec<Queued>),
    Flush(oneshot::Sender<()>),
}

/// Sends events to a stream. Cheap to share by reference; `close` it to flush and stop.
#[derive(Debug)]
pub struct Producer {
    tx: mpsc::Sender<Msg>,
    capacity: Arc<Semaphore>,
    counters: Arc<Counters>,
    max_record_bytes: usize,
    max_buffered_bytes: usize,
    task: tokio::task::JoinHandle<()>,
}

/// Bookkeeping bytes charged per user record on top of its payload.
const RECORD_OVERHEAD: usize = 64;

impl Producer {
    /// Starts a producer on `writer`, loading its shard map.
    pub async fn start(writer: Arc<dyn StreamWriter>, config: ProducerConfig) -> Result<Self, ProducerError> {
        let shards = writer
            .open_shards()
            .await
            .map_err(|e| ProducerError::ShardMap(Box::new(e)))?;
        let map = ShardMap::new(&shards).map_err(|e| ProducerError::ShardMap(Box::new(e)))?;
        let limits = writer.limits();
        let mut batch = config.batch;
        batch.max_put_records = batch.max_put_records.min(limits.max_records_per_put);
        batch.max_put_bytes = batch.max_put_bytes.min(limits.max_bytes_per_put);
        batch.max_aggregate_bytes = batch.max_aggregate_bytes.min(limits.max_record_bytes);
        let (tx, rx) = mpsc::channel(4096);
        let capacity = Arc::new(Semaphore::new(config.max_buffered_bytes));
        let counters = Arc::new(Counters::new());
        let task = Task {
            writer,
            batcher: Batcher::with_acks(batch, map.len()),
            map,
            config: config.clone(),
            capacity: Arc::clone(&capacity),
            counters: Arc::clone(&counters),
        };
        let task = tokio::spawn(task.run(rx));
        Ok(Self {
            tx,
            capacity,
            counters,
            max_record_bytes: limits.max_record_bytes,
            max_buffered_bytes: config.max_buffered_bytes,
            task,
        })
    }

    fn check(&self, partition_key: &str, data: &Bytes) -> Result<usize, SendError> {
        let len = partition_key.chars().count();
        if len == 0 || len > 256 {
            return Err(SendError::BadPartitionKey { len });
        }
        let size = partition_key.len() + data.len();
        let limit = self.max_record_bytes.min(self.max_buffered_bytes - RECORD_OVERHEAD);
        if size > limit {
            return Err(SendError::RecordTooLarge { size, limit });
        }
        Ok(size + RECORD_OVERHEAD)
    }

    /// Takes buffer capacity for one record, waiting while the buffer is full.
    async fn reserve(&self, partition_key: &str, data: &Bytes) -> Result<usize, SendError> {
        let permits = self.check(partition_key, data)?;
        // `check` keeps permits below max_buffered_bytes, which fits in u32 by construction
        // of the semaphore (its maximum is far below).
        let permit = self
            .capacity
            .acquire_many(permits as u32)
            .await
            .map_err(|_| SendError::Closed)?;
        permit.forget();
        Ok(permits)
    }

    /// Takes `permits` of buffer capacity if it is free now.
    fn try_take(&self, permits: usize) -> Result<(), SendError> {
        let n = u32::try_from(permits).map_err(|_| SendError::BatchTooLarge {
            size: permits,
            limit: self.max_buffered_bytes,
        })?;
        let permit = self.capacity.try_acquire_many(n).map_err(|e| match e {
            tokio::sync::TryAcquireError::NoPermits => SendError::Full,
            tokio::sync::TryAcquireError::Closed => SendError::Closed,
        })?;
        permit.forget();
        Ok(())
    }

    /// Sends one record, waiting while the buffer is full.
    pub async fn send(&self, partition_key: String, data: Bytes) -> Result<(), SendError> {
        let permits = self.reserve(&partition_key, &data).await?;
        self.enqueue(queued(partition_key, data, permits, None)).await
    }

    /// Sends one record, waiting while the buffer is full; the [`Delivery`] resolves when the
    /// stream record holding it is written or given up on.
    pub async fn send_confirmed(&self, partition_key: String, data: Bytes) -> Result<Delivery, SendError> {
        let permits = self.reserve(&partition_key, &data).await?;
        let (ack, delivery) = Delivery::channel();
        self.enqueue(queued(partition_key, data, permits, Some(ack))).await?;
        Ok(delivery)
    }

    /// Sends one record if the buffer has room now, else answers [`SendError::Full`].
    pub async fn try_send(&self, partition_key: String, data: Bytes) -> Result<(), SendError> {
        let permits = self.check(&partition_key, &data)?;
        self.try_take(permits)?;
        self.enqueue(queued(partition_key, data, permits, None)).await
    }

    /// As [`Producer::try_send`], with a [`Delivery`] for the record.
    pub async fn try_send_confirmed(&self, partition_key: String, data: Bytes) -> Result<Delivery, SendError> {
        let permits = self.check(&partition_key, &data)?;
        self.try_take(permits)?;
        let (ack, delivery) = Delivery::channel();
        self.enqueue(queued(partition_key, data, permits, Some(ack))).await?;
        Ok(delivery)
    }

    /// Sends all of `records` or none, without waiting: [`SendError::Full`] when the buffer
    /// (or the queue to the writer task) has no room for all of them now, or the refusal of
    /// the first record that can never be sent. One [`Delivery`] per record, in order.
    pub fn try_send_all_confirmed(&self, records: Vec<(String, Bytes)>) -> Result<Vec<Delivery>, SendError> {
        let mut permits = Vec::with_capacity(records.len());
        for (partition_key, data) in &records {
            permits.push(self.check(partition_key, data)?);
        }
        let total: usize = permits.iter().sum();
        if total > self.max_buffered_bytes {
            return Err(SendError::BatchTooLarge {
                size: total,
                limit: self.max_buffered_bytes,
            });
        }
        self.try_take(total)?;
        let mut deliveries = Vec::with_capacity(records.len());
        let items = records
            .into_iter()
            .zip(permits)
            .map(|((partition_key, data), permits)| {
                let (ack, delivery) = Delivery::channel();
                deliveries.push(delivery);
                queued(partition_key, data, permits, Some(ack))
            })
            .collect();
        self.tx.try_send(Msg::Records(items)).map_err(|e| {
            self.capacity.add_permits(total);
            match e {
                mpsc::error::TrySendError::Full(_) => SendError::Full,
                mpsc::error::TrySendError::Closed(_) => SendError::Closed,
            }
        })?;
        self.counters.accepted.fetch_add(deliveries.len() as u64, Relaxed);
        Ok(deliveries)
    }

    async fn enqueue(&self, item: Queued) -> Result<(), SendError> {
        let permits = item.permits;
        self.tx.send(Msg::Record(item)).await.map_err(|_| {
            self.capacity.add_permits(permits);
            SendError::Closed
        })?;
        self.counters.accepted.fetch_add(1, Relaxed);
        Ok(())
    }

    /// How long ago the stream last failed a write in a way worth retrying (unavailable,
    /// throttling), if no write has fully succeeded since: a sign that the stream is not
    /// writable now.
    pub fn last_write_failure(&self) -> Option<Duration> {
        let at = self.counters.last_failure.load(Relaxed).checked_sub(1)?;
        let elapsed = self.counters.epoch.elapsed().as_millis() as u64;
        Some(Duration::from_millis(elapsed.saturating_sub(at)))
    }

    /// Waits until every record sent before this call is delivered or given up on.
    pub async fn flush(&self) -> Result<(), ProducerError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .await
            .map_err(|_| ProducerError::Stopped("writer task gone".into()))?;
        done.await
            .map_err(|_| ProducerError::Stopped("writer task gone during flush".into()))
    }

    /// The counters so far.
    pub fn stats(&self) -> ProducerStats {
        self.counters.snapshot()
    }

    /// Flushes, stops the writer task and returns the final counters.
    pub async fn close(self) -> Result<ProducerStats, ProducerError> {
        self.flush().await?;
        let Producer { tx, task, .. } = self;
        drop(tx);
        task.await.map_err(|e| ProducerError::Stopped(e.to_string()))?;
        Ok(self.counters.snapshot())
    }
}

fn queued(partition_key: String, data: Bytes, permits: usize, ack: Option<Ack>) -> Queued {
    Queued {
        shard_key: hash_key(&partition_key),
        record: UserRecord {
            partition_key,
            explicit_hash_key: None,
            data,
        },
        permits,
        ack,
    }
}

struct Task {
    writer: Arc<dyn StreamWriter>,
    map: ShardMap,
    batcher: Batcher<Ack>,
    config: ProducerConfig,
    capacity: Arc<Semaphore>,
    counters: Arc<Counters>,
}

impl Task {
    fn now_ms(&self) -> u64 {
        self.counters.epoch.elapsed().as_millis() as u64
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            let deadline = self
                .batcher
                .next_deadline()
                .map(|ms| self.counters.epoch + Duration::from_millis(ms));
            let mut force = false;
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => {
                        self.drain().await;
                        return;
                    }
                    Some(msg) => {
                        self.handle(msg).await;
                        // Take what else is queued before writing, so batches fill up.
                        for _ in 0..1024 {
                            match rx.try_recv() {
                                Ok(msg) => self.handle(msg).await,
                                Err(_) => break,
                            }
                        }
                    }
                },
                () = sleep_until_opt(deadline) => {
                    self.batcher.seal_due(self.now_ms());
                    force = true;
                }
            }
            while let Some(batch) = self.batcher.take_batch(force) {
                self.put(batch).await;
            }
        }
    }

    async fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Record(item) => self.push(item),
            Msg::Records(items) => items.into_iter().for_each(|item| self.push(item)),
            Msg::Flush(ack) => {
                self.drain().await;
                let _ = ack.send(());
            }
        }
    }

    fn push(&mut self, item: Queued) {
        let shard = self.map.index_of(item.shard_key);
        let now = self.now_ms();
        self.batcher
            .push_with_ack(shard, item.record, item.ack, item.permits, now);
    }

    /// Seals and writes everything held.
    async fn drain(&mut self) {
        self.batcher.seal_all();
        while let Some(batch) = self.batcher.take_batch(true) {
            self.put(batch).await;
        }
    }

    async fn put(&mut self, batch: Vec<Ready<Ack>>) {
        let records: Vec<_> = batch.iter().map(|r| r.record.clone()).collect();
        self.counters.put_calls.fetch_add(1, Relaxed);
        metrics::counter!(m::PUT_CALLS_TOTAL).increment(1);
        let outcomes = self.writer.put_records(&records).await;
        let mut retry = Vec::new();
        // Whether the stream failed in a way worth retrying (unavailable, throttling), as
        // opposed to refusing a record.
        let mut unavailable = false;
        match outcomes {
            Ok(outcomes) => {
                let (mut delivered, mut stream_records, mut bytes) = (0u64, 0u64, 0u64);
                for (ready, outcome) in batch.into_iter().zip(outcomes) {
                    match outcome {
                        PutOutcome::Written { shard, sequence } => {
                            delivered += u64::from(ready.user_records);
                            stream_records += 1;
                            bytes += ready.record.data.len() as u64;
                            self.capacity.add_permits(ready.permits);
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
                            self.failed_or_retry(ready, retryable, &code, &message, &mut retry);
                        }
                    }
                }
                self.counters.delivered.fetch_add(delivered, Relaxed);
                self.counters.stream_records.fetch_add(stream_records, Relaxed);
                metrics::counter!(m::DELIVERED_TOTAL).increment(delivered);
                metrics::counter!(m::PUT_BYTES_TOTAL).increment(bytes);
                if stream_records > 0 {
                    metrics::histogram!(m::AGGREGATION_RATIO).record(delivered as f64 / stream_records as f64);
                }
            }
            Err(e) => {
                let retryable = e.is_retryable();
                unavailable = retryable;
                let message = error_chain(&e);
                for ready in batch {
                    self.failed_or_retry(ready, retryable, "PutRecords", &message, &mut retry);
                }
            }
        }
        let last_failure = if unavailable { self.now_ms() + 1 } else { 0 };
        self.counters.last_failure.store(last_failure, Relaxed);
        if !retry.is_empty() {
            let attempts = retry.iter().map(|r| r.attempts).max().unwrap_or(1);
            metrics::counter!(m::RETRIED_TOTAL).increment(retry.len() as u64);
            self.batcher.retry_front(retry);
            tokio::time::sleep(self.backoff(attempts)).await;
        }
    }

    fn failed_or_retry(
        &self,
        mut ready: Ready<Ack>,
        retryable: bool,
        code: &str,
        message: &str,
        retry: &mut Vec<Ready<Ack>>,
    ) {
        ready.attempts += 1;
        if retryable && ready.attempts < self.config.max_attempts {
            retry.push(ready);
            return;
        }
        tracing::error!(
            shard = %self.map.id(ready.shard),
            user_records = ready.user_records,
            attempts = ready.attempts,
            code,
            message,
            "giving up on a stream record"
        );
        self.counters.failed.fetch_add(u64::from(ready.user_records), Relaxed);
        metrics::counter!(m::FAILED_TOTAL, "reason" => if retryable { "attempts_exhausted" } else { "rejected" })
            .increment(u64::from(ready.user_records));
        self.capacity.add_permits(ready.permits);
        for (_, ack) in ready.acks {
            let _ = ack.send(Err(DeliveryError::new(code, message, ready.attempts, retryable)));
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
        self.config
            .initial_backoff
            .saturating_mul(factor)
            .min(self.config.max_backoff)
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn error_chain(e: &StreamError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
