//! Where replayed records come from: a stream (from a timestamp, a sequence number or its
//! oldest record) or the archive, one shard at a time, in shard order.
use crate::ReplayError;
use crate::archive::{ArchiveReader, ArchiveShardReader};
use inlet_seams::{Record, ShardId, ShardReader, StartPosition, StreamReader};
use std::sync::Arc;

/// A replay's source.
#[derive(Debug, Clone)]
pub enum Source {
    /// A stream, read through the seam (the embedded log today).
    Stream(Arc<dyn StreamReader>),
    /// The raw archive.
    Archive(ArchiveReader),
}

impl Source {
    /// The shards, in id order.
    pub async fn shards(&self) -> Result<Vec<ShardId>, ReplayError> {
        let mut ids = match self {
            Source::Stream(s) => s.list_shards().await?.into_iter().map(|s| s.id).collect(),
            Source::Archive(a) => a.shards().map_err(ReplayError::Archive)?,
        };
        ids.sort();
        Ok(ids)
    }

    /// Opens one shard from `from`.
    pub async fn open(&self, shard: &ShardId, from: StartPosition) -> Result<ShardInput, ReplayError> {
        Ok(match self {
            Source::Stream(s) => ShardInput::Stream {
                reader: s.open(shard, from).await?,
                first_arrival: None,
                fraction: 0.0,
            },
            Source::Archive(a) => ShardInput::Archive(Some(a.open(shard, from)?)),
        })
    }
}

/// One shard being read, to its current end.
#[derive(Debug)]
pub enum ShardInput {
    /// From a stream.
    Stream {
        /// The reader.
        reader: Box<dyn ShardReader>,
        /// Arrival time of the first record read.
        first_arrival: Option<i64>,
        /// Share read, from how far behind the newest record the last read was.
        fraction: f64,
    },
    /// From the archive (`None` only while a read runs off the runtime).
    Archive(Option<ArchiveShardReader>),
}

impl ShardInput {
    /// The next records in shard order; empty once the shard is read to its current end.
    pub async fn next(&mut self, max: usize) -> Result<Vec<Record>, ReplayError> {
        match self {
            ShardInput::Stream {
                reader,
                first_arrival,
                fraction,
            } => {
                let batch = reader.next_batch(max).await?;
                if let Some(last) = batch.records.last() {
                    let first = *first_arrival.get_or_insert(batch.records[0].arrival_ms);
                    let done = (last.arrival_ms - first).max(0) as f64;
                    let behind = batch.millis_behind_latest.unwrap_or(0).max(0) as f64;
                    *fraction = if done + behind > 0.0 {
                        done / (done + behind)
                    } else {
                        0.0
                    };
                } else {
                    *fraction = 1.0;
                }
                Ok(batch.records)
            }
            ShardInput::Archive(slot) => {
                let Some(mut r) = slot.take() else {
                    return Err(ReplayError::Archive(std::io::Error::other("archive reader lost")));
                };
                let (r, records) = tokio::task::spawn_blocking(move || {
                    let records = r.next_records(max);
                    (r, records)
                })
                .await
                .map_err(|e| ReplayError::Archive(std::io::Error::other(e)))?;
                *slot = Some(r);
                Ok(records?)
            }
        }
    }

    /// The share of the shard read so far, for progress and ETA.
    pub fn fraction_done(&self) -> f64 {
        match self {
            ShardInput::Stream { fraction, .. } => *fraction,
            ShardInput::Archive(r) => r.as_ref().map_or(0.0, ArchiveShardReader::fraction_done),
        }
    }
}
