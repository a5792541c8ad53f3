//! Reading partitions: the plain reader (a partition from any position, with a consumer of
//! its own; for replays and lease-balanced workers), and what it shares with the group
//! member's partition readers (`group.rs`).
use crate::client::{CALL_TIMEOUT, KafkaStream, create, shard_partition};
use crate::context::Quiet;
use crate::metrics as m;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use inlet_seams::{
    ReadBatch, Record, SequenceNumber, Shard, ShardId, ShardReader, StartPosition, StreamError, StreamReader,
};
use rdkafka::consumer::{Consumer, ConsumerContext, MessageStream, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

/// How long a read waits for a first record before it answers "nothing new".
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// Where librdkafka starts for a position, without asking the broker: LATEST as the end when
/// the fetch starts, and a timestamp as the beginning. [`resolve`] pins both down.
pub(crate) fn offset_of(from: &StartPosition) -> Offset {
    match from {
        StartPosition::TrimHorizon | StartPosition::AtTimestamp(_) => Offset::Beginning,
        StartPosition::Latest => Offset::End,
        StartPosition::AtSequence(s) => Offset::Offset(s.to_u64().unwrap_or(0) as i64),
        StartPosition::AfterSequence(s) => Offset::Offset(s.to_u64().unwrap_or(0) as i64 + 1),
    }
}

/// Where a consumer of `partition` starts for `from`, looked up now (blocking, up to
/// [`CALL_TIMEOUT`] a call) for the positions that depend on what the partition holds, so
/// they mean the time of this call rather than of the first fetch (librdkafka resolves
/// [`Offset::End`] only then, skipping what was written in between):
/// - LATEST: the high watermark, the offset the next record will get;
/// - AT_TIMESTAMP: the first offset whose timestamp is at or after the time
///   (`offsets_for_times`), or, with none yet, the high watermark taken before the lookup (a
///   record written after the lookup is then read, not skipped).
pub(crate) fn resolve<C: ConsumerContext, K: Consumer<C>>(
    consumer: &K,
    topic: &str,
    partition: i32,
    from: &StartPosition,
) -> KafkaResult<Offset> {
    let high = || {
        consumer
            .fetch_watermarks(topic, partition, CALL_TIMEOUT)
            .map(|(_, high)| high)
    };
    match from {
        StartPosition::Latest => Ok(Offset::Offset(high()?)),
        StartPosition::AtTimestamp(ms) => {
            let end = high()?;
            let mut tpl = TopicPartitionList::new();
            // The lookup's "offset" is the time, ms since the epoch.
            tpl.add_partition_offset(topic, partition, Offset::Offset(*ms))?;
            let found = consumer.offsets_for_times(tpl, CALL_TIMEOUT)?;
            let Some(e) = found.find_partition(topic, partition) else {
                return Ok(Offset::Offset(end));
            };
            e.error()?;
            Ok(match e.offset() {
                Offset::Offset(n) if n >= 0 => Offset::Offset(n),
                // -1: no record at or after the time.
                _ => Offset::Offset(end),
            })
        }
        other => Ok(offset_of(other)),
    }
}

/// Which records a partition's reader returns: none below `next_offset` (left over from
/// before a seek), and for AT_TIMESTAMP none before the first whose timestamp is at or after
/// the time. The lookup alone is not trusted with the latter: a broker may answer a time after
/// every record with offset 0 instead of -1 (Tansu does), and AT_TIMESTAMP must not then read
/// the whole partition. With a lookup that is right, the first record passes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    next_offset: i64,
    not_before_ms: Option<i64>,
}

impl Cursor {
    /// For a reader positioned at `offset` (the resolution of `from`).
    pub(crate) fn new(offset: Offset, from: &StartPosition) -> Self {
        Self {
            next_offset: match offset {
                Offset::Offset(n) => n,
                _ => 0,
            },
            not_before_ms: match from {
                StartPosition::AtTimestamp(ms) => Some(*ms),
                _ => None,
            },
        }
    }

    /// Whether to return the record at `offset` with timestamp `ms`; moves past it either way.
    fn pass(&mut self, offset: i64, ms: Option<i64>) -> bool {
        if offset < self.next_offset {
            return false;
        }
        self.next_offset = offset + 1;
        if let Some(t) = self.not_before_ms {
            if ms.is_some_and(|ms| ms < t) {
                return false;
            }
            self.not_before_ms = None;
        }
        true
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
/// for the first, then takes what is already there. Only records the cursor passes are
/// returned (see [`Cursor`]).
pub(crate) async fn read_batch<C: ConsumerContext>(
    mut messages: MessageStream<'_, C>,
    max: usize,
    cursor: &mut Cursor,
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
        if cursor.pass(msg.offset(), msg.timestamp().to_millis()) {
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
    consumer: StreamConsumer<Quiet>,
    topic: String,
    shard: ShardId,
    cursor: Cursor,
}

impl std::fmt::Debug for PartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReader")
            .field("shard", &self.shard)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ShardReader for PartitionReader {
    async fn next_batch(&mut self, max: usize) -> Result<ReadBatch, StreamError> {
        read_batch(self.consumer.stream(), max, &mut self.cursor, &self.topic, &self.shard).await
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
        let consumer: StreamConsumer<Quiet> = create(
            &self.location,
            &self.location.consumer_config(&self.location.group),
            &self.noise,
        )
        .map_err(|e| fail(e.source))?;
        let (consumer, offset) = {
            let (topic, from) = (topic.clone(), from.clone());
            tokio::task::spawn_blocking(move || {
                let offset = resolve(&consumer, &topic, partition, &from)?;
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
            cursor: Cursor::new(offset, &from),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_skips_what_precedes_the_seek_and_the_time() {
        let mut c = Cursor::new(Offset::Offset(5), &StartPosition::TrimHorizon);
        assert!(!c.pass(4, Some(0)), "left over from before the seek");
        assert!(c.pass(5, Some(0)) && c.pass(6, None));
        assert!(!c.pass(6, None), "returned once");

        // A lookup that answered 0 for a time after the first records.
        let mut c = Cursor::new(Offset::Offset(0), &StartPosition::AtTimestamp(100));
        assert!(!c.pass(0, Some(50)) && !c.pass(1, Some(99)));
        assert!(c.pass(2, Some(100)), "the first record at the time");
        assert!(c.pass(3, Some(60)), "then every record, as the stream orders them");
    }
}
