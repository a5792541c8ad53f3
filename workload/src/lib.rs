//! A generated workload end to end, for the `inlet` command and the tests alike.
//!
//! - [`drive`]: [`send_workload`] and [`send_paced`], a [`Generator`](inlet_generator::Generator)
//!   workload through a [`Producer`](inlet_producer::Producer) (paced to a rate if asked),
//!   building its [`Expected`](inlet_generator::Expected) on the way.
//! - [`expect`]: [`expect`](expect::expect) and [`expectation`], what a workload must give on
//!   a stream's shards with the consumer's default lateness and dedupe retry window.
//! - [`verdict`]: [`Verdict`], the pure comparison of a warehouse's totals and final rows with
//!   the expectation, and whether it is exact.
//! - [`error`]: [`WorkloadError`], the operation that failed.
//!
//! Guarantee: none of its own; it measures the pipeline's. Sending hands every generated
//! event to the producer in generation order (its delivery guarantee applies); the
//! expectation assumes each event lands on the shard its partition key maps to.

pub mod drive;
pub mod error;
pub mod expect;
pub mod verdict;

pub use drive::{send_paced, send_workload};
pub use error::WorkloadError;
pub use expect::{expect, expectation};
pub use verdict::{Count, DeadLetters, Verdict};
