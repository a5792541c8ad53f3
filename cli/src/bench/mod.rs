//! `inlet bench`: generator → producer → stream → consumer workers → warehouse for a set number
//! of events, one process per role (`inlet produce`, `inlet consume` × workers, this process
//! only starts them and watches the warehouse), then the figures: events/s, MB/s of event
//! payload, CPU and peak RSS of each process (from their [`crate::bench_report`]s) and
//! event-to-rollup-visible latency, and the check of `inlet verify`.
//!
//! Latency is read off timelines, as `benches/benches/pipeline_latency.rs` does: the producer
//! records when each 1,000-event chunk was handed over, each worker when its committed count
//! changed (sampled every 10 ms); the k-th event's latency is when the workers' summed count
//! reached k minus when the k-th event was sent. That is exact for first-in first-out delivery;
//! across shards, which commit independently, an approximation.
//!
//! - `run`: the flags and the orchestration, step by step;
//! - `procs`: the child processes (start, poll, wait, stop, kill what is left);
//! - `latency`: the timeline and quantile maths;
//! - `summary`: the figures, printed as a table or as one JSON object.
mod latency;
mod procs;
mod run;
mod summary;

pub use run::{BenchArgs, run};
