//! The stream reader: `GetShardIterator` and polling `GetRecords` within a shard's read
//! limits (5 calls/s, 2 MB/s per shard, shared by every reader of the shard), with backoff
//! when throttled and a fresh iterator at the last record read when one expires.
use crate::client::{KinesisStream, timed};
use crate::errors::CallError;
use async_trait::async_trait;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;
use inlet_seams::{
    ReadBatch, Record, SequenceNumber, Shard, ShardId, ShardReader, StartPosition, StreamError, StreamReader,
};
use std::time::Duration;
use tokio::time::Instant;

/// Least time between two `GetRecords` calls on one shard (its limit is 5 calls/s).
const MIN_CALL_GAP: Duration = Duration::from_millis(200);
/// A shard's read limit, bytes/s.
const READ_BYTES_PER_SEC: f64 = 2.0 * 1024.0 * 1024.0;
/// `GetRecords` returns at most this many records.
const MAX_LIMIT: usize = 10_000;

#[async_trait]
impl StreamReader for KinesisStream {
    async fn list_shards(&self) -> Result<Vec<Shard>, StreamError> {
        self.list_all_shards().await.map_err(|e| StreamError::ListShards {
            stream: self.name().to_owned(),
            source: Box::new(e),
        })
    }

    async fn open(&self, shard: &ShardId, from: StartPosition) -> Result<Box<dyn ShardReader>, StreamError> {
        if self.location.read == crate::location::ReadMode::Fanout {
            return crate::fanout::open(self, shard, from).await;
        }
        let mut reader = KinesisShardReader {
            stream: self.clone(),
            shard: shard.clone(),
            not_before: NotBefore::new(&from),
            start: from,
            iterator: None,
            next_call: Instant::now(),
            throttled: 0,
        };
        reader.iterator = Some(reader.new_iterator().await?);
        Ok(Box::new(reader))
    }
}

/// AT_TIMESTAMP's promise, kept by the reader: nothing before the first record that arrived at
/// or after the time. The service positions the iterator there itself, but an emulator may
/// not to the ms (kinesis-mock truncates the time to whole seconds): records read before the
/// first one at or after the time are dropped. With a service that is right, the first record
/// read ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotBefore(Option<i64>);

impl NotBefore {
    /// For a reader opened at `from`.
    pub(crate) fn new(from: &StartPosition) -> Self {
        match from {
            StartPosition::AtTimestamp(ms) => Self(Some(*ms)),
            _ => Self(None),
        }
    }

    /// Drops the leading records of `records` (the next ones of the shard, in order) that
    /// arrived before the time, until the first that did not.
    pub(crate) fn skip(&mut self, records: &mut Vec<Record>) {
        let Some(t) = self.0 else { return };
        let early = records.iter().take_while(|r| r.arrival_ms < t).count();
        records.drain(..early);
        if !records.is_empty() {
            self.0 = None;
        }
    }
}

/// One shard, read in order.
#[derive(Debug)]
struct KinesisShardReader {
    stream: KinesisStream,
    shard: ShardId,
    /// Where a new iterator starts: the open position, then after the last record read.
    start: StartPosition,
    /// For AT_TIMESTAMP: records before the time still to skip.
    not_before: NotBefore,
    /// `None` once the shard's end was reached.
    iterator: Option<String>,
    /// When the next `GetRecords` may go out, by the shard's call and byte limits.
    next_call: Instant,
    /// Throttled calls in a row, for the backoff.
    throttled: u32,
}

impl KinesisShardReader {
    fn read_error(&self, e: CallError) -> StreamError {
        if e.is_code("ResourceNotFoundException") {
            return StreamError::NoSuchShard {
                stream: self.stream.name().to_owned(),
                shard: self.shard.clone(),
            };
        }
        StreamError::Read {
            stream: self.stream.name().to_owned(),
            shard: self.shard.clone(),
            retryable: e.retryable,
            source: Box::new(e),
        }
    }

    async fn new_iterator(&self) -> Result<String, StreamError> {
        let req = self
            .stream
            .client
            .get_shard_iterator()
            .stream_name(self.stream.name())
            .shard_id(self.shard.as_str());
        let req = match &self.start {
            StartPosition::TrimHorizon => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StartPosition::Latest => req.shard_iterator_type(ShardIteratorType::Latest),
            StartPosition::AtSequence(s) => req
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(s.as_str()),
            StartPosition::AfterSequence(s) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(s.as_str()),
            StartPosition::AtTimestamp(ms) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*ms)),
        };
        let out = timed("GetShardIterator", req.send())
            .await
            .map_err(|e| self.read_error(CallError::from_sdk("GetShardIterator", e)))?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| StreamError::Read {
                stream: self.stream.name().to_owned(),
                shard: self.shard.clone(),
                retryable: true,
                source: "GetShardIterator answered without an iterator".into(),
            })
    }
}

