//! The archive seam: where a consumer's shard task writes every stream record it reads, so
//! history outlives the stream's retention (the `inlet-replay` crate implements it on local
//! files and reads it back; `scenarios::archive_round_trip` is what every implementation
//! passes).
//!
//! Contract: [`ShardArchive::append`] only buffers; [`ShardArchive::sync`] makes everything
//! appended so far durable (written and fsynced). The shard task calls `sync` before every
//! commit, so the archive always holds every record up to the committed checkpoint. After a
//! crash a shard is re-read from its checkpoint, so an archive may hold a record twice (same
//! shard and sequence, same bytes); readers drop the repeats.
use crate::{Record, ShardId};

/// An archive: one writer per shard task.
pub trait Archive: Send + Sync + std::fmt::Debug {
    /// Opens a writer for one shard task's records.
    fn open_shard(&self, shard: &ShardId) -> std::io::Result<Box<dyn ShardArchive>>;
}

/// One shard task's archive writer. Its methods block (file I/O): call them off the runtime.
pub trait ShardArchive: Send + std::fmt::Debug {
    /// Buffers `record`; `watermark_before` is the shard's watermark before the processor saw
    /// it (stored where a file starts, so a rebuild can start there with the exact state).
    fn append(&mut self, record: &Record, watermark_before: Option<i64>) -> std::io::Result<()>;
    /// Writes what was appended and fsyncs it.
    fn sync(&mut self) -> std::io::Result<()>;
}
