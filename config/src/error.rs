//! What is wrong with a configuration: always the key (or file) and the reason.
use std::path::PathBuf;

/// A configuration that cannot be used (`inlet` exits 2 on it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or is not TOML.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A setting has a bad value, or is not a setting at all.
    #[error("{key}{}: {reason}", origin.as_ref().map(|o| format!(" (from {o})")).unwrap_or_default())]
    Key {
        /// The setting, as a dotted path (`producer.linger`).
        key: String,
        /// Where its value came from (an environment variable, a flag), when not the file.
        origin: Option<String>,
        /// Why it is refused.
        reason: String,
    },
}

impl ConfigError {
    /// A bad value of `key`.
    pub fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Key {
            key: key.into(),
            origin: None,
            reason: reason.into(),
        }
    }
}
