//! [`KafkaStream`]: a topic behind the stream seam. Partitions are shards: partition `p` is
//! shard `partition-p`, owning the `p`-th of `n` even slices of the 128-bit hash-key space,
//! so the producer routes a partition key (by its MD5 hash key, as on Kinesis) to one
//! partition for as long as the partition count stays.
use crate::context::{Noise, Quiet};
use crate::location::KafkaLocation;
use inlet_seams::{HashKeyRange, Shard, ShardId, StreamError};
use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

/// How long a metadata or admin call may take.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka topic, written and read.
pub struct KafkaStream {
    pub(crate) location: KafkaLocation,
    pub(crate) producer: FutureProducer<Quiet>,
    /// For metadata and watermarks (never subscribes or commits).
    pub(crate) meta: Arc<BaseConsumer<Quiet>>,
    /// The partition count the writer routes by (from its last `open_shards`; 0 before).
    pub(crate) partitions: AtomicUsize,
    /// What librdkafka reported, shared by every client of this stream.
    pub(crate) noise: Arc<Noise>,
    /// A broker has answered ([`KafkaStream::reach`]).
    pub(crate) reached: AtomicBool,
}

impl std::fmt::Debug for KafkaStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStream")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A client could not be made from the location's settings.
#[derive(Debug, thiserror::Error)]
#[error("bad Kafka client settings for {url}")]
pub struct BadSettings {
    /// The location.
    pub url: String,
    /// What librdkafka said.
    #[source]
    pub source: rdkafka::error::KafkaError,
}

/// The shard id of partition `p`.
pub fn partition_shard(p: i32) -> ShardId {
    ShardId(format!("partition-{p}"))
}

/// The partition of a shard id made by [`partition_shard`].
pub fn shard_partition(shard: &ShardId) -> Option<i32> {
    shard
        .as_str()
        .strip_prefix("partition-")?
        .parse()
        .ok()
        .filter(|p| *p >= 0)
}

/// The shards of a topic of `partitions` partitions.
pub fn shards_of(partitions: usize) -> Vec<Shard> {
    HashKeyRange::split_evenly(partitions as u32)
        .into_iter()
        .enumerate()
        .map(|(p, hash_range)| Shard {
            id: partition_shard(p as i32),
            hash_range,
            parent: None,
            adjacent_parent: None,
            closed: false,
        })
        .collect()
}

/// A client of the stream at `location`, logging through `noise` (see [`crate::context`]).
pub(crate) fn create<T: FromClientConfigAndContext<Quiet>>(
    location: &KafkaLocation,
    config: &ClientConfig,
    noise: &Arc<Noise>,
) -> Result<T, BadSettings> {
    config
        .create_with_context(Quiet(Arc::clone(noise)))
        .map_err(|source| BadSettings {
            url: location.to_url(),
            source,
        })
}

impl KafkaStream {
    /// A stream at `location` (clients connect lazily: nothing is checked on the network yet).
    pub fn connect(location: KafkaLocation) -> Result<Self, BadSettings> {
        let noise = Noise::new(location.connect_timeout);
        let producer = create(&location, &location.producer_config(), &noise)?;
        let meta = Arc::new(create(&location, &location.admin_config(), &noise)?);
        Ok(Self {
            location,
            producer,
            meta,
            partitions: AtomicUsize::new(0),
            noise,
            reached: AtomicBool::new(false),
        })
    }

    /// Where it is.
    pub fn location(&self) -> &KafkaLocation {
        &self.location
    }

    /// The topic's partition count (0 when the topic does not exist). Metadata calls block,
    /// so they run on the blocking pool.
    pub(crate) async fn partition_count(&self) -> Result<usize, rdkafka::error::KafkaError> {
        let (meta, topic) = (Arc::clone(&self.meta), self.location.topic.clone());
        let count = tokio::task::spawn_blocking(move || {
            let m = meta.fetch_metadata(Some(&topic), CALL_TIMEOUT)?;
            Ok(m.topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len()))
        });
        count.await.unwrap_or(Err(rdkafka::error::KafkaError::Canceled))
    }

    /// The topic's shards (one per partition), as the seam lists them.
    pub(crate) async fn shards(&self) -> Result<Vec<Shard>, StreamError> {
        let n = self.partition_count().await.map_err(|e| StreamError::ListShards {
            stream: self.location.topic.clone(),
            source: Box::new(e),
        })?;
        Ok(shards_of(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ids_round_trip() {
        assert_eq!(partition_shard(7).as_str(), "partition-7");
        assert_eq!(shard_partition(&partition_shard(7)), Some(7));
        assert_eq!(shard_partition(&ShardId("shardId-000000000007".into())), None);
        assert_eq!(shard_partition(&ShardId("partition--1".into())), None);
        let shards = shards_of(8);
        assert_eq!(shards.len(), 8);
        assert_eq!(shards[7].hash_range.end, u128::MAX);
    }
}
