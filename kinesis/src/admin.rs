//! Stream administration: create, describe, reshard, delete (`inlet streams`). Each change
//! waits until the stream is `ACTIVE` again, so the next call sees its result.
use crate::client::{KinesisStream, timed};
use crate::errors::CallError;
use aws_sdk_kinesis::types::{ScalingType, StreamStatus};
use inlet_seams::{HashKeyRange, Shard, ShardId};
use std::time::Duration;
use tokio::time::Instant;

/// An admin call's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The service refused or failed the call.
    #[error("{0}")]
    Call(String),
    /// The stream did not become `ACTIVE` in time.
    #[error("stream {stream} is still {status} after {waited:?}")]
    NotActive {
        /// The stream.
        stream: String,
        /// Its last status.
        status: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
}

impl From<CallError> for AdminError {
    fn from(e: CallError) -> Self {
        AdminError::Call(e.to_string())
    }
}

impl From<crate::shards::ListError> for AdminError {
    fn from(e: crate::shards::ListError) -> Self {
        AdminError::Call(e.to_string())
    }
}

/// What `describe` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDescription {
    /// The stream's name.
    pub name: String,
    /// `CREATING`, `ACTIVE`, `UPDATING` or `DELETING`.
    pub status: String,
    /// Open shards.
    pub open_shards: usize,
    /// Retention, hours.
    pub retention_hours: i32,
    /// Every shard listed, open and closed.
    pub shards: Vec<Shard>,
}

/// How long to wait for `ACTIVE`.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

