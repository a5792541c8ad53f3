//! Reading partitions: the plain reader (a partition from any position, with a consumer of
//! its own; for replays and lease-balanced workers), and what it shares with the group
//! member's partition readers (`group.rs`).
use crate::client::{CALL_TIMEOUT, KafkaStream, create, shard_partition};
use crate::metrics as m;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use inlet_seams::{
    ReadBatch, Record, SequenceNumber, Shard, ShardId, ShardReader, StartPosition, StreamError, StreamReader,
};
use rdkafka::consumer::{Consumer, ConsumerContext, MessageStream, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

/// How long a read waits for a first record before it answers "nothing new".
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Where librdkafka starts for a position. A timestamp must be looked up first
/// (`offsets_for_times`); here it counts as the beginning.
pub(crate) fn offset_of(from: &StartPosition) -> Offset {
    match from {
        StartPosition::TrimHorizon | StartPosition::AtTimestamp(_) => Offset::Beginning,
        StartPosition::Latest => Offset::End,
        StartPosition::AtSequence(s) => Offset::Offset(s.to_u64().unwrap_or(0) as i64),
        StartPosition::AfterSequence(s) => Offset::Offset(s.to_u64().unwrap_or(0) as i64 + 1),
    }
}

/// The first offset a reader positioned at `offset` may return: records below it are left
/// over from before a seek, and skipped.
pub(crate) fn first_offset(offset: Offset) -> i64 {
    match offset {
        Offset::Offset(n) => n,
        _ => 0,
    }
}

fn to_record(msg: &BorrowedMessage<'_>) -> Record {
    let key = msg.key().map(String::from_utf8_lossy).unwrap_or_default();
    let data = Bytes::copy_from_slice(msg.payload().unwrap_or_default());
    metrics::counter!(m::READ_RECORDS_TOTAL).increment(1);
    metrics::counter!(m::READ_BYTES_TOTAL).increment((key.len() + data.len()) as u64);
    Record {
        sequence: SequenceNumber::from_u64(msg.offset().max(0) as u64),
        partition_key: key.into_owned(),
        explicit_hash_key: None,
        data,
        arrival_ms: msg.timestamp().to_millis().unwrap_or(0),
    }
}

pub(crate) fn read_error(topic: &str, shard: &ShardId, e: KafkaError) -> StreamError {
    let code = e
        .rdkafka_error_code()
        .map_or_else(|| "Unknown".to_owned(), |c| format!("{c:?}"));
    metrics::counter!(m::FETCH_ERRORS_TOTAL, "code" => code).increment(1);
    StreamError::Read {
        stream: topic.to_owned(),
        shard: shard.clone(),
        // librdkafka retries fetches itself; what it reports is passing (a broker away) or
        // a partition that is gone, which a retry finds out again.
        retryable: true,
        source: Box::new(e),
    }
}

/// Reads up to `max` records of one partition from `messages`: waits up to [`IDLE_WAIT`]
/// for the first, then takes what is already there. Records below `*next_offset` are skipped
/// (see [`first_offset`]); `*next_offset` moves past each record returned.
pub(crate) async fn read_batch<C: ConsumerContext>(
    mut messages: MessageStream<'_, C>,
    max: usize,
    next_offset: &mut i64,
    topic: &str,
    shard: &ShardId,
) -> Result<ReadBatch, StreamError> {
    let mut batch = ReadBatch::default();
    let first = match tokio::time::timeout(IDLE_WAIT, messages.next()).await {
        Err(_) | Ok(None) => return Ok(batch),
        Ok(Some(m)) => m,
    };
    let mut next = Some(first);
    while let Some(m) = next.take() {
        let msg = m.map_err(|e| read_error(topic, shard, e))?;
        if msg.offset() >= *next_offset {
            *next_offset = msg.offset() + 1;
            batch.records.push(to_record(&msg));
        }
        if batch.records.len() < max {
            next = messages.next().now_or_never().flatten();
        }
    }
    Ok(batch)
}

/// One partition read by a consumer of its own.
struct PartitionReader {
    consumer: StreamConsumer,
    topic: String,
    shard: ShardId,
    next_offset: i64,
}

impl std::fmt::Debug for PartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReader")
            .field("shard", &self.shard)
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ShardReader for PartitionReader {
    async fn next_batch(&mut self, max: usize) -> Result<ReadBatch, StreamError> {
        read_batch(
            self.consumer.stream(),
            max,
            &mut self.next_offset,
            &self.topic,
            &self.shard,
        )
        .await
    }
}

#[async_trait]
impl StreamReader for KafkaStream {
    async fn list_shards(&self) -> Result<Vec<Shard>, StreamError> {
        self.shards().await
    }

    async fn open(&self, shard: &ShardId, from: StartPosition) -> Result<Box<dyn ShardReader>, StreamError> {
        let topic = self.location.topic.clone();
        let partitions = self.partition_count().await.map_err(|e| read_error(&topic, shard, e))?;
        let partition = shard_partition(shard)
            .filter(|p| (*p as usize) < partitions)
            .ok_or_else(|| StreamError::NoSuchShard {
                stream: topic.clone(),
                shard: shard.clone(),
            })?;
        let fail = |e: KafkaError| read_error(&topic, shard, e);
        // This consumer never joins the group nor commits: it reads where it is told.
        let consumer: StreamConsumer =
            create(&self.location, &self.location.consumer_config(&self.location.group)).map_err(|e| fail(e.source))?;
        let (consumer, offset) = {
            let topic = topic.clone();
            tokio::task::spawn_blocking(move || {
                let offset = match from {
                    StartPosition::AtTimestamp(ms) => {
                        let mut tpl = TopicPartitionList::new();
                        tpl.add_partition_offset(&topic, partition, Offset::Offset(ms))?;
                        let found = consumer.offsets_for_times(tpl, CALL_TIMEOUT)?;
                        // No record at or after the time: the end.
                        found
                            .find_partition(&topic, partition)
                            .map_or(Offset::End, |e| match e.offset() {
                                Offset::Offset(n) => Offset::Offset(n),
                                _ => Offset::End,
                            })
                    }
                    other => offset_of(&other),
                };
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, partition, offset)?;
                consumer.assign(&tpl)?;
                Ok::<_, KafkaError>((consumer, offset))
            })
            .await
            .unwrap_or(Err(KafkaError::Canceled))
            .map_err(fail)?
        };
        Ok(Box::new(PartitionReader {
            consumer,
            topic,
            shard: shard.clone(),
            next_offset: first_offset(offset),
        }))
    }
}