#[async_trait]
impl ShardReader for KinesisShardReader {
    async fn next_batch(&mut self, max: usize) -> Result<ReadBatch, StreamError> {
        let Some(iterator) = self.iterator.clone() else {
            // Read to its end before; the caller has seen `shard_end`.
            return Ok(ReadBatch {
                shard_end: Some(Vec::new()),
                ..ReadBatch::default()
            });
        };
        tokio::time::sleep_until(self.next_call).await;
        let limit = max.clamp(1, MAX_LIMIT) as i32;
        let result = timed(
            "GetRecords",
            self.stream
                .client
                .get_records()
                .shard_iterator(iterator)
                .limit(limit)
                .send(),
        )
        .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                let e = CallError::from_sdk("GetRecords", e);
                if e.is_code("ExpiredIteratorException") {
                    metrics::counter!(crate::metrics::ITERATOR_EXPIRED_TOTAL).increment(1);
                    tracing::info!(shard = %self.shard, "shard iterator expired; renewing it at the last record read");
                    self.iterator = Some(self.new_iterator().await?);
                    return Ok(ReadBatch::default());
                }
                if e.is_code("ProvisionedThroughputExceededException") {
                    // Another reader shares the shard's limits, or our pacing was not
                    // enough: back off, doubling up to 5 s.
                    metrics::counter!(crate::metrics::READ_THROTTLED_TOTAL).increment(1);
                    self.throttled = (self.throttled + 1).min(5);
                    self.next_call = Instant::now() + MIN_CALL_GAP * (1 << self.throttled);
                    return Ok(ReadBatch::default());
                }
                self.next_call = Instant::now() + MIN_CALL_GAP;
                return Err(self.read_error(e));
            }
        };
        self.throttled = 0;
        let mut bytes = 0usize;
        let mut records = Vec::with_capacity(out.records().len());
        for r in out.records() {
            let sequence = SequenceNumber::parse(r.sequence_number()).map_err(|e| StreamError::Read {
                stream: self.stream.name().to_owned(),
                shard: self.shard.clone(),
                retryable: false,
                source: Box::new(e),
            })?;
            let data = Bytes::copy_from_slice(r.data().as_ref());
            let partition_key = r.partition_key().unwrap_or_default().to_owned();
            bytes += data.len() + partition_key.len();
            records.push(Record {
                sequence,
                partition_key,
                // GetRecords does not return it; deaggregation uses the inner records' own.
                explicit_hash_key: None,
                data,
                arrival_ms: r
                    .approximate_arrival_timestamp()
                    .and_then(|t| t.to_millis().ok())
                    .unwrap_or(0),
            });
        }
        metrics::counter!(crate::metrics::READ_RECORDS_TOTAL).increment(records.len() as u64);
        metrics::counter!(crate::metrics::READ_BYTES_TOTAL).increment(bytes as u64);
        // Pace the next call by both limits: 200 ms apart, and no faster than 2 MB/s.
        let byte_gap = Duration::from_secs_f64(bytes as f64 / READ_BYTES_PER_SEC);
        self.next_call = Instant::now() + MIN_CALL_GAP.max(byte_gap);
        if let Some(last) = records.last() {
            self.start = StartPosition::AfterSequence(last.sequence.clone());
        }
        self.not_before.skip(&mut records);
        self.iterator = out.next_shard_iterator().map(str::to_owned);
        let shard_end = self.iterator.is_none().then(|| {
            out.child_shards()
                .iter()
                .map(|c| ShardId(c.shard_id().to_owned()))
                .collect()
        });
        Ok(ReadBatch {
            records,
            millis_behind_latest: out.millis_behind_latest(),
            shard_end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrived(ms: &[i64]) -> Vec<Record> {
        ms.iter()
            .enumerate()
            .map(|(i, ms)| Record {
                sequence: SequenceNumber::from_u64(i as u64),
                partition_key: "k".into(),
                explicit_hash_key: None,
                data: Bytes::new(),
                arrival_ms: *ms,
            })
            .collect()
    }

    #[test]
    fn at_timestamp_drops_what_arrived_before_the_first_record_at_the_time() {
        let mut n = NotBefore::new(&StartPosition::AtTimestamp(100));
        let mut batch = arrived(&[10, 99]);
        n.skip(&mut batch);
        assert!(batch.is_empty(), "all before the time");
        let mut batch = arrived(&[99, 100, 50]);
        n.skip(&mut batch);
        assert_eq!(
            batch.iter().map(|r| r.arrival_ms).collect::<Vec<_>>(),
            [100, 50],
            "from the first at the time on, every record in shard order"
        );
        let mut batch = arrived(&[1]);
        n.skip(&mut batch);
        assert_eq!(batch.len(), 1, "done once a record passed");
        let mut none = NotBefore::new(&StartPosition::TrimHorizon);
        let mut batch = arrived(&[1]);
        none.skip(&mut batch);
        assert_eq!(batch.len(), 1);
    }
}
