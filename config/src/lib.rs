//! Inlet's one configuration model, for every command.
//!
//! - [`model`]: [`InletConfig`], the TOML file's sections (stream, warehouse, producer,
//!   consumer, collector, dashboard, metrics, log), each default taken from the library that
//!   owns the setting.
//! - [`sources`]: the layers (defaults, the file, `INLET_…` environment variables; flags are
//!   applied by the command), errors naming the key and where its value came from.
//! - [`check`]: values that would hang, livelock or mean something else, refused by key.
//! - [`redact`]: the effective configuration as TOML with secrets replaced.
//! - [`error`]: what is wrong, always with the key: [`ConfigError`].
//!
//! The reference (every key, its KPL/KCL counterpart, its default) is
//! `docs/configuration.md`.

pub mod check;
pub mod error;
pub mod model;
pub mod redact;
pub mod sources;

pub use error::ConfigError;
pub use model::InletConfig;
pub use sources::load;
