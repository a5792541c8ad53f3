//! Pure rollup cores: no I/O, no clock. Every decision depends only on the order of the
//! records a shard holds, so replaying the same records gives bit-identical rollups.
//!
//! - [`window`]: UTC-minute tumbling windows of event time, watermark and lateness rules.
//! - [`row`]: the rollup rows (the contract dashboards and tests rely on) and their merge.
//! - [`state`]: one shard's open windows: apply an event, hand out dirty rows, evict closed.

pub mod row;
pub mod state;
pub mod window;

pub use row::{GameAgg, GameRow, ViewingAgg, ViewingRow};
pub use state::{Applied, ShardRollup};
pub use window::{Lateness, minute_of};
