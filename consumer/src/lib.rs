//! Inlet's consumer worker.
//!
//! - [`config`]: worker settings (failover time, commit cadence, lateness, dedupe retry
//!   window, limits).
//! - [`processor`]: the pure core: stream records → user records → events → dedupe →
//!   rollups or dead letters, with the checkpoint of the last user record handled.
//! - [`balance`]: the pure lease plan: which leases to take or steal for a fair share.
//! - [`initial_position`]: [`InitialPosition`], where a shard without a checkpoint starts
//!   (trim horizon, latest, at a timestamp; children of resharded shards at the trim horizon).
//! - [`committer`]: a worker's shard commits written in groups (one warehouse transaction
//!   for what queued meanwhile, each commit still fenced by its own lease).
//! - [`compactor`]: the worker's periodic compaction of the warehouse's final minutes.
//! - [`shard_task`]: one shard's async loop: restore, read, process, commit.
//! - [`worker`]: [`Worker`], leases shards, renews, rebalances, runs shard tasks, shuts down
//!   cleanly.
//! - [`group_worker`]: [`GroupWorker`], for streams whose consumer group assigns the shards
//!   (Kafka): takes the leases of what it is assigned, commits and releases before a shard is
//!   taken away.
//! - [`skip`]: the operator's way past records that cannot be read (`inlet shard skip`):
//!   the range dead-lettered with its reason, the checkpoint moved past it, fenced.
//! - [`events`]: lease decisions (taken, lost, released, cleaned up), each logged and counted
//!   in one place.
//! - [`stats`] and [`metrics`]: committed counters, lease standing (the readiness probe's
//!   answer), metric names; [`progress`]: the periodic progress line.
//!
//! Guarantee: exactly-once rollups, per event. Each commit writes the shard's cumulative
//! partial rows of the windows it touched, its dead letters, the event ids it first saw and
//! its checkpoint in one warehouse transaction fenced by the lease counter; a worker that lost
//! its lease cannot commit, and the next owner resumes from the last commit with the same
//! remembered ids. A copy of an event already counted (same `event_id`, within the horizon of
//! lateness plus retry window) is dropped as a duplicate, so an event the stream holds twice
//! is counted once. With an archive configured, every record read is in it (fsynced) before
//! the commit whose checkpoint moves past it. Every event read is aggregated, dead-lettered
//! with its reason, or dropped as a duplicate.

pub mod balance;
pub mod committer;
pub mod compactor;
pub mod config;
pub mod events;
pub mod group_worker;
pub mod initial_position;
pub mod metrics;
pub mod processor;
pub mod progress;
pub mod shard_task;
pub mod skip;
pub mod stats;
pub mod worker;

pub use config::WorkerConfig;
pub use group_worker::GroupWorker;
pub use initial_position::{BadInitialPosition, InitialPosition};
/// The archive seam, re-exported where the worker's settings take it.
pub use inlet_seams::{Archive, ShardArchive};
pub use processor::RecordProcessor;
pub use stats::{ConsumerStats, StatsSnapshot};
pub use worker::{Worker, WorkerError};
