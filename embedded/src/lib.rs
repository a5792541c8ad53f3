//! Embedded backends: everything on one machine with nothing installed.
//!
//! - [`db`]: opening SQLite files for several processes at once (WAL, busy timeout), and
//!   running their blocking calls off the async runtime.
//! - [`stream`]: [`EmbeddedStream`], a durable sharded log (`stream.db`): a
//!   [`inlet_seams::StreamWriter`] and [`inlet_seams::StreamReader`].
//! - [`warehouse`]: [`EmbeddedWarehouse`] (`warehouse.db`): the
//!   [`inlet_seams::Warehouse`]; rollup partials, dead letters and checkpoints.
//! - `compaction`: final minutes folded into one row per minute and key.
//! - [`lease_store`]: the [`inlet_seams::LeaseStore`] of the same file, so that a commit
//!   and its fence are one SQLite transaction.
//!
//! Durability: WAL with `synchronous=NORMAL`: a committed write survives a crash of any
//! process (not a power cut, which may lose the last transactions but never corrupts).

mod compaction;
pub mod db;
pub mod lease_store;
pub mod stream;
pub mod warehouse;

pub use stream::EmbeddedStream;
pub use warehouse::EmbeddedWarehouse;
