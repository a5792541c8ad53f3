//! What Inlet's tests share, so no test file carries its own copy.
//!
//! - [`server`]: [`LocalServer`], a private server started by an `infra/` script (the Kinesis
//!   emulator, the Kafka broker), signalled and killed when dropped.
//! - [`stream`]: [`read_stream`], everything a stream holds, shard by shard, and
//!   [`user_records`], those records taken apart (KPL aggregates into their events).
//! - [`wait`]: [`wait_until_read`], until a warehouse has read so many events.
//! - [`names`]: [`unique_name`] for streams, topics and databases, [`server_var`], where
//!   a shared server runs (a missing one fails the test), and [`with_database`], a database
//!   URL naming another database (its TLS query kept).
//!
//! Test helpers: they panic with a message naming what failed, which is how a test reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod names;
pub mod server;
pub mod stream;
pub mod wait;

pub use names::{server_var, unique_name, with_database};
pub use server::{LocalServer, infra_dir};
pub use stream::{read_stream, user_records};
pub use wait::wait_until_read;