impl KinesisStream {
    /// Creates the stream with `shards` provisioned shards and waits until it is active.
    pub async fn create(&self, shards: u32) -> Result<(), AdminError> {
        let count = i32::try_from(shards)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| AdminError::Invalid(format!("shard count {shards} must be 1 or more")))?;
        timed(
            "CreateStream",
            self.client
                .create_stream()
                .stream_name(self.name())
                .shard_count(count)
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("CreateStream", e))?;
        self.wait_active().await
    }

    /// Creates the stream unless it exists; waits until it is active either way.
    pub async fn ensure(&self, shards: u32) -> Result<(), AdminError> {
        match self.status().await {
            Ok(_) => self.wait_active().await,
            Err(AdminError::Call(m)) if m.contains("ResourceNotFoundException") => self.create(shards).await,
            Err(e) => Err(e),
        }
    }

    /// Deletes the stream.
    pub async fn delete(&self) -> Result<(), AdminError> {
        timed(
            "DeleteStream",
            self.client
                .delete_stream()
                .stream_name(self.name())
                .enforce_consumer_deletion(true)
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("DeleteStream", e))?;
        Ok(())
    }

    async fn status(&self) -> Result<(String, i32, usize), AdminError> {
        let out = timed(
            "DescribeStreamSummary",
            self.client.describe_stream_summary().stream_name(self.name()).send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("DescribeStreamSummary", e))?;
        let s = out
            .stream_description_summary()
            .ok_or_else(|| AdminError::Call("DescribeStreamSummary answered without a summary".into()))?;
        Ok((
            s.stream_status().as_str().to_owned(),
            s.retention_period_hours(),
            s.open_shard_count().max(0) as usize,
        ))
    }

    /// Waits until the stream is `ACTIVE` (after a create or a reshard).
    pub async fn wait_active(&self) -> Result<(), AdminError> {
        let started = Instant::now();
        let mut status = String::new();
        while started.elapsed() < ACTIVE_TIMEOUT {
            match self.status().await {
                Ok((s, _, _)) if s == StreamStatus::Active.as_str() => return Ok(()),
                Ok((s, _, _)) => status = s,
                // Just created: the stream may not be listed yet.
                Err(AdminError::Call(m)) if m.contains("ResourceNotFoundException") => status = "not found".into(),
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(AdminError::NotActive {
            stream: self.name().to_owned(),
            status,
            waited: ACTIVE_TIMEOUT,
        })
    }

    /// The stream's status and shards.
    pub async fn describe(&self) -> Result<StreamDescription, AdminError> {
        let (status, retention_hours, _) = self.status().await?;
        let shards = self.list_all_shards().await?;
        Ok(StreamDescription {
            name: self.name().to_owned(),
            status,
            open_shards: shards.iter().filter(|s| !s.closed).count(),
            retention_hours,
            shards,
        })
    }

    /// Splits an open shard at the middle of its hash-key range (or at `at`); waits until
    /// active. Returns the two children, lower range first.
    pub async fn split(&self, shard: &ShardId, at: Option<u128>) -> Result<(ShardId, ShardId), AdminError> {
        let before = self.list_all_shards().await?;
        let parent = open_shard(&before, shard)?;
        let r = parent.hash_range;
        let at = at.unwrap_or(r.start + (r.end - r.start) / 2 + 1);
        if at <= r.start || at > r.end {
            return Err(AdminError::Invalid(format!(
                "split point {at} is not inside {shard}'s range {}..={}",
                r.start, r.end
            )));
        }
        timed(
            "SplitShard",
            self.client
                .split_shard()
                .stream_name(self.name())
                .shard_to_split(shard.as_str())
                .new_starting_hash_key(at.to_string())
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("SplitShard", e))?;
        self.wait_active().await?;
        let after = self.list_all_shards().await?;
        let mut children: Vec<&Shard> = after.iter().filter(|s| s.parent.as_ref() == Some(shard)).collect();
        children.sort_by_key(|s| s.hash_range.start);
        match children.as_slice() {
            [a, b] => Ok((a.id.clone(), b.id.clone())),
            _ => Err(AdminError::Call(format!(
                "after splitting {shard} the stream lists {} children",
                children.len()
            ))),
        }
    }

    /// Merges two open shards with adjacent hash-key ranges; waits until active. Returns the
    /// child.
    pub async fn merge(&self, a: &ShardId, b: &ShardId) -> Result<ShardId, AdminError> {
        let before = self.list_all_shards().await?;
        let (sa, sb) = (open_shard(&before, a)?, open_shard(&before, b)?);
        let (lo, hi) = if sa.hash_range.start < sb.hash_range.start {
            (sa, sb)
        } else {
            (sb, sa)
        };
        if lo.hash_range.end.checked_add(1) != Some(hi.hash_range.start) {
            return Err(AdminError::Invalid(format!("{a} and {b} are not adjacent")));
        }
        timed(
            "MergeShards",
            self.client
                .merge_shards()
                .stream_name(self.name())
                .shard_to_merge(lo.id.as_str())
                .adjacent_shard_to_merge(hi.id.as_str())
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("MergeShards", e))?;
        self.wait_active().await?;
        let after = self.list_all_shards().await?;
        let want = HashKeyRange {
            start: lo.hash_range.start,
            end: hi.hash_range.end,
        };
        after
            .iter()
            .find(|s| !s.closed && s.hash_range == want && s.parents().contains(&lo.id))
            .map(|s| s.id.clone())
            .ok_or_else(|| AdminError::Call(format!("after merging {a} and {b} no child covers both")))
    }

    /// Rescales to `shards` open shards (uniform scaling); waits until active.
    pub async fn set_shard_count(&self, shards: u32) -> Result<(), AdminError> {
        let count = i32::try_from(shards)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| AdminError::Invalid(format!("shard count {shards} must be 1 or more")))?;
        timed(
            "UpdateShardCount",
            self.client
                .update_shard_count()
                .stream_name(self.name())
                .target_shard_count(count)
                .scaling_type(ScalingType::UniformScaling)
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("UpdateShardCount", e))?;
        self.wait_active().await
    }
}

fn open_shard<'a>(shards: &'a [Shard], id: &ShardId) -> Result<&'a Shard, AdminError> {
    match shards.iter().find(|s| &s.id == id) {
        Some(s) if !s.closed => Ok(s),
        Some(_) => Err(AdminError::Invalid(format!("{id} is closed"))),
        None => Err(AdminError::Invalid(format!("the stream has no shard {id}"))),
    }
}
