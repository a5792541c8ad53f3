//! `ListShards`, paginated, into our [`Shard`]s.
use crate::client::KinesisStream;
use crate::errors::CallError;
use inlet_seams::{HashKeyRange, Shard, ShardId};

/// A shard description the service sent that we cannot use.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard}: {reason}")]
pub(crate) struct BadShard {
    shard: String,
    reason: String,
}

fn hash_key(shard: &str, which: &str, s: &str) -> Result<u128, BadShard> {
    s.parse().map_err(|_| BadShard {
        shard: shard.to_owned(),
        reason: format!("{which} hash key {s:?} is not a 128-bit decimal number"),
    })
}

pub(crate) fn to_shard(s: &aws_sdk_kinesis::types::Shard) -> Result<Shard, BadShard> {
    let id = s.shard_id();
    let range = s.hash_key_range().ok_or_else(|| BadShard {
        shard: id.to_owned(),
        reason: "no hash key range".into(),
    })?;
    Ok(Shard {
        id: ShardId(id.to_owned()),
        hash_range: HashKeyRange {
            start: hash_key(id, "starting", range.starting_hash_key())?,
            end: hash_key(id, "ending", range.ending_hash_key())?,
        },
        parent: s.parent_shard_id().map(|p| ShardId(p.to_owned())),
        adjacent_parent: s.adjacent_parent_shard_id().map(|p| ShardId(p.to_owned())),
        closed: s
            .sequence_number_range()
            .is_some_and(|r| r.ending_sequence_number().is_some()),
    })
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ListError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Bad(#[from] BadShard),
}

impl KinesisStream {
    /// Every shard the stream still lists (open and closed, with lineage), paging through
    /// `ListShards`.
    pub(crate) async fn list_all_shards(&self) -> Result<Vec<Shard>, ListError> {
        let mut shards = Vec::new();
        let mut next: Option<String> = None;
        loop {
            // With a NextToken the stream name must be left out.
            let req = match next.take() {
                Some(token) => self.client.list_shards().next_token(token),
                None => self.client.list_shards().stream_name(self.name()),
            };
            let out = crate::client::timed("ListShards", req.max_results(1000).send())
                .await
                .map_err(|e| CallError::from_sdk("ListShards", e))?;
            for s in out.shards() {
                shards.push(to_shard(s)?);
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => return Ok(shards),
            }
        }
    }
}
