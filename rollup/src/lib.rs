//! Pure rollup cores: no I/O, no clock. Every decision depends only on the order of the
//! records a shard holds, so replaying the same records gives bit-identical rollups.
//!
//! - [`window`]: UTC-minute tumbling windows of event time, watermark and lateness rules.
//! - [`row`]: the rollup rows (the contract dashboards and tests rely on) and their merge.
//! - [`state`]: one shard's open windows: apply an event, hand out dirty rows, evict closed.
//! - [`dedupe`]: one shard's remembered event ids within the horizon: a copy of an event
//!   already counted is recognised, whatever retried it.
//! - [`id_set`]: the exact id set under it (20 to 30 bytes per id).

pub mod dedupe;
pub mod id_set;
pub mod row;
pub mod state;
pub mod window;

pub use dedupe::{Dedupe, Horizon, Seen, SeenCommit, SeenIds};
pub use row::{GameAgg, GameRow, ViewingAgg, ViewingRow};
pub use state::{Applied, ShardRollup};
pub use window::{Lateness, minute_of};
