//! The topic writer: each record becomes one message, keyed by its partition key, sent to
//! the partition whose hash-key slice holds the record's hash key (so the producer's shard
//! map predicts it). librdkafka batches, compresses and retries (idempotently); a record it
//! gives up on comes back failed with librdkafka's error code, and Inlet's producer decides.
use crate::client::{KafkaStream, partition_shard};
use crate::metrics as m;
use async_trait::async_trait;
use inlet_seams::{HashKeyRange, PutOutcome, PutRecord, SequenceNumber, Shard, StreamError, StreamWriter, WriteLimits};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use std::sync::atomic::Ordering;

/// librdkafka's default `message.max.bytes`.
const MAX_MESSAGE_BYTES: usize = 1_000_000;
/// What librdkafka adds to key and payload when it checks `message.max.bytes`
/// (`RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD`).
const MESSAGE_OVERHEAD: usize = 36;

/// Whether sending a record again after this error can succeed.
fn retryable(e: &KafkaError) -> bool {
    !matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

fn failed(e: &KafkaError) -> PutOutcome {
    let code = e
        .rdkafka_error_code()
        .map_or_else(|| "Unknown".to_owned(), |c| format!("{c:?}"));
    metrics::counter!(m::PRODUCED_TOTAL, "outcome" => "error").increment(1);
    metrics::counter!(m::PRODUCE_ERRORS_TOTAL, "code" => code.clone()).increment(1);
    PutOutcome::Failed {
        code,
        message: e.to_string(),
        retryable: retryable(e),
    }
}

#[async_trait]
impl StreamWriter for KafkaStream {
    async fn open_shards(&self) -> Result<Vec<Shard>, StreamError> {
        let shards = self.shards().await?;
        self.partitions.store(shards.len(), Ordering::Relaxed);
        Ok(shards)
    }

    async fn put_records(&self, records: &[PutRecord]) -> Result<Vec<PutOutcome>, StreamError> {
        let mut n = self.partitions.load(Ordering::Relaxed);
        if n == 0 {
            n = self.open_shards().await?.len();
        }
        if n == 0 {
            return Err(StreamError::PutRecords {
                stream: self.location.topic.clone(),
                records: records.len(),
                retryable: true,
                source: format!("topic {} has no partitions (does it exist?)", self.location.topic).into(),
            });
        }
        let ranges = HashKeyRange::split_evenly(n as u32);
        // Enqueue every record first (librdkafka batches them), then wait for the deliveries.
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let key = r.hash_key();
            // The slices tile the key space in order: a binary search, not a scan (1,000+ partitions).
            let partition = ranges.partition_point(|range| range.end < key) as i32;
            let message = FutureRecord::to(&self.location.topic)
                .partition(partition)
                .key(r.partition_key.as_bytes())
                .payload(&r.data[..]);
            pending.push(self.producer.send_result(message).map_err(|(e, _)| e));
        }
        let mut outcomes = Vec::with_capacity(records.len());
        for p in pending {
            let outcome = match p {
                Err(e) => failed(&e), // refused at once (its queue is full, say)
                Ok(delivery) => match delivery.await {
                    Ok(Ok(d)) => {
                        metrics::counter!(m::PRODUCED_TOTAL, "outcome" => "ok").increment(1);
                        PutOutcome::Written {
                            shard: partition_shard(d.partition),
                            sequence: SequenceNumber::from_u64(d.offset.max(0) as u64),
                        }
                    }
                    Ok(Err((e, _))) => failed(&e),
                    // The producer was dropped with the message inside: unknown, so retry.
                    Err(_) => failed(&KafkaError::Canceled),
                },
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    fn limits(&self) -> WriteLimits {
        WriteLimits {
            // Refused at send, rather than accepted and then failed by librdkafka.
            max_record_bytes: self
                .location
                .settings
                .get("message.max.bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(MAX_MESSAGE_BYTES)
                .saturating_sub(MESSAGE_OVERHEAD),
            max_records_per_put: 10_000,
            max_bytes_per_put: 16 << 20,
            shard_rate: None,
            aggregate: false,
        }
    }
}
