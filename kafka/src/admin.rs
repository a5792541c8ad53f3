//! Topic administration for `inlet streams` on Kafka: create with N partitions, describe
//! (partitions and their offsets), delete.
use crate::client::{CALL_TIMEOUT, KafkaStream, create, partition_shard};
use crate::context::Quiet;
use crate::reach::Unreachable;
use inlet_seams::ShardId;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Arc;

/// An admin operation's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No broker answered within the connect timeout.
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    /// The broker refused or failed the call.
    #[error("{operation} of topic {topic} failed")]
    Call {
        /// Which operation.
        operation: &'static str,
        /// The topic.
        topic: String,
        /// Why.
        #[source]
        source: KafkaError,
    },
    /// The topic exists with another partition count than asked for.
    #[error("topic {topic} has {actual} partitions, not {wanted} (Kafka cannot be asked to change that here)")]
    PartitionCount {
        /// The topic.
        topic: String,
        /// What was asked for.
        wanted: usize,
        /// What it has.
        actual: usize,
    },
}

/// One partition's offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Its shard id.
    pub shard: ShardId,
    /// The oldest offset still kept.
    pub low: i64,
    /// The offset the next record gets.
    pub high: i64,
}

/// A topic's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic.
    pub topic: String,
    /// Its partitions, in order.
    pub partitions: Vec<PartitionInfo>,
}

impl KafkaStream {
    fn call_error(&self, operation: &'static str, source: KafkaError) -> AdminError {
        AdminError::Call {
            operation,
            topic: self.location.topic.clone(),
            source,
        }
    }

    fn admin(&self) -> Result<AdminClient<Quiet>, AdminError> {
        create(&self.location, &self.location.admin_config(), &self.noise)
            .map_err(|e| self.call_error("connecting an admin client", e.source))
    }

    /// Creates the topic with `partitions` partitions (replication factor 1 on a one-broker
    /// cluster; the broker's default otherwise).
    pub async fn create(&self, partitions: usize) -> Result<(), AdminError> {
        self.reach().await?;
        let admin = self.admin()?;
        let replication = TopicReplication::Fixed(-1);
        let topic = NewTopic::new(&self.location.topic, partitions as i32, replication);
        let opts = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        let results = admin
            .create_topics([&topic], &opts)
            .await
            .map_err(|e| self.call_error("create", e))?;
        for r in results {
            if let Err((_, code)) = r {
                return Err(self.call_error("create", KafkaError::AdminOp(code)));
            }
        }
        self.wait_partitions(partitions).await
    }

    /// Creates the topic with `partitions` partitions unless it exists (as it is, then).
    pub async fn ensure(&self, partitions: usize) -> Result<(), AdminError> {
        match self.create(partitions).await {
            Err(AdminError::Call {
                source: KafkaError::AdminOp(RDKafkaErrorCode::TopicAlreadyExists),
                ..
            }) => self.wait_exists().await,
            other => other,
        }
    }

    /// Checks that the topic exists (has partitions).
    pub async fn wait_exists(&self) -> Result<(), AdminError> {
        self.reach().await?;
        match self
            .partition_count()
            .await
            .map_err(|e| self.call_error("describe", e))?
        {
            0 => Err(self.call_error(
                "describe",
                KafkaError::AdminOp(RDKafkaErrorCode::UnknownTopicOrPartition),
            )),
            _ => Ok(()),
        }
    }

    /// Waits until the metadata shows the topic with `partitions` partitions.
    async fn wait_partitions(&self, partitions: usize) -> Result<(), AdminError> {
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        loop {
            let actual = self
                .partition_count()
                .await
                .map_err(|e| self.call_error("describe", e))?;
            if actual == partitions {
                return Ok(());
            }
            if actual > 0 || tokio::time::Instant::now() >= deadline {
                return Err(AdminError::PartitionCount {
                    topic: self.location.topic.clone(),
                    wanted: partitions,
                    actual,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The topic's partitions and their offsets.
    pub async fn describe(&self) -> Result<TopicInfo, AdminError> {
        self.reach().await?;
        let n = self
            .partition_count()
            .await
            .map_err(|e| self.call_error("describe", e))?;
        let (meta, topic) = (Arc::clone(&self.meta), self.location.topic.clone());
        let partitions = tokio::task::spawn_blocking(move || {
            (0..n as i32)
                .map(|p| {
                    let (low, high) = meta.fetch_watermarks(&topic, p, CALL_TIMEOUT)?;
                    Ok(PartitionInfo {
                        shard: partition_shard(p),
                        low,
                        high,
                    })
                })
                .collect::<Result<Vec<_>, KafkaError>>()
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))
        .map_err(|e| self.call_error("describe", e))?;
        Ok(TopicInfo {
            topic: self.location.topic.clone(),
            partitions,
        })
    }

    /// Deletes the topic.
    pub async fn delete(&self) -> Result<(), AdminError> {
        self.reach().await?;
        let admin = self.admin()?;
        let opts = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        let results = admin
            .delete_topics(&[&self.location.topic], &opts)
            .await
            .map_err(|e| self.call_error("delete", e))?;
        for r in results {
            if let Err((_, code)) = r {
                return Err(self.call_error("delete", KafkaError::AdminOp(code)));
            }
        }
        Ok(())
    }
}
