//! A deterministic telemetry workload and the exact totals it generated.
//!
//! - [`rng`]: a small seeded PRNG (xoshiro256++) and Zipf sampling, stable forever so a
//!   seed always means the same events.
//! - [`sessions`]: viewing and game session state machines that emit plausible sequences.
//! - [`workload`]: [`Generator`], an iterator of encoded events with a configurable share
//!   of late and invalid ones, each carrying its ground truth.
//! - [`expected`]: [`Expected`], the totals downstream must reach (rollup rows per key,
//!   dead letters per reason), computed independently of the consumer's code.

pub mod expected;
pub mod rng;
pub mod sessions;
pub mod workload;

pub use expected::{Expected, Mismatch};
pub use workload::{GenEvent, Generator, GeneratorConfig, Truth};
