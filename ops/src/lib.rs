//! What makes an Inlet process operable in production.
//!
//! - [`exporter`]: [`Exporter`], the Prometheus recorder with every metric catalog described
//!   and bucketed, `inlet_build_info`, and the `process_*` series.
//! - [`process`]: this process's CPU, memory, threads and file descriptors from `/proc`.
//! - [`health`]: [`Health`], the readiness check `/readyz` asks.
//! - [`server`]: [`OpsServer`]: `/metrics`, `/healthz`, `/readyz` on an address of its own;
//!   [`server::routes`] for a server that serves them beside its own routes.
//! - [`logging`]: text or JSON logs, colours only on a terminal.

pub mod exporter;
pub mod health;
pub mod logging;
pub mod process;
pub mod server;

pub use exporter::Exporter;
pub use health::{Health, Readiness};
pub use logging::LogFormat;
pub use server::OpsServer;
