//! The seams: small traits of ours that every external system sits behind, with our own
//! types (never an SDK's). Kinesis semantics are the model; Kafka partitions and the
//! embedded log map onto them.
//!
//! - [`archive`]: [`Archive`] and [`ShardArchive`]: every record a consumer reads, durable
//!   before the commit that checkpoints past it.
//! - [`shard`]: shard ids, 128-bit hash keys and ranges, split/merge lineage.
//! - [`sequence`]: ordered sequence numbers, start positions, checkpoints.
//! - [`stream`]: [`StreamWriter`], [`StreamReader`] and [`ShardReader`].
//! - [`group`]: [`GroupMember`]: shards assigned by the stream's own consumer group (Kafka).
//! - [`lease`]: [`LeaseStore`]: owner, fencing counter, expiry, checkpoint, parents.
//! - [`warehouse`]: [`Warehouse`]: rollup rows, dead letters, remembered event ids and the
//!   checkpoint committed in one transaction, guarded by the lease's fencing counter.
//! - `scenarios` (feature `scenarios`): the one suite every implementation must pass.
//!
//! Architecture invariant: a deployment's lease store and warehouse live in one database,
//! which is what lets the fence and the commit be one transaction.

pub mod archive;
pub mod group;
pub mod lease;
pub mod sequence;
pub mod shard;
pub mod stream;
pub mod warehouse;

#[cfg(feature = "scenarios")]
pub mod scenarios;

pub use archive::{Archive, ShardArchive};
pub use group::{AssignReply, GroupEvent, GroupMember, Positions, RevokeDone};
pub use lease::{Lease, LeaseError, LeaseStore, LeaseToken, ShardFailure};
pub use sequence::{Checkpoint, SequenceNumber, StartPosition};
pub use shard::{HashKeyRange, Shard, ShardId, hash_key};
pub use stream::{
    PutOutcome, PutRecord, ReadBatch, Record, ShardRate, ShardReader, StreamError, StreamReader, StreamWriter,
    WriteLimits,
};
pub use warehouse::{
    Compacted, DeadLetter, DeadLetterKind, FOLD_STEP_MINUTES, FOLDED, Fold, FoldState, LeasedWarehouse, ShardCommit,
    StoredSeen, Totals, Warehouse, WarehouseError, answer_group, compact_in_steps, fold_plan,
};

/// An error and its sources, `error: source: source...`, for logs and messages that must
/// say the root cause (a `Display` of the outer error alone often does not).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
