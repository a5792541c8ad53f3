//! Mergeable sketches for Inlet rollups.
//!
//! Module map:
//! - [`hll`]: [`Hll`], a HyperLogLog distinct counter (p = 14, ~0.81 % standard error) that
//!   starts sparse and turns dense only when that is smaller.
//! - [`ddsketch`]: [`QuantileSketch`], a DDSketch with 1 % relative accuracy for non-negative
//!   integer values (milliseconds), plus exact count/min/max/sum.
//! - [`error`]: [`SketchError`], why `from_bytes` rejected a byte string.
//! - `varint` (private): LEB128 and zigzag helpers shared by both encodings.
//!
//! Guarantee: merges are exact, commutative and associative, and `to_bytes` is canonical
//! (logically equal sketches encode to identical bytes), so per-shard partial rollups merged
//! in any order give identical bytes.

pub mod ddsketch;
pub mod error;
pub mod hll;
mod varint;

pub use ddsketch::QuantileSketch;
pub use error::SketchError;
pub use hll::Hll;
