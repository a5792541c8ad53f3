//! Inlet's raw archive and replay tool.
//!
//! - [`segment`]: one archive file: a header, then checksummed zstd blocks of length-delimited
//!   protobuf stream records; a torn last block is reported, never skipped past.
//! - [`archive`]: [`LocalArchive`] (the consumer's [`inlet_consumer::Archive`] on a local
//!   directory, hourly partitions) and [`ArchiveReader`] (a shard's segments merged by
//!   sequence number, repeats dropped).
//! - [`source`]: [`Source`], a stream or the archive, read shard by shard in order.
//! - [`filter`]: [`Filter`] by event time, kind, title or game, emitter app, session.
//! - [`rebuild`]: recompute a range's rollups through the consumer's processor and replace
//!   them in the warehouse, fenced by each shard's lease.
//! - [`drive`]: `emit` (paced, through a producer), `ndjson`, and dry-run counts.
//! - [`pacing`]: the original pace times a speed factor.
//! - [`progress`]: live counters and the progress file that makes a replay resumable;
//!   [`metrics`]: their names as metrics.
//!
//! Guarantees: the archive holds every record a consumer read up to its committed checkpoint
//! (fsynced before the commit). A rebuild is idempotent: run twice, or interrupted and run
//! again, it leaves the same rows, which equal the live path's for every minute of the range
//! that is closed (see [`rebuild`] for the start it needs). `emit` and `ndjson` are
//! at-least-once across an interruption (a resumed run repeats at most its last second) and
//! keep each partition key's order.

pub mod archive;
pub mod drive;
pub mod filter;
pub mod metrics;
pub mod pacing;
pub mod progress;
pub mod rebuild;
pub mod segment;
pub mod source;

pub use archive::{ArchiveReader, LocalArchive, TornTail};
pub use drive::{Driven, Sink, drive};
pub use filter::Filter;
pub use progress::{Counters, ProgressFile};
pub use rebuild::{RebuildConfig, ShardRebuilt, rebuild};
pub use source::Source;

use inlet_seams::{LeaseError, ShardId, StreamError, WarehouseError};
use std::path::PathBuf;

/// A replay's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Reading the source stream failed.
    #[error("reading the stream failed")]
    Stream(#[from] StreamError),
    /// Reading the archive failed (a torn last block is not an error; corruption is).
    #[error("reading the archive failed")]
    Archive(#[source] std::io::Error),
    /// The warehouse refused or failed.
    #[error("warehouse operation failed")]
    Warehouse(#[from] WarehouseError),
    /// The lease store failed.
    #[error("lease store operation failed")]
    Lease(#[from] LeaseError),
    /// A shard has no lease in the warehouse: the live path never read it.
    #[error("shard {0} has no lease in the warehouse: the live consumers never read it")]
    NoLease(ShardId),
    /// The target stream's producer refused a record.
    #[error("sending to the target stream failed")]
    Send(#[from] inlet_producer::SendError),
    /// The target stream's producer stopped.
    #[error("the target stream's producer failed")]
    Producer(#[from] inlet_producer::ProducerError),
    /// Writing the output failed.
    #[error("writing the output failed")]
    Output(#[source] std::io::Error),
    /// The progress file could not be read or written.
    #[error("progress file {path:?}")]
    Progress {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Stopped by a signal; progress is saved, run again to resume.
    #[error("interrupted; run the same command again to resume")]
    Interrupted,
    /// Event filters given to a rebuild, which replaces whole rows.
    #[error("a rebuild replaces whole rows: --kind, --title, --game, --app and --session do not apply")]
    FilteredRebuild,
}
