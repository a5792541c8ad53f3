//! The stream writer: `ListShards` for the shard map, `PutRecords` with per-record outcomes.
use crate::client::{KinesisStream, timed};
use crate::errors::{CallError, retryable_code};
use async_trait::async_trait;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use inlet_seams::{PutOutcome, PutRecord, SequenceNumber, Shard, ShardId, StreamError, StreamWriter, WriteLimits};

#[async_trait]
impl StreamWriter for KinesisStream {
    async fn open_shards(&self) -> Result<Vec<Shard>, StreamError> {
        let shards = self.list_all_shards().await.map_err(|e| StreamError::ListShards {
            stream: self.name().to_owned(),
            source: Box::new(e),
        })?;
        Ok(shards.into_iter().filter(|s| !s.closed).collect())
    }

    async fn put_records(&self, records: &[PutRecord]) -> Result<Vec<PutOutcome>, StreamError> {
        let entries = records
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .partition_key(r.partition_key.clone())
                    .set_explicit_hash_key(r.explicit_hash_key.map(|k| k.to_string()))
                    // Blob owns a Vec: one copy per record on the way out (the SDK's type).
                    .data(Blob::new(r.data.to_vec()))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.put_error(records.len(), false, Box::new(e)))?;
        let out = timed(
            "PutRecords",
            self.client
                .put_records()
                .stream_name(self.name())
                .set_records(Some(entries))
                .send(),
        )
        .await
        .map_err(|e| {
            let e = CallError::from_sdk("PutRecords", e);
            if e.is_code("Timeout") {
                return StreamError::Unanswered {
                    stream: self.name().to_owned(),
                    records: records.len(),
                    source: Box::new(e),
                };
            }
            self.put_error(records.len(), e.retryable, Box::new(e))
        })?;
        let results = out.records();
        if results.len() != records.len() {
            return Err(self.put_error(
                records.len(),
                true,
                format!(
                    "the service answered {} results for {} records",
                    results.len(),
                    records.len()
                )
                .into(),
            ));
        }
        results
            .iter()
            .map(|r| match (r.error_code(), r.shard_id(), r.sequence_number()) {
                (Some(code), _, _) => {
                    metrics::counter!(crate::metrics::ERRORS_TOTAL, "op" => "PutRecords.record", "code" => code.to_owned())
                        .increment(1);
                    Ok(PutOutcome::Failed {
                        code: code.to_owned(),
                        message: r.error_message().unwrap_or("").to_owned(),
                        retryable: retryable_code(code) || code == "InternalFailure",
                    })
                }
                (None, Some(shard), Some(seq)) => Ok(PutOutcome::Written {
                    shard: ShardId(shard.to_owned()),
                    sequence: SequenceNumber::parse(seq)
                        .map_err(|e| self.put_error(records.len(), false, Box::new(e)))?,
                }),
                _ => Err(self.put_error(
                    records.len(),
                    true,
                    "a result has neither an error code nor a shard and sequence number".into(),
                )),
            })
            .collect()
    }

    fn limits(&self) -> WriteLimits {
        WriteLimits {
            max_record_bytes: self.location.max_record_bytes,
            ..WriteLimits::KINESIS
        }
    }
}

impl KinesisStream {
    fn put_error(
        &self,
        records: usize,
        retryable: bool,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> StreamError {
        StreamError::PutRecords {
            stream: self.name().to_owned(),
            records,
            retryable,
            source,
        }
    }
}
