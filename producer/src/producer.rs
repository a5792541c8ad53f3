//! The async producer: bounded buffer, background writer task, retries, flush.
use crate::batcher::Batcher;
use crate::dead_letter::DeadLetterFile;
use crate::delivery::{Ack, Delivery};
use crate::outbox::{Outbox, OutboxLimits};
use crate::protocol::{Msg, Queued, RECORD_OVERHEAD};
use crate::shard_map::ShardMap;
use crate::spool_driver::SpoolDriver;
use crate::stats::Counters;
use crate::task::Task;
use bytes::Bytes;
use inlet_schemas::kpl::UserRecord;
use inlet_seams::{StreamWriter, hash_key};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};

// Defined beside what they describe; public here (and at the crate root) as before.
pub use crate::config::{ProducerConfig, SpoolConfig};
pub use crate::stats::ProducerStats;

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
    /// The spool could not be opened.
    #[error("opening the spool in {path}")]
    Spool {
        /// Its directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The dead-letter file could not be opened.
    #[error("opening the dead-letter file {path}")]
    DeadLetter {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The writer task stopped.
    #[error("producer task stopped: {0}")]
    Stopped(String),
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
        if !limits.aggregate {
            // A user record alone is sent as it is: plain records, no aggregates. The client
            // below batches them itself (Kafka), so calls as large as it takes keep its
            // batches full: capped at the KPL's 500, a partition never had more queued.
            batch.max_aggregate_records = 1;
            batch.max_put_records = limits.max_records_per_put;
            batch.max_put_bytes = limits.max_bytes_per_put;
        }
        let outbox = OutboxLimits {
            max_put_records: batch.max_put_records,
            max_put_bytes: batch.max_put_bytes,
            shard_rate: limits.shard_rate,
            rate_headroom: config.rate_headroom,
            strict_order: config.strict_order,
        };
        let dead_letters = match &config.dead_letter {
            Some(path) => Some(DeadLetterFile::open(path).map_err(|source| ProducerError::DeadLetter {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let spool = match &config.spool {
            Some(c) => Some(SpoolDriver::open(c).map_err(|source| ProducerError::Spool {
                path: c.dir.clone(),
                source,
            })?),
            None => None,
        };
        let (tx, rx) = mpsc::channel(4096);
        let capacity = Arc::new(Semaphore::new(config.max_buffered_bytes));
        let counters = Arc::new(Counters::new());
        if let Some(spool) = &spool {
            counters.resumed.store(spool.inherited_user_records(), Relaxed);
        }
        let task = Task::new(
            writer,
            map,
            Batcher::with_acks(batch, 0),
            Outbox::new(outbox, 0),
            config.clone(),
            (Arc::clone(&capacity), Arc::clone(&counters)),
            (dead_letters, spool),
        );
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

    /// Sends many records, in order, waiting while the buffer is full: one buffer
    /// reservation and one message to the writer task per buffer-sized slice, instead of one
    /// per record (the per-record hand-off is most of `send`'s cost). Checks every record
    /// first: a refused one sends none.
    pub async fn send_all(&self, records: Vec<(String, Bytes)>) -> Result<(), SendError> {
        let mut permits = Vec::with_capacity(records.len());
        for (partition_key, data) in &records {
            permits.push(self.check(partition_key, data)?);
        }
        let mut records = records.into_iter().zip(permits).peekable();
        while records.peek().is_some() {
            // A slice fits the buffer: each record does (see `check`), so take records until
            // the next would not.
            let mut items = Vec::new();
            let mut total = 0usize;
            while let Some((_, p)) = records.peek() {
                if !items.is_empty() && total + p > self.max_buffered_bytes / 8 {
                    break;
                }
                let Some(((partition_key, data), p)) = records.next() else {
                    break;
                };
                total += p;
                items.push(queued(partition_key, data, p, None));
            }
            // `total` is at most the buffer size, which the semaphore was created with.
            let permit = self
                .capacity
                .acquire_many(total as u32)
                .await
                .map_err(|_| SendError::Closed)?;
            permit.forget();
            let n = items.len() as u64;
            self.tx.send(Msg::Records(items)).await.map_err(|_| {
                self.capacity.add_permits(total);
                SendError::Closed
            })?;
            self.counters.accepted.fetch_add(n, Relaxed);
        }
        Ok(())
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
        self.health_probe().last_write_failure()
    }

    /// A handle that answers [`Producer::last_write_failure`] without the producer (for a
    /// readiness probe that outlives borrows of it).
    pub fn health_probe(&self) -> HealthProbe {
        HealthProbe {
            counters: Arc::clone(&self.counters),
        }
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

/// Whether the stream takes a producer's writes, asked from anywhere.
#[derive(Debug, Clone)]
pub struct HealthProbe {
    counters: Arc<Counters>,
}

impl HealthProbe {
    /// See [`Producer::last_write_failure`].
    pub fn last_write_failure(&self) -> Option<Duration> {
        let at = self.counters.last_failure.load(Relaxed).checked_sub(1)?;
        let elapsed = self.counters.epoch.elapsed().as_millis() as u64;
        Some(Duration::from_millis(elapsed.saturating_sub(at)))
    }
}
